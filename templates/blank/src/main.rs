//! The wasi:http entry point; routes in `handler.rs`, the pure core in `lib.rs`.

#[cfg(target_os = "wasi")]
mod handler;

service_common::serve!(handler::route);
