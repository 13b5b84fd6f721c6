//! wasm-host's Prometheus metrics on the running stack (each app's
//! `WASM_HOST_METRICS`, from dapr.yaml): known traffic moves exactly its
//! counters.

use e2e::*;

#[test]
fn known_traffic_moves_exactly_its_counters() {
    let ok = "wasm_host_requests_total{route=\"/grayscale\",status=\"200\"}";
    let count = "wasm_host_request_duration_seconds_count";
    let before = host_metrics("image-api-grayscale");
    let n = 3;
    for _ in 0..n {
        let r = post_as(
            &client_ip(160),
            &format!("{GRAYSCALE}/grayscale"),
            &[],
            &sample_image(),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let refused = post_as(
        &client_ip(161),
        &format!("{GRAYSCALE}/grayscale"),
        &[],
        b"not an image",
    );
    assert!((400..500).contains(&refused.status), "{}", refused.text());
    let after = host_metrics("image-api-grayscale");
    let bad = format!(
        "wasm_host_requests_total{{route=\"/grayscale\",status=\"{}\"}}",
        refused.status
    );
    assert_eq!(metric(&after, ok) - metric(&before, ok), n, "{after}");
    assert_eq!(metric(&after, &bad) - metric(&before, &bad), 1, "{after}");
    assert!(
        metric(&after, count) > metric(&before, count) + n,
        "{after}"
    );
    assert!(
        metric(&after, "wasm_host_instances_created_total") >= 1,
        "{after}"
    );
    assert!(
        metric(&after, "wasm_host_guest_memory_high_water_bytes") > 0,
        "{after}"
    );
    assert!(
        metric(
            &after,
            "wasm_host_outbound_total{target=\"sidecar\",result=\"ok\"}"
        ) >= 3 * n,
        "its state calls: {after}"
    );
    // A client's made-up path lands under `other`, never as a label.
    let _ = get(&format!("{GRAYSCALE}/made-up-{}", std::process::id()));
    assert!(!host_metrics("image-api-grayscale").contains("made-up"));
}

/// The metrics listener answers Kubernetes' probes (the chart's
/// readinessProbe and livenessProbe), and nothing else beside /metrics.
#[test]
fn probes_answer_on_the_metrics_listener() {
    let file = run_file();
    let addr = &file.app("image-api-grayscale").expect("app").env["WASM_HOST_METRICS"];
    for (path, want) in [("/readyz", 200), ("/livez", 200), ("/ready", 404)] {
        let r = get(&format!("http://{addr}{path}"));
        assert_eq!(r.status, want, "{path}");
    }
}

/// wasm-host keeps its connections to the sidecar alive (host/src/pool.rs):
/// sequential requests, three sidecar calls each, reuse them instead of
/// opening one per call.
#[test]
fn sidecar_connections_are_reused() {
    let opened = "wasm_host_outbound_connections_total";
    let calls = "wasm_host_outbound_total{target=\"sidecar\",result=\"ok\"}";
    let before = host_metrics("image-api-grayscale");
    let n = 5;
    for i in 0..n {
        let r = post_as(
            &client_ip(180 + i),
            &format!("{GRAYSCALE}/grayscale"),
            &[],
            &sample_image(),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let after = host_metrics("image-api-grayscale");
    let made = metric(&after, calls) - metric(&before, calls);
    let new = metric(&after, opened) - metric(&before, opened);
    assert!(made >= 3 * u64::from(n), "its sidecar calls: {after}");
    // Another test in this binary may hold a second instance (and so a
    // second connection) at the same time; one per call would be >= 15.
    assert!(
        new <= 2,
        "{new} connections opened for {made} sidecar calls"
    );
}

#[test]
fn each_inference_is_timed() {
    let count = "wasm_host_nn_compute_seconds_count";
    let before = metric(&host_metrics("image-api-classify"), count);
    let n = 2;
    for _ in 0..n {
        let r = post_as(
            &client_ip(162),
            &format!("{CLASSIFY}/classify"),
            &[],
            &sample("cat.jpg"),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // A request refused before the model runs is no inference.
    let r = post_as(
        &client_ip(162),
        &format!("{CLASSIFY}/classify"),
        &[],
        b"not an image",
    );
    assert!((400..500).contains(&r.status), "{}", r.text());
    let after = host_metrics("image-api-classify");
    assert_eq!(metric(&after, count) - before, n, "{after}");
}

fn sample_image() -> Vec<u8> {
    sample("rocket.png")
}

/// Starts Zipkin again when dropped, whatever the test did.
struct ZipkinBack;

impl Drop for ZipkinBack {
    fn drop(&mut self) {
        script("tracing", &["start"]);
    }
}

#[test]
fn a_dead_tracing_backend_costs_dropped_spans_not_requests() {
    let dropped = "wasm_host_spans_dropped_total";
    let before = metric(&host_metrics("web"), dropped);
    let _back = ZipkinBack;
    script("tracing", &["stop"]);
    for i in 0..20u8 {
        let r = get_as(&client_ip(170 + i % 5), &format!("{WEB}/healthz"), &[]);
        assert_eq!(r.status, 200);
    }
    // Batches leave every half second; each failed one is counted.
    wait_until(
        std::time::Duration::from_secs(30),
        "the dropped spans",
        || (metric(&host_metrics("web"), dropped) >= before + 20).then_some(()),
    );
}
