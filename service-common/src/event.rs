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
    fn wire_format() {
        let v = serde_json::to_value(ev("x")).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"event_id":"x","event_ts":1,"op_type":"grayscale","input_size":2})
        );
        assert_eq!(event_id(255, 1), "ff-0000000000000001");
    }
}
