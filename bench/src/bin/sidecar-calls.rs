//! `sidecar-calls ADDR N METHOD PATH [BODY]`: the same Dapr call N times on
//! one kept-alive connection to the daprd at ADDR (DAPR_API_TOKEN from the
//! environment), as the native full service makes its calls
//! (`bench::sidecar`); prints the last status and `calls=N p50_ms=…
//! p99_ms=…`. scripts/bench runs it beside `call --repeat` (the SDK's
//! example) under wasm-host against the same daprd: what one sidecar call
//! costs through the host.

use bench::sidecar::{Sidecar, status_of};
use dapr::request::DaprRequest;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (addr, n, method, path, body) = match args.as_slice() {
        [a, n, m, p] => (a, n, m, p, ""),
        [a, n, m, p, b] => (a, n, m, p, b.as_str()),
        _ => {
            eprintln!("usage: sidecar-calls ADDR N METHOD PATH [BODY]");
            std::process::exit(2);
        }
    };
    let n = n.parse::<usize>().unwrap_or(0).max(1);
    let Ok(method) = http::Method::from_bytes(method.as_bytes()) else {
        eprintln!("sidecar-calls: `{method}` is not an HTTP method");
        std::process::exit(2);
    };
    let mut req = DaprRequest::new(method, path.clone());
    req.body = body.as_bytes().to_vec();
    let mut sidecar = Sidecar::new(addr, std::env::var("DAPR_API_TOKEN").unwrap_or_default());
    let mut times = Vec::with_capacity(n);
    let mut status = 0;
    for _ in 0..n {
        let started = Instant::now();
        match sidecar.send(req.clone()) {
            Ok(m) => status = status_of(&m),
            Err(e) => {
                eprintln!("sidecar-calls: {e}");
                std::process::exit(1);
            }
        }
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!("{status}");
    println!(
        "calls={} p50_ms={:.3} p99_ms={:.3}",
        times.len(),
        bench::percentile(&times, 0.5),
        bench::percentile(&times, 0.99)
    );
}
