//! Routes and the classify request path.

use crate::nn;
use http::Method;
use image_api_classify::{preprocess, sentence, top_k, wants_json};
use service_common::ApiError;
use service_common::service::{ImageRequest, bytes_response, error_response, json_response};
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
    let req = ImageRequest::accept(req).await?;
    let (_, img) = service_common::decode::decode(&req.body, &req.limits)?;
    let input = preprocess(&img);
    drop(img);
    if tensor_only {
        return Ok(bytes_response(200, "application/octet-stream", input));
    }
    let top = nn::infer(&input, |out, labels| top_k(out, labels, 5)).map_err(|e| {
        eprintln!("classification failed: {e}");
        ApiError::unavailable("the model is unavailable")
    })?;
    let json = wants_json(req.accept_header());
    req.record_success(OP_TYPE).await;
    Ok(if json {
        json_response(200, &top)
    } else {
        bytes_response(
            200,
            "text/plain; charset=utf-8",
            sentence(&top).into_bytes(),
        )
    })
}
