//! web: a placeholder that answers health until its issue lands.

#[cfg(target_os = "wasi")]
#[wstd::http_server]
async fn main(
    req: wstd::http::Request<wstd::http::Body>,
) -> Result<wstd::http::Response<wstd::http::Body>, wstd::http::Error> {
    use service_common::ApiError;
    use service_common::service::{error_response, json_response};
    Ok(match (req.method(), req.uri().path()) {
        (&http::Method::GET, "/healthz" | "/health") => {
            json_response(200, &serde_json::json!({"status": "ok", "app": "web"}))
        }
        _ => error_response(&ApiError::new(
            501,
            "not_implemented",
            "web is not implemented yet",
        )),
    })
}

#[cfg(not(target_os = "wasi"))]
fn main() {
    eprintln!("web is a wasi:http component: build it with --target wasm32-wasip2");
    std::process::exit(2);
}
