//! Each pod's memory limit (deploy/chart/values.yaml) covers the worst case
//! its service.toml allows (`wasm-host limits`): requests within the limits
//! never get a pod OOM-killed.

use e2e::*;

/// What the host process needs besides its guests and buffers: the
/// runtime, compiled code, and classify's model and OpenVINO.
fn host_overhead_mib(app: &str) -> u64 {
    if app == "image-api-classify" {
        320
    } else {
        128
    }
}

fn mib(quantity: &str) -> u64 {
    let (n, unit) = quantity.split_at(
        quantity
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(quantity.len()),
    );
    let n: u64 = n.parse().unwrap_or_else(|_| panic!("{quantity}"));
    match unit {
        "Mi" => n,
        "Gi" => n * 1024,
        _ => panic!("{quantity}: write memory limits in Mi or Gi"),
    }
}

#[test]
fn every_pods_memory_limit_covers_its_hosts_worst_case() {
    let text = std::fs::read_to_string(root().join("deploy/chart/values.yaml")).expect("values");
    let values: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("yaml");
    for app in app_ids() {
        let limit = values["services"][app.as_str()]["resources"]["limits"]["memory"]
            .as_str()
            .unwrap_or_else(|| panic!("{app}: no memory limit in values.yaml"));
        let need = worst_case_mib(&app) + host_overhead_mib(&app);
        assert!(
            mib(limit) >= need,
            "{app}: the pod's limit {limit} is under its host's worst case plus overhead ({need} MiB)"
        );
    }
}
