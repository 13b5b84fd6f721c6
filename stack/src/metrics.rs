//! What `stack status` reads from each wasm-host's metrics endpoint, and
//! the sum over a Prometheus metric's series that the tests and the bench
//! read daprd's and wasm-host's metrics with.

/// The sum of Prometheus metric `name` over its series (the lines that
/// start with `name{` or `name `) whose line `keep` accepts.
pub fn metric_sum(text: &str, name: &str, keep: impl Fn(&str) -> bool) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| keep(l))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// One line from wasm-host's metrics (`stack status`): requests, errors,
/// instances, peak guest memory, dropped spans.
pub fn summarize_metrics(text: &str) -> String {
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0)
    };
    let live = value("wasm_host_instances_live");
    let memory = value("wasm_host_guest_memory_high_water_bytes") >> 20;
    let dropped = value("wasm_host_spans_dropped_total");
    let requests = metric_sum(text, "wasm_host_requests_total", |_| true) as u64;
    let errors = metric_sum(text, "wasm_host_requests_total", |l| {
        l.contains("status=\"5")
    }) as u64;
    format!(
        "{requests} requests ({errors} 5xx), {live} instances, {memory} MiB peak guest memory, {dropped} spans dropped"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_sum_over_the_kept_series_of_one_name() {
        let text = "# HELP x_total\n\
                    x_total{a=\"1\"} 2\n\
                    x_total{a=\"healthz\"} 5\n\
                    x_total_other{a=\"1\"} 7\n\
                    x_total 1\n";
        assert_eq!(metric_sum(text, "x_total", |_| true), 8.0);
        assert_eq!(metric_sum(text, "x_total", |l| !l.contains("healthz")), 3.0);
        assert_eq!(metric_sum(text, "y", |_| true), 0.0);
    }

    #[test]
    fn metrics_become_one_line() {
        let text = "# HELP x\nwasm_host_requests_total{route=\"/a\",status=\"200\"} 5\n\
                    wasm_host_requests_total{route=\"other\",status=\"503\"} 2\n\
                    wasm_host_instances_live 3\nwasm_host_guest_memory_high_water_bytes 10485760\n\
                    wasm_host_spans_dropped_total 0\n";
        assert_eq!(
            summarize_metrics(text),
            "7 requests (2 5xx), 3 instances, 10 MiB peak guest memory, 0 spans dropped"
        );
    }
}
