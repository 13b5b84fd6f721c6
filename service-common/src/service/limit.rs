//! The per-client rate limit, kept in the Dapr state store.

use super::{now_ms, state_store};
use crate::ApiError;
use crate::ratelimit::{ClientRecord, Decision, RatePolicy, check, state_key};
use dapr::{Client, SaveItem, StateOptions};

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
    let ttl = (policy.window_ms() / 1000).max(1) * 10;
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
                    Decision::Deny(_, wait) => Err(ApiError::RateLimited { retry_after: wait }),
                };
            }
            Err(e) if e.is_etag_mismatch() => continue, // lost the race: re-read
            Err(e) => return Err(state_unavailable(e)),
        }
    }
    Err(ApiError::unavailable(
        "the state store",
        "client record still contended after 8 attempts",
    ))
}

fn state_unavailable(e: dapr::Error) -> ApiError {
    ApiError::unavailable("the state store", e)
}
