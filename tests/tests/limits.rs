//! Each pod's memory limit (deploy/chart: values.yaml's, else the worst case
//! `stack gen` wrote to files/services.yaml plus hostOverheadMi) covers the
//! worst case its service.toml allows, as wasm-host itself computes it
//! (`wasm-host limits`): requests within the limits never get a pod
//! OOM-killed.

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
    let yaml = |path: &str| -> serde_yaml_ng::Value {
        let text = std::fs::read_to_string(root().join(path)).expect(path);
        serde_yaml_ng::from_str(&text).expect("yaml")
    };
    let values = yaml("deploy/chart/values.yaml");
    let wiring = yaml("deploy/chart/files/services.yaml");
    let overhead = values["hostOverheadMi"].as_u64().expect("hostOverheadMi");
    for app in app_ids() {
        let worst = worst_case_mib(&app);
        let derived = wiring["services"][app.as_str()]["worstCaseMi"]
            .as_u64()
            .unwrap_or_else(|| panic!("{app}: not in files/services.yaml"));
        assert_eq!(derived, worst, "{app}: stack gen and wasm-host disagree");
        let limit = match values["services"][app.as_str()]["resources"]["limits"]["memory"].as_str()
        {
            Some(set) => mib(set),
            None => derived + overhead,
        };
        let need = worst + host_overhead_mib(&app);
        assert!(
            limit >= need,
            "{app}: the pod's limit {limit} MiB is under its host's worst case plus overhead ({need} MiB)"
        );
    }
}
