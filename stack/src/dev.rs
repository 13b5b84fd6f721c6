//! The Dapr CLI way (`dapr run -f dapr.dev.yaml`, or `dapr run` for one
//! service): its run file and each app's development Configuration
//! (`config/dev/<app>.yaml`), derived from the manifests like the
//! supervisor's. The CLI starts no sentry and hands out no certificates,
//! and Dapr's access control identifies a caller only by its mTLS
//! certificate (without one it applies the default action to every call),
//! so these configurations have no `accessControl`: any sidecar on the
//! machine may invoke any app. And each sidecar allows the invocation API,
//! so a developer can call any one service through its own sidecar, as
//! Dapr's docs do (its component still cannot: wasm-host checks its calls
//! against the manifest). Everything else holds: secret scopes, the rest of
//! each app's Dapr API allow-list, component scopes, the API tokens,
//! wasm-host's checks, Dapr's API on loopback. (The CLI sends no API token
//! for its own bookkeeping in the metadata API, so `dapr run` warns that it
//! could not record its pid, and `dapr stop` stops an app by its daprd.)

use crate::generate::{api_allowed, app_entry, header, secret_scopes};
use service_manifest::FILE;
use service_manifest::wiring::Service;
use std::fmt::Write as _;

/// The CLI's run file.
pub fn run_file(services: &[Service]) -> String {
    let mut y = header(&format!("every <service>/{FILE}"));
    y.push_str(
        "# The apps for the Dapr CLI, a development path beside the supervisor\n\
         # (README: \"Two ways to run it\"): `dapr run -f dapr.dev.yaml`, after\n\
         # scripts/setup and with the tokens in the environment. No sentry, so no\n\
         # mTLS and no access control (config/dev/ says what it relaxes), no\n\
         # restarts. An app's relative paths are from its folder.\n\
         version: 1\n\
         common:\n\
         \x20 resourcesPaths: [./config/components]\n\
         \x20 logLevel: info\n\
         \x20 # Dapr's HTTP and gRPC APIs on loopback. The CLI has no flag for its\n\
         \x20 # internal gRPC and metrics listeners: those are on every address.\n\
         \x20 apiListenAddresses: 127.0.0.1\n\
         \x20 env:\n\
         \x20   WASM_HOST_ZIPKIN: http://127.0.0.1:9411/api/v2/spans\n\
         \x20   MALLOC_MMAP_THRESHOLD_: \"1048576\"\n\
         apps:\n",
    );
    for s in services {
        // An app's paths are from its folder, for the CLI.
        y.push_str(&app_entry(s, &format!("../config/dev/{}.yaml", s.id())));
    }
    y
}

/// An app's development Configuration: the shared one (`base`, the text of
/// config/config.yaml; the CLI passes one configuration, not two), its
/// secret scopes and its API allow-list, with the invocation API.
pub fn app_config(s: &Service, services: &[Service], stores: &[String], base: &str) -> String {
    let id = s.id();
    let mut y = header(&format!("{}/{FILE} and config/config.yaml", s.folder));
    let _ = write!(
        y,
        "# For the Dapr CLI (dapr.dev.yaml). Relaxed against config/apps/{id}.yaml:\n\
         # no accessControl (without sentry there is no mTLS identity to check:\n\
         # any sidecar on this machine may invoke {id}), and the invocation\n\
         # API allowed on its sidecar, to call it through its sidecar (its\n\
         # component still may not: wasm-host checks its calls).\n\
         apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: {id}-dev\nspec:\n"
    );
    let shared = base
        .lines()
        .skip_while(|l| !l.starts_with("spec:"))
        .skip(1)
        .collect::<Vec<_>>()
        .join("\n");
    y.push_str(shared.trim_end());
    y.push('\n');
    y.push_str(&secret_scopes(s, stores, "  "));
    // Its allow-list, with the invocation API, without the comment that
    // says what the strict one allows.
    let mut apis: String = api_allowed(s, services, "  ")
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    for protocol in ["http", "grpc"] {
        let line = format!("      - {{name: invoke, version: v1.0, protocol: {protocol}}}\n");
        if !apis.contains(&line) {
            apis.push_str(&line);
        }
    }
    y.push_str(&apis);
    y
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cli_files_are_the_generated_ones() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let files = crate::generate::files(&root).expect("files");
        let get = |p: &str| {
            files
                .iter()
                .find(|(f, _)| f.to_str() == Some(p))
                .map(|(_, t)| t.clone())
                .unwrap_or_else(|| panic!("{p} not generated"))
        };
        let run = get("dapr.dev.yaml");
        assert!(run.contains("configFilePath: ../config/dev/image-api-grayscale.yaml"));
        assert!(run.contains("apiListenAddresses: 127.0.0.1"));
        let cfg = get("config/dev/image-api-grayscale.yaml");
        assert!(!cfg.contains("accessControl:"), "{cfg}");
        assert!(
            cfg.contains("nameResolution:"),
            "the shared settings: {cfg}"
        );
        assert!(cfg.contains("{name: state, version: v1.0, protocol: http}"));
        assert!(cfg.contains("{name: invoke, version: v1.0, protocol: http}"));
        assert!(!cfg.contains("name: metadata"), "no more than its rights");
        assert!(cfg.contains("storeName: secretstore\n        defaultAccess: deny"));
        // The yaml parses, as one configuration with one spec.
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&cfg).expect("yaml");
        assert_eq!(doc["metadata"]["name"], "image-api-grayscale-dev");
        assert!(doc["spec"]["tracing"].is_mapping());
        assert!(doc["spec"]["api"]["allowed"].is_sequence());
    }
}
