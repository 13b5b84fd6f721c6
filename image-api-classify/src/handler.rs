//! Routes and the classify request path.

use crate::nn;
use http::Method;
use image_api_classify::{preprocess, sentence, top_k, wants_json};
use service_common::ApiError;
use service_common::routes::{Route, dispatch};
use service_common::service::{ImageRequest, bytes_response, error_response, json_response};
use wstd::http::{Body, Request, Response};

const OP_TYPE: &str = "classify";

#[derive(Clone, Copy)]
enum Op {
    Health,
    Classify,
}

/// Every route, once.
const ROUTES: &[Route<Op>] = &[
    (Method::GET, &["/healthz", "/health"], Op::Health),
    (Method::POST, &["/classify"], Op::Classify),
];

pub async fn route(req: Request<Body>) -> Response<Body> {
    let result = match dispatch(ROUTES, req.method(), req.uri().path()) {
        Ok(Op::Health) => Ok(health()),
        Ok(Op::Classify) => handle(req).await,
        Err(e) => Err(e),
    };
    result.unwrap_or_else(|e| error_response(&e))
}

fn classify(req: &ImageRequest) -> Result<Vec<image_api_classify::Prediction>, ApiError> {
    // Steps in the request's trace: decoding and resizing, then the model.
    let input = {
        let _s = service_common::span::step("preprocess");
        let (_, img) = service_common::decode::decode(&req.body, &req.limits)?;
        preprocess(&img)
    };
    let _s = service_common::span::step("inference");
    nn::infer(&input, |out, labels| top_k(out, labels, 5))
        .map_err(|e| ApiError::unavailable("the model", e))
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

async fn handle(req: Request<Body>) -> Result<Response<Body>, ApiError> {
    let req = ImageRequest::accept(req).await?;
    let json = wants_json(req.accept_header());
    let outcome = classify(&req);
    let top = req.finish(OP_TYPE, outcome).await?;
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
