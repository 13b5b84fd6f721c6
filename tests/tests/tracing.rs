//! One request, one trace: through the page's gateway with a known
//! `traceparent`, the request's path through web's sidecar, grayscale's
//! sidecar (its state calls and the outbox) and events-service's sidecar
//! (the delivery) is one trace in Zipkin (scripts/tracing), read through
//! its HTTP API. The components carry no tracing code: wasm-host records a
//! span per request and passes its trace context on to the component's
//! sidecar calls.

use e2e::*;
use std::time::Duration;

const ZIPKIN: &str = "http://127.0.0.1:9411";

/// A new trace id of this run.
fn trace_id() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("{:032x}", t ^ (u128::from(std::process::id()) << 64))
}

#[test]
fn one_request_through_the_gateway_is_one_trace_across_every_sidecar() {
    let trace = trace_id();
    let parent = "00f067aa0ba902b7";
    let tp = format!("00-{trace}-{parent}-01");
    let r = post_as(
        &client_ip(150),
        &format!("{WEB}/api/grayscale"),
        &[("traceparent", &tp), ("content-type", "image/png")],
        &sample("rocket.png"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // Every service the request and its event touch, under its trace id.
    let want = ["web", "image-api-grayscale", "events-service"];
    let spans = wait_until(Duration::from_secs(60), "the whole trace in Zipkin", || {
        let r = try_get(&format!("{ZIPKIN}/api/v2/trace/{trace}"))?;
        (r.status == 200).then_some(())?;
        let spans: Vec<serde_json::Value> = serde_json::from_slice(&r.body).ok()?;
        let services: Vec<&str> = spans
            .iter()
            .filter_map(|s| s["localEndpoint"]["serviceName"].as_str())
            .collect();
        want.iter()
            .all(|w| services.contains(w))
            .then_some(spans.clone())
    });
    let of = |svc: &str| -> Vec<&serde_json::Value> {
        spans
            .iter()
            .filter(|s| s["localEndpoint"]["serviceName"] == svc)
            .collect()
    };
    // grayscale's own sidecar calls joined the trace, not only the call
    // that reached it: the host passed the trace context on.
    let grayscale: Vec<String> = of("image-api-grayscale")
        .iter()
        .map(|s| s["name"].as_str().unwrap_or("").to_lowercase())
        .collect();
    assert!(
        grayscale.iter().any(|n| n.contains("state")),
        "no state call of grayscale in the trace: {grayscale:?}"
    );
    // wasm-host's own span of each component, under the caller's span, and
    // the sidecar calls the component made under it.
    let host_span = |svc: &str| -> serde_json::Value {
        of(svc)
            .into_iter()
            .find(|s| s["tags"]["wasm.guest_us"].is_string())
            .cloned()
            .unwrap_or_else(|| panic!("no wasm-host span of {svc}: {spans:?}"))
    };
    let web = host_span("web");
    assert_eq!(
        web["parentId"], parent,
        "web's host span is the caller's child"
    );
    assert_eq!(web["tags"]["http.status_code"], "200");
    let gray = host_span("image-api-grayscale");
    let children = spans.iter().filter(|s| s["parentId"] == gray["id"]).count();
    assert!(
        children > 0,
        "no sidecar call under grayscale's host span: {spans:?}"
    );
    // Every span is parented within the trace, back to the caller's span.
    let ids: Vec<&str> = spans.iter().filter_map(|s| s["id"].as_str()).collect();
    for s in &spans {
        assert_eq!(s["traceId"], trace.as_str(), "{s}");
        if let Some(p) = s["parentId"].as_str() {
            assert!(ids.contains(&p) || p == parent, "orphan span: {s}");
        }
    }
}
