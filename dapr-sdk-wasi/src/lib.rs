//! A typed [Dapr](https://dapr.io) HTTP client for WASI 0.2 components.
//!
//! Built on [`wstd`]'s wasi:http client, so it runs inside `wasmtime serve`
//! and any other wasi:http host. Request encoding and response decoding are
//! plain functions ([`state`], [`invoke`], [`secrets`]) that build and test
//! natively; only [`Client`] needs a WASI target.
//!
//! | Building block | Calls |
//! |---|---|
//! | Service invocation | [`Client::invoke`], [`Client::invoke_json`] |
//! | State | [`Client::get_state`], [`Client::get_state_entry`], [`Client::get_bulk_state`], [`Client::save_state`], [`Client::delete_state`] |
//! | Secrets | [`Client::get_secret`] |
//! | Health | [`Client::healthz`], [`Client::wait_until_ready`] |
//!
//! ```
//! # #[cfg(target_os = "wasi")]
//! # async fn demo() -> dapr::Result<()> {
//! let dapr = dapr::Client::from_env()?; // DAPR_HTTP_PORT, DAPR_API_TOKEN
//! let hits: Option<u32> = dapr.get_state("statestore", "hits").await?; // missing key: None
//! dapr.save("statestore", "hits", hits.unwrap_or(0) + 1).await?;
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod config;
mod error;
pub mod invoke;
pub mod request;
pub mod secrets;
pub mod state;

#[cfg(target_os = "wasi")]
mod client;
#[cfg(target_os = "wasi")]
mod transport;

#[cfg(target_os = "wasi")]
pub use client::{Client, ClientBuilder, RawResponse, read_limited};
pub use config::Config;
pub use error::{Error, Result};
pub use invoke::InvokeResponse;
pub use secrets::Secret;
pub use state::{Concurrency, Consistency, ETag, SaveItem, StateEntry, StateOptions};
