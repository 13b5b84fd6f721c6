//! The app side of pub/sub in a wasi:http component: answer Dapr's
//! `GET /dapr/subscribe`, take CloudEvents on the route, reply SUCCESS,
//! RETRY or DROP.
//!
//! ```sh
//! cargo build --release --target wasm32-wasip2 -p dapr-sdk-wasi --example subscriber
//! ```

#[cfg(target_os = "wasi")]
#[wstd::http_server]
async fn main(
    req: wstd::http::Request<wstd::http::Body>,
) -> Result<wstd::http::Response<wstd::http::Body>, wstd::http::Error> {
    use dapr::pubsub::{
        Subscription, TopicStatus, parse_cloud_event, subscribe_answer, topic_reply,
    };
    let json = |body: Vec<u8>| {
        let mut r = wstd::http::Response::new(body.into());
        r.headers_mut().insert(
            "content-type",
            http::HeaderValue::from_static("application/json"),
        );
        r
    };
    match req.uri().path() {
        "/dapr/subscribe" => Ok(json(subscribe_answer(&[Subscription {
            pubsubname: "pubsub".into(),
            topic: "orders".into(),
            route: "/orders".into(),
            dead_letter_topic: None,
            bulk_subscribe: None,
        }]))),
        "/orders" => {
            let body = req.into_body().contents().await?.to_vec();
            let status = match parse_cloud_event::<serde_json::Value>(&body) {
                Ok(event) if event.data.get("id").is_some() => TopicStatus::Success,
                Ok(_) => TopicStatus::Drop, // malformed order: never redeliver
                Err(_) => TopicStatus::Drop,
            };
            Ok(json(topic_reply(status)))
        }
        _ => Ok(json(b"{}".to_vec())),
    }
}

#[cfg(not(target_os = "wasi"))]
fn main() {}
