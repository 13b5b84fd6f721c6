//! The event each successful request records: published to topic `events`
//! through Dapr's outbox (`service::record`), stored by events-service.

use serde::{Deserialize, Serialize};

/// One recorded request, as events-service stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Caller-chosen id that makes a retried delivery idempotent.
    pub event_id: String,
    /// When it happened, ms since the epoch.
    pub event_ts: u64,
    /// `grayscale` or `classify`.
    pub op_type: String,
    /// Request body size in bytes.
    pub input_size: u64,
}

/// How long the stored marker of a published event stays: only its
/// projection, the event itself, is published; the marker must not pile up.
pub const EVENT_MARKER_TTL_SECONDS: u64 = 600;

/// The state transaction that publishes `event` through Dapr's outbox: a
/// small marker under `event:<id>` (with a TTL) and, as its
/// `outbox.projection`, the event, which is what gets published. It carries
/// no ETag, so it cannot lose a race (see `service::record` for why that
/// matters with daprd 1.18.3). `traceparent`, the request's, goes into both
/// items' metadata: daprd 1.18.3's outbox copies an item's metadata into the
/// published CloudEvent but leaves its `traceparent` field empty, which the
/// subscriber reads first, so without it the trace would end at the outbox.
pub fn outbox_transaction(
    event: &Event,
    traceparent: Option<&str>,
) -> serde_json::Result<[dapr::state::TransactionOp<serde_json::Value>; 2]> {
    use dapr::{SaveItem, state::TransactionOp};
    let key = format!("event:{}", event.event_id);
    let traced = |item: SaveItem<serde_json::Value>| match traceparent {
        Some(tp) => item.metadata("traceparent", tp),
        None => item,
    };
    let marker = traced(
        SaveItem::new(key.as_str(), serde_json::to_value(event.event_ts)?)
            .ttl_seconds(EVENT_MARKER_TTL_SECONDS),
    );
    let projection =
        traced(SaveItem::new(key.as_str(), serde_json::to_value(event)?).outbox_projection());
    Ok([
        TransactionOp::Upsert(marker),
        TransactionOp::Upsert(projection),
    ])
}

/// A unique event id from the time and random bits.
pub fn event_id(now_ms: u64, random: u64) -> String {
    format!("{now_ms:x}-{random:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str) -> Event {
        Event {
            event_id: id.into(),
            event_ts: 1,
            op_type: "grayscale".into(),
            input_size: 2,
        }
    }

    #[test]
    fn the_outbox_transaction_stores_a_marker_and_publishes_the_event() {
        let ops = outbox_transaction(&ev("x"), None).expect("ops");
        let req = dapr::state::transaction_request("statestore", &ops).expect("req");
        let body: serde_json::Value = serde_json::from_slice(&req.body).expect("json");
        assert_eq!(
            body["operations"],
            serde_json::json!([
                {"operation": "upsert", "request": {"key": "event:x", "value": 1,
                    "metadata": {"ttlInSeconds": "600"}}},
                {"operation": "upsert", "request": {"key": "event:x",
                    "value": {"event_id": "x", "event_ts": 1, "op_type": "grayscale", "input_size": 2},
                    "metadata": {"contentType": "application/json", "outbox.projection": "true"}}}
            ])
        );
    }

    #[test]
    fn the_requests_trace_rides_in_both_items_metadata() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let ops = outbox_transaction(&ev("x"), Some(tp)).expect("ops");
        let req = dapr::state::transaction_request("statestore", &ops).expect("req");
        let body: serde_json::Value = serde_json::from_slice(&req.body).expect("json");
        for op in body["operations"].as_array().expect("ops") {
            assert_eq!(op["request"]["metadata"]["traceparent"], tp, "{op}");
        }
    }

    #[test]
    fn wire_format() {
        let v = serde_json::to_value(ev("x")).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"event_id":"x","event_ts":1,"op_type":"grayscale","input_size":2})
        );
        assert_eq!(event_id(255, 1), "ff-0000000000000001");
    }
}
