//! bench-run's classification rows: the inference-only pipeline, the
//! native full service and the stack's service, their ratios and where a
//! request's time goes.

use super::{Bench, CLASSIFY, FULL, dapr_steps, get_text, output, step, up};
use bench::report::{cell, field, ratio};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A row of the classification table.
fn line(what: &str, c: &str, p50: &str, p99: &str, rps: &str) {
    println!("{what:<48} {c:>5} {p50:>9} {p99:>9} {rps:>8}");
}

/// A row of `load`'s answer.
fn load_line(what: &str, c: u32, out: &str) {
    let o = Some(out);
    let (p50, p99, rps) = (cell(o, "p50_ms"), cell(o, "p99_ms"), cell(o, "rps"));
    line(what, &c.to_string(), &p50, &p99, &rps);
}

/// What the service rows measured: p50 by target and concurrency
/// (`wasm1`, `native2`, ...) and each one's steps at concurrency 1.
#[derive(Default)]
struct Runs {
    p50: BTreeMap<String, f64>,
    wasm_steps: Option<String>,
    native_steps: Option<String>,
}

impl Bench {
    pub(super) fn classification(&self, full: bool) {
        let addr = self.app_addr(CLASSIFY);
        if !up(&addr, "/healthz", Duration::from_secs(5)) {
            super::log(
                "image-api-classify is not running (scripts/run): classification not measured",
            );
            return;
        }
        let _ = Command::new("scripts/warm-up")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        println!("\nclassification of {}\n", self.photo);
        line("target", "conc", "p50 ms", "p99 ms", "req/s");
        let native = self.pipeline();
        let mut runs = Runs::default();
        for c in [1, 2] {
            self.classify_rows(c, full, &mut runs);
        }
        let get = |k: &str| runs.p50.get(k).copied().unwrap_or(0.0);
        let mut summary = format!(
            "\nclassification p50 at concurrency 1: service/native pipeline = {}x",
            ratio(get("wasm1"), native)
        );
        if full {
            summary += &format!(
                ", service/native full service = {}x (c=1), {}x (c=2)",
                ratio(get("wasm1"), get("native1")),
                ratio(get("wasm2"), get("native2"))
            );
        }
        println!("{summary}");
        if let (Some(w), Some(n)) = (&runs.wasm_steps, &runs.native_steps) {
            classify_steps(w, n, runs.p50.get("native1").copied());
        }
    }

    /// The inference-only pipeline's rows (decode + resize natively, then
    /// OpenVINO from Python on the same tensor); its p50, summed.
    fn pipeline(&self) -> f64 {
        let tensor = self.data.join("bench/tensor");
        let mut prep = Command::new("target/release/classify-prep");
        prep.arg(&self.photo).arg(&tensor).arg("300");
        let prep = output(&mut prep).ok();
        let mut infer = Command::new(self.cache.join("venv/bin/python"));
        infer
            .arg("bench/classify_infer.py")
            .arg(self.cache.join("model/efficientnet"))
            .arg(&tensor)
            .arg("300");
        let infer = output(&mut infer).ok();
        let _ = std::fs::remove_file(&tensor);
        let (prep, infer) = (prep.as_deref(), infer.as_deref());
        let p50 = |o: Option<&str>, k: &str| o.and_then(|o| field(o, k)).unwrap_or(0.0);
        let native = p50(prep, "prep_p50_ms") + p50(infer, "infer_p50_ms");
        let (p, i) = (
            (cell(prep, "prep_p50_ms"), cell(prep, "prep_p99_ms")),
            (cell(infer, "infer_p50_ms"), cell(infer, "infer_p99_ms")),
        );
        line("native: decode+resize (Rust)", "1", &p.0, &p.1, "-");
        line("native: OpenVINO inference (Python)", "1", &i.0, &i.1, "-");
        line(
            "native pipeline (sum of p50s)",
            "1",
            &format!("{native:.2}"),
            "-",
            "-",
        );
        native
    }

    fn classify_rows(&self, c: u32, full: bool, runs: &mut Runs) {
        if full {
            let _ = get_text(FULL, "/steps"); // forget the grayscale rows' steps
            let f = self.load(&format!("http://{FULL}/classify"), c, self.secs, true);
            load_line("native full service + daprd (OpenVINO, Rust)", c, &f);
            runs.p50
                .insert(format!("native{c}"), field(&f, "p50_ms").unwrap_or(0.0));
            if c == 1 {
                runs.native_steps = get_text(FULL, "/steps");
            }
            self.drain();
        }
        // The host's wasi-nn counters before the run: trace-steps gives
        // OpenVINO's mean compute over the run from them.
        let host = self.host_metrics(CLASSIFY);
        let mut nn = Command::new("target/release/trace-steps");
        nn.args(["--nn-counters", &host]);
        let nn = output(&mut nn).unwrap_or_default();
        let addr = self.app_addr(CLASSIFY);
        let r = self.load(&format!("http://{addr}/classify"), c, self.secs, true);
        let port = self.app(CLASSIFY).app_port;
        load_line(
            &format!("service :{port} (wasi-nn + rate limit + events)"),
            c,
            &r,
        );
        runs.p50
            .insert(format!("wasm{c}"), field(&r, "p50_ms").unwrap_or(0.0));
        if c == 1 {
            let mut extra = vec![host];
            extra.extend(nn.split_whitespace().map(String::from));
            runs.wasm_steps = self.trace_steps(CLASSIFY, "POST /classify", &extra);
        }
        self.drain();
    }
}

fn classify_steps(w: &str, n: &str, native_total: Option<f64>) {
    println!("\nwhere a classify request spends its time, concurrency 1 (p50 of each, ms)\n");
    let (w, n) = (Some(w), Some(n));
    step("step", "wasm", "native");
    dapr_steps(w, n);
    let native_inference: f64 = ["handover_p50_ms", "inference_p50_ms", "top-k_p50_ms"]
        .iter()
        .filter_map(|k| n.and_then(|n| field(n, k)))
        .sum();
    // As `load` prints it.
    let total = native_total.map_or_else(String::new, |t| format!("{t:.2}"));
    for (what, wasm, native) in [
        (
            "decode + resize (wasm / native Rust)",
            cell(w, "preprocess_p50_ms"),
            cell(n, "preprocess_p50_ms"),
        ),
        (
            "tensor in + inference + output out + top-k",
            cell(w, "inference_p50_ms"),
            format!("{native_inference:.3}"),
        ),
        (
            "  of which OpenVINO's compute (wasm: the host's mean)",
            cell(w, "nn_compute_mean_ms"),
            cell(n, "inference_p50_ms"),
        ),
        (
            "the rest (body in, answer out, the host)",
            cell(w, "rest_p50_ms"),
            "-".into(),
        ),
        (
            "whole request (wasm: host span; native: client)",
            cell(w, "total_p50_ms"),
            total,
        ),
    ] {
        step(what, &wasm, &native);
    }
}
