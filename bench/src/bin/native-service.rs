//! The **full services**, natively: grayscale and (when `CLASSIFY_MODEL_DIR`
//! names the model) classification, with the same core and the same calls
//! to their own daprd per request as the wasm services (`bench::sidecar`):
//! the rate limit's read and write, and a success's event through the
//! outbox. `scripts/bench` runs it beside its own daprd (bench/dapr.yaml) to
//! compare the wasm services with it. The client is the TCP peer.
//! `GET /steps` answers each step's median since the last call
//! (`dapr`, `dapr.admit`, `dapr.event`, `grayscale`, and for classify
//! `preprocess`, `handover`, `inference`, `top-k`).
//! Usage: native-service ADDR (DAPR_HTTP_PORT and DAPR_API_TOKEN from the
//! environment, as the supervisor sets them)

use bench::classify::Model;
use bench::sidecar::{Refusal, Sidecar};
use bench::steps::Steps;
use bench::{Message, read_message, write_response};
use image_api_classify::{sentence, wants_json};
use image_api_grayscale::{ImageLimits, Problem, grayscale};
use openvino::InferRequest;
use service_common::ratelimit::RatePolicy;
use std::io::BufReader;
use std::sync::Arc;
use std::time::Instant;

type Answer = (u16, &'static str, Vec<u8>);

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:19102".into());
    let sidecar = format!(
        "127.0.0.1:{}",
        std::env::var("DAPR_HTTP_PORT").unwrap_or_else(|_| "3530".into())
    );
    let token = std::env::var("DAPR_API_TOKEN").unwrap_or_default();
    let model = match std::env::var("CLASSIFY_MODEL_DIR") {
        Ok(dir) => {
            let model = Model::load(dir.as_ref()).map_err(std::io::Error::other)?;
            eprintln!("native-service: OpenVINO {}", model.settings());
            Some(Arc::new(model))
        }
        Err(_) => None,
    };
    let steps = Arc::new(Steps::default());
    let listener = std::net::TcpListener::bind(&addr)?;
    eprintln!("native-service: serving http://{addr}/ beside daprd {sidecar}");
    for stream in listener.incoming() {
        let stream = stream?;
        let (sidecar, token) = (sidecar.clone(), token.clone());
        let (model, steps) = (model.clone(), steps.clone());
        std::thread::spawn(move || -> std::io::Result<()> {
            let mut conn = Conn {
                peer: stream.peer_addr()?.ip().to_string(),
                dapr: Sidecar::new(&sidecar, token),
                model,
                infer: None,
                steps,
            };
            let mut w = stream.try_clone()?;
            let mut r = BufReader::new(stream);
            while let Some(req) = read_message(&mut r)? {
                let (status, content_type, body) = conn.answer(&req);
                write_response(&mut w, status, content_type, &body)?;
            }
            Ok(())
        });
    }
    Ok(())
}

/// One client connection: its peer, its own keep-alive connection to
/// daprd, and its inference request once it asks for a classification.
struct Conn {
    peer: String,
    dapr: Sidecar,
    model: Option<Arc<Model>>,
    infer: Option<InferRequest>,
    steps: Arc<Steps>,
}

impl Conn {
    fn answer(&mut self, req: &Message) -> Answer {
        let steps = &self.steps;
        match req.start.split(' ').take(2).collect::<Vec<_>>()[..] {
            ["GET", "/healthz"] => (200, "application/json", br#"{"status":"ok"}"#.to_vec()),
            ["GET", "/steps"] => (200, "text/plain", steps.take_p50s().into_bytes()),
            ["POST", "/grayscale"] => serve(
                &mut self.dapr,
                &self.peer,
                req,
                steps,
                "grayscale",
                |body| {
                    let t = Instant::now();
                    let out = grayscale(body, &ImageLimits::default());
                    steps.record("grayscale", t);
                    out.map(|out| (out.content_type(), out.bytes))
                        .map_err(|e| (e.status(), e.to_json()))
                },
            ),
            ["POST", "/classify"] => match infer_request(&self.model, &mut self.infer) {
                Some((m, infer)) => {
                    serve(&mut self.dapr, &self.peer, req, steps, "classify", |body| {
                        let top = m
                            .classify(infer, body, steps)
                            .map_err(|e| (e.status(), e.to_json()))?;
                        Ok(if wants_json(req.header("accept")) {
                            (
                                "application/json",
                                serde_json::to_vec(&top).unwrap_or_default(),
                            )
                        } else {
                            ("text/plain; charset=utf-8", sentence(&top).into_bytes())
                        })
                    })
                }
                None => problem((404, "not_found")),
            },
            _ => problem((404, "not_found")),
        }
    }
}

/// The model and the connection's inference request, made at its first
/// classify and kept for the others, as the host keeps one per instance: a
/// connection that only asks for grayscale (the bench's rotating clients)
/// makes none. `None` without a model.
fn infer_request<'a>(
    model: &'a Option<Arc<Model>>,
    slot: &'a mut Option<InferRequest>,
) -> Option<(&'a Model, &'a mut InferRequest)> {
    let model = model.as_deref()?;
    if slot.is_none() {
        *slot = model
            .request()
            .inspect_err(|e| eprintln!("native-service: {e}"))
            .ok();
    }
    Some((model, slot.as_mut()?))
}

fn problem((status, code): Refusal) -> Answer {
    let body = format!(r#"{{"error":"{code}","code":"{code}"}}"#);
    (status, "application/json", body.into_bytes())
}

/// Admission (the rate limit), the work, and a success's event: as the wasm
/// services do it. The two sidecar steps are timed together as `dapr`.
fn serve(
    dapr: &mut Sidecar,
    peer: &str,
    req: &Message,
    steps: &Steps,
    op_type: &str,
    work: impl FnOnce(&[u8]) -> Result<(&'static str, Vec<u8>), (u16, Vec<u8>)>,
) -> Answer {
    let policy = RatePolicy::from_lookup(|k| std::env::var(k).ok());
    let t = Instant::now();
    if let Err(refusal) = dapr.admit(peer, policy) {
        return problem(refusal);
    }
    let admitted = Instant::now();
    let (content_type, body) = match work(&req.body) {
        Ok(out) => out,
        Err((status, json)) => return (status, "application/json", json),
    };
    let worked = Instant::now();
    if let Err(refusal) = dapr.record(op_type, req.body.len()) {
        return problem(refusal);
    }
    // The sidecar's share: admission, the event, and both.
    let (admit, event) = (admitted - t, worked.elapsed());
    steps.add("dapr.admit", admit);
    steps.add("dapr.event", event);
    steps.add("dapr", admit + event);
    (200, content_type, body)
}
