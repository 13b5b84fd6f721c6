//! Steady load for the cluster test (scripts/k8s/test), and its audit.
//!
//! `steady-load run URL FILE OUT --from A.B --events URL [--rate R] [--concurrency C] [--per-client K]`
//! POSTs FILE to URL at about R requests a second from C connections until
//! the file OUT.stop exists. Each request carries FILE plus a unique number
//! of zero bytes, which decoders ignore, so its event (`input_size`) is its
//! own. Every K requests come from a new source address in A.B.0.0/16 (all
//! local on the test cluster's node), so the per-client rate limit does not
//! throttle the load. Writes OUT: JSON with the count of each status, the
//! sizes answered 200 and the newest event (events API URL) before it began.
//!
//! `steady-load check URL OUT --from A.B --op OP` reads every event through
//! URL (`/api/events`, paged, each page from a new source address) and
//! checks that every size OUT lists as answered 200 was recorded exactly
//! once as an event of `op_type` OP, waiting up to `--within S` seconds for
//! late ones; `--allow 200,503` also fails it on any other answer.
//! Prints what it found; exits 1 if any was lost or recorded twice.

use bench::read_message;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: steady-load run URL FILE OUT --from A.B --events URL [--rate R] [--concurrency C] [--per-client K]\n       steady-load check URL OUT --from A.B --op OP [--within S] [--allow S,S]";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") if args.len() >= 4 => {
            run(&args[1], Path::new(&args[2]), Path::new(&args[3]), &args)
        }
        Some("check") if args.len() >= 3 => check(&args[1], Path::new(&args[2]), &args),
        _ => Err(USAGE.to_string()),
    };
    if let Err(e) = result {
        eprintln!("steady-load: {e}");
        std::process::exit(if e == USAGE { 2 } else { 1 });
    }
}

/// The value after `--name`, parsed, or `default`.
fn opt<T: std::str::FromStr>(args: &[String], name: &str, default: Option<T>) -> Result<T, String> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{name}: a value is needed")),
        None => default.ok_or_else(|| USAGE.to_string()),
    }
}

/// Source addresses A.B.x.y, handed out in turn (never A.B.0.0).
struct Sources {
    a: u8,
    b: u8,
    next: AtomicU32,
}

impl Sources {
    fn new(args: &[String], first: u32) -> Result<Self, String> {
        let from: String = opt(args, "--from", None)?;
        let (a, b) = from
            .split_once('.')
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
            .ok_or("--from: two octets, like 10.78")?;
        Ok(Self {
            a,
            b,
            next: AtomicU32::new(first),
        })
    }
    fn take(&self) -> Ipv4Addr {
        let n = self.next.fetch_add(1, Ordering::Relaxed) % 65_535 + 1;
        Ipv4Addr::new(self.a, self.b, (n >> 8) as u8, n as u8)
    }
}

/// host:port and path of an `http://` URL.
fn split_url(url: &str) -> Result<(SocketAddr, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("URL: http://ip:port/path")?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let addr = host
        .parse()
        .map_err(|_| format!("URL: {host} is not ip:port"))?;
    Ok((addr, format!("/{path}")))
}

type Conn = (TcpStream, BufReader<TcpStream>);

fn connect(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<Conn> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.bind(&SocketAddr::from((from, 0)).into())?;
    s.connect_timeout(&to.into(), Duration::from_secs(10))?;
    let s: TcpStream = s.into();
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    Ok((s.try_clone()?, BufReader::new(s)))
}

/// One request on `conn`: the status, or None if the connection failed.
fn send(conn: &mut Conn, head: &str, body: &[u8]) -> Option<(u16, Vec<u8>)> {
    conn.0.write_all(head.as_bytes()).ok()?;
    conn.0.write_all(body).ok()?;
    let m = read_message(&mut conn.1).ok()??;
    let status = m.start.split(' ').nth(1)?.parse().ok()?;
    Some((status, m.body))
}

#[derive(Default)]
struct Tally {
    status: BTreeMap<String, u64>,
    ok_sizes: Vec<u64>,
}

fn run(url: &str, file: &Path, out: &Path, args: &[String]) -> Result<(), String> {
    let (to, path) = split_url(url)?;
    let base = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let rate: f64 = opt(args, "--rate", Some(20.0))?;
    let concurrency: usize = opt(args, "--concurrency", Some(4))?;
    let per_client: u32 = opt(args, "--per-client", Some(3))?;
    let first = first_tag(out);
    // A source per client, after every earlier run's: a client that a
    // run used a minute ago would find its window partly spent.
    let sources = Arc::new(Sources::new(args, first as u32)?);
    let stop: PathBuf = format!("{}.stop", out.display()).into();
    // Events already stored are not this run's, whatever their size.
    let events: String = opt(args, "--events", None)?;
    let (events_to, events_path) = split_url(&events)?;
    let after_id = newest_event(events_to, &events_path, sources.take())?;
    let tag = Arc::new(AtomicU64::new(first));
    let content_type = if file.extension().is_some_and(|e| e == "png") {
        "image/png"
    } else {
        "image/jpeg"
    };
    let interval = Duration::from_secs_f64(concurrency as f64 / rate.max(0.1));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let (base, path, sources, stop, tag) =
                (base.clone(), path.clone(), sources.clone(), stop.clone(), tag.clone());
            let content_type = content_type.to_string();
            std::thread::spawn(move || {
                let mut tally = Tally::default();
                let mut next = Instant::now() + interval.mul_f64(w as f64 / concurrency as f64);
                let (mut conn, mut used) = (None, 0);
                while !stop.exists() {
                    std::thread::sleep(next.saturating_duration_since(Instant::now()));
                    next = (next + interval).max(Instant::now() - interval);
                    if used == per_client {
                        (conn, used) = (None, 0);
                    }
                    let c = match conn.take() {
                        Some(c) => c,
                        None => match connect(sources.take(), to) {
                            Ok(c) => c,
                            Err(_) => {
                                *tally.status.entry("connect".into()).or_default() += 1;
                                continue;
                            }
                        },
                    };
                    let mut c = c;
                    let extra = tag.fetch_add(1, Ordering::Relaxed);
                    let size = base.len() as u64 + extra;
                    let head = format!(
                        "POST {path} HTTP/1.1\r\nhost: {to}\r\naccept: image/png\r\ncontent-type: {content_type}\r\ncontent-length: {size}\r\n\r\n"
                    );
                    let mut body = base.clone();
                    body.resize(size as usize, 0);
                    used += 1;
                    match send(&mut c, &head, &body) {
                        Some((status, _)) => {
                            *tally.status.entry(status.to_string()).or_default() += 1;
                            if status == 200 {
                                tally.ok_sizes.push(size);
                            }
                            conn = Some(c);
                        }
                        None => *tally.status.entry("io".into()).or_default() += 1,
                    }
                }
                tally
            })
        })
        .collect();
    let mut all = Tally::default();
    for w in workers {
        let t = w.join().map_err(|_| "a worker panicked")?;
        for (k, v) in t.status {
            *all.status.entry(k).or_default() += v;
        }
        all.ok_sizes.extend(t.ok_sizes);
    }
    let secs = started.elapsed().as_secs_f64();
    let total: u64 = all.status.values().sum();
    println!(
        "{total} requests in {secs:.0} s ({:.1}/s), by status: {:?}",
        total as f64 / secs,
        all.status
    );
    // Sources are never fewer than tags: the larger is the last used.
    let last_tag =
        (tag.load(Ordering::Relaxed) - 1).max(u64::from(sources.next.load(Ordering::Relaxed)) - 1);
    let report = serde_json::json!({
        "status": all.status, "ok_sizes": all.ok_sizes, "last_tag": last_tag, "after_id": after_id,
    });
    std::fs::write(out, report.to_string()).map_err(|e| format!("{}: {e}", out.display()))
}

/// One page of the events API (newest first), read from `from`.
fn events_page(
    to: SocketAddr,
    path: &str,
    from: Ipv4Addr,
) -> Result<Vec<serde_json::Value>, String> {
    let head = format!("GET {path} HTTP/1.1\r\nhost: {to}\r\nconnection: close\r\n\r\n");
    let mut conn = connect(from, to).map_err(|e| format!("{to}: {e}"))?;
    let (status, body) = send(&mut conn, &head, b"").ok_or("reading events: no answer")?;
    if status != 200 {
        return Err(format!(
            "GET {path}: {status} {}",
            String::from_utf8_lossy(&body)
        ));
    }
    serde_json::from_slice(&body).map_err(|e| format!("GET {path}: {e}"))
}

/// The id of the newest stored event (0 if none).
fn newest_event(to: SocketAddr, path: &str, from: Ipv4Addr) -> Result<u64, String> {
    let page = events_page(to, &format!("{path}?limit=1"), from)?;
    Ok(page.first().and_then(|e| e["id"].as_u64()).unwrap_or(0))
}

/// One past the last tag of the reports beside `out` (earlier runs), so that
/// every run's sizes are its own.
fn first_tag(out: &Path) -> u64 {
    let dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let reports = std::fs::read_dir(dir).into_iter().flatten().flatten();
    reports
        .filter(|e| e.path().extension().is_some_and(|x| x == "json") && e.path() != out)
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|t| serde_json::from_str::<serde_json::Value>(&t).ok()?["last_tag"].as_u64())
        .max()
        .unwrap_or(0)
        + 1
}

fn check(url: &str, out: &Path, args: &[String]) -> Result<(), String> {
    let (to, path) = split_url(url)?;
    // Pages from clients of their own (the pid keeps runs apart).
    let sources = Sources::new(args, std::process::id() % 60_000 + 1)?;
    let op: String = opt(args, "--op", None)?;
    let within: u64 = opt(args, "--within", Some(0))?;
    let allow: String = opt(args, "--allow", Some(String::new()))?;
    let text = std::fs::read_to_string(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let report: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    println!("answers by status: {}", report["status"]);
    let allowed: Vec<&str> = allow.split(',').collect();
    let statuses = report["status"].as_object().cloned().unwrap_or_default();
    let other: Vec<&String> = statuses
        .keys()
        .filter(|k| !allow.is_empty() && !allowed.contains(&k.as_str()))
        .collect();
    let sent: Vec<u64> = report["ok_sizes"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_u64()).collect())
        .unwrap_or_default();
    let after_id = report["after_id"].as_u64().unwrap_or(0);
    // Deliveries cut off by a restart come back after the broker's
    // processing timeout: lost ones may still arrive within `within` s.
    let deadline = Instant::now() + Duration::from_secs(within);
    loop {
        let seen = recorded(to, &path, &op, &sources, &sent, after_id)?;
        let lost = sent.iter().filter(|s| !seen.contains_key(s)).count();
        let twice = sent
            .iter()
            .filter(|s| seen.get(s).is_some_and(|n| *n > 1))
            .count();
        if twice > 0 || lost == 0 || Instant::now() >= deadline {
            println!(
                "{} answered 200: {lost} not recorded, {twice} recorded more than once",
                sent.len()
            );
            // Both verdicts, whichever fails.
            return match (lost + twice > 0, other.is_empty()) {
                (false, true) => Ok(()),
                (true, true) => Err("events lost or duplicated".into()),
                (false, false) => Err(format!("answers other than {allow}: {other:?}")),
                (true, false) => Err(format!(
                    "events lost or duplicated; answers other than {allow}: {other:?}"
                )),
            };
        }
        std::thread::sleep(Duration::from_secs(5));
    }
}

/// How many events of `op` newer than `after_id` each size in `sent`'s
/// range has, from the pages of the events API.
fn recorded(
    to: SocketAddr,
    path: &str,
    op: &str,
    sources: &Sources,
    sent: &[u64],
    after_id: u64,
) -> Result<HashMap<u64, u32>, String> {
    let (min, max) = (
        sent.iter().min().copied().unwrap_or(0),
        sent.iter().max().copied().unwrap_or(0),
    );
    let mut seen: HashMap<u64, u32> = HashMap::new();
    let mut before: Option<u64> = None;
    loop {
        let page_path = match before {
            Some(id) => format!("{path}?limit=1000&before={id}"),
            None => format!("{path}?limit=1000"),
        };
        let page = events_page(to, &page_path, sources.take())?;
        let newer = page
            .iter()
            .filter(|e| e["id"].as_u64().is_some_and(|id| id > after_id));
        for e in newer.filter(|e| e["op_type"].as_str() == Some(op)) {
            if let Some(size) = e["input_size"].as_u64().filter(|s| (min..=max).contains(s)) {
                *seen.entry(size).or_default() += 1;
            }
        }
        match page.last().and_then(|e| e["id"].as_u64()) {
            Some(id) if page.len() == 1000 && id > after_id => before = Some(id),
            _ => return Ok(seen),
        }
    }
}
