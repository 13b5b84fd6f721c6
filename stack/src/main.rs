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
//! Actors: when the run file gives a `placementHostAddress`
//! (`127.0.0.1:PORT`, in `common` or per app), placement starts after
//! sentry on that port (and the next three), under mTLS unless
//! `--no-mtls`, and the apps that name it get it as their sidecar's
//! `--placement-host-address`. Sentry and placement log to `.logs/`
//! beside the run file and are restarted like the apps.
//!
//! ```text
//! stack [-f dapr.yaml] [--data-dir .data] run [--no-restart] [--no-mtls]
//! stack [-f dapr.yaml] stop APP     # stop APP and its sidecar, keep them down
//! stack [-f dapr.yaml] start APP    # let them run again, wait until healthy
//! stack [-f dapr.yaml] restart APP  # both, e.g. after scripts/build
//! stack [-f dapr.yaml] status
//! stack [-f dapr.yaml] wait [SECONDS]  # until every app and daprd is healthy
//! stack [-f dapr.yaml] apps            # the app ids, one per line
//! stack [-f dapr.yaml] port APP        # its appPort
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

mod control;
mod new_cmd;
mod supervise;

use control::{hold, status, wait_healthy};
use supervise::run;

const USAGE: &str = "usage: stack [-f RUN_FILE] [--data-dir DIR] [--daprd PATH] [--sentry PATH] \
                     [--sentry-port PORT] [--sentry-config FILE] run [--no-restart] [--no-mtls] | stop APP | start APP | restart APP | status | wait [SECONDS] | apps | port APP | dirs APP | gen [--check] | new NAME [--from blank|grayscale|events] [--dry-run] | new --remove NAME [--dry-run]";
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
    sentry_config: Option<PathBuf>,
}

fn cli() -> Result<ExitCode, String> {
    let mut args = std::env::args().skip(1);
    let mut opts = Opts {
        file: PathBuf::from("dapr.yaml"),
        data: None,
        daprd: None,
        sentry: None,
        sentry_port: SENTRY_PORT,
        sentry_config: None,
    };
    let mut rest = Vec::new();
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value\n{USAGE}"));
        match a.as_str() {
            "-f" | "--file" => opts.file = value(&a)?.into(),
            "--data-dir" => opts.data = Some(value(&a)?.into()),
            "--daprd" => opts.daprd = Some(value(&a)?.into()),
            "--sentry" => opts.sentry = Some(value(&a)?.into()),
            // Absolute: sentry runs in its credentials folder.
            "--sentry-config" => {
                opts.sentry_config = Some(
                    std::path::absolute(value(&a)?).map_err(|e| format!("--sentry-config: {e}"))?,
                )
            }
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
                    config: opts
                        .sentry_config
                        .clone()
                        .unwrap_or_else(|| base.join("config/sentry.yaml")),
                    port: opts.sentry_port,
                }),
                placement: tool(&None, "placement"),
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
        ["port", id] => {
            println!("{}", app(id)?.app_port);
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
    /// Placement's binary, run if the run file names a placement address.
    placement: PathBuf,
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

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The status code of `GET path` on 127.0.0.1:port, if it answers quickly.
fn http_status(port: u16, path: &str) -> Option<u16> {
    http_get(local(port), path, Duration::from_millis(500)).map(|(status, _)| status)
}

/// `GET path` on a loopback listener: its status and body (at most 1 MiB),
/// if it answers within `patience`. With a trace context that asks not to
/// be recorded: wasm-host traces every request, and a probe a second is
/// noise in Zipkin.
fn http_get(addr: SocketAddr, path: &str, patience: Duration) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, TICK).ok()?;
    s.set_read_timeout(Some(patience)).ok()?;
    s.set_write_timeout(Some(patience)).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         traceparent: {PROBE_TRACEPARENT}\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    // A reset after a complete head still says the status.
    let _ = s.take(1 << 20).read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}
