//! A closed-loop HTTP load generator: CONCURRENCY keep-alive connections,
//! each sending POST requests back to back for SECONDS.
//! Usage: load URL FILE CONCURRENCY SECONDS [--rotate-client]
//! Prints one line: `rps=<f> p50_ms=<f> p99_ms=<f> ok=<n> errors=<n>`.
//! `--rotate-client` makes every 8 requests come from a new loopback source
//! address (127.16.0.0/12 and up: all local on Linux), so a per-client rate
//! limit (10 per window by default) does not throttle the benchmark. The
//! host keys clients on the TCP peer; headers cannot pose as another client.

use bench::read_message;
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: load URL FILE CONCURRENCY SECONDS [--rotate-client]");
        std::process::exit(2);
    }
    let url = args[1]
        .strip_prefix("http://")
        .unwrap_or(&args[1])
        .to_string();
    let (host, path) = url
        .split_once('/')
        .map(|(h, p)| (h.to_string(), format!("/{p}")))
        .unwrap_or((url, "/".into()));
    let body = std::fs::read(&args[2]).unwrap_or_else(|e| panic!("{}: {e}", args[2]));
    let concurrency: usize = args[3].parse().unwrap_or(1);
    let seconds: u64 = args[4].parse().unwrap_or(10);
    let rotate = args.iter().any(|a| a == "--rotate-client");
    let deadline = Instant::now() + Duration::from_secs(seconds);

    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let (host, path, body) = (host.clone(), path.clone(), body.clone());
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut errors = 0u64;
                let mut n: u32 = 0;
                let connect = |client: u32| {
                    let s = if rotate {
                        let [_, _, c, d] = (client + 1).to_be_bytes();
                        let from = std::net::Ipv4Addr::new(127, 16 + (w as u8 & 15), c, d);
                        connect_from(from, &host)
                    } else {
                        TcpStream::connect(&host).expect("connect")
                    };
                    s.set_nodelay(true).ok();
                    (s.try_clone().expect("clone"), BufReader::new(s))
                };
                let (mut wr, mut rd) = connect(0);
                while Instant::now() < deadline {
                    n = n.wrapping_add(1);
                    if rotate && n.is_multiple_of(8) {
                        (wr, rd) = connect(n / 8);
                    }
                    let head = format!(
                        "POST {path} HTTP/1.1\r\nhost: {host}\r\naccept: image/png\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    );
                    let t = Instant::now();
                    let ok = wr.write_all(head.as_bytes()).and_then(|_| wr.write_all(&body)).is_ok()
                        && matches!(read_message(&mut rd), Ok(Some(m)) if m.start.contains(" 200 "));
                    if ok {
                        lat.push(t.elapsed());
                    } else {
                        errors += 1;
                        (wr, rd) = connect(n / 8);
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut lat = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (l, e) = w.join().expect("worker");
        lat.extend(l);
        errors += e;
    }
    let mut ms: Vec<f64> = lat.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    println!(
        "rps={:.1} p50_ms={:.2} p99_ms={:.2} ok={} errors={}",
        lat.len() as f64 / seconds as f64,
        bench::percentile(&ms, 0.50),
        bench::percentile(&ms, 0.99),
        lat.len(),
        errors
    );
}

/// A connection from a chosen local address.
fn connect_from(from: std::net::Ipv4Addr, to: &str) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let to: std::net::SocketAddr = to.parse().expect("ip:port");
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    s.bind(&std::net::SocketAddr::from((from, 0)).into())
        .expect("bind");
    s.connect(&to.into()).expect("connect");
    s.into()
}
