//! Classification on the running stack: the health route names the model,
//! real photos are named, successes become events, bad input gets a 4xx.

use e2e::*;
use std::time::Duration;

#[test]
fn classify_health_reports_the_model() {
    let r = get(&format!("{CLASSIFY}/healthz"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model_loaded"], true);
}

#[test]
fn classify_names_what_is_in_real_photos() {
    let ip = client_ip(40);
    let r = post_as(
        &ip,
        &format!("{CLASSIFY}/classify"),
        &[],
        &sample("cat.jpg"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.content_type.starts_with("text/plain"));
    let text = String::from_utf8_lossy(&r.body).into_owned();
    assert!(
        ["Egyptian cat", "tabby", "tiger cat"]
            .iter()
            .any(|c| text.starts_with(&format!("{c} is detected with"))),
        "{text}"
    );
    assert!(text.ends_with("% confidence"), "{text}");

    let r = post_as(
        ip.as_str(),
        &format!("{CLASSIFY}/classify"),
        &[("accept", "application/json")],
        &sample("coffee.jpg"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let top = r.json();
    let top = top.as_array().expect("array");
    assert_eq!(top.len(), 5);
    let first = top[0]["label"].as_str().unwrap_or_default();
    assert!(
        ["espresso", "cup", "coffee mug"].contains(&first),
        "{top:?}"
    );
    let scores: Vec<f64> = top.iter().filter_map(|p| p["score"].as_f64()).collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]) && scores[0] <= 1.0,
        "{scores:?}"
    );

    // Through the gateway, as the page does.
    let r = post_as(
        ip.as_str(),
        &format!("{WEB}/api/classify"),
        &[],
        &sample("cat.jpg"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn classify_records_events_and_rejects_bad_input() {
    let ip = client_ip(41);
    let photo = sample("cat-animated.gif");
    let since = EventsSince::now();
    assert_eq!(
        post_as(&ip, &format!("{CLASSIFY}/classify"), &[], &photo).status,
        200
    );
    wait_until(Duration::from_secs(60), "the classify event", || {
        since.events().into_iter().find(|e| {
            e["op_type"] == "classify" && e["input_size"].as_u64() == Some(photo.len() as u64)
        })
    });
    let url = format!("{CLASSIFY}/classify");
    post_as(&ip, &url, &[], b"").assert_error(400, "empty_body");
    post_as(&ip, &url, &[], b"text, not an image").assert_error(415, "unsupported_media_type");
    let jpg = sample("cat.jpg");
    post_as(&ip, &url, &[], &jpg[..jpg.len() / 2]).assert_error(422, "invalid_image");
    post_as(
        &ip,
        &url,
        &[],
        &service_common::decode::png_bomb(60_000, 60_000),
    )
    .assert_error(422, "image_too_large");
    call("GET", &url).assert_error(405, "method_not_allowed");
    let status = post_as(&ip, &url, &[], &vec![0u8; 11_000_000]).status;
    assert_eq!(status, 413);
    // The model's input tensor is not a public route.
    post_as(
        &ip,
        &format!("{CLASSIFY}/preprocess"),
        &[],
        &sample("coffee.jpg"),
    )
    .assert_error(404, "not_found");
}
