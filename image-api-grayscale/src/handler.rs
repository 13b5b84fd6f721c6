//! Routes and the grayscale request path.

use base64::Engine;
use http::Method;
use image_api_grayscale::GrayscaleError;
use image_api_grayscale::{Encoding, grayscale, negotiate};
use service_common::routes::{Route, dispatch};
use service_common::service::{ImageRequest, bytes_response, error_response, json_response};
use wstd::http::{Body, Request, Response};

const APP_ID: &str = "image-api-grayscale";
const OP_TYPE: &str = "grayscale";

#[derive(Clone, Copy)]
enum Op {
    Health,
    Grayscale,
}

/// Every route, once.
const ROUTES: &[Route<Op>] = &[
    (Method::GET, &["/healthz", "/health"], Op::Health),
    (Method::POST, &["/grayscale"], Op::Grayscale),
];

pub async fn route(req: Request<Body>) -> Response<Body> {
    let result = match dispatch(ROUTES, req.method(), req.uri().path()) {
        Ok(Op::Health) => Ok(json_response(
            200,
            &serde_json::json!({"status": "ok", "app": APP_ID}),
        )),
        Ok(Op::Grayscale) => handle_grayscale(req).await,
        Err(e) => Err(e.into()),
    };
    result.unwrap_or_else(|e| error_response(&e))
}

async fn handle_grayscale(req: Request<Body>) -> Result<Response<Body>, GrayscaleError> {
    let req = ImageRequest::accept(req).await?;
    let encoding = negotiate(req.accept_header());
    let outcome = grayscale(&req.body, &req.limits);
    let out = req.finish(OP_TYPE, outcome).await?;
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
