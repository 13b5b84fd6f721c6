//! The wasi:http entry point; routes and forwarding in `handler.rs`, the
//! pure part in `lib.rs`.

#[cfg(target_os = "wasi")]
mod handler;

#[cfg(target_os = "wasi")]
#[wstd::http_server]
async fn main(
    req: wstd::http::Request<wstd::http::Body>,
) -> Result<wstd::http::Response<wstd::http::Body>, wstd::http::Error> {
    Ok(handler::route(req).await)
}

#[cfg(not(target_os = "wasi"))]
fn main() {
    eprintln!("web is a wasi:http component: build it with --target wasm32-wasip2");
    std::process::exit(2);
}
