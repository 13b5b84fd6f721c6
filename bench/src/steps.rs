//! Per-step timings of the native full service, read back by scripts/bench
//! (`GET /steps`) beside the wasm service's steps from its traces.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Every step's durations since the last `take_p50s`, in milliseconds.
#[derive(Default)]
pub struct Steps(Mutex<BTreeMap<&'static str, Vec<f64>>>);

impl Steps {
    /// Records `name` as having run from `since` until now; returns now.
    pub fn record(&self, name: &'static str, since: Instant) -> Instant {
        let now = Instant::now();
        self.add(name, now.duration_since(since));
        now
    }

    /// Records `name` as having taken `took`.
    pub fn add(&self, name: &'static str, took: Duration) {
        if let Ok(mut steps) = self.0.lock() {
            steps
                .entry(name)
                .or_default()
                .push(took.as_secs_f64() * 1000.0);
        }
    }

    /// Each step's median, `name_p50_ms=<f>` separated by spaces, and
    /// forgets them.
    pub fn take_p50s(&self) -> String {
        let Ok(mut steps) = self.0.lock() else {
            return String::new();
        };
        let line = steps
            .iter_mut()
            .map(|(name, times)| format!("{name}_p50_ms={:.3}", crate::median(times)))
            .collect::<Vec<_>>()
            .join(" ");
        steps.clear();
        line
    }
}
