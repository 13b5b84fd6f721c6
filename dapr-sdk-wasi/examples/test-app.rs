//! The SDK integration tests' own app (app id `sdk-test`): the smallest
//! wasi:http component its sidecar can call, so the tests depend on no
//! service of the template. It uses the SDK's app side:
//!
//! | Route | Answer |
//! |---|---|
//! | `GET /healthz` | `{"status":"ok","app":"sdk-test"}` |
//! | `POST /echo` | the body it got |
//! | `GET /dapr/subscribe` | topic `sdk-orders` to `/orders` (dead letters to `sdk-dead`), `sdk-dead` to `/dead` |
//! | `POST /orders` | a CloudEvent with data `{"id", "reply"}`: counts the delivery in state key `orders:<id>`, then answers `reply` (`RETRY` only on the first delivery) |
//! | `POST /dead` | counts the dead letter in state key `dead:<id>` |
//! | `POST /bulk` | a batch of topic `sdk-bulk` (a bulk subscription): counts each entry's `{"id"}` in state key `bulk:<id>`, answers SUCCESS per entry (DROP if malformed) |
//! | `POST /configuration/{store}/{key}` | keeps the update's value in state key `config-update:<key>` |
//!
//! anything else is a JSON 404. Built and precompiled by scripts/test;
//! served by wasm-host with `tests/app-host.toml` (its sidecar only).

#[cfg(target_os = "wasi")]
#[wstd::http_server]
async fn main(
    req: wstd::http::Request<wstd::http::Body>,
) -> Result<wstd::http::Response<wstd::http::Body>, wstd::http::Error> {
    use dapr::pubsub::{Subscription, TopicStatus, subscribe_answer, topic_reply};
    use wstd::http::Method;
    let json = "application/json";
    let path = req.uri().path().to_string();
    Ok(match (req.method().clone(), path.as_str()) {
        (Method::GET, "/healthz") => {
            answer(200, json, br#"{"status":"ok","app":"sdk-test"}"#.to_vec())
        }
        (Method::POST, "/echo") => match dapr::read_limited(req.into_body(), 1 << 20).await {
            Ok(b) => answer(200, "application/octet-stream", b),
            Err(_) => answer(
                413,
                json,
                br#"{"error":"over 1 MiB","code":"payload_too_large"}"#.to_vec(),
            ),
        },
        (Method::GET, "/dapr/subscribe") => {
            let sub = |topic: &str, route: &str, dead: Option<&str>| Subscription {
                pubsubname: "pubsub".into(),
                topic: topic.into(),
                route: route.into(),
                dead_letter_topic: dead.map(Into::into),
                bulk_subscribe: None,
            };
            let bulk = Subscription {
                bulk_subscribe: Some(dapr::pubsub::BulkSubscribe::batches(10, 200)),
                ..sub("sdk-bulk", "/bulk", None)
            };
            answer(
                200,
                json,
                subscribe_answer(&[
                    sub("sdk-orders", "/orders", Some("sdk-dead")),
                    sub("sdk-dead", "/dead", None),
                    bulk,
                ]),
            )
        }
        (Method::POST, "/orders" | "/dead") => {
            let status = match delivered(req, &path).await {
                Ok(status) => status,
                Err(e) => {
                    eprintln!("delivery to {path} not handled: {e}");
                    TopicStatus::Retry
                }
            };
            answer(200, json, topic_reply(status))
        }
        (Method::POST, "/bulk") => match bulk_delivered(req).await {
            Ok(reply) => answer(200, json, reply),
            // No statuses: Dapr delivers the whole batch again.
            Err(e) => answer(500, json, format!(r#"{{"error":"{e}"}}"#).into_bytes()),
        },
        (Method::POST, p) if p.starts_with("/configuration/") => {
            let key = p.rsplit('/').next().unwrap_or_default().to_string();
            match config_update(req, &key).await {
                Ok(()) => answer(200, json, b"{}".to_vec()),
                Err(e) => answer(500, json, format!(r#"{{"error":"{e}"}}"#).into_bytes()),
            }
        }
        _ => answer(
            404,
            json,
            br#"{"error":"no such route","code":"not_found"}"#.to_vec(),
        ),
    })
}

#[cfg(target_os = "wasi")]
fn answer(
    status: u16,
    content_type: &str,
    body: Vec<u8>,
) -> wstd::http::Response<wstd::http::Body> {
    let mut r = wstd::http::Response::new(wstd::http::Body::from(body));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or_default();
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

/// Counts a delivery in the state store and says what to answer.
#[cfg(target_os = "wasi")]
async fn delivered(
    req: wstd::http::Request<wstd::http::Body>,
    path: &str,
) -> dapr::Result<dapr::pubsub::TopicStatus> {
    use dapr::pubsub::{TopicStatus, parse_cloud_event};
    #[derive(serde::Deserialize)]
    struct Order {
        id: String,
        reply: String,
    }
    let body = dapr::read_limited(req.into_body(), 1 << 16).await?;
    let Ok(event) = parse_cloud_event::<Order>(&body) else {
        return Ok(TopicStatus::Drop);
    };
    let dapr = dapr::Client::from_env()?;
    let key = format!("{}:{}", path.trim_start_matches('/'), event.data.id);
    let seen: u32 = dapr.get_state("statestore", &key).await?.unwrap_or(0) + 1;
    dapr.save("statestore", &key, seen).await?;
    Ok(match (path, event.data.reply.as_str()) {
        ("/orders", "RETRY") if seen == 1 => TopicStatus::Retry,
        ("/orders", "DROP") => TopicStatus::Drop,
        _ => TopicStatus::Success,
    })
}

/// Counts each entry of a batch and answers a status per entry.
#[cfg(target_os = "wasi")]
async fn bulk_delivered(req: wstd::http::Request<wstd::http::Body>) -> dapr::Result<Vec<u8>> {
    use dapr::pubsub::{TopicStatus, bulk_reply, parse_bulk_message};
    #[derive(serde::Deserialize)]
    struct Item {
        id: String,
    }
    let body = dapr::read_limited(req.into_body(), 1 << 20).await?;
    let batch = parse_bulk_message(&body)?;
    let dapr = dapr::Client::from_env()?;
    let mut statuses = Vec::new();
    for entry in &batch.entries {
        let status = match entry.cloud_event::<Item>() {
            Ok(event) => {
                let key = format!("bulk:{}", event.data.id);
                let seen: u32 = dapr.get_state("statestore", &key).await?.unwrap_or(0) + 1;
                dapr.save("statestore", &key, seen).await?;
                TopicStatus::Success
            }
            Err(_) => TopicStatus::Drop,
        };
        statuses.push((entry.entry_id.as_str(), status));
    }
    Ok(bulk_reply(statuses))
}

/// Keeps a configuration update's value where the tests can read it.
#[cfg(target_os = "wasi")]
async fn config_update(req: wstd::http::Request<wstd::http::Body>, key: &str) -> dapr::Result<()> {
    let body = dapr::read_limited(req.into_body(), 1 << 16).await?;
    let update = dapr::configuration::parse_update(&body)?;
    let dapr = dapr::Client::from_env()?;
    for (k, item) in update.items {
        if k == key {
            dapr.save("statestore", &format!("config-update:{k}"), &item.value)
                .await?;
        }
    }
    Ok(())
}

#[cfg(not(target_os = "wasi"))]
fn main() {
    eprintln!("test-app is a wasi:http component: build it with --target wasm32-wasip2");
}
