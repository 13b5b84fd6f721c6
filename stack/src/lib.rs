//! The pure core of `stack`, the local supervisor: the run file
//! (`dapr.yaml`, the format of `dapr run -f`), the command lines of each
//! sidecar and app, and the restart policy. `main.rs` does the processes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub mod chart;
pub mod control_plane;
pub mod dev;
pub mod metrics;

pub use control_plane::{placement_args, placement_ports, sentry_args, sentry_ports};
pub use metrics::{metric_sum, summarize_metrics};

/// `path` without `.` and with each `dir/..` folded, lexically (the folder
/// need not exist): `./classify/../.cache/m` is `.cache/m`.
pub fn normalize(path: impl AsRef<Path>) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.as_ref().components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

pub mod generate;
pub mod scaffold;

/// A multi-app run file, as `dapr run -f` reads it. Fields this supervisor
/// does not implement are refused rather than ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunFile {
    /// Always 1.
    pub version: u32,
    /// Defaults for every app.
    #[serde(default)]
    pub common: Common,
    /// The apps, each started beside its own daprd.
    pub apps: Vec<App>,
}

/// `common:` in the run file.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Common {
    /// Components folder, relative to the run file.
    pub resources_path: Option<String>,
    /// Dapr configuration file, relative to the run file.
    pub config_file_path: Option<String>,
    /// daprd's log level.
    pub log_level: Option<String>,
    /// Environment of every app.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Placement's address (`127.0.0.1:PORT`) for every app: actors. The
    /// supervisor then runs placement there (see [`placement_args`]).
    pub placement_host_address: Option<String>,
}

/// One entry of `apps:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct App {
    /// Dapr app id.
    #[serde(rename = "appID")]
    pub app_id: String,
    /// The app's folder, relative to the run file; both processes run there.
    pub app_dir_path: String,
    /// The port the app listens on.
    pub app_port: u16,
    /// The sidecar's HTTP API port.
    #[serde(rename = "daprHTTPPort")]
    pub dapr_http_port: u16,
    /// The sidecar's gRPC API port.
    #[serde(rename = "daprGRPCPort")]
    pub dapr_grpc_port: u16,
    /// The sidecar's internal gRPC port (sidecar to sidecar); daprd picks
    /// one itself when absent.
    #[serde(rename = "daprInternalGRPCPort")]
    pub dapr_internal_grpc_port: Option<u16>,
    /// The sidecar's metrics port.
    pub metrics_port: u16,
    /// Requests the sidecar lets into the app at once.
    pub app_max_concurrency: Option<u32>,
    /// Overrides `common.resourcesPath`.
    pub resources_path: Option<String>,
    /// Applied on top of `common.configFilePath` (see [`App::config_files`]).
    pub config_file_path: Option<String>,
    /// Added to `common.env`, winning on equal names.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Overrides `common.placementHostAddress`.
    pub placement_host_address: Option<String>,
    /// The app's command line.
    pub command: Vec<String>,
}

/// Why a run file cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub enum RunFileError {
    /// Not YAML of the expected shape.
    Parse(String),
    /// A `version` other than 1.
    Version(u32),
    /// No apps.
    NoApps,
    /// An app id that is empty or not a plain name.
    BadAppId(String),
    /// Two apps with one id.
    DuplicateApp(String),
    /// An app without a command.
    NoCommand(String),
    /// A port used twice (port, first user, second user).
    PortClash(u16, String, String),
    /// Port 0, which would let the OS pick one nobody else knows.
    ZeroPort(String),
    /// Neither the app nor `common` names a components folder or config.
    Missing(String, &'static str),
    /// A placement address that is not `127.0.0.1:PORT`, or two of them.
    Placement(String),
}

impl fmt::Display for RunFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Parse(e) => write!(f, "{e}"),
            Self::Version(v) => write!(f, "version {v} is not supported (only 1)"),
            Self::NoApps => write!(f, "no apps"),
            Self::BadAppId(id) => write!(f, "app id {id:?} must be letters, digits and '-'"),
            Self::DuplicateApp(id) => write!(f, "app id {id} appears twice"),
            Self::NoCommand(id) => write!(f, "{id} has no command"),
            Self::PortClash(p, a, b) => write!(f, "port {p} is both {a} and {b}"),
            Self::ZeroPort(what) => write!(f, "{what} is 0: ports must be fixed"),
            Self::Missing(id, what) => write!(f, "{id}: no {what} (in the app or in common)"),
            Self::Placement(why) => write!(f, "placementHostAddress: {why}"),
        }
    }
}

impl std::error::Error for RunFileError {}

impl RunFile {
    /// Parses and checks a run file.
    pub fn parse(text: &str) -> Result<Self, RunFileError> {
        let file: RunFile =
            serde_yaml_ng::from_str(text).map_err(|e| RunFileError::Parse(e.to_string()))?;
        file.check()?;
        Ok(file)
    }

    fn check(&self) -> Result<(), RunFileError> {
        if self.version != 1 {
            return Err(RunFileError::Version(self.version));
        }
        if self.apps.is_empty() {
            return Err(RunFileError::NoApps);
        }
        let mut ids = BTreeSet::new();
        let mut ports: BTreeMap<u16, String> = BTreeMap::new();
        for app in &self.apps {
            let id = &app.app_id;
            let plain = !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !plain {
                return Err(RunFileError::BadAppId(id.clone()));
            }
            if !ids.insert(id.as_str()) {
                return Err(RunFileError::DuplicateApp(id.clone()));
            }
            if app.command.is_empty() {
                return Err(RunFileError::NoCommand(id.clone()));
            }
            for (port, what) in app.ports() {
                let what = format!("{id}'s {what}");
                if port == 0 {
                    return Err(RunFileError::ZeroPort(what));
                }
                if let Some(first) = ports.insert(port, what.clone()) {
                    return Err(RunFileError::PortClash(port, first, what));
                }
            }
            if app.resources_path(self).is_none() {
                return Err(RunFileError::Missing(id.clone(), "resourcesPath"));
            }
            if app.config_files(self).is_empty() {
                return Err(RunFileError::Missing(id.clone(), "configFilePath"));
            }
        }
        if let Some(port) = self.placement_port()? {
            for (p, what) in placement_ports(port) {
                if let Some(first) = ports.insert(p, what.to_string()) {
                    return Err(RunFileError::PortClash(p, first, what.into()));
                }
            }
        }
        Ok(())
    }

    /// The port placement listens on, if any app hosts or calls actors:
    /// one address for all, on loopback (the supervisor runs placement).
    pub fn placement_port(&self) -> Result<Option<u16>, RunFileError> {
        let mut found: Option<&str> = None;
        for a in &self.apps {
            let Some(addr) = a.placement(self) else {
                continue;
            };
            if found.is_some_and(|f| f != addr) {
                return Err(RunFileError::Placement(format!(
                    "{} and {addr} differ: the supervisor runs one placement",
                    found.unwrap_or_default()
                )));
            }
            found = Some(addr);
        }
        let Some(addr) = found else { return Ok(None) };
        let port = addr
            .strip_prefix("127.0.0.1:")
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p > 0 && *p < u16::MAX - 3)
            .ok_or_else(|| RunFileError::Placement(format!("{addr} is not 127.0.0.1:PORT")))?;
        Ok(Some(port))
    }

    /// The app with this id.
    pub fn app(&self, id: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.app_id == id)
    }
}

impl App {
    /// Every port this app and its sidecar listen on, with what it is.
    pub fn ports(&self) -> Vec<(u16, &'static str)> {
        let mut ports = vec![
            (self.app_port, "app port"),
            (self.dapr_http_port, "Dapr HTTP port"),
            (self.dapr_grpc_port, "Dapr gRPC port"),
            (self.metrics_port, "metrics port"),
        ];
        if let Some(p) = self.dapr_internal_grpc_port {
            ports.push((p, "Dapr internal gRPC port"));
        }
        ports
    }

    /// Its placement address: its own, else `common`'s.
    pub fn placement<'a>(&'a self, file: &'a RunFile) -> Option<&'a str> {
        self.placement_host_address
            .as_deref()
            .or(file.common.placement_host_address.as_deref())
    }

    fn resources_path<'a>(&'a self, file: &'a RunFile) -> Option<&'a str> {
        self.resources_path
            .as_deref()
            .or(file.common.resources_path.as_deref())
    }

    /// The Dapr configurations, in order: `common.configFilePath`, then the
    /// app's own, which daprd applies on top (it may pass `--config` several
    /// times in standalone mode). So the shared settings live in one file and
    /// an app's file holds only what differs, such as its secret scopes.
    pub fn config_files<'a>(&'a self, file: &'a RunFile) -> Vec<&'a str> {
        [
            file.common.config_file_path.as_deref(),
            self.config_file_path.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The folder both processes run in. `base` is the run file's folder.
    pub fn dir(&self, base: &Path) -> PathBuf {
        under(base, &self.app_dir_path)
    }

    /// daprd's arguments. Every listener is on loopback: nothing is
    /// reachable from another machine unless a deployment asks for it. With
    /// `sentry` (its address), traffic between sidecars is mTLS.
    pub fn daprd_args(&self, file: &RunFile, base: &Path, sentry: Option<&str>) -> Vec<String> {
        let path = |p: Option<&str>| under(base, p.unwrap_or_default()).display().to_string();
        let mut args = vec![
            "--app-id".into(),
            self.app_id.clone(),
            "--app-port".into(),
            self.app_port.to_string(),
            "--app-protocol".into(),
            "http".into(),
            "--app-channel-address".into(),
            "127.0.0.1".into(),
            "--dapr-http-port".into(),
            self.dapr_http_port.to_string(),
            "--dapr-grpc-port".into(),
            self.dapr_grpc_port.to_string(),
            "--metrics-port".into(),
            self.metrics_port.to_string(),
            "--dapr-listen-addresses".into(),
            "127.0.0.1".into(),
            "--dapr-internal-grpc-listen-address".into(),
            "127.0.0.1".into(),
            "--metrics-listen-address".into(),
            "127.0.0.1".into(),
            "--resources-path".into(),
            path(self.resources_path(file)),
            "--log-level".into(),
            file.common
                .log_level
                .clone()
                .unwrap_or_else(|| "info".into()),
        ];
        if let Some(port) = self.dapr_internal_grpc_port {
            args.extend(["--dapr-internal-grpc-port".into(), port.to_string()]);
        }
        for config in self.config_files(file) {
            args.extend(["--config".into(), path(Some(config))]);
        }
        if let Some(address) = sentry {
            args.extend([
                "--enable-mtls".into(),
                "--sentry-address".into(),
                address.into(),
            ]);
        }
        if let Some(n) = self.app_max_concurrency {
            args.extend(["--app-max-concurrency".into(), n.to_string()]);
        }
        if let Some(address) = self.placement(file) {
            args.extend(["--placement-host-address".into(), address.into()]);
        }
        args
    }

    /// The app's environment on top of the supervisor's: what `dapr run`
    /// sets, then `common.env`, then the app's own `env`.
    pub fn app_env(&self, file: &RunFile) -> BTreeMap<String, String> {
        let mut env = BTreeMap::from([
            ("APP_ID".into(), self.app_id.clone()),
            ("APP_PORT".into(), self.app_port.to_string()),
            ("DAPR_HTTP_PORT".into(), self.dapr_http_port.to_string()),
            ("DAPR_GRPC_PORT".into(), self.dapr_grpc_port.to_string()),
            ("DAPR_METRICS_PORT".into(), self.metrics_port.to_string()),
        ]);
        env.extend(file.common.env.clone());
        env.extend(self.env.clone());
        env
    }
}

/// `rel` under `base`, without `.` components (for readable log paths).
fn under(base: &Path, rel: &str) -> PathBuf {
    let mut out = base.to_path_buf();
    out.extend(
        Path::new(rel)
            .components()
            .filter(|c| *c != std::path::Component::CurDir),
    );
    out
}

/// What to do when an app or its sidecar exits on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Restart the pair, with backoff.
    Always,
    /// Stop the whole stack and fail.
    Never,
}

/// Exponential restart delay: `initial`, doubling up to `max`; back to
/// `initial` once a run has lasted `stable_after`.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    stable_after: Duration,
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(
            Duration::from_secs(1),
            Duration::from_secs(30),
            Duration::from_secs(60),
        )
    }
}

impl Backoff {
    /// A backoff; `max` below `initial` is raised to `initial`.
    pub fn new(initial: Duration, max: Duration, stable_after: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            stable_after,
            next: initial,
        }
    }

    /// The delay before the next start, after a run that lasted `uptime`.
    pub fn after_exit(&mut self, uptime: Duration) -> Duration {
        if uptime >= self.stable_after {
            self.next = self.initial;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the Unix epoch (UTC), for the
/// markers written into the logs.
pub fn utc(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days, after Howard Hinnant's algorithm.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
pub(crate) mod tests;
