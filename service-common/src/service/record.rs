//! The client's record in the state store (the per-client rate limit), and
//! the event of each success, published through Dapr's transactional outbox.
//!
//! Per successful request, three sidecar calls: [`admit`] reads the client's
//! record and writes it back with the request counted, under the ETag it
//! read; [`publish_event`] writes the event in one state
//! transaction as an outbox projection, which Dapr publishes to topic
//! `events` once the transaction commits (statestore.yaml).
//!
//! Why the record is not in that transaction: Dapr 1.18 publishes a
//! transaction's message *before* the transaction commits, and when the
//! transaction then fails (an ETag lost the race), its handler looks for the
//! missing state in a loop whose backoff has no stop value
//! (`pkg/runtime/pubsub/outbox.go`: an `ExponentialBackOff` literal without
//! `Stop`, so after 10 s it retries with no delay): that sidecar then spins
//! two cores at 100% for good. Measured here: 3 req/s instead of ~200. So
//! the transaction that publishes carries no ETag and cannot lose a race.

use super::{STATE_STORE, now_ms};
use crate::ApiError;
use crate::event::{Event, event_id, outbox_transaction};
use crate::ratelimit::{ClientRecord, Decision, RatePolicy, check, record_item, state_key};
use dapr::{Client, ETag};

/// How often a write that lost the ETag race re-reads and decides again.
const ATTEMPTS: usize = 8;

/// Reads the client's record, applies `policy` and writes the record back
/// with the request counted, under the ETag it read (first-write
/// concurrency): of concurrent requests of one client, a loser reads again
/// and decides again, so none slips past the limit. A refused request is
/// recorded (its time) and answered 429.
pub async fn admit(dapr: &Client, address: &str, policy: RatePolicy) -> Result<(), ApiError> {
    for _ in 0..ATTEMPTS {
        let (previous, etag) = read(dapr, address).await?;
        match check(previous, address, now_ms(), policy) {
            Decision::Allow(record) => {
                match dapr
                    .save_state(STATE_STORE, &[record_item(&record, etag, policy)])
                    .await
                {
                    Ok(()) => return Ok(()),
                    Err(e) if e.is_etag_mismatch() => continue, // lost the race: re-read
                    Err(e) => return Err(state_unavailable(e)),
                }
            }
            Decision::Deny(record, wait) => {
                match dapr
                    .save_state(STATE_STORE, &[record_item(&record, etag, policy)])
                    .await
                {
                    Ok(()) => {}
                    Err(e) if e.is_etag_mismatch() => {} // a newer record is there
                    Err(e) => eprintln!("refused request of {address} not recorded: {e}"),
                }
                return Err(ApiError::RateLimited { retry_after: wait });
            }
        }
    }
    Err(ApiError::unavailable(
        "the state store",
        format!("client record still contended after {ATTEMPTS} attempts"),
    ))
}

/// Publishes `event` through the outbox ([`outbox_transaction`]). A store
/// or broker that cannot take it is a 503: no success is answered without
/// its event.
pub async fn publish_event(
    dapr: &Client,
    event: &Event,
    traceparent: Option<&str>,
) -> Result<(), ApiError> {
    let ops = outbox_transaction(event, traceparent)
        .map_err(|e| ApiError::internal(format!("encoding the event: {e}")))?;
    dapr.transact_state(STATE_STORE, &ops)
        .await
        .map_err(|e| ApiError::unavailable("the event log", e))
}

/// A new event for a success of `op_type` with `input_size` bytes of input.
pub fn new_event(op_type: &str, input_size: u64) -> Event {
    let mut random = [0u8; 8];
    wstd::rand::get_random_bytes(&mut random);
    let now = now_ms();
    Event {
        event_id: event_id(now, u64::from_le_bytes(random)),
        event_ts: now,
        op_type: op_type.to_string(),
        input_size,
    }
}

async fn read(
    dapr: &Client,
    address: &str,
) -> Result<(Option<ClientRecord>, Option<ETag>), ApiError> {
    let entry = dapr
        .get_state_entry::<ClientRecord>(
            STATE_STORE,
            &state_key(address),
            Some(dapr::Consistency::Strong),
        )
        .await
        .map_err(state_unavailable)?;
    Ok(match entry {
        Some(e) => (Some(e.value), e.etag),
        None => (None, None),
    })
}

fn state_unavailable(e: dapr::Error) -> ApiError {
    ApiError::unavailable("the state store", e)
}
