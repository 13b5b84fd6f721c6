//! Kept-alive HTTP/1 connections for a component's plain-HTTP outbound
//! calls, its sidecar above all. wasmtime's `default_send_request` opens a
//! new TCP connection and does a handshake for every request; a component
//! makes three sidecar calls per image request, so that cost was paid three
//! times. Connections are shared by every instance of the component (they
//! all talk to the same sidecar), bounded in number, idle time and age.
//!
//! A connection goes back to the pool only once hyper says it is ready for
//! another request, which for HTTP/1 means the previous response body was
//! read to its end; an answer the guest drops unread closes its connection.
//! A reused connection that turns out closed before the request was written
//! gives the request back (hyper's `try_send_request`), which is then sent
//! once on a new connection, so a sidecar restart costs no request.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use wasmtime_wasi_http::Error;

/// How many connections may wait idle, and for how long each may live.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Idle connections kept, over every authority; the oldest goes first.
    pub max_idle: usize,
    /// An idle connection older than this is closed, not reused.
    pub idle_timeout: Duration,
    /// A connection older than this is closed after its current request,
    /// so a long-lived host does not pin one socket forever.
    pub max_age: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_idle: 16,
            idle_timeout: Duration::from_secs(30),
            max_age: Duration::from_secs(300),
        }
    }
}

/// Per-request timeouts, from the guest's request options or wasmtime's
/// defaults (600 s each).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub between_bytes: Duration,
}

struct Idle<B> {
    key: String,
    sender: SendRequest<B>,
    born: Instant,
    since: Instant,
}

/// The pool. `B` is the request body type (wasmtime's `WasiBody`).
pub struct Pool<B> {
    idle: Mutex<Vec<Idle<B>>>,
    limits: Limits,
}

/// What one send did: its answer, and whether it opened a new connection.
pub struct Sent {
    pub response: http::Response<TimedBody>,
    pub opened: bool,
}

impl<B> Pool<B>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    pub fn new(limits: Limits) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            limits,
        }
    }

    /// Idle connections now (tests, metrics).
    pub fn idle(&self) -> usize {
        self.idle.lock().map(|v| v.len()).unwrap_or(0)
    }

    /// A usable idle connection to `key`, the most recently used first;
    /// closed, stale and too old ones are dropped on the way.
    fn take(&self, key: &str) -> Option<(SendRequest<B>, Instant)> {
        let now = Instant::now();
        let Limits {
            idle_timeout,
            max_age,
            ..
        } = self.limits;
        let mut idle = self.idle.lock().ok()?;
        idle.retain(|c| {
            !c.sender.is_closed()
                && now.duration_since(c.since) < idle_timeout
                && now.duration_since(c.born) < max_age
        });
        let i = idle
            .iter()
            .rposition(|c| c.key == key && c.sender.is_ready())?;
        let c = idle.remove(i);
        Some((c.sender, c.born))
    }

    fn put(&self, key: String, sender: SendRequest<B>, born: Instant) {
        let now = Instant::now();
        if sender.is_closed() || now.duration_since(born) >= self.limits.max_age {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() >= self.limits.max_idle {
                idle.remove(0);
            }
            idle.push(Idle {
                key,
                sender,
                born,
                since: now,
            });
        }
    }

    /// Sends `req` to `key` (`host:port`, plain HTTP) on an idle connection
    /// or a new one. `req`'s URI must already be origin-form (path only).
    pub async fn send(
        self: &std::sync::Arc<Self>,
        key: &str,
        req: http::Request<B>,
        t: Timeouts,
    ) -> Result<Sent, Error> {
        let mut req = req;
        let mut opened = false;
        let (mut sender, born) = match self.take(key) {
            Some(c) => c,
            None => {
                opened = true;
                (connect(key, t.connect).await?, Instant::now())
            }
        };
        let res = loop {
            let sent = tokio::time::timeout(t.first_byte, sender.try_send_request(req)).await;
            match sent {
                Err(_) => return Err(Error::ConnectionReadTimeout),
                Ok(Ok(res)) => break res,
                // A reused connection closed under us before the request
                // went out: once more on a new one.
                Ok(Err(mut e)) if !opened && e.message().is_some() => {
                    req = e.take_message().ok_or(Error::HttpResponseIncomplete)?;
                    opened = true;
                    sender = connect(key, t.connect).await?;
                }
                Ok(Err(e)) => return Err(Error::Hyper(e.into_error())),
            }
        };
        let pool = self.clone();
        let key = key.to_string();
        let born = if opened { Instant::now() } else { born };
        tokio::spawn(async move {
            if sender.ready().await.is_ok() {
                pool.put(key, sender, born);
            }
        });
        Ok(Sent {
            response: res.map(|incoming| TimedBody::new(incoming, t.between_bytes)),
            opened,
        })
    }
}

/// A new HTTP/1 connection to `key`, its I/O driven by a task of its own.
async fn connect<B>(key: &str, timeout: Duration) -> Result<SendRequest<B>, Error>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(key)).await {
        Ok(s) => s.map_err(Error::Connect)?,
        Err(_) => return Err(Error::ConnectionTimeout),
    };
    // Small requests and answers: do not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let (sender, conn) = tokio::time::timeout(timeout, http1::handshake(TokioIo::new(stream)))
        .await
        .map_err(|_| Error::ConnectionTimeout)??;
    tokio::spawn(async move {
        // Ends when the peer closes or every sender is dropped; an error
        // here reaches the request that was using it through hyper.
        let _ = conn.await;
    });
    Ok(sender)
}

/// An answer's body with wasmtime's between-bytes timeout and error types.
pub struct TimedBody {
    incoming: Incoming,
    timeout: Pin<Box<tokio::time::Sleep>>,
    between: Duration,
}

impl TimedBody {
    fn new(incoming: Incoming, between: Duration) -> Self {
        Self {
            incoming,
            timeout: Box::pin(tokio::time::sleep(between)),
            between,
        }
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = tokio::time::Instant::now() + self.between;
                self.timeout.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) if e.is_timeout() => {
                Poll::Ready(Some(Err(Error::HttpResponseTimeout)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Error::Hyper(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                ready!(self.timeout.as_mut().poll(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::net::TcpListener;

    const T: Timeouts = Timeouts {
        connect: Duration::from_secs(5),
        first_byte: Duration::from_secs(5),
        between_bytes: Duration::from_secs(5),
    };

    /// A local HTTP/1 server that answers "ok" and counts the connections
    /// it accepted; `close_after` answers close each connection after that
    /// many requests.
    async fn server(close_after: Option<usize>) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let served = Arc::new(AtomicUsize::new(0));
                tokio::spawn(async move {
                    let svc = service_fn(move |_req: http::Request<Incoming>| {
                        let n = served.fetch_add(1, Ordering::SeqCst) + 1;
                        async move {
                            let mut res = http::Response::new(Full::new(Bytes::from("ok")));
                            if close_after.is_some_and(|c| n >= c) {
                                res.headers_mut()
                                    .insert(http::header::CONNECTION, "close".parse().expect("v"));
                            }
                            Ok::<_, std::convert::Infallible>(res)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                });
            }
        });
        (addr, accepted)
    }

    fn get(addr: &str) -> http::Request<Full<Bytes>> {
        http::Request::builder()
            .uri("/x")
            .header(http::header::HOST, addr)
            .body(Full::new(Bytes::new()))
            .expect("request")
    }

    async fn read(sent: Sent) -> Bytes {
        sent.response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
    }

    /// Waits until the pool holds `n` idle connections (a connection goes
    /// back from a task once hyper says it is ready).
    async fn idle_becomes<B>(pool: &Pool<B>, n: usize)
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        for _ in 0..500 {
            if pool.idle() == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!(
            "the pool never held {n} idle connections (it holds {})",
            pool.idle()
        );
    }

    #[tokio::test]
    async fn sequential_requests_share_one_connection() {
        let (addr, accepted) = server(None).await;
        let pool = Arc::new(Pool::new(Limits::default()));
        for i in 0..5 {
            let sent = pool.send(&addr, get(&addr), T).await.expect("send");
            assert_eq!(sent.opened, i == 0, "request {i}");
            assert_eq!(read(sent).await, "ok");
            idle_becomes(&pool, 1).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_unread_answer_does_not_go_back() {
        let (addr, accepted) = server(None).await;
        let pool = Arc::new(Pool::new(Limits::default()));
        let sent = pool.send(&addr, get(&addr), T).await.expect("send");
        drop(sent);
        let sent = pool.send(&addr, get(&addr), T).await.expect("send");
        assert!(sent.opened, "a connection with an unread answer was reused");
        assert_eq!(read(sent).await, "ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_not_reused() {
        let (addr, accepted) = server(Some(1)).await;
        let pool = Arc::new(Pool::new(Limits::default()));
        for _ in 0..3 {
            let sent = pool.send(&addr, get(&addr), T).await.expect("send");
            assert!(sent.opened);
            assert_eq!(read(sent).await, "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn idle_and_age_limits_hold() {
        let (addr, accepted) = server(None).await;
        let limits = Limits {
            max_idle: 1,
            idle_timeout: Duration::from_secs(30),
            max_age: Duration::ZERO,
        };
        let pool = Arc::new(Pool::new(limits));
        for _ in 0..2 {
            let sent = pool.send(&addr, get(&addr), T).await.expect("send");
            assert!(sent.opened, "a connection past its age was reused");
            assert_eq!(read(sent).await, "ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        // More connections going back than max_idle: the oldest is closed.
        let pool: Pool<Full<Bytes>> = Pool::new(Limits {
            max_age: Duration::from_secs(300),
            ..limits
        });
        for _ in 0..3 {
            let sender = connect(&addr, T.connect).await.expect("connect");
            pool.put(addr.clone(), sender, Instant::now());
        }
        assert_eq!(pool.idle(), 1);
    }
}
