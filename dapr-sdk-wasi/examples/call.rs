//! A wasi:cli command that sends one request to its sidecar and prints the
//! answer: `call METHOD PATH [BODY]` writes the status on the first line and
//! the body after it. The end-to-end tests run it under wasm-host with a
//! service's manifest, to show which Dapr calls the host lets through
//! (tests/tests/rights.rs). Built and precompiled by scripts/test.

#[cfg(target_os = "wasi")]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (method, path, body) = match args.as_slice() {
        [m, p] => (m.as_str(), p.clone(), ""),
        [m, p, b] => (m.as_str(), p.clone(), b.as_str()),
        _ => {
            eprintln!("usage: call METHOD PATH [BODY]");
            std::process::exit(2);
        }
    };
    let Ok(method) = http::Method::from_bytes(method.as_bytes()) else {
        eprintln!("call: `{method}` is not an HTTP method");
        std::process::exit(2);
    };
    let mut req = dapr::request::DaprRequest::new(method, path);
    req.body = body.as_bytes().to_vec();
    let answer = wstd::runtime::block_on(async { dapr::Client::from_env()?.send(req).await });
    match answer {
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
