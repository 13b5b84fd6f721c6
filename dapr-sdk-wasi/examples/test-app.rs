//! The SDK integration tests' own app (app id `sdk-test`): the smallest
//! wasi:http component its sidecar can call, so the tests depend on no
//! service of the template. `GET /healthz` answers
//! `{"status":"ok","app":"sdk-test"}`, `POST /echo` answers the body it got,
//! anything else is a JSON 404.
//!
//! Built and precompiled by scripts/test; served by wasm-host with
//! `tests/app-host.toml` (no grants at all).

#[cfg(target_os = "wasi")]
#[wstd::http_server]
async fn main(
    req: wstd::http::Request<wstd::http::Body>,
) -> Result<wstd::http::Response<wstd::http::Body>, wstd::http::Error> {
    use wstd::http::{Body, Method, Response};
    let answer = |status: u16, content_type: &str, body: Vec<u8>| {
        let mut r = Response::new(Body::from(body));
        *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or_default();
        if let Ok(v) = http::HeaderValue::from_str(content_type) {
            r.headers_mut().insert(http::header::CONTENT_TYPE, v);
        }
        r
    };
    let json = "application/json";
    Ok(match (req.method().clone(), req.uri().path()) {
        (Method::GET, "/healthz") => {
            answer(200, json, br#"{"status":"ok","app":"sdk-test"}"#.to_vec())
        }
        (Method::POST, "/echo") => {
            let body = dapr::read_limited(req.into_body(), 1 << 20).await;
            match body {
                Ok(b) => answer(200, "application/octet-stream", b),
                Err(_) => answer(
                    413,
                    json,
                    br#"{"error":"over 1 MiB","code":"payload_too_large"}"#.to_vec(),
                ),
            }
        }
        _ => answer(
            404,
            json,
            br#"{"error":"no such route","code":"not_found"}"#.to_vec(),
        ),
    })
}

#[cfg(not(target_os = "wasi"))]
fn main() {
    eprintln!("test-app is a wasi:http component: build it with --target wasm32-wasip2");
}
