//! Pub/sub: publishing (CloudEvent or raw, single or bulk) and the app side
//! (the `/dapr/subscribe` answer, CloudEvent parsing, delivery replies).

use crate::request::{DaprRequest, non_empty, path};
use crate::{Error, Result};
use http::Method;
use serde::{Deserialize, Serialize};

/// How a message is wrapped on the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// Dapr wraps the data in a CloudEvent (the default).
    CloudEvent,
    /// The bytes go to the broker as they are (`metadata.rawPayload=true`).
    Raw,
}

/// `POST /v1.0/publish/{pubsub}/{topic}` with data of `content_type`.
pub fn publish_request(
    pubsub: &str,
    topic: &str,
    data: Vec<u8>,
    content_type: &str,
    payload: Payload,
) -> Result<DaprRequest> {
    non_empty("pubsub name", pubsub)?;
    non_empty("topic", topic)?;
    let query = match payload {
        Payload::Raw => vec![("metadata.rawPayload", "true".to_string())],
        Payload::CloudEvent => vec![],
    };
    let mut req = DaprRequest::new(
        Method::POST,
        path("/v1.0/publish", &[pubsub, topic], &query),
    )
    .header("content-type", content_type)?;
    req.body = data;
    Ok(req)
}

/// One entry of a bulk publish.
#[derive(Debug, Clone, Serialize)]
pub struct BulkEntry<T> {
    /// Unique id of the entry within the request.
    #[serde(rename = "entryId")]
    pub entry_id: String,
    /// The event.
    pub event: T,
    /// Its content type (`application/json` for JSON values).
    #[serde(rename = "contentType")]
    pub content_type: String,
}

/// `POST /v1.0-alpha1/publish/bulk/{pubsub}/{topic}`.
pub fn bulk_publish_request<T: Serialize>(
    pubsub: &str,
    topic: &str,
    entries: &[BulkEntry<T>],
) -> Result<DaprRequest> {
    non_empty("pubsub name", pubsub)?;
    non_empty("topic", topic)?;
    DaprRequest::new(
        Method::POST,
        path("/v1.0-alpha1/publish/bulk", &[pubsub, topic], &[]),
    )
    .json(entries)
}

/// Entries a bulk publish could not publish.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct BulkPublishResponse {
    /// The failed entries, empty when all were published.
    #[serde(rename = "failedEntries", default)]
    pub failed_entries: Vec<FailedEntry>,
}

/// A bulk entry that failed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FailedEntry {
    /// The entry's id.
    #[serde(rename = "entryId")]
    pub entry_id: String,
    /// Why.
    #[serde(default)]
    pub error: String,
}

/// Decodes a bulk publish answer (204 or 200 with failures, 500 with failures).
pub fn decode_bulk_publish(status: u16, body: &[u8]) -> Result<BulkPublishResponse> {
    match status {
        204 => Ok(BulkPublishResponse::default()),
        200 | 500 if !body.is_empty() => {
            let r: BulkPublishResponse = serde_json::from_slice(body).map_err(Error::Decode)?;
            if r.failed_entries.is_empty() && status == 500 {
                Err(Error::from_response(status, body))
            } else {
                Ok(r)
            }
        }
        200 => Ok(BulkPublishResponse::default()),
        _ => Err(Error::from_response(status, body)),
    }
}

/// One entry of the app's `GET /dapr/subscribe` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subscription {
    /// The pubsub component.
    pub pubsubname: String,
    /// The topic.
    pub topic: String,
    /// The app route Dapr POSTs each message to.
    pub route: String,
    /// Dead-letter topic, if any.
    #[serde(rename = "deadLetterTopic", skip_serializing_if = "Option::is_none")]
    pub dead_letter_topic: Option<String>,
}

/// The JSON body for `GET /dapr/subscribe`.
pub fn subscribe_answer(subs: &[Subscription]) -> Vec<u8> {
    serde_json::to_vec(subs).unwrap_or_else(|_| b"[]".to_vec())
}

/// A CloudEvent as Dapr delivers it to the app.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CloudEvent<T> {
    /// Event id.
    pub id: String,
    /// Producer (the publishing app id).
    #[serde(default)]
    pub source: String,
    /// Event type.
    #[serde(rename = "type", default)]
    pub ty: String,
    /// The topic.
    #[serde(default)]
    pub topic: String,
    /// The pubsub component.
    #[serde(default)]
    pub pubsubname: String,
    /// Content type of `data`.
    #[serde(default)]
    pub datacontenttype: String,
    /// The payload.
    pub data: T,
}

/// Parses a delivered CloudEvent with a typed payload.
pub fn parse_cloud_event<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<CloudEvent<T>> {
    serde_json::from_slice(body).map_err(Error::Decode)
}

/// What the app tells Dapr about a delivered message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TopicStatus {
    /// Processed; do not redeliver.
    Success,
    /// Failed; redeliver later.
    Retry,
    /// Failed; never redeliver (dead-letter if configured).
    Drop,
}

/// The JSON body (`{"status": "SUCCESS"}`) for a delivery reply.
pub fn topic_reply(status: TopicStatus) -> Vec<u8> {
    #[derive(Serialize)]
    struct Reply {
        status: TopicStatus,
    }
    serde_json::to_vec(&Reply { status }).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn publish_paths() {
        let r = publish_request(
            "ps",
            "orders/new",
            b"{}".to_vec(),
            "application/json",
            Payload::CloudEvent,
        )
        .expect("req");
        assert_eq!(r.path_and_query, "/v1.0/publish/ps/orders%2Fnew");
        let r = publish_request("ps", "t", b"x".to_vec(), "text/plain", Payload::Raw).expect("req");
        assert_eq!(
            r.path_and_query,
            "/v1.0/publish/ps/t?metadata.rawPayload=true"
        );
        assert_eq!(
            r.headers.get("content-type").map(|v| v.as_bytes()),
            Some(&b"text/plain"[..])
        );
        assert!(publish_request("", "t", vec![], "x/y", Payload::Raw).is_err());
    }

    #[test]
    fn bulk_publish_round_trip() {
        let e = [BulkEntry {
            entry_id: "1".into(),
            event: json!({"a": 1}),
            content_type: "application/json".into(),
        }];
        let r = bulk_publish_request("ps", "t", &e).expect("req");
        assert_eq!(r.path_and_query, "/v1.0-alpha1/publish/bulk/ps/t");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&r.body).expect("json"),
            json!([{"entryId": "1", "event": {"a": 1}, "contentType": "application/json"}])
        );
        assert!(
            decode_bulk_publish(204, b"")
                .expect("ok")
                .failed_entries
                .is_empty()
        );
        let failed =
            decode_bulk_publish(500, br#"{"failedEntries":[{"entryId":"1","error":"x"}]}"#)
                .expect("ok");
        assert_eq!(failed.failed_entries[0].entry_id, "1");
        assert!(decode_bulk_publish(400, br#"{"errorCode":"ERR_PUBSUB_NOT_FOUND"}"#).is_err());
    }

    #[test]
    fn app_side() {
        let s = [Subscription {
            pubsubname: "ps".into(),
            topic: "t".into(),
            route: "/on-t".into(),
            dead_letter_topic: None,
        }];
        assert_eq!(
            subscribe_answer(&s),
            br#"[{"pubsubname":"ps","topic":"t","route":"/on-t"}]"#
        );
        let ev: CloudEvent<serde_json::Value> = parse_cloud_event(
            br#"{"id":"9","source":"app","type":"com.dapr.event.sent","specversion":"1.0","topic":"t","pubsubname":"ps","datacontenttype":"application/json","data":{"n":1}}"#,
        )
        .expect("event");
        assert_eq!((ev.id.as_str(), ev.data["n"].as_i64()), ("9", Some(1)));
        assert_eq!(topic_reply(TopicStatus::Retry), br#"{"status":"RETRY"}"#);
        assert!(parse_cloud_event::<u8>(b"{}").is_err());
    }
}
