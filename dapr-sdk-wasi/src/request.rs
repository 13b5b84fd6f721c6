//! Requests to the sidecar as plain values: built and checked natively, sent
//! by the client. The only place that builds sidecar URLs.

use crate::{Error, Result};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Characters escaped in a path segment: everything but RFC 3986 unreserved.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment so a key like `a/b?c` stays one segment.
pub fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// Percent-encodes a query component.
pub fn query_component(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// A request to the sidecar, relative to its base URL.
#[derive(Debug, Clone, PartialEq)]
pub struct DaprRequest {
    /// HTTP method.
    pub method: Method,
    /// Path and query, starting with `/`.
    pub path_and_query: String,
    /// Extra headers (content type, If-Match, …).
    pub headers: HeaderMap,
    /// Body bytes; sent with an explicit Content-Length.
    pub body: Vec<u8>,
}

impl DaprRequest {
    /// A request with no body.
    pub fn new(method: Method, path_and_query: String) -> Self {
        Self {
            method,
            path_and_query,
            headers: HeaderMap::new(),
            body: Vec::new(),
        }
    }

    /// Sets a JSON body.
    pub fn json<T: serde::Serialize + ?Sized>(mut self, value: &T) -> Result<Self> {
        self.body = serde_json::to_vec(value).map_err(Error::Encode)?;
        self.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(self)
    }

    /// True when sending this twice is harmless: every Dapr API call (state
    /// writes are keyed, ETag-guarded or last-write-wins), and service
    /// invocation with an idempotent method. Never an actor method: Dapr
    /// calls the actor with PUT whatever the caller used, so the verb says
    /// nothing about whether a repeat is harmless.
    pub fn is_retryable(&self) -> bool {
        let p = &self.path_and_query;
        if p.starts_with("/v1.0/actors/") {
            p.split(['?', '#']).next().unwrap_or("").split('/').nth(5) != Some("method")
        } else if p.starts_with("/v1.0/invoke/") {
            matches!(
                self.method,
                Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
            )
        } else {
            true
        }
    }

    /// Adds a header; names and values that HTTP cannot carry are an error.
    pub fn header(mut self, name: &str, value: &str) -> Result<Self> {
        let name = HeaderName::try_from(name)
            .map_err(|_| Error::InvalidArgument(format!("bad header name {name:?}")))?;
        let value = HeaderValue::try_from(value)
            .map_err(|_| Error::InvalidArgument(format!("bad value for header {name}")))?;
        self.headers.insert(name, value);
        Ok(self)
    }
}

/// Joins `/v1.0/...` with encoded segments and an optional query.
pub(crate) fn path(prefix: &str, segments: &[&str], query: &[(&str, String)]) -> String {
    let mut p = String::from(prefix);
    for s in segments {
        p.push('/');
        p.push_str(&segment(s));
    }
    let mut sep = '?';
    for (k, v) in query {
        p.push(sep);
        sep = '&';
        p.push_str(&query_component(k));
        p.push('=');
        p.push_str(&query_component(v));
    }
    p
}

pub(crate) fn non_empty(what: &str, v: &str) -> Result<()> {
    if v.is_empty() {
        Err(Error::InvalidArgument(format!("{what} must not be empty")))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("a/b?c d"), "a%2Fb%3Fc%20d");
        assert_eq!(segment("client:127.0.0.1"), "client%3A127.0.0.1");
        assert_eq!(
            path(
                "/v1.0/state",
                &["store", "k/1"],
                &[("metadata.ttlInSeconds", "5".into())]
            ),
            "/v1.0/state/store/k%2F1?metadata.ttlInSeconds=5"
        );
    }

    #[test]
    fn retry_policy() {
        assert!(DaprRequest::new(Method::POST, "/v1.0/state/s".into()).is_retryable());
        assert!(DaprRequest::new(Method::GET, "/v1.0/invoke/a/method/x".into()).is_retryable());
        assert!(!DaprRequest::new(Method::POST, "/v1.0/invoke/a/method/x".into()).is_retryable());
    }

    #[test]
    fn bad_headers_are_errors() {
        let r = DaprRequest::new(Method::GET, "/".into());
        assert!(r.clone().header("x-ok", "v").is_ok());
        assert!(r.clone().header("bad name", "v").is_err());
        assert!(r.header("x", "line\nbreak").is_err());
    }
}
