//! The native full services' way to their daprd (bench/src/bin/native-service.rs):
//! one keep-alive HTTP/1.1 connection, and the same calls per request as the
//! wasm services (service-common/src/service/record.rs): the client record's
//! read and write (the rate limit), and for a success one state transaction
//! that publishes its event through the outbox.

use crate::{Message, read_message};
use dapr::ETag;
use dapr::request::DaprRequest;
use dapr::state::{get_request, transaction_request};
use service_common::event::{Event, event_id, outbox_transaction};
use service_common::ratelimit::{
    ClientRecord, Decision, RatePolicy, check, record_item, state_key,
};
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::{SystemTime, UNIX_EPOCH};

const STORE: &str = "statestore";

/// Why a request was not admitted: its status and error code.
pub type Refusal = (u16, &'static str);

/// A keep-alive HTTP/1.1 connection to daprd.
pub struct Sidecar {
    addr: String,
    token: String,
    conn: Option<(TcpStream, BufReader<TcpStream>)>,
}

impl Sidecar {
    /// Connects on first use, and again after daprd closed the connection.
    pub fn new(addr: &str, token: String) -> Self {
        Self {
            addr: addr.to_string(),
            token,
            conn: None,
        }
    }

    /// Sends one request on the kept-alive connection and reads its answer.
    pub fn send(&mut self, req: DaprRequest) -> std::io::Result<Message> {
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

    /// The rate limit: read the client's record, decide, write it back under
    /// the ETag read (again on a lost race).
    pub fn admit(&mut self, peer: &str, policy: RatePolicy) -> Result<(), Refusal> {
        const UNAVAILABLE: Refusal = (503, "unavailable");
        for _ in 0..8 {
            let (previous, etag) = self.read(peer).map_err(|_| UNAVAILABLE)?;
            match check(previous, peer, now_ms(), policy) {
                Decision::Allow(record) => match self.save(&record, etag, policy) {
                    Ok(true) => return Ok(()),
                    Ok(false) => continue,
                    Err(_) => return Err(UNAVAILABLE),
                },
                Decision::Deny(record, _) => {
                    let _ = self.save(&record, etag, policy);
                    return Err((429, "rate_limited"));
                }
            }
        }
        Err(UNAVAILABLE)
    }

    /// A success's event, through the outbox.
    pub fn record(&mut self, op_type: &str, input_size: usize) -> Result<(), Refusal> {
        let event = Event {
            event_id: event_id(now_ms(), u64::from(std::process::id()) ^ now_ms()),
            event_ts: now_ms(),
            op_type: op_type.into(),
            input_size: input_size as u64,
        };
        self.publish(&event).map_err(|_| (503, "unavailable"))
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

pub fn status_of(m: &Message) -> u16 {
    m.start
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
