//! The supervisor: each app and its sidecar as a unit (`Unit`), each
//! process in a process group of its own with a pid file (`Proc`), sentry
//! first (`Control`: sentry, placement), and the loop that restarts what exits (`run`).

use super::*;
use crate::control::live_pid;

mod ctl;
use ctl::control_plane;
/// A started process, leader of its own process group.
struct Proc {
    what: &'static str,
    child: Child,
    log: PathBuf,
    pid_file: PathBuf,
}

impl Proc {
    fn spawn(
        what: &'static str,
        mut cmd: Command,
        log: PathBuf,
        pid_file: PathBuf,
        marker: &str,
    ) -> Result<Self, String> {
        let mut out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
        let _ = writeln!(out, "{marker}");
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Its own group: a terminal's Ctrl-C reaches only the
            // supervisor, which then stops everything in order.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {what} ({:?}): {e}", cmd.get_program()))?;
        fs::write(&pid_file, format!("{}\n", child.id()))
            .map_err(|e| format!("cannot write {}: {e}", pid_file.display()))?;
        Ok(Self {
            what,
            child,
            log,
            pid_file,
        })
    }

    fn group(&self) -> Option<Pid> {
        i32::try_from(self.child.id()).ok().map(Pid::from_raw)
    }

    fn signal(&self, sig: Signal) {
        if let Some(g) = self.group() {
            let _ = killpg(g, sig); // ESRCH: already gone
        }
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Reaps the process and anything left in its group, and drops the pid file.
    fn finish(mut self) {
        self.signal(Signal::SIGKILL);
        let _ = self.child.wait();
        let _ = fs::remove_file(&self.pid_file);
    }
}

/// Sends SIGTERM to every process, waits up to `GRACE` (less if `hurry`
/// turns true: a second Ctrl-C), then SIGKILLs what is left.
fn stop_all(procs: Vec<Proc>, hurry: &AtomicBool) {
    let mut procs = procs;
    for p in &procs {
        p.signal(Signal::SIGTERM);
    }
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline && !hurry.load(Ordering::Relaxed) {
        if procs.iter_mut().all(|p| p.exited().is_some()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for p in procs {
        p.finish();
    }
}

// --- a unit: one app and its sidecar ------------------------------------------------

struct Unit {
    app: App,
    dir: PathBuf,
    logs: PathBuf,
    run: PathBuf,
    daprd: Option<Proc>,
    proc: Option<Proc>,
    started: Instant,
    starts: u32,
    backoff: Backoff,
    next_start: Option<Instant>,
    ready: bool,
    slow_reported: bool,
}

impl Unit {
    fn new(app: &App, base: &Path, state: &Path) -> Self {
        let dir = app.dir(base);
        Self {
            logs: dir.join(".dapr/logs"),
            dir,
            run: state.join(&app.app_id),
            app: app.clone(),
            daprd: None,
            proc: None,
            started: Instant::now(),
            starts: 0,
            backoff: Backoff::default(),
            next_start: Some(Instant::now()),
            ready: false,
            slow_reported: false,
        }
    }

    fn id(&self) -> &str {
        &self.app.app_id
    }

    fn running(&self) -> bool {
        self.daprd.is_some() || self.proc.is_some()
    }

    fn held(&self) -> bool {
        self.run.join("down").exists()
    }

    fn log_path(&self, what: &str) -> PathBuf {
        self.logs.join(format!("{}_{what}.log", self.app.app_id))
    }

    fn start(&mut self, launch: &Launch) -> Result<(), String> {
        let (file, base) = (launch.file, launch.base);
        let tokens = launch.tokens.join(&self.app.app_id);
        let dapr_token = token(&tokens.join("dapr-api-token"))?;
        let app_token = token(&tokens.join("app-api-token"))?;
        let anchors = match &launch.sentry {
            Some(s) => {
                let ca = s.creds.join("ca.crt");
                Some(
                    fs::read_to_string(&ca)
                        .map_err(|e| format!("cannot read {}: {e}", ca.display()))?,
                )
            }
            None => None,
        };
        for d in [&self.logs, &self.run] {
            fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
        }
        self.starts += 1;
        let marker = format!(
            "----- {} stack: start {} of {} -----",
            now_utc(),
            self.starts,
            self.id()
        );
        let sentry = launch.sentry.as_ref().map(SentryConf::address);
        let mut sidecar = Command::new(&launch.daprd);
        sidecar
            .args(self.app.daprd_args(file, base, sentry.as_deref()))
            .current_dir(&self.dir)
            .env("DAPR_API_TOKEN", &dapr_token)
            .env("APP_API_TOKEN", &app_token);
        if let Some(pem) = anchors {
            sidecar.env("DAPR_TRUST_ANCHORS", pem);
        }
        if self.app.placement(file).is_some() {
            // Our daprd drops the placement address unless told to keep it
            // (scripts/daprd/main.go: the dapr CLI always passes one).
            sidecar.env("DAPRD_KEEP_PLACEMENT", "1");
        }
        self.daprd = Some(Proc::spawn(
            "daprd",
            sidecar,
            self.log_path("daprd"),
            self.run.join("daprd.pid"),
            &marker,
        )?);
        let mut app = Command::new(&self.app.command[0]);
        app.args(&self.app.command[1..])
            .current_dir(&self.dir)
            .envs(self.app.app_env(file))
            .env("DAPR_API_TOKEN", &dapr_token)
            .env("APP_API_TOKEN", &app_token);
        self.proc = Some(Proc::spawn(
            "app",
            app,
            self.log_path("app"),
            self.run.join("app.pid"),
            &marker,
        )?);
        self.started = Instant::now();
        self.ready = false;
        self.slow_reported = false;
        Ok(())
    }

    /// Which process exited on its own, if one did.
    fn exited(&mut self) -> Option<(&'static str, ExitStatus, PathBuf)> {
        for p in [self.daprd.as_mut(), self.proc.as_mut()]
            .into_iter()
            .flatten()
        {
            if let Some(status) = p.exited() {
                return Some((p.what, status, p.log.clone()));
            }
        }
        None
    }

    fn take_procs(&mut self) -> Vec<Proc> {
        self.ready = false;
        [self.daprd.take(), self.proc.take()]
            .into_iter()
            .flatten()
            .collect()
    }

    fn healthy(&self) -> bool {
        let dapr = http_status(self.app.dapr_http_port, "/v1.0/healthz")
            .is_some_and(|s| (200..300).contains(&s));
        dapr && TcpStream::connect_timeout(&local(self.app.app_port), TICK).is_ok()
    }
}

// --- run ------------------------------------------------------------------------------

pub(crate) fn run(launch: &Launch, state: &Path, policy: Restart) -> Result<ExitCode, String> {
    let (file, base) = (launch.file, launch.base);
    fs::create_dir_all(state).map_err(|e| format!("cannot create {}: {e}", state.display()))?;
    let me = state.join("stack.pid");
    if let Some(pid) = live_pid(&me) {
        return Err(format!(
            "another stack is running (pid {pid}, {}); stop it first",
            me.display()
        ));
    }
    // Fail before starting anything when a port is taken, naming it.
    let mut ports: Vec<(u16, String)> = file
        .apps
        .iter()
        .flat_map(|a| {
            a.ports()
                .into_iter()
                .map(|(p, what)| (p, format!("{}'s {what}", a.app_id)))
        })
        .collect();
    let mut control = control_plane(launch, state)?;
    for c in &control {
        ports.extend(c.spec.ports.iter().map(|&(p, what)| (p, what.to_string())));
    }
    for (port, what) in ports {
        if TcpListener::bind(local(port)).is_err() {
            return Err(format!(
                "port {port} ({what}) is already in use on 127.0.0.1"
            ));
        }
    }
    let mut bins = vec![&launch.daprd];
    bins.extend(control.iter().map(|c| &c.spec.bin));
    for bin in bins {
        if !bin.is_file() && bin.components().count() > 1 {
            return Err(format!("no {} (run scripts/setup)", bin.display()));
        }
    }
    fs::write(&me, format!("{}\n", std::process::id()))
        .map_err(|e| format!("cannot write {}: {e}", me.display()))?;

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(|e| e.to_string())?;
    }

    for c in &mut control {
        if let Err(e) = c.start_and_wait(&stop) {
            stop_all(
                control.iter_mut().filter_map(|c| c.proc.take()).collect(),
                &stop,
            );
            let _ = fs::remove_file(&me);
            return Err(e);
        }
        let serving = c.spec.ports.first().map_or(0, |p| p.0);
        say(
            Level::Info,
            &format!(
                "{} is up (127.0.0.1:{serving}); {}",
                c.spec.name, c.spec.up_means
            ),
        );
    }

    let mut units: Vec<Unit> = file
        .apps
        .iter()
        .map(|a| Unit::new(a, base, state))
        .collect();
    for u in &units {
        let _ = fs::remove_file(u.run.join("down")); // a new run starts everything
    }
    say(
        Level::Info,
        &format!(
            "starting {} apps, each beside its daprd (restart: {}); logs in <app>/.dapr/logs/",
            units.len(),
            match policy {
                Restart::Always => "on, with backoff",
                Restart::Never => "off",
            }
        ),
    );
    let mut all_ready = false;
    let mut failed = false;
    'supervise: while !stop.load(Ordering::Relaxed) {
        if !control.iter_mut().all(|c| c.tend(policy)) {
            failed = true;
            break 'supervise;
        }
        // The first pair starts alone: its daprd creates the shared SQLite
        // files (name resolution, state) and migrates them; sidecars that
        // migrate a fresh file at the same moment fail with SQLITE_BUSY and
        // then run without name resolution. The others start once it is
        // healthy (or after FIRST_ALONE, so a broken first app blocks nobody).
        let first_done = units
            .first()
            .is_none_or(|f| f.ready || (f.starts > 0 && f.started.elapsed() > FIRST_ALONE));
        for (i, u) in units.iter_mut().enumerate() {
            if i > 0 && u.starts == 0 && !first_done {
                continue;
            }
            if u.running() {
                if u.held() {
                    say(Level::Info, &format!("stopping {} (stack stop)", u.id()));
                    stop_all(u.take_procs(), &stop);
                    u.next_start = None;
                    continue;
                }
                if let Some((what, status, log)) = u.exited() {
                    let role = if what == "daprd" {
                        "its sidecar (daprd)"
                    } else {
                        "the app"
                    };
                    report(u.id(), role, status, u.started.elapsed(), &log);
                    let uptime = u.started.elapsed();
                    stop_all(u.take_procs(), &stop);
                    if policy == Restart::Never {
                        failed = true;
                        break 'supervise;
                    }
                    let delay = u.backoff.after_exit(uptime);
                    say(
                        Level::Warn,
                        &format!(
                            "restarting {} and its sidecar in {:.0?} (restart {})",
                            u.id(),
                            delay,
                            u.starts
                        ),
                    );
                    u.next_start = Some(Instant::now() + delay);
                    all_ready = false;
                    continue;
                }
                if !u.ready && u.healthy() {
                    u.ready = true;
                    let again = if u.starts > 1 { " again" } else { "" };
                    say(
                        Level::Info,
                        &format!(
                            "{} is up{again} (app :{}, daprd :{})",
                            u.id(),
                            u.app.app_port,
                            u.app.dapr_http_port
                        ),
                    );
                } else if !u.ready && !u.slow_reported && u.started.elapsed() > SLOW_START {
                    u.slow_reported = true;
                    say(
                        Level::Warn,
                        &format!(
                            "{} is not healthy after {SLOW_START:?}; see {} and {}",
                            u.id(),
                            u.log_path("daprd").display(),
                            u.log_path("app").display()
                        ),
                    );
                }
            } else if u.held() {
                u.next_start = None;
            } else if u.next_start.is_none_or(|t| Instant::now() >= t) {
                u.next_start = None;
                if let Err(e) = u.start(launch) {
                    say(Level::Error, &format!("{}: {e}", u.id()));
                    stop_all(u.take_procs(), &stop);
                    if policy == Restart::Never {
                        failed = true;
                        break 'supervise;
                    }
                    u.next_start = Some(Instant::now() + u.backoff.after_exit(Duration::ZERO));
                }
            }
        }
        if !all_ready && units.iter().all(|u| u.ready) {
            all_ready = true;
            say(Level::Info, "all apps are up");
        }
        std::thread::sleep(TICK);
    }

    say(Level::Info, "stopping every app and sidecar");
    stop.store(false, Ordering::Relaxed); // a further Ctrl-C now means: kill
    let procs: Vec<Proc> = units.iter_mut().flat_map(Unit::take_procs).collect();
    stop_all(procs, &stop);
    // The control plane last, once no sidecar needs it; the CA after placement.
    for c in control.iter_mut().rev() {
        if let Some(p) = c.proc.take() {
            stop_all(vec![p], &stop);
        }
    }
    let _ = fs::remove_file(&me);
    say(Level::Info, "stopped");
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Says loudly that a process exited on its own, how, and where its log is.
fn report(name: &str, role: &str, status: ExitStatus, uptime: Duration, log: &Path) {
    say(
        Level::Error,
        &format!(
            "{name}: {role} exited on its own ({}) after {uptime:.0?}\n    log: {}",
            describe(status),
            log.display()
        ),
    );
    for line in tail(log, 5) {
        eprintln!("    | {line}");
    }
}
