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
    // Spans arrive in batches from each process: poll until the trace is
    // whole, then say what is still missing if it never is.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let spans: Vec<serde_json::Value> = try_get(&format!("{ZIPKIN}/api/v2/trace/{trace}"))
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

/// Whether `spans` are the whole trace of one request through the gateway.
fn whole(spans: &[serde_json::Value], trace: &str, parent: &str) -> Result<(), String> {
    let of = |svc: &str| -> Vec<&serde_json::Value> {
        spans
            .iter()
            .filter(|s| s["localEndpoint"]["serviceName"] == svc)
            .collect()
    };
    // wasm-host's own span of a component.
    let host_span = |svc: &str| {
        of(svc)
            .into_iter()
            .find(|s| s["tags"]["wasm.guest_us"].is_string())
            .ok_or(format!("no wasm-host span of {svc}"))
    };
    let web = host_span("web")?;
    if web["parentId"] != parent || web["tags"]["http.status_code"] != "200" {
        return Err("web's host span is not the caller's child with 200".into());
    }
    // grayscale's sidecar calls joined the trace under its host's span: the
    // host passed the trace context on.
    let gray = host_span("image-api-grayscale")?;
    let under_gray: Vec<&str> = spans
        .iter()
        .filter(|s| s["parentId"] == gray["id"])
        .filter_map(|s| s["name"].as_str())
        .collect();
    if !under_gray
        .iter()
        .any(|n| n.contains("/v1.0/state/statestore/transaction"))
    {
        return Err(format!(
            "no outbox transaction under grayscale's host span: {under_gray:?}"
        ));
    }
    // The event's delivery, through the outbox and pub/sub, in the same trace.
    host_span("events-service")?;
    // Every span in the trace, parented within it or on the caller's span.
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
