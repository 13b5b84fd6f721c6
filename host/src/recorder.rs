//! The spans of one request the host serves, beyond its own server span: a
//! client span per outbound request the component sends, and the steps the
//! component opens itself through `wasm-host:observe/span` (wit/observe.wit).
//! The innermost open step is the parent of what follows, so a sidecar call
//! made inside a component's `db.insert` step hangs under that step.
//!
//! Bounded: a request records at most [`MAX_SPANS`] spans of its own, names
//! and tags are cut, and a handle the component made up is ignored.

use crate::spans::{Exporter, Kind, Span, now_us};
use crate::trace::{Context, random_id};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Spans a request may add to the trace (steps and client spans).
pub const MAX_SPANS: u32 = 64;
/// Tags per step.
pub const MAX_TAGS: usize = 16;
/// Bytes of a name, a tag key or a tag value; longer ones are cut.
pub const MAX_TEXT: usize = 128;

/// One request's trace: its context, where its spans go, and what the
/// worker learnt about the instance that served it.
pub struct Recorder {
    /// The host's server span of the request.
    pub ctx: Context,
    /// Set when the request is sampled and a backend is configured.
    exporter: Option<Exporter>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Steps still open, outermost first; each with its handle.
    open: Vec<(u32, Step)>,
    /// Spans started so far (handles are 1..=MAX_SPANS).
    started: u32,
    /// Whether the instance served a request before this one.
    reused: Option<bool>,
    /// The instance's linear memory as it grew.
    memory: Option<Arc<AtomicUsize>>,
}

struct Step {
    id: String,
    parent: String,
    name: String,
    start_us: u64,
    started: std::time::Instant,
    tags: Vec<(String, String)>,
}

/// An outbound request's span, open until its answer's head arrives.
pub struct Client {
    /// Its id: the `traceparent` parent of what the request causes.
    pub id: String,
    parent: String,
    name: String,
    start_us: u64,
    started: std::time::Instant,
}

fn cut(s: &str) -> String {
    let mut end = s.len().min(MAX_TEXT);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn new_id() -> String {
    loop {
        let n = random_id();
        if n != 0 {
            return format!("{n:016x}");
        }
    }
}

impl Recorder {
    /// A request's recorder; spans go to `exporter` only if the request is
    /// sampled.
    pub fn new(ctx: Context, exporter: Option<Exporter>) -> Arc<Self> {
        let exporter = exporter.filter(|_| ctx.sampled());
        Arc::new(Self {
            ctx,
            exporter,
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The span what happens now belongs to: the innermost open step, or
    /// the request's own span.
    fn current(state: &State, ctx: &Context) -> String {
        state
            .open
            .last()
            .map_or_else(|| ctx.span_id.clone(), |(_, s)| s.id.clone())
    }

    /// The `traceparent` that makes `span_id` the parent.
    pub fn traceparent(&self, span_id: &str) -> String {
        format!("00-{}-{span_id}-{}", self.ctx.trace_id, self.ctx.flags)
    }

    /// Notes the instance serving the request (worker, on its start).
    pub fn instance(&self, reused: bool, memory: Arc<AtomicUsize>) {
        let mut st = self.state();
        st.reused = Some(reused);
        st.memory = Some(memory);
    }

    /// Whether the instance was reused, and its memory now, in bytes.
    pub fn instance_facts(&self) -> Option<(bool, usize)> {
        let st = self.state();
        Some((st.reused?, st.memory.as_ref()?.load(Ordering::Relaxed)))
    }

    /// Opens a step named `name`; 0 once the request has used its spans.
    pub fn open(&self, name: &str) -> u32 {
        let mut st = self.state();
        if st.started >= MAX_SPANS {
            return 0;
        }
        st.started += 1;
        let handle = st.started;
        let parent = Self::current(&st, &self.ctx);
        st.open.push((
            handle,
            Step {
                id: new_id(),
                parent,
                name: cut(name),
                start_us: now_us(),
                started: std::time::Instant::now(),
                tags: Vec::new(),
            },
        ));
        handle
    }

    /// Tags an open step; ignored past [`MAX_TAGS`] or for an unknown handle.
    pub fn tag(&self, handle: u32, key: &str, value: &str) {
        let mut st = self.state();
        if let Some((_, step)) = st.open.iter_mut().find(|(h, _)| *h == handle)
            && step.tags.len() < MAX_TAGS
        {
            step.tags.push((cut(key), cut(value)));
        }
    }

    /// Closes a step and every step opened inside it and left open.
    pub fn close(&self, handle: u32) {
        let mut st = self.state();
        let Some(at) = st.open.iter().position(|(h, _)| *h == handle) else {
            return;
        };
        let closed: Vec<(u32, Step)> = st.open.drain(at..).collect();
        drop(st);
        for (_, step) in closed.into_iter().rev() {
            self.export(Span {
                trace_id: self.ctx.trace_id.clone(),
                id: step.id,
                parent_id: Some(step.parent),
                kind: Kind::Local,
                name: step.name,
                timestamp_us: step.start_us,
                duration_us: step.started.elapsed().as_micros() as u64,
                tags: step.tags,
            });
        }
    }

    /// Closes whatever the component left open (at the request's end).
    pub fn close_all(&self) {
        let first = self.state().open.first().map(|(h, _)| *h);
        if let Some(h) = first {
            self.close(h);
        }
    }

    /// Starts the span of an outbound request (`GET /v1.0/state/...`); its
    /// id goes into the request's `traceparent`. Beyond the request's span
    /// budget it still gets an id, and is not recorded.
    pub fn client(&self, method: &str, path: &str) -> Client {
        let mut st = self.state();
        st.started = st.started.saturating_add(1);
        let name = if st.started <= MAX_SPANS {
            cut(&format!("{method} {}", route_of(path)))
        } else {
            String::new()
        };
        Client {
            id: new_id(),
            parent: Self::current(&st, &self.ctx),
            name,
            start_us: now_us(),
            started: std::time::Instant::now(),
        }
    }

    /// Ends an outbound request's span with what came of it: a status, or
    /// `error` / `denied`.
    pub fn client_done(&self, c: Client, target: &str, outcome: &str) {
        if c.name.is_empty() {
            return;
        }
        let key = if outcome.bytes().all(|b| b.is_ascii_digit()) {
            "http.status_code"
        } else {
            "error"
        };
        self.export(Span {
            trace_id: self.ctx.trace_id.clone(),
            id: c.id,
            parent_id: Some(c.parent),
            kind: Kind::Client,
            name: c.name,
            timestamp_us: c.start_us,
            duration_us: c.started.elapsed().as_micros() as u64,
            tags: vec![
                ("peer.service".into(), target.into()),
                (key.into(), outcome.into()),
            ],
        });
    }

    fn export(&self, span: Span) {
        if let Some(e) = &self.exporter {
            e.record(span);
        }
    }
}

/// A client span's name from the request path: Dapr's state API names a
/// key last, and keys carry data (the rate limit's is the client's
/// address), so `/v1.0/state/STORE/KEY` is named `/v1.0/state/STORE/{key}`:
/// no personal data in traces, and one name per store, not per client.
pub fn route_of(path: &str) -> String {
    let path = path.split('?').next().unwrap_or("");
    let mut parts = path.splitn(5, '/');
    let (lead, version, api, store) = (parts.next(), parts.next(), parts.next(), parts.next());
    match (lead, version, api, store, parts.next()) {
        (Some(""), Some(v), Some("state"), Some(store), Some(key))
            if v.starts_with("v1.0")
                && !key.is_empty()
                && !matches!(key, "bulk" | "transaction" | "query") =>
        {
            format!("/{v}/state/{store}/{{key}}")
        }
        _ => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context::server(
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            || 0xab,
        )
    }

    #[test]
    fn steps_nest_and_calls_hang_under_the_innermost() {
        let r = Recorder::new(ctx(), None);
        let outer = r.open("handle");
        let inner = r.open("db.insert");
        assert_eq!((outer, inner), (1, 2));
        let call = r.client("POST", "/v1.0/state/x?metadata.ttl=1");
        assert_eq!(call.name, "POST /v1.0/state/x", "no query in a name");
        {
            let st = r.state();
            assert_eq!(call.parent, st.open[1].1.id);
            assert_eq!(st.open[1].1.parent, st.open[0].1.id);
            assert_eq!(st.open[0].1.parent, "00000000000000ab");
        }
        // Closing the outer step closes the inner one left open.
        r.close(outer);
        assert!(r.state().open.is_empty());
        let after = r.client("GET", "/");
        assert_eq!(after.parent, "00000000000000ab");
        assert_eq!(
            r.traceparent(&after.id),
            format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01", after.id)
        );
    }

    #[test]
    fn a_component_cannot_grow_the_trace_without_bound() {
        let r = Recorder::new(ctx(), None);
        for _ in 0..MAX_SPANS {
            assert_ne!(r.open("x"), 0);
        }
        assert_eq!(r.open("one too many"), 0);
        assert!(r.client("GET", "/").name.is_empty(), "not recorded");
        let h = 1;
        for i in 0..100 {
            r.tag(h, &"k".repeat(1000), &i.to_string());
        }
        let st = r.state();
        assert_eq!(st.open[0].1.tags.len(), MAX_TAGS);
        assert_eq!(st.open[0].1.tags[0].0.len(), MAX_TEXT);
        drop(st);
        r.tag(9999, "k", "v");
        r.close(9999);
        assert_eq!(
            r.state().open.len(),
            MAX_SPANS as usize,
            "unknown handles ignored"
        );
        r.close_all();
        assert!(r.state().open.is_empty());
    }

    #[test]
    fn names_are_cut_on_a_char_boundary() {
        assert_eq!(cut(&"é".repeat(100)).len(), MAX_TEXT);
        assert_eq!(cut("short"), "short");
    }

    #[test]
    fn the_instance_facts_are_what_the_worker_noted() {
        let r = Recorder::new(ctx(), None);
        assert_eq!(r.instance_facts(), None);
        let memory = Arc::new(AtomicUsize::new(1 << 20));
        r.instance(true, memory.clone());
        memory.store(2 << 20, Ordering::Relaxed);
        assert_eq!(r.instance_facts(), Some((true, 2 << 20)));
    }
    #[test]
    fn client_span_names_carry_no_state_key() {
        for (path, name) in [
            (
                "/v1.0/state/statestore/ratelimit%7C127.0.0.1",
                "/v1.0/state/statestore/{key}",
            ),
            (
                "/v1.0/state/statestore/k?metadata.ttl=1",
                "/v1.0/state/statestore/{key}",
            ),
            (
                "/v1.0/state/statestore/transaction",
                "/v1.0/state/statestore/transaction",
            ),
            ("/v1.0/state/statestore/bulk", "/v1.0/state/statestore/bulk"),
            ("/v1.0/state/statestore", "/v1.0/state/statestore"),
            (
                "/v1.0/secrets/secretstore/events-db-url",
                "/v1.0/secrets/secretstore/events-db-url",
            ),
            (
                "/v1.0/invoke/image-api-grayscale/method/grayscale",
                "/v1.0/invoke/image-api-grayscale/method/grayscale",
            ),
        ] {
            assert_eq!(route_of(path), name, "{path}");
        }
    }
}
