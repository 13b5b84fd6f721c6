//! The gateway (web) on the running stack: it serves the page and forwards
//! to the image services with their statuses, bodies and Retry-After unchanged.

use e2e::*;

#[test]
fn gateway_serves_the_page_and_forwards_with_statuses_unchanged() {
    let r = get(&format!("{WEB}/"));
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("text/html"));
    assert!(r.body.starts_with(b"<!doctype html>"));
    assert!(
        get(&format!("{WEB}/app.js"))
            .content_type
            .starts_with("text/javascript")
    );

    let ip = client_ip(30);
    let photo = sample("rocket.png");
    let r = post_as(
        &ip,
        &format!("{WEB}/api/grayscale"),
        &[("accept", "image/png")],
        &photo,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.content_type, "image/png");
    assert_eq!(image_dims(&r.body), image_dims(&photo));

    // The services' errors come back as they are.
    post_as(&ip, &format!("{WEB}/api/grayscale"), &[], b"plain text")
        .assert_error(415, "unsupported_media_type");
    let events = get(&format!("{WEB}/api/events?limit=2")).json();
    // Exactly the two asked for: the warm-up recorded more than two.
    assert!(events.as_array().is_some_and(|a| a.len() == 2), "{events}");
    get(&format!("{WEB}/api/events?limit=zero")).assert_error(400, "bad_request");

    // The gateway's own bad input: same JSON shape.
    call("GET", &format!("{WEB}/api/grayscale")).assert_error(405, "method_not_allowed");
    call("GET", &format!("{WEB}/../../etc/passwd")).assert_error(404, "not_found");
    let r = post_as(
        &ip,
        &format!("{WEB}/api/grayscale"),
        &[],
        &vec![0u8; 11_000_000],
    );
    assert_eq!(r.status, 413, "{}", r.text());
}

#[test]
fn gateway_passes_the_rate_limit_and_retry_after_through() {
    let ip = client_ip(31);
    let photo = sample("rocket.png");
    let mut last = None;
    for _ in 0..11 {
        last = Some(post_as(&ip, &format!("{WEB}/api/grayscale"), &[], &photo));
    }
    let r = last.expect("answer");
    r.assert_error(429, "rate_limited");
    assert!(r.retry_after.is_some());
}
