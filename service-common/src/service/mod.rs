//! The I/O the services share (WASI only), one concern a file:
//! [`respond`] (JSON answers, bounded body reads, the caller's address),
//! [`limit`] (the per-client rate limit in the state store), [`outbox`]
//! (event recording and delivery) and [`request`] (the image services'
//! common request path).

pub mod limit;
pub mod outbox;
pub mod request;
pub mod respond;

pub use limit::enforce_rate_limit;
pub use outbox::{Recorded, flush_outbox, record_event};
pub use request::ImageRequest;
pub use respond::{bytes_response, caller, error_response, json_response, read_body};

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
