//! End to end against the running stack (`scripts/test` starts it with
//! `stack run`). Run one at a time: some tests stop events-service, kill a
//! sidecar, or restart MariaDB.

use e2e::*;
use std::process::Command;
use std::time::Duration;

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
    // The newest stored events (ids within 500 of the newest), all there
    // after /init.
    let window = EventsSince(EventsSince::now().0.saturating_sub(500));
    let ids = || -> std::collections::BTreeSet<u64> {
        window
            .events()
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
fn each_success_is_recorded_as_an_event() {
    let photo = sample("rocket.png");
    let since = EventsSince::now();
    let r = post_as(
        &client_ip(3),
        &format!("{GRAYSCALE}/grayscale"),
        &[],
        &photo,
    );
    assert_eq!(r.status, 200);
    let ev = wait_until(Duration::from_secs(60), "the event in GET /events", || {
        since.events().into_iter().find(|e| {
            e["op_type"] == "grayscale" && e["input_size"].as_u64() == Some(photo.len() as u64)
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
        since
            .events()
            .iter()
            .any(|e| e["input_size"].as_u64() == Some(marker.len() as u64))
            .then_some(())
    });
    let size = Some(junk.len() as u64);
    assert!(
        !since
            .events()
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
