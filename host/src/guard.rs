//! What the host checks before a component runs: connection caps per client
//! and in total, the request head (`Host`, `Expect`), and a limit on repeated
//! log lines. Pure and unit-tested; `server.rs` applies them.

use http::request::Parts;
use http::{StatusCode, Version};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Why the host answers a request itself, without a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Host`, several, or one that is not an authority.
    BadHost,
    /// An `Expect` other than `100-continue`.
    BadExpect,
    /// The body is over `max_body_bytes`.
    BodyTooLarge,
    /// The body stalled or took too long.
    BodyTimeout,
    /// The body could not be read (the client broke it off or sent garbage).
    BodyBroken,
    /// No room: buffered bytes, instances or the queue.
    Busy,
    /// The component's answer is over `max_answer_bytes`.
    AnswerTooLarge,
    /// The component did not answer in time.
    Timeout,
    /// The component trapped or could not be instantiated.
    Internal,
    /// The host is stopping.
    Stopping,
    /// Over the client's request rate (`client_rate_per_sec`); retry after
    /// this many seconds.
    RateLimited(u32),
}

impl Refusal {
    /// Status, stable code and message of the JSON answer.
    pub fn describe(self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::BadHost => (
                StatusCode::BAD_REQUEST,
                "bad_request",
                "a request needs one valid Host header",
            ),
            Self::BadExpect => (
                StatusCode::EXPECTATION_FAILED,
                "expectation_failed",
                "only Expect: 100-continue is supported",
            ),
            Self::BodyTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is over this service's limit",
            ),
            Self::BodyTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the request body arrived too slowly",
            ),
            Self::BodyBroken => (
                StatusCode::BAD_REQUEST,
                "bad_request",
                "the request body could not be read",
            ),
            Self::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the service is busy; retry later",
            ),
            Self::AnswerTooLarge => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            ),
            Self::Timeout => (
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                "the service did not answer in time",
            ),
            Self::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            ),
            Self::Stopping => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the service is stopping",
            ),
            Self::RateLimited(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests from this client; retry later",
            ),
        }
    }

    /// Seconds for `Retry-After`, where retrying later can help.
    pub fn retry_after(self) -> Option<u32> {
        match self {
            Self::Busy | Self::Stopping => Some(1),
            Self::RateLimited(secs) => Some(secs),
            _ => None,
        }
    }

    /// Whether the connection must close after the answer: the request's
    /// body is not (or not wholly) read, or the client is misbehaving.
    pub fn closes(self) -> bool {
        !matches!(
            self,
            Self::AnswerTooLarge
                | Self::Timeout
                | Self::Internal
                | Self::Busy
                | Self::RateLimited(_)
        )
    }

    /// The answer's body: `{"error": ..., "code": ...}`.
    pub fn json(self) -> String {
        let (_, code, message) = self.describe();
        format!("{{\"error\":\"{message}\",\"code\":\"{code}\"}}")
    }
}

/// Checks what must hold before anything else is done with a request:
/// exactly one `Host` that parses as an authority (HTTP/1.0 included), or an
/// absolute-form target; no `Expect` but `100-continue`.
pub fn check_head(head: &Parts) -> Result<(), Refusal> {
    let mut hosts = head.headers.get_all(http::header::HOST).iter();
    let host_ok = match (hosts.next(), hosts.next()) {
        (Some(h), None) => h
            .to_str()
            .ok()
            .filter(|h| !h.is_empty())
            .is_some_and(|h| h.parse::<http::uri::Authority>().is_ok()),
        (None, _) => head.uri.authority().is_some(),
        (Some(_), Some(_)) => false,
    };
    if !host_ok {
        return Err(Refusal::BadHost);
    }
    for expect in head.headers.get_all(http::header::EXPECT) {
        let ok = head.version >= Version::HTTP_11
            && expect.as_bytes().eq_ignore_ascii_case(b"100-continue");
        if !ok {
            return Err(Refusal::BadExpect);
        }
    }
    Ok(())
}

/// Caps on open connections, per client address and in total.
#[derive(Debug)]
pub struct ConnLimiter {
    total: u32,
    per_client: u32,
    open: Mutex<(u32, HashMap<IpAddr, u32>)>,
}

/// One open connection; dropping it frees its place.
#[derive(Debug)]
pub struct ConnGuard {
    limiter: Arc<ConnLimiter>,
    client: IpAddr,
}

impl ConnLimiter {
    /// At most `total` connections, `per_client` of them from one address.
    pub fn new(total: u32, per_client: u32) -> Arc<Self> {
        Arc::new(Self {
            total,
            per_client,
            open: Mutex::default(),
        })
    }

    /// A place for a new connection from `client`, or `None` over a cap.
    pub fn try_open(self: &Arc<Self>, client: IpAddr) -> Option<ConnGuard> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let (total, by_client) = &mut *open;
        let mine = by_client.get(&client).copied().unwrap_or(0);
        if *total >= self.total || mine >= self.per_client {
            return None;
        }
        *total += 1;
        by_client.insert(client, mine + 1);
        Some(ConnGuard {
            limiter: self.clone(),
            client,
        })
    }

    /// Open connections: in total, and from `client`.
    pub fn open(&self, client: IpAddr) -> (u32, u32) {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        (open.0, open.1.get(&client).copied().unwrap_or(0))
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut open = self
            .limiter
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (total, by_client) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(n) = by_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                by_client.remove(&self.client);
            }
        }
    }
}

/// A request rate per client: a token bucket of `burst` requests refilled
/// at `rate` a second, per client address, in this process. It bounds what
/// cheap routes cost (a page of events, a schema check), where a shared
/// limit through the state store would cost more than the request.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

/// Clients remembered at most; past it, those with a full bucket (idle
/// long enough to have refilled) are forgotten.
const MAX_TRACKED_CLIENTS: usize = 10_000;

impl RateLimiter {
    /// `rate` requests a second, `burst` at once.
    pub fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::default(),
        }
    }

    /// Takes one request for `client` at `now`, or says in how many seconds
    /// one would be allowed.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), u32> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_TRACKED_CLIENTS && !buckets.contains_key(&client) {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets.entry(client).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.rate).ceil().max(1.0) as u32)
        }
    }
}

/// What to do with one log line of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogVerdict {
    /// Write it; `suppressed` lines of its kind were dropped before it.
    Write {
        /// Lines dropped since the last one written.
        suppressed: u64,
    },
    /// Drop it.
    Drop,
}

/// At most `burst` lines of each kind per `window`: a client that makes the
/// host log cannot grow the logs without bound.
#[derive(Debug)]
pub struct LogLimiter {
    window: Duration,
    burst: u32,
    kinds: Mutex<HashMap<&'static str, (Instant, u32, u64)>>,
}

impl LogLimiter {
    /// `burst` lines per `window`, per kind.
    pub fn new(window: Duration, burst: u32) -> Self {
        Self {
            window,
            burst,
            kinds: Mutex::default(),
        }
    }

    /// Whether a line of `kind` may be written at `now`.
    pub fn check(&self, kind: &'static str, now: Instant) -> LogVerdict {
        let mut kinds = self.kinds.lock().unwrap_or_else(PoisonError::into_inner);
        let (start, written, dropped) = kinds.entry(kind).or_insert((now, 0, 0));
        if now.duration_since(*start) >= self.window {
            *start = now;
            *written = 0;
        }
        if *written >= self.burst {
            *dropped += 1;
            return LogVerdict::Drop;
        }
        *written += 1;
        LogVerdict::Write {
            suppressed: std::mem::take(dropped),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &[(&str, &str)], version: Version, uri: &str) -> Parts {
        let mut b = http::Request::builder().uri(uri).version(version);
        for (k, v) in raw {
            b = b.header(*k, *v);
        }
        b.body(()).expect("request").into_parts().0
    }

    #[test]
    fn a_request_needs_one_valid_host() {
        let v11 = Version::HTTP_11;
        assert_eq!(check_head(&head(&[("host", "a:80")], v11, "/")), Ok(()));
        assert_eq!(
            check_head(&head(&[], v11, "http://a:80/x")),
            Ok(()),
            "absolute form"
        );
        for (headers, version) in [
            (vec![], v11),
            (vec![], Version::HTTP_10),
            (vec![("host", "")], v11),
            (vec![("host", "a b")], v11),
            (vec![("host", "a/b")], v11),
            (vec![("host", "a"), ("host", "b")], v11),
        ] {
            assert_eq!(
                check_head(&head(&headers, version, "/")),
                Err(Refusal::BadHost),
                "{headers:?} {version:?}"
            );
        }
    }

    #[test]
    fn only_100_continue_is_expected() {
        let h = |e: &str, v| check_head(&head(&[("host", "a"), ("expect", e)], v, "/"));
        assert_eq!(h("100-continue", Version::HTTP_11), Ok(()));
        assert_eq!(h("100-Continue", Version::HTTP_11), Ok(()));
        assert_eq!(h("999-foo", Version::HTTP_11), Err(Refusal::BadExpect));
        assert_eq!(h("100-continue", Version::HTTP_10), Err(Refusal::BadExpect));
    }

    #[test]
    fn refusals_are_json_with_the_right_status() {
        assert_eq!(Refusal::BadHost.describe().0, StatusCode::BAD_REQUEST);
        assert_eq!(Refusal::Busy.describe().0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(Refusal::Busy.retry_after(), Some(1));
        assert_eq!(Refusal::BodyTooLarge.retry_after(), None);
        assert!(Refusal::BodyTimeout.closes() && !Refusal::Busy.closes());
        let json = Refusal::BadExpect.json();
        let v: Vec<&str> = json.split('"').collect();
        assert_eq!(v[7], "expectation_failed", "{v:?}");
    }

    #[test]
    fn connections_are_capped_per_client_and_in_total() {
        let limiter = ConnLimiter::new(3, 2);
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "127.0.0.2".parse().expect("ip"),
            "127.0.0.3".parse().expect("ip"),
            "127.0.0.4".parse().expect("ip"),
        );
        let a1 = limiter.try_open(a).expect("first");
        let _a2 = limiter.try_open(a).expect("second");
        assert!(limiter.try_open(a).is_none(), "per client");
        let _b1 = limiter.try_open(b).expect("another client");
        assert!(limiter.try_open(c).is_none(), "in total");
        drop(a1);
        assert_eq!(limiter.open(a), (2, 1));
        let _c1 = limiter.try_open(c).expect("a place was freed");
        assert!(limiter.try_open(a).is_none());
    }

    #[test]
    fn each_client_gets_its_burst_then_the_rate() {
        let limiter = RateLimiter::new(2, 4);
        let (a, b): (IpAddr, IpAddr) = (
            "127.0.0.2".parse().expect("ip"),
            "127.0.0.3".parse().expect("ip"),
        );
        let t0 = Instant::now();
        for _ in 0..4 {
            assert_eq!(limiter.check(a, t0), Ok(()));
        }
        assert_eq!(limiter.check(a, t0), Err(1), "the burst is spent");
        assert_eq!(limiter.check(b, t0), Ok(()), "clients are separate");
        let later = t0 + Duration::from_millis(500);
        assert_eq!(limiter.check(a, later), Ok(()), "refilled at 2 a second");
        assert_eq!(limiter.check(a, later), Err(1));
        let idle = t0 + Duration::from_secs(60);
        for _ in 0..4 {
            assert_eq!(limiter.check(a, idle), Ok(()), "never over the burst");
        }
        assert!(limiter.check(a, idle).is_err());
    }

    #[test]
    fn the_clients_remembered_are_bounded() {
        let limiter = RateLimiter::new(1, 1);
        let t0 = Instant::now();
        for i in 0..MAX_TRACKED_CLIENTS as u32 + 10 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let _ = limiter.check(ip, t0 + Duration::from_secs(u64::from(i / 1000) * 2));
        }
        let tracked = limiter.buckets.lock().expect("lock").len();
        assert!(tracked <= MAX_TRACKED_CLIENTS, "{tracked}");
    }

    #[test]
    fn repeated_log_lines_are_limited_per_kind() {
        let logs = LogLimiter::new(Duration::from_secs(10), 2);
        let t0 = Instant::now();
        let w = |s| LogVerdict::Write { suppressed: s };
        assert_eq!(logs.check("a", t0), w(0));
        assert_eq!(logs.check("a", t0), w(0));
        assert_eq!(logs.check("a", t0), LogVerdict::Drop);
        assert_eq!(logs.check("a", t0), LogVerdict::Drop);
        assert_eq!(logs.check("b", t0), w(0), "kinds are separate");
        let later = t0 + Duration::from_secs(10);
        assert_eq!(logs.check("a", later), w(2), "says how many were dropped");
    }
}
