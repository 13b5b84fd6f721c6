//! `host.toml`: the one place that says what a service may touch. Read at
//! start; anything it does not grant, the component does not get. Values may
//! use `${VAR}` or `${VAR:-default}` from the host's environment; relative
//! paths are relative to the manifest's folder.

use crate::Authority;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Environment variables passed into the component, by name.
    #[serde(default)]
    pub env: Vec<String>,
    /// Outbound HTTP.
    #[serde(default)]
    pub http: Http,
    /// Sockets.
    #[serde(default)]
    pub sockets: Sockets,
    /// Preopened directories, always read-only.
    #[serde(default)]
    pub dirs: Vec<Dir>,
    /// wasi-nn graphs, loaded once per process.
    #[serde(default)]
    pub nn_graphs: Vec<NnGraph>,
    /// Resource limits.
    #[serde(default)]
    pub limits: LimitsToml,
}

/// `[http]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    /// `host:port` a component may send requests to.
    #[serde(default)]
    pub outbound: Vec<String>,
}

/// `[sockets]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sockets {
    /// `ip:port` a component may open TCP connections to (no DNS).
    #[serde(default)]
    pub tcp_connect: Vec<String>,
}

/// `[[dirs]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dir {
    /// Folder on the host.
    pub host: String,
    /// Where the component sees it (absolute).
    pub guest: String,
}

/// `[[nn_graphs]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NnGraph {
    /// Backend: `openvino`.
    pub format: String,
    /// Folder with the model; its last component is the graph's name.
    pub dir: String,
}

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

/// What the host grants, resolved: every value expanded, parsed and checked.
#[derive(Debug, Clone)]
pub struct Capabilities {
    /// Variable names passed through.
    pub env: Vec<String>,
    /// Outbound HTTP allow-list.
    pub outbound: Vec<Authority>,
    /// TCP connect allow-list.
    pub tcp_connect: Vec<SocketAddr>,
    /// (host folder, guest path), read-only.
    pub dirs: Vec<(PathBuf, String)>,
    /// (format, folder).
    pub nn_graphs: Vec<(String, PathBuf)>,
    /// Limits.
    pub limits: Limits,
}

impl Manifest {
    /// Parses the TOML text.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// The limits alone, checked (they use no variables).
    pub fn limits(&self) -> Result<Limits, String> {
        self.limits.check()
    }

    /// Expands, parses and checks every value. `var` reads the host's
    /// environment; `base` is the manifest's folder.
    pub fn resolve(
        &self,
        base: &Path,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Capabilities, String> {
        let expand = |s: &str| expand(s, &var);
        let path = |s: &str| -> Result<PathBuf, String> { Ok(base.join(expand(s)?)) };
        for name in &self.env {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!("env: `{name}` is not a variable name"));
            }
        }
        let outbound = self
            .http
            .outbound
            .iter()
            .map(|s| Authority::parse(&expand(s)?).map_err(|e| format!("http.outbound: {e}")))
            .collect::<Result<_, _>>()?;
        let tcp_connect = self
            .sockets
            .tcp_connect
            .iter()
            .map(|s| {
                let s = expand(s)?;
                s.parse::<SocketAddr>()
                    .map_err(|_| format!("sockets.tcp_connect: `{s}` is not ip:port"))
            })
            .collect::<Result<_, _>>()?;
        let dirs = self
            .dirs
            .iter()
            .map(|d| {
                if !d.guest.starts_with('/') {
                    return Err(format!("dirs: guest path `{}` must be absolute", d.guest));
                }
                Ok((path(&d.host)?, d.guest.clone()))
            })
            .collect::<Result<_, _>>()?;
        let nn_graphs = self
            .nn_graphs
            .iter()
            .map(|g| match g.format.as_str() {
                "openvino" => Ok((g.format.clone(), path(&g.dir)?)),
                other => Err(format!("nn_graphs: unsupported format `{other}`")),
            })
            .collect::<Result<_, _>>()?;
        Ok(Capabilities {
            env: self.env.clone(),
            outbound,
            tcp_connect,
            dirs,
            nn_graphs,
            limits: self.limits.check()?,
        })
    }
}

impl LimitsToml {
    fn check(&self) -> Result<Limits, String> {
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

/// `${VAR}` and `${VAR:-default}`; an unset variable without a default is an
/// error, so a manifest never silently grants `127.0.0.1:`.
fn expand(s: &str, var: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("`{s}`: unclosed ${{"))?;
        let (name, default) = match after[..end].split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (&after[..end], None),
        };
        match var(name).filter(|v| !v.is_empty()) {
            Some(v) => out.push_str(&v),
            None => out.push_str(default.ok_or_else(|| format!("`{s}`: ${name} is not set"))?),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "DAPR_HTTP_PORT" => Some("3503".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn resolve(text: &str) -> Result<Capabilities, String> {
        Manifest::parse(text)?.resolve(Path::new("/svc"), env)
    }

    #[test]
    fn a_full_manifest() {
        let caps = resolve(
            r#"
            env = ["DAPR_HTTP_PORT", "MAX_BODY_BYTES"]
            [http]
            outbound = ["127.0.0.1:${DAPR_HTTP_PORT}"]
            [sockets]
            tcp_connect = ["127.0.0.1:${DB_PORT:-3306}"]
            [[dirs]]
            host = "../model"
            guest = "/model"
            [[nn_graphs]]
            format = "openvino"
            dir = "../model"
            [limits]
            memory_mib = 1024
            request_timeout_secs = 30
            "#,
        )
        .expect("valid");
        assert_eq!(
            caps.outbound,
            vec![Authority::parse("127.0.0.1:3503").expect("a")]
        );
        assert_eq!(
            caps.tcp_connect,
            vec!["127.0.0.1:3306".parse().expect("addr")]
        );
        assert_eq!(
            caps.dirs,
            vec![(PathBuf::from("/svc/../model"), "/model".into())]
        );
        assert_eq!(caps.nn_graphs[0].1, PathBuf::from("/svc/../model"));
        assert_eq!(caps.limits.memory_bytes, 1 << 30);
        assert_eq!(caps.limits.request_timeout, Duration::from_secs(30));
        assert_eq!(caps.limits.max_concurrent_requests, 16);
    }

    #[test]
    fn the_memory_budget_bounds_instances_and_requests_at_once() {
        let limits = |t: &str| resolve(&format!("[limits]\n{t}")).expect("valid").limits;
        let l = limits("memory_mib = 512\nmemory_budget_mib = 1536\nmax_buffered_mib = 128");
        let plan = l.plan();
        assert_eq!((plan.instances, plan.slots), (3, 3), "the budget decides");
        assert_eq!(plan.worst_case_bytes, (1536 + 128) << 20);
        let plan = limits("memory_mib = 64\nmax_concurrent_requests = 4").plan();
        assert_eq!(
            (plan.instances, plan.slots),
            (16, 4),
            "the concurrency decides"
        );
        let d = limits("");
        assert_eq!(d.max_body_bytes, 1 << 20);
        assert_eq!(d.header_timeout, Duration::from_secs(10));
        assert_eq!(
            (d.max_connections, d.max_connections_per_client),
            (1024, 64)
        );
        assert_eq!(d.client_rate, None, "off unless asked for");
        assert_eq!(
            limits("client_rate_per_sec = 20").client_rate,
            Some((20, 40))
        );
    }

    #[test]
    fn an_empty_manifest_grants_nothing() {
        let caps = resolve("").expect("valid");
        assert!(caps.env.is_empty() && caps.outbound.is_empty() && caps.tcp_connect.is_empty());
        assert!(caps.dirs.is_empty() && caps.nn_graphs.is_empty());
    }

    #[test]
    fn mistakes_are_refused() {
        for (text, why) in [
            ("evn = []", "unknown field"),
            ("[http]\noutbound = [\"127.0.0.1\"]", "host:port"),
            (
                "[http]\noutbound = [\"127.0.0.1:${NOPE}\"]",
                "NOPE is not set",
            ),
            (
                "[http]\noutbound = [\"127.0.0.1:${EMPTY}\"]",
                "EMPTY is not set",
            ),
            (
                "[http]\noutbound = [\"127.0.0.1:${DAPR_HTTP_PORT\"]",
                "unclosed",
            ),
            (
                "[sockets]\ntcp_connect = [\"db.local:3306\"]",
                "not ip:port",
            ),
            ("[[dirs]]\nhost = \"x\"\nguest = \"model\"", "absolute"),
            (
                "[[nn_graphs]]\nformat = \"onnx\"\ndir = \"m\"",
                "unsupported format",
            ),
            ("[limits]\nmemory_mib = 0", "outside"),
            ("[limits]\nrequest_timeout_secs = 99999", "outside"),
            ("env = [\"A=B\"]", "not a variable name"),
            ("[limits]\nmemory_mb = 5", "unknown field"),
            (
                "[limits]\nmemory_mib = 512\nmemory_budget_mib = 256",
                "smaller than memory_mib",
            ),
            (
                "[limits]\nmax_body_bytes = 100000000",
                "smaller than max_body_bytes",
            ),
            (
                "[limits]\nmax_connections = 10\nmax_connections_per_client = 11",
                "over max_connections",
            ),
            ("[limits]\nheader_timeout_secs = 0", "outside"),
            ("[limits]\nclient_burst = 5", "set client_rate_per_sec"),
            ("[limits]\nclient_rate_per_sec = 0", "outside"),
        ] {
            let err = resolve(text).expect_err(text);
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}
