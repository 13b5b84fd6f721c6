//! The JSON error every endpoint answers with: `{"error": "...", "code": "..."}`.

use serde::Serialize;

/// An error answer: the status, a stable machine code and a human message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Stable code for programs (`payload_too_large`, `rate_limited`, …).
    pub code: &'static str,
    /// Human-readable message; never contains secrets.
    pub message: String,
    /// Seconds to wait, for 429 answers (sent as `Retry-After`).
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 with code `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "bad_request", message)
    }

    /// 404 with code `not_found`.
    pub fn not_found() -> Self {
        Self::new(404, "not_found", "no such route")
    }

    /// 405 with code `method_not_allowed`.
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "method_not_allowed",
            "method not allowed on this route",
        )
    }

    /// 413 with code `payload_too_large`.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "payload_too_large",
            format!("body larger than the {limit}-byte limit"),
        )
    }

    /// 503 with code `unavailable`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "unavailable", message)
    }

    /// 429 with code `rate_limited` and a Retry-After.
    pub fn rate_limited(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                429,
                "rate_limited",
                format!("too many requests; retry in {retry_after} s"),
            )
        }
    }

    /// The JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        let body = Body {
            error: &self.message,
            code: self.code,
            retry_after: self.retry_after,
        };
        // Serializing a struct of strings and integers cannot fail.
        serde_json::to_vec(&body)
            .unwrap_or_else(|_| b"{\"error\":\"internal\",\"code\":\"internal\"}".to_vec())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let e = ApiError::rate_limited(3);
        let v: serde_json::Value = serde_json::from_slice(&e.to_json()).expect("json");
        assert_eq!(v["code"], "rate_limited");
        assert_eq!(v["retry_after"], 3);
        assert!(v["error"].as_str().expect("str").contains("3 s"));
        let v: serde_json::Value =
            serde_json::from_slice(&ApiError::not_found().to_json()).expect("json");
        assert!(v.get("retry_after").is_none());
    }
}
