//! The wasi:http entry point; routes in `handler.rs`, inference in `nn.rs`,
//! the pure core in `lib.rs`.

#[cfg(target_os = "wasi")]
mod handler;
#[cfg(target_os = "wasi")]
mod nn;

#[cfg(target_os = "wasi")]
#[wstd::http_server]
async fn main(
    req: wstd::http::Request<wstd::http::Body>,
) -> Result<wstd::http::Response<wstd::http::Body>, wstd::http::Error> {
    Ok(handler::route(req).await)
}

#[cfg(not(target_os = "wasi"))]
fn main() {
    eprintln!("image-api-classify is a wasi:http component: build it with --target wasm32-wasip2");
    std::process::exit(2);
}
