//! The control plane under supervision: sentry, then placement, each one
//! process with its pid file and log, started before any sidecar and
//! restarted with backoff like the apps.

use super::*;

/// A control-plane service (sentry, placement), supervised alone: it must
/// answer before any sidecar starts, and sidecars ride out its restarts
/// (they keep their certificates for 24 h; actor lookups wait for placement).
pub(super) struct Control {
    pub(super) spec: ControlSpec,
    pub(super) proc: Option<Proc>,
    log: PathBuf,
    pid_file: PathBuf,
    started: Instant,
    starts: u32,
    backoff: Backoff,
    next_start: Option<Instant>,
}

/// What a control-plane service is and how it starts.
pub(super) struct ControlSpec {
    pub(super) name: &'static str,
    role: &'static str,
    pub(super) bin: PathBuf,
    args: Vec<String>,
    /// Its working folder, made owner-only (sentry keeps its CA key there).
    dir: PathBuf,
    /// Every port it listens on: checked free before anything starts.
    pub(super) ports: Vec<(u16, &'static str)>,
    /// The one of them that answers `GET /healthz`.
    healthz: u16,
    /// What its being up means, for the log.
    pub(super) up_means: &'static str,
    /// A file that must exist before it counts as up (sentry's CA).
    ready_file: Option<PathBuf>,
}

impl Control {
    fn new(spec: ControlSpec, base: &Path, state: &Path) -> Self {
        Self {
            log: base.join(format!(".logs/{}.log", spec.name)),
            pid_file: state.join(format!("{}.pid", spec.name)),
            spec,
            proc: None,
            started: Instant::now(),
            starts: 0,
            backoff: Backoff::default(),
            next_start: None,
        }
    }

    fn healthy(&self) -> bool {
        self.spec.ready_file.as_ref().is_none_or(|f| f.is_file())
            && http_status(self.spec.healthz, "/healthz") == Some(200)
    }

    fn start(&mut self) -> Result<(), String> {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.spec.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.spec.dir.display()))?;
        if let Some(dir) = self.log.parent() {
            fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        self.starts += 1;
        let mut cmd = Command::new(&self.spec.bin);
        cmd.args(&self.spec.args).current_dir(&self.spec.dir);
        let marker = format!(
            "----- {} stack: start {} of {} -----",
            now_utc(),
            self.starts,
            self.spec.name
        );
        self.proc = Some(Proc::spawn(
            self.spec.name,
            cmd,
            self.log.clone(),
            self.pid_file.clone(),
            &marker,
        )?);
        self.started = Instant::now();
        Ok(())
    }

    /// Starts it and waits until it serves, so sidecars find it.
    pub(super) fn start_and_wait(&mut self, stop: &AtomicBool) -> Result<(), String> {
        self.start()?;
        let deadline = Instant::now() + SLOW_START;
        while !self.healthy() {
            let exited = self.proc.as_mut().and_then(Proc::exited);
            if exited.is_some() || Instant::now() > deadline || stop.load(Ordering::Relaxed) {
                if let Some(status) = exited {
                    self.report(status);
                }
                if let Some(p) = self.proc.take() {
                    p.finish();
                }
                return Err(format!(
                    "{} did not come up; see {}",
                    self.spec.name,
                    self.log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn report(&self, status: ExitStatus) {
        report(
            self.spec.name,
            self.spec.role,
            status,
            self.started.elapsed(),
            &self.log,
        );
    }

    /// One supervision step: restarts it (with backoff) once it has
    /// exited. `false` when it exited and the policy is to fail.
    pub(super) fn tend(&mut self, policy: Restart) -> bool {
        let exited = self.proc.as_mut().and_then(Proc::exited);
        if let Some(status) = exited {
            self.report(status);
            let uptime = self.started.elapsed();
            if let Some(p) = self.proc.take() {
                p.finish();
            }
            if policy == Restart::Never {
                return false;
            }
            let delay = self.backoff.after_exit(uptime);
            say(
                Level::Warn,
                &format!("restarting {} in {delay:.0?}", self.spec.name),
            );
            self.next_start = Some(Instant::now() + delay);
        } else if self.proc.is_none() && self.next_start.is_none_or(|t| Instant::now() >= t) {
            self.next_start = None;
            if let Err(e) = self.start() {
                say(Level::Error, &format!("{}: {e}", self.spec.name));
                self.next_start = Some(Instant::now() + self.backoff.after_exit(Duration::ZERO));
            }
        }
        true
    }
}

/// The control plane `launch` asks for, in start order: sentry, then
/// placement (which gets its certificate from sentry).
pub(super) fn control_plane(launch: &Launch, state: &Path) -> Result<Vec<Control>, String> {
    let mut out = Vec::new();
    if let Some(s) = &launch.sentry {
        let ports = stack::sentry_ports(s.port);
        let [_, (healthz, _), _] = ports;
        let spec = ControlSpec {
            name: "sentry",
            role: "the CA",
            bin: s.bin.clone(),
            args: stack::sentry_args(&s.creds, &s.config, s.port),
            dir: s.creds.clone(),
            ports: ports.to_vec(),
            healthz,
            up_means: "sidecars talk over mTLS",
            ready_file: Some(s.creds.join("ca.crt")),
        };
        out.push(Control::new(spec, launch.base, state));
    }
    if let Some(port) = launch.file.placement_port().map_err(|e| e.to_string())? {
        let address = launch.sentry.as_ref().map(SentryConf::address);
        let anchors = launch.sentry.as_ref().map(|s| s.creds.join("ca.crt"));
        let ports = stack::placement_ports(port);
        let [_, (healthz, _), _, _] = ports;
        let spec = ControlSpec {
            name: "placement",
            role: "actor placement",
            bin: launch.placement.clone(),
            args: stack::placement_args(port, address.as_deref().zip(anchors.as_deref())),
            dir: state.join("placement"),
            ports: ports.to_vec(),
            healthz,
            up_means: "actors can be placed",
            ready_file: None,
        };
        out.push(Control::new(spec, launch.base, state));
    }
    Ok(out)
}
