//! The native half of the classify baseline: decode + resize with the same
//! core the component uses, timed; writes the tensor for
//! `bench/classify_infer.py` (OpenVINO inference from Python).
//! Usage: classify-prep PHOTO TENSOR_OUT [ITERATIONS]
//! Prints `prep_p50_ms=<f> prep_p99_ms=<f>`.

use image_api_classify::preprocess;
use service_common::ImageLimits;
use service_common::decode::decode;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: classify-prep PHOTO TENSOR_OUT [ITERATIONS]");
        std::process::exit(2);
    }
    let bytes = std::fs::read(&args[1]).unwrap_or_else(|e| panic!("{}: {e}", args[1]));
    let n: usize = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(300);
    let limits = ImageLimits::default();
    let mut times = Vec::with_capacity(n);
    let mut tensor = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let (_, img) = decode(&bytes, &limits).unwrap_or_else(|e| panic!("decode: {e}"));
        tensor = preprocess(&img);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    std::fs::write(&args[2], &tensor).unwrap_or_else(|e| panic!("{}: {e}", args[2]));
    times.sort_by(f64::total_cmp);
    println!(
        "prep_p50_ms={:.2} prep_p99_ms={:.2}",
        bench::percentile(&times, 0.5),
        bench::percentile(&times, 0.99)
    );
}
