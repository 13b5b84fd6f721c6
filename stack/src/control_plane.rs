//! The control plane the supervisor runs beside the apps: sentry (Dapr's
//! CA, for mTLS) and placement (actors), each on consecutive loopback ports.

use std::path::Path;

/// The local stack's placement port (and the next three), for the apps
/// whose manifests name actors (`stack gen` writes it into dapr.yaml).
pub const LOCAL_PLACEMENT_PORT: u16 = 3525;

/// Sentry's ports from `port`: gRPC, healthz, metrics.
pub fn sentry_ports(port: u16) -> [(u16, &'static str); 3] {
    [
        (port, "sentry's gRPC port"),
        (port.saturating_add(1), "sentry's healthz port"),
        (port.saturating_add(2), "sentry's metrics port"),
    ]
}

/// The flags that put a control-plane service's gRPC, healthz and metrics
/// servers on these loopback ports (each defaults to every interface).
fn on_loopback(grpc: u16, healthz: u16, metrics: u16) -> Vec<String> {
    [
        ("port", "listen-address", grpc),
        ("healthz-port", "healthz-listen-address", healthz),
        ("metrics-port", "metrics-listen-address", metrics),
    ]
    .into_iter()
    .flat_map(|(port_flag, address_flag, port)| {
        [
            format!("--{port_flag}"),
            port.to_string(),
            format!("--{address_flag}"),
            "127.0.0.1".into(),
        ]
    })
    .collect()
}

/// Sentry's arguments: its CA files in `creds` (generated on first start),
/// its configuration, and the ports of [`sentry_ports`], all on loopback.
pub fn sentry_args(creds: &Path, config: &Path, port: u16) -> Vec<String> {
    let [(grpc, _), (healthz, _), (metrics, _)] = sentry_ports(port);
    let mut args = vec![
        "--issuer-credentials".to_string(),
        creds.display().to_string(),
        "--config".into(),
        config.display().to_string(),
    ];
    args.extend(on_loopback(grpc, healthz, metrics));
    args
}

/// Placement's ports from `port`: gRPC, healthz, metrics, raft.
pub fn placement_ports(port: u16) -> [(u16, &'static str); 4] {
    [
        (port, "placement's gRPC port"),
        (port.saturating_add(1), "placement's healthz port"),
        (port.saturating_add(2), "placement's metrics port"),
        (port.saturating_add(3), "placement's raft port"),
    ]
}

/// Placement's arguments: the ports of [`placement_ports`], all on
/// loopback, a one-node raft in memory, and with `sentry` (its address and
/// the trust anchors file) mTLS: sidecars then check its identity and it
/// checks theirs.
pub fn placement_args(port: u16, sentry: Option<(&str, &Path)>) -> Vec<String> {
    let [(grpc, _), (healthz, _), (metrics, _), (raft, _)] = placement_ports(port);
    let mut args = on_loopback(grpc, healthz, metrics);
    args.extend([
        "--id".into(),
        "dapr-placement-0".into(),
        "--initial-cluster".into(),
        format!("dapr-placement-0=127.0.0.1:{raft}"),
    ]);
    if let Some((address, anchors)) = sentry {
        args.extend([
            "--tls-enabled".into(),
            "--sentry-address".into(),
            address.into(),
            "--trust-anchors-file".into(),
            anchors.display().to_string(),
        ]);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::assert_flags;

    #[test]
    fn sentry_listens_on_loopback_ports_in_a_row() {
        let args = sentry_args(Path::new("/d/sentry"), Path::new("/c/sentry.yaml"), 50009);
        assert_flags(
            &args,
            &[
                ("--port", "50009"),
                ("--healthz-port", "50010"),
                ("--metrics-port", "50011"),
                ("--listen-address", "127.0.0.1"),
                ("--healthz-listen-address", "127.0.0.1"),
                ("--metrics-listen-address", "127.0.0.1"),
                ("--issuer-credentials", "/d/sentry"),
            ],
        );
    }

    #[test]
    fn placement_listens_on_loopback_and_uses_sentry_when_given() {
        let args = placement_args(50020, None);
        assert_flags(
            &args,
            &[
                ("--port", "50020"),
                ("--healthz-port", "50021"),
                ("--metrics-port", "50022"),
                ("--listen-address", "127.0.0.1"),
                ("--healthz-listen-address", "127.0.0.1"),
                ("--metrics-listen-address", "127.0.0.1"),
                ("--initial-cluster", "dapr-placement-0=127.0.0.1:50023"),
            ],
        );
        assert!(!args.contains(&"--tls-enabled".to_string()));
        let args = placement_args(50020, Some(("127.0.0.1:50009", Path::new("/d/ca.crt"))));
        assert!(args.contains(&"--tls-enabled".to_string()));
        assert_flags(
            &args,
            &[
                ("--sentry-address", "127.0.0.1:50009"),
                ("--trust-anchors-file", "/d/ca.crt"),
            ],
        );
    }
}
