//! Routes and the classify request path.

use crate::nn;
use dapr::Client;
use http::Method;
use image_api_classify::{preprocess, sentence, top_k, wants_json};
use service_common::service::{
    bytes_response, caller, enforce_rate_limit, error_response, flush_outbox, json_response,
    read_body, record_event,
};
use service_common::{ApiError, ImageLimits, RatePolicy};
use std::time::Duration;
use wstd::http::{Body, Request, Response};

const OP_TYPE: &str = "classify";

pub async fn route(req: Request<Body>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let result = match (req.method(), path.as_str()) {
        (&Method::GET, "/healthz" | "/health") => Ok(health()),
        (&Method::POST, "/classify") => handle(req, false).await,
        (&Method::POST, "/preprocess") => handle(req, true).await,
        (_, "/classify" | "/preprocess" | "/healthz" | "/health") => {
            Err(ApiError::method_not_allowed())
        }
        _ => Err(ApiError::not_found()),
    };
    result.unwrap_or_else(|e| error_response(&e))
}

fn health() -> Response<Body> {
    match nn::ensure_loaded() {
        Ok(()) => json_response(
            200,
            &serde_json::json!({"status": "ok", "app": "image-api-classify", "model_loaded": true}),
        ),
        Err(e) => {
            eprintln!("model unavailable: {e}");
            json_response(
                503,
                &serde_json::json!({"status": "unavailable", "app": "image-api-classify", "model_loaded": false,
                    "error": "the model is not loaded", "code": "unavailable"}),
            )
        }
    }
}

async fn handle(req: Request<Body>, tensor_only: bool) -> Result<Response<Body>, ApiError> {
    let limits = ImageLimits::from_env();
    let policy = RatePolicy::from_lookup(|k| std::env::var(k).ok());
    let (parts, body) = req.into_parts();
    let dapr = Client::from_env().map_err(|e| ApiError::unavailable(e.to_string()))?;

    enforce_rate_limit(&dapr, &caller(&parts.headers), policy).await?;
    let bytes = read_body(&parts.headers, body, limits.max_body_bytes).await?;
    let (_, img) = service_common::decode::decode(&bytes, &limits)?;
    let input = preprocess(&img);
    drop(img);
    if tensor_only {
        return Ok(bytes_response(200, "application/octet-stream", input));
    }
    let top = nn::infer(&input, |out, labels| top_k(out, labels, 5)).map_err(|e| {
        eprintln!("classification failed: {e}");
        ApiError::unavailable("the model is unavailable")
    })?;

    // Into the outbox before answering, delivered after: see record_event.
    let recorded = record_event(&dapr, OP_TYPE, bytes.len() as u64).await;
    wstd::runtime::spawn(async move {
        flush_outbox(&dapr, Some(recorded), Duration::from_secs(30)).await;
    })
    .detach();

    let accept = parts
        .headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    Ok(if wants_json(accept) {
        json_response(200, &top)
    } else {
        bytes_response(
            200,
            "text/plain; charset=utf-8",
            sentence(&top).into_bytes(),
        )
    })
}
