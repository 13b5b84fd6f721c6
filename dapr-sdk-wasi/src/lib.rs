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
//! | State | [`Client::get_state`], [`Client::get_state_entry`], [`Client::get_bulk_state`], [`Client::save_state`], [`Client::delete_state`], [`Client::transact_state`], [`Client::query_state`] |
//! | Pub/sub | [`Client::publish`], [`Client::publish_json`], [`Client::bulk_publish`]; app side in [`pubsub`] |
//! | Bindings | [`Client::invoke_binding`]; input bindings in [`bindings`] |
//! | Secrets | [`Client::get_secret`], [`Client::get_bulk_secrets`] |
//! | Configuration | [`Client::get_configuration`], [`Client::subscribe_configuration`], [`Client::unsubscribe_configuration`]; updates in [`configuration`] |
//! | Distributed lock | [`Client::try_lock`], [`Client::unlock`] |
//! | Cryptography (alpha) | [`Client::encrypt`], [`Client::decrypt`] |
//! | Actors | [`Client::invoke_actor`], [`Client::invoke_actor_json`], [`Client::get_actor_state`], [`Client::transact_actor_state`], timers and reminders; hosting in [`actors`] |
//! | Conversation (alpha2) | [`Client::converse`] |
//! | Metadata | [`Client::metadata`], [`Client::set_metadata`] |
//! | Health | [`Client::healthz`], [`Client::healthz_outbound`], [`Client::wait_until_ready`], [`Client::shutdown`] |
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
// The docs describe the WASI build (`cargo doc --target wasm32-wasip2`);
// natively `Client` does not exist and links to it cannot resolve.
#![cfg_attr(not(target_os = "wasi"), allow(rustdoc::broken_intra_doc_links))]

pub mod actors;
pub mod bindings;
pub mod config;
pub mod configuration;
pub mod conversation;
pub mod crypto;
mod error;
pub mod invoke;
pub mod lock;
pub mod metadata;
pub mod pubsub;
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
