//! Answers, request bodies and who is calling.

use crate::{ApiError, client_address};
use http::{HeaderMap, HeaderValue, StatusCode};
use wstd::http::{Body, Response};

/// A response with these bytes and content type.
pub fn bytes_response(status: u16, content_type: &str, body: Vec<u8>) -> Response<Body> {
    let len = body.len();
    let mut r = Response::new(Body::from(body));
    // A known length instead of chunked encoding.
    r.headers_mut()
        .insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

/// A JSON response.
pub fn json_response<T: serde::Serialize>(status: u16, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(body) => bytes_response(status, "application/json", body),
        Err(_) => error_response(&ApiError::new(500, "internal", "cannot encode response")),
    }
}

/// The JSON error answer, with Retry-After for 429.
pub fn error_response(e: &ApiError) -> Response<Body> {
    let mut r = bytes_response(e.status, "application/json", e.to_json());
    if let Some(s) = e.retry_after {
        r.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}

/// Reads the request body, refusing anything past `limit` without
/// buffering it: a declared Content-Length over the limit is refused before
/// reading a byte, and a chunked body is cut off as soon as it passes.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    match dapr::read_limited(body, limit).await {
        Ok(b) => Ok(b),
        Err(dapr::Error::TooLarge { .. }) => Err(ApiError::too_large(limit)),
        Err(e) => {
            // The cause is ours to log, not the client's to read.
            eprintln!("reading a request body: {e}");
            Err(ApiError::bad_request(
                "the request body could not be read completely",
            ))
        }
    }
}

/// The calling client's address, as the host put it (see [`client_address`]).
pub fn caller(headers: &HeaderMap) -> String {
    client_address(headers.get("forwarded").and_then(|v| v.to_str().ok()))
}
