//! `[dapr]`: what a component may ask of its sidecar, and the check wasm-host
//! applies to every request the component sends there. Dapr enforces the
//! same rights from the same manifest (`wiring`: access control, scopes, API
//! allow-list): each layer denies on its own.

use serde::Deserialize;

/// `[dapr]` as written. Stores, pub/subs and bindings are component names
/// (config/components); topics and secrets are `component/name`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dapr {
    /// Every Dapr API, unchecked: for host manifests of the SDK's own tests,
    /// never for a service.
    #[serde(default)]
    pub unrestricted: bool,
    /// State stores: get, save, delete, bulk, transactions, query.
    #[serde(default)]
    pub state: Vec<String>,
    /// Topics its state transactions publish through the store's outbox: no
    /// publish API, but its sidecar publishes there (pub/sub scopes).
    #[serde(default)]
    pub outbox: Vec<String>,
    /// Topics it publishes to through the publish API.
    #[serde(default)]
    pub publish: Vec<String>,
    /// Topics it subscribes to (its sidecar delivers them).
    #[serde(default)]
    pub subscribe: Vec<String>,
    /// Dead-letter topics of its subscriptions (its sidecar publishes there).
    #[serde(default)]
    pub dead_letters: Vec<String>,
    /// Secrets it reads.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Routes of other apps it invokes.
    #[serde(default)]
    pub invoke: Vec<Invoke>,
    /// It may invoke every public route of every service (the gateway).
    #[serde(default)]
    pub invoke_public: bool,
    /// Output bindings it invokes.
    #[serde(default)]
    pub bindings: Vec<String>,
    /// Configuration stores it reads or subscribes to.
    #[serde(default)]
    pub configuration: Vec<String>,
    /// Lock stores it locks and unlocks in.
    #[serde(default)]
    pub locks: Vec<String>,
    /// Reads its sidecar's metadata (never writes it).
    #[serde(default)]
    pub metadata: bool,
    /// Actor types it calls (methods, timers, reminders) or hosts (their
    /// state too): `/v1.0/actors/{type}/...`.
    #[serde(default)]
    pub actors: Vec<String>,
}

/// `{ app = "...", path = "/...", verbs = [...] }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invoke {
    /// Target app id.
    pub app: String,
    /// Route on it.
    pub path: String,
    /// HTTP methods.
    pub verbs: Vec<String>,
}

/// Splits `component/name`.
pub fn topic(s: &str) -> Option<(&str, &str)> {
    let (c, n) = s.split_once('/')?;
    (crate::is_name(c) && is_item(n)).then_some((c, n))
}

/// A topic or secret name: Dapr allows more than app ids do (dots, upper
/// case), but never a path separator or an escape.
fn is_item(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

impl Dapr {
    /// Every name well formed.
    pub fn check(&self) -> Result<(), String> {
        let names = |what: &str, list: &[String]| match list.iter().find(|s| !crate::is_name(s)) {
            Some(s) => Err(format!("dapr.{what}: `{s}` is not a component name")),
            None => Ok(()),
        };
        names("state", &self.state)?;
        names("bindings", &self.bindings)?;
        names("configuration", &self.configuration)?;
        names("locks", &self.locks)?;
        for (what, list) in [
            ("outbox", &self.outbox),
            ("publish", &self.publish),
            ("subscribe", &self.subscribe),
            ("dead_letters", &self.dead_letters),
        ] {
            if let Some(s) = list.iter().find(|s| topic(s).is_none()) {
                return Err(format!("dapr.{what}: `{s}` is not pubsub/topic"));
            }
        }
        if let Some(s) = self.actors.iter().find(|s| !is_item(s)) {
            return Err(format!("dapr.actors: `{s}` is not an actor type"));
        }
        if let Some(s) = self.secrets.iter().find(|s| topic(s).is_none()) {
            return Err(format!("dapr.secrets: `{s}` is not store/name"));
        }
        for i in &self.invoke {
            if !crate::is_name(&i.app) {
                return Err(format!("dapr.invoke: `{}` is not an app id", i.app));
            }
            crate::check_route("dapr.invoke", &i.path, &i.verbs)?;
        }
        Ok(())
    }

    /// Whether it asks anything of Dapr's APIs at all.
    pub fn uses_any_api(&self) -> bool {
        !self.apis(&[]).is_empty()
    }

    /// The Dapr API groups it calls (Dapr's `api.allowed` names and
    /// versions), given the public routes it may invoke as the gateway.
    pub fn apis(&self, public: &[Invoke]) -> Vec<(&'static str, &'static str)> {
        let mut apis = Vec::new();
        let mut add = |on: bool, name, version| {
            if on {
                apis.push((name, version));
            }
        };
        add(!self.state.is_empty(), "state", "v1.0");
        add(!self.publish.is_empty(), "publish", "v1.0");
        add(
            !self.invoke.is_empty() || (self.invoke_public && !public.is_empty()),
            "invoke",
            "v1.0",
        );
        add(!self.secrets.is_empty(), "secrets", "v1.0");
        add(!self.bindings.is_empty(), "bindings", "v1.0");
        add(!self.configuration.is_empty(), "configuration", "v1.0");
        add(!self.locks.is_empty(), "lock", "v1.0-alpha1");
        add(!self.locks.is_empty(), "unlock", "v1.0-alpha1");
        add(self.metadata, "metadata", "v1.0");
        add(!self.actors.is_empty(), "actors", "v1.0");
        apis
    }
}

/// The public routes file's rows, as `stack gen` writes them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicRoutes {
    #[serde(default)]
    invoke: Vec<Invoke>,
}

/// Parses the gateway's public routes (`public-routes.toml`).
pub fn parse_public_routes(text: &str) -> Result<Vec<Invoke>, String> {
    let rows: PublicRoutes = toml::from_str(text).map_err(|e| e.to_string())?;
    for i in &rows.invoke {
        crate::check_route("invoke", &i.path, &i.verbs)?;
    }
    Ok(rows.invoke)
}

/// Writes them, for `parse_public_routes`.
pub fn render_public_routes(routes: &[Invoke]) -> String {
    let mut out = String::new();
    for i in routes {
        let verbs: Vec<String> = i.verbs.iter().map(|v| format!("\"{v}\"")).collect();
        out.push_str(&format!(
            "[[invoke]]\napp = \"{}\"\npath = \"{}\"\nverbs = [{}]\n",
            i.app,
            i.path,
            verbs.join(", ")
        ));
    }
    out
}

/// The check wasm-host applies to each request to the sidecar.
#[derive(Debug, Clone, Default)]
pub struct SidecarPolicy {
    unrestricted: bool,
    state: Vec<String>,
    publish: Vec<String>,
    secrets: Vec<String>,
    invoke: Vec<Invoke>,
    bindings: Vec<String>,
    configuration: Vec<String>,
    locks: Vec<String>,
    metadata: bool,
    actors: Vec<String>,
}

impl SidecarPolicy {
    /// The rights of `dapr`, plus `public`: the public routes of every
    /// service, if it is the gateway.
    pub fn new(dapr: &Dapr, public: Vec<Invoke>) -> Self {
        let mut invoke = dapr.invoke.clone();
        if dapr.invoke_public {
            invoke.extend(public);
        }
        Self {
            unrestricted: dapr.unrestricted,
            state: dapr.state.clone(),
            publish: dapr.publish.clone(),
            secrets: dapr.secrets.clone(),
            invoke,
            bindings: dapr.bindings.clone(),
            configuration: dapr.configuration.clone(),
            locks: dapr.locks.clone(),
            metadata: dapr.metadata,
            actors: dapr.actors.clone(),
        }
    }

    /// `Ok` if the manifest grants `method` on `path_and_query`, else why not.
    pub fn check(&self, method: &str, path_and_query: &str) -> Result<(), String> {
        if self.unrestricted {
            return Ok(());
        }
        let path = path_and_query.split(['?', '#']).next().unwrap_or("");
        let segs = segments(path).ok_or_else(|| format!("`{path}` is not a plain path"))?;
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let has = |list: &[String], item: &str| list.iter().any(|s| s == item);
        let granted = match segs.as_slice() {
            ["v1.0", "healthz"] | ["v1.0", "healthz", "outbound"] => method == "GET",
            ["v1.0", "state", store, ..] | ["v1.0-alpha1", "state", store, "query"] => {
                has(&self.state, store)
            }
            ["v1.0", "publish", pubsub, topic] => has(&self.publish, &format!("{pubsub}/{topic}")),
            ["v1.0", "secrets", store, name] if *name != "bulk" => {
                has(&self.secrets, &format!("{store}/{name}"))
            }
            ["v1.0", "invoke", app, "method", route @ ..] if !route.is_empty() => {
                let route = format!("/{}", route.join("/"));
                self.invoke.iter().any(|i| {
                    i.app == *app && i.path == route && i.verbs.iter().any(|v| v == method)
                })
            }
            ["v1.0", "bindings", name] => has(&self.bindings, name),
            ["v1.0" | "v1.0-alpha1", "configuration", store, ..] => has(&self.configuration, store),
            ["v1.0-alpha1", "lock" | "unlock", store] => has(&self.locks, store),
            ["v1.0", "metadata"] => self.metadata && method == "GET",
            ["v1.0", "actors", ty, _, ..] => has(&self.actors, ty),
            _ => false,
        };
        if granted {
            Ok(())
        } else {
            Err(format!(
                "{method} {path} is not granted by its service.toml [dapr]"
            ))
        }
    }
}

/// The path's segments, percent-decoded as Dapr decodes them; `None` for
/// anything a router might read otherwise (`..`, an encoded `/`, bad UTF-8).
fn segments(path: &str) -> Option<Vec<String>> {
    let rest = path.strip_prefix('/')?;
    rest.split('/')
        .map(|seg| {
            let bytes = seg.as_bytes();
            let mut out = Vec::with_capacity(bytes.len());
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'%' {
                    let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                    out.push(u8::from_str_radix(hex, 16).ok()?);
                    i += 3;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            let s = String::from_utf8(out).ok()?;
            let odd = s.is_empty() || s == "." || s == ".." || s.contains(['/', '\\']);
            (!odd).then_some(s)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str, public: Vec<Invoke>) -> SidecarPolicy {
        let m = crate::Manifest::parse(text).expect("manifest");
        SidecarPolicy::new(&m.dapr, public)
    }

    fn public() -> Vec<Invoke> {
        vec![Invoke {
            app: "image-api-grayscale".into(),
            path: "/grayscale".into(),
            verbs: vec!["POST".into()],
        }]
    }

    #[test]
    fn actors_by_type() {
        let p = policy("[dapr]\nactors = [\"Counter\"]", vec![]);
        for (m, path) in [
            ("PUT", "/v1.0/actors/Counter/k/method/increment"),
            ("GET", "/v1.0/actors/Counter/k/state/count"),
            ("POST", "/v1.0/actors/Counter/k/state"),
            ("POST", "/v1.0/actors/Counter/k/timers/tick"),
            ("DELETE", "/v1.0/actors/Counter/k/reminders/r"),
        ] {
            assert_eq!(p.check(m, path), Ok(()), "{m} {path}");
        }
        for path in [
            "/v1.0/actors/Other/k/method/increment",
            "/v1.0/actors/Counter",
            "/v1.0/actors/Count%65r/../Other/k/method/m",
        ] {
            assert!(p.check("PUT", path).is_err(), "{path}");
        }
        let bad = crate::Manifest::parse("[dapr]\nactors = [\"a/b\"]");
        assert!(bad.is_err());
    }

    #[test]
    fn only_what_the_manifest_grants() {
        let p = policy(
            r#"[dapr]
            state = ["statestore"]
            outbox = ["pubsub/events"]
            secrets = ["secretstore/db-url"]
            invoke = [{ app = "events-service", path = "/events", verbs = ["GET"] }]
            locks = ["lockstore"]
            "#,
            public(),
        );
        for (m, path) in [
            ("GET", "/v1.0/state/statestore/client-1?consistency=strong"),
            ("POST", "/v1.0/state/statestore/transaction"),
            ("DELETE", "/v1.0/state/statestore/a%20b"),
            ("POST", "/v1.0-alpha1/state/statestore/query"),
            ("GET", "/v1.0/secrets/secretstore/db-url"),
            ("GET", "/v1.0/invoke/events-service/method/events?limit=5"),
            ("POST", "/v1.0-alpha1/lock/lockstore"),
            ("GET", "/v1.0/healthz"),
            ("GET", "/v1.0/healthz/outbound"),
            ("GET", "/v1.0/state/%73tatestore/k"),
        ] {
            assert_eq!(p.check(m, path), Ok(()), "{m} {path}");
        }
        for (m, path) in [
            ("POST", "/v1.0/publish/pubsub/events"),
            ("POST", "/v1.0/publish/pubsub/made-up"),
            ("GET", "/v1.0/state/other/k"),
            ("GET", "/v1.0/secrets/secretstore/other"),
            ("GET", "/v1.0/secrets/secretstore/bulk"),
            ("GET", "/v1.0/secrets/brokersecrets/broker-password"),
            ("POST", "/v1.0/invoke/events-service/method/events"),
            ("GET", "/v1.0/invoke/events-service/method/init"),
            ("GET", "/v1.0/invoke/events-service/method/events/../init"),
            (
                "GET",
                "/v1.0/invoke/events-service/method/events%2F..%2Finit",
            ),
            ("POST", "/v1.0/invoke/image-api-grayscale/method/grayscale"),
            ("GET", "/v1.0/metadata"),
            ("PUT", "/v1.0/metadata/foo"),
            ("POST", "/v1.0/shutdown"),
            ("POST", "/v1.0/bindings/files"),
            ("POST", "/v1.0-alpha1/unlock/other"),
            ("GET", "/v1.0/state//k"),
            ("GET", "/v1.0/state/statestore%2Fx/k"),
            ("GET", "/v1.0/state/%zz/k"),
            ("POST", "/v1.0/healthz"),
            ("GET", "v1.0/healthz"),
            ("GET", "/v1.0/actors/a/b/method/c"),
        ] {
            let err = p.check(m, path).expect_err(path);
            assert!(
                err.contains("not granted") || err.contains("plain path"),
                "{err}"
            );
        }
    }

    #[test]
    fn the_gateway_invokes_the_public_routes_and_nothing_else() {
        let p = policy("[dapr]\ninvoke_public = true", public());
        assert!(
            p.check("POST", "/v1.0/invoke/image-api-grayscale/method/grayscale")
                .is_ok()
        );
        assert!(
            p.check("GET", "/v1.0/invoke/image-api-grayscale/method/grayscale")
                .is_err()
        );
        assert!(
            p.check("POST", "/v1.0/invoke/image-api-grayscale/method/healthz")
                .is_err()
        );
        let p = policy("", public());
        assert!(
            p.check("POST", "/v1.0/invoke/image-api-grayscale/method/grayscale")
                .is_err()
        );
        assert!(
            p.check("GET", "/v1.0/healthz").is_ok(),
            "health is always readable"
        );
        let p = policy("[dapr]\nunrestricted = true", vec![]);
        assert!(p.check("POST", "/v1.0/shutdown").is_ok());
    }

    #[test]
    fn api_groups_follow_the_rights() {
        let m =
            crate::Manifest::parse("[dapr]\nstate = [\"s\"]\noutbox = [\"p/t\"]\nlocks = [\"l\"]")
                .expect("m");
        assert_eq!(
            m.dapr.apis(&[]),
            vec![
                ("state", "v1.0"),
                ("lock", "v1.0-alpha1"),
                ("unlock", "v1.0-alpha1")
            ]
        );
        let gw = crate::Manifest::parse("[dapr]\ninvoke_public = true").expect("m");
        assert_eq!(gw.dapr.apis(&public()), vec![("invoke", "v1.0")]);
        assert!(!crate::Manifest::default().dapr.uses_any_api());
    }

    #[test]
    fn public_routes_round_trip() {
        let text = render_public_routes(&public());
        assert_eq!(parse_public_routes(&text), Ok(public()));
        assert!(
            parse_public_routes("[[invoke]]\napp = \"a\"\npath = \"x\"\nverbs = [\"GET\"]")
                .is_err()
        );
    }
}
