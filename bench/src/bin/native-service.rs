//! The grayscale **full service**, natively: the same core and the same
//! calls to its own daprd per request as the wasm service
//! (service-common/src/service/record.rs): the client record's read and
//! write (the rate limit), and for a success one state transaction that
//! publishes its event through the outbox. `scripts/bench` runs it beside its own daprd (bench/dapr.yaml) to
//! compare the wasm full service with it. The client is the TCP peer.
//! Usage: native-service ADDR (DAPR_HTTP_PORT and DAPR_API_TOKEN from the
//! environment, as the supervisor sets them)

use bench::{Message, read_message, write_response};
use dapr::ETag;
use dapr::request::DaprRequest;
use dapr::state::{get_request, transaction_request};
use image_api_grayscale::{ImageLimits, Problem, grayscale};
use service_common::event::{Event, event_id, outbox_transaction};
use service_common::ratelimit::{
    ClientRecord, Decision, RatePolicy, check, record_item, state_key,
};
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::{SystemTime, UNIX_EPOCH};

const STORE: &str = "statestore";

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:19102".into());
    let sidecar = format!(
        "127.0.0.1:{}",
        std::env::var("DAPR_HTTP_PORT").unwrap_or_else(|_| "3530".into())
    );
    let token = std::env::var("DAPR_API_TOKEN").unwrap_or_default();
    let listener = std::net::TcpListener::bind(&addr)?;
    eprintln!("native-service: serving http://{addr}/ beside daprd {sidecar}");
    for stream in listener.incoming() {
        let stream = stream?;
        let (sidecar, token) = (sidecar.clone(), token.clone());
        std::thread::spawn(move || -> std::io::Result<()> {
            let peer = stream.peer_addr()?.ip().to_string();
            let mut w = stream.try_clone()?;
            let mut r = BufReader::new(stream);
            let mut dapr = Sidecar::new(&sidecar, token);
            while let Some(req) = read_message(&mut r)? {
                let (status, content_type, body) = if req.start.starts_with("GET /healthz") {
                    (200, "application/json", br#"{"status":"ok"}"#.to_vec())
                } else {
                    serve(&mut dapr, &peer, &req)
                };
                write_response(&mut w, status, content_type, &body)?;
            }
            Ok(())
        });
    }
    Ok(())
}

fn serve(dapr: &mut Sidecar, peer: &str, req: &Message) -> (u16, &'static str, Vec<u8>) {
    let policy = RatePolicy::from_lookup(|k| std::env::var(k).ok());
    let problem = |status: u16, code: &str| {
        (
            status,
            "application/json",
            format!(r#"{{"error":"{code}","code":"{code}"}}"#).into_bytes(),
        )
    };
    // The rate limit: read, decide, write back under the ETag read.
    let mut admitted = false;
    for _ in 0..8 {
        let Ok((previous, etag)) = dapr.read(peer) else {
            return problem(503, "unavailable");
        };
        match check(previous, peer, now_ms(), policy) {
            Decision::Allow(record) => match dapr.save(&record, etag, policy) {
                Ok(true) => {
                    admitted = true;
                    break;
                }
                Ok(false) => continue,
                Err(_) => return problem(503, "unavailable"),
            },
            Decision::Deny(record, _) => {
                let _ = dapr.save(&record, etag, policy);
                return problem(429, "rate_limited");
            }
        }
    }
    if !admitted {
        return problem(503, "unavailable");
    }
    match grayscale(&req.body, &ImageLimits::default()) {
        Ok(out) => {
            let event = Event {
                event_id: event_id(now_ms(), u64::from(std::process::id()) ^ now_ms()),
                event_ts: now_ms(),
                op_type: "grayscale".into(),
                input_size: req.body.len() as u64,
            };
            match dapr.publish(&event) {
                Ok(()) => (200, out.content_type(), out.bytes),
                Err(_) => problem(503, "unavailable"),
            }
        }
        Err(e) => (e.status(), "application/json", e.to_json()),
    }
}

/// A keep-alive HTTP/1.1 connection to daprd.
struct Sidecar {
    addr: String,
    token: String,
    conn: Option<(TcpStream, BufReader<TcpStream>)>,
}

impl Sidecar {
    /// Connects on first use, and again after daprd closed the connection.
    fn new(addr: &str, token: String) -> Self {
        Self {
            addr: addr.to_string(),
            token,
            conn: None,
        }
    }

    fn send(&mut self, req: DaprRequest) -> std::io::Result<Message> {
        if self.conn.is_none() {
            let s = TcpStream::connect(&self.addr)?;
            s.set_nodelay(true)?;
            self.conn = Some((s.try_clone()?, BufReader::new(s)));
        }
        let Some((w, r)) = self.conn.as_mut() else {
            return Err(std::io::Error::other("no connection"));
        };
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\ndapr-api-token: {}\r\nContent-Length: {}\r\n",
            req.method,
            req.path_and_query,
            self.addr,
            self.token,
            req.body.len()
        );
        for (k, v) in &req.headers {
            head.push_str(&format!("{k}: {}\r\n", v.to_str().unwrap_or_default()));
        }
        head.push_str("\r\n");
        let sent = w
            .write_all(head.as_bytes())
            .and_then(|()| w.write_all(&req.body));
        match sent.and_then(|()| read_message(r)) {
            Ok(Some(m)) => Ok(m),
            Ok(None) | Err(_) => {
                self.conn = None;
                Err(std::io::Error::other("daprd closed the connection"))
            }
        }
    }

    fn read(&mut self, address: &str) -> std::io::Result<(Option<ClientRecord>, Option<ETag>)> {
        let req = get_request(STORE, &state_key(address), Some(dapr::Consistency::Strong))
            .map_err(std::io::Error::other)?;
        let m = self.send(req)?;
        let status = status_of(&m);
        let entry = dapr::state::decode_get::<ClientRecord>(status, m.header("etag"), &m.body)
            .map_err(std::io::Error::other)?;
        Ok(entry.map_or((None, None), |e| (Some(e.value), e.etag)))
    }

    /// Saves the record under `etag`; `Ok(false)` when it lost the race.
    fn save(
        &mut self,
        record: &ClientRecord,
        etag: Option<ETag>,
        policy: RatePolicy,
    ) -> std::io::Result<bool> {
        let req = dapr::state::save_request(STORE, &[record_item(record, etag, policy)])
            .map_err(std::io::Error::other)?;
        let m = self.send(req)?;
        let status = status_of(&m);
        if (200..300).contains(&status) {
            return Ok(true);
        }
        if dapr::Error::from_response(status, &m.body).is_etag_mismatch() {
            return Ok(false);
        }
        Err(std::io::Error::other(
            String::from_utf8_lossy(&m.body).into_owned(),
        ))
    }

    /// The event through the outbox, as the wasm service sends it.
    fn publish(&mut self, event: &Event) -> std::io::Result<()> {
        let ops = outbox_transaction(event, None).map_err(std::io::Error::other)?;
        let req = transaction_request(STORE, &ops).map_err(std::io::Error::other)?;
        let m = self.send(req)?;
        if (200..300).contains(&status_of(&m)) {
            Ok(())
        } else {
            Err(std::io::Error::other(
                String::from_utf8_lossy(&m.body).into_owned(),
            ))
        }
    }
}

fn status_of(m: &Message) -> u16 {
    m.start
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
