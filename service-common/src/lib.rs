//! What the services share (image-api-grayscale, image-api-classify, events-service, web).
//!
//! The pure parts ([`accept`], [`app_token`], [`ratelimit`], [`event`], [`client_addr`],
//! [`limits`], [`error`]) are plain functions tested natively; `decode`,
//! `png_meta` and `service::ImageRequest` only with the `images` feature. The
//! [`service`] module (WASI only) does the I/O around them: bounded body
//! reads, the client's record in the Dapr state store (the per-client rate
//! limit), and each success's event, published through Dapr's outbox.

pub mod accept;
pub mod app_token;
pub mod client_addr;
#[cfg(feature = "images")]
pub mod decode;
pub mod error;
pub mod event;
pub mod limits;
#[cfg(feature = "images")]
pub mod png_meta;
pub mod ratelimit;
pub mod routes;
pub mod span;

#[cfg(target_os = "wasi")]
pub mod service;

pub use client_addr::client_address;
pub use error::{ApiError, CodeDoc, Problem, check_readme_table, code_table};
pub use limits::ImageLimits;
pub use ratelimit::RatePolicy;

/// A service's wasi:http entry point, from its route function
/// (`async fn route(Request<Body>) -> Response<Body>`), so `main.rs` is:
///
/// ```ignore
/// #[cfg(target_os = "wasi")]
/// mod handler;
///
/// service_common::serve!(handler::route);
/// ```
///
/// Built for anything but WASI, `main` says how to build it instead.
#[macro_export]
macro_rules! serve {
    ($route:path) => {
        #[cfg(target_os = "wasi")]
        #[wstd::http_server]
        async fn main(
            req: wstd::http::Request<wstd::http::Body>,
        ) -> ::core::result::Result<wstd::http::Response<wstd::http::Body>, wstd::http::Error> {
            Ok($route(req).await)
        }

        #[cfg(not(target_os = "wasi"))]
        fn main() {
            eprintln!(
                "{} is a wasi:http component: build it with --target wasm32-wasip2",
                env!("CARGO_PKG_NAME")
            );
            ::std::process::exit(2);
        }
    };
}
