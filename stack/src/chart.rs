//! `deploy/chart/files/services.yaml`: the services' wiring as the Helm
//! chart's templates read it, derived as `generate` derives the local files.

use crate::generate::{header, quoted};
use service_manifest::FILE;
use service_manifest::wiring::{self, Component, Service};
use std::fmt::Write as _;

/// What the Helm chart reads (`.Files.Get`): each service's wiring, the
/// same derivation as the local files. Outbox topic names hold
/// `{namespace}`, which the chart replaces with the release's.
pub fn chart_services(services: &[Service], components: &[Component]) -> Result<String, String> {
    let mut y = header(&format!("every <service>/{FILE}"));
    y.push_str("# Read by deploy/chart's templates; values.yaml sizes each service.\nservices:\n");
    for s in services {
        let id = s.id();
        let m = &s.manifest;
        let worst = m.limits()?.plan().worst_case_bytes >> 20;
        let _ = writeln!(y, "  {id}:\n    port: {}", s.ports.app);
        if let Some(n) = m.app.as_ref().and_then(|a| a.max_concurrency) {
            let _ = writeln!(y, "    appMaxConcurrency: {n}");
        }
        let _ = writeln!(y, "    gateway: {}", m.dapr.invoke_public);
        let _ = writeln!(y, "    env: [{}]", quoted(&m.env));
        let _ = writeln!(y, "    worstCaseMi: {worst}");
        let _ = writeln!(y, "    hasGraphs: {}", !m.nn_graphs.is_empty());
        let callers = wiring::callers(id, services);
        let _ = writeln!(
            y,
            "    callers:{}",
            if callers.is_empty() { " []" } else { "" }
        );
        for (caller, ops) in callers {
            let _ = writeln!(y, "      - appId: {caller}\n        operations:");
            for (path, verbs) in ops {
                let _ = writeln!(
                    y,
                    "          - {{name: {path}, httpVerb: [{}]}}",
                    quoted(&verbs)
                );
            }
        }
        let secrets = wiring::secrets_of(s);
        let _ = writeln!(
            y,
            "    secrets:{}",
            if secrets.is_empty() { " {}" } else { "" }
        );
        for (store, names) in secrets {
            let _ = writeln!(y, "      {store}: [{}]", quoted(&names));
        }
        let public: Vec<_> = wiring::public_routes(services)
            .into_iter()
            .filter(|p| p.app != id)
            .collect();
        let mut apis = m.dapr.apis(&public);
        if apis.is_empty() {
            apis.push(("healthz", "v1.0"));
        }
        let _ = writeln!(y, "    apis:");
        for (name, version) in apis {
            let _ = writeln!(y, "      - {{name: {name}, version: {version}}}");
        }
    }
    y.push_str("componentScopes:\n");
    for (name, apps) in wiring::component_scopes(services, components)? {
        let _ = writeln!(y, "  {name}: [{}]", quoted(&apps));
    }
    y.push_str("topicScopes:\n");
    for c in components.iter().filter(|c| c.type_.starts_with("pubsub.")) {
        let t = wiring::topic_scopes(services, components, &c.name, "{namespace}");
        let list = |rows: &[(String, Vec<String>)]| {
            rows.iter()
                .map(|(app, topics)| format!("{app}={}", topics.join(",")))
                .collect::<Vec<_>>()
                .join(";")
        };
        let _ = writeln!(
            y,
            "  {}:\n    publishingScopes: \"{}\"\n    subscriptionScopes: \"{}\"\n    topics: \"{}\"",
            c.name,
            list(&t.publishing),
            list(&t.subscription),
            t.topics.join(",")
        );
    }
    Ok(y)
}
