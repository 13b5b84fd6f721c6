//! The request path both image services share.

use super::{caller, enforce_rate_limit, flush_outbox, read_body, record_event};
use crate::ApiError;
use crate::ratelimit::RatePolicy;
use dapr::Client;
use http::HeaderMap;
use std::time::Duration;
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
    /// Rate-limits the caller, then reads the body within `MAX_BODY_BYTES`.
    pub async fn accept(req: wstd::http::Request<Body>) -> Result<Self, ApiError> {
        let limits = crate::ImageLimits::from_env();
        let policy = RatePolicy::from_lookup(|k| std::env::var(k).ok());
        let (parts, body) = req.into_parts();
        let dapr = Client::from_env().map_err(|e| ApiError::unavailable("the Dapr sidecar", e))?;
        enforce_rate_limit(&dapr, &caller(&parts.headers), policy).await?;
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

    /// Records the success as an `op_type` event: into the outbox before the
    /// caller answers, delivered in the background after (see [`record_event`]).
    pub async fn record_success(self, op_type: &str) {
        let recorded = record_event(&self.dapr, op_type, self.body.len() as u64).await;
        let dapr = self.dapr;
        wstd::runtime::spawn(async move {
            flush_outbox(&dapr, Some(recorded), Duration::from_secs(30)).await;
        })
        .detach();
    }
}
