//! The request path both image services share.

use super::{admit, caller, new_event, publish_event, read_body};
use crate::ApiError;
use crate::ratelimit::RatePolicy;
use dapr::Client;
use http::HeaderMap;
use wstd::http::Body;

/// An image request that passed the client's rate limit and whose body was
/// read within the limits: what both image services start from.
pub struct ImageRequest {
    /// The request's headers.
    pub headers: HeaderMap,
    /// The body (the image bytes).
    pub body: Vec<u8>,
    /// The limits it was read with, for decoding.
    pub limits: crate::ImageLimits,
    dapr: Client,
}

impl ImageRequest {
    /// Rate-limits the caller (the request is counted), then reads the body
    /// within `MAX_BODY_BYTES`.
    pub async fn accept(req: wstd::http::Request<Body>) -> Result<Self, ApiError> {
        let limits = crate::ImageLimits::from_env();
        let policy = RatePolicy::from_lookup(|k| std::env::var(k).ok());
        let (parts, body) = req.into_parts();
        let dapr = Client::from_env().map_err(|e| ApiError::unavailable("the Dapr sidecar", e))?;
        admit(&dapr, &caller(&parts.headers), policy).await?;
        let body = read_body(&parts.headers, body, limits.max_body_bytes).await?;
        Ok(Self {
            headers: parts.headers,
            body,
            limits,
            dapr,
        })
    }

    /// The Accept header, if readable.
    pub fn accept_header(&self) -> Option<&str> {
        self.headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
    }

    /// For a success, publishes its `op_type` event through the outbox (see
    /// [`publish_event`]). Call it with the work's outcome, before answering:
    /// a success is only answered once its event is recorded (else 503).
    pub async fn finish<T, E: From<ApiError>>(
        self,
        op_type: &str,
        outcome: Result<T, E>,
    ) -> Result<T, E> {
        if outcome.is_ok() {
            let event = new_event(op_type, self.body.len() as u64);
            // The request's trace (wasm-host's span), for the outbox.
            let trace = self
                .headers
                .get("traceparent")
                .and_then(|v| v.to_str().ok());
            publish_event(&self.dapr, &event, trace).await?;
        }
        outcome
    }
}
