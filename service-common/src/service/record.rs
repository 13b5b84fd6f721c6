//! The client's record in the state store: the per-client rate limit, and
//! the event of each success, published through Dapr's transactional outbox.
//!
//! Per request, two sidecar calls: [`Admission::admit`] reads the record and
//! decides; [`Admission::commit`] writes it back with the request counted,
//! and for a success, in the same transaction, the event as the record's
//! outbox projection (statestore.yaml). Dapr publishes the event to topic
//! `events` once the transaction commits, and never when it does not.

use super::{now_ms, state_store};
use crate::ApiError;
use crate::event::{Event, event_id};
use crate::ratelimit::{ClientRecord, Decision, RatePolicy, check, state_key};
use dapr::state::TransactionOp;
use dapr::{Client, ETag, SaveItem, StateOptions};

/// How often a write that lost the ETag race re-reads and decides again.
const ATTEMPTS: usize = 8;

/// A request the rate limit let in, not yet counted in the store.
pub struct Admission {
    address: String,
    policy: RatePolicy,
    record: ClientRecord,
    etag: Option<ETag>,
}

impl Admission {
    /// Reads the client's record and applies `policy`. A refused request is
    /// recorded (its time) and answered 429.
    pub async fn admit(dapr: &Client, address: &str, policy: RatePolicy) -> Result<Self, ApiError> {
        let (previous, etag) = read(dapr, address).await?;
        match check(previous, address, now_ms(), policy) {
            Decision::Allow(record) => Ok(Self {
                address: address.to_string(),
                policy,
                record,
                etag,
            }),
            Decision::Deny(record, wait) => Err(refuse(dapr, &record, etag, policy, wait).await),
        }
    }

    /// Counts the request in the client's record; with `event` (a success),
    /// publishes it through the outbox in the same transaction.
    ///
    /// The write carries the ETag read by [`Admission::admit`], so of two
    /// concurrent requests of one client only one is counted at a time: the
    /// other reads again and decides again, and may then be refused (429)
    /// although its work is done. A store or broker that cannot take the
    /// transaction is a 503: no success is answered without its event.
    pub async fn commit(mut self, dapr: &Client, event: Option<Event>) -> Result<(), ApiError> {
        let store = state_store();
        let key = state_key(&self.address);
        for _ in 0..ATTEMPTS {
            let item = SaveItem::new(key.as_str(), json(&self.record)?)
                .etag(self.etag.clone())
                .options(StateOptions::first_write())
                .ttl_seconds(ttl_seconds(self.policy));
            let written = match &event {
                None => dapr.save_state(&store, &[item]).await,
                Some(event) => {
                    let projection = SaveItem::new(key.as_str(), json(event)?).outbox_projection();
                    dapr.transact_state(
                        &store,
                        &[
                            TransactionOp::Upsert(item),
                            TransactionOp::Upsert(projection),
                        ],
                    )
                    .await
                }
            };
            match written {
                Ok(()) => return Ok(()),
                Err(e) if e.is_etag_mismatch() => {
                    let (previous, etag) = read(dapr, &self.address).await?;
                    match check(previous, &self.address, now_ms(), self.policy) {
                        Decision::Allow(record) => (self.record, self.etag) = (record, etag),
                        Decision::Deny(record, wait) => {
                            return Err(refuse(dapr, &record, etag, self.policy, wait).await);
                        }
                    }
                }
                Err(e) if event.is_some() => {
                    return Err(ApiError::unavailable("the event log", e));
                }
                Err(e) => return Err(state_unavailable(e)),
            }
        }
        Err(ApiError::unavailable(
            "the state store",
            format!("client record still contended after {ATTEMPTS} attempts"),
        ))
    }
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
            &state_store(),
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

/// Records a refused request's time (best effort: it changes no count) and
/// builds its 429.
async fn refuse(
    dapr: &Client,
    record: &ClientRecord,
    etag: Option<ETag>,
    policy: RatePolicy,
    wait: u64,
) -> ApiError {
    let item = SaveItem::new(state_key(&record.address), record)
        .etag(etag)
        .options(StateOptions::first_write())
        .ttl_seconds(ttl_seconds(policy));
    match dapr.save_state(&state_store(), &[item]).await {
        Ok(()) => {}
        Err(e) if e.is_etag_mismatch() => {} // a newer record is there
        Err(e) => eprintln!("refused request of {} not recorded: {e}", record.address),
    }
    ApiError::RateLimited { retry_after: wait }
}

/// Records outlive their window tenfold, then the store drops them.
fn ttl_seconds(policy: RatePolicy) -> u64 {
    (policy.window_ms() / 1000).max(1) * 10
}

/// One JSON type for both items of the transaction.
fn json(value: &impl serde::Serialize) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(value)
        .map_err(|e| ApiError::internal(format!("encoding a state item: {e}")))
}

fn state_unavailable(e: dapr::Error) -> ApiError {
    ApiError::unavailable("the state store", e)
}
