//! What the services share (image-api-grayscale, image-api-classify, events-service, web).
//!
//! The pure parts ([`accept`], [`app_token`], [`decode`], [`ratelimit`], [`event`], [`client_addr`],
//! [`limits`], [`error`]) are plain functions tested natively. The
//! [`service`] module (WASI only) does the I/O around them: bounded body
//! reads, the per-client rate limit in the Dapr state store, and event
//! recording through an outbox.

pub mod accept;
pub mod app_token;
pub mod client_addr;
pub mod decode;
pub mod error;
pub mod event;
pub mod limits;
pub mod ratelimit;
pub mod routes;

#[cfg(target_os = "wasi")]
pub mod service;

pub use client_addr::client_address;
pub use error::{ApiError, CodeDoc, Problem, check_readme_table, code_table};
pub use limits::ImageLimits;
pub use ratelimit::RatePolicy;
