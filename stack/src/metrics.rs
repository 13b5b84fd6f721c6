//! What `stack status` reads from each wasm-host's metrics endpoint.

/// One line from wasm-host's metrics (`stack status`): requests, errors,
/// instances, peak guest memory, dropped spans.
pub fn summarize_metrics(text: &str) -> String {
    let (mut requests, mut errors) = (0u64, 0u64);
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0)
    };
    let live = value("wasm_host_instances_live");
    let memory = value("wasm_host_guest_memory_high_water_bytes") >> 20;
    let dropped = value("wasm_host_spans_dropped_total");
    for l in text
        .lines()
        .filter(|l| l.starts_with("wasm_host_requests_total{"))
    {
        let n: u64 = l
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        requests += n;
        if l.contains("status=\"5") {
            errors += n;
        }
    }
    format!(
        "{requests} requests ({errors} 5xx), {live} instances, {memory} MiB peak guest memory, {dropped} spans dropped"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
