//! Commands on a running stack: stop or start one app (`hold`), wait until
//! every app is healthy, and the status table.

use super::*;
use std::fmt::Write as _;
/// The pid in `path`, if that process is alive.
pub(crate) fn live_pid(path: &Path) -> Option<i32> {
    let pid: i32 = fs::read_to_string(path).ok()?.trim().parse().ok()?;
    (pid > 0 && kill(Pid::from_raw(pid), None).is_ok()).then_some(pid)
}

// --- stop / start / status -------------------------------------------------------------

pub(crate) fn hold(app: &App, state: &Path, down: bool) -> Result<ExitCode, String> {
    let dir = state.join(&app.app_id);
    let flag = dir.join("down");
    let id = &app.app_id;
    if live_pid(&state.join("stack.pid")).is_none() {
        return Err(format!("no stack is running ({})", state.display()));
    }
    const LIMIT: Duration = Duration::from_secs(60);
    if down {
        fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        fs::write(&flag, "").map_err(|e| format!("cannot write {}: {e}", flag.display()))?;
        if !poll_until(LIMIT, || app_stopped(app, state)) {
            return Err(format!("{id} did not stop within 60 s"));
        }
        say(
            Level::Info,
            &format!("{id} stopped; `stack start {id}` runs it again"),
        );
    } else {
        let _ = fs::remove_file(&flag);
        if !poll_until(LIMIT, || app_up(app, state)) {
            return Err(format!("{id} is not healthy within 60 s"));
        }
        say(Level::Info, &format!("{id} is up"));
    }
    Ok(ExitCode::SUCCESS)
}

/// Polls `done` every 100 ms until it holds (true) or `limit` passes (false).
fn poll_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Neither of `app`'s processes (as recorded) is alive.
fn app_stopped(app: &App, state: &Path) -> bool {
    let dir = state.join(&app.app_id);
    live_pid(&dir.join("daprd.pid")).is_none() && live_pid(&dir.join("app.pid")).is_none()
}

/// `app` and its daprd, as this supervisor started them, are alive and
/// answer. Processes left over from an earlier run may answer the same
/// ports, so answering alone proves nothing.
fn app_up(app: &App, state: &Path) -> bool {
    let dir = state.join(&app.app_id);
    live_pid(&dir.join("daprd.pid")).is_some()
        && live_pid(&dir.join("app.pid")).is_some()
        && http_status(app.dapr_http_port, "/v1.0/healthz").is_some_and(|s| s < 300)
        && TcpStream::connect_timeout(&local(app.app_port), TICK).is_ok()
}

/// Waits until our supervisor runs and every app is up ([`app_up`]).
pub(crate) fn wait_healthy(
    file: &RunFile,
    state: &Path,
    timeout: Duration,
) -> Result<ExitCode, String> {
    let all_up = || {
        live_pid(&state.join("stack.pid")).is_some() && file.apps.iter().all(|a| app_up(a, state))
    };
    if poll_until(timeout, all_up) {
        return Ok(ExitCode::SUCCESS);
    }
    let down: Vec<&str> = file
        .apps
        .iter()
        .filter(|a| !app_up(a, state))
        .map(|a| a.app_id.as_str())
        .collect();
    Err(format!(
        "not healthy within {timeout:?}: {}",
        if down.is_empty() {
            "no stack is running".to_string()
        } else {
            down.join(", ")
        }
    ))
}

/// Each app, its sidecar, their health, pids and log files: what a
/// newcomer asks first when something is off.
pub(crate) fn status(file: &RunFile, base: &Path, state: &Path) -> Result<ExitCode, String> {
    // Written at once at the end, and a closed pipe (`stack status | head`)
    // is not an error: println! would panic on it.
    let mut o = String::new();
    let stack = live_pid(&state.join("stack.pid"));
    let _ = match stack {
        Some(pid) => writeln!(o, "stack: running, pid {pid} ({})", state.display()),
        None => writeln!(o, "stack: not running ({})", state.display()),
    };
    let mut all_up = stack.is_some();
    for app in &file.apps {
        let dir = state.join(&app.app_id);
        let daprd = live_pid(&dir.join("daprd.pid"));
        let proc = live_pid(&dir.join("app.pid"));
        let health = if stack.is_none() {
            "-"
        } else if app_up(app, state) {
            "healthy"
        } else if dir.join("down").exists() {
            "stopped (stack stop)"
        } else {
            "unhealthy or restarting"
        };
        all_up &= health == "healthy";
        let pid = |p: Option<i32>| p.map_or("-".to_string(), |p| p.to_string());
        let logs = app.dir(base).join(".dapr/logs");
        let _ = writeln!(
            o,
            "{:<22} {health:<24} app :{} pid {:<8} daprd :{} pid {:<8}",
            app.app_id,
            app.app_port,
            pid(proc),
            app.dapr_http_port,
            pid(daprd),
        );
        let _ = writeln!(
            o,
            "{:<22} logs {}",
            "",
            logs.join(format!("{}_{{app,daprd}}.log", app.app_id))
                .display()
        );
        let metrics = app
            .env
            .get("WASM_HOST_METRICS")
            .and_then(|a| a.parse::<SocketAddr>().ok())
            .and_then(|a| http_get(a, "/metrics", Duration::from_secs(2)))
            .filter(|(status, _)| *status == 200)
            .map(|(_, body)| body);
        if let Some(text) = metrics {
            let _ = writeln!(
                o,
                "{:<22} metrics http://{}/metrics: {}",
                "",
                app.env["WASM_HOST_METRICS"],
                stack::summarize_metrics(&text)
            );
        }
    }
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), o.as_bytes());
    Ok(if all_up {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
