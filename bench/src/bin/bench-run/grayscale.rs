//! bench-run's grayscale rows: the cores, the stack's service and the
//! native full service at concurrency 1 and 2, then the ratios and where a
//! request's time goes.

use super::{
    Bench, FULL, GRAY, NATIVE, TRACED, WASM, dapr_steps, get_text, host_connections, row,
    sidecar_calls, step, up,
};
use bench::report::{cell, field, ratio};
use std::collections::BTreeMap;
use std::time::Duration;

/// What the rows measured, for the lines after them.
#[derive(Default)]
struct Runs {
    /// Requests/s by target and concurrency (`wasm1`, `full2`, ...).
    rps: BTreeMap<String, f64>,
    /// The stack's service: its sidecar's calls, its answers, and the
    /// connections its host opened to the sidecar meanwhile.
    calls: f64,
    served: f64,
    conns: f64,
    /// `trace-steps` of the service and the native full service's steps.
    wasm_steps: Option<String>,
    native_steps: Option<String>,
}

impl Bench {
    pub(super) fn grayscale(&self, full: bool) {
        super::log("warming up");
        for addr in [NATIVE, WASM, TRACED] {
            self.load(&format!("http://{addr}/grayscale"), 2, 2, false);
        }
        let size = std::fs::metadata(&self.photo).map(|m| m.len()).unwrap_or(0);
        println!(
            "\nphoto {} ({size} bytes), {}s per run, wasm-host on wasmtime 48\n",
            self.photo, self.secs
        );
        println!(
            "{:<28} {:>5} {:>10} {:>9} {:>9} {:>8}",
            "target", "conc", "req/s", "p50 ms", "p99 ms", "errors"
        );
        let mut runs = Runs::default();
        for c in [1, 2] {
            self.grayscale_rows(c, full, &mut runs);
        }
        println!();
        let spans_to = if self.zipkin_up() {
            "Zipkin"
        } else {
            "a dead backend"
        };
        runs.print(spans_to);
    }

    fn grayscale_rows(&self, c: u32, full: bool, runs: &mut Runs) {
        for (name, addr, label) in [
            ("native", NATIVE, "native core"),
            ("wasm", WASM, "wasm core (wasm-host)"),
            ("traced", TRACED, "wasm core, tracing on"),
        ] {
            let out = self.load(&format!("http://{addr}/grayscale"), c, self.secs, false);
            row(label, c, &out);
            runs.rps
                .insert(format!("{name}{c}"), field(&out, "rps").unwrap_or(0.0));
        }
        let gray = self.app_addr(GRAY);
        if up(&gray, "/healthz", Duration::from_secs(1)) {
            let (dapr, host) = (self.dapr_metrics(GRAY), self.host_metrics(GRAY));
            let (before, opened) = (sidecar_calls(&dapr), host_connections(&host));
            let out = self.load(&format!("http://{gray}/grayscale"), c, self.secs, true);
            let label = format!("full service (:{} + daprd)", self.app(GRAY).app_port);
            row(&label, c, &out);
            if c == 1 {
                runs.wasm_steps = self.trace_steps(GRAY, "POST /grayscale", &[]);
            }
            runs.calls += sidecar_calls(&dapr) - before;
            runs.served += field(&out, "ok").unwrap_or(0.0);
            runs.conns += host_connections(&host) - opened;
            self.drain();
            runs.rps
                .insert(format!("service{c}"), field(&out, "rps").unwrap_or(0.0));
        }
        if full {
            let _ = get_text(FULL, "/steps"); // forget earlier steps
            let out = self.load(&format!("http://{FULL}/grayscale"), c, self.secs, true);
            row("native full service + daprd", c, &out);
            if c == 1 {
                runs.native_steps = get_text(FULL, "/steps");
            }
            runs.rps
                .insert(format!("full{c}"), field(&out, "rps").unwrap_or(0.0));
            self.drain();
        }
    }
}

impl Runs {
    fn print(&self, spans_to: &str) {
        let (calls, served, conns) = (self.calls, self.served, self.conns);
        if served > 0.0 {
            println!(
                "sidecar calls per request of the full service: {:.2} ({calls} calls for {served} answers)",
                calls / served
            );
            println!(
                "new connections to the sidecar per request: {:.3} ({conns} opened for {served} answers; kept alive)",
                conns / served
            );
        }
        for c in [1, 2] {
            let r = |k: &str| self.rps.get(&format!("{k}{c}")).copied();
            let (native, wasm) = (r("native").unwrap_or(0.0), r("wasm").unwrap_or(0.0));
            let mut line = format!("concurrency {c}: wasm/native = {}x", ratio(wasm, native));
            let traced = ratio(r("traced").unwrap_or(0.0), wasm);
            line += &format!(", tracing on/off (spans to {spans_to}) = {traced}x");
            if let Some(service) = r("service") {
                line += &format!(", full service/native = {}x", ratio(service, native));
                if let Some(full) = r("full") {
                    let vs = ratio(service, full);
                    line += &format!(", wasm full service/native full service = {vs}x");
                }
            }
            println!("{line}");
        }
        let (Some(w), Some(n)) = (self.wasm_steps.as_deref(), self.native_steps.as_deref()) else {
            return;
        };
        println!("\nwhere a grayscale request spends its time, concurrency 1 (p50 of each, ms)\n");
        let (w, n) = (Some(w), Some(n));
        step("step", "wasm", "native");
        dapr_steps(w, n);
        let rest = "the rest (wasm: body in, grayscale, answer out)";
        step(rest, &cell(w, "rest_p50_ms"), "-");
        let itself = "grayscale itself (decode, convert, encode)";
        step(itself, "-", &cell(n, "grayscale_p50_ms"));
        step(
            "whole request (wasm: host span)",
            &cell(w, "total_p50_ms"),
            "-",
        );
    }
}
