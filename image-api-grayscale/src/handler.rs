//! Routes and the grayscale request path.

use base64::Engine;
use dapr::Client;
use http::Method;
use image_api_grayscale::{Encoding, grayscale, negotiate};
use service_common::service::{
    bytes_response, caller, enforce_rate_limit, error_response, flush_outbox, json_response,
    read_body, record_event,
};
use service_common::{ApiError, ImageLimits, RatePolicy};
use std::time::Duration;
use wstd::http::{Body, Request, Response};

const APP_ID: &str = "image-api-grayscale";
const OP_TYPE: &str = "grayscale";

pub async fn route(req: Request<Body>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let result = match (req.method(), path.as_str()) {
        (&Method::GET, "/healthz" | "/health") => Ok(json_response(
            200,
            &serde_json::json!({"status": "ok", "app": APP_ID}),
        )),
        (&Method::POST, "/grayscale") => handle_grayscale(req).await,
        (_, "/grayscale" | "/healthz" | "/health") => Err(ApiError::method_not_allowed()),
        _ => Err(ApiError::not_found()),
    };
    result.unwrap_or_else(|e| error_response(&e))
}

async fn handle_grayscale(req: Request<Body>) -> Result<Response<Body>, ApiError> {
    let limits = ImageLimits::from_env();
    let policy = RatePolicy::from_lookup(|k| std::env::var(k).ok());
    let (parts, body) = req.into_parts();
    let dapr = Client::from_env().map_err(|e| ApiError::unavailable(e.to_string()))?;

    enforce_rate_limit(&dapr, &caller(&parts.headers), policy).await?;
    let bytes = read_body(&parts.headers, body, limits.max_body_bytes).await?;
    let out = grayscale(&bytes, &limits)?;

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
    Ok(match negotiate(accept) {
        Encoding::Raw => bytes_response(200, out.content_type(), out.bytes),
        Encoding::Base64 => bytes_response(
            200,
            "text/plain; charset=utf-8",
            base64::engine::general_purpose::STANDARD
                .encode(&out.bytes)
                .into_bytes(),
        ),
    })
}
