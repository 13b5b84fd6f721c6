//! scripts/bench's driver, once it has built everything: the grayscale core
//! as a wasm component under wasm-host (precompiled, simd128, instance
//! reuse, no grants) beside a native build of the same core, on the same
//! photo, at concurrency 1 and 2, in one run; prints requests/s, latency
//! and the wasm/native ratio. If the stack runs (scripts/run), the full
//! grayscale service (rate limit, state, events through daprd) too, beside
//! the same full service built natively (native-service, the same three
//! Dapr calls per request through its own daprd), and classification: the
//! service beside the native full service's classify and an inference-only
//! pipeline (the same decode + resize natively, then OpenVINO from Python on
//! the same tensor), with each step's share from the service's traces in
//! Zipkin and the native service's own timings. The wasm core runs a second
//! time with the host's tracing on, to show what tracing costs.
//! Usage: bench-run SECONDS PHOTO, from the repository's root, with
//! BENCH_DATA, BENCH_LOGS, BENCH_CACHE and ZIPKIN_PORT set (scripts/lib.sh).

use bench::http_get_within;
use bench::report::{cell, field, ratio, rescoped};
use stack::RunFile;
use stack::metric_sum;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

mod classify;
mod grayscale;

const NATIVE: &str = "127.0.0.1:19100";
const WASM: &str = "127.0.0.1:19101";
const FULL: &str = "127.0.0.1:19102";
const TRACED: &str = "127.0.0.1:19103";
const OUT: &str = "target/wasm32-wasip2/release";
const GRAY: &str = "image-api-grayscale";
const CLASSIFY: &str = "image-api-classify";
const EVENTS: &str = "events-service";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [secs, photo] = &args[..] else {
        fail("usage: bench-run SECONDS PHOTO");
    };
    let secs: u64 = secs.parse().unwrap_or_else(|_| fail("SECONDS: a number"));
    let bench = Bench::new(secs, photo.clone());
    bench.start_cores();
    let full = bench.start_native_full_service();
    bench.grayscale(full);
    bench.one_call(full);
    bench.classification(full);
    bench.memory();
    stop_started();
}

/// The run's settings and the stack's addresses (from dapr.yaml).
struct Bench {
    secs: u64,
    photo: String,
    data: PathBuf,
    logs: PathBuf,
    cache: PathBuf,
    zipkin: String,
    file: RunFile,
}

impl Bench {
    fn new(secs: u64, photo: String) -> Self {
        let env = |k: &str| std::env::var(k).unwrap_or_else(|_| fail(&format!("{k} is not set")));
        let text = std::fs::read_to_string("dapr.yaml")
            .unwrap_or_else(|e| fail(&format!("dapr.yaml: {e}")));
        Self {
            secs,
            photo,
            data: env("BENCH_DATA").into(),
            logs: env("BENCH_LOGS").into(),
            cache: env("BENCH_CACHE").into(),
            zipkin: format!("127.0.0.1:{}", env("ZIPKIN_PORT")),
            file: RunFile::parse(&text).unwrap_or_else(|e| fail(&format!("dapr.yaml: {e}"))),
        }
    }

    fn app(&self, id: &str) -> &stack::App {
        self.file
            .app(id)
            .unwrap_or_else(|| fail(&format!("{id} is not in dapr.yaml")))
    }

    /// `127.0.0.1:<appPort>` of `id`.
    fn app_addr(&self, id: &str) -> String {
        format!("127.0.0.1:{}", self.app(id).app_port)
    }

    /// Its daprd's metrics address.
    fn dapr_metrics(&self, id: &str) -> String {
        format!("127.0.0.1:{}", self.app(id).metrics_port)
    }

    /// Its wasm-host's metrics address (`WASM_HOST_METRICS`).
    fn host_metrics(&self, id: &str) -> String {
        self.app(id)
            .env
            .get("WASM_HOST_METRICS")
            .cloned()
            .unwrap_or_else(|| fail(&format!("{id}: no WASM_HOST_METRICS in dapr.yaml")))
    }

    /// The native core, the wasm core, and the wasm core with tracing on
    /// (spans to Zipkin when it runs, else to a dead port).
    fn start_cores(&self) {
        start(Command::new("target/release/native-server").arg(NATIVE));
        let cwasm = format!("{OUT}/core-component.cwasm");
        let serve = |addr: &str| {
            let mut c = Command::new("wasm-host");
            c.args([
                "serve",
                &format!("--addr={addr}"),
                "--manifest=bench/host.toml",
                &cwasm,
            ]);
            c.stdout(Stdio::null()).stderr(Stdio::null());
            c
        };
        start(&mut serve(WASM));
        let spans = if self.zipkin_up() {
            format!("http://{}/api/v2/spans", self.zipkin)
        } else {
            "http://127.0.0.1:9/api/v2/spans".into()
        };
        start(serve(TRACED).env("WASM_HOST_ZIPKIN", spans));
        for (addr, what) in [
            (NATIVE, "native server"),
            (WASM, "wasm component"),
            (TRACED, "wasm component (tracing on)"),
        ] {
            wait_for(addr, Duration::from_secs(10), what);
        }
    }

    fn zipkin_up(&self) -> bool {
        up(&self.zipkin, "/health", Duration::from_secs(1))
    }

    /// The native full service beside its own daprd, when the stack runs
    /// (its components are the stack's, scoped to it instead).
    fn start_native_full_service(&self) -> bool {
        if !up(&self.app_addr(GRAY), "/healthz", Duration::from_secs(1)) {
            return false;
        }
        let dir = self.data.join("bench");
        let components = dir.join("components");
        let _ = std::fs::remove_dir_all(&components);
        std::fs::create_dir_all(&components)
            .unwrap_or_else(|e| fail(&format!("{}: {e}", components.display())));
        for c in ["statestore", "outbox", "pubsub", "brokersecrets"] {
            let from = format!("config/components/{c}.yaml");
            let text =
                std::fs::read_to_string(&from).unwrap_or_else(|e| fail(&format!("{from}: {e}")));
            let to = components.join(format!("{c}.yaml"));
            std::fs::write(&to, rescoped(&text, "bench-native"))
                .unwrap_or_else(|e| fail(&format!("{}: {e}", to.display())));
        }
        let log = self.logs.join("bench-native.log");
        let out = std::fs::File::create(&log)
            .unwrap_or_else(|e| fail(&format!("{}: {e}", log.display())));
        let stack = |args: &[&str]| {
            let mut c = Command::new("target/release/stack");
            c.args(["-f", "bench/dapr.yaml", "--data-dir"])
                .arg(&dir)
                .args(args);
            c
        };
        let err = out.try_clone().unwrap_or_else(|e| fail(&e.to_string()));
        start(
            stack(&["run", "--no-mtls", "--no-restart"])
                .stdout(out)
                .stderr(err),
        );
        let ready = stack(&["wait", "60"]).status().is_ok_and(|s| s.success());
        if !ready {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            eprintln!("{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
            fail("the native full service did not come up");
        }
        true
    }

    /// `load URL PHOTO C SECONDS [--rotate-client]`: its line of fields.
    fn load(&self, url: &str, c: u32, secs: u64, rotate: bool) -> String {
        let mut cmd = Command::new("target/release/load");
        cmd.args([url, &self.photo, &c.to_string(), &secs.to_string()]);
        if rotate {
            cmd.arg("--rotate-client");
        }
        output(&mut cmd).unwrap_or_else(|e| fail(&format!("load {url}: {e}")))
    }

    /// `trace-steps` on the last `secs + 1` seconds of `service`'s traces.
    fn trace_steps(&self, service: &str, span: &str, extra: &[String]) -> Option<String> {
        let lookback = ((self.secs + 1) * 1000).to_string();
        let mut cmd = Command::new("target/release/trace-steps");
        cmd.args([self.zipkin.as_str(), service, span, &lookback])
            .args(extra);
        output(cmd.stderr(Stdio::null())).ok()
    }

    /// Deliveries events-service's sidecar has taken.
    fn deliveries(&self) -> f64 {
        let text = metrics(&self.dapr_metrics(EVENTS));
        metric_sum(&text, "dapr_component_pubsub_ingress_count", |_| true)
    }

    /// A full-service row leaves its events to be stored after it: waits
    /// until no new delivery arrives for a second, so that work does not
    /// slow the next row.
    fn drain(&self) {
        let mut last = -1.0;
        for _ in 0..120 {
            let now = self.deliveries();
            if now == last {
                return;
            }
            last = now;
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

impl Bench {
    /// One sidecar call, the same state read 2000 times on a kept-alive
    /// connection to grayscale's daprd: through wasm-host (the SDK's `call
    /// --repeat` under grayscale's manifest) and natively (`sidecar-calls`,
    /// the native service's client).
    fn one_call(&self, full: bool) {
        if !full {
            return;
        }
        let token_file = self.data.join("tokens").join(GRAY).join("dapr-api-token");
        let token = std::fs::read_to_string(&token_file)
            .unwrap_or_else(|e| fail(&format!("{}: {e}", token_file.display())));
        let port = self.app(GRAY).dapr_http_port.to_string();
        let key = "/v1.0/state/statestore/bench-call";
        let call = std::env::current_dir()
            .unwrap_or_default()
            .join(OUT)
            .join("examples/call.wasm");
        let mut wasm = Command::new("wasm-host");
        wasm.args(["run", "--manifest", "service.toml"])
            .arg(&call)
            .args(["--repeat", "2000", "GET", key]);
        wasm.current_dir(GRAY)
            .env("DAPR_HTTP_PORT", &port)
            .env("DAPR_API_TOKEN", token.trim());
        let mut native = Command::new("target/release/sidecar-calls");
        native
            .args([format!("127.0.0.1:{port}").as_str(), "2000", "GET", key])
            .env("DAPR_API_TOKEN", token.trim());
        let (w, n) = (output(&mut wasm).ok(), output(&mut native).ok());
        let p50 = |o: &Option<String>| o.as_deref().and_then(|o| field(o, "p50_ms"));
        let (wp, np) = (p50(&w), p50(&n));
        println!(
            "\none sidecar call (a state read, kept alive, 2000 in a row), p50 ms: wasm-host {}, native {}: {}x the native time",
            cell(w.as_deref(), "p50_ms"),
            cell(n.as_deref(), "p50_ms"),
            ratio(wp.unwrap_or(0.0), np.unwrap_or(0.0))
        );
    }

    /// Resident memory of each running service's host process, after the
    /// load above (its instances are warm): from the supervisor's pid files.
    fn memory(&self) {
        if !self.data.join("run/stack.pid").is_file() {
            return;
        }
        println!("\nresident memory of each service (host process, after the runs above)\n");
        for app in &self.file.apps {
            let pid_file = self.data.join("run").join(&app.app_id).join("app.pid");
            let Ok(pid) = std::fs::read_to_string(&pid_file) else {
                continue;
            };
            let status =
                std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap_or_default();
            let kb = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok());
            if let Some(kb) = kb {
                println!("{:<24} {:>6.0} MB", app.app_id, kb / 1024.0);
            }
        }
    }
}

/// The sidecar rows both breakdowns share.
fn dapr_steps(w: Option<&str>, n: Option<&str>) {
    for (what, key) in [
        (
            "3 sidecar calls (rate limit read + write, outbox)",
            "dapr_p50_ms",
        ),
        ("  the rate limit's read and write", "dapr.admit_p50_ms"),
        ("  the event's transaction (outbox)", "dapr.event_p50_ms"),
    ] {
        step(what, &cell(w, key), &cell(n, key));
    }
}

fn step(what: &str, wasm: &str, native: &str) {
    println!("{what:<52} {wasm:>8} {native:>8}");
}

fn row(label: &str, c: u32, out: &str) {
    let o = Some(out);
    println!(
        "{label:<28} {c:>5} {:>10} {:>9} {:>9} {:>8}",
        cell(o, "rps"),
        cell(o, "p50_ms"),
        cell(o, "p99_ms"),
        cell(o, "errors")
    );
}

/// Calls the grayscale sidecar served (its own metrics, health checks aside).
fn sidecar_calls(metrics_addr: &str) -> f64 {
    let text = metrics(metrics_addr);
    metric_sum(&text, "dapr_http_server_request_count", |l| {
        !l.contains("healthz")
    })
}

/// TCP connections a host opened to reach its sidecar (host/src/pool.rs).
fn host_connections(metrics_addr: &str) -> f64 {
    metric_sum(
        &metrics(metrics_addr),
        "wasm_host_outbound_connections_total",
        |_| true,
    )
}

fn metrics(addr: &str) -> String {
    get_text(addr, "/metrics").unwrap_or_default()
}

/// The body of `GET path` from `addr` when it answers 2xx within 2 s.
fn get_text(addr: &str, path: &str) -> Option<String> {
    let m = http_get_within(addr, path, Duration::from_secs(2)).ok()?;
    let ok = m
        .start
        .split(' ')
        .nth(1)
        .is_some_and(|s| s.starts_with('2'));
    ok.then(|| String::from_utf8_lossy(&m.body).into_owned())
}

/// `GET path` answers 2xx within `timeout`.
fn up(addr: &str, path: &str, timeout: Duration) -> bool {
    http_get_within(addr, path, timeout).is_ok_and(|m| {
        m.start
            .split(' ')
            .nth(1)
            .is_some_and(|s| s.starts_with('2'))
    })
}

fn wait_for(addr: &str, within: Duration, what: &str) {
    let start = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        if start.elapsed() > within {
            fail(&format!(
                "{what} did not listen on {addr} within {within:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The last line of a command's standard output, when it succeeds.
fn output(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.lines().last().unwrap_or_default().to_string())
}

/// The servers this run started: stopped (SIGTERM, so that the supervisor
/// stops its own daprd and app) when it ends or fails.
static STARTED: Mutex<Vec<Child>> = Mutex::new(Vec::new());

fn start(cmd: &mut Command) {
    match cmd.spawn() {
        Ok(child) => STARTED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(child),
        Err(e) => fail(&format!("{cmd:?}: {e}")),
    }
}

fn stop_started() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let mut started = STARTED.lock().unwrap_or_else(|e| e.into_inner());
    for c in started.iter_mut() {
        if let Ok(pid) = i32::try_from(c.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let _ = c.wait();
    }
    started.clear();
}

/// A line of progress, as scripts/lib.sh's `log` prints it.
fn log(what: &str) {
    eprintln!("\x1b[1;34m==>\x1b[0m {what}");
}

fn fail(why: &str) -> ! {
    eprintln!("bench-run: {why}");
    stop_started();
    std::process::exit(1);
}
