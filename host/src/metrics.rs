//! The host's Prometheus metrics, served on `WASM_HOST_METRICS` (a
//! loopback `ip:port` per app, beside daprd's): requests by route and
//! status, a latency histogram, instances, guest memory, outbound calls and
//! the connections opened for them, wasi-nn inference time, spans dropped.
//! Route labels are the manifest's routes or `other`, so a client cannot
//! grow the label set.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, seconds.
pub const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Every counter and gauge of one host.
#[derive(Default)]
pub struct Metrics {
    routes: Vec<String>,
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<Histogram>,
    /// wasi-nn inference (`compute`) time.
    nn: Mutex<Histogram>,
    /// Instances made since start.
    pub instances_created: AtomicU64,
    /// Instances alive now.
    pub instances_live: AtomicI64,
    /// The largest linear memory any instance reached, bytes.
    pub memory_high_water: AtomicUsize,
    outbound: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// TCP connections opened for outbound calls (kept alive: pool.rs).
    pub outbound_connections: AtomicU64,
    /// Spans not delivered (spans.rs).
    pub spans_dropped: AtomicU64,
}

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, took: Duration) {
        let secs = took.as_secs_f64();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }

    fn render(&self, o: &mut String, name: &str, help: &str) {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(o, "{name}_bucket{{le=\"{le}\"}} {}", self.counts[i]);
        }
        let _ = writeln!(o, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(o, "{name}_sum {}", self.sum);
        let _ = writeln!(o, "{name}_count {}", self.count);
    }
}

impl Metrics {
    /// Metrics whose route label is one of `routes` (the manifest's and
    /// `/healthz`), or `other`.
    pub fn new(mut routes: Vec<String>) -> Self {
        routes.push("/healthz".into());
        Self {
            routes,
            ..Self::default()
        }
    }

    /// The route label of `path`: one of the routes, or `other`.
    pub fn route(&self, path: &str) -> String {
        if self.routes.iter().any(|r| r == path) {
            path.to_string()
        } else {
            "other".into()
        }
    }

    /// One answered request.
    pub fn request(&self, path: &str, status: u16, took: Duration) {
        let route = self.route(path);
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((route, status)).or_default() += 1;
        }
        if let Ok(mut h) = self.latency.lock() {
            h.observe(took);
        }
    }

    /// One wasi-nn inference.
    pub fn nn_compute(&self, took: Duration) {
        if let Ok(mut h) = self.nn.lock() {
            h.observe(took);
        }
    }

    /// One outbound call of a component: `target` `sidecar` or `other`,
    /// `result` `ok`, `denied` or `error`.
    pub fn outbound(&self, target: &'static str, result: &'static str) {
        if let Ok(mut m) = self.outbound.lock() {
            *m.entry((target, result)).or_default() += 1;
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "# HELP wasm_host_requests_total Requests answered, by route and status."
        );
        let _ = writeln!(o, "# TYPE wasm_host_requests_total counter");
        if let Ok(m) = self.requests.lock() {
            for ((route, status), n) in m.iter() {
                let _ = writeln!(
                    o,
                    "wasm_host_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        if let Ok(h) = self.latency.lock() {
            h.render(
                &mut o,
                "wasm_host_request_duration_seconds",
                "Time from the request's head to its answer.",
            );
        }
        if let Ok(h) = self.nn.lock() {
            h.render(
                &mut o,
                "wasm_host_nn_compute_seconds",
                "wasi-nn inference time (compute), per call.",
            );
        }
        let gauge = |o: &mut String, name: &str, kind: &str, help: &str, v: String| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        gauge(
            &mut o,
            "wasm_host_instances_created_total",
            "counter",
            "Component instances made.",
            self.instances_created.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            &mut o,
            "wasm_host_instances_live",
            "gauge",
            "Component instances alive.",
            self.instances_live.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            &mut o,
            "wasm_host_guest_memory_high_water_bytes",
            "gauge",
            "The largest linear memory an instance reached.",
            self.memory_high_water.load(Ordering::Relaxed).to_string(),
        );
        let _ = writeln!(
            o,
            "# HELP wasm_host_outbound_total Outbound calls of the component, by target and result."
        );
        let _ = writeln!(o, "# TYPE wasm_host_outbound_total counter");
        if let Ok(m) = self.outbound.lock() {
            for ((target, result), n) in m.iter() {
                let _ = writeln!(
                    o,
                    "wasm_host_outbound_total{{target=\"{target}\",result=\"{result}\"}} {n}"
                );
            }
        }
        gauge(
            &mut o,
            "wasm_host_outbound_connections_total",
            "counter",
            "TCP connections opened for the component's plain-HTTP outbound calls (kept alive and reused).",
            self.outbound_connections
                .load(Ordering::Relaxed)
                .to_string(),
        );
        gauge(
            &mut o,
            "wasm_host_spans_dropped_total",
            "counter",
            "Spans not delivered to the tracing backend.",
            self.spans_dropped.load(Ordering::Relaxed).to_string(),
        );
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_traffic_moves_exactly_its_counters() {
        let m = Metrics::new(vec!["/grayscale".into()]);
        m.request("/grayscale", 200, Duration::from_millis(3));
        m.request("/grayscale", 200, Duration::from_millis(30));
        m.request("/a/made/up/path", 404, Duration::from_micros(10));
        m.request("/healthz", 200, Duration::from_micros(10));
        m.outbound("sidecar", "denied");
        m.nn_compute(Duration::from_millis(7));
        m.instances_created.fetch_add(2, Ordering::Relaxed);
        let text = m.render();
        for line in [
            "wasm_host_requests_total{route=\"/grayscale\",status=\"200\"} 2",
            "wasm_host_requests_total{route=\"other\",status=\"404\"} 1",
            "wasm_host_requests_total{route=\"/healthz\",status=\"200\"} 1",
            "wasm_host_request_duration_seconds_bucket{le=\"0.005\"} 3",
            "wasm_host_request_duration_seconds_bucket{le=\"0.05\"} 4",
            "wasm_host_request_duration_seconds_count 4",
            "wasm_host_outbound_total{target=\"sidecar\",result=\"denied\"} 1",
            "wasm_host_instances_created_total 2",
            "wasm_host_spans_dropped_total 0",
            "wasm_host_outbound_connections_total 0",
            "wasm_host_nn_compute_seconds_bucket{le=\"0.005\"} 0",
            "wasm_host_nn_compute_seconds_bucket{le=\"0.01\"} 1",
            "wasm_host_nn_compute_seconds_count 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
        assert!(!text.contains("made/up"), "no label from a client's path");
    }
}
