//! Soak test of the sqlite name resolver with the repository's own
//! configuration (`config/config.yaml`), time compressed.
//!
//! Upstream's resolver (components-contrib v1.18.4) deletes the live
//! registrations on each garbage collection, and every sidecar then exits
//! with "Host registration lost". With its default hourly collector that
//! takes an hour; here rows go stale after 3 s and an enabled collector runs
//! every 10 s, so a configuration that leaves the collector on fails within
//! seconds, and one that switches it off must keep both sidecars healthy and
//! resolving each other for several would-be cycles.
//!
//! Two sidecars, `soak-a` and `soak-b`, each beside the web component (its
//! `/healthz` needs nothing else), run under `stack run --no-restart` on
//! ports of their own (below the ephemeral range), so this runs beside the
//! main stack.

use e2e::*;
use serde_yaml_ng::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the sidecars must stay healthy: four 10 s collector cycles.
const SOAK: Duration = Duration::from_secs(45);

/// Stops the supervisor (and so both pairs) even when an assertion fails.
struct Stack(Child);

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// Whether a `cleanupInterval` value schedules the collector. Absent means
/// upstream's default (1 h); "0", "0s" or a negative value means off.
fn collector_on(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|n| n > 0.0),
        Some(Value::String(s)) => {
            let s = s.trim();
            !(s.starts_with('-')
                || s.trim_end_matches(['s', 'm', 'h'])
                    .trim_matches('0')
                    .is_empty())
        }
        Some(_) => true,
    }
}

#[test]
fn collector_on_reads_the_values_dapr_accepts() {
    assert!(collector_on(None));
    assert!(collector_on(Some(&Value::String("1h".into()))));
    assert!(collector_on(Some(&Value::String("3600".into()))));
    assert!(!collector_on(Some(&Value::String("0".into()))));
    assert!(!collector_on(Some(&Value::String("0s".into()))));
    assert!(!collector_on(Some(&Value::String("-1s".into()))));
}

fn app(id: &str, n: u16, wasm: &str) -> String {
    format!(
        "  - appID: {id}
    appDirPath: .
    appPort: {app}
    daprHTTPPort: {http}
    daprGRPCPort: {grpc}
    metricsPort: {metrics}
    command: [wasm-host, serve, --addr=127.0.0.1:{app}, --manifest={manifest}, {wasm}]
",
        manifest = root().join("web/service.toml").display(),
        app = 9105 + n,
        http = 3705 + n,
        grpc = 3715 + n,
        metrics = 9195 + n,
    )
}

#[test]
fn sidecars_survive_many_name_resolver_cleanup_cycles() {
    let dir = root().join(".data/soak-nameresolution");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("components")).expect("mkdir");

    // The committed configuration, with its name resolution time compressed.
    let text = std::fs::read_to_string(root().join("config/config.yaml")).expect("config");
    let mut cfg: Value = serde_yaml_ng::from_str(&text).expect("config is YAML");
    let nr = cfg["spec"]["nameResolution"]["configuration"]
        .as_mapping_mut()
        .expect("nameResolution.configuration");
    let on = collector_on(nr.get("cleanupInterval"));
    let spec = cfg["spec"].as_mapping_mut().expect("spec");
    spec.remove("accessControl");
    spec.remove("secrets");
    let nr = cfg["spec"]["nameResolution"]["configuration"]
        .as_mapping_mut()
        .expect("nameResolution.configuration");
    let db = dir.join("nameresolution.db").display().to_string();
    nr.insert("connectionString".into(), db.into());
    // Whole seconds (the resolver compares unixepoch values): renewed
    // about every 2 s, stale after 3 s.
    nr.insert("updateInterval".into(), "3s".into());
    if on {
        nr.insert("cleanupInterval".into(), "10s".into());
    }
    std::fs::write(
        dir.join("config.yaml"),
        serde_yaml_ng::to_string(&cfg).expect("yaml"),
    )
    .expect("write config");

    let wasm = root().join("target/wasm32-wasip2/release/web.cwasm");
    let wasm = wasm.display().to_string();
    let run_file = format!(
        "version: 1\ncommon:\n  resourcesPath: ./components\n  configFilePath: ./config.yaml\napps:\n{}{}",
        app("soak-a", 0, &wasm),
        app("soak-b", 1, &wasm)
    );
    std::fs::write(dir.join("dapr.yaml"), run_file).expect("write run file");
    let log = std::fs::File::create(dir.join("stack.log")).expect("log");
    let mut stack = Stack(
        Command::new(root().join("target/release/stack"))
            .arg("-f")
            .arg(dir.join("dapr.yaml"))
            .arg("--data-dir")
            .arg(&dir)
            // Name resolution is what is under test: no sentry, no ACL.
            .args(["run", "--no-restart", "--no-mtls"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start stack"),
    );
    let stack_log = || std::fs::read_to_string(dir.join("stack.log")).unwrap_or_default();

    // Each sidecar requires the API token the supervisor made for it.
    let token = |app: &str| {
        let path = dir.join("tokens").join(app).join("dapr-api-token");
        wait_until(Duration::from_secs(30), "the token", || {
            std::fs::read_to_string(&path).ok()
        })
    };
    let tokens = [token("soak-a"), token("soak-b")];
    let invoke = |from: u16, to: &str| {
        let t = &tokens[usize::from(from - 3705)];
        try_get_with(
            &format!("http://127.0.0.1:{from}/v1.0/invoke/{to}/method/healthz"),
            &[("dapr-api-token", t.trim())],
        )
        .map(|r| r.status)
    };
    let up = Instant::now();
    loop {
        let (ab, ba) = (invoke(3705, "soak-b"), invoke(3706, "soak-a"));
        if ab == Some(200) && ba == Some(200) {
            break;
        }
        assert!(
            up.elapsed() < Duration::from_secs(60),
            "the pairs do not resolve each other (a -> b {ab:?}, b -> a {ba:?}):\n{}\n{}",
            stack_log(),
            ["soak-a", "soak-b"]
                .map(|app| {
                    let log = dir.join(format!(".dapr/logs/{app}_daprd.log"));
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    let errors: Vec<&str> =
                        text.lines().filter(|l| l.contains("level=error")).collect();
                    format!("{app}'s daprd errors:\n{}", errors.join("\n"))
                })
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let start = Instant::now();
    let mut checks = 0;
    while start.elapsed() < SOAK {
        let exited = stack.0.try_wait().expect("try_wait");
        assert!(
            exited.is_none(),
            "a sidecar or app exited after {:?} (collector {}):\n{}",
            start.elapsed(),
            if on { "every 10 s" } else { "off" },
            stack_log()
        );
        for port in [3705, 3706] {
            let health = try_get(&format!("http://127.0.0.1:{port}/v1.0/healthz"));
            assert!(
                health.is_some_and(|r| r.status == 204),
                "daprd :{port} unhealthy after {:?}",
                start.elapsed()
            );
        }
        assert_eq!(
            invoke(3705, "soak-b"),
            Some(200),
            "a -> b after {:?}",
            start.elapsed()
        );
        assert_eq!(
            invoke(3706, "soak-a"),
            Some(200),
            "b -> a after {:?}",
            start.elapsed()
        );
        checks += 1;
        std::thread::sleep(Duration::from_secs(1));
    }
    assert!(checks >= 30, "only {checks} checks in {SOAK:?}");
    let out = stack_log();
    assert!(!out.contains("exited on its own"), "{out}");
}
