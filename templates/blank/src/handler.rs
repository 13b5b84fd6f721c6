//! Routes: HTTP in, the pure core, JSON out.

use http::Method;
use service_common::ApiError;
use service_common::routes::{Route, dispatch};
use service_common::service::{error_response, json_response};
use service_template::{APP_ID, greet};
use wstd::http::{Body, Request, Response};

#[derive(Clone, Copy)]
enum Op {
    Health,
    Greet,
}

/// Every route, once (405 and 404 come from this table too).
const ROUTES: &[Route<Op>] = &[
    (Method::GET, &["/healthz"], Op::Health),
    (Method::GET, &["/service-template"], Op::Greet),
];

pub async fn route(req: Request<Body>) -> Response<Body> {
    let result: Result<_, ApiError> = match dispatch(ROUTES, req.method(), req.uri().path()) {
        Ok(Op::Health) => Ok(json_response(
            200,
            &serde_json::json!({"status": "ok", "app": APP_ID}),
        )),
        Ok(Op::Greet) => greet(req.uri().query()).map(|g| json_response(200, &g)),
        Err(e) => Err(e),
    };
    result.unwrap_or_else(|e| error_response(&e))
}
