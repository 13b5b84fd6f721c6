//! The I/O the services share (WASI only), one concern a file:
//! [`respond`] (JSON answers, bounded body reads, the caller's address),
//! [`record`] (the client's record: the rate limit, and each success's
//! event through Dapr's outbox) and [`request`] (the image services'
//! common request path).

pub mod record;
pub mod request;
pub mod respond;

pub use record::{admit, new_event, publish_event};
pub use request::ImageRequest;
pub use respond::{bytes_response, caller, error_response, json_response, read_body};

/// Dapr state store component name (`STATE_STORE`, default `statestore`).
pub fn state_store() -> String {
    std::env::var("STATE_STORE").unwrap_or_else(|_| "statestore".into())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
