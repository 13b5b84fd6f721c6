//! Pub/sub: publishing (CloudEvent or raw, single or bulk) and the app side
//! (the `/dapr/subscribe` answer, CloudEvent parsing, delivery replies, and
//! batches for bulk subscriptions: [`BulkMessage`], [`bulk_reply`]).

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
    /// Deliver in batches ([`BulkMessage`]) instead of one message a request.
    #[serde(rename = "bulkSubscribe", skip_serializing_if = "Option::is_none")]
    pub bulk_subscribe: Option<BulkSubscribe>,
}

/// Batched delivery: Dapr POSTs up to `max_messages_count` messages at once,
/// waiting at most `max_await_duration_ms` to fill a batch; the app answers
/// a status per entry ([`bulk_reply`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkSubscribe {
    /// Always true when present.
    pub enabled: bool,
    /// Messages per batch (Dapr's default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_messages_count: Option<u32>,
    /// Longest wait for a full batch (Dapr's default 1000 ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_await_duration_ms: Option<u32>,
}

impl BulkSubscribe {
    /// Batches of up to `count` messages, waiting at most `await_ms`.
    pub fn batches(count: u32, await_ms: u32) -> Self {
        Self {
            enabled: true,
            max_messages_count: Some(count),
            max_await_duration_ms: Some(await_ms),
        }
    }
}

/// A batch of messages, as Dapr POSTs it to a bulk subscription's route.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BulkMessage {
    /// The batch's id.
    #[serde(default)]
    pub id: String,
    /// The topic.
    #[serde(default)]
    pub topic: String,
    /// The pubsub component.
    #[serde(default)]
    pub pubsubname: String,
    /// The messages.
    pub entries: Vec<BulkMessageEntry>,
}

/// One message of a [`BulkMessage`]: its event is kept as JSON, so one
/// malformed entry can be dropped without failing the batch.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BulkMessageEntry {
    /// The id to answer for.
    #[serde(rename = "entryId")]
    pub entry_id: String,
    /// The event: a CloudEvent unless it was published raw.
    pub event: serde_json::Value,
    /// Its content type.
    #[serde(rename = "contentType", default)]
    pub content_type: String,
}

impl BulkMessageEntry {
    /// The entry as a CloudEvent with a typed payload.
    pub fn cloud_event<T: serde::de::DeserializeOwned>(&self) -> Result<CloudEvent<T>> {
        T::deserialize(&self.event["data"]).map_err(Error::Decode)?;
        serde_json::from_value(self.event.clone()).map_err(Error::Decode)
    }
}

/// Parses a batch delivered to a bulk subscription.
pub fn parse_bulk_message(body: &[u8]) -> Result<BulkMessage> {
    serde_json::from_slice(body).map_err(Error::Decode)
}

/// The JSON body answering a batch: one status per entry id. An entry
/// left out counts as failed, and Dapr delivers it again.
pub fn bulk_reply<'a>(statuses: impl IntoIterator<Item = (&'a str, TopicStatus)>) -> Vec<u8> {
    #[derive(Serialize)]
    struct Entry<'a> {
        #[serde(rename = "entryId")]
        entry_id: &'a str,
        status: TopicStatus,
    }
    #[derive(Serialize)]
    struct Reply<'a> {
        statuses: Vec<Entry<'a>>,
    }
    let statuses = statuses
        .into_iter()
        .map(|(entry_id, status)| Entry { entry_id, status })
        .collect();
    serde_json::to_vec(&Reply { statuses }).unwrap_or_default()
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
            bulk_subscribe: None,
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

    #[test]
    fn bulk_subscribe_round_trip() {
        let s = [Subscription {
            pubsubname: "ps".into(),
            topic: "t".into(),
            route: "/bulk".into(),
            dead_letter_topic: None,
            bulk_subscribe: Some(BulkSubscribe::batches(10, 200)),
        }];
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&subscribe_answer(&s)).expect("json"),
            json!([{"pubsubname": "ps", "topic": "t", "route": "/bulk",
                    "bulkSubscribe": {"enabled": true, "maxMessagesCount": 10, "maxAwaitDurationMs": 200}}])
        );
        let batch = parse_bulk_message(
            br#"{"id":"b1","topic":"t","pubsubname":"ps","type":"com.dapr.event.sent.bulk","metadata":{},
                "entries":[
                  {"entryId":"e1","event":{"id":"9","specversion":"1.0","data":{"n":1}},"contentType":"application/cloudevents+json","metadata":{}},
                  {"entryId":"e2","event":{"id":"10","data":"not a number"},"contentType":"application/cloudevents+json"}
                ]}"#,
        )
        .expect("batch");
        assert_eq!(batch.entries.len(), 2);
        #[derive(Deserialize)]
        struct N {
            n: u32,
        }
        let first = batch.entries[0].cloud_event::<N>().expect("typed");
        assert_eq!((first.id.as_str(), first.data.n), ("9", 1));
        assert!(batch.entries[1].cloud_event::<N>().is_err());
        assert_eq!(
            bulk_reply([("e1", TopicStatus::Success), ("e2", TopicStatus::Drop)]),
            br#"{"statuses":[{"entryId":"e1","status":"SUCCESS"},{"entryId":"e2","status":"DROP"}]}"#
        );
        assert!(parse_bulk_message(b"{}").is_err());
    }
}
