//! wasm-host: serves one wasi:http component beside its Dapr sidecar with
//! exactly the capabilities its `service.toml` grants (see the README).
//!
//! ```text
//! wasm-host serve --addr 127.0.0.1:9005 --manifest service.toml app.cwasm
//! wasm-host compile app.wasm app.cwasm
//! wasm-host limits --manifest service.toml     # the limits, and the memory they bound
//! wasm-host run --manifest service.toml command.wasm [ARGS...]   # wasi:cli, e.g. a test binary
//! ```

mod nn;
mod observe;
mod runtime;
mod server;

use nn::{SharedGraphs, load_graphs};
use runtime::{Grants, Handler, Host};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::{Duration, Instant};
use wasm_host::guard::LogLimiter;
use wasm_host::{Capabilities, Manifest};
use wasmtime::component::{Component, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Result, bail, format_err,
};
use wasmtime_wasi_http::handler::ProxyPre;

/// How often the epoch ticks: a CPU-bound guest yields this often, so a
/// request deadline can cut it off.
const EPOCH_TICK: Duration = Duration::from_millis(50);

/// Set once the host stops: instances cut off then are not failures
/// (wasmtime-wasi-http reports a dropped worker as "worker panicked").
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Repeated log lines, limited per kind: a client that can make the host
/// log (a trap, a refusal) cannot grow the logs without bound.
static LOGS: LazyLock<LogLimiter> = LazyLock::new(|| LogLimiter::new(Duration::from_secs(10), 5));

/// `eprintln!` with `wasm-host: `, at most 5 lines of a kind per 10 s; the
/// next one written says how many were dropped.
#[macro_export]
macro_rules! log_limited {
    ($kind:expr, $($arg:tt)*) => {
        if let ::wasm_host::guard::LogVerdict::Write { suppressed } =
            $crate::LOGS.check($kind, ::std::time::Instant::now())
        {
            if suppressed > 0 {
                eprintln!("wasm-host: ({suppressed} lines like the next were dropped)");
            }
            eprintln!("wasm-host: {}", format_args!($($arg)*));
        }
    };
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => ServeArgs::parse(&args[1..]).and_then(serve),
        Some("limits") => match &args[1..] {
            [flag, manifest] if flag == "--manifest" => print_limits(Path::new(manifest)),
            _ => Err(format_err!(
                "usage: wasm-host limits --manifest service.toml"
            )),
        },
        Some("run") => run_command(&args[1..]),
        Some("compile") => match &args[1..] {
            [input, output] => compile(Path::new(input), Path::new(output)),
            _ => Err(format_err!("usage: wasm-host compile IN.wasm OUT.cwasm")),
        },
        _ => Err(format_err!(
            "usage: wasm-host serve --addr IP:PORT --manifest service.toml COMPONENT.cwasm\n       \
             wasm-host compile IN.wasm OUT.cwasm\n       \
             wasm-host limits --manifest service.toml\n       \
             wasm-host run --manifest service.toml COMMAND.wasm [ARGS...]"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wasm-host: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The engine settings that compiled code depends on: `compile` and `serve`
/// must agree, or the precompiled file is refused.
fn base_config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config
}

/// Precompiles a component for this host (done at set-up, so a service
/// starts in milliseconds). Written beside and renamed, so a running host
/// never maps a half-written file.
fn compile(input: &Path, output: &Path) -> Result<()> {
    let engine = Engine::new(&base_config())?;
    let wasm = std::fs::read(input).map_err(|e| format_err!("{}: {e}", input.display()))?;
    let compiled = engine.precompile_component(&wasm)?;
    let tmp = output.with_extension("cwasm.tmp");
    std::fs::write(&tmp, compiled)?;
    std::fs::rename(&tmp, output)?;
    Ok(())
}

/// Loads and resolves a manifest; relative paths in it are relative to its folder.
fn load_manifest(path: &Path) -> Result<Capabilities> {
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    read_manifest(path, |m| {
        wasm_host::resolve(&m, base, |k| std::env::var(k).ok())
    })
}

/// Reads and parses a manifest, then `then` on it; errors name the file.
fn read_manifest<T>(
    path: &Path,
    then: impl FnOnce(Manifest) -> std::result::Result<T, String>,
) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| format_err!("{}: {e}", path.display()))?;
    Manifest::parse(&text)
        .and_then(then)
        .map_err(|e| format_err!("{}: {e}", path.display()))
}

/// Runs a wasi:cli command component (e.g. the SDK's wasm test binary) with
/// the manifest's capabilities; exits with its exit code.
fn run_command(args: &[String]) -> Result<()> {
    let (manifest, component, guest_args) = match args {
        [flag, manifest, component, rest @ ..] if flag == "--manifest" => {
            (manifest.as_str(), component, rest)
        }
        [flag, component, rest @ ..] if flag.starts_with("--manifest=") => {
            (&flag["--manifest=".len()..], component, rest)
        }
        _ => bail!("usage: wasm-host run --manifest service.toml COMMAND.wasm [ARGS...]"),
    };
    let caps = load_manifest(Path::new(manifest))?;
    // The epoch never ticks here: no deadline for a command.
    let engine = Engine::new(&base_config())?;
    let wasm =
        Component::from_file(&engine, component).map_err(|e| format_err!("{component}: {e:#}"))?;
    let mut linker: Linker<Host> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    observe::add_to_linker(&mut linker)?;
    let grants = Grants::new(caps, SharedGraphs::default());
    let mut argv = vec![component.clone()];
    argv.extend(guest_args.iter().cloned());
    let mut store = grants.store(&engine, &argv, Default::default())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let code = rt.block_on(async {
        let cmd =
            wasmtime_wasi::p2::bindings::Command::instantiate_async(&mut store, &wasm, &linker)
                .await?;
        wasmtime::error::Ok(match cmd.wasi_cli_run().call_run(&mut store).await {
            Ok(Ok(())) => 0,
            Ok(Err(())) => 1,
            Err(e) => match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
                Some(exit) => exit.0,
                None => return Err(e),
            },
        })
    })?;
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

struct ServeArgs {
    addr: SocketAddr,
    manifest: PathBuf,
    component: PathBuf,
}

impl ServeArgs {
    fn parse(args: &[String]) -> Result<Self> {
        let (mut addr, mut manifest, mut component) = (None, None, None);
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
                _ => (a.as_str(), None),
            };
            let mut value = || inline.clone().or_else(|| it.next().cloned());
            match flag {
                "--addr" => addr = value(),
                "--manifest" => manifest = value(),
                f if f.starts_with('-') => bail!("unknown option {f}"),
                _ if component.is_none() => component = Some(a.clone()),
                _ => bail!("unexpected argument {a}"),
            }
        }
        let addr: SocketAddr = addr
            .ok_or_else(|| format_err!("--addr is required"))?
            .parse()
            .map_err(|e| format_err!("--addr: {e}"))?;
        Ok(Self {
            addr,
            manifest: manifest
                .ok_or_else(|| format_err!("--manifest is required"))?
                .into(),
            component: component
                .ok_or_else(|| format_err!("the component is required"))?
                .into(),
        })
    }
}

fn serve(args: ServeArgs) -> Result<()> {
    let started = Instant::now();
    let caps = load_manifest(&args.manifest)?;

    let mut config = base_config();
    // WASM_HOST_PROFILE=perfmap: /tmp/perf-<pid>.map names the guest's
    // compiled functions for `perf report` (scripts/bench --profile).
    if std::env::var("WASM_HOST_PROFILE").is_ok_and(|v| v == "perfmap") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let mut pool = PoolingAllocationConfig::default();
    // As many instances as the memory budget holds at their limit, so the
    // sum of all guest memory stays within it; a freed slot's memory is
    // given back (nothing is kept resident).
    let instances = caps.limits.plan().instances;
    pool.total_component_instances(instances)
        .total_core_instances(instances * 8)
        .total_memories(instances * 4)
        .total_tables(instances * 4)
        .total_stacks(instances)
        .max_memory_size(caps.limits.memory_bytes);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    let engine = Engine::new(&config)?;

    // SAFETY: the file is our own `wasm-host compile` output (set-up writes
    // it, renamed into place); wasmtime checks it was made by this version
    // with these settings and refuses it otherwise.
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize_file(&engine, &args.component) }
        .map_err(|e| format_err!("{}: {e:#}", args.component.display()))?;

    let mut linker: Linker<Host> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    observe::add_to_linker(&mut linker)?;
    // wasi-nn only for a service granted graphs.
    if !caps.nn_graphs.is_empty() {
        wasmtime_wasi_nn::wit::add_to_linker(&mut linker, Host::nn)?;
    }
    let pre = ProxyPre::P2(wasmtime_wasi_http::p2::bindings::ProxyPre::new(
        linker.instantiate_pre(&component)?,
    )?);
    let graphs = load_graphs(&caps)?;
    let app_token = std::env::var("APP_API_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    let handler = Handler {
        grants: Grants::new(caps, graphs),
        pre,
        engine,
        instances: AtomicU64::new(0),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(server::run(args.addr, handler, app_token, started))
}

/// Prints a manifest's limits and the worst-case memory they allow, for
/// people and for the checks that size a pod from them.
fn print_limits(manifest: &Path) -> Result<()> {
    let limits = read_manifest(manifest, |m| m.limits())?;
    let plan = limits.plan();
    let mib = |b: u64| b >> 20;
    println!("requests_at_once = {}", plan.slots);
    println!("instances_at_most = {}", plan.instances);
    println!(
        "memory_mib_per_instance = {}",
        mib(limits.memory_bytes as u64)
    );
    println!(
        "buffered_mib_at_most = {}",
        mib(limits.max_buffered_bytes as u64)
    );
    println!("worst_case_mib = {}", mib(plan.worst_case_bytes));
    println!("max_body_bytes = {}", limits.max_body_bytes);
    println!("max_connections = {}", limits.max_connections);
    println!(
        "max_connections_per_client = {}",
        limits.max_connections_per_client
    );
    Ok(())
}
