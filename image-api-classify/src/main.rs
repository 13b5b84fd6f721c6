//! The wasi:http entry point; routes in `handler.rs`, inference in `nn.rs`,
//! the pure core in `lib.rs`.

#[cfg(target_os = "wasi")]
mod handler;
#[cfg(target_os = "wasi")]
mod nn;

service_common::serve!(handler::route);
