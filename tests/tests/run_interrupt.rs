//! `kill -INT` on `scripts/run` stops everything it started. Ignored in the
//! main e2e run: it needs the stack's own ports, so scripts/test runs it on
//! its own after stopping its stack (`--ignored`).

use e2e::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Every pid the run recorded: the supervisor, sentry, each app and sidecar,
/// MariaDB, the broker (Redis) and Zipkin. Each must be there: a process
/// whose pid file is missing could be left running unseen.
fn recorded_pids() -> Vec<(String, u32)> {
    let data = root().join(".data");
    let mut files = vec![
        data.join("run/stack.pid"),
        data.join("run/sentry.pid"),
        data.join("mysql.pid"),
        data.join("broker.pid"),
        data.join("zipkin.pid"),
    ];
    for app in app_ids() {
        files.push(data.join("run").join(&app).join("daprd.pid"));
        files.push(data.join("run").join(&app).join("app.pid"));
    }
    files
        .into_iter()
        .map(|f| {
            let pid = std::fs::read_to_string(&f)
                .ok()
                .and_then(|p| p.trim().parse().ok())
                .unwrap_or_else(|| panic!("no pid in {}", f.display()));
            (f.display().to_string(), pid)
        })
        .collect()
}

/// If the test fails midway, stops what scripts/run started (by its pid
/// files, through scripts/stop), so a failure leaves nothing running.
struct StopOnFailure;

impl Drop for StopOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = Command::new(root().join("scripts/stop")).status();
        }
    }
}

#[test]
#[ignore = "runs scripts/run on the stack's own ports: scripts/test runs it after stopping its stack"]
fn kill_int_on_scripts_run_leaves_no_process_behind() {
    let _cleanup = StopOnFailure;
    let log = root().join(".logs/run-interrupt.log");
    let out = std::fs::File::create(&log).expect("log");
    let mut run = Command::new(root().join("scripts/run"));
    // Not cargo test's own variables (CARGO_PKG_NAME=e2e, ...): build
    // scripts of wasm-host's dependencies watch some of them, and cargo
    // would rebuild those crates here and again in every later build.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if (k.starts_with("CARGO_") && k != "CARGO_HOME") || k == "CARGO" || k == "OUT_DIR" {
            run.env_remove(k.as_ref());
        }
    }
    let mut run = run
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .spawn()
        .expect("scripts/run");
    wait_until(Duration::from_secs(240), "scripts/run to come up", || {
        if let Ok(Some(status)) = run.try_wait() {
            panic!(
                "scripts/run exited ({status}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        stack(&["wait", "1"]).status.success().then_some(())
    });
    let pids = recorded_pids();
    assert_eq!(pids.len(), 5 + 2 * app_ids().len(), "pid files: {pids:?}");
    assert!(pids.iter().all(|(_, p)| alive(*p)), "{pids:?}");

    let sent = Command::new("kill")
        .args(["-INT", &run.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = run.try_wait().expect("wait") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "scripts/run still running 120 s after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let left: Vec<_> = pids.iter().filter(|(_, p)| alive(*p)).collect();
    assert!(
        left.is_empty(),
        "still running after SIGINT ({status}): {left:?}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}
