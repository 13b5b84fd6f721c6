//! The wasi:http entry point; routes and forwarding in `handler.rs`, the
//! pure part in `lib.rs`.

#[cfg(target_os = "wasi")]
mod handler;

service_common::serve!(handler::route);
