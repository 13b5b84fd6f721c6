//! The HTTP side of the host: connections within their caps, each request
//! checked and its body buffered before an instance is taken, the answer
//! buffered before the instance is given back, and written with a timeout.

use bytes::Bytes;
use http::{HeaderValue, Response};
use http_body_util::{BodyExt as _, Full};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use wasm_host::buffer::{BodyError, ByteBudget, ReadRules, WriteTimeout, drain, read_body};
use wasm_host::guard::{ConnLimiter, RateLimiter, Refusal, check_head};
use wasm_host::metrics::Metrics;
use wasm_host::recorder::Recorder;
use wasm_host::spans::{Exporter, Kind, Span, now_us};
use wasm_host::trace::{Context, random_id};
use wasm_host::{Limits, set_client};
use wasmtime::{PoolConcurrencyLimitError, Result, format_err};
use wasmtime_wasi_http::WasiBody;
use wasmtime_wasi_http::handler::{ExpirationError, InstantiationError, ProxyHandler};

use crate::runtime::{Handler, TRACEPARENT};
use crate::{EPOCH_TICK, STOPPING, log_limited};

/// Most of a too-large body the host still reads (and discards), and for
/// how long, so the client gets the 413 (see `drain`).
const DRAIN_MAX_BYTES: u64 = 16 << 20;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What every request shares.
struct Shared {
    handler: ProxyHandler<Handler>,
    limits: Limits,
    /// One per instance that may run a request at once.
    slots: Semaphore,
    budget: ByteBudget,
    /// Requests per client, where the manifest asks for it.
    rate: Option<RateLimiter>,
    app_token: Option<String>,
    /// The host's spans, when WASM_HOST_ZIPKIN names a backend.
    spans: Option<Exporter>,
    metrics: Arc<Metrics>,
}

/// Serves `handler` on `addr` until SIGINT or SIGTERM.
pub async fn run(
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
    let limits = handler.grants.caps.limits.clone();
    let plan = limits.plan();
    let conns = ConnLimiter::new(limits.max_connections, limits.max_connections_per_client);
    let metrics = handler.grants.metrics.clone();
    let shared = Arc::new(Shared {
        metrics: metrics.clone(),
        spans: std::env::var("WASM_HOST_ZIPKIN")
            .ok()
            .filter(|a| !a.is_empty())
            .and_then(|url| {
                let e = Exporter::start(&url, handler.service_name());
                if e.is_none() {
                    eprintln!(
                        "wasm-host: WASM_HOST_ZIPKIN={url:?} is not http://host:port/path: no spans"
                    );
                }
                e
            }),
        handler: ProxyHandler::new(handler),
        slots: Semaphore::new(plan.slots as usize),
        budget: ByteBudget::new(limits.max_buffered_bytes),
        rate: limits
            .client_rate
            .map(|(rate, burst)| RateLimiter::new(rate, burst)),
        limits,
        app_token,
    });
    if let Some(at) = std::env::var("WASM_HOST_METRICS")
        .ok()
        .and_then(|a| a.parse::<SocketAddr>().ok())
    {
        tokio::spawn(serve_metrics(at, shared.clone()));
    }
    eprintln!(
        "wasm-host: serving http://{addr}/ (ready in {} ms; {} requests at once, {} instances at most)",
        started.elapsed().as_millis(),
        plan.slots,
        plan.instances
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
                    log_limited!("accept", "accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(place) = conns.try_open(peer.ip()) else {
            refuse_connection(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(WriteTimeout::new(stream, shared.limits.write_timeout));
        let service = {
            let shared = shared.clone();
            hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(&shared, req, peer.ip()).await) }
            })
        };
        // The header timeout also ends a kept-alive connection that sends
        // no next request: hyper starts it whenever it waits for a head.
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(shared.limits.header_timeout)
            .keep_alive(true)
            .serve_connection(io, service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                log_limited!("connection", "connection from {peer}: {e}");
            }
            drop(place);
        });
    }

    drop(listener);
    eprintln!("wasm-host: stopping; finishing requests in flight");
    STOPPING.store(true, Ordering::Relaxed);
    shared.slots.close();
    let request_timeout = shared.limits.request_timeout;
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

/// Over a connection cap: a canned 503, if the socket takes it at once, and
/// close. No request is read and no task is spawned.
fn refuse_connection(stream: tokio::net::TcpStream) {
    let body = Refusal::Busy.json();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(answer.as_bytes());
    log_limited!("refused", "over the connection cap: refused a connection");
}

/// Scrapes served at once; more connections are closed unanswered.
const METRICS_CONNECTIONS: usize = 8;

/// Serves `GET /metrics`, `/readyz` and `/livez` on `addr`
/// (WASM_HOST_METRICS): loopback locally; the pod's address where the chart
/// asks for scraping and probes.
async fn serve_metrics(addr: SocketAddr, shared: Arc<Shared>) {
    if !addr.ip().is_loopback() {
        eprintln!("wasm-host: metrics on {addr}, beyond loopback (WASM_HOST_METRICS)");
    }
    let open = Arc::new(tokio::sync::Semaphore::new(METRICS_CONNECTIONS));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("wasm-host: cannot serve metrics on {addr}: {e}");
            return;
        }
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let svc =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let shared = shared.clone();
                    async move {
                        if let Some(e) = &shared.spans {
                            let dropped = e.dropped.load(Ordering::Relaxed);
                            shared
                                .metrics
                                .spans_dropped
                                .store(dropped, Ordering::Relaxed);
                        }
                        let (status, body) = match req.uri().path() {
                            "/metrics" => (200, shared.metrics.render()),
                            // Kubernetes' probes: ready while serving, not
                            // once a stop began (in-flight requests finish).
                            "/readyz" if STOPPING.load(Ordering::Relaxed) => {
                                (503, "stopping\n".into())
                            }
                            "/readyz" | "/livez" => (200, "ok\n".into()),
                            _ => (404, String::new()),
                        };
                        let mut res = Response::new(Full::new(Bytes::from(body)));
                        *res.status_mut() = http::StatusCode::from_u16(status).unwrap_or_default();
                        res.headers_mut().insert(
                            http::header::CONTENT_TYPE,
                            HeaderValue::from_static("text/plain; version=0.0.4"),
                        );
                        Ok::<_, std::convert::Infallible>(res)
                    }
                });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .serve_connection(TokioIo::new(stream), svc);
            let _ = tokio::time::timeout(Duration::from_secs(10), conn).await;
        });
    }
}

/// One request in its trace: the host's span (a child of the caller's),
/// whose `traceparent` the component, its sidecar calls and the answer get.
async fn handle(
    shared: &Shared,
    req: http::Request<hyper::body::Incoming>,
    peer: IpAddr,
) -> Response<WasiBody> {
    let incoming = req.headers().get(TRACEPARENT).and_then(|v| v.to_str().ok());
    let trace = Recorder::new(Context::server(incoming, random_id), shared.spans.clone());
    let start_us = now_us();
    let started = Instant::now();
    let name = format!("{} {}", req.method(), req.uri().path());
    let path = req.uri().path().to_string();
    let (mut answer, guest) = serve(shared, req, peer, trace.clone()).await;
    shared
        .metrics
        .request(&path, answer.status().as_u16(), started.elapsed());
    if let Ok(tp) = HeaderValue::from_str(&trace.ctx.traceparent()) {
        answer.headers_mut().insert(TRACEPARENT, tp);
    }
    trace.close_all();
    if let Some(spans) = shared.spans.as_ref().filter(|_| trace.ctx.sampled()) {
        let mut tags = vec![
            ("http.route".to_string(), shared.metrics.route(&path)),
            (
                "http.status_code".to_string(),
                answer.status().as_u16().to_string(),
            ),
        ];
        if let Some(g) = guest {
            tags.push(("wasm.guest_us".into(), g.as_micros().to_string()));
        }
        if let Some((reused, memory)) = trace.instance_facts() {
            let instance = if reused { "reused" } else { "new" };
            tags.push(("wasm.instance".into(), instance.into()));
            tags.push(("wasm.memory_bytes".into(), memory.to_string()));
        }
        let ctx = &trace.ctx;
        spans.record(Span {
            trace_id: ctx.trace_id.clone(),
            id: ctx.span_id.clone(),
            parent_id: ctx.parent_id.clone(),
            kind: Kind::Server,
            name,
            timestamp_us: start_us,
            duration_us: started.elapsed().as_micros() as u64,
            tags,
        });
    }
    answer
}

/// One request: its head checked, its body buffered, an instance slot, the
/// component, its answer buffered; the slot is free before the answer is
/// written. Also says how long the component took, if it ran.
async fn serve(
    shared: &Shared,
    req: http::Request<hyper::body::Incoming>,
    peer: IpAddr,
    trace: Arc<Recorder>,
) -> (Response<WasiBody>, Option<Duration>) {
    let limits = &shared.limits;
    let (mut head, mut body) = req.into_parts();
    if let Err(refusal) = check_head(&head) {
        return (refused(refusal), None);
    }
    let rules = ReadRules {
        limit: limits.max_body_bytes,
        idle: limits.body_idle_timeout,
        deadline: tokio::time::Instant::now() + limits.body_timeout,
    };
    let body = match read_body(&mut body, rules, &shared.budget).await {
        Ok(bytes) => bytes,
        Err(e) => {
            if e == BodyError::TooLarge {
                drain(body, DRAIN_MAX_BYTES, DRAIN_TIMEOUT);
            }
            return (refused(body_refusal(e)), None);
        }
    };
    let client = set_client(&mut head.headers, peer, shared.app_token.as_deref());
    if let (Some(rate), Some(client)) = (&shared.rate, client)
        && let Err(secs) = rate.check(client, std::time::Instant::now())
    {
        return (refused(Refusal::RateLimited(secs)), None);
    }
    let queued = tokio::time::timeout(limits.queue_timeout, shared.slots.acquire()).await;
    let _slot = match queued {
        Ok(Ok(slot)) => slot,
        Ok(Err(_)) => return (refused(Refusal::Stopping), None),
        Err(_) => {
            log_limited!("busy", "no instance free within the queue timeout: 503");
            return (refused(Refusal::Busy), None);
        }
    };
    let deadline = tokio::time::Instant::now() + limits.request_timeout;
    // The component sees the host's span as its parent; its outbound
    // requests get client spans under it (runtime.rs).
    if let Ok(tp) = HeaderValue::from_str(&trace.ctx.traceparent()) {
        head.headers.insert(TRACEPARENT, tp);
    }
    let ran = Instant::now();
    let answer = match call(shared, head, body, deadline, trace).await {
        Ok(answer) => answer,
        Err(refusal) => return (refused(refusal), Some(ran.elapsed())),
    };
    let guest = Some(ran.elapsed());
    // Read the answer whole while the slot is held: the instance is free
    // once it has written it, whatever the client does next.
    let (parts, mut body) = answer.into_parts();
    let rules = ReadRules {
        limit: limits.max_answer_bytes,
        idle: limits.request_timeout,
        deadline,
    };
    match read_body(&mut body, rules, &shared.budget).await {
        Ok(bytes) => (Response::from_parts(parts, full(bytes)), guest),
        Err(e) => {
            log_limited!(
                "answer",
                "the component's answer could not be buffered: {e:?}"
            );
            let refusal = match e {
                BodyError::TooLarge => Refusal::AnswerTooLarge,
                BodyError::Budget => Refusal::Busy,
                BodyError::Idle | BodyError::Deadline => Refusal::Timeout,
                BodyError::Broken => Refusal::Internal,
            };
            (refused(refusal), guest)
        }
    }
}

/// Runs the component on the request. A full instance pool (an instance
/// still winding down) is waited out until `deadline`.
async fn call(
    shared: &Shared,
    head: http::request::Parts,
    body: Bytes,
    deadline: tokio::time::Instant,
    mut trace: Arc<Recorder>,
) -> Result<Response<WasiBody>, Refusal> {
    let mut req = http::Request::from_parts(head, full(body));
    loop {
        let e = match shared.handler.handle(trace, req).await {
            Ok(answer) => return Ok(answer),
            Err(e) => e,
        };
        if e.is::<ExpirationError>() {
            log_limited!("timeout", "request timed out");
            return Err(Refusal::Timeout);
        }
        match e.downcast::<InstantiationError<Arc<Recorder>>>() {
            Ok(failed) if failed.error.is::<PoolConcurrencyLimitError>() => {
                if tokio::time::Instant::now() >= deadline {
                    log_limited!("pool", "instance pool full until the deadline: 503");
                    return Err(Refusal::Busy);
                }
                trace = failed.request_data;
                req = failed
                    .request
                    .into_inner()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(failed) => {
                log_limited!("instantiate", "instantiation failed: {:?}", failed.error);
                return Err(Refusal::Internal);
            }
            Err(e) => {
                log_limited!("failed", "request failed: {e:?}");
                return Err(Refusal::Internal);
            }
        }
    }
}

fn body_refusal(e: BodyError) -> Refusal {
    match e {
        BodyError::TooLarge => Refusal::BodyTooLarge,
        BodyError::Idle | BodyError::Deadline => Refusal::BodyTimeout,
        BodyError::Budget => Refusal::Busy,
        BodyError::Broken => Refusal::BodyBroken,
    }
}

fn full(bytes: Bytes) -> WasiBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The host's own answer: JSON, `Retry-After` where retrying helps, and
/// `Connection: close` where the request was not read whole.
fn refused(refusal: Refusal) -> Response<WasiBody> {
    let (status, _, _) = refusal.describe();
    let mut response = Response::new(full(Bytes::from(refusal.json())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(secs) = refusal.retry_after() {
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if refusal.closes() {
        headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
