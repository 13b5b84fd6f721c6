//! One request, one trace: through the page's gateway with a known
//! `traceparent`, the request's path through web's sidecar, grayscale's
//! sidecar (its state calls and the outbox) and events-service's sidecar
//! (the delivery) is one trace in Zipkin (scripts/tracing), read through
//! its HTTP API. The components carry no tracing code for that: wasm-host
//! records a span per request and a client span per outbound request, whose
//! trace context it passes on. Work the host cannot see is a component's
//! own step (`service_common::span`): events-service's database write,
//! classify's preprocessing and inference.

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

/// Sends a request through the gateway in a new trace, and polls Zipkin
/// until `whole` accepts the trace; fails with what is still missing.
fn traced(route: &str, content_type: &str, image: &str, whole: Check) {
    let trace = trace_id();
    let parent = "00f067aa0ba902b7";
    let tp = format!("00-{trace}-{parent}-01");
    let r = post_as(
        &client_ip(150),
        &format!("{WEB}/api/{route}"),
        &[("traceparent", &tp), ("content-type", content_type)],
        &sample(image),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // Spans arrive in batches from each process: poll until the trace is
    // whole, then say what is still missing if it never is.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let spans: Vec<Value> = try_get(&format!("{ZIPKIN}/api/v2/trace/{trace}"))
            .filter(|r| r.status == 200)
            .and_then(|r| serde_json::from_slice(&r.body).ok())
            .unwrap_or_default();
        match whole(&spans, &trace, parent) {
            Ok(()) => return,
            Err(e) if std::time::Instant::now() > deadline => panic!("{e}: {spans:#?}"),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

type Value = serde_json::Value;
type Check = fn(&[Value], &str, &str) -> Result<(), String>;

#[test]
fn one_request_through_the_gateway_is_one_trace_across_every_sidecar() {
    traced("grayscale", "image/png", "rocket.png", whole);
}

#[test]
fn classify_shows_its_preprocessing_and_inference() {
    traced(
        "classify",
        "image/jpeg",
        "cat.jpg",
        |spans, trace, parent| {
            let classify = host_span(spans, "image-api-classify")?;
            let steps = children(spans, classify);
            for step in ["preprocess", "inference"] {
                if !steps.contains(&step) {
                    return Err(format!("no {step} under classify's span: {steps:?}"));
                }
            }
            parented(spans, trace, parent)
        },
    );
}

/// The spans of service `svc`.
fn of<'a>(spans: &'a [Value], svc: &str) -> Vec<&'a Value> {
    spans
        .iter()
        .filter(|s| s["localEndpoint"]["serviceName"] == svc)
        .collect()
}

/// wasm-host's server span of a component, with its instance facts.
fn host_span<'a>(spans: &'a [Value], svc: &str) -> Result<&'a Value, String> {
    let s = of(spans, svc)
        .into_iter()
        .find(|s| s["kind"] == "SERVER" && s["tags"]["wasm.guest_us"].is_string())
        .ok_or(format!("no wasm-host span of {svc}"))?;
    let instance = s["tags"]["wasm.instance"].as_str().unwrap_or("");
    let memory: u64 = s["tags"]["wasm.memory_bytes"]
        .as_str()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if !["new", "reused"].contains(&instance) || memory == 0 {
        return Err(format!("{svc}'s span lacks its instance facts: {s}"));
    }
    Ok(s)
}

/// The names of the spans whose parent is `span`.
fn children<'a>(spans: &'a [Value], span: &Value) -> Vec<&'a str> {
    spans
        .iter()
        .filter(|s| s["parentId"] == span["id"])
        .filter_map(|s| s["name"].as_str())
        .collect()
}

/// Every span in `trace`, parented within it or on the caller's span.
fn parented(spans: &[Value], trace: &str, parent: &str) -> Result<(), String> {
    let ids: Vec<&str> = spans.iter().filter_map(|s| s["id"].as_str()).collect();
    for s in spans {
        if s["traceId"] != trace {
            return Err(format!("a span of another trace: {s}"));
        }
        if let Some(p) = s["parentId"].as_str()
            && !(ids.contains(&p) || p == parent)
        {
            return Err(format!("an orphan span: {s}"));
        }
    }
    Ok(())
}

/// Whether `spans` are the whole trace of one request through the gateway.
fn whole(spans: &[Value], trace: &str, parent: &str) -> Result<(), String> {
    let web = host_span(spans, "web")?;
    if web["parentId"] != parent || web["tags"]["http.status_code"] != "200" {
        return Err("web's host span is not the caller's child with 200".into());
    }
    // grayscale's host made a client span for each sidecar call, and
    // daprd's own span of the call hangs under it: the host passed the
    // trace context on.
    let gray = host_span(spans, "image-api-grayscale")?;
    let outbox = spans
        .iter()
        .find(|s| {
            s["kind"] == "CLIENT"
                && s["parentId"] == gray["id"]
                && s["tags"]["peer.service"] == "sidecar"
                && s["name"] == "post /v1.0/state/statestore/transaction"
        })
        .ok_or("no client span of the outbox transaction under grayscale's span")?;
    if children(spans, outbox).is_empty() {
        return Err("daprd's span of the transaction is not under the host's client span".into());
    }
    // The event's delivery, through the outbox and pub/sub, in the same
    // trace, and its database write as events-service's own step.
    let events = host_span(spans, "events-service")?;
    let steps = children(spans, events);
    if !steps.contains(&"db.insert") {
        return Err(format!(
            "no db.insert under events-service's span: {steps:?}"
        ));
    }
    parented(spans, trace, parent)
}
