//! The JSON error every endpoint answers with: `{"error": "...", "code": "..."}`.
//!
//! Each crate has one error enum: its variants pick the status and the code,
//! and keep their cause. [`ApiError`] holds what the services share; an app
//! with errors of its own wraps it (`GrayscaleError`, `EventsError`). The
//! answer says what the client did wrong; a cause with internals goes to
//! the log ([`Problem::cause`]), never into the answer. Each service's
//! README table of codes is generated from its enum ([`code_table`]) and a
//! unit test keeps it current.

use serde::Serialize;

/// What answering an error needs; implemented by each crate's enum.
pub trait Problem: std::fmt::Debug {
    /// HTTP status.
    fn status(&self) -> u16;
    /// Stable code for programs (`payload_too_large`, `rate_limited`, …).
    fn code(&self) -> &'static str;
    /// What the client is told: about its request, never internals or secrets.
    fn message(&self) -> String;
    /// Seconds to wait, for 429 answers (sent as `Retry-After`).
    fn retry_after(&self) -> Option<u64> {
        None
    }
    /// The cause, for the log only: may name internals.
    fn cause(&self) -> Option<&str> {
        None
    }
    /// The JSON body.
    fn to_json(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Body<'a> {
            error: &'a str,
            code: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            retry_after: Option<u64>,
        }
        let message = self.message();
        let body = Body {
            error: &message,
            code: self.code(),
            retry_after: self.retry_after(),
        };
        // Serializing a struct of strings and integers cannot fail.
        serde_json::to_vec(&body)
            .unwrap_or_else(|_| b"{\"error\":\"internal error\",\"code\":\"internal\"}".to_vec())
    }
}

/// One row of a README's table of codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeDoc {
    /// HTTP status.
    pub status: u16,
    /// The code.
    pub code: &'static str,
    /// When it is answered.
    pub when: &'static str,
}

/// The Markdown table of `rows`, sorted by status then code.
pub fn code_table(rows: &[CodeDoc]) -> String {
    let mut rows = rows.to_vec();
    rows.sort_by_key(|r| (r.status, r.code));
    rows.dedup();
    let mut out = String::from("| Status | Code | When |\n|---|---|---|\n");
    for r in rows {
        out.push_str(&format!("| {} | `{}` | {} |\n", r.status, r.code, r.when));
    }
    out
}

/// Checks (or with `UPDATE_READMES=1`, rewrites) the table between
/// `<!-- codes -->` and `<!-- /codes -->` in the README.md of the crate in
/// `crate_dir` (its `CARGO_MANIFEST_DIR`). For each crate's unit test;
/// returns the mismatch, if any.
pub fn check_readme_table(crate_dir: &str, rows: &[CodeDoc]) -> Result<(), String> {
    let path = &std::path::Path::new(crate_dir).join("README.md");
    const OPEN: &str = "<!-- codes -->\n";
    const CLOSE: &str = "<!-- /codes -->";
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let start = text
        .find(OPEN)
        .ok_or_else(|| format!("{}: no {OPEN:?} marker", path.display()))?
        + OPEN.len();
    let end = start
        + text[start..]
            .find(CLOSE)
            .ok_or_else(|| format!("{}: no {CLOSE:?} marker", path.display()))?;
    let want = code_table(rows);
    if text[start..end] == want {
        return Ok(());
    }
    if std::env::var_os("UPDATE_READMES").is_some() {
        let updated = format!("{}{want}{}", &text[..start], &text[end..]);
        return std::fs::write(path, updated).map_err(|e| e.to_string());
    }
    Err(format!(
        "{}: the table of codes is stale; run `UPDATE_READMES=1 cargo test` to regenerate it:\n{want}",
        path.display()
    ))
}

/// The codes the shared image request path answers (`ImageRequest::accept`
/// and `decode::decode`): each image service's table starts from these.
pub const IMAGE_REQUEST_CODES: &[&str] = &[
    "empty_body",
    "bad_request",
    "not_found",
    "method_not_allowed",
    "payload_too_large",
    "unsupported_media_type",
    "invalid_image",
    "image_too_large",
    "rate_limited",
    "unavailable",
    "internal",
];

/// The errors every service shares, one variant per code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 400 `empty_body`.
    EmptyBody,
    /// 400 `bad_request`: what is wrong with the request.
    BadRequest(String),
    /// 401 `unauthorized`: a Dapr-only route called without the app token.
    Unauthorized,
    /// 404 `not_found`.
    NotFound,
    /// 405 `method_not_allowed`.
    MethodNotAllowed,
    /// 413 `payload_too_large`, with the limit in bytes.
    PayloadTooLarge {
        /// Bytes.
        limit: usize,
    },
    /// 431 `headers_too_large`: a sidecar refused the URL or headers.
    HeadersTooLarge,
    /// 415 `unsupported_media_type`: what was expected.
    UnsupportedMediaType(String),
    /// 422 `invalid_image`: the decoder's reason (about the bytes sent).
    InvalidImage(String),
    /// 422 `image_too_large`: which limit.
    ImageTooLarge(String),
    /// 422 `too_many_frames`.
    TooManyFrames {
        /// The limit.
        max: usize,
    },
    /// 429 `rate_limited`.
    RateLimited {
        /// Seconds until a request would be allowed.
        retry_after: u64,
    },
    /// 503 `unavailable`: what is down (told to the client) and why (logged).
    Unavailable {
        /// `the state store`, `the database`, …
        what: &'static str,
        /// The underlying error.
        cause: String,
    },
    /// 500 `internal`: a bug or an impossible state; the client is told no more.
    Internal {
        /// The underlying error.
        cause: String,
    },
}

impl ApiError {
    /// 413 for this limit.
    pub fn too_large(limit: usize) -> Self {
        Self::PayloadTooLarge { limit }
    }

    /// 503: `what` is unavailable because of `cause` (logged, not answered).
    pub fn unavailable(what: &'static str, cause: impl std::fmt::Display) -> Self {
        Self::Unavailable {
            what,
            cause: cause.to_string(),
        }
    }

    /// 500, keeping the cause for the log.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal {
            cause: cause.to_string(),
        }
    }

    /// One of each variant, for tables and tests.
    pub fn examples() -> Vec<Self> {
        vec![
            Self::EmptyBody,
            Self::BadRequest("x".into()),
            Self::Unauthorized,
            Self::NotFound,
            Self::MethodNotAllowed,
            Self::PayloadTooLarge { limit: 10 },
            Self::HeadersTooLarge,
            Self::UnsupportedMediaType("x".into()),
            Self::InvalidImage("x".into()),
            Self::ImageTooLarge("x".into()),
            Self::TooManyFrames { max: 1 },
            Self::RateLimited { retry_after: 1 },
            Self::unavailable("x", "y"),
            Self::internal("x"),
        ]
    }

    /// When this code is answered, for the README tables.
    pub fn when(&self) -> &'static str {
        match self {
            Self::EmptyBody => "no bytes in the body",
            Self::BadRequest(_) => "the request is malformed (a query parameter, a body cut short)",
            Self::Unauthorized => "a Dapr-only route called without the app token",
            Self::NotFound => "no such route",
            Self::MethodNotAllowed => "the route exists, not with this method",
            Self::PayloadTooLarge { .. } => {
                "body over `max_body_bytes` in service.toml (10 MB for the image services); refused by the host from Content-Length before reading, or as soon as a chunked body passes it"
            }
            Self::HeadersTooLarge => "the URL or the headers are over the Dapr sidecar's limit",
            Self::UnsupportedMediaType(_) => "not an image we decode (PNG, JPEG, GIF, BMP, WebP)",
            Self::InvalidImage(_) => "truncated or corrupt image",
            Self::ImageTooLarge(_) => {
                "declared dimensions over `MAX_IMAGE_SIDE` (8192) or `MAX_IMAGE_PIXELS` (24 Mpx), checked from the header before decoding pixels (decompression bombs); a PNG whose compressed metadata (iCCP, zTXt, iTXt) inflates past 1 MiB; or the decoder's own allocation limit `MAX_DECODE_BYTES`"
            }
            Self::TooManyFrames { .. } => "animated GIF over `MAX_GIF_FRAMES` (100)",
            Self::RateLimited { .. } => {
                "over the client's rate limit; `Retry-After` says when to retry"
            }
            Self::Unavailable { .. } => {
                "a dependency (state store, secret store, database, model, another service) is down; the message says which"
            }
            Self::Internal { .. } => "a bug: the cause is in the service's log, not the answer",
        }
    }

    /// The table rows for these codes (each must be one of ours).
    pub fn docs(codes: &[&str]) -> Vec<CodeDoc> {
        let all: Vec<CodeDoc> = Self::examples().iter().map(Self::doc).collect();
        codes
            .iter()
            .map(|c| {
                all.iter()
                    .find(|d| d.code == *c)
                    .copied()
                    .unwrap_or_else(|| panic!("no shared error code `{c}`"))
            })
            .collect()
    }

    /// This variant's table row.
    pub fn doc(&self) -> CodeDoc {
        CodeDoc {
            status: self.status(),
            code: self.code(),
            when: self.when(),
        }
    }
}

impl Problem for ApiError {
    fn status(&self) -> u16 {
        match self {
            Self::EmptyBody | Self::BadRequest(_) => 400,
            Self::Unauthorized => 401,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::PayloadTooLarge { .. } => 413,
            Self::HeadersTooLarge => 431,
            Self::UnsupportedMediaType(_) => 415,
            Self::InvalidImage(_) | Self::ImageTooLarge(_) | Self::TooManyFrames { .. } => 422,
            Self::RateLimited { .. } => 429,
            Self::Internal { .. } => 500,
            Self::Unavailable { .. } => 503,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::EmptyBody => "empty_body",
            Self::BadRequest(_) => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::HeadersTooLarge => "headers_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::InvalidImage(_) => "invalid_image",
            Self::ImageTooLarge(_) => "image_too_large",
            Self::TooManyFrames { .. } => "too_many_frames",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable { .. } => "unavailable",
            Self::Internal { .. } => "internal",
        }
    }

    fn message(&self) -> String {
        match self {
            Self::EmptyBody => "the request body is empty; send image bytes".into(),
            Self::BadRequest(m) | Self::UnsupportedMediaType(m) | Self::ImageTooLarge(m) => {
                m.clone()
            }
            Self::Unauthorized => "this route only answers calls through Dapr".into(),
            Self::NotFound => "no such route".into(),
            Self::MethodNotAllowed => "method not allowed on this route".into(),
            Self::PayloadTooLarge { limit } => format!("body larger than the {limit}-byte limit"),
            Self::HeadersTooLarge => "the URL or the headers are too long".into(),
            Self::InvalidImage(why) => format!("the image could not be decoded: {why}"),
            Self::TooManyFrames { max } => format!("animated GIF has more than {max} frames"),
            Self::RateLimited { retry_after } => {
                format!("too many requests; retry in {retry_after} s")
            }
            Self::Unavailable { what, .. } => format!("{what} is unavailable"),
            Self::Internal { .. } => "internal error".into(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    fn cause(&self) -> Option<&str> {
        match self {
            Self::Unavailable { cause, .. } | Self::Internal { cause } => Some(cause),
            _ => None,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status(), self.code(), self.message())
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let e = ApiError::RateLimited { retry_after: 3 };
        let v: serde_json::Value = serde_json::from_slice(&e.to_json()).expect("json");
        assert_eq!(v["code"], "rate_limited");
        assert_eq!(v["retry_after"], 3);
        assert!(v["error"].as_str().expect("str").contains("3 s"));
        let v: serde_json::Value =
            serde_json::from_slice(&ApiError::NotFound.to_json()).expect("json");
        assert!(v.get("retry_after").is_none());
    }

    #[test]
    fn causes_stay_out_of_answers() {
        for e in [
            ApiError::unavailable("the database", "Access denied for user 'events'@'10.0.0.1'"),
            ApiError::internal("index out of bounds at src/lib.rs:12"),
        ] {
            let body = String::from_utf8(e.to_json()).expect("utf8");
            assert!(
                !body.contains("events'@") && !body.contains("src/lib.rs"),
                "{body}"
            );
            assert!(e.cause().is_some());
        }
    }

    #[test]
    fn every_variant_has_its_own_code_and_a_status_that_fits() {
        let examples = ApiError::examples();
        let mut codes: Vec<_> = examples.iter().map(Problem::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), examples.len(), "codes must be unique");
        for e in &examples {
            assert!((400..600).contains(&e.status()), "{e:?}");
            assert!(!e.when().is_empty() && !e.message().is_empty());
        }
        assert_eq!(ApiError::docs(&["not_found"])[0].status, 404);
    }

    #[test]
    fn tables_are_sorted_markdown() {
        let t = code_table(&ApiError::docs(&[
            "rate_limited",
            "empty_body",
            "not_found",
        ]));
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[2].starts_with("| 400 | `empty_body`"));
        assert!(lines[4].starts_with("| 429 | `rate_limited`"));
    }
}
