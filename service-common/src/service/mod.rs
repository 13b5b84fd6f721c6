//! The I/O the services share (WASI only), one concern a file:
//! [`respond`] (JSON answers, bounded body reads, the caller's address),
//! [`record`] (the client's record: the rate limit, and each success's
//! event through Dapr's outbox) and [`request`] (the image services'
//! common request path).

pub mod record;
#[cfg(feature = "images")]
pub mod request;
pub mod respond;

pub use record::{admit, new_event, publish_event};
#[cfg(feature = "images")]
pub use request::ImageRequest;
pub use respond::{bytes_response, caller, error_response, json_response, read_body};

/// The Dapr state store the image services use: the one their
/// service.toml grants (`[dapr] state`), which the host and Dapr enforce;
/// a fork that renames the component changes both.
pub const STATE_STORE: &str = "statestore";

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
