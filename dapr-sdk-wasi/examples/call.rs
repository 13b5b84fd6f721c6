//! A wasi:cli command that sends one request to its sidecar and prints the
//! answer: `call METHOD PATH [BODY]` writes the status on the first line and
//! the body after it. The end-to-end tests run it under wasm-host with a
//! service's manifest, to show which Dapr calls the host lets through
//! (tests/tests/rights.rs). Built and precompiled by scripts/test.
//!
//! `call --repeat N METHOD PATH [BODY]` sends it N times, one after the
//! other on the host's kept-alive connection, and prints the last status and
//! `calls=N p50_ms=… p99_ms=…`: scripts/bench's cost of one sidecar call
//! through wasm-host, beside `sidecar-calls` (bench/), the same natively.

#[cfg(target_os = "wasi")]
fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let repeat = match args.as_slice() {
        [flag, n, ..] if flag == "--repeat" => {
            let n = n.parse::<usize>().unwrap_or(0).max(1);
            args.drain(..2);
            Some(n)
        }
        _ => None,
    };
    let (method, path, body) = match args.as_slice() {
        [m, p] => (m.as_str(), p.clone(), ""),
        [m, p, b] => (m.as_str(), p.clone(), b.as_str()),
        _ => {
            eprintln!("usage: call [--repeat N] METHOD PATH [BODY]");
            std::process::exit(2);
        }
    };
    let Ok(method) = http::Method::from_bytes(method.as_bytes()) else {
        eprintln!("call: `{method}` is not an HTTP method");
        std::process::exit(2);
    };
    let mut req = dapr::request::DaprRequest::new(method, path);
    req.body = body.as_bytes().to_vec();
    let mut times = Vec::new();
    let answer = wstd::runtime::block_on(async {
        let client = dapr::Client::from_env()?;
        let mut last = None;
        for _ in 0..repeat.unwrap_or(1) {
            let started = std::time::Instant::now();
            last = Some(client.send(req.clone()).await?);
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
        last.ok_or_else(|| dapr::Error::Config("no call made".into()))
    });
    match answer {
        Ok(r) if repeat.is_some() => {
            times.sort_by(f64::total_cmp);
            let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
            println!("{}", r.status);
            println!(
                "calls={} p50_ms={:.3} p99_ms={:.3}",
                times.len(),
                at(0.5),
                at(0.99)
            );
        }
        Ok(r) => {
            println!("{}", r.status);
            println!("{}", String::from_utf8_lossy(&r.body));
        }
        Err(e) => {
            // No answer at all (the host refused the connection, say).
            println!("0");
            println!("{e}");
        }
    }
}

#[cfg(not(target_os = "wasi"))]
fn main() {}
