//! Answers, request bodies and who is calling.

use crate::{ApiError, Problem, client_address};
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
        Err(e) => error_response(&ApiError::internal(format!(
            "cannot encode a response: {e}"
        ))),
    }
}

/// The JSON error answer, with Retry-After for 429. The one place causes
/// are logged: the answer never carries them.
pub fn error_response(e: &impl Problem) -> Response<Body> {
    if let Some(cause) = e.cause() {
        eprintln!("{} {}: {} ({cause})", e.status(), e.code(), e.message());
    }
    let mut r = bytes_response(e.status(), "application/json", e.to_json());
    if let Some(s) = e.retry_after() {
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
            Err(ApiError::BadRequest(
                "the request body could not be read completely".into(),
            ))
        }
    }
}

/// The calling client's address, as the host put it (see [`client_address`]).
pub fn caller(headers: &HeaderMap) -> String {
    client_address(headers.get("forwarded").and_then(|v| v.to_str().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wstd::http::BodyExt as _;

    fn body_of(r: Response<Body>) -> Vec<u8> {
        wstd::runtime::block_on(async {
            r.into_body()
                .into_boxed_body()
                .collect()
                .await
                .expect("body")
                .to_bytes()
                .to_vec()
        })
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    #[test]
    fn responses_carry_status_type_and_length() {
        let r = bytes_response(201, "image/png", vec![1, 2, 3]);
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["content-type"], "image/png");
        assert_eq!(r.headers()["content-length"], "3");
        assert_eq!(bytes_response(1000, "x", vec![]).status(), 500);
    }

    #[test]
    fn errors_answer_json_with_retry_after_and_no_cause() {
        let r = error_response(&ApiError::RateLimited { retry_after: 7 });
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "7");
        assert_eq!(r.headers()["content-type"], "application/json");
        let r = error_response(&ApiError::unavailable("the database", "password=hunter2"));
        assert_eq!(r.status(), 503);
        assert!(r.headers().get("retry-after").is_none());
        let body = String::from_utf8(body_of(r)).expect("utf8");
        assert!(body.contains("the database is unavailable"), "{body}");
        assert!(!body.contains("hunter2"), "{body}");
    }

    #[test]
    fn bodies_are_read_within_the_limit_only() {
        let read = |h: HeaderMap, body: Vec<u8>, limit| {
            wstd::runtime::block_on(read_body(&h, Body::from(body), limit))
        };
        assert_eq!(
            read(HeaderMap::new(), b"abc".to_vec(), 3),
            Ok(b"abc".to_vec())
        );
        // Over the limit, undeclared: cut off.
        assert_eq!(
            read(HeaderMap::new(), vec![0; 11], 10),
            Err(ApiError::too_large(10))
        );
        // Declared over the limit: refused before reading a byte.
        let h = headers(&[("content-length", "1000000")]);
        assert_eq!(read(h, b"small".to_vec(), 10), Err(ApiError::too_large(10)));
    }

    #[test]
    fn the_caller_is_what_the_host_put_in_forwarded() {
        assert_eq!(
            caller(&headers(&[("forwarded", "for=127.0.0.2")])),
            "127.0.0.2"
        );
        // The host removes these; were one to slip through, it is not read.
        assert_eq!(
            caller(&headers(&[("x-forwarded-for", "6.6.6.6")])),
            crate::client_addr::UNKNOWN
        );
        assert_eq!(caller(&HeaderMap::new()), crate::client_addr::UNKNOWN);
    }
}
