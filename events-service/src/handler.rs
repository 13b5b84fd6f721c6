//! Routes: HTTP in, the pure core and the database, JSON out.

use crate::db;
use dapr::Client;
use dapr::pubsub::{TopicStatus, topic_reply};
use events_service::{
    ApiError, DB_URL_SECRET, DELIVERY_ROUTE, EventsError, MAX_BODY_BYTES, Problem, SECRET_STORE,
    delivery_status, parse_delivery, parse_new_event, parse_page, subscriptions,
};
use http::Method;
use service_common::routes::{Route, dispatch};
use service_common::service::{bytes_response, error_response, json_response, read_body};
use wstd::http::{Body, Request, Response};

#[derive(Clone, Copy)]
enum Op {
    Health,
    Init,
    Create,
    List,
    Subscribe,
    Deliver,
}

/// Every route, once (`/create_event` is the original template's name).
const ROUTES: &[Route<Op>] = &[
    (Method::GET, &["/healthz", "/health"], Op::Health),
    (Method::GET, &["/init"], Op::Init),
    (Method::POST, &["/events", "/create_event"], Op::Create),
    (Method::GET, &["/events"], Op::List),
    (Method::GET, &["/dapr/subscribe"], Op::Subscribe),
    (Method::POST, &[DELIVERY_ROUTE], Op::Deliver),
];

pub async fn route(req: Request<Body>) -> Response<Body> {
    let result = match dispatch(ROUTES, req.method(), req.uri().path()) {
        Ok(Op::Health) => Ok(json_response(
            200,
            &serde_json::json!({"status": "ok", "app": "events-service"}),
        )),
        Ok(Op::Init) => init().await,
        // Writes come only through Dapr (the image services' recording).
        Ok(Op::Create) => match from_dapr(&req) {
            Ok(()) => create(req).await,
            Err(e) => Err(e.into()),
        },
        Ok(Op::List) => list(req.uri().query()).await,
        Ok(Op::Subscribe) => Ok(bytes_response(200, "application/json", subscriptions())),
        // Deliveries come from this app's own sidecar only.
        Ok(Op::Deliver) => match from_dapr(&req) {
            Ok(()) => Ok(deliver(req).await),
            Err(e) => Err(e.into()),
        },
        Err(e) => Err(e.into()),
    };
    result.unwrap_or_else(|e| error_response(&e))
}

/// Accepts only requests that carry this app's sidecar token.
fn from_dapr(req: &Request<Body>) -> Result<(), ApiError> {
    let expected = std::env::var("APP_API_TOKEN").ok();
    if expected.is_none() {
        eprintln!("APP_API_TOKEN is not set: refusing every write (run with scripts/run)");
    }
    let presented = req
        .headers()
        .get(service_common::app_token::HEADER)
        .map(|v| v.as_bytes());
    service_common::app_token::check(expected.as_deref(), presented)
}

/// Reads the database URL from the secret store the first time it is needed.
async fn ensure_db() -> Result<(), ApiError> {
    if db::is_configured() {
        return Ok(());
    }
    let dapr = Client::from_env().map_err(|e| ApiError::unavailable("the Dapr sidecar", e))?;
    let secret = dapr
        .get_secret(SECRET_STORE, DB_URL_SECRET)
        .await
        .map_err(|e| {
            ApiError::unavailable("the secret store", format!("reading {DB_URL_SECRET}: {e}"))
        })?;
    let url = secret.get(DB_URL_SECRET).ok_or_else(|| {
        ApiError::unavailable(
            "the database",
            format!("secret {DB_URL_SECRET} has no value named {DB_URL_SECRET}"),
        )
    })?;
    db::configure(url)
}

async fn init() -> Result<Response<Body>, EventsError> {
    ensure_db().await?;
    db::init()?;
    Ok(json_response(200, &serde_json::json!({"status": true})))
}

async fn create(req: Request<Body>) -> Result<Response<Body>, EventsError> {
    let (parts, body) = req.into_parts();
    let bytes = read_body(&parts.headers, body, MAX_BODY_BYTES).await?;
    let event = parse_new_event(&bytes)?;
    ensure_db().await?;
    Ok(json_response(200, &db::insert(event)?))
}

/// One message of topic `events`: stored once (deduplicated by event id),
/// and answered SUCCESS, RETRY or DROP (see [`delivery_status`]).
async fn deliver(req: Request<Body>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let status = match read_body(&parts.headers, body, MAX_BODY_BYTES).await {
        Ok(bytes) => match parse_delivery(&bytes) {
            Ok(event) => {
                let stored = match ensure_db().await {
                    Ok(()) => db::insert(event),
                    Err(e) => Err(e.into()),
                };
                if let Err(e) = &stored {
                    eprintln!(
                        "delivered event not stored ({}): {}",
                        e.code(),
                        e.cause().unwrap_or("")
                    );
                }
                delivery_status(&stored)
            }
            Err(e) => {
                eprintln!("dropping a malformed message: {}", e.message());
                TopicStatus::Drop
            }
        },
        Err(e) if e.status() == 413 => {
            eprintln!("dropping a message over {MAX_BODY_BYTES} bytes");
            TopicStatus::Drop
        }
        Err(e) => {
            eprintln!("delivery not read: {}", e.cause().unwrap_or(""));
            TopicStatus::Retry
        }
    };
    bytes_response(200, "application/json", topic_reply(status))
}

async fn list(query: Option<&str>) -> Result<Response<Body>, EventsError> {
    let page = parse_page(query)?;
    ensure_db().await?;
    Ok(json_response(200, &db::list(page)?))
}
