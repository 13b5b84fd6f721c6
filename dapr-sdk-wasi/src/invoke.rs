//! Service invocation: call another app through the sidecars.

use crate::request::{DaprRequest, non_empty, path};
use crate::{Error, Result};
use http::{HeaderMap, Method};

/// `{method} /v1.0/invoke/{app_id}/method/{method_path}`.
///
/// `method_path` may contain `/` (it is the app's route) and a query string;
/// each path segment is encoded, the query is passed as given.
pub fn invoke_request(
    app_id: &str,
    method: Method,
    method_path: &str,
    body: Vec<u8>,
) -> Result<DaprRequest> {
    non_empty("app id", app_id)?;
    let (route, query) = match method_path.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (method_path, None),
    };
    let route = route.trim_start_matches('/');
    non_empty("method path", route)?;
    let mut p = path("/v1.0/invoke", &[app_id, "method"], &[]);
    for seg in route.split('/') {
        p.push('/');
        p.push_str(&crate::request::segment(seg));
    }
    if let Some(q) = query {
        if q.chars().any(|c| c.is_whitespace() || c == '#') {
            return Err(Error::InvalidArgument("query must be URL-encoded".into()));
        }
        p.push('?');
        p.push_str(q);
    }
    let mut req = DaprRequest::new(method, p);
    req.body = body;
    Ok(req)
}

/// The invoked app's answer. Its status is passed through: a 4xx from the
/// app is a response here, not an [`Error`].
#[derive(Debug, Clone)]
pub struct InvokeResponse {
    /// The app's status code.
    pub status: u16,
    /// The app's headers.
    pub headers: HeaderMap,
    /// The app's body.
    pub body: Vec<u8>,
}

impl InvokeResponse {
    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Decodes the body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(Error::Decode)
    }

    /// The body as an [`Error`] (for non-2xx answers you want to propagate).
    pub fn into_error(self) -> Error {
        Error::from_response(self.status, &self.body)
    }

    /// True when the sidecar itself failed to reach the app (it answers
    /// with its own `ERR_DIRECT_INVOKE` error rather than the app's body).
    pub fn is_sidecar_error(&self) -> bool {
        !self.is_success()
            && matches!(Error::from_response(self.status, &self.body).error_code(),
                Some(c) if c.starts_with("ERR_"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_invoke_path() {
        let r =
            invoke_request("events-service", Method::GET, "/events?limit=5", vec![]).expect("req");
        assert_eq!(
            r.path_and_query,
            "/v1.0/invoke/events-service/method/events?limit=5"
        );
        let r = invoke_request("a b", Method::POST, "x/y z", b"1".to_vec()).expect("req");
        assert_eq!(r.path_and_query, "/v1.0/invoke/a%20b/method/x/y%20z");
        assert_eq!(r.body, b"1");
        assert!(invoke_request("", Method::GET, "x", vec![]).is_err());
        assert!(invoke_request("a", Method::GET, "/", vec![]).is_err());
        assert!(invoke_request("a", Method::GET, "x?a b", vec![]).is_err());
    }

    #[test]
    fn sidecar_errors_are_recognised() {
        let r = InvokeResponse {
            status: 500,
            headers: HeaderMap::new(),
            body: br#"{"errorCode":"ERR_DIRECT_INVOKE","message":"fail"}"#.to_vec(),
        };
        assert!(r.is_sidecar_error());
        let app = InvokeResponse {
            status: 400,
            headers: HeaderMap::new(),
            body: br#"{"error":"x"}"#.to_vec(),
        };
        assert!(!app.is_sidecar_error());
    }
}
