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

/// The request's `traceparent`: `incoming` if valid, else a new sampled
/// one with ids from `random`.
pub fn traceparent(incoming: Option<&str>, mut random: impl FnMut() -> u64) -> String {
    match incoming {
        Some(v) if valid(v) => v.to_string(),
        _ => {
            let nonzero = |mut f: Box<dyn FnMut() -> u64 + '_>| loop {
                let n = f();
                if n != 0 {
                    return n;
                }
            };
            let hi = random();
            let lo = nonzero(Box::new(&mut random));
            let span = nonzero(Box::new(&mut random));
            format!("00-{hi:016x}{lo:016x}-{span:016x}-01")
        }
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
    fn a_valid_traceparent_is_kept_and_anything_else_replaced() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert!(valid(good));
        assert_eq!(traceparent(Some(good), || 7), good);
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
            let fresh = traceparent(Some(bad), || 0xab);
            assert!(valid(&fresh), "{fresh}");
            assert_eq!(
                fresh,
                "00-00000000000000ab00000000000000ab-00000000000000ab-01"
            );
        }
        let mut n = 0u64;
        let fresh = traceparent(None, || {
            n += 1;
            n - 1
        });
        assert!(valid(&fresh), "zero ids are skipped: {fresh}");
        assert_ne!(random_id(), random_id());
    }
}
