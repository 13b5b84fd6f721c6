//! The event each successful request records, and the outbox that holds it
//! until events-service has it.

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

/// Events not yet acknowledged by events-service, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbox {
    /// Pending events.
    pub pending: Vec<Event>,
}

/// Most events an outbox shard holds; past it the oldest are dropped (and logged),
/// so an events-service outage cannot grow state without bound.
pub const OUTBOX_CAPACITY: usize = 5_000;

impl Outbox {
    /// Adds an event; returns how many old events were dropped to make room.
    pub fn push(&mut self, event: Event) -> usize {
        if self.pending.iter().any(|e| e.event_id == event.event_id) {
            return 0;
        }
        self.pending.push(event);
        let over = self.pending.len().saturating_sub(OUTBOX_CAPACITY);
        self.pending.drain(..over);
        over
    }

    /// Removes delivered events by id.
    pub fn remove(&mut self, delivered: &[String]) {
        self.pending.retain(|e| !delivered.contains(&e.event_id));
    }
}

/// How many keys the outbox is spread over.
pub const OUTBOX_SHARDS: u32 = 8;

/// State key of one outbox shard (Dapr prefixes it with the app id).
pub fn outbox_shard_key(shard: u32) -> String {
    format!("events-outbox-{shard}")
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
    fn push_dedups_and_caps() {
        let mut o = Outbox::default();
        assert_eq!(o.push(ev("a")), 0);
        assert_eq!(o.push(ev("a")), 0);
        assert_eq!(o.pending.len(), 1);
        for i in 0..OUTBOX_CAPACITY {
            o.push(ev(&i.to_string()));
        }
        assert_eq!(o.pending.len(), OUTBOX_CAPACITY);
        assert_eq!(o.pending[0].event_id, "0"); // "a" was the oldest and went first
        o.remove(&["0".into(), "1".into()]);
        assert_eq!(o.pending.len(), OUTBOX_CAPACITY - 2);
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
