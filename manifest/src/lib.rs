//! A service's manifest, `service.toml` in its folder: the one place that
//! says what the service is (`[app]`: id, port, routes), what it may ask of
//! Dapr (`[dapr]`: stores, topics, secrets, invocations, ...) and what the
//! host grants its component (`env`, `[http]`, `[sockets]`, `[[dirs]]`,
//! `[[nn_graphs]]`, `[limits]`). wasm-host reads it to serve the component
//! and to check each call to the sidecar (`dapr::SidecarPolicy`); `stack gen`
//! derives the Dapr wiring from all of them (`wiring`). A manifest without
//! `[app]` is a host manifest only (the SDK's and the benchmark's).

pub mod dapr;
pub mod limits;
pub mod wiring;

pub use dapr::{Dapr, Invoke, SidecarPolicy};
pub use limits::{Limits, LimitsToml, Plan};

use serde::Deserialize;

/// The file's name in a service's folder.
pub const FILE: &str = "service.toml";

/// Beside a gateway's manifest: the public routes of every service, written
/// by `stack gen`, read by wasm-host.
pub const PUBLIC_ROUTES_FILE: &str = "public-routes.toml";

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The service: absent in a host-only manifest.
    pub app: Option<App>,
    /// What the component may ask of its sidecar. Absent: nothing.
    #[serde(default)]
    pub dapr: Dapr,
    /// Environment variables passed into the component, by name.
    #[serde(default)]
    pub env: Vec<String>,
    /// Outbound HTTP besides the sidecar.
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

/// `[app]`: the service as Dapr and its callers see it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    /// Dapr app id: the service's folder and package name too.
    pub id: String,
    /// Where wasm-host listens. Absent: assigned from the service's place in
    /// the workspace (`wiring`).
    pub port: Option<u16>,
    /// Requests its sidecar hands it at once (`appMaxConcurrency`).
    pub max_concurrency: Option<u32>,
    /// The routes it serves to other apps.
    #[serde(default)]
    pub routes: Vec<Route>,
}

/// `[[app.routes]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Path, from `/`, matched exactly.
    pub path: String,
    /// HTTP methods.
    pub verbs: Vec<String>,
    /// Reached from outside through web's gateway at `/api<path>`.
    #[serde(default)]
    pub public: bool,
}

/// `[http]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    /// `host:port` a component may send requests to, besides its sidecar.
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

const VERBS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

impl Manifest {
    /// Parses the TOML text and checks what needs no other manifest.
    pub fn parse(text: &str) -> Result<Self, String> {
        let m: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        m.check()?;
        Ok(m)
    }

    /// The limits alone, checked (they use no variables).
    pub fn limits(&self) -> Result<Limits, String> {
        self.limits.check()
    }

    fn check(&self) -> Result<(), String> {
        self.limits.check()?;
        if let Some(app) = &self.app {
            if !is_name(&app.id) {
                return Err(format!(
                    "app.id: `{}` must be lower-case letters, digits and inner dashes",
                    app.id
                ));
            }
            if app.port == Some(0) {
                return Err("app.port: 0 is not a port".into());
            }
            for r in &app.routes {
                check_route("app.routes", &r.path, &r.verbs)?;
            }
            if self.dapr.unrestricted {
                return Err("dapr.unrestricted: a service declares its rights".into());
            }
        }
        self.dapr.check()
    }
}

/// A Dapr name (app id, component, topic, secret): what Dapr and Kubernetes
/// both accept, so a name is never quoted or escaped anywhere it lands.
pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn check_route(what: &str, path: &str, verbs: &[String]) -> Result<(), String> {
    let plain = |seg: &str| {
        !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
    };
    if !path.starts_with('/') || !path[1..].split('/').all(plain) {
        return Err(format!(
            "{what}: `{path}` must be a plain absolute path (no query, no `..`, no escapes)"
        ));
    }
    if verbs.is_empty() {
        return Err(format!("{what}: `{path}` has no verbs"));
    }
    if let Some(v) = verbs.iter().find(|v| !VERBS.contains(&v.as_str())) {
        return Err(format!("{what}: `{v}` is not an HTTP method (upper case)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repositorys_manifests_parse() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let services = wiring::read_services(&root).expect("services");
        assert!(services.len() >= 4, "{services:?}");
    }

    #[test]
    fn mistakes_are_refused_with_the_reason() {
        for (text, why) in [
            ("evn = []", "unknown field"),
            ("[app]\nid = \"Web\"", "lower-case"),
            ("[app]\nid = \"-web\"", "lower-case"),
            ("[app]\nid = \"w\"\nport = 0", "not a port"),
            (
                "[app]\nid = \"w\"\n[[app.routes]]\npath = \"x\"\nverbs = [\"GET\"]",
                "plain absolute path",
            ),
            (
                "[app]\nid = \"w\"\n[[app.routes]]\npath = \"/a/../b\"\nverbs = [\"GET\"]",
                "plain absolute path",
            ),
            (
                "[app]\nid = \"w\"\n[[app.routes]]\npath = \"/a\"\nverbs = [\"get\"]",
                "not an HTTP method",
            ),
            (
                "[app]\nid = \"w\"\n[[app.routes]]\npath = \"/a\"\nverbs = []",
                "no verbs",
            ),
            (
                "[app]\nid = \"w\"\n[dapr]\nunrestricted = true",
                "declares its rights",
            ),
            ("[dapr]\nstate = [\"State\"]", "dapr.state"),
            ("[dapr]\npublish = [\"pubsub\"]", "pubsub/topic"),
            ("[dapr]\nsecrets = [\"store/a/b\"]", "store/name"),
            ("[dapr]\nstore = []", "unknown field"),
            (
                "[dapr]\ninvoke = [{app = \"x\", path = \"/a\", verbs = []}]",
                "no verbs",
            ),
            ("[limits]\nmemory_mib = 0", "outside"),
        ] {
            let err = Manifest::parse(text).expect_err(text);
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}
