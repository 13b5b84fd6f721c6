//! What `stack gen` derives from every service's manifest: ports, who may
//! invoke whom, each component's scopes, pub/sub topic scopes, each app's
//! secret scopes and Dapr API allow-list, the gateway's table. Pure: the
//! caller reads the files and renders the results.

use crate::dapr::{Invoke, topic};
use crate::{FILE, Manifest};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The first service's ports; each next service takes the next one of each.
/// Clear of the control plane's and the tests' own (SDK sidecar 3510-3516,
/// sentry 3520-3522, placement 3525-3528, the SDK tests' sentry, placement
/// and actor host 3560-3574, host tests 9120-9129, the name-resolution
/// soak 9105+, 3705+, 3715+, 9195+), and below the kernel's ephemeral range
/// (32768+), where an outgoing connection could take a port first.
pub const FIRST_PORTS: Ports = Ports {
    app: 9005,
    dapr_http: 3503,
    dapr_grpc: 3603,
    dapr_internal_grpc: 3803,
    metrics: 9093,
    host_metrics: 9293,
};

/// One service: a workspace member with a `service.toml`.
#[derive(Debug)]
pub struct Service {
    /// Its folder, relative to the repository (the app id).
    pub folder: String,
    /// Its manifest.
    pub manifest: Manifest,
    /// Where it and its sidecar listen.
    pub ports: Ports,
}

/// A service's ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// wasm-host.
    pub app: u16,
    /// daprd's HTTP API.
    pub dapr_http: u16,
    /// daprd's gRPC API.
    pub dapr_grpc: u16,
    /// daprd's internal gRPC (sidecar to sidecar). Fixed, because the Dapr
    /// CLI otherwise picks a free port in the ephemeral range and hands it to
    /// daprd seconds later, when a connection may have taken it.
    pub dapr_internal_grpc: u16,
    /// daprd's metrics.
    pub metrics: u16,
    /// wasm-host's metrics (`WASM_HOST_METRICS`).
    pub host_metrics: u16,
}

/// A Dapr component, as far as wiring goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Component {
    /// `metadata.name`.
    pub name: String,
    /// `spec.type`, e.g. `state.sqlite`.
    pub type_: String,
    /// `auth.secretStore`: where its own secretKeyRefs resolve.
    pub auth_secret_store: Option<String>,
    /// Its metadata `actorStateStore` is "true": where actors keep state.
    pub actor_state_store: bool,
    /// A state store's metadata `outboxPubsub`: the pub/sub its outbox's
    /// internal topics live on (without it, the one the outbox publishes to).
    pub outbox_pubsub: Option<String>,
}

impl Service {
    /// The app id.
    pub fn id(&self) -> &str {
        self.manifest.app.as_ref().map_or("", |a| a.id.as_str())
    }
}

/// The services of the workspace at `root`, in the order of its members.
pub fn read_services(root: &Path) -> Result<Vec<Service>, String> {
    let text =
        std::fs::read_to_string(root.join("Cargo.toml")).map_err(|e| format!("Cargo.toml: {e}"))?;
    let members = workspace_members(&text)?;
    let mut found = Vec::new();
    for m in members {
        let path = root.join(&m).join(FILE);
        if !path.exists() {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{m}/{FILE}: {e}"))?;
        let manifest = Manifest::parse(&text).map_err(|e| format!("{m}/{FILE}: {e}"))?;
        found.push((m, manifest));
    }
    assign(found)
}

/// `[workspace] members` of a Cargo.toml.
pub fn workspace_members(cargo_toml: &str) -> Result<Vec<String>, String> {
    let doc: toml::Table = toml::from_str(cargo_toml).map_err(|e| format!("Cargo.toml: {e}"))?;
    doc.get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(|m| m.as_array())
        .ok_or("Cargo.toml: no [workspace] members")?
        .iter()
        .map(|v| {
            v.as_str()
                .map(String::from)
                .ok_or("Cargo.toml: a member is not a string".into())
        })
        .collect()
}

/// Gives each service its ports and checks the services against each other.
pub fn assign(found: Vec<(String, Manifest)>) -> Result<Vec<Service>, String> {
    let mut services = Vec::new();
    for (i, (folder, manifest)) in found.into_iter().enumerate() {
        let app = manifest
            .app
            .as_ref()
            .ok_or_else(|| format!("{folder}/{FILE}: no [app]"))?;
        if app.id != folder {
            return Err(format!(
                "{folder}/{FILE}: app.id `{}` is not its folder's name",
                app.id
            ));
        }
        let i = u16::try_from(i).map_err(|_| "too many services")?;
        let next = |p: u16| p.checked_add(i).ok_or("ports ran out");
        let ports = Ports {
            app: match app.port {
                Some(p) => p,
                None => next(FIRST_PORTS.app)?,
            },
            dapr_http: next(FIRST_PORTS.dapr_http)?,
            dapr_grpc: next(FIRST_PORTS.dapr_grpc)?,
            dapr_internal_grpc: next(FIRST_PORTS.dapr_internal_grpc)?,
            metrics: next(FIRST_PORTS.metrics)?,
            host_metrics: next(FIRST_PORTS.host_metrics)?,
        };
        services.push(Service {
            folder,
            manifest,
            ports,
        });
    }
    check(&services)?;
    Ok(services)
}

fn check(services: &[Service]) -> Result<(), String> {
    let mut ports = BTreeMap::new();
    for s in services {
        let p = s.ports;
        for port in [
            p.app,
            p.dapr_http,
            p.dapr_grpc,
            p.dapr_internal_grpc,
            p.metrics,
            p.host_metrics,
        ] {
            if let Some(other) = ports.insert(port, s.id()) {
                return Err(format!("port {port}: both {other} and {}", s.id()));
            }
        }
    }
    for s in services {
        for i in &s.manifest.dapr.invoke {
            let target = services
                .iter()
                .find(|t| t.id() == i.app)
                .ok_or_else(|| format!("{}: dapr.invoke: no service `{}`", s.id(), i.app))?;
            let served = target
                .manifest
                .app
                .iter()
                .flat_map(|a| &a.routes)
                .any(|r| r.path == i.path && i.verbs.iter().all(|v| r.verbs.contains(v)));
            if !served {
                return Err(format!(
                    "{}: dapr.invoke: {} does not serve {:?} {}",
                    s.id(),
                    i.app,
                    i.verbs,
                    i.path
                ));
            }
        }
    }
    Ok(())
}

/// Every public route of every service: what the gateway may invoke.
pub fn public_routes(services: &[Service]) -> Vec<Invoke> {
    services
        .iter()
        .flat_map(|s| {
            s.manifest
                .app
                .iter()
                .flat_map(|a| &a.routes)
                .filter(|r| r.public)
                .map(|r| Invoke {
                    app: s.id().to_string(),
                    path: r.path.clone(),
                    verbs: r.verbs.clone(),
                })
        })
        .collect()
}

/// What `caller` may invoke, by target app.
fn invocations(caller: &Service, public: &[Invoke]) -> Vec<Invoke> {
    let d = &caller.manifest.dapr;
    let mut all = d.invoke.clone();
    if d.invoke_public {
        all.extend(public.iter().filter(|p| p.app != caller.id()).cloned());
    }
    all
}

/// (path, verbs) a caller may invoke.
pub type Operation = (String, Vec<String>);

/// Access control of `receiver`: (caller, operations) for each caller that
/// may invoke it.
pub fn callers(receiver: &str, services: &[Service]) -> Vec<(String, Vec<Operation>)> {
    let public = public_routes(services);
    services
        .iter()
        .filter_map(|c| {
            let ops: Vec<_> = invocations(c, &public)
                .into_iter()
                .filter(|i| i.app == receiver)
                .map(|i| (i.path, i.verbs))
                .collect();
            (!ops.is_empty()).then(|| (c.id().to_string(), ops))
        })
        .collect()
}

/// The secret names `app` may read, by store.
pub fn secrets_of(service: &Service) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in &service.manifest.dapr.secrets {
        if let Some((store, name)) = topic(s) {
            out.entry(store.into()).or_default().push(name.into());
        }
    }
    out
}

/// The components a service uses, each checked against its kind.
fn uses(s: &Service, components: &[Component]) -> Result<BTreeSet<String>, String> {
    let d = &s.manifest.dapr;
    let comp = |name: &str, kind: &str, what: &str| -> Result<&Component, String> {
        let c = components
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| format!("{}: dapr.{what}: no component `{name}`", s.id()))?;
        if !c.type_.starts_with(kind) {
            return Err(format!(
                "{}: dapr.{what}: `{name}` is a {}, not a {kind}* component",
                s.id(),
                c.type_
            ));
        }
        Ok(c)
    };
    let mut used = Vec::new();
    for n in &d.state {
        let store = comp(n, "state.", "state")?;
        used.push(store);
        // The sidecar of an app that publishes through the outbox reads and
        // writes the outbox's internal topic.
        if let (Some(p), false) = (&store.outbox_pubsub, d.outbox.is_empty()) {
            used.push(comp(p, "pubsub.", &format!("state: {n}'s outboxPubsub"))?);
        }
    }
    for (what, list) in [
        ("outbox", &d.outbox),
        ("publish", &d.publish),
        ("subscribe", &d.subscribe),
        ("dead_letters", &d.dead_letters),
    ] {
        for t in list {
            let (p, _) = topic(t).ok_or("checked")?;
            used.push(comp(p, "pubsub.", what)?);
        }
    }
    for t in &d.secrets {
        let (st, _) = topic(t).ok_or("checked")?;
        used.push(comp(st, "secretstores.", "secrets")?);
    }
    for n in &d.bindings {
        used.push(comp(n, "bindings.", "bindings")?);
    }
    for n in &d.configuration {
        used.push(comp(n, "configuration.", "configuration")?);
    }
    for n in &d.locks {
        used.push(comp(n, "lock.", "locks")?);
    }
    // daprd refuses to start with two actor state stores loaded.
    let actor_stores: BTreeSet<&str> = used
        .iter()
        .filter(|c| c.actor_state_store)
        .map(|c| c.name.as_str())
        .collect();
    if actor_stores.len() > 1 {
        let list: Vec<&str> = actor_stores.into_iter().collect();
        return Err(format!(
            "{}: dapr.state: {} are all marked actorStateStore; a sidecar takes one",
            s.id(),
            list.join(", ")
        ));
    }
    let mut names = BTreeSet::new();
    for c in used {
        names.insert(c.name.clone());
        if let Some(auth) = &c.auth_secret_store {
            names.insert(auth.clone());
        }
    }
    Ok(names)
}

/// Each component's `scopes`: the app ids that use it, in service order.
/// An unused component is scoped to no app.
pub fn component_scopes(
    services: &[Service],
    components: &[Component],
) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut out: BTreeMap<String, Vec<String>> = components
        .iter()
        .map(|c| (c.name.clone(), Vec::new()))
        .collect();
    for s in services {
        for name in uses(s, components)? {
            out.entry(name).or_default().push(s.id().to_string());
        }
    }
    Ok(out)
}

/// A pub/sub's topic scopes. Every app in its scopes is listed, with no
/// topics if it has none (`app=` denies all); every topic is protected and
/// allowed, so a made-up one is refused.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TopicScopes {
    /// (app, topics) it may publish to, its outbox's internal topic included.
    pub publishing: Vec<(String, Vec<String>)>,
    /// (app, topics) it may subscribe to.
    pub subscription: Vec<(String, Vec<String>)>,
    /// Every topic above.
    pub topics: Vec<String>,
}

/// The outbox's internal topic of `app` for `topic` (Dapr 1.18:
/// pkg/runtime/pubsub/outbox.go, namespace + app id + topic + "outbox").
pub fn outbox_topic(namespace: &str, app: &str, topic: &str) -> String {
    format!("{namespace}{app}{topic}outbox")
}

/// Topic scopes of pub/sub `pubsub` for apps in `namespace`.
pub fn topic_scopes(
    services: &[Service],
    components: &[Component],
    pubsub: &str,
    namespace: &str,
) -> TopicScopes {
    let mut out = TopicScopes::default();
    let on = |list: &[String]| -> Vec<String> {
        list.iter()
            .filter_map(|t| topic(t))
            .filter(|(p, _)| *p == pubsub)
            .map(|(_, t)| t.to_string())
            .collect()
    };
    for s in services {
        let d = &s.manifest.dapr;
        // Where its outbox's internal topics live: its state store's
        // outboxPubsub, or else the pub/sub the outbox publishes to.
        let coordinator = d
            .state
            .iter()
            .filter_map(|n| components.iter().find(|c| c.name == *n))
            .find_map(|c| c.outbox_pubsub.as_deref());
        let mut publishing = Vec::new();
        for (p, t) in d.outbox.iter().filter_map(|t| topic(t)) {
            if coordinator.unwrap_or(p) == pubsub {
                publishing.push(outbox_topic(namespace, s.id(), t));
            }
            if p == pubsub {
                publishing.push(t.to_string());
            }
        }
        publishing.extend(on(&d.publish));
        publishing.extend(on(&d.dead_letters));
        let subscription = on(&d.subscribe);
        if publishing.is_empty() && subscription.is_empty() {
            continue;
        }
        dedup(&mut publishing);
        out.topics
            .extend(publishing.iter().chain(&subscription).cloned());
        out.publishing.push((s.id().to_string(), publishing));
        out.subscription.push((s.id().to_string(), subscription));
    }
    dedup(&mut out.topics);
    out
}

fn dedup(v: &mut Vec<String>) {
    let mut seen = BTreeSet::new();
    v.retain(|x| seen.insert(x.clone()));
}

#[cfg(test)]
mod tests;
