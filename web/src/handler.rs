//! Static files and the API gateway: HTTP in, Dapr service invocation out.

use dapr::Client;
use http::HeaderValue;
use service_common::service::{bytes_response, error_response, json_response, read_body};
use web::{
    ApiError, Route, forward_request_headers, forward_response_headers, max_upload_bytes,
    sidecar_refusal, with_query,
};
use wstd::http::{Body, Request, Response};

pub async fn route(req: Request<Body>) -> Response<Body> {
    let result = match web::route(req.method(), req.uri().path()) {
        Route::Asset(a) => {
            let mut r = bytes_response(200, a.content_type, a.body.to_vec());
            r.headers_mut().insert(
                http::header::CACHE_CONTROL,
                HeaderValue::from_static("no-cache"),
            );
            Ok(r)
        }
        Route::Health => Ok(json_response(
            200,
            &serde_json::json!({"status": "ok", "app": "web"}),
        )),
        Route::Api {
            app_id,
            method,
            path,
        } => forward(req, app_id, method, path).await,
        Route::MethodNotAllowed => Err(ApiError::MethodNotAllowed),
        Route::NotFound => Err(ApiError::NotFound),
    };
    result.unwrap_or_else(|e| error_response(&e))
}

async fn forward(
    req: Request<Body>,
    app_id: &'static str,
    method: http::Method,
    path: &str,
) -> Result<Response<Body>, ApiError> {
    let target = with_query(path, req.uri().query());
    let (parts, body) = req.into_parts();
    let limit = max_upload_bytes(|k| std::env::var(k).ok());
    let bytes = read_body(&parts.headers, body, limit).await?;
    let dapr = Client::from_env().map_err(|e| ApiError::unavailable("the Dapr sidecar", e))?;
    let answer = dapr
        .invoke(
            app_id,
            method,
            &target,
            forward_request_headers(&parts.headers),
            bytes,
        )
        .await
        .map_err(|e| ApiError::unavailable(app_id, format!("invoking: {e}")))?;
    if let Some(e) = sidecar_refusal(answer.status, &answer.headers, limit) {
        return Err(e);
    }
    if answer.is_sidecar_error() {
        let e = dapr::Error::from_response(answer.status, &answer.body);
        return Err(ApiError::unavailable(app_id, format!("invoking: {e}")));
    }
    // Status and body unchanged, so the page sees the services' own errors.
    let mut r = bytes_response(answer.status, "application/octet-stream", answer.body);
    for (name, value) in forward_response_headers(&answer.headers) {
        r.headers_mut().insert(name, value);
    }
    Ok(r)
}
