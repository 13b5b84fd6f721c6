//! wasm-host: serves one wasi:http component beside its Dapr sidecar with
//! exactly the capabilities its `host.toml` grants (see the README).
//!
//! ```text
//! wasm-host serve --addr 127.0.0.1:9005 --manifest host.toml app.cwasm
//! wasm-host compile app.wasm app.cwasm
//! wasm-host run --manifest host.toml command.wasm [ARGS...]   # wasi:cli, e.g. a test binary
//! ```

use http::{HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Body as _;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use wasm_host::{
    Authority, Capabilities, Manifest, SocketUse, outbound_allowed, set_client, socket_allowed,
};
use wasmtime::component::{Component, GuestTaskId, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Result, Store,
    StoreContextMut, StoreLimits, StoreLimitsBuilder, bail, format_err,
};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, Proxy, ProxyHandler, ProxyPre, ShouldAccept, WorkerExpiration,
    WorkerState, WorkerStatus,
};
use wasmtime_wasi_http::{WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks};
use wasmtime_wasi_nn::wit::{WasiNnCtx, WasiNnView};
use wasmtime_wasi_nn::{Graph, GraphRegistry, Registry};

/// How often the epoch ticks: a CPU-bound guest yields this often, so a
/// request deadline can cut it off.
const EPOCH_TICK: Duration = Duration::from_millis(50);

/// Set once the host stops: instances cut off then are not failures
/// (wasmtime-wasi-http reports a dropped worker as "worker panicked").
static STOPPING: AtomicBool = AtomicBool::new(false);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => ServeArgs::parse(&args[1..]).and_then(serve),
        Some("run") => run_command(&args[1..]),
        Some("compile") => match &args[1..] {
            [input, output] => compile(Path::new(input), Path::new(output)),
            _ => Err(format_err!("usage: wasm-host compile IN.wasm OUT.cwasm")),
        },
        _ => Err(format_err!(
            "usage: wasm-host serve --addr IP:PORT --manifest host.toml COMPONENT.cwasm\n       \
             wasm-host compile IN.wasm OUT.cwasm\n       \
             wasm-host run --manifest host.toml COMMAND.wasm [ARGS...]"
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
    let text = std::fs::read_to_string(path).map_err(|e| format_err!("{}: {e}", path.display()))?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Manifest::parse(&text)
        .and_then(|m| m.resolve(base, |k| std::env::var(k).ok()))
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
        _ => bail!("usage: wasm-host run --manifest host.toml COMMAND.wasm [ARGS...]"),
    };
    let caps = load_manifest(Path::new(manifest))?;
    // The epoch never ticks here: no deadline for a command.
    let engine = Engine::new(&base_config())?;
    let wasm =
        Component::from_file(&engine, component).map_err(|e| format_err!("{component}: {e:#}"))?;
    let mut linker: Linker<Host> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    let grants = Grants::new(caps, SharedGraphs::default());
    let mut argv = vec![component.clone()];
    argv.extend(guest_args.iter().cloned());
    let mut store = grants.store(&engine, &argv)?;
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

/// Per-instance state: WASI as the manifest allows, wasi:http with the
/// outbound allow-list, wasi-nn over the process's shared graphs.
struct Host {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: Hooks,
    nn: WasiNnCtx,
    limits: StoreLimits,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime_wasi_http::WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// wasi:http hooks: outbound requests only to the manifest's authorities.
struct Hooks {
    outbound: Arc<Vec<Authority>>,
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
)>;

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let uri = request.uri().clone();
        let scheme = uri.scheme_str().unwrap_or("");
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
        if !outbound_allowed(&self.outbound, scheme, authority) {
            eprintln!(
                "wasm-host: denied outbound HTTP to {scheme}://{authority} (not in host.toml [http] outbound)"
            );
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        // `host` is a forbidden header for the guest, and wasmtime 48's p2
        // path does not add it; HTTP/1.1 servers (daprd) require it.
        if let Ok(v) = HeaderValue::from_str(authority) {
            request.headers_mut().entry(http::header::HOST).or_insert(v);
        }
        Box::new(async move {
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                res.map(http_body_util::BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

/// The graphs, loaded once per process; each instance gets cheap clones
/// (`Graph` is reference-counted), so a new instance pays no load.
#[derive(Clone, Default)]
struct SharedGraphs(HashMap<String, Graph>);

impl GraphRegistry for SharedGraphs {
    fn get(&self, name: &str) -> Option<&Graph> {
        self.0.get(name)
    }
    fn get_mut(&mut self, name: &str) -> Option<&mut Graph> {
        self.0.get_mut(name)
    }
}

fn load_graphs(caps: &Capabilities) -> Result<SharedGraphs> {
    let mut graphs = HashMap::new();
    for (format, dir) in &caps.nn_graphs {
        let started = Instant::now();
        let dir_s = dir
            .to_str()
            .ok_or_else(|| format_err!("{}: not UTF-8", dir.display()))?;
        let (_, registry) = wasmtime_wasi_nn::preload(&[(format.clone(), dir_s.to_string())])?;
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format_err!("{}: no folder name", dir.display()))?;
        let graph = registry
            .get(name)
            .ok_or_else(|| format_err!("{}: graph `{name}` did not load", dir.display()))?
            .clone();
        eprintln!(
            "wasm-host: loaded nn graph `{name}` ({format}) in {} ms, shared by every instance",
            started.elapsed().as_millis()
        );
        graphs.insert(name.to_string(), graph);
    }
    Ok(SharedGraphs(graphs))
}

/// What the manifest grants, ready to build stores from (once per process).
struct Grants {
    caps: Capabilities,
    env: Vec<(String, String)>,
    outbound: Arc<Vec<Authority>>,
    tcp: Arc<Vec<SocketAddr>>,
    graphs: SharedGraphs,
}

impl Grants {
    fn new(caps: Capabilities, graphs: SharedGraphs) -> Self {
        // Only the named variables, and only if set.
        let env = caps
            .env
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.clone(), v)))
            .collect();
        Self {
            outbound: Arc::new(caps.outbound.clone()),
            tcp: Arc::new(caps.tcp_connect.clone()),
            env,
            graphs,
            caps,
        }
    }

    /// A store for one instance: WASI with the granted env, folders and
    /// sockets, wasi:http with the outbound allow-list, wasi-nn over the
    /// shared graphs, the memory limit.
    fn store(&self, engine: &Engine, argv: &[String]) -> Result<Store<Host>> {
        let mut b = WasiCtxBuilder::new();
        b.inherit_stdout().inherit_stderr().args(argv);
        for (k, v) in &self.env {
            b.env(k, v);
        }
        for (host, guest) in &self.caps.dirs {
            b.preopened_dir(host, guest, FsPerms::ReadOnly)
                .map_err(|e| format_err!("dir {}: {e}", host.display()))?;
        }
        // No sockets unless listed; then TCP to those addresses only, no
        // UDP, no name lookup.
        b.allow_udp(false).allow_ip_name_lookup(false);
        b.allow_tcp(!self.tcp.is_empty());
        let tcp = self.tcp.clone();
        b.socket_addr_check(move |addr, use_| {
            let use_ = match use_ {
                SocketAddrUse::TcpBind => SocketUse::TcpBind,
                SocketAddrUse::TcpConnect => SocketUse::TcpConnect,
                _ => SocketUse::Other,
            };
            let ok = socket_allowed(&tcp, addr, use_);
            if !ok {
                eprintln!(
                    "wasm-host: denied socket {use_:?} {addr} (not in host.toml [sockets] tcp_connect)"
                );
            }
            Box::pin(async move { ok })
        });
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.caps.limits.memory_bytes)
            .trap_on_grow_failure(false)
            .build();
        let host = Host {
            table: ResourceTable::new(),
            wasi: b.build(),
            http: WasiHttpCtx::new(),
            hooks: Hooks {
                outbound: self.outbound.clone(),
            },
            // No backends: a component may use the preloaded graphs by name,
            // never load model bytes of its own.
            nn: WasiNnCtx::new([], Registry::from(self.graphs.clone())),
            limits,
        };
        let mut store = Store::new(engine, host);
        store.limiter(|h| &mut h.limits);
        store.epoch_deadline_async_yield_and_update(1);
        store.set_epoch_deadline(1);
        Ok(store)
    }
}

struct Handler {
    grants: Grants,
    pre: ProxyPre<Host>,
    engine: Engine,
    requests: Semaphore,
    instances: AtomicU64,
}

struct Expiration {
    idle: Duration,
    request: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl WorkerExpiration for Expiration {
    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        let timeout = match status {
            WorkerStatus::Idle => self.idle,
            WorkerStatus::Requests | WorkerStatus::PostReturn => self.request,
        };
        let Some(deadline) = start.checked_add(timeout) else {
            return Poll::Pending;
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        if self.sleep.deadline() != deadline {
            self.sleep.as_mut().reset(deadline);
        }
        self.sleep.as_mut().poll(cx)
    }
}

struct Worker {
    max_requests: usize,
    request_timeout: Duration,
}

impl WorkerState for Worker {
    type StoreData = Host;
    type RequestData = ();

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.max_requests {
            ShouldAccept::Never
        } else if concurrent >= 1 {
            // wasi:http 0.2 instances handle one request at a time.
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        _store: StoreContextMut<'_, Host>,
        _data: (),
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + 'static + Send + Sync>> {
        Box::pin(tokio::time::sleep(self.request_timeout))
    }

    fn drop(&self, store: Store<Host>, result: Result<()>) {
        if let Err(e) = result
            && !STOPPING.load(Ordering::Relaxed)
        {
            eprintln!("wasm-host: instance ended: {e:?}");
        }
        drop(store);
    }
}

impl HandlerState for Handler {
    type StoreData = Host;
    type WorkerExpiration = Expiration;
    type WorkerState = Worker;

    async fn instantiate(&self) -> Result<Instance<Host, Expiration, Worker>> {
        let limits = &self.grants.caps.limits;
        let started = Instant::now();
        let mut store = self.grants.store(&self.engine, &[])?;
        let proxy: Proxy = self.pre.instantiate_async(&mut store).await?;
        // Rare (instances are reused), and it shows that a new instance
        // loads no nn graph.
        let n = self.instances.fetch_add(1, Ordering::Relaxed) + 1;
        eprintln!(
            "wasm-host: instance {n} ready in {} us",
            started.elapsed().as_micros()
        );
        Ok(Instance {
            store,
            proxy,
            view: wasmtime_wasi_http::WasiHttpView::http,
            expiration: Expiration {
                idle: limits.idle_instance,
                request: limits.request_timeout,
                sleep: Box::pin(tokio::time::sleep(Duration::from_secs(86_400 * 365))),
            },
            state: Worker {
                max_requests: usize::try_from(limits.max_requests_per_instance)
                    .unwrap_or(usize::MAX),
                request_timeout: limits.request_timeout,
            },
        })
    }
}

fn serve(args: ServeArgs) -> Result<()> {
    let started = Instant::now();
    let caps = load_manifest(&args.manifest)?;

    let mut config = base_config();
    let mut pool = PoolingAllocationConfig::default();
    // Room for every concurrent request plus idle instances kept for reuse.
    let instances = caps.limits.max_concurrent_requests * 2 + 4;
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
    // wasi-nn only for a service granted graphs.
    if !caps.nn_graphs.is_empty() {
        wasmtime_wasi_nn::wit::add_to_linker(&mut linker, |h: &mut Host| {
            WasiNnView::new(&mut h.table, &mut h.nn)
        })?;
    }
    let pre = ProxyPre::P2(wasmtime_wasi_http::p2::bindings::ProxyPre::new(
        linker.instantiate_pre(&component)?,
    )?);
    let graphs = load_graphs(&caps)?;
    let app_token = std::env::var("APP_API_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    let concurrency = caps.limits.max_concurrent_requests as usize;
    let handler = Handler {
        grants: Grants::new(caps, graphs),
        pre,
        engine,
        requests: Semaphore::new(concurrency),
        instances: AtomicU64::new(0),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(args.addr, handler, app_token, started))
}

async fn run(
    addr: SocketAddr,
    handler: Handler,
    app_token: Option<String>,
    started: Instant,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format_err!("cannot listen on {addr}: {e}"))?;
    let ticking = Arc::new(AtomicBool::new(true));
    let epoch = {
        let (engine, ticking) = (handler.engine.clone(), ticking.clone());
        std::thread::spawn(move || {
            while ticking.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        })
    };
    let request_timeout = handler.grants.caps.limits.request_timeout;
    let handler = ProxyHandler::new(handler);
    let app_token = Arc::new(app_token);
    eprintln!(
        "wasm-host: serving http://{addr}/ (ready in {} ms)",
        started.elapsed().as_millis()
    );

    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: wait, do not spin.
                    eprintln!("wasm-host: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let app_token = app_token.clone();
        let service = hyper::service::service_fn(move |req| {
            let handler = handler.clone();
            let app_token = app_token.clone();
            async move {
                Ok::<_, std::convert::Infallible>(
                    handle(&handler, req, peer.ip(), app_token.as_deref()).await,
                )
            }
        });
        let conn = http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                // Clients hanging up mid-request are routine; say it once.
                eprintln!("wasm-host: connection from {peer}: {e}");
            }
        });
    }

    drop(listener);
    eprintln!("wasm-host: stopping; finishing requests in flight");
    STOPPING.store(true, Ordering::Relaxed);
    handler.state().requests.close();
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(request_timeout) => {
            eprintln!("wasm-host: requests still running after {request_timeout:?}; leaving");
        }
        _ = sigint.recv() => {}
        _ = sigterm.recv() => {}
    }
    ticking.store(false, Ordering::Relaxed);
    let _ = epoch.join();
    Ok(())
}

/// One request: the client header, the concurrency limit, the component.
async fn handle(
    handler: &ProxyHandler<Handler>,
    req: http::Request<hyper::body::Incoming>,
    peer: IpAddr,
    app_token: Option<&str>,
) -> http::Response<WasiBody> {
    let Ok(_permit) = handler.state().requests.acquire().await else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the service is stopping",
        );
    };
    let mut req = req.map(|body| {
        DrainOnDrop::new(body)
            .map_err(wasmtime_wasi_http::Error::from)
            .boxed_unsync()
    });
    set_client(req.headers_mut(), peer, app_token);
    match handler.handle((), req).await {
        Ok(response) => response,
        Err(e) => {
            if e.is::<wasmtime_wasi_http::handler::ExpirationError>() {
                eprintln!("wasm-host: request timed out");
                error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "timeout",
                    "the service did not answer in time",
                )
            } else {
                eprintln!("wasm-host: request failed: {e:?}");
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}

/// Most unread request body the host still reads, and for how long, after
/// the component has answered without reading it all (a 429 or a 413).
const DRAIN_MAX_BYTES: u64 = 16 << 20;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The request body as the component sees it. If the component drops it
/// unread, the rest is read and discarded in the background: closing a
/// socket with unread input resets it, and a client still writing its body
/// (daprd's app channel does) then loses the answer to `broken pipe`.
struct DrainOnDrop {
    body: Option<hyper::body::Incoming>,
    ended: bool,
}

impl DrainOnDrop {
    fn new(body: hyper::body::Incoming) -> Self {
        Self {
            body: Some(body),
            ended: false,
        }
    }
}

impl hyper::body::Body for DrainOnDrop {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let Some(body) = self.body.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = Pin::new(body).poll_frame(cx);
        if matches!(frame, Poll::Ready(None | Some(Err(_)))) {
            self.ended = true;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body
            .as_ref()
            .map_or_else(|| hyper::body::SizeHint::with_exact(0), |b| b.size_hint())
    }
}

impl Drop for DrainOnDrop {
    fn drop(&mut self) {
        let Some(mut body) = self.body.take() else {
            return;
        };
        // A body declared larger than the budget is not worth reading.
        if self.ended || body.is_end_stream() || body.size_hint().lower() > DRAIN_MAX_BYTES {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let drain = async {
                let mut read = 0u64;
                while let Some(Ok(frame)) = body.frame().await {
                    read += frame.data_ref().map_or(0, |d| d.len() as u64);
                    if read > DRAIN_MAX_BYTES {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain).await;
        });
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> http::Response<WasiBody> {
    let body = format!("{{\"error\":\"{message}\",\"code\":\"{code}\"}}");
    let mut response = Response::new(
        Full::new(bytes::Bytes::from(body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
