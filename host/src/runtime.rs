//! The wasmtime side of the host: per-instance state with exactly what the
//! manifest grants, the shared nn graphs, and the instance pool's rules
//! (one request at a time, reuse, recycling an instance that grew).

use http::HeaderValue;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use wasm_host::metrics::Metrics;
use wasm_host::pool::{Limits as PoolLimits, Pool, Timeouts};
use wasm_host::recorder::Recorder;
use wasm_host::spans::json_str;
use wasm_host::{
    Authority, Capabilities, SidecarPolicy, SocketUse, outbound_allowed, socket_allowed,
};
use wasmtime::component::{GuestTaskId, ResourceTable};
use wasmtime::{
    Engine, ResourceLimiter, Result, Store, StoreContextMut, StoreLimits, StoreLimitsBuilder,
    format_err,
};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, Proxy, ProxyPre, ShouldAccept, WorkerExpiration, WorkerState,
    WorkerStatus,
};
use wasmtime_wasi_http::{WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks};
use wasmtime_wasi_nn::Registry;
use wasmtime_wasi_nn::wit::{WasiNnCtx, WasiNnView};

use crate::nn::SharedGraphs;
use crate::{STOPPING, log_limited};

/// The W3C trace context header.
pub const TRACEPARENT: &str = "traceparent";

/// Per-instance state: WASI as the manifest allows, wasi:http with the
/// outbound allow-list, wasi-nn over the process's shared graphs.
pub struct Host {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: Hooks,
    nn: WasiNnCtx,
    limits: Tracked,
}

impl Host {
    /// wasi-nn's view, for the linker.
    pub fn nn(&mut self) -> WasiNnView<'_> {
        WasiNnView::new(&mut self.table, &mut self.nn)
    }

    /// The trace of the request the instance is serving (observe.rs).
    pub fn trace(&self) -> Option<&Recorder> {
        self.hooks.trace.as_deref()
    }
}

/// The store's memory limit, and the memory it has grown to, which the
/// worker reads to decide whether to keep the instance for reuse.
struct Tracked {
    limits: StoreLimits,
    memory: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
}

impl ResourceLimiter for Tracked {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool> {
        let ok = self.limits.memory_growing(current, desired, maximum)?;
        if ok {
            self.memory.fetch_max(desired, Ordering::Relaxed);
            self.metrics
                .memory_high_water
                .fetch_max(desired, Ordering::Relaxed);
        }
        Ok(ok)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }
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

/// wasi:http hooks: outbound requests only to the manifest's authorities,
/// and to the sidecar only for the Dapr APIs its `[dapr]` grants.
struct Hooks {
    outbound: Arc<Vec<Authority>>,
    sidecar: Arc<Sidecar>,
    /// The trace of the request the instance is serving: each outbound
    /// request gets a client span whose `traceparent` it carries, so Dapr's
    /// hops join the caller's trace with no tracing code in the component.
    trace: Option<Arc<Recorder>>,
    metrics: Arc<Metrics>,
    /// Kept-alive connections for plain-HTTP outbound calls (pool.rs).
    pool: Arc<Pool<WasiBody>>,
}

/// The sidecar's address and what the component may ask of it.
pub struct Sidecar {
    authority: Option<Authority>,
    policy: SidecarPolicy,
    /// WASM_HOST_UNSAFE_NO_SIDECAR_CHECK=1: tests only, to show that Dapr
    /// denies on its own what the host would have.
    unchecked: bool,
}

impl Sidecar {
    /// Whether a request goes to the sidecar, and if so, whether it is granted.
    fn check(
        &self,
        scheme: &str,
        authority: &str,
        method: &str,
        path: &str,
    ) -> Option<Result<(), String>> {
        let sidecar = self.authority.as_ref()?;
        if !outbound_allowed(std::slice::from_ref(sidecar), scheme, authority) {
            return None;
        }
        Some(if self.unchecked {
            Ok(())
        } else {
            self.policy.check(method, path)
        })
    }
}

/// The host's own answer to a denied sidecar request: what Dapr answers
/// for a denied call, 403 with a JSON reason.
fn denied(reason: &str) -> http::Response<WasiBody> {
    use http_body_util::BodyExt;
    let body = format!(
        "{{\"errorCode\":\"ERR_HOST_DENIED\",\"message\":{}}}",
        json_str(reason)
    );
    let mut res = http::Response::new(
        http_body_util::Full::new(bytes::Bytes::from(body))
            .map_err(|e: std::convert::Infallible| match e {})
            .boxed_unsync(),
    );
    *res.status_mut() = http::StatusCode::FORBIDDEN;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
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
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let to_sidecar = self
            .sidecar
            .check(scheme, authority, request.method().as_str(), path);
        let target = if to_sidecar.is_some() {
            "sidecar"
        } else {
            "other"
        };
        let span = self
            .trace
            .as_ref()
            .map(|t| (t.clone(), t.client(request.method().as_str(), uri.path())));
        match &to_sidecar {
            Some(Err(why)) => {
                self.metrics.outbound("sidecar", "denied");
                if let Some((t, c)) = span {
                    t.client_done(c, target, "denied");
                }
                log_limited!("denied-dapr", "denied Dapr call: {why}");
                let res = denied(why);
                return Box::new(async move {
                    Ok((
                        res,
                        Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>,
                    ))
                });
            }
            Some(Ok(())) => {}
            None if !outbound_allowed(&self.outbound, scheme, authority) => {
                self.metrics.outbound("other", "denied");
                log_limited!(
                    "denied-outbound",
                    "denied outbound HTTP to {scheme}://{authority} (not in service.toml [http] outbound)"
                );
                if let Some((t, c)) = span {
                    t.client_done(c, target, "denied");
                }
                return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
            }
            None => {}
        }
        if let Some((t, c)) = &span
            && let Ok(tp) = HeaderValue::from_str(&t.traceparent(&c.id))
        {
            request.headers_mut().entry(TRACEPARENT).or_insert(tp);
        }
        // `host` is a forbidden header for the guest, and wasmtime 48's p2
        // path does not add it; HTTP/1.1 servers (daprd) require it.
        if let Ok(v) = HeaderValue::from_str(authority) {
            request.headers_mut().entry(http::header::HOST).or_insert(v);
        }
        let metrics = self.metrics.clone();
        let pool = (scheme == "http").then(|| self.pool.clone());
        Box::new(async move {
            let sent = match pool {
                Some(pool) => send_pooled(&pool, &metrics, request, options).await,
                None => wasmtime_wasi_http::default_send_request(request, options)
                    .await
                    .map(|(res, io)| {
                        (
                            res.map(http_body_util::BodyExt::boxed_unsync),
                            Box::new(io) as Box<dyn Future<Output = _> + Send>,
                        )
                    }),
            };
            metrics.outbound(target, if sent.is_ok() { "ok" } else { "error" });
            if let Some((t, c)) = span {
                let outcome = match &sent {
                    Ok((res, _)) => res.status().as_str().to_string(),
                    Err(_) => "error".into(),
                };
                t.client_done(c, target, &outcome);
            }
            sent
        })
    }
}

/// Sends a plain-HTTP request on a kept-alive connection (pool.rs), with
/// the guest's timeouts or wasmtime's defaults.
async fn send_pooled(
    pool: &Arc<Pool<WasiBody>>,
    metrics: &Metrics,
    mut request: http::Request<WasiBody>,
    options: Option<wasmtime_wasi_http::RequestOptions>,
) -> SendResult {
    use wasmtime_wasi_http::Error;
    const DEFAULT: Duration = Duration::from_secs(600);
    let uri = request.uri();
    let authority = uri.authority().ok_or(Error::HttpRequestUriInvalid)?;
    let key = match authority.port() {
        Some(_) => authority.to_string(),
        None => format!("{authority}:80"),
    };
    // Origin-form on the wire: scheme and authority are for proxies.
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    *request.uri_mut() = http::Uri::try_from(path).map_err(|_| Error::HttpRequestUriInvalid)?;
    let t = Timeouts {
        connect: options.and_then(|o| o.connect_timeout).unwrap_or(DEFAULT),
        first_byte: options
            .and_then(|o| o.first_byte_timeout)
            .unwrap_or(DEFAULT),
        between_bytes: options
            .and_then(|o| o.between_bytes_timeout)
            .unwrap_or(DEFAULT),
    };
    let sent = pool.send(&key, request, t).await?;
    if sent.opened {
        metrics.outbound_connections.fetch_add(1, Ordering::Relaxed);
    }
    Ok((
        sent.response.map(http_body_util::BodyExt::boxed_unsync),
        Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>,
    ))
}

/// What the manifest grants, ready to build stores from (once per process).
pub struct Grants {
    pub caps: Capabilities,
    env: Vec<(String, String)>,
    outbound: Arc<Vec<Authority>>,
    sidecar: Arc<Sidecar>,
    tcp: Arc<Vec<SocketAddr>>,
    graphs: SharedGraphs,
    /// The host's metrics (metrics.rs).
    pub metrics: Arc<Metrics>,
    pool: Arc<Pool<WasiBody>>,
}

impl Grants {
    pub fn new(caps: Capabilities, graphs: SharedGraphs) -> Self {
        // Only the named variables, and only if set. MAX_BODY_BYTES is the
        // manifest's body limit: one number for the host and the component.
        let env = caps
            .env
            .iter()
            .filter_map(|k| match k.as_str() {
                "MAX_BODY_BYTES" => Some((k.clone(), caps.limits.max_body_bytes.to_string())),
                _ => std::env::var(k).ok().map(|v| (k.clone(), v)),
            })
            .collect();
        let unchecked = std::env::var("WASM_HOST_UNSAFE_NO_SIDECAR_CHECK").is_ok_and(|v| v == "1");
        if unchecked {
            eprintln!(
                "wasm-host: WARNING: WASM_HOST_UNSAFE_NO_SIDECAR_CHECK=1: calls to the sidecar are not checked (tests only)"
            );
        }
        let metrics = Arc::new(Metrics::new(caps.routes.clone()));
        Self {
            graphs: graphs.timed(&metrics),
            metrics,
            sidecar: Arc::new(Sidecar {
                authority: caps.sidecar.clone(),
                policy: caps.policy.clone(),
                unchecked,
            }),
            outbound: Arc::new(caps.outbound.clone()),
            tcp: Arc::new(caps.tcp_connect.clone()),
            pool: Arc::new(Pool::new(PoolLimits::default())),
            env,
            caps,
        }
    }

    /// A store for one instance: WASI with the granted env, folders and
    /// sockets, wasi:http with the outbound allow-list, wasi-nn over the
    /// shared graphs, the memory limit. `memory` follows its growth.
    pub fn store(
        &self,
        engine: &Engine,
        argv: &[String],
        memory: Arc<AtomicUsize>,
    ) -> Result<Store<Host>> {
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
                log_limited!(
                    "denied-socket",
                    "denied socket {use_:?} {addr} (not in service.toml [sockets] tcp_connect)"
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
                sidecar: self.sidecar.clone(),
                trace: None,
                metrics: self.metrics.clone(),
                pool: self.pool.clone(),
            },
            // No backends: a component may use the preloaded graphs by name,
            // never load model bytes of its own.
            nn: WasiNnCtx::new([], Registry::from(self.graphs.clone())),
            limits: Tracked {
                limits,
                memory,
                metrics: self.metrics.clone(),
            },
        };
        let mut store = Store::new(engine, host);
        store.limiter(|h| &mut h.limits);
        store.epoch_deadline_async_yield_and_update(1);
        store.set_epoch_deadline(1);
        Ok(store)
    }
}

/// The handler's state: how to make an instance.
pub struct Handler {
    pub grants: Grants,
    pub pre: ProxyPre<Host>,
    pub engine: Engine,
    pub instances: AtomicU64,
}

impl Handler {
    /// The name on the host's spans: the service's app id.
    pub fn service_name(&self) -> String {
        self.grants
            .caps
            .app_id
            .clone()
            .unwrap_or_else(|| "wasm-host".into())
    }
}

pub struct Expiration {
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

pub struct Worker {
    metrics: Arc<Metrics>,
    max_requests: usize,
    request_timeout: Duration,
    /// The instance's linear memory, as it grew.
    memory: Arc<AtomicUsize>,
    /// Past this, the instance serves no further request: its memory goes
    /// back to the pool (and the OS) instead of sitting idle at its peak.
    recycle_above: usize,
    /// Requests it has started.
    served: AtomicU64,
}

impl WorkerState for Worker {
    type StoreData = Host;
    /// The request's trace (server.rs: the caller's, or a new one).
    type RequestData = Arc<Recorder>;

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.max_requests || self.memory.load(Ordering::Relaxed) > self.recycle_above {
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
        mut store: StoreContextMut<'_, Host>,
        trace: Arc<Recorder>,
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + 'static + Send + Sync>> {
        let reused = self.served.fetch_add(1, Ordering::Relaxed) > 0;
        trace.instance(reused, self.memory.clone());
        store.data_mut().hooks.trace = Some(trace);
        Box::pin(tokio::time::sleep(self.request_timeout))
    }

    fn drop(&self, store: Store<Host>, result: Result<()>) {
        self.metrics.instances_live.fetch_sub(1, Ordering::Relaxed);
        if let Err(e) = result
            && !STOPPING.load(Ordering::Relaxed)
        {
            log_limited!("instance-ended", "instance ended: {e:?}");
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
        let memory = Arc::new(AtomicUsize::new(0));
        let mut store = self.grants.store(&self.engine, &[], memory.clone())?;
        let proxy: Proxy = self.pre.instantiate_async(&mut store).await?;
        // Rare (instances are reused), and it shows that a new instance
        // loads no nn graph.
        let n = self.instances.fetch_add(1, Ordering::Relaxed) + 1;
        let metrics = self.grants.metrics.clone();
        metrics.instances_created.fetch_add(1, Ordering::Relaxed);
        metrics.instances_live.fetch_add(1, Ordering::Relaxed);
        log_limited!(
            "instance-ready",
            "instance {n} ready in {} us",
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
                metrics,
                max_requests: usize::try_from(limits.max_requests_per_instance)
                    .unwrap_or(usize::MAX),
                request_timeout: limits.request_timeout,
                memory,
                recycle_above: limits.recycle_above_bytes,
                served: AtomicU64::new(0),
            },
        })
    }
}
