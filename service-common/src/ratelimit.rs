//! Per-client sliding-window rate limit over a record kept in the state store.

use serde::{Deserialize, Serialize};

/// At most `max_requests` per `window_ms` for one client. Only [`new`]
/// makes one, so a policy is always valid: at least one request, at most
/// [`MAX_REQUESTS`], in a window of 1 ms to [`MAX_WINDOW_MS`].
///
/// [`new`]: RatePolicy::new
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatePolicy {
    max_requests: u32,
    window_ms: u64,
}

/// The most requests a window may allow (the record keeps one time each).
pub const MAX_REQUESTS: u32 = 10_000;
/// The longest window: one week.
pub const MAX_WINDOW_MS: u64 = 7 * 24 * 3600 * 1000;

impl Default for RatePolicy {
    fn default() -> Self {
        Self {
            max_requests: 10,
            window_ms: 10_000,
        }
    }
}

impl RatePolicy {
    /// A policy, if both numbers are in range.
    pub fn new(max_requests: u32, window_ms: u64) -> Option<Self> {
        ((1..=MAX_REQUESTS).contains(&max_requests) && (1..=MAX_WINDOW_MS).contains(&window_ms))
            .then_some(Self {
                max_requests,
                window_ms,
            })
    }

    /// Requests allowed per window (`RATE_LIMIT_MAX`, default 10).
    pub fn max_requests(&self) -> u32 {
        self.max_requests
    }

    /// Window length in ms (`RATE_LIMIT_WINDOW_MS`, default 10 000).
    pub fn window_ms(&self) -> u64 {
        self.window_ms
    }

    /// Defaults overridden by `RATE_LIMIT_MAX` and `RATE_LIMIT_WINDOW_MS`,
    /// each clamped into its range.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let d = Self::default();
        let num = |k: &str| crate::limits::positive(&lookup, k);
        let max = num("RATE_LIMIT_MAX").map_or(d.max_requests, |v| {
            u32::try_from(v.min(u64::from(MAX_REQUESTS))).unwrap_or(MAX_REQUESTS)
        });
        let window = num("RATE_LIMIT_WINDOW_MS").map_or(d.window_ms, |v| v.min(MAX_WINDOW_MS));
        Self::new(max, window).unwrap_or(d)
    }
}

/// What the state store keeps per client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRecord {
    /// The client's address.
    pub address: String,
    /// When it last sent a request (ms since the epoch), allowed or not.
    pub last_request_ms: u64,
    /// Times of its allowed requests inside the current window.
    #[serde(default)]
    pub hits: Vec<u64>,
}

/// The outcome of one request against the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead; store this record.
    Allow(ClientRecord),
    /// Refuse; store this record and tell the client to wait this many seconds.
    Deny(ClientRecord, u64),
}

impl Decision {
    /// The record to store either way.
    pub fn record(&self) -> &ClientRecord {
        match self {
            Decision::Allow(r) | Decision::Deny(r, _) => r,
        }
    }
}

/// Applies the policy to a request from `address` at `now_ms`.
pub fn check(
    previous: Option<ClientRecord>,
    address: &str,
    now_ms: u64,
    policy: RatePolicy,
) -> Decision {
    let window_start = now_ms.saturating_sub(policy.window_ms);
    let mut hits: Vec<u64> = previous
        .map(|r| r.hits)
        .unwrap_or_default()
        .into_iter()
        // Drop hits outside the window, and any from a clock far ahead.
        .filter(|t| *t > window_start && *t <= now_ms.saturating_add(policy.window_ms))
        .collect();
    hits.sort_unstable();
    let max = policy.max_requests as usize;
    if hits.len() >= max {
        // Wait until the oldest hit that keeps us at the limit leaves the window.
        let oldest = hits[hits.len() - max];
        let wait_ms = oldest
            .saturating_add(policy.window_ms)
            .saturating_sub(now_ms);
        let retry_after = wait_ms.div_ceil(1000).max(1);
        let record = ClientRecord {
            address: address.to_string(),
            last_request_ms: now_ms,
            hits,
        };
        return Decision::Deny(record, retry_after);
    }
    hits.push(now_ms);
    Decision::Allow(ClientRecord {
        address: address.to_string(),
        last_request_ms: now_ms,
        hits,
    })
}

/// The write of a client's record: under the ETag it was read with (or
/// insert-only, for a new client), so of two concurrent writers one loses;
/// it expires ten windows after its last write.
pub fn record_item(
    record: &ClientRecord,
    etag: Option<dapr::ETag>,
    policy: RatePolicy,
) -> dapr::SaveItem<&ClientRecord> {
    dapr::SaveItem::new(state_key(&record.address), record)
        .etag(etag)
        .options(dapr::StateOptions::first_write())
        .ttl_seconds((policy.window_ms() / 1000).max(1) * 10)
}

/// State key for a client. Dapr prefixes keys with the app id, and refuses
/// `||` in keys.
pub fn state_key(address: &str) -> String {
    format!("client:{address}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: RatePolicy = RatePolicy {
        max_requests: 3,
        window_ms: 10_000,
    };

    #[test]
    fn allows_up_to_max_then_denies_with_retry_after() {
        let mut rec = None;
        for t in [1_000, 2_000, 3_000] {
            match check(rec.clone(), "a", t, P) {
                Decision::Allow(r) => rec = Some(r),
                d => panic!("unexpected {d:?}"),
            }
        }
        match check(rec.clone(), "a", 4_000, P) {
            Decision::Deny(r, wait) => {
                assert_eq!(wait, 7); // first hit at 1 s leaves the window at 11 s
                assert_eq!(r.last_request_ms, 4_000);
                assert_eq!(r.hits.len(), 3);
            }
            d => panic!("unexpected {d:?}"),
        }
        // After the first hit expires, one more is allowed.
        assert!(matches!(check(rec, "a", 11_001, P), Decision::Allow(_)));
    }

    #[test]
    fn first_request_and_retry_after_at_least_one() {
        let d = check(None, "1.2.3.4", 5, P);
        assert_eq!(d.record().hits, vec![5]);
        assert_eq!(d.record().address, "1.2.3.4");
        let rec = ClientRecord {
            address: "a".into(),
            last_request_ms: 0,
            hits: vec![1, 2, 3],
        };
        assert_eq!(
            check(Some(rec), "a", 10_000, P),
            Decision::Deny(
                ClientRecord {
                    address: "a".into(),
                    last_request_ms: 10_000,
                    hits: vec![1, 2, 3]
                },
                1
            )
        );
    }

    #[test]
    fn policy_from_env() {
        let p = RatePolicy::from_lookup(|k| (k == "RATE_LIMIT_MAX").then(|| "4".to_string()));
        assert_eq!(
            p,
            RatePolicy {
                max_requests: 4,
                window_ms: 10_000
            }
        );
    }

    #[test]
    fn invalid_policies_cannot_be_made() {
        assert_eq!(RatePolicy::new(0, 10_000), None);
        assert_eq!(RatePolicy::new(MAX_REQUESTS + 1, 10_000), None);
        assert_eq!(RatePolicy::new(1, 0), None);
        assert_eq!(RatePolicy::new(1, MAX_WINDOW_MS + 1), None);
        assert_eq!(RatePolicy::new(1, u64::MAX), None);
        let p = RatePolicy::new(1, MAX_WINDOW_MS).expect("valid");
        assert_eq!((p.max_requests(), p.window_ms()), (1, MAX_WINDOW_MS));
        // From the environment: out-of-range values are clamped or ignored.
        let env = |max: &'static str, win: &'static str| {
            RatePolicy::from_lookup(move |k| {
                Some(if k == "RATE_LIMIT_MAX" { max } else { win }.to_string())
            })
        };
        let p = env("0", "0");
        assert_eq!((p.max_requests(), p.window_ms()), (10, 10_000));
        let p = env("99999999999", "99999999999999999");
        assert_eq!(
            (p.max_requests(), p.window_ms()),
            (MAX_REQUESTS, MAX_WINDOW_MS)
        );
    }

    #[test]
    fn the_longest_window_near_the_end_of_time_does_not_overflow() {
        let p = RatePolicy::new(1, MAX_WINDOW_MS).expect("valid");
        let now = u64::MAX - 5;
        let first = check(None, "a", now, p);
        let Decision::Allow(rec) = first else {
            panic!("first request allowed")
        };
        match check(Some(rec), "a", now, p) {
            Decision::Deny(_, retry) => assert!(retry >= 1),
            Decision::Allow(_) => panic!("second request in the window must wait"),
        }
    }
}
