//! W3C trace context (`traceparent`) for requests the host serves: the
//! caller's when it sent a valid one (daprd always does), else a new trace,
//! so every request's calls to its sidecar belong to one trace.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// Whether `v` is a `traceparent` this host passes on: version 00, a
/// non-zero trace id and parent id, lower-case hex.
pub fn valid(v: &str) -> bool {
    let parts: Vec<&str> = v.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    matches!(parts.as_slice(), [ver, trace, parent, flags]
        if *ver == "00" && hex(trace, 32) && hex(parent, 16) && hex(flags, 2)
            && nonzero(trace) && nonzero(parent))
}

/// The trace context of one request the host serves: its own span, a
/// child of the caller's when the caller sent a valid `traceparent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// 32 hex digits.
    pub trace_id: String,
    /// The host's span for this request, 16 hex digits.
    pub span_id: String,
    /// The caller's span, if any.
    pub parent_id: Option<String>,
    /// The caller's flags (`01`: sampled).
    pub flags: String,
}

impl Context {
    /// The request's context: continues `incoming` if valid, else a new
    /// sampled trace; ids from `random`.
    pub fn server(incoming: Option<&str>, mut random: impl FnMut() -> u64) -> Self {
        let mut nonzero = move || loop {
            let n = random();
            if n != 0 {
                return n;
            }
        };
        let span_id = format!("{:016x}", nonzero());
        match incoming {
            Some(v) if valid(v) => {
                let parts: Vec<&str> = v.split('-').collect();
                Self {
                    trace_id: parts[1].to_string(),
                    span_id,
                    parent_id: Some(parts[2].to_string()),
                    flags: parts[3].to_string(),
                }
            }
            _ => Self {
                trace_id: format!("{:016x}{:016x}", nonzero(), nonzero()),
                span_id,
                parent_id: None,
                flags: "01".into(),
            },
        }
    }

    /// The `traceparent` for what this request causes: the host's span as
    /// the parent.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }

    /// Whether the caller asked for it to be recorded.
    pub fn sampled(&self) -> bool {
        u8::from_str_radix(&self.flags, 16).is_ok_and(|f| f & 1 == 1)
    }
}

/// Ids for new traces: not secrets, only unlikely to repeat (a hasher
/// seeded by the OS, over a counter).
pub fn random_id() -> u64 {
    static SEED: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = SEED.get_or_init(RandomState::new).build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_traceparent_is_continued_and_anything_else_replaced() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert!(valid(good));
        let c = Context::server(Some(good), || 0xab);
        assert_eq!(c.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(c.parent_id.as_deref(), Some("00f067aa0ba902b7"));
        assert_eq!(
            c.traceparent(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00000000000000ab-01"
        );
        assert!(c.sampled());
        let unsampled = Context::server(Some(&good.replace("-01", "-00")), || 1);
        assert!(!unsampled.sampled());
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        ] {
            assert!(!valid(bad), "{bad}");
            let fresh = Context::server(Some(bad), || 0xab);
            assert!(valid(&fresh.traceparent()), "{fresh:?}");
            assert_eq!(fresh.parent_id, None);
        }
        let mut n = 0u64;
        let fresh = Context::server(None, || {
            n += 1;
            n - 1
        });
        assert!(
            valid(&fresh.traceparent()),
            "zero ids are skipped: {fresh:?}"
        );
        assert_ne!(random_id(), random_id());
    }
}
