//! Routes meant only for Dapr: each sidecar sends its app the token in
//! `APP_API_TOKEN` as the `dapr-api-token` header, so a request without it
//! came from somewhere else (a direct call to the app's port).

use crate::ApiError;

/// The header daprd sends its app the token in.
pub const HEADER: &str = "dapr-api-token";

/// Accepts the request when `presented` equals `expected`. With no token
/// configured, nothing is accepted: a Dapr-only route fails closed. The
/// comparison takes the same time wherever the first difference is.
pub fn check(expected: Option<&str>, presented: Option<&[u8]>) -> Result<(), ApiError> {
    let ok = match (expected, presented) {
        (Some(e), Some(p)) if !e.is_empty() => equal(e.as_bytes(), p),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Problem;

    #[test]
    fn only_the_configured_token_passes() {
        assert!(check(Some("s3cret"), Some(b"s3cret")).is_ok());
        for (expected, presented) in [
            (Some("s3cret"), None),
            (Some("s3cret"), Some(&b"s3cre"[..])),
            (Some("s3cret"), Some(&b"s3cret "[..])),
            (Some("s3cret"), Some(&b"S3cret"[..])),
            (Some("s3cret"), Some(&b""[..])),
            (None, Some(&b"anything"[..])),
            (Some(""), Some(&b""[..])),
            (None, None),
        ] {
            let e = check(expected, presented).expect_err("refused");
            assert_eq!((e.status(), e.code()), (401, "unauthorized"));
            assert!(!e.message().contains("s3cret"));
        }
    }
}
