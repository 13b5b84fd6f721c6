//! End to end against the running stack (`scripts/test` starts it with
//! `stack run`). Run one at a time: some tests stop events-service, kill a
//! sidecar, or restart MariaDB.

use base64::Engine;
use e2e::*;
use image::{AnimationDecoder, ColorType, ImageFormat};
use std::process::Command;
use std::time::Duration;

fn image_dims(bytes: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory(bytes).expect("decodes");
    (img.width(), img.height())
}

#[test]
fn health_routes_answer() {
    for url in [format!("{GRAYSCALE}/healthz"), format!("{EVENTS}/healthz")] {
        let r = get(&url);
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["status"], "ok");
    }
}

#[test]
fn init_is_idempotent_and_keeps_data() {
    let ids = || -> std::collections::BTreeSet<u64> {
        all_events()
            .iter()
            .filter_map(|e| e["id"].as_u64())
            .collect()
    };
    let before = ids();
    assert!(!before.is_empty(), "the warm-up recorded events");
    for _ in 0..2 {
        let r = get(&format!("{EVENTS}/init"));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json(), serde_json::json!({"status": true}));
    }
    // Every event stored before is still there (others may arrive).
    let after = ids();
    let lost: Vec<_> = before.difference(&after).collect();
    assert!(lost.is_empty(), "lost events: {lost:?}");
}

#[test]
fn grayscale_of_a_real_photo_is_gray_and_same_size() {
    let photo = sample("cat.jpg");
    let ip = client_ip(1);
    let r = post_as(
        &ip,
        &format!("{GRAYSCALE}/grayscale"),
        &[("accept", "image/png")],
        &photo,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.content_type, "image/png");
    let out = image::load_from_memory_with_format(&r.body, ImageFormat::Png).expect("PNG");
    assert_eq!(out.color(), ColorType::L8);
    assert_eq!(image_dims(&r.body), image_dims(&photo));

    // Default answer: base64 text of the PNG, as the original template.
    let r = post_as(
        &ip,
        &format!("{GRAYSCALE}/grayscale"),
        &[],
        &sample("coffee.jpg"),
    );
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("text/plain"));
    let png = base64::engine::general_purpose::STANDARD
        .decode(&r.body)
        .expect("base64");
    assert_eq!(image_dims(&png), image_dims(&sample("coffee.jpg")));

    // Through Dapr service invocation, a PNG in.
    let r = dapr_post(
        "web",
        &format!("{DAPR_WEB}/v1.0/invoke/image-api-grayscale/method/grayscale"),
        // The gateway's word for who the client is: honoured, since the call
        // comes through grayscale's own sidecar with its app token.
        &[("accept", "image/png"), ("forwarded", &format!("for={ip}"))],
        &sample("rocket.png"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(image_dims(&r.body), image_dims(&sample("rocket.png")));
}

#[test]
fn animated_gif_stays_an_animated_gray_gif() {
    let gif = sample("cat-animated.gif");
    let r = post_as(
        &client_ip(2),
        &format!("{GRAYSCALE}/grayscale"),
        &[("accept", "image/gif")],
        &gif,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.content_type, "image/gif");
    let frames = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(&r.body))
        .expect("GIF")
        .into_frames()
        .collect_frames()
        .expect("frames");
    assert_eq!(frames.len(), 2);
    for f in &frames {
        assert!(
            f.buffer().pixels().all(|p| p[0] == p[1] && p[1] == p[2]),
            "frame not gray"
        );
    }
    assert_eq!(image_dims(&r.body), image_dims(&gif));
}

#[test]
fn each_success_is_recorded_as_an_event() {
    let photo = sample("rocket.png");
    let before: Vec<u64> = all_events()
        .iter()
        .filter_map(|e| e["id"].as_u64())
        .collect();
    let r = post_as(
        &client_ip(3),
        &format!("{GRAYSCALE}/grayscale"),
        &[],
        &photo,
    );
    assert_eq!(r.status, 200);
    let ev = wait_until(Duration::from_secs(60), "the event in GET /events", || {
        all_events().into_iter().find(|e| {
            e["id"].as_u64().is_some_and(|id| !before.contains(&id))
                && e["op_type"] == "grayscale"
                && e["input_size"].as_u64() == Some(photo.len() as u64)
        })
    });
    // The original template's fields, and no others.
    let keys: Vec<&str> = ev
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 4, "{ev}");
    for k in ["id", "event_ts", "op_type", "input_size"] {
        assert!(keys.contains(&k), "{ev}");
    }
    // Failures are not events.
    let junk = b"not an image, 39 bytes long, really!!!";
    let r = post_as(&client_ip(3), &format!("{GRAYSCALE}/grayscale"), &[], junk);
    assert_eq!(r.status, 415);
    // A success after the failure: once its event is in, the failure's
    // would be too (same client, same path), so its absence means something.
    let marker = sample("coffee.jpg");
    let r = post_as(
        &client_ip(3),
        &format!("{GRAYSCALE}/grayscale"),
        &[],
        &marker,
    );
    assert_eq!(r.status, 200);
    wait_until(Duration::from_secs(60), "the marker event", || {
        all_events()
            .iter()
            .any(|e| {
                e["id"].as_u64().is_some_and(|id| !before.contains(&id))
                    && e["input_size"].as_u64() == Some(marker.len() as u64)
            })
            .then_some(())
    });
    let size = Some(junk.len() as u64);
    assert!(
        !all_events()
            .iter()
            .any(|e| e["input_size"].as_u64() == size)
    );
}

#[test]
fn rate_limit_gives_429_with_retry_after_and_client_state_is_kept() {
    let ip = client_ip(4);
    let tiny = sample("rocket.png");
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let r = post_as(&ip, &format!("{GRAYSCALE}/grayscale"), &[], &tiny);
        statuses.push(r.status);
        if r.status == 429 {
            r.assert_error(429, "rate_limited");
            let wait: u64 = r
                .retry_after
                .as_deref()
                .expect("Retry-After")
                .parse()
                .expect("seconds");
            assert!((1..=10).contains(&wait), "Retry-After {wait}");
        }
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(statuses[10..], [429, 429]);
    // Another client is not limited.
    let r = post_as(&client_ip(5), &format!("{GRAYSCALE}/grayscale"), &[], &tiny);
    assert_eq!(r.status, 200);
    // The client's record, in the Dapr state store.
    let r = dapr_get(
        "image-api-grayscale",
        &format!("{DAPR_GRAYSCALE}/v1.0/state/statestore/client:{ip}"),
    );
    assert_eq!(r.status, 200);
    let rec = r.json();
    assert_eq!(rec["address"], ip.as_str());
    assert!(
        rec["last_request_ms"]
            .as_u64()
            .is_some_and(|t| t > 1_600_000_000_000),
        "{rec}"
    );
}

#[test]
fn concurrent_requests_cannot_both_slip_past_the_limit() {
    let ip = client_ip(6);
    let tiny = sample("rocket.png");
    let limit: usize = std::env::var("RATE_LIMIT_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    // One place left in the window...
    for _ in 1..limit {
        let r = post_as(&ip, &format!("{GRAYSCALE}/grayscale"), &[], &tiny);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // ...and 8 requests race for it: a single lost update lets two through.
    // 8 is the retry budget of the ETag loop, so none may give up with 503.
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (ip, tiny) = (ip.clone(), tiny.clone());
            std::thread::spawn(move || {
                post_as(&ip, &format!("{GRAYSCALE}/grayscale"), &[], &tiny).status
            })
        })
        .collect();
    let statuses: Vec<u16> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(ok, 1, "{ok} allowed: {statuses:?}");
    assert!(
        statuses.iter().all(|s| [200, 429].contains(s)),
        "{statuses:?}"
    );
}

#[test]
fn bad_input_gets_documented_4xx() {
    let url = format!("{GRAYSCALE}/grayscale");
    let ip = client_ip(7);
    post_as(&ip, &url, &[], b"").assert_error(400, "empty_body");
    post_as(&ip, &url, &[], b"hello, I am text").assert_error(415, "unsupported_media_type");
    let jpg = sample("cat.jpg");
    post_as(&ip, &url, &[], &jpg[..jpg.len() / 3]).assert_error(422, "invalid_image");
    post_as(&ip, &url, &[], &jpg[..40]).assert_error(422, "invalid_image");
    // A PNG header declaring 100000 x 100000 pixels: refused before decoding.
    let bomb = service_common::decode::png_bomb(100_000, 100_000);
    post_as(&ip, &url, &[], &bomb).assert_error(422, "image_too_large");
    call("GET", &url).assert_error(405, "method_not_allowed");
    call("GET", &format!("{GRAYSCALE}/nope?x=1")).assert_error(404, "not_found");
    // Query strings do not break routing.
    assert_eq!(
        post_as(&ip, &format!("{url}?q=1"), &[], &sample("rocket.png")).status,
        200
    );
    // Over the 10 MB limit: 413, declared length or not.
    let big = vec![0u8; 11_000_000];
    let r = post_as(&ip, &url, &[], &big);
    let (status, text) = (r.status, r.text());
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("payload_too_large"));
    // The service is still fine afterwards.
    assert_eq!(
        post_as(&client_ip(8), &url, &[], &sample("rocket.png")).status,
        200
    );
}

#[test]
fn events_service_rejects_bad_events_and_dedups_by_id() {
    let url = format!("{EVENTS}/events");
    // Writes are Dapr-only: carry the token events-service's sidecar sends.
    let token = app_token("events-service");
    let dapr = [("dapr-api-token", token.as_str())];
    post(&url, &dapr, b"").assert_error(400, "empty_body");
    post(&url, &dapr, b"{not json").assert_error(400, "invalid_json");
    post(&url, &dapr, br#"{"op_type":"grayscale","input_size":1}"#)
        .assert_error(400, "invalid_json");
    post(
        &url,
        &dapr,
        br#"{"event_ts":"x","op_type":"grayscale","input_size":1}"#,
    )
    .assert_error(400, "invalid_json");
    post(
        &url,
        &dapr,
        br#"{"event_ts":1,"op_type":"a'; DROP TABLE events;--","input_size":1}"#,
    )
    .assert_error(400, "invalid_field");
    get(&format!("{url}?limit=abc")).assert_error(400, "bad_request");
    get(&format!("{url}?limit=0")).assert_error(400, "bad_request");
    call("DELETE", &url).assert_error(405, "method_not_allowed");

    let id = format!("e2e-{}", std::process::id());
    let body = format!(
        r#"{{"event_id":"{id}","event_ts":1665358852918,"op_type":"e2e","input_size":68016}}"#
    );
    let a = post(
        &url,
        &[("content-type", "application/json"), dapr[0]],
        body.as_bytes(),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let b = post(&format!("{EVENTS}/create_event"), &dapr, body.as_bytes());
    assert_eq!(b.status, 200);
    assert_eq!(a.json(), b.json(), "same event id, same row");
    assert_eq!(a.json()["input_size"], 68016);
    // Paging: before= returns strictly older rows.
    let first = get(&format!("{url}?limit=2")).json();
    let oldest = first[1]["id"].as_u64().expect("id");
    let next = get(&format!("{url}?limit=2&before={oldest}")).json();
    assert!(
        next.as_array()
            .expect("array")
            .iter()
            .all(|e| e["id"].as_u64() < Some(oldest))
    );
}

#[test]
fn a_killed_sidecar_comes_back_with_its_app_and_the_stack_serves_again() {
    let app = "image-api-grayscale";
    let (daprd, proc) = (
        pid_of(app, "daprd").expect("daprd pid"),
        pid_of(app, "app").expect("app pid"),
    );
    assert!(alive(daprd) && alive(proc));
    let killed = Command::new("kill")
        .args(["-KILL", &daprd.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    // The supervisor stops the app too, then starts both again.
    let (new_daprd, new_proc) =
        wait_until(Duration::from_secs(30), "a new daprd and app", || {
            match (pid_of(app, "daprd"), pid_of(app, "app")) {
                (Some(d), Some(a)) if d != daprd && a != proc => Some((d, a)),
                _ => None,
            }
        });
    assert!(!alive(proc), "the old app must not outlive its sidecar");
    assert!(alive(new_daprd) && alive(new_proc));
    // Through the gateway: web's sidecar must resolve the new registration,
    // and the restarted service must reach its state store again.
    let photo = sample("rocket.png");
    let r = wait_until(
        Duration::from_secs(30),
        "grayscale through web again",
        || {
            let r = post_as(&client_ip(90), &format!("{WEB}/api/grayscale"), &[], &photo);
            (r.status == 200).then_some(r)
        },
    );
    assert!(!r.body.is_empty());
    // And it said so, loudly, naming the log file, and that it is back.
    let log = wait_until(Duration::from_secs(10), "the supervisor's report", || {
        std::fs::read_to_string(root().join(".logs/stack.log"))
            .ok()
            .filter(|l| l.contains("image-api-grayscale is up again"))
    });
    assert!(
        log.contains(
            "image-api-grayscale: its sidecar (daprd) exited on its own (killed by SIGKILL)"
        ),
        "{log}"
    );
    assert!(
        log.contains("image-api-grayscale/.dapr/logs/image-api-grayscale_daprd.log"),
        "{log}"
    );
}

#[test]
fn database_outage_is_503_and_recovers_by_itself() {
    /// Starts MariaDB again however the test ends, so a failure here does
    /// not fail every later test that needs the database.
    struct Restart;
    impl Drop for Restart {
        fn drop(&mut self) {
            if std::thread::panicking() {
                let _ = std::process::Command::new(root().join("scripts/db"))
                    .arg("start")
                    .status();
            }
        }
    }
    let _restart = Restart;
    script("db", &["stop"]);
    let r = get(&format!("{EVENTS}/events?limit=1"));
    r.assert_error(503, "unavailable");
    script("db", &["start"]);
    wait_until(
        Duration::from_secs(30),
        "events-service to reconnect",
        || try_get(&format!("{EVENTS}/events?limit=1")).filter(|r| r.status == 200),
    );
}

/// xorshift64*: deterministic noise without a dependency.
fn noise(seed: &mut u64) -> u64 {
    *seed ^= *seed >> 12;
    *seed ^= *seed << 25;
    *seed ^= *seed >> 27;
    seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

#[test]
fn hostile_images_get_4xx_or_a_result_never_a_crash() {
    let url = format!("{GRAYSCALE}/grayscale");
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let signatures: [&[u8]; 5] = [
        b"\x89PNG\r\n\x1a\n",
        b"\xFF\xD8\xFF\xE0",
        b"GIF89a",
        b"BM",
        b"RIFF\0\0\0\0WEBPVP8 ",
    ];
    let mut cases: Vec<Vec<u8>> = Vec::new();
    // Valid signatures followed by noise.
    for sig in signatures {
        for len in [0usize, 7, 64, 5000] {
            let mut b = sig.to_vec();
            b.extend((0..len).map(|_| noise(&mut seed) as u8));
            cases.push(b);
        }
    }
    // Real images with bytes flipped at random places.
    for name in ["cat.jpg", "rocket.png", "cat-animated.gif"] {
        for _ in 0..8 {
            let mut b = sample(name);
            for _ in 0..16 {
                let i = (noise(&mut seed) as usize) % b.len();
                b[i] ^= (noise(&mut seed) as u8) | 1;
            }
            cases.push(b);
        }
    }
    for (i, body) in cases.iter().enumerate() {
        let ip = format!("127.0.2.{}", 1 + i % 250);
        let r = post_as(&ip, &url, &[("accept", "image/png")], body);
        assert!(
            [200, 400, 415, 422].contains(&r.status),
            "case {i}: {} {}",
            r.status,
            r.text()
        );
        if r.status != 200 {
            // The code must be one the README documents for that status.
            let documented: &[&str] = match r.status {
                400 => &["empty_body", "bad_request"],
                415 => &["unsupported_media_type"],
                _ => &["invalid_image", "image_too_large", "too_many_frames"],
            };
            let code = r.json()["code"].as_str().unwrap_or_default().to_string();
            assert!(documented.contains(&code.as_str()), "case {i}: {code}");
            r.assert_error(r.status, &code);
        }
    }
    assert_eq!(get(&format!("{GRAYSCALE}/healthz")).status, 200);
}

#[test]
fn a_gif_of_many_large_frames_is_refused() {
    // 30 frames of 1000x1000: tiny once LZW-compressed, 120 MB decoded.
    let mut gif = Vec::new();
    {
        let frame = image::Frame::new(image::RgbaImage::from_pixel(
            1000,
            1000,
            image::Rgba([9, 9, 9, 255]),
        ));
        let mut enc = image::codecs::gif::GifEncoder::new(&mut gif);
        enc.encode_frames(std::iter::repeat_n(frame, 30))
            .expect("encode");
    }
    assert!(gif.len() < 10_000_000);
    let r = post_as(&client_ip(9), &format!("{GRAYSCALE}/grayscale"), &[], &gif);
    assert_eq!(r.status, 422, "{}", r.text());
    let code = r.json()["code"].as_str().map(str::to_string);
    assert!(
        matches!(code.as_deref(), Some("too_many_frames" | "image_too_large")),
        "{code:?}"
    );
}

#[test]
fn configured_image_limits_reach_the_components() {
    // scripts/test starts the stack with MAX_IMAGE_SIDE=5000 (default 8192);
    // dapr.yaml must pass it on into both image services.
    let side: u32 = std::env::var("MAX_IMAGE_SIDE")
        .expect("MAX_IMAGE_SIDE (set by scripts/test)")
        .parse()
        .expect("a number");
    assert_ne!(side, 8192, "must differ from the default to prove anything");
    let mut png = Vec::new();
    image::GrayImage::from_pixel(side + 1, 1, image::Luma([7]))
        .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
        .expect("encode");
    for (url, n) in [
        (format!("{GRAYSCALE}/grayscale"), 40),
        ("http://127.0.0.1:9006/classify".to_string(), 41),
    ] {
        let r = post_as(&client_ip(n), &url, &[], &png);
        r.assert_error(422, "image_too_large");
        let limit = format!("{side}x{side}");
        assert!(r.text().contains(&limit), "{url}: {}", r.text());
    }
    // One pixel less is fine.
    let mut ok = Vec::new();
    image::GrayImage::from_pixel(side, 1, image::Luma([7]))
        .write_to(&mut std::io::Cursor::new(&mut ok), ImageFormat::Png)
        .expect("encode");
    let r = post_as(&client_ip(42), &format!("{GRAYSCALE}/grayscale"), &[], &ok);
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn hostile_events_get_400() {
    let url = format!("{EVENTS}/events");
    // Writes are Dapr-only: carry the token events-service's sidecar sends.
    let token = app_token("events-service");
    let dapr = [("dapr-api-token", token.as_str())];
    let deep = "[".repeat(10_000);
    let big = format!(
        r#"{{"event_ts":1,"op_type":"x","input_size":1,"pad":"{}"}}"#,
        "a".repeat(20_000)
    );
    for body in [
        deep.as_bytes(),
        b"\xff\xfe\x00garbage",
        br#"{"event_ts":1e400,"op_type":"x","input_size":1}"#,
    ] {
        let r = post(&url, &dapr, body);
        assert_eq!(r.status, 400, "{}", r.text());
    }
    post(&url, &dapr, big.as_bytes()).assert_error(413, "payload_too_large");
    assert_eq!(get(&format!("{EVENTS}/healthz")).status, 200);
}

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
    let before: Vec<u64> = all_events()
        .iter()
        .filter_map(|e| e["id"].as_u64())
        .collect();
    assert_eq!(
        post_as(&ip, &format!("{CLASSIFY}/classify"), &[], &photo).status,
        200
    );
    wait_until(Duration::from_secs(60), "the classify event", || {
        all_events().into_iter().find(|e| {
            e["id"].as_u64().is_some_and(|id| !before.contains(&id))
                && e["op_type"] == "classify"
                && e["input_size"].as_u64() == Some(photo.len() as u64)
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
