//! The host's own spans: one per request it serves, sent to Zipkin's
//! `/api/v2/spans` in the background, in batches, through a bounded queue.
//! A backend that is down or slow never slows or fails a request: spans
//! that do not fit, or whose batch fails, are dropped and counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One finished span, Zipkin's v2 model.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub id: String,
    /// The caller's span, if it sent one.
    pub parent_id: Option<String>,
    /// What the span is (Zipkin's `kind`).
    pub kind: Kind,
    /// `METHOD /path`, or the component's own name for a step.
    pub name: String,
    /// Start, microseconds since the epoch.
    pub timestamp_us: u64,
    /// Microseconds.
    pub duration_us: u64,
    /// Tags, in order.
    pub tags: Vec<(String, String)>,
}

/// Zipkin's span kinds the host writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A request the host served.
    Server,
    /// A request a component sent.
    Client,
    /// A step inside a component (its own span, through `wasm-host:observe`).
    Local,
}

/// Microseconds since the epoch, now.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A JSON string literal (the host writes its few JSON bodies by hand).
pub fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A batch as Zipkin's JSON v2 list, every span of `service`.
pub fn to_json(service: &str, spans: &[Span]) -> String {
    let items: Vec<String> = spans
        .iter()
        .map(|s| {
            let parent = s
                .parent_id
                .as_deref()
                .map(|p| format!("\"parentId\":{},", json_str(p)))
                .unwrap_or_default();
            let tags: Vec<String> = s
                .tags
                .iter()
                .map(|(k, v)| format!("{}:{}", json_str(k), json_str(v)))
                .collect();
            let kind = match s.kind {
                Kind::Server => "\"kind\":\"SERVER\",",
                Kind::Client => "\"kind\":\"CLIENT\",",
                Kind::Local => "",
            };
            format!(
                "{{\"traceId\":{},{parent}\"id\":{},{kind}\"name\":{},\"timestamp\":{},\"duration\":{},\"localEndpoint\":{{\"serviceName\":{}}},\"tags\":{{{}}}}}",
                json_str(&s.trace_id),
                json_str(&s.id),
                json_str(&s.name),
                s.timestamp_us,
                s.duration_us.max(1),
                json_str(service),
                tags.join(",")
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

/// Where spans go, and how many were dropped.
#[derive(Clone)]
pub struct Exporter {
    queue: tokio::sync::mpsc::Sender<Span>,
    /// Spans not delivered: queue full, or their batch failed.
    pub dropped: Arc<AtomicU64>,
}

/// Spans waiting at most; past it a new span is dropped.
const QUEUE: usize = 4096;
/// Spans per request to the backend.
const BATCH: usize = 256;
/// How long a span waits for its batch to fill.
const LINGER: Duration = Duration::from_millis(500);
/// A batch's whole exchange with the backend.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

impl Exporter {
    /// Starts the background sender to Zipkin's `url`
    /// (`http://host:port/api/v2/spans`) for `service`; call inside the
    /// tokio runtime. `None` if `url` is not such a URL.
    pub fn start(url: &str, service: String) -> Option<Self> {
        let (addr, path) = split_url(url)?;
        let (queue, mut rx) = tokio::sync::mpsc::channel::<Span>(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let lost = dropped.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while let Some(first) = rx.recv().await {
                batch.push(first);
                let until = tokio::time::Instant::now() + LINGER;
                while batch.len() < BATCH {
                    match tokio::time::timeout_at(until, rx.recv()).await {
                        Ok(Some(s)) => batch.push(s),
                        Ok(None) | Err(_) => break,
                    }
                }
                let body = to_json(&service, &batch);
                let sent = tokio::time::timeout(SEND_TIMEOUT, post(&addr, &path, &body)).await;
                if !matches!(sent, Ok(Ok(()))) {
                    lost.fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
                batch.clear();
            }
        });
        Some(Self { queue, dropped })
    }

    /// Queues a span; drops it if the queue is full.
    pub fn record(&self, span: Span) {
        if self.queue.try_send(span).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// `http://host:port/path` as (`host:port`, `/path`).
pub fn split_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/api/v2/spans"),
    };
    let (host, port) = authority.rsplit_once(':')?;
    let ok = !host.is_empty()
        && port.parse::<u16>().is_ok_and(|p| p != 0)
        && !path.contains(|c: char| c.is_whitespace() || c.is_control());
    ok.then(|| (authority.to_string(), path.to_string()))
}

/// One HTTP/1.1 POST of a JSON batch; Ok on a 2xx.
async fn post(addr: &str, path: &str, body: &str) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(body.as_bytes()).await?;
    let mut status = [0u8; 12];
    s.read_exact(&mut status).await?;
    if status.starts_with(b"HTTP/1.1 2") || status.starts_with(b"HTTP/1.0 2") {
        Ok(())
    } else {
        Err(std::io::Error::other("the backend refused the spans"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span_of_test() -> Span {
        Span {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            id: "00f067aa0ba902b7".into(),
            parent_id: None,
            kind: Kind::Server,
            name: "GET /".into(),
            timestamp_us: now_us(),
            duration_us: 1,
            tags: vec![],
        }
    }

    #[test]
    fn spans_are_zipkin_v2_json() {
        let span = Span {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            id: "00f067aa0ba902b7".into(),
            parent_id: Some("1111111111111111".into()),
            kind: Kind::Server,
            name: "POST /grayscale".into(),
            timestamp_us: 1_700_000_000_000_000,
            duration_us: 1500,
            tags: vec![
                ("http.status_code".into(), "200".into()),
                ("x".into(), "a\"b".into()),
            ],
        };
        assert_eq!(
            to_json("image-api-grayscale", &[span]),
            "[{\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"parentId\":\"1111111111111111\",\
             \"id\":\"00f067aa0ba902b7\",\"kind\":\"SERVER\",\"name\":\"POST /grayscale\",\
             \"timestamp\":1700000000000000,\"duration\":1500,\
             \"localEndpoint\":{\"serviceName\":\"image-api-grayscale\"},\
             \"tags\":{\"http.status_code\":\"200\",\"x\":\"a\\\"b\"}}]"
        );
        assert_eq!(to_json("s", &[]), "[]");
        let step = Span {
            kind: Kind::Local,
            name: "db.insert".into(),
            tags: vec![],
            ..span_of_test()
        };
        assert!(
            !to_json("s", &[step]).contains("kind"),
            "a local span has no kind"
        );
    }

    #[test]
    fn the_backend_is_an_http_url() {
        assert_eq!(
            split_url("http://127.0.0.1:9411/api/v2/spans"),
            Some(("127.0.0.1:9411".into(), "/api/v2/spans".into()))
        );
        assert_eq!(
            split_url("http://zipkin.obs.svc:9411"),
            Some(("zipkin.obs.svc:9411".into(), "/api/v2/spans".into()))
        );
        for bad in [
            "127.0.0.1:9411",
            "https://z:9411/x",
            "http://z/x",
            "http://:9411/",
            "http://z:0/",
        ] {
            assert_eq!(split_url(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn a_dead_backend_costs_dropped_spans_not_time() {
        // Nothing listens on port 9 here: every batch fails, fast.
        let e = Exporter::start("http://127.0.0.1:9/api/v2/spans", "s".into()).expect("a URL");
        let span = span_of_test();
        for _ in 0..QUEUE + 10 {
            e.record(span.clone());
        }
        assert!(
            e.dropped.load(Ordering::Relaxed) >= 10,
            "the overflow is counted"
        );
        let total = (QUEUE + 10) as u64;
        for _ in 0..200 {
            if e.dropped.load(Ordering::Relaxed) == total {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "failed batches are counted: {}",
            e.dropped.load(Ordering::Relaxed)
        );
    }
}
