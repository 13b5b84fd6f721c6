//! `stack`: runs every app of a run file (`dapr.yaml`) beside its own daprd,
//! and keeps them running.
//!
//! Each app and its sidecar form a unit. When either exits on its own, the
//! supervisor says so (which process, how, and its log file), stops the
//! other, and starts both again after a backoff; `--no-restart` stops the
//! whole stack instead. Every process runs in a process group of its own,
//! recorded in a pid file, so stopping touches exactly what was started.
//! Ctrl-C (or SIGTERM) stops everything; a second one kills at once.
//!
//! Security, on by default: sentry (Dapr's CA) starts first and every
//! sidecar talks to the others over mTLS with a certificate from it; each
//! daprd requires its own API token (`DAPR_API_TOKEN`) and sends its app
//! another (`APP_API_TOKEN`), both generated into `<data>/tokens/<app>/`
//! (mode 600) and handed to the app's environment; every listener is on
//! 127.0.0.1. `--no-mtls` skips sentry (tokens stay).
//!
//! ```text
//! stack [-f dapr.yaml] [--data-dir .data] run [--no-restart] [--no-mtls]
//! stack [-f dapr.yaml] stop APP     # stop APP and its sidecar, keep them down
//! stack [-f dapr.yaml] start APP    # let them run again, wait until healthy
//! stack [-f dapr.yaml] restart APP  # both, e.g. after scripts/build
//! stack [-f dapr.yaml] status
//! stack [-f dapr.yaml] wait [SECONDS]  # until every app and daprd is healthy
//! stack [-f dapr.yaml] apps            # the app ids, one per line
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{IsTerminal, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use stack::{App, Backoff, Restart, RunFile, utc};

mod new_cmd;

const USAGE: &str = "usage: stack [-f RUN_FILE] [--data-dir DIR] [--daprd PATH] [--sentry PATH] \
                     [--sentry-port PORT] run [--no-restart] [--no-mtls] | stop APP | start APP | restart APP | status | wait [SECONDS] | apps | dirs APP | gen [--check] | new NAME [--from blank|grayscale|events] [--dry-run] | new --remove NAME [--dry-run]";
/// Sentry's gRPC port; healthz and metrics take the next two. Below the
/// ephemeral range (32768+), so no outgoing connection can hold them.
const SENTRY_PORT: u16 = 3520;
/// How long the first app and its sidecar start alone, at most.
const FIRST_ALONE: Duration = Duration::from_secs(20);

/// How long a process gets between SIGTERM and SIGKILL. daprd drains for
/// up to 5 s (its --dapr-graceful-shutdown-seconds default).
const GRACE: Duration = Duration::from_secs(10);
const TICK: Duration = Duration::from_millis(200);
/// Health probes' trace context: valid, not sampled (flags 00).
const PROBE_TRACEPARENT: &str = "00-00000000000000000000000000000001-0000000000000001-00";
/// After this long without a healthy daprd and app, say so once.
const SLOW_START: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    match cli() {
        Ok(code) => code,
        Err(e) => {
            say(Level::Error, &e);
            ExitCode::from(2)
        }
    }
}

struct Opts {
    file: PathBuf,
    data: Option<PathBuf>,
    daprd: Option<PathBuf>,
    sentry: Option<PathBuf>,
    sentry_port: u16,
}

fn cli() -> Result<ExitCode, String> {
    let mut args = std::env::args().skip(1);
    let mut opts = Opts {
        file: PathBuf::from("dapr.yaml"),
        data: None,
        daprd: None,
        sentry: None,
        sentry_port: SENTRY_PORT,
    };
    let mut rest = Vec::new();
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value\n{USAGE}"));
        match a.as_str() {
            "-f" | "--file" => opts.file = value(&a)?.into(),
            "--data-dir" => opts.data = Some(value(&a)?.into()),
            "--daprd" => opts.daprd = Some(value(&a)?.into()),
            "--sentry" => opts.sentry = Some(value(&a)?.into()),
            "--sentry-port" => {
                opts.sentry_port = value(&a)?
                    .parse()
                    .map_err(|_| format!("--sentry-port needs a port number\n{USAGE}"))?
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(ExitCode::SUCCESS);
            }
            _ => rest.push(a),
        }
    }
    let root = opts.file.parent().unwrap_or(Path::new(""));
    let root = if root.as_os_str().is_empty() {
        Path::new(".")
    } else {
        root
    };
    if rest.first().map(String::as_str) == Some("new") {
        return Ok(new_cmd::run(root, &rest[1..]));
    }
    if let Some(("gen", flags)) = rest.split_first().map(|(a, f)| (a.as_str(), f)) {
        return match flags {
            [] => generate(root, false),
            [f] if f == "--check" => generate(root, true),
            _ => Err(USAGE.into()),
        };
    }
    let text = fs::read_to_string(&opts.file)
        .map_err(|e| format!("cannot read {}: {e}", opts.file.display()))?;
    let file = RunFile::parse(&text).map_err(|e| format!("{}: {e}", opts.file.display()))?;
    let base = opts
        .file
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."))
        .canonicalize()
        .map_err(|e| format!("{}: {e}", opts.file.display()))?;
    let data = opts.data.clone().unwrap_or_else(|| base.join(".data"));
    let state = data.join("run");
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let app = |id: &str| {
        file.app(id)
            .cloned()
            .ok_or_else(|| format!("no app {id:?} in {}", opts.file.display()))
    };
    match rest.as_slice() {
        ["run", flags @ ..] => {
            let mut policy = Restart::Always;
            let mut mtls = true;
            for f in flags {
                match *f {
                    "--no-restart" => policy = Restart::Never,
                    "--no-mtls" => mtls = false,
                    _ => return Err(USAGE.into()),
                }
            }
            let launch = Launch {
                file: &file,
                base: &base,
                daprd: tool(&opts.daprd, "daprd"),
                tokens: data.join("tokens"),
                sentry: mtls.then(|| SentryConf {
                    bin: tool(&opts.sentry, "sentry"),
                    creds: data.join("sentry"),
                    config: base.join("config/sentry.yaml"),
                    port: opts.sentry_port,
                }),
            };
            run(&launch, &state, policy)
        }
        ["stop", id] => hold(&app(id)?, &state, true),
        ["start", id] => hold(&app(id)?, &state, false),
        ["restart", id] => {
            let app = app(id)?;
            hold(&app, &state, true)?;
            hold(&app, &state, false)
        }
        ["status"] => status(&file, &base, &state),
        ["apps"] => {
            for a in &file.apps {
                println!("{}", a.app_id);
            }
            Ok(ExitCode::SUCCESS)
        }
        ["dirs", id] => {
            // The folders an app's manifest preopens, relative to the
            // repository (scripts/k8s/build puts them in its image).
            let app = app(id)?;
            let path = app.dir(&base).join(service_manifest::FILE);
            let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let m = service_manifest::Manifest::parse(&text)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            for d in &m.dirs {
                let rel = stack::normalize(Path::new(&app.app_dir_path).join(&d.host));
                println!("{}", rel.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        ["wait", rest @ ..] => {
            let secs = match rest {
                [] => 120,
                [n] => n.parse().map_err(|_| USAGE.to_string())?,
                _ => return Err(USAGE.into()),
            };
            wait_healthy(&file, &state, Duration::from_secs(secs))
        }
        _ => Err(USAGE.into()),
    }
}

/// `stack gen`: writes every file derived from the manifests, or with
/// `check` only says which are stale (exit 1).
fn generate(root: &Path, check: bool) -> Result<ExitCode, String> {
    let stale = stack::generate::write(root, check)?;
    match (check, stale.is_empty()) {
        (_, true) => Ok(ExitCode::SUCCESS),
        (false, false) => {
            println!("stack gen: wrote {}", stale.join(", "));
            Ok(ExitCode::SUCCESS)
        }
        (true, false) => {
            eprintln!(
                "stack gen --check: stale (edit the service.toml files, then run `stack gen`): {}",
                stale.join(", ")
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The flag's path, else `$DAPR_RUNTIME_PATH/.dapr/bin/<name>` (where the
/// dapr CLI looks, and where scripts/setup builds daprd and sentry), else
/// `<name>` on the PATH.
fn tool(flag: &Option<PathBuf>, name: &str) -> PathBuf {
    if let Some(p) = flag {
        return p.clone();
    }
    match std::env::var_os("DAPR_RUNTIME_PATH") {
        Some(root) => Path::new(&root).join(".dapr/bin").join(name),
        None => PathBuf::from(name),
    }
}

/// What every start needs.
struct Launch<'a> {
    file: &'a RunFile,
    base: &'a Path,
    daprd: PathBuf,
    tokens: PathBuf,
    sentry: Option<SentryConf>,
}

struct SentryConf {
    bin: PathBuf,
    creds: PathBuf,
    config: PathBuf,
    port: u16,
}

impl SentryConf {
    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn healthy(&self) -> bool {
        self.creds.join("ca.crt").is_file()
            && http_status(self.port.saturating_add(1), "/healthz") == Some(200)
    }
}

/// The token in `path`, made on first use: 32 random bytes as hex, in a
/// file only the owner can read.
fn token(path: &Path) -> Result<String, String> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Ok(t) = fs::read_to_string(path)
        && t.trim().len() >= 32
    {
        return Ok(t.trim().to_string());
    }
    if let Some(dir) = path.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(hex.as_bytes()))
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(hex)
}

// --- output -----------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Level {
    Info,
    Warn,
    Error,
}

fn say(level: Level, msg: &str) {
    let color = std::io::stderr().is_terminal();
    let (tag, code) = match level {
        Level::Info => ("stack:", "1;34"),
        Level::Warn => ("stack: warning:", "1;33"),
        Level::Error => ("stack: error:", "1;31"),
    };
    let mut err = std::io::stderr().lock();
    let _ = if color {
        writeln!(err, "\x1b[{code}m{tag}\x1b[0m {msg}")
    } else {
        writeln!(err, "{tag} {msg}")
    };
}

/// The last `n` lines of a log, for the report of an exit.
fn tail(path: &Path, n: usize) -> Vec<String> {
    let Ok(mut f) = File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut buf = Vec::new();
    let start = len.saturating_sub(16 * 1024);
    let _ = std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(start));
    let _ = f.take(16 * 1024).read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.chars().take(300).collect())
        .collect()
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => match Signal::try_from(s) {
            Ok(sig) => format!("killed by {sig}"),
            Err(_) => format!("killed by signal {s}"),
        },
        _ => status.to_string(),
    }
}

fn now_utc() -> String {
    utc(SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0))
}

// --- processes ----------------------------------------------------------------------

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

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The status code of `GET path` on 127.0.0.1:port, if it answers quickly.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&local(port), TICK).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    s.set_write_timeout(Some(Duration::from_millis(500))).ok()?;
    // A trace context that asks not to be recorded: wasm-host traces every
    // request, and a probe a second is noise in Zipkin.
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         traceparent: {PROBE_TRACEPARENT}\r\n\r\n"
    )
    .ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    let head = std::str::from_utf8(&buf[..n]).ok()?;
    head.split_whitespace().nth(1)?.parse().ok()
}

/// The body of a GET on a loopback listener, if it answers 200 in time.
fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.take(1 << 20).read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

// --- run ------------------------------------------------------------------------------

/// Sentry, supervised alone: it must answer before any sidecar starts, and
/// sidecars keep their certificates (24 h) while it restarts.
struct Ca {
    conf: SentryConf,
    proc: Option<Proc>,
    log: PathBuf,
    pid_file: PathBuf,
    started: Instant,
    starts: u32,
    backoff: Backoff,
    next_start: Option<Instant>,
}

impl Ca {
    fn start(&mut self) -> Result<(), String> {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.conf.creds)
            .map_err(|e| format!("cannot create {}: {e}", self.conf.creds.display()))?;
        if let Some(dir) = self.log.parent() {
            fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        self.starts += 1;
        let mut cmd = Command::new(&self.conf.bin);
        cmd.args(stack::sentry_args(
            &self.conf.creds,
            &self.conf.config,
            self.conf.port,
        ))
        .current_dir(&self.conf.creds);
        let marker = format!(
            "----- {} stack: start {} of sentry -----",
            now_utc(),
            self.starts
        );
        self.proc = Some(Proc::spawn(
            "sentry",
            cmd,
            self.log.clone(),
            self.pid_file.clone(),
            &marker,
        )?);
        self.started = Instant::now();
        Ok(())
    }

    /// Starts sentry and waits until it serves, so sidecars find their CA.
    fn start_and_wait(&mut self, stop: &AtomicBool) -> Result<(), String> {
        self.start()?;
        let deadline = Instant::now() + SLOW_START;
        while !self.conf.healthy() {
            let exited = self.proc.as_mut().and_then(Proc::exited);
            if exited.is_some() || Instant::now() > deadline || stop.load(Ordering::Relaxed) {
                if let Some(status) = exited {
                    report(
                        "sentry",
                        "the CA",
                        status,
                        self.started.elapsed(),
                        &self.log,
                    );
                }
                if let Some(p) = self.proc.take() {
                    p.finish();
                }
                return Err(format!(
                    "sentry did not come up; see {}",
                    self.log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

fn run(launch: &Launch, state: &Path, policy: Restart) -> Result<ExitCode, String> {
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
                .map(|(p, what)| (p, format!("{}'s {what}", a.app_id)))
        })
        .collect();
    if let Some(s) = &launch.sentry {
        ports.extend((0..3).map(|n| (s.port.saturating_add(n), "sentry's".to_string())));
    }
    for (port, what) in ports {
        if TcpListener::bind(local(port)).is_err() {
            return Err(format!(
                "port {port} ({what}) is already in use on 127.0.0.1"
            ));
        }
    }
    let mut bins = vec![&launch.daprd];
    bins.extend(launch.sentry.as_ref().map(|s| &s.bin));
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

    let mut ca = launch.sentry.as_ref().map(|conf| Ca {
        conf: SentryConf {
            bin: conf.bin.clone(),
            creds: conf.creds.clone(),
            config: conf.config.clone(),
            port: conf.port,
        },
        proc: None,
        log: base.join(".logs/sentry.log"),
        pid_file: state.join("sentry.pid"),
        started: Instant::now(),
        starts: 0,
        backoff: Backoff::default(),
        next_start: None,
    });
    if let Some(ca) = &mut ca {
        if let Err(e) = ca.start_and_wait(&stop) {
            let _ = fs::remove_file(&me);
            return Err(e);
        }
        say(
            Level::Info,
            &format!(
                "sentry is up ({}); sidecars talk over mTLS",
                ca.conf.address()
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
        if let Some(ca) = &mut ca {
            let exited = ca.proc.as_mut().and_then(Proc::exited);
            if let Some(status) = exited {
                report("sentry", "the CA", status, ca.started.elapsed(), &ca.log);
                let uptime = ca.started.elapsed();
                if let Some(p) = ca.proc.take() {
                    p.finish();
                }
                if policy == Restart::Never {
                    failed = true;
                    break 'supervise;
                }
                let delay = ca.backoff.after_exit(uptime);
                say(Level::Warn, &format!("restarting sentry in {delay:.0?}"));
                ca.next_start = Some(Instant::now() + delay);
            } else if ca.proc.is_none() && ca.next_start.is_none_or(|t| Instant::now() >= t) {
                ca.next_start = None;
                if let Err(e) = ca.start() {
                    say(Level::Error, &format!("sentry: {e}"));
                    ca.next_start = Some(Instant::now() + ca.backoff.after_exit(Duration::ZERO));
                }
            }
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
    // The CA last, once no sidecar needs it.
    if let Some(p) = ca.as_mut().and_then(|c| c.proc.take()) {
        stop_all(vec![p], &stop);
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

/// The pid in `path`, if that process is alive.
fn live_pid(path: &Path) -> Option<i32> {
    let pid: i32 = fs::read_to_string(path).ok()?.trim().parse().ok()?;
    (pid > 0 && kill(Pid::from_raw(pid), None).is_ok()).then_some(pid)
}

// --- stop / start / status -------------------------------------------------------------

fn hold(app: &App, state: &Path, down: bool) -> Result<ExitCode, String> {
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
fn wait_healthy(file: &RunFile, state: &Path, timeout: Duration) -> Result<ExitCode, String> {
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
fn status(file: &RunFile, base: &Path, state: &Path) -> Result<ExitCode, String> {
    let stack = live_pid(&state.join("stack.pid"));
    match stack {
        Some(pid) => println!("stack: running, pid {pid} ({})", state.display()),
        None => println!("stack: not running ({})", state.display()),
    }
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
        println!(
            "{:<22} {health:<24} app :{} pid {:<8} daprd :{} pid {:<8}",
            app.app_id,
            app.app_port,
            pid(proc),
            app.dapr_http_port,
            pid(daprd),
        );
        println!(
            "{:<22} logs {}",
            "",
            logs.join(format!("{}_{{app,daprd}}.log", app.app_id))
                .display()
        );
        let metrics = app
            .env
            .get("WASM_HOST_METRICS")
            .and_then(|a| a.parse::<SocketAddr>().ok())
            .and_then(|a| http_get(a, "/metrics"));
        if let Some(text) = metrics {
            println!(
                "{:<22} metrics http://{}/metrics: {}",
                "",
                app.env["WASM_HOST_METRICS"],
                stack::summarize_metrics(&text)
            );
        }
    }
    Ok(if all_up {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
