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

/// `[limits]`, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsToml {
    /// Linear memory per instance, MiB (default 256).
    pub memory_mib: Option<u64>,
    /// Deadline for a request to produce its response, seconds (default 60).
    pub request_timeout_secs: Option<u64>,
    /// Requests handled at once; more wait (default 16).
    pub max_concurrent_requests: Option<u32>,
    /// Requests an instance serves before a fresh one replaces it (default 1000).
    pub max_requests_per_instance: Option<u64>,
    /// An idle instance is dropped after this many seconds (default 600).
    pub idle_instance_secs: Option<u64>,
}

/// Limits, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of linear memory per instance.
    pub memory_bytes: usize,
    /// Request deadline.
    pub request_timeout: Duration,
    /// Concurrent requests.
    pub max_concurrent_requests: u32,
    /// Instance reuse.
    pub max_requests_per_instance: u64,
    /// Idle instance lifetime.
    pub idle_instance: Duration,
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
        fn within(name: &str, v: u64, lo: u64, hi: u64) -> Result<u64, String> {
            if (lo..=hi).contains(&v) {
                Ok(v)
            } else {
                Err(format!("limits.{name}: {v} is outside {lo}..={hi}"))
            }
        }
        let memory_mib = within("memory_mib", self.memory_mib.unwrap_or(256), 1, 4096)?;
        Ok(Limits {
            memory_bytes: usize::try_from(memory_mib << 20).map_err(|e| e.to_string())?,
            request_timeout: Duration::from_secs(within(
                "request_timeout_secs",
                self.request_timeout_secs.unwrap_or(60),
                1,
                3600,
            )?),
            max_concurrent_requests: within(
                "max_concurrent_requests",
                self.max_concurrent_requests.unwrap_or(16).into(),
                1,
                256,
            )? as u32,
            max_requests_per_instance: within(
                "max_requests_per_instance",
                self.max_requests_per_instance.unwrap_or(1000),
                1,
                u64::from(u32::MAX),
            )?,
            idle_instance: Duration::from_secs(within(
                "idle_instance_secs",
                self.idle_instance_secs.unwrap_or(600),
                1,
                86_400,
            )?),
        })
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
        ] {
            let err = resolve(text).expect_err(text);
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}
