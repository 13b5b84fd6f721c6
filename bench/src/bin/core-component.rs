//! The grayscale core alone as a wasi:http component (no Dapr calls), so
//! `scripts/bench` compares runtimes on exactly the same work as the
//! native server.

#[cfg(target_os = "wasi")]
#[wstd::http_server]
async fn main(
    req: wstd::http::Request<wstd::http::Body>,
) -> Result<wstd::http::Response<wstd::http::Body>, wstd::http::Error> {
    use image_api_grayscale::{ImageLimits, grayscale};
    use service_common::service::{bytes_response, error_response, read_body};
    let limits = ImageLimits::default();
    let (parts, body) = req.into_parts();
    let result = match read_body(&parts.headers, body, limits.max_body_bytes).await {
        Ok(bytes) => grayscale(&bytes, &limits),
        Err(e) => Err(e.into()),
    };
    Ok(match result {
        Ok(out) => bytes_response(200, out.content_type(), out.bytes),
        Err(e) => error_response(&e),
    })
}

#[cfg(not(target_os = "wasi"))]
fn main() {
    eprintln!("core-component is a wasi:http component: build it with --target wasm32-wasip2");
}
