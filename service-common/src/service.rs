//! The I/O both image services share: bounded body reads, JSON answers, the
//! per-client rate limit in the state store, and event recording.

use crate::event::{Event, OUTBOX_SHARDS, Outbox, event_id, outbox_shard_key};
use crate::ratelimit::{ClientRecord, Decision, RatePolicy, check, state_key};
use crate::{ApiError, client_address};
use dapr::{Client, SaveItem, StateOptions};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use std::time::Duration;
use wstd::http::{Body, Response};

/// Dapr state store component name (`STATE_STORE`, default `statestore`).
pub fn state_store() -> String {
    std::env::var("STATE_STORE").unwrap_or_else(|_| "statestore".into())
}

/// App id of the events service (`EVENTS_APP_ID`, default `events-service`).
pub fn events_app_id() -> String {
    std::env::var("EVENTS_APP_ID").unwrap_or_else(|_| "events-service".into())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A response with these bytes and content type.
pub fn bytes_response(status: u16, content_type: &str, body: Vec<u8>) -> Response<Body> {
    let len = body.len();
    let mut r = Response::new(Body::from(body));
    // A known length instead of chunked encoding.
    r.headers_mut()
        .insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

/// A JSON response.
pub fn json_response<T: serde::Serialize>(status: u16, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(body) => bytes_response(status, "application/json", body),
        Err(_) => error_response(&ApiError::new(500, "internal", "cannot encode response")),
    }
}

/// The JSON error answer, with Retry-After for 429.
pub fn error_response(e: &ApiError) -> Response<Body> {
    let mut r = bytes_response(e.status, "application/json", e.to_json());
    if let Some(s) = e.retry_after {
        r.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}

/// Reads the request body, refusing anything past `limit` without
/// buffering it: a declared Content-Length over the limit is refused before
/// reading a byte, and a chunked body is cut off as soon as it passes.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    match dapr::read_limited(body, limit).await {
        Ok(b) => Ok(b),
        Err(dapr::Error::TooLarge { .. }) => Err(ApiError::too_large(limit)),
        Err(e) => Err(ApiError::bad_request(format!(
            "could not read the request body: {e}"
        ))),
    }
}

/// The calling client's address (see [`client_address`]).
pub fn caller(headers: &HeaderMap) -> String {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    client_address(h("x-forwarded-for"), h("forwarded"))
}

/// Records the request in the client's state record and enforces `policy`.
///
/// Read-modify-write under first-write concurrency: the save carries the
/// ETag it read (or inserts only if the key is new), so of two concurrent
/// requests exactly one write lands; the other re-reads and re-decides.
pub async fn enforce_rate_limit(
    dapr: &Client,
    address: &str,
    policy: RatePolicy,
) -> Result<(), ApiError> {
    let store = state_store();
    let key = state_key(address);
    let ttl = (policy.window_ms / 1000).max(1) * 10;
    for _ in 0..8 {
        let entry = dapr
            .get_state_entry::<ClientRecord>(&store, &key, Some(dapr::Consistency::Strong))
            .await
            .map_err(state_unavailable)?;
        let (previous, etag) = match entry {
            Some(e) => (Some(e.value), e.etag),
            None => (None, None),
        };
        let decision = check(previous, address, now_ms(), policy);
        let item = SaveItem::new(key.as_str(), decision.record())
            .etag(etag)
            .options(StateOptions::first_write())
            .ttl_seconds(ttl);
        match dapr.save_state(&store, &[item]).await {
            Ok(()) => {
                return match decision {
                    Decision::Allow(_) => Ok(()),
                    Decision::Deny(_, wait) => Err(ApiError::rate_limited(wait)),
                };
            }
            Err(e) if e.is_etag_mismatch() => continue, // lost the race: re-read
            Err(e) => return Err(state_unavailable(e)),
        }
    }
    Err(ApiError::unavailable(
        "client state is too contended; try again",
    ))
}

fn state_unavailable(e: dapr::Error) -> ApiError {
    eprintln!("state store error: {e}");
    ApiError::unavailable("the state store is unavailable")
}

/// An event to deliver, and the outbox shard holding it (`None` when the
/// state store could not take it: then it is delivered once, best effort).
#[derive(Debug, Clone)]
pub struct Recorded {
    event: Event,
    shard: Option<String>,
}

/// Records an event so it survives an events-service outage: it is first
/// added to an outbox shard in the state store (before the caller answers
/// the user); [`flush_outbox`] then delivers it in the background and
/// removes it once events-service acknowledges it. Delivery is
/// at-least-once; events-service deduplicates by `event_id`, so the stored
/// result is exactly once.
pub async fn record_event(dapr: &Client, op_type: &str, input_size: u64) -> Recorded {
    let mut random = [0u8; 8];
    wstd::rand::get_random_bytes(&mut random);
    let random = u64::from_le_bytes(random);
    let now = now_ms();
    let event = Event {
        event_id: event_id(now, random),
        event_ts: now,
        op_type: op_type.to_string(),
        input_size,
    };
    // Spread concurrent appends over shards so they rarely race on one ETag.
    let shard = outbox_shard_key((random % u64::from(OUTBOX_SHARDS)) as u32);
    let queued = update_outbox(dapr, &shard, |o| {
        let dropped = o.push(event.clone());
        if dropped > 0 {
            eprintln!("events outbox full: dropped {dropped} oldest undelivered events");
        }
    })
    .await;
    match queued {
        Ok(()) => Recorded {
            event,
            shard: Some(shard),
        },
        Err(e) => {
            eprintln!(
                "event {} not queued (state store unavailable), delivering once: {e}",
                event.event_id
            );
            Recorded { event, shard: None }
        }
    }
}

async fn update_outbox(
    dapr: &Client,
    key: &str,
    change: impl Fn(&mut Outbox),
) -> Result<(), dapr::Error> {
    let store = state_store();
    let mut last = None;
    for _ in 0..16 {
        let entry = dapr
            .get_state_entry::<Outbox>(&store, key, Some(dapr::Consistency::Strong))
            .await?;
        let (mut outbox, etag) = entry.map(|e| (e.value, e.etag)).unwrap_or_default();
        change(&mut outbox);
        let item = SaveItem::new(key, &outbox)
            .etag(etag)
            .options(StateOptions::first_write());
        match dapr.save_state(&store, &[item]).await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_etag_mismatch() => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| dapr::Error::Transport("outbox contended".into())))
}

/// State key of the lease that lets one request at a time drain the backlog.
const FLUSHER_LEASE_KEY: &str = "events-outbox-flusher";
/// State key present while some event waits in the outbox past its request.
const BACKLOG_KEY: &str = "events-outbox-backlog";

/// Delivers events after the response has been sent.
///
/// The request's own event is delivered and removed from its shard. If that
/// fails, or an earlier failure left a backlog, the request tries to take the
/// flusher lease (a first-write insert with a TTL); the holder retries the
/// whole outbox with backoff for up to `patience`. So a healthy system costs
/// one delivery per request, and an outage keeps at most one component
/// instance busy retrying.
pub async fn flush_outbox(dapr: &Client, recorded: Option<Recorded>, patience: Duration) {
    let store = state_store();
    let events_app = events_app_id();
    let mut backlog = true;
    if let Some(rec) = recorded {
        match deliver(dapr, &events_app, &rec.event).await {
            Ok(()) => {
                let id = [rec.event.event_id.clone()];
                if let Some(shard) = &rec.shard
                    && let Err(e) = update_outbox(dapr, shard, |o| o.remove(&id)).await
                {
                    eprintln!(
                        "events outbox not updated (the event will be re-sent, deduplicated): {e}"
                    );
                }
                backlog = matches!(
                    dapr.get_state::<u64>(&store, BACKLOG_KEY).await,
                    Ok(Some(_)) | Err(_)
                );
            }
            Err(e) if rec.shard.is_none() => eprintln!("event {} lost: {e}", rec.event.event_id),
            Err(e) => {
                eprintln!("event {} not delivered yet: {e}", rec.event.event_id);
                let _ = dapr.save(&store, BACKLOG_KEY, now_ms()).await;
            }
        }
    }
    if !backlog {
        return;
    }
    let lease = SaveItem::new(FLUSHER_LEASE_KEY, now_ms())
        .options(StateOptions::first_write())
        .ttl_seconds(patience.as_secs() + 5);
    if dapr.save_state(&store, &[lease]).await.is_err() {
        return; // another request is draining
    }
    drain(dapr, &store, &events_app, patience).await;
    if let Err(e) = dapr
        .delete_state(&store, FLUSHER_LEASE_KEY, None, StateOptions::default())
        .await
    {
        eprintln!("flusher lease not released (it expires by itself): {e}");
    }
}

/// Delivers every shard's pending events, retrying until `patience` runs out.
async fn drain(dapr: &Client, store: &str, events_app: &str, patience: Duration) {
    let start = wstd::time::Instant::now();
    let mut delay = Duration::from_millis(250);
    let keys: Vec<String> = (0..OUTBOX_SHARDS).map(outbox_shard_key).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    loop {
        let mut left = 0;
        match dapr.get_bulk_state::<Outbox>(store, &keys).await {
            Ok(shards) => {
                for (key, entry) in shards {
                    let pending = entry.map(|e| e.value.pending).unwrap_or_default();
                    let mut delivered = Vec::new();
                    for event in &pending {
                        match deliver(dapr, events_app, event).await {
                            Ok(()) => delivered.push(event.event_id.clone()),
                            Err(e) => {
                                eprintln!("event {} not delivered yet: {e}", event.event_id);
                                break;
                            }
                        }
                    }
                    left += pending.len() - delivered.len();
                    if !delivered.is_empty()
                        && let Err(e) = update_outbox(dapr, &key, |o| o.remove(&delivered)).await
                    {
                        eprintln!(
                            "events outbox not updated (events will be re-sent, deduplicated): {e}"
                        );
                    }
                }
            }
            Err(e) => {
                eprintln!("events outbox unreadable: {e}");
                left = usize::MAX;
            }
        }
        if left == 0 {
            let _ = dapr
                .delete_state(store, BACKLOG_KEY, None, StateOptions::default())
                .await;
            return;
        }
        if start.elapsed() >= patience.into() {
            eprintln!("events still pending; a later request retries");
            return;
        }
        wstd::task::sleep(delay.into()).await;
        delay = (delay * 2).min(Duration::from_secs(4));
    }
}

async fn deliver(dapr: &Client, events_app: &str, event: &Event) -> Result<(), dapr::Error> {
    let body = serde_json::to_vec(event).map_err(dapr::Error::Encode)?;
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let r = dapr
        .invoke(events_app, Method::POST, "events", headers, body)
        .await?;
    if r.is_success() {
        Ok(())
    } else {
        Err(r.into_error())
    }
}

/// An image request that passed the client's rate limit and whose body was
/// read within the limits: what both image services start from.
pub struct ImageRequest {
    /// The request's headers.
    pub headers: HeaderMap,
    /// The body (the image bytes).
    pub body: Vec<u8>,
    /// The limits it was read with, for decoding.
    pub limits: crate::ImageLimits,
    dapr: Client,
}

impl ImageRequest {
    /// Rate-limits the caller, then reads the body within `MAX_BODY_BYTES`.
    pub async fn accept(req: wstd::http::Request<Body>) -> Result<Self, ApiError> {
        let limits = crate::ImageLimits::from_env();
        let policy = RatePolicy::from_lookup(|k| std::env::var(k).ok());
        let (parts, body) = req.into_parts();
        let dapr = Client::from_env().map_err(|e| ApiError::unavailable(e.to_string()))?;
        enforce_rate_limit(&dapr, &caller(&parts.headers), policy).await?;
        let body = read_body(&parts.headers, body, limits.max_body_bytes).await?;
        Ok(Self {
            headers: parts.headers,
            body,
            limits,
            dapr,
        })
    }

    /// The Accept header, if readable.
    pub fn accept_header(&self) -> Option<&str> {
        self.headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
    }

    /// Records the success as an `op_type` event: into the outbox before the
    /// caller answers, delivered in the background after (see [`record_event`]).
    pub async fn record_success(self, op_type: &str) {
        let recorded = record_event(&self.dapr, op_type, self.body.len() as u64).await;
        let dapr = self.dapr;
        wstd::runtime::spawn(async move {
            flush_outbox(&dapr, Some(recorded), Duration::from_secs(30)).await;
        })
        .detach();
    }
}
