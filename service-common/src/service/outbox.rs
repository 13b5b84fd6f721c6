//! Event recording: an outbox in the state store, delivered to
//! events-service after the answer.

use super::{events_app_id, now_ms, state_store};
use crate::event::{Event, OUTBOX_SHARDS, Outbox, event_id, outbox_shard_key};
use dapr::{Client, SaveItem, StateOptions};
use http::{HeaderMap, HeaderValue, Method};
use std::time::Duration;

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
