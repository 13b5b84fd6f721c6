//! Events through Dapr's outbox and pub/sub, against the running stack:
//! each success of an image service is published by one state transaction
//! (a marker, and the event as its outbox projection), and events-service
//! stores it once. These tests
//! stop events-service, MariaDB and Redis, or fill Redis up: run them one
//! at a time.

use e2e::*;
use service_manifest::wiring::outbox_topic;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `n` request bodies whose sizes no stored event has (the photo plus a
/// run-unique number of trailing bytes), and those sizes.
fn fresh_bodies(n: usize) -> (Vec<Vec<u8>>, Vec<u64>) {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_micros();
    let base = (micros % 100_000) as usize * 16;
    let bodies: Vec<Vec<u8>> = (0..n).map(|i| tagged("rocket.png", base + i)).collect();
    let sizes = bodies.iter().map(|b| b.len() as u64).collect();
    (bodies, sizes)
}

/// Sends `bodies` to grayscale from rotating client addresses (so the rate
/// limit never answers), `pause` apart, running `during` meanwhile (it may
/// watch `refused`, the 503s so far); returns the sizes answered 200.
fn load(bodies: &[Vec<u8>], pause: Duration, during: impl FnOnce(&AtomicUsize) + Send) -> Vec<u64> {
    let refused = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let sender = s.spawn(|| {
            let mut ok = Vec::new();
            for (i, body) in bodies.iter().enumerate() {
                let from = format!("127.0.2.{}", 10 + i % 200);
                let r = post_as(&from, &format!("{GRAYSCALE}/grayscale"), &[], body);
                assert!([200, 503].contains(&r.status), "{}: {}", r.status, r.text());
                if r.status == 200 {
                    ok.push(body.len() as u64);
                } else {
                    refused.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::sleep(pause);
            }
            ok
        });
        during(&refused);
        sender.join().expect("sender")
    })
}

/// Deliveries events-service's sidecar got RETRY for.
fn deliveries_retried() -> u64 {
    let retry = "process_status=\"retry\"";
    sidecar_metric(
        "events-service",
        "dapr_component_pubsub_ingress_count",
        &[retry],
    )
}

/// Messages of grayscale's outbox (its internal topic) read but not yet
/// acknowledged.
fn outbox_pending() -> u64 {
    let app = "image-api-grayscale";
    let topic = outbox_topic(stack::generate::LOCAL_NAMESPACE, app, "events");
    let out = broker_cli(&["XPENDING", &topic, app]);
    out.lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

/// The broker refusing every write that would grow it, as a Redis at its
/// `maxmemory` does: publishing fails, reading and acknowledging work.
/// Writable again when dropped, even after a failed assertion.
struct BrokerFull;

impl BrokerFull {
    fn now() -> Self {
        broker_cli(&["CONFIG", "SET", "maxmemory", "1"]);
        BrokerFull
    }
}

impl Drop for BrokerFull {
    fn drop(&mut self) {
        let _ = try_broker_cli(&["CONFIG", "SET", "maxmemory", "0"]);
    }
}

/// Runs `scripts/NAME start` when dropped: a failed assertion in an outage
/// does not leave the store down for the tests after it.
struct Restart(&'static str);

impl Drop for Restart {
    fn drop(&mut self) {
        let _ = std::process::Command::new(root().join("scripts").join(self.0))
            .arg("start")
            .output();
    }
}

/// Waits until each of `sizes` is stored exactly once (none twice) since
/// the mark.
fn each_stored_once(since: EventsSince, sizes: &[u64], within: Duration) {
    let start = std::time::Instant::now();
    let counts = loop {
        let counts = since.count_by_size(sizes);
        if counts.iter().all(|c| *c >= 1) {
            break counts;
        }
        if start.elapsed() > within {
            let missing: Vec<u64> = sizes
                .iter()
                .zip(&counts)
                .filter(|(_, c)| **c == 0)
                .map(|(s, _)| *s)
                .collect();
            panic!(
                "after {within:?}, {} of {} events missing: {missing:?}",
                missing.len(),
                sizes.len()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(counts.iter().all(|c| *c == 1), "stored twice: {counts:?}");
}

#[test]
fn events_recorded_while_events_service_is_down_arrive_without_further_traffic() {
    let since = EventsSince::now();
    let out = stack(&["stop", "events-service"]);
    assert!(out.status.success(), "{out:?}");
    let (bodies, sizes) = fresh_bodies(4);
    // Requests keep succeeding: their events wait in Redis.
    let ok = load(&bodies, Duration::ZERO, |_| {});
    assert_eq!(ok, sizes, "every request succeeds");
    // More than a minute: longer than any retry or redelivery interval.
    std::thread::sleep(Duration::from_secs(65));
    let out = stack(&["start", "events-service"]);
    assert!(out.status.success(), "{out:?}");
    // No further traffic: the broker delivers them.
    each_stored_once(since, &sizes, Duration::from_secs(30));
}

#[test]
fn every_success_is_one_event_across_a_database_restart() {
    let since = EventsSince::now();
    let (bodies, sizes) = fresh_bodies(40);
    let retried = deliveries_retried();
    let ok = load(&bodies, Duration::from_millis(100), |_| {
        let _up_again = Restart("db");
        script("db", &["stop"]);
        // The outage must meet a delivery: events-service answers RETRY.
        wait_until(Duration::from_secs(30), "a delivery retried", || {
            (deliveries_retried() > retried).then_some(())
        });
    });
    // The image services do not need the database: all succeed.
    assert_eq!(ok, sizes);
    // Dapr delivered the retried ones again.
    each_stored_once(since, &ok, Duration::from_secs(60));
}

#[test]
fn every_success_is_one_event_across_a_broker_restart() {
    let since = EventsSince::now();
    let (bodies, sizes) = fresh_bodies(40);
    let ok = load(&bodies, Duration::from_millis(100), |refused| {
        let _up_again = Restart("broker");
        std::thread::sleep(Duration::from_millis(300));
        script("broker", &["stop"]);
        // The outage must meet a request: its transaction cannot publish.
        wait_until(Duration::from_secs(30), "a request answered 503", || {
            (refused.load(Ordering::SeqCst) > 0).then_some(())
        });
    });
    // A request whose transaction could not publish was a 503, not a 200
    // without its event; the ones before and after went through.
    assert!(ok.len() < sizes.len(), "no request met the outage");
    assert!(!ok.is_empty(), "none succeeded");
    // A delivery the outage cut off (the outbox's own, or events-service's)
    // stays pending until processingTimeout (120 s, pubsub.yaml) passes,
    // then is claimed again within redeliverInterval (15 s).
    each_stored_once(since, &ok, Duration::from_secs(180));
    // And the refused ones left no event.
    let refused: Vec<u64> = sizes.into_iter().filter(|s| !ok.contains(s)).collect();
    assert!(since.count_by_size(&refused).iter().all(|c| *c == 0));
}

#[test]
fn every_success_is_one_event_while_the_broker_refuses_to_store_it() {
    let since = EventsSince::now();
    let (bodies, sizes) = fresh_bodies(1);
    let ok = load(&bodies, Duration::ZERO, |_| {});
    assert_eq!(ok, sizes);
    // The outbox forwards a message a second after reading it (Dapr 1.18:
    // defaultStateScanDelay): the broker is full before then.
    let full = BrokerFull::now();
    // Full for longer than a request's publish is retried (resiliency.yaml:
    // 5 times, at most 2 s apart): the outbox holds the message meanwhile,
    // unacknowledged. Redis Streams acknowledge a message whose handler gave
    // up, so a forward that gives up loses the event of a request answered
    // 200. (A message forwarded before the broker was full fails this too.)
    let until = std::time::Instant::now() + Duration::from_secs(15);
    let mut kept = true;
    while kept && std::time::Instant::now() < until {
        kept = outbox_pending() > 0;
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(full);
    assert!(
        kept,
        "the outbox acknowledged its message while the broker was full"
    );
    each_stored_once(since, &ok, Duration::from_secs(30));
}

#[test]
fn malformed_messages_are_dead_lettered_and_do_not_block_the_others() {
    let since = EventsSince::now();
    // Added straight to the topic on the broker: no app may publish to it
    // through Dapr (tests/tests/rights.rs), so a broken message can only
    // come from there.
    let publish = |content_type: &str, body: &[u8]| broker_publish("events", content_type, body);
    let marker = format!("bad-{}", std::process::id());
    publish("text/plain", marker.as_bytes());
    publish(
        "application/json",
        format!(
            r#"{{"event_id":"{marker}","event_ts":"soon","op_type":"grayscale","input_size":1}}"#
        )
        .as_bytes(),
    );
    // A good one after them is stored.
    let (_, sizes) = fresh_bodies(1);
    publish(
        "application/json",
        format!(
            r#"{{"event_ts":1,"op_type":"grayscale","input_size":{}}}"#,
            sizes[0]
        )
        .as_bytes(),
    );
    each_stored_once(since, &sizes, Duration::from_secs(30));
    // Both bad ones are in the dead-letter topic, for a person to look at.
    let dead = wait_until(Duration::from_secs(30), "two dead letters", || {
        let out = script("broker", &["dead-letters"]);
        (out.matches(marker.as_str()).count() >= 2).then_some(out)
    });
    assert!(dead.contains("soon"), "{dead}");
}
