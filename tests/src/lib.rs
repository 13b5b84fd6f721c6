//! Helpers for the end-to-end tests in `tests/`: they run against the stack
//! that `scripts/test` starts with the local supervisor (`stack run`: real
//! daprd, wasmtime and MariaDB).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// image-api-grayscale's app port.
pub const GRAYSCALE: &str = "http://127.0.0.1:9005";
/// image-api-classify's app port.
pub const CLASSIFY: &str = "http://127.0.0.1:9006";
/// The web app: the page and the API gateway.
pub const WEB: &str = "http://127.0.0.1:8080";
/// events-service's app port.
pub const EVENTS: &str = "http://127.0.0.1:9007";
/// The `web` app's sidecar, used to call services by Dapr invocation.
pub const DAPR_WEB: &str = "http://127.0.0.1:3506";
/// image-api-grayscale's sidecar.
pub const DAPR_GRAYSCALE: &str = "http://127.0.0.1:3503";

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A sample image from `docs/samples`.
/// An image's width and height (panics if it does not decode).
pub fn image_dims(bytes: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory(bytes).expect("decodes");
    (img.width(), img.height())
}

pub fn sample(name: &str) -> Vec<u8> {
    std::fs::read(root().join("docs/samples").join(name)).expect("sample image")
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Content-Type, if any.
    pub content_type: String,
    /// Retry-After, if any.
    pub retry_after: Option<String>,
    /// Body.
    pub body: Vec<u8>,
}

impl Resp {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The whole body as text (lossy), to search it.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The start of the body as text, for failure messages.
    pub fn text(&self) -> String {
        let end = self.body.len().min(300);
        String::from_utf8_lossy(&self.body[..end]).into_owned()
    }

    /// Asserts the shared error shape `{"error": ..., "code": ...}` with this status and code.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert!(
            self.content_type.starts_with("application/json"),
            "content type {}",
            self.content_type
        );
        let v = self.json();
        assert_eq!(v["code"], code, "{v}");
        assert!(v["error"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn finish(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Resp {
    let mut r = r.expect("request");
    let header = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header("content-type").unwrap_or_default();
    let retry_after = header("retry-after");
    let status = r.status().as_u16();
    let body = r
        .body_mut()
        .with_config()
        .limit(100 << 20)
        .read_to_vec()
        .expect("body");
    Resp {
        status,
        content_type,
        retry_after,
        body,
    }
}

/// GET.
pub fn get(url: &str) -> Resp {
    finish(agent().get(url).call())
}

/// GET that returns `None` when nothing answers.
pub fn try_get(url: &str) -> Option<Resp> {
    agent().get(url).call().ok().map(|r| finish(Ok(r)))
}

/// GET with headers that returns `None` when nothing answers.
pub fn try_get_with(url: &str, headers: &[(&str, &str)]) -> Option<Resp> {
    let mut req = agent().get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.call().ok().map(|r| finish(Ok(r)))
}

/// POST with headers.
pub fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut req = agent().post(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    finish(req.send(body))
}

/// Any method, no body.
pub fn call(method: &str, url: &str) -> Resp {
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .body(())
        .expect("request");
    finish(agent().run(req))
}

/// One HTTP/1.1 request from the local address `from`. Every 127.0.0.0/8
/// address is this machine's on Linux, so each test can be its own client:
/// the host takes the client from the TCP peer and ignores what headers
/// claim. The body is written even if the server answers (and stops
/// reading) first, which is how a 413 looks.
pub fn request_as(
    from: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    try_request_as(from, method, url, headers, body)
        .unwrap_or_else(|| panic!("no HTTP answer from {url}"))
}

/// [`request_as`], `None` when no HTTP answer comes back (refused, reset).
pub fn try_request_as(
    from: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<Resp> {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host_port, path) = match rest.split_once('/') {
        Some((h, p)) => (h, format!("/{p}")),
        None => (rest, "/".to_string()),
    };
    let mut s = connect_from(from, host_port);
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host_port}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    s.write_all(head.as_bytes()).ok()?;
    let _ = s.write_all(body); // may fail once the server has answered
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw)
}

/// POST from the local address `from` (see [`request_as`]).
pub fn post_as(from: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    request_as(from, "POST", url, headers, body)
}

/// GET from the local address `from` (see [`request_as`]).
pub fn get_as(from: &str, url: &str, headers: &[(&str, &str)]) -> Resp {
    request_as(from, "GET", url, headers, b"")
}

/// A TCP connection from the local address `from` to `to` (`ip:port`).
pub fn connect_from(from: &str, to: &str) -> std::net::TcpStream {
    use socket2::{Domain, Socket, Type};
    let from: std::net::IpAddr = from.parse().expect("a local IP");
    let to: std::net::SocketAddr = to.parse().expect("ip:port");
    let socket = Socket::new(Domain::for_address(to), Type::STREAM, None).expect("socket");
    socket
        .bind(&std::net::SocketAddr::new(from, 0).into())
        .unwrap_or_else(|e| panic!("bind {from}: {e}"));
    socket
        .connect_timeout(&to.into(), Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("connect {to}: {e}"));
    let s: std::net::TcpStream = socket.into();
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    s
}

/// A whole HTTP/1.1 answer read to the end (`Connection: close`), or
/// `None` if there is none.
pub fn parse_response(raw: &[u8]) -> Option<Resp> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let mut body = raw[split + 4..].to_vec();
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body);
    }
    Some(Resp {
        status,
        content_type: header("content-type").unwrap_or_default(),
        retry_after: header("retry-after"),
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = std::str::from_utf8(&data[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
            .expect("chunk size");
        if size == 0 {
            return out;
        }
        let start = eol + 2;
        let end = (start + size).min(data.len());
        out.extend_from_slice(&data[start..end]);
        data = data.get(end + 2..).unwrap_or_default();
    }
}

/// The worst-case memory `wasm-host limits` prints for an app's
/// service.toml, MiB: its instances' budget plus its buffers.
pub fn worst_case_mib(app: &str) -> u64 {
    let out = std::process::Command::new(root().join(".cache/bin/wasm-host"))
        .args(["limits", "--manifest"])
        .arg(root().join(app).join("service.toml"))
        .output()
        .expect("wasm-host limits");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("worst_case_mib = "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no worst case in: {text}"))
}

/// POSTs `body` to `url` from each address at once; the answers in order.
pub fn post_from_each(from: Vec<String>, url: &str, body: &[u8]) -> Vec<Resp> {
    let body = std::sync::Arc::new(body.to_vec());
    let handles: Vec<_> = from
        .into_iter()
        .map(|me| {
            let (url, body) = (url.to_string(), body.clone());
            std::thread::spawn(move || post_as(&me, &url, &[], &body))
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("request thread"))
        .collect()
}

/// Polls `f` until it returns `Some`, or panics after `timeout`.
pub fn wait_until<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An app's wasm-host metrics text (its `WASM_HOST_METRICS`, dapr.yaml).
pub fn host_metrics(app: &str) -> String {
    let file = run_file();
    let addr = &file.app(app).expect("app").env["WASM_HOST_METRICS"];
    let r = get(&format!("http://{addr}/metrics"));
    assert_eq!(r.status, 200);
    String::from_utf8(r.body).expect("utf-8")
}

/// The value of the sample whose name and labels are exactly `series`
/// in a metrics text (0 if absent).
pub fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// The events recorded after a point in time. Take one before a test's
/// requests and read only what came after: paging through the whole table
/// instead grows with every run on a long-used machine (benchmarks record
/// tens of thousands) until events-service's read limit answers 429.
/// Ids are MariaDB's AUTO_INCREMENT, so every event stored after the mark
/// has a larger id.
#[derive(Debug, Clone, Copy)]
pub struct EventsSince(pub u64);

impl EventsSince {
    /// Marks now: the newest stored event's id (0 for none).
    pub fn now() -> Self {
        let newest = events_page(1, None);
        Self(newest.first().and_then(|e| e["id"].as_u64()).unwrap_or(0))
    }

    /// Events stored after the mark, newest first.
    pub fn events(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        let mut before: Option<u64> = None;
        loop {
            let page = events_page(1000, before);
            let newer = page
                .iter()
                .take_while(|e| e["id"].as_u64().is_some_and(|id| id > self.0));
            out.extend(newer.cloned());
            // A short page, or one that reached the mark, was the last.
            match page.last().and_then(|e| e["id"].as_u64()) {
                Some(oldest) if oldest > self.0 => before = Some(oldest),
                _ => return out,
            }
        }
    }

    /// How many events stored after the mark have each of these `input_size`s.
    pub fn count_by_size(&self, sizes: &[u64]) -> Vec<usize> {
        let events = self.events();
        sizes
            .iter()
            .map(|s| {
                events
                    .iter()
                    .filter(|e| e["input_size"].as_u64() == Some(*s))
                    .count()
            })
            .collect()
    }
}

/// One page of GET /events (newest first), older than `before` if given.
fn events_page(limit: u32, before: Option<u64>) -> Vec<serde_json::Value> {
    let url = match before {
        Some(b) => format!("{EVENTS}/events?limit={limit}&before={b}"),
        None => format!("{EVENTS}/events?limit={limit}"),
    };
    let r = get(&url);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json().as_array().cloned().expect("array")
}

/// A local client address no other test uses, so rate limits do not
/// interfere: requests come from it with [`post_as`] and [`get_as`].
pub fn client_ip(n: u8) -> String {
    format!("127.0.1.{n}")
}

/// Runs the local supervisor's CLI (`target/release/stack`) on the
/// repository's run file, e.g. `stack(&["stop", "events-service"])`.
pub fn stack(args: &[&str]) -> std::process::Output {
    std::process::Command::new(root().join("target/release/stack"))
        .arg("-f")
        .arg(root().join("dapr.yaml"))
        .args(args)
        .output()
        .expect("run target/release/stack")
}

/// The pid the supervisor recorded for an app's `"daprd"` or `"app"`.
pub fn pid_of(app: &str, what: &str) -> Option<u32> {
    let path = root()
        .join(".data/run")
        .join(app)
        .join(format!("{what}.pid"));
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Whether a process is alive (its /proc entry exists and is not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// The API token of an app's sidecar (`stack run` generates it).
pub fn dapr_token(app: &str) -> String {
    token(app, "dapr-api-token")
}

/// The token an app's sidecar sends it (`APP_API_TOKEN`).
pub fn app_token(app: &str) -> String {
    token(app, "app-api-token")
}

/// One of the tokens `stack run` made for `app`.
fn token(app: &str, which: &str) -> String {
    let path = root().join(".data/tokens").join(app).join(which);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

/// GET through a sidecar's API, with that app's token.
pub fn dapr_get(app: &str, url: &str) -> Resp {
    finish(
        agent()
            .get(url)
            .header("dapr-api-token", dapr_token(app))
            .call(),
    )
}

/// POST through a sidecar's API, with that app's token and these headers.
pub fn dapr_post(app: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let token = dapr_token(app);
    let mut all = vec![("dapr-api-token", token.as_str())];
    all.extend_from_slice(headers);
    post(url, &all, body)
}

/// The repository's run file (`dapr.yaml`), the one list of the services,
/// their ports and commands.
pub fn run_file() -> stack::RunFile {
    let text = std::fs::read_to_string(root().join("dapr.yaml")).expect("dapr.yaml");
    stack::RunFile::parse(&text).expect("a valid run file")
}

/// The app ids of `dapr.yaml`.
pub fn app_ids() -> Vec<String> {
    run_file().apps.into_iter().map(|a| a.app_id).collect()
}

/// `sample(name)` with `extra` zero bytes after its end, which decoders
/// ignore: a success with it records an event of `input_size` equal to its
/// length, so a test can find exactly its own events.
pub fn tagged(name: &str, extra: usize) -> Vec<u8> {
    let mut bytes = sample(name);
    bytes.resize(bytes.len() + extra, 0);
    bytes
}

/// Runs a script of this checkout (`scripts/db stop`, …) and checks it succeeded.
pub fn script(name: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(root().join("scripts").join(name))
        .args(args)
        .output()
        .expect("script");
    assert!(out.status.success(), "scripts/{name} {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Adds a message to a topic straight on the broker (Redis Streams), as
/// Dapr's Redis pub/sub stores one: field `data`, a CloudEvent of
/// `content_type` carrying `data`. No app may publish to `events` through
/// Dapr (only the outbox does), so this is how a test plays a broken
/// publisher.
pub fn broker_publish(topic: &str, content_type: &str, data: &[u8]) {
    let data = match serde_json::from_slice::<serde_json::Value>(data) {
        Ok(v) if content_type == "application/json" => v,
        _ => serde_json::Value::String(String::from_utf8_lossy(data).into_owned()),
    };
    let event = serde_json::json!({
        "specversion": "1.0", "id": format!("test-{}", std::process::id()),
        "source": "e2e", "type": "com.dapr.event.sent", "topic": topic,
        "pubsubname": "pubsub", "datacontenttype": content_type, "data": data,
    });
    broker_cli(&["XADD", topic, "*", "data", &event.to_string()]);
}

/// Runs one command on the stack's broker (redis-cli, the password from
/// set-up through the environment) and returns its answer.
pub fn broker_cli(args: &[&str]) -> String {
    try_broker_cli(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// [`broker_cli`] that answers an error instead of panicking (for `Drop`).
pub fn try_broker_cli(args: &[&str]) -> Result<String, String> {
    let password = std::fs::read_to_string(root().join(".data/broker-password"))
        .map_err(|e| format!("broker password: {e}"))?;
    let port = std::env::var("BROKER_PORT").unwrap_or_else(|_| "6381".into());
    let out = std::process::Command::new("redis-cli")
        .args(["--no-auth-warning", "-h", "127.0.0.1", "-p", &port])
        .args(args)
        .env("REDISCLI_AUTH", password.trim())
        .output()
        .map_err(|e| format!("redis-cli: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() || text.starts_with("ERR") {
        return Err(format!("{out:?}"));
    }
    Ok(text)
}

/// The sum of daprd metric `name` of `app`'s sidecar over the series whose
/// labels contain every one of `labels` (e.g. `process_status="retry"`).
pub fn sidecar_metric(app: &str, name: &str, labels: &[&str]) -> u64 {
    let port = run_file().app(app).expect("app in dapr.yaml").metrics_port;
    let text = get(&format!("http://127.0.0.1:{port}/metrics")).body_text();
    stack::metric_sum(&text, name, |l| labels.iter().all(|x| l.contains(x))) as u64
}
