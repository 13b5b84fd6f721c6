//! The service's manifest (`service.toml`, parsed by the `manifest` crate),
//! resolved into what the host grants: values may use `${VAR}` or
//! `${VAR:-default}` from the host's environment; relative paths are
//! relative to the manifest's folder.

use crate::Authority;
use service_manifest::{Invoke, PUBLIC_ROUTES_FILE};
pub use service_manifest::{Limits, Manifest, Plan, SidecarPolicy};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
    /// The sidecar's HTTP API, if it has one: every request there is
    /// checked against `policy`.
    pub sidecar: Option<Authority>,
    /// The `[dapr]` rights.
    pub policy: SidecarPolicy,
    /// `[app] id`, if a service: the name on its spans.
    pub app_id: Option<String>,
    /// `[app] routes`' paths: the route labels of its metrics.
    pub routes: Vec<String>,
}

/// Expands, parses and checks every value. `var` reads the host's
/// environment; `base` is the manifest's folder. The sidecar is
/// `127.0.0.1:$DAPR_HTTP_PORT`; a gateway (`invoke_public`) reads the
/// public routes `stack gen` wrote beside its manifest.
pub fn resolve(
    m: &Manifest,
    base: &Path,
    var: impl Fn(&str) -> Option<String>,
) -> Result<Capabilities, String> {
    let public = if m.dapr.invoke_public {
        let file = base.join(PUBLIC_ROUTES_FILE);
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("{}: {e} (written by `stack gen`)", file.display()))?;
        service_manifest::dapr::parse_public_routes(&text)
            .map_err(|e| format!("{}: {e}", file.display()))?
    } else {
        Vec::<Invoke>::new()
    };
    let sidecar = match var("DAPR_HTTP_PORT").filter(|v| !v.is_empty()) {
        Some(port) => Some(
            Authority::parse(&format!("127.0.0.1:{port}"))
                .map_err(|e| format!("DAPR_HTTP_PORT: {e}"))?,
        ),
        None => None,
    };
    let caps = resolve_caps(m, base, var)?;
    Ok(Capabilities {
        sidecar,
        policy: SidecarPolicy::new(&m.dapr, public),
        app_id: m.app.as_ref().map(|a| a.id.clone()),
        routes: m
            .app
            .iter()
            .flat_map(|a| &a.routes)
            .map(|r| r.path.clone())
            .collect(),
        ..caps
    })
}

fn resolve_caps(
    m: &Manifest,
    base: &Path,
    var: impl Fn(&str) -> Option<String>,
) -> Result<Capabilities, String> {
    let expand = |s: &str| expand(s, &var);
    let path = |s: &str| -> Result<PathBuf, String> { Ok(base.join(expand(s)?)) };
    for name in &m.env {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("env: `{name}` is not a variable name"));
        }
    }
    let outbound = m
        .http
        .outbound
        .iter()
        .map(|s| Authority::parse(&expand(s)?).map_err(|e| format!("http.outbound: {e}")))
        .collect::<Result<_, _>>()?;
    let tcp_connect = m
        .sockets
        .tcp_connect
        .iter()
        .map(|s| {
            let s = expand(s)?;
            s.parse::<SocketAddr>()
                .map_err(|_| format!("sockets.tcp_connect: `{s}` is not ip:port"))
        })
        .collect::<Result<_, _>>()?;
    let dirs = m
        .dirs
        .iter()
        .map(|d| {
            if !d.guest.starts_with('/') {
                return Err(format!("dirs: guest path `{}` must be absolute", d.guest));
            }
            Ok((path(&d.host)?, d.guest.clone()))
        })
        .collect::<Result<_, _>>()?;
    let nn_graphs = m
        .nn_graphs
        .iter()
        .map(|g| match g.format.as_str() {
            "openvino" => Ok((g.format.clone(), path(&g.dir)?)),
            other => Err(format!("nn_graphs: unsupported format `{other}`")),
        })
        .collect::<Result<_, _>>()?;
    Ok(Capabilities {
        env: m.env.clone(),
        outbound,
        tcp_connect,
        dirs,
        nn_graphs,
        limits: m.limits()?,
        sidecar: None,
        policy: SidecarPolicy::default(),
        app_id: None,
        routes: Vec::new(),
    })
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
    use std::time::Duration;

    fn env(name: &str) -> Option<String> {
        match name {
            "DAPR_HTTP_PORT" => Some("3503".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn resolved(text: &str) -> Result<Capabilities, String> {
        resolve(&Manifest::parse(text)?, Path::new("/svc"), env)
    }

    #[test]
    fn a_full_manifest() {
        let caps = resolved(
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
        // The sidecar is DAPR_HTTP_PORT's; no [dapr]: only its health.
        assert_eq!(
            caps.sidecar,
            Some(Authority::parse("127.0.0.1:3503").expect("a"))
        );
        assert!(caps.policy.check("GET", "/v1.0/healthz").is_ok());
        assert!(
            caps.policy
                .check("GET", "/v1.0/state/statestore/k")
                .is_err()
        );
    }

    #[test]
    fn the_memory_budget_bounds_instances_and_requests_at_once() {
        let limits = |t: &str| resolved(&format!("[limits]\n{t}")).expect("valid").limits;
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
        let caps = resolved("").expect("valid");
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
            let err = resolved(text).expect_err(text);
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}
