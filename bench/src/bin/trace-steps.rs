//! Where a wasm service's requests spend their time, from the traces its
//! host sent to Zipkin: for each request, its host's server span split into
//! the sidecar calls (the host's client spans), the component's own steps
//! (`preprocess`, `inference`, ...), and the rest (the body in, the
//! component's other work, the answer out). Optionally the host's own
//! measure of wasi-nn's compute (`wasm_host_nn_compute_seconds`, its mean
//! since `--nn-counters` was read before the run), so `inference` splits into
//! OpenVINO's work and the tensor's way in and out.
//! Usage: trace-steps ZIPKIN_ADDR SERVICE SPAN LOOKBACK_MS [HOST_METRICS_ADDR SUM COUNT]
//!        trace-steps --nn-counters HOST_METRICS_ADDR   (prints `SUM COUNT`)
//! Prints `requests=<n> total_p50_ms=<f> dapr_p50_ms=<f> <step>_p50_ms=<f>
//! ... rest_p50_ms=<f> [nn_compute_mean_ms=<f>]`.

use bench::trace::request_steps;
use bench::{http_get, median};
use serde_json::Value;
use std::collections::BTreeMap;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, metrics] = &args[..]
        && flag == "--nn-counters"
    {
        let (sum, count) = nn_counters(metrics);
        println!("{sum} {count}");
        return;
    }
    let [zipkin, service, span, lookback, rest @ ..] = &args[..] else {
        eprintln!(
            "usage: trace-steps ZIPKIN_ADDR SERVICE SPAN LOOKBACK_MS [HOST_METRICS_ADDR SUM COUNT]"
        );
        std::process::exit(2);
    };
    let path = format!(
        "/api/v2/traces?serviceName={service}&spanName={}&lookback={lookback}&limit=1000",
        span.to_lowercase().replace(' ', "%20")
    );
    let traces: Vec<Vec<Value>> = http_get(zipkin, &path)
        .and_then(|m| serde_json::from_slice(&m.body).map_err(std::io::Error::other))
        .unwrap_or_else(|e| fail(&format!("Zipkin {zipkin}: {e}")));
    let mut steps: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut requests = 0;
    for trace in &traces {
        let Some(inside) = request_steps(trace, service, span) else {
            continue;
        };
        requests += 1;
        for (name, v) in inside {
            steps.entry(name).or_default().push(v);
        }
    }
    let mut line = format!("requests={requests}");
    for (name, values) in &mut steps {
        line.push_str(&format!(" {name}_p50_ms={:.3}", median(values)));
    }
    if let [metrics, sum, count] = rest {
        let (now_sum, now_count) = nn_counters(metrics);
        let (sum, count): (f64, f64) = (sum.parse().unwrap_or(0.0), count.parse().unwrap_or(0.0));
        let mean = (now_sum - sum) / (now_count - count).max(1.0) * 1000.0;
        line.push_str(&format!(" nn_compute_mean_ms={mean:.3}"));
    }
    println!("{line}");
}

/// `wasm_host_nn_compute_seconds`' sum (seconds) and count.
fn nn_counters(addr: &str) -> (f64, f64) {
    let text = http_get(addr, "/metrics")
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .unwrap_or_else(|e| fail(&format!("metrics {addr}: {e}")));
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        value("wasm_host_nn_compute_seconds_sum"),
        value("wasm_host_nn_compute_seconds_count"),
    )
}

fn fail(why: &str) -> ! {
    eprintln!("trace-steps: {why}");
    std::process::exit(1)
}
