//! An actor host: actor type `Counter`, one counter per actor id, served by
//! wasm-host beside its own sidecar (app id `sdk-actors` in the SDK tests,
//! `tests/actor-host.toml`). Dapr runs one call per actor at a time, so
//! `increment` reads, adds and writes with no ETag and loses no update
//! under concurrent callers; the SDK's integration tests (`tests/actors.rs`)
//! check that, and the timer and deactivation callbacks.
//!
//! | Call | Does |
//! |---|---|
//! | `GET /dapr/config` | hosts `Counter`; idle timeout from `ACTOR_IDLE_TIMEOUT` (Dapr's default if unset) |
//! | method `increment` (body: a number, default 1) | adds it to state `count`, answers the new count |
//! | method `get` | answers `count` |
//! | method `start-ticking` / `stop-ticking` | registers / removes timer `tick` (every 300 ms) |
//! | method `ticks` | answers how often `tick` fired |
//! | method `remind-me` | registers reminder `wake` in 1 s (needs Dapr's scheduler: here an error, passed on) |
//! | timer `tick` | adds 1 to state `ticks` |
//! | deactivation | adds 1 to `deactivated:<id>` in the plain state store |
//! | `GET /deactivations/<id>` | answers that count (a plain route, by service invocation) |
//!
//! Anything else is a JSON 404, which Dapr reports to an actor's caller as
//! an unknown method.

#[cfg(target_os = "wasi")]
const TYPE: &str = "Counter";
/// The actor state store (`actorStateStore: "true"`), for plain state too.
#[cfg(target_os = "wasi")]
const STORE: &str = "actorstore";

#[cfg(target_os = "wasi")]
#[wstd::http_server]
async fn main(
    req: wstd::http::Request<wstd::http::Body>,
) -> Result<wstd::http::Response<wstd::http::Body>, wstd::http::Error> {
    use dapr::actors::{ActorConfig, config_answer, route};
    use wstd::http::Method;
    let path = req.uri().path().to_string();
    if let Some(call) = route(req.method(), &path) {
        let body = match dapr::read_limited(req.into_body(), 1 << 16).await {
            Ok(b) => b,
            Err(e) => return Ok(error(413, &e.to_string())),
        };
        return Ok(match on_actor(call, &body).await {
            Ok(Some(answer)) => json(200, answer),
            Ok(None) => error(404, "no such actor type or method"),
            Err(e) => error(500, &e.to_string()),
        });
    }
    Ok(match (req.method().clone(), path.as_str()) {
        (Method::GET, "/healthz") => json(200, br#"{"status":"ok"}"#.to_vec()),
        (Method::GET, "/dapr/config") => {
            let config = ActorConfig {
                actor_idle_timeout: std::env::var("ACTOR_IDLE_TIMEOUT").ok(),
                ..ActorConfig::hosting([TYPE])
            };
            json(200, config_answer(&config))
        }
        (Method::GET, p) if p.starts_with("/deactivations/") => {
            let id = p.trim_start_matches("/deactivations/");
            match deactivations(id).await {
                Ok(n) => json(200, n.to_string().into_bytes()),
                Err(e) => error(500, &e.to_string()),
            }
        }
        _ => error(404, "no such route"),
    })
}

/// One turn of a `Counter`: `None` for a type or method it does not have.
#[cfg(target_os = "wasi")]
async fn on_actor(call: dapr::actors::ActorCall, body: &[u8]) -> dapr::Result<Option<Vec<u8>>> {
    use dapr::actors::{ActorCall, Timer};
    let dapr = dapr::Client::from_env()?;
    let number = |n: u64| Ok(Some(n.to_string().into_bytes()));
    match call {
        ActorCall::Method { actor, method } if actor.actor_type == TYPE => {
            let id = actor.id.as_str();
            match method.as_str() {
                "increment" => {
                    let by: u64 = if body.is_empty() {
                        1
                    } else {
                        serde_json::from_slice(body).map_err(dapr::Error::Decode)?
                    };
                    number(add(&dapr, id, "count", by).await?)
                }
                "get" => number(read(&dapr, id, "count").await?),
                "ticks" => number(read(&dapr, id, "ticks").await?),
                "start-ticking" => {
                    let every = Timer {
                        due_time: "300ms".into(),
                        period: "300ms".into(),
                        ..Timer::default()
                    };
                    dapr.register_actor_timer(TYPE, id, "tick", &every).await?;
                    Ok(Some(b"{}".to_vec()))
                }
                "remind-me" => {
                    let wake = dapr::actors::Reminder {
                        due_time: "1s".into(),
                        ..Default::default()
                    };
                    dapr.register_actor_reminder(TYPE, id, "wake", &wake)
                        .await?;
                    Ok(Some(b"{}".to_vec()))
                }
                "stop-ticking" => {
                    dapr.unregister_actor_timer(TYPE, id, "tick").await?;
                    Ok(Some(b"{}".to_vec()))
                }
                _ => Ok(None),
            }
        }
        ActorCall::Timer { actor, name } if actor.actor_type == TYPE && name == "tick" => {
            number(add(&dapr, &actor.id, "ticks", 1).await?)
        }
        ActorCall::Deactivate { actor } if actor.actor_type == TYPE => {
            let key = format!("deactivated:{}", actor.id);
            let n: u64 = dapr.get_state(STORE, &key).await?.unwrap_or(0);
            dapr.save(STORE, &key, n + 1).await?;
            Ok(Some(b"{}".to_vec()))
        }
        _ => Ok(None),
    }
}

/// Adds `by` to the actor's `key`: a plain read and write, safe because
/// the actor has this turn to itself.
#[cfg(target_os = "wasi")]
async fn add(dapr: &dapr::Client, id: &str, key: &str, by: u64) -> dapr::Result<u64> {
    let n = read(dapr, id, key).await?.saturating_add(by);
    dapr.transact_actor_state(TYPE, id, &[dapr::actors::StateOp::upsert(key, &n)?])
        .await?;
    Ok(n)
}

#[cfg(target_os = "wasi")]
async fn read(dapr: &dapr::Client, id: &str, key: &str) -> dapr::Result<u64> {
    Ok(dapr.get_actor_state(TYPE, id, key).await?.unwrap_or(0))
}

#[cfg(target_os = "wasi")]
async fn deactivations(id: &str) -> dapr::Result<u64> {
    let dapr = dapr::Client::from_env()?;
    Ok(dapr
        .get_state(STORE, &format!("deactivated:{id}"))
        .await?
        .unwrap_or(0))
}

#[cfg(target_os = "wasi")]
fn json(status: u16, body: Vec<u8>) -> wstd::http::Response<wstd::http::Body> {
    let mut r = wstd::http::Response::new(wstd::http::Body::from(body));
    *r.status_mut() = http::StatusCode::from_u16(status).unwrap_or_default();
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

#[cfg(target_os = "wasi")]
fn error(status: u16, message: &str) -> wstd::http::Response<wstd::http::Body> {
    json(
        status,
        serde_json::json!({ "error": message })
            .to_string()
            .into_bytes(),
    )
}

#[cfg(not(target_os = "wasi"))]
fn main() {
    eprintln!("actor-counter is a wasi:http component: build it with --target wasm32-wasip2");
}
