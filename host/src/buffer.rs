//! Bounded buffering: a request body is read whole before an instance is
//! taken, and an answer is read whole before the instance is given back, so
//! a slow client costs a socket and a bounded buffer, never an instance.
//! Every buffered byte is counted against one budget per process, and a
//! write that the client does not take in time ends the connection.

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt as _;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Bytes the host may hold in buffers at once, all requests together.
#[derive(Debug, Clone)]
pub struct ByteBudget(Arc<Semaphore>);

impl ByteBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> Self {
        Self(Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS))))
    }

    /// Bytes not reserved now.
    pub fn available(&self) -> usize {
        self.0.available_permits()
    }

    fn reserve(&self, held: &mut Option<OwnedSemaphorePermit>, n: usize) -> bool {
        let Ok(n) = u32::try_from(n) else {
            return false;
        };
        match self.0.clone().try_acquire_many_owned(n) {
            Ok(p) => {
                match held {
                    Some(h) => h.merge(p),
                    None => *held = Some(p),
                }
                true
            }
            Err(_) => false,
        }
    }
}

/// Why a body could not be buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Over the limit (known from its declared length, or once read).
    TooLarge,
    /// No data for longer than the idle timeout.
    Idle,
    /// Not complete by the deadline.
    Deadline,
    /// The budget has no room for it.
    Budget,
    /// The body itself failed (the peer broke it off, or a bad chunk).
    Broken,
}

/// How a body is read.
#[derive(Debug, Clone, Copy)]
pub struct ReadRules {
    /// Most bytes.
    pub limit: usize,
    /// Most time between two frames.
    pub idle: Duration,
    /// When the whole body must be in.
    pub deadline: Instant,
}

struct Owned {
    bytes: BytesMut,
    _share: Option<OwnedSemaphorePermit>,
}

impl AsRef<[u8]> for Owned {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// Reads `body` whole within `rules`, reserving each byte from `budget`
/// before it is kept. A declared length over the limit is refused unread.
/// Dropping the last clone of the bytes gives their share back.
pub async fn read_body<B>(
    body: &mut B,
    rules: ReadRules,
    budget: &ByteBudget,
) -> Result<Bytes, BodyError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let hint = body.size_hint();
    if hint.lower() > rules.limit as u64 {
        return Err(BodyError::TooLarge);
    }
    let mut share = None;
    let mut bytes = BytesMut::new();
    // An exact length is reserved at once; a chunked body as it arrives.
    if let Some(exact) = hint.exact() {
        if !budget.reserve(&mut share, exact as usize) {
            return Err(BodyError::Budget);
        }
        bytes.reserve(exact as usize);
    }
    let reserved =
        |share: &Option<OwnedSemaphorePermit>| share.as_ref().map_or(0, |p| p.num_permits());
    loop {
        let idle_end = (Instant::now() + rules.idle).min(rules.deadline);
        let frame = match tokio::time::timeout_at(idle_end, body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(_))) => return Err(BodyError::Broken),
            Ok(None) => break,
            Err(_) if idle_end >= rules.deadline => return Err(BodyError::Deadline),
            Err(_) => return Err(BodyError::Idle),
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers: not passed on
        };
        let len = bytes.len() + data.len();
        if len > rules.limit {
            return Err(BodyError::TooLarge);
        }
        let more = len.saturating_sub(reserved(&share));
        if more > 0 && !budget.reserve(&mut share, more) {
            return Err(BodyError::Budget);
        }
        bytes.extend_from_slice(&data);
    }
    Ok(Bytes::from_owner(Owned {
        bytes,
        _share: share,
    }))
}

/// Reads and discards the rest of a refused body, at most `max` bytes for
/// at most `timeout`, in the background: a client still sending then gets
/// the answer instead of a reset (closing a socket with unread input resets
/// it, and daprd's app channel reports that as `write: broken pipe`).
pub fn drain<B>(mut body: B, max: u64, timeout: Duration)
where
    B: hyper::body::Body<Data = Bytes> + Unpin + Send + 'static,
{
    if body.is_end_stream() || body.size_hint().lower() > max {
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
                if read > max {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(timeout, drain).await;
    });
}

/// A connection whose writes may wait for the client at most `timeout`:
/// a reader that stops reading gets its connection closed, not held open
/// with an answer stuck in it (nginx's `send_timeout`).
#[derive(Debug)]
pub struct WriteTimeout<S> {
    inner: S,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteTimeout<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            stalled: None,
        }
    }

    fn check<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let timeout = self.timeout;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client did not read the answer in time",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.check(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.check(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.check(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use hyper::body::Frame;
    use tokio::io::AsyncWriteExt as _;
    use tokio::sync::mpsc;

    type Chunk = Result<Frame<Bytes>, std::convert::Infallible>;

    /// A chunked body fed by a channel, as a slow client sends one.
    struct Channel(mpsc::Receiver<Chunk>);

    impl hyper::body::Body for Channel {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
            self.0.poll_recv(cx)
        }
    }

    fn rules(limit: usize, idle_ms: u64, total_ms: u64) -> ReadRules {
        ReadRules {
            limit,
            idle: Duration::from_millis(idle_ms),
            deadline: Instant::now() + Duration::from_millis(total_ms),
        }
    }

    fn channel() -> (mpsc::Sender<Chunk>, Channel) {
        let (tx, rx) = mpsc::channel(16);
        (tx, Channel(rx))
    }

    fn data(s: &'static str) -> Chunk {
        Ok(Frame::data(Bytes::from_static(s.as_bytes())))
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_is_read_whole_within_its_limit_and_budget() {
        let budget = ByteBudget::new(100);
        let body = read_body(
            &mut Full::new(Bytes::from_static(b"hello")),
            rules(10, 50, 100),
            &budget,
        )
        .await
        .expect("read");
        assert_eq!(&body[..], b"hello");
        assert_eq!(budget.available(), 95, "held while the body lives");
        let copy = body.clone();
        drop(body);
        assert_eq!(budget.available(), 95, "held while any clone lives");
        drop(copy);
        assert_eq!(budget.available(), 100, "given back");

        let mut big = Full::new(Bytes::from_static(b"0123456789ab"));
        let err = read_body(&mut big, rules(10, 50, 100), &budget).await;
        assert_eq!(err.err(), Some(BodyError::TooLarge), "declared length");
        let (tx, mut body) = channel();
        for _ in 0..3 {
            tx.send(data("0123")).await.expect("send");
        }
        drop(tx);
        let err = read_body(&mut body, rules(10, 50, 100), &budget).await;
        assert_eq!(err.err(), Some(BodyError::TooLarge), "chunked, once read");
        assert_eq!(budget.available(), 100, "nothing kept after a refusal");

        let small = ByteBudget::new(4);
        let mut hello = Full::new(Bytes::from_static(b"hello"));
        let err = read_body(&mut hello, rules(10, 50, 100), &small).await;
        assert_eq!(err.err(), Some(BodyError::Budget));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_times_out_and_a_trickle_meets_the_deadline() {
        let budget = ByteBudget::new(100);
        let (tx, mut body) = channel();
        tx.send(data("a")).await.expect("send");
        let err = read_body(&mut body, rules(10, 50, 10_000), &budget).await;
        assert_eq!(err.err(), Some(BodyError::Idle), "nothing for 50 ms");
        drop(tx);

        // A byte every 40 ms never trips the 50 ms idle timeout, but the
        // whole body must be in within 200 ms.
        let (tx, mut body) = channel();
        tokio::spawn(async move {
            loop {
                if tx.send(data("a")).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        });
        let started = Instant::now();
        let err = read_body(&mut body, rules(1000, 50, 200), &budget).await;
        assert_eq!(err.err(), Some(BodyError::Deadline));
        assert!(started.elapsed() <= Duration::from_millis(250));
        assert_eq!(budget.available(), 100);
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_the_client_does_not_take_times_out() {
        let (client, server) = tokio::io::duplex(64);
        let mut server = WriteTimeout::new(server, Duration::from_millis(100));
        server.write_all(&[0; 64]).await.expect("fits the buffer");
        let err = server.write_all(&[0; 64]).await.expect_err("never read");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        drop(client);

        // A client that keeps reading is never cut off.
        let (mut client, server) = tokio::io::duplex(64);
        let mut server = WriteTimeout::new(server, Duration::from_millis(100));
        let reader = tokio::spawn(async move {
            let mut sink = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut client, &mut sink)
                .await
                .map(|_| sink.len())
        });
        for _ in 0..20 {
            server.write_all(&[1; 64]).await.expect("read in time");
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
        drop(server);
        assert_eq!(reader.await.expect("join").expect("read"), 20 * 64);
    }
}
