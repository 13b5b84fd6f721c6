//! `[limits]`: what one service may hold at once, and the plan the host
//! derives from it (instances, request slots, worst-case memory).

use serde::Deserialize;
use std::time::Duration;

/// `[limits]`, as written. Every limit has a default that holds the hostile
/// client tests (host/README.md, "Limits").
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsToml {
    /// Linear memory per instance, MiB (default 256).
    pub memory_mib: Option<u64>,
    /// All instances' linear memory together, MiB (default 1024): at most
    /// this / `memory_mib` instances exist at once.
    pub memory_budget_mib: Option<u64>,
    /// An instance whose memory grew past this many MiB is dropped after its
    /// request, not kept for reuse, so a peak is given back (default 64).
    pub recycle_above_mib: Option<u64>,
    /// Deadline for a request to produce its response, seconds (default 60).
    pub request_timeout_secs: Option<u64>,
    /// Requests handled at once (default 16; fewer if the budget says so).
    pub max_concurrent_requests: Option<u32>,
    /// How long a request waits for a free instance before 503, seconds (default 10).
    pub queue_timeout_secs: Option<u64>,
    /// Requests an instance serves before a fresh one replaces it (default 1000).
    pub max_requests_per_instance: Option<u64>,
    /// An idle instance is dropped after this many seconds (default 600).
    pub idle_instance_secs: Option<u64>,
    /// Largest request body, bytes (default 1 MiB); also the component's
    /// `MAX_BODY_BYTES`.
    pub max_body_bytes: Option<u64>,
    /// Largest answer body a component may produce, bytes (default 16 MiB).
    pub max_answer_bytes: Option<u64>,
    /// Request and answer bytes buffered by the host at once, MiB (default 64).
    pub max_buffered_mib: Option<u64>,
    /// Time to send the request line and headers, and the most a kept-alive
    /// connection may sit idle, seconds (default 10).
    pub header_timeout_secs: Option<u64>,
    /// Most time between two reads of a request body, seconds (default 10).
    pub body_idle_timeout_secs: Option<u64>,
    /// Most time to receive a whole request body, seconds (default 30).
    pub body_timeout_secs: Option<u64>,
    /// Most time a write of the answer may wait for the client, seconds (default 10).
    pub write_timeout_secs: Option<u64>,
    /// Open connections, in total (default 1024).
    pub max_connections: Option<u32>,
    /// Open connections from one client address (default 64).
    pub max_connections_per_client: Option<u32>,
    /// Requests a second per client (its address, or the one the gateway
    /// vouched for), counted by the host; none when unset. Dapr's own calls
    /// through the sidecar are not counted.
    pub client_rate_per_sec: Option<u32>,
    /// Requests a client may make at once before the rate applies (default
    /// twice the rate).
    pub client_burst: Option<u32>,
}

/// Limits, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of linear memory per instance.
    pub memory_bytes: usize,
    /// Bytes of linear memory of all instances together.
    pub memory_budget_bytes: usize,
    /// Instances past this size are not reused.
    pub recycle_above_bytes: usize,
    /// Request deadline.
    pub request_timeout: Duration,
    /// Concurrent requests, as written.
    pub max_concurrent_requests: u32,
    /// Wait for a free instance.
    pub queue_timeout: Duration,
    /// Instance reuse.
    pub max_requests_per_instance: u64,
    /// Idle instance lifetime.
    pub idle_instance: Duration,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Largest answer body.
    pub max_answer_bytes: usize,
    /// Buffered bytes, all requests together.
    pub max_buffered_bytes: usize,
    /// Header (and keep-alive idle) timeout.
    pub header_timeout: Duration,
    /// Body idle timeout.
    pub body_idle_timeout: Duration,
    /// Body total timeout.
    pub body_timeout: Duration,
    /// Answer write stall timeout.
    pub write_timeout: Duration,
    /// Connections in total.
    pub max_connections: u32,
    /// Connections per client address.
    pub max_connections_per_client: u32,
    /// (requests a second, burst) per client, if limited.
    pub client_rate: Option<(u32, u32)>,
}

/// How the memory budget is spent: what `serve` configures and what
/// `wasm-host limits` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Instances that may exist at once (the pooling allocator's size).
    pub instances: u32,
    /// Requests handled at once, one instance each.
    pub slots: u32,
    /// Worst-case bytes the host holds for requests: every instance at its
    /// memory limit plus every buffered byte.
    pub worst_case_bytes: u64,
}

impl Limits {
    /// The instance pool and request slots the memory budget allows.
    pub fn plan(&self) -> Plan {
        let instances = (self.memory_budget_bytes / self.memory_bytes).clamp(1, 1024) as u32;
        Plan {
            instances,
            slots: self.max_concurrent_requests.min(instances),
            worst_case_bytes: u64::from(instances) * self.memory_bytes as u64
                + self.max_buffered_bytes as u64,
        }
    }
}

impl LimitsToml {
    /// Checks every limit against its range and the others.
    pub fn check(&self) -> Result<Limits, String> {
        fn within(
            name: &str,
            v: Option<u64>,
            default: u64,
            lo: u64,
            hi: u64,
        ) -> Result<u64, String> {
            let v = v.unwrap_or(default);
            if (lo..=hi).contains(&v) {
                Ok(v)
            } else {
                Err(format!("limits.{name}: {v} is outside {lo}..={hi}"))
            }
        }
        let secs = |name: &str, v: Option<u64>, default: u64, hi: u64| {
            within(name, v, default, 1, hi).map(Duration::from_secs)
        };
        let mib = |name: &str, v: Option<u64>, default: u64, hi: u64| {
            within(name, v, default, 1, hi).map(|m| (m << 20) as usize)
        };
        let bytes = |name: &str, v: Option<u64>, default: u64| {
            within(name, v, default, 1, 1 << 30).map(|b| b as usize)
        };
        let count = |name: &str, v: Option<u32>, default: u32, hi: u64| {
            within(name, v.map(u64::from), default.into(), 1, hi).map(|c| c as u32)
        };
        let limits = Limits {
            memory_bytes: mib("memory_mib", self.memory_mib, 256, 4096)?,
            memory_budget_bytes: mib("memory_budget_mib", self.memory_budget_mib, 1024, 1 << 20)?,
            recycle_above_bytes: mib("recycle_above_mib", self.recycle_above_mib, 64, 4096)?,
            request_timeout: secs("request_timeout_secs", self.request_timeout_secs, 60, 3600)?,
            max_concurrent_requests: count(
                "max_concurrent_requests",
                self.max_concurrent_requests,
                16,
                256,
            )?,
            queue_timeout: secs("queue_timeout_secs", self.queue_timeout_secs, 10, 3600)?,
            max_requests_per_instance: within(
                "max_requests_per_instance",
                self.max_requests_per_instance,
                1000,
                1,
                u64::from(u32::MAX),
            )?,
            idle_instance: secs("idle_instance_secs", self.idle_instance_secs, 600, 86_400)?,
            max_body_bytes: bytes("max_body_bytes", self.max_body_bytes, 1 << 20)?,
            max_answer_bytes: bytes("max_answer_bytes", self.max_answer_bytes, 16 << 20)?,
            max_buffered_bytes: mib("max_buffered_mib", self.max_buffered_mib, 64, 1 << 16)?,
            header_timeout: secs("header_timeout_secs", self.header_timeout_secs, 10, 3600)?,
            body_idle_timeout: secs(
                "body_idle_timeout_secs",
                self.body_idle_timeout_secs,
                10,
                3600,
            )?,
            body_timeout: secs("body_timeout_secs", self.body_timeout_secs, 30, 3600)?,
            write_timeout: secs("write_timeout_secs", self.write_timeout_secs, 10, 3600)?,
            max_connections: count("max_connections", self.max_connections, 1024, 1 << 20)?,
            max_connections_per_client: count(
                "max_connections_per_client",
                self.max_connections_per_client,
                64,
                1 << 20,
            )?,
            client_rate: match self.client_rate_per_sec {
                None if self.client_burst.is_some() => {
                    return Err("limits.client_burst: set client_rate_per_sec too".into());
                }
                None => None,
                Some(rate) => {
                    let rate = count("client_rate_per_sec", Some(rate), 1, 1 << 20)?;
                    Some((
                        rate,
                        count("client_burst", self.client_burst, rate * 2, 1 << 21)?,
                    ))
                }
            },
        };
        if limits.memory_budget_bytes < limits.memory_bytes {
            return Err("limits.memory_budget_mib: smaller than memory_mib".into());
        }
        let buffered = limits.max_buffered_bytes;
        if buffered < limits.max_body_bytes || buffered < limits.max_answer_bytes {
            return Err(
                "limits.max_buffered_mib: smaller than max_body_bytes or max_answer_bytes".into(),
            );
        }
        if limits.max_connections_per_client > limits.max_connections {
            return Err("limits.max_connections_per_client: over max_connections".into());
        }
        Ok(limits)
    }
}
