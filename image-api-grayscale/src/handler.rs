//! Routes and the grayscale request path.

use base64::Engine;
use http::Method;
use image_api_grayscale::{Encoding, grayscale, negotiate};
use service_common::ApiError;
use service_common::service::{ImageRequest, bytes_response, error_response, json_response};
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
    let req = ImageRequest::accept(req).await?;
    let out = grayscale(&req.body, &req.limits)?;
    let encoding = negotiate(req.accept_header());
    req.record_success(OP_TYPE).await;
    Ok(match encoding {
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
