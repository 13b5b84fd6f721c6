//! One request's time split by its spans, as Zipkin returns them
//! (`bench/src/bin/trace-steps.rs`).

use serde_json::Value;
use std::collections::BTreeMap;

/// The request in `trace` served by `service`'s host as `span` (its server
/// span), split into milliseconds: `total`; `dapr.admit` (the host's client
/// spans to the sidecar but the transaction), `dapr.event` (the
/// transaction), `dapr` (both); each of the component's own steps by name;
/// and `rest` (what no child span covers). `None` without such a request.
pub fn request_steps(trace: &[Value], service: &str, span: &str) -> Option<BTreeMap<String, f64>> {
    let root = trace.iter().find(|s| is_host_span(s, service, span))?;
    let total = ms(root);
    let mut steps = BTreeMap::<String, f64>::new();
    // Its own children only: the outbox carries the request's trace on to
    // events-service, whose sidecar's spans hang under the same root.
    for child in trace
        .iter()
        .filter(|s| s["parentId"] == root["id"] && s["localEndpoint"] == root["localEndpoint"])
    {
        let name = child["name"].as_str().unwrap_or("?");
        let step = match child["kind"].as_str() {
            Some("CLIENT") if name.ends_with("/transaction") => "dapr.event",
            Some("CLIENT") => "dapr.admit",
            _ => name,
        };
        *steps.entry(step.into()).or_default() += ms(child);
    }
    let rest = total - steps.values().sum::<f64>();
    let dapr = ["dapr.admit", "dapr.event"].map(|k| steps.get(k).copied().unwrap_or(0.0));
    steps.insert("dapr".into(), dapr.iter().sum());
    steps.insert("total".into(), total);
    steps.insert("rest".into(), rest);
    Some(steps)
}

/// The host's server span of one request (daprd's spans carry no instance).
fn is_host_span(s: &Value, service: &str, span: &str) -> bool {
    s["kind"] == "SERVER"
        && s["localEndpoint"]["serviceName"] == service
        && s["name"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(span))
        && s["tags"].get("wasm.instance").is_some()
}

fn ms(span: &Value) -> f64 {
    span["duration"].as_f64().unwrap_or(0.0) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn span(
        id: &str,
        parent: Option<&str>,
        kind: Option<&str>,
        name: &str,
        service: &str,
        us: u64,
    ) -> Value {
        let mut s = json!({"id": id, "name": name, "duration": us,
            "localEndpoint": {"serviceName": service}, "tags": {}});
        if let Some(p) = parent {
            s["parentId"] = json!(p);
        }
        if let Some(k) = kind {
            s["kind"] = json!(k);
        }
        s
    }

    /// A classify request as Zipkin stores it: the host's spans, daprd's
    /// under the host's client spans, and events-service's delivery of the
    /// event under the request's root.
    fn classify_trace() -> Vec<Value> {
        let svc = "image-api-classify";
        let mut root = span("r", None, Some("SERVER"), "post /classify", svc, 10_000);
        root["tags"]["wasm.instance"] = json!("3");
        vec![
            root,
            span(
                "a",
                Some("r"),
                Some("CLIENT"),
                "get /v1.0/state/statestore/{key}",
                svc,
                600,
            ),
            span(
                "b",
                Some("r"),
                Some("CLIENT"),
                "post /v1.0/state/statestore",
                svc,
                500,
            ),
            span(
                "d",
                Some("a"),
                Some("CLIENT"),
                "/v1.0/state/statestore/client:1",
                svc,
                300,
            ),
            span("p", Some("r"), None, "preprocess", svc, 2_500),
            span("i", Some("r"), None, "inference", svc, 4_000),
            span(
                "t",
                Some("r"),
                Some("CLIENT"),
                "post /v1.0/state/statestore/transaction",
                svc,
                1_500,
            ),
            span(
                "e",
                Some("r"),
                Some("CLIENT"),
                "pubsub/events",
                "events-service",
                3_300,
            ),
        ]
    }

    #[test]
    fn a_request_splits_into_its_own_spans() {
        let steps = request_steps(&classify_trace(), "image-api-classify", "POST /classify")
            .expect("the request");
        let get = |k: &str| (steps[k] * 1000.0).round() as u64;
        assert_eq!(get("total"), 10_000);
        assert_eq!(
            get("dapr.admit"),
            1_100,
            "only the host's own calls to its sidecar"
        );
        assert_eq!(get("dapr.event"), 1_500);
        assert_eq!(get("dapr"), 2_600);
        assert_eq!((get("preprocess"), get("inference")), (2_500, 4_000));
        assert_eq!(
            get("rest"),
            900,
            "events-service's delivery is not this request's time"
        );
    }

    #[test]
    fn another_service_or_route_is_no_request() {
        let trace = classify_trace();
        assert!(request_steps(&trace, "image-api-grayscale", "POST /classify").is_none());
        assert!(request_steps(&trace, "image-api-classify", "POST /grayscale").is_none());
    }
}
