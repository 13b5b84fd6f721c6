//! events-service: records every successful request of the image services
//! in MySQL.
//!
//! | Route | Answer |
//! |---|---|
//! | `GET /init` | creates the table if missing (never drops data): `{"status":true}` |
//! | `POST /events` (`POST /create_event`) | stores `{event_ts, op_type, input_size, event_id?}`, answers the stored row; the same `event_id` twice stores one row |
//! | `GET /events?limit=&before=` | events newest first: `[{"id":1,"event_ts":…,"op_type":"grayscale","input_size":68016}]`; `before` is an id, for paging |
//! | `GET /healthz` | `{"status":"ok"}` |
//!
//! The database URL is the secret `events-db-url` of the Dapr secret store
//! `secretstore`, read on first use. This file is the pure core (validation,
//! SQL, paging); `handler.rs` and `db.rs` do the I/O.

use serde::{Deserialize, Serialize};
use service_common::CodeDoc;
pub use service_common::{ApiError, Problem};

/// Every error events-service answers with.
#[derive(Debug)]
pub enum EventsError {
    /// A shared error (routes, body size, app token, paging, availability).
    Api(ApiError),
    /// 400 `empty_body`: no event in the body.
    EmptyBody,
    /// 400 `invalid_json`: not JSON, or fields missing or of the wrong type
    /// (the parser's words, about the client's JSON).
    InvalidJson(String),
    /// 400 `invalid_field`: a field out of its range or alphabet.
    InvalidField(&'static str),
    /// 500 `database_error`: the database refused a query we built.
    Database {
        /// The server's error, logged only.
        cause: String,
    },
}

impl From<ApiError> for EventsError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl Problem for EventsError {
    fn status(&self) -> u16 {
        match self {
            Self::Api(e) => e.status(),
            Self::EmptyBody | Self::InvalidJson(_) | Self::InvalidField(_) => 400,
            Self::Database { .. } => 500,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Self::Api(e) => e.code(),
            Self::EmptyBody => "empty_body",
            Self::InvalidJson(_) => "invalid_json",
            Self::InvalidField(_) => "invalid_field",
            Self::Database { .. } => "database_error",
        }
    }
    fn message(&self) -> String {
        match self {
            Self::Api(e) => e.message(),
            Self::EmptyBody => "expected a JSON object {event_ts, op_type, input_size}".into(),
            Self::InvalidJson(why) => format!("invalid event: {why}"),
            Self::InvalidField(rule) => (*rule).into(),
            Self::Database { .. } => "the database rejected the query".into(),
        }
    }
    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Api(e) => e.retry_after(),
            _ => None,
        }
    }
    fn cause(&self) -> Option<&str> {
        match self {
            Self::Api(e) => e.cause(),
            Self::Database { cause } => Some(cause),
            _ => None,
        }
    }
}

/// The codes events-service answers, for the README table.
pub fn error_codes() -> Vec<CodeDoc> {
    let mut rows = ApiError::docs(&[
        "bad_request",
        "unauthorized",
        "not_found",
        "method_not_allowed",
        "payload_too_large",
        "unavailable",
        "internal",
    ]);
    rows.extend([
        CodeDoc {
            status: 400,
            code: "empty_body",
            when: "`POST /events` with no event in the body",
        },
        CodeDoc {
            status: 400,
            code: "invalid_json",
            when: "not JSON, or fields missing or of the wrong type",
        },
        CodeDoc {
            status: 400,
            code: "invalid_field",
            when: "`op_type` / `event_id` not 1-32 / 1-64 characters of `[A-Za-z0-9-_.:]`, or a number not below 2^53",
        },
        CodeDoc {
            status: 500,
            code: "database_error",
            when: "the database refused a query (a bug; the cause is in the log)",
        },
    ]);
    rows
}

/// Creates the table if it is missing; never drops or alters data.
pub const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS events (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    event_id VARCHAR(64) NULL,
    event_ts BIGINT UNSIGNED NOT NULL,
    op_type VARCHAR(32) NOT NULL,
    input_size BIGINT UNSIGNED NOT NULL,
    UNIQUE KEY events_event_id (event_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

/// Inserts an event; a repeated `event_id` leaves the first row as it was.
pub const INSERT: &str =
    "INSERT INTO events (event_id, event_ts, op_type, input_size) VALUES (?, ?, ?, ?)
    ON DUPLICATE KEY UPDATE id = id";

/// The row for an `event_id`.
pub const SELECT_BY_EVENT_ID: &str =
    "SELECT id, event_ts, op_type, input_size FROM events WHERE event_id = ?";

/// The row for an `id`.
pub const SELECT_BY_ID: &str = "SELECT id, event_ts, op_type, input_size FROM events WHERE id = ?";

/// A page of events, newest first, with ids below a cursor.
pub const LIST: &str =
    "SELECT id, event_ts, op_type, input_size FROM events WHERE id < ? ORDER BY id DESC LIMIT ?";

/// Largest page.
pub const MAX_LIMIT: u32 = 1000;
/// Page size when `limit` is absent.
pub const DEFAULT_LIMIT: u32 = 100;
/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A stored event, as `GET /events` returns it (the original template's fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRow {
    /// Database id, increasing with insertion.
    pub id: u64,
    /// When the request happened, ms since the epoch.
    pub event_ts: u64,
    /// `grayscale` or `classify`.
    pub op_type: String,
    /// Request body size in bytes.
    pub input_size: u64,
}

/// A valid new event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NewEvent {
    /// Optional idempotency key chosen by the caller.
    #[serde(default)]
    pub event_id: Option<String>,
    /// When it happened, ms since the epoch.
    pub event_ts: u64,
    /// What kind of request.
    pub op_type: String,
    /// Request body size in bytes.
    pub input_size: u64,
}

/// The pub/sub component events-service subscribes through.
pub const PUBSUB: &str = "pubsub";
/// The topic the image services' events are published to (statestore.yaml's
/// `outboxPublishTopic`).
pub const TOPIC: &str = "events";
/// Where Dapr moves a message events-service answers DROP (malformed):
/// `scripts/broker dead-letters` lists them.
pub const DEAD_LETTER_TOPIC: &str = "events-dead";
/// The route Dapr delivers `events` to.
pub const DELIVERY_ROUTE: &str = "/subscriptions/events";

/// The answer to Dapr's `GET /dapr/subscribe`.
pub fn subscriptions() -> Vec<u8> {
    dapr::pubsub::subscribe_answer(&[dapr::pubsub::Subscription {
        pubsubname: PUBSUB.into(),
        topic: TOPIC.into(),
        route: DELIVERY_ROUTE.into(),
        dead_letter_topic: Some(DEAD_LETTER_TOPIC.into()),
        bulk_subscribe: None,
    }])
}

/// Parses a delivered message: a CloudEvent whose `data` is an event, as
/// `POST /events` takes it. Without an `event_id` in the data, the
/// CloudEvent's id (the same on every redelivery) is the idempotency key.
pub fn parse_delivery(body: &[u8]) -> Result<NewEvent, EventsError> {
    let ce = dapr::pubsub::parse_cloud_event::<serde_json::Value>(body)
        .map_err(|e| EventsError::InvalidJson(format!("not a CloudEvent: {e}")))?;
    let data = serde_json::to_vec(&ce.data).map_err(|e| EventsError::InvalidJson(e.to_string()))?;
    let mut event = parse_new_event(&data)?;
    if event.event_id.is_none() {
        if !valid_token(&ce.id, 64) {
            return Err(EventsError::InvalidField(
                "the CloudEvent id must be 1-64 characters of [A-Za-z0-9-_.:]",
            ));
        }
        event.event_id = Some(ce.id);
    }
    Ok(event)
}

/// What Dapr is told about a delivered message, from what storing it gave:
/// stored (or already there) is SUCCESS; the database unreachable is RETRY,
/// so the broker delivers it again; anything else cannot get better by
/// retrying and is DROP (dead-lettered).
pub fn delivery_status<T>(stored: &Result<T, EventsError>) -> dapr::pubsub::TopicStatus {
    use dapr::pubsub::TopicStatus;
    match stored {
        Ok(_) => TopicStatus::Success,
        Err(EventsError::Api(ApiError::Unavailable { .. } | ApiError::Internal { .. })) => {
            TopicStatus::Retry
        }
        Err(_) => TopicStatus::Drop,
    }
}

/// 1 to `max` characters of `[A-Za-z0-9-_.:]`.
fn valid_token(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Parses and validates a `POST /events` body.
pub fn parse_new_event(body: &[u8]) -> Result<NewEvent, EventsError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(EventsError::EmptyBody);
    }
    let ev: NewEvent =
        serde_json::from_slice(body).map_err(|e| EventsError::InvalidJson(e.to_string()))?;
    if !valid_token(&ev.op_type, 32) {
        return Err(EventsError::InvalidField(
            "op_type must be 1-32 characters of [A-Za-z0-9-_.:]",
        ));
    }
    if let Some(id) = &ev.event_id
        && !valid_token(id, 64)
    {
        return Err(EventsError::InvalidField(
            "event_id must be 1-64 characters of [A-Za-z0-9-_.:]",
        ));
    }
    // MySQL BIGINT UNSIGNED holds any u64, but JSON consumers do not: keep
    // values exact in a JavaScript number.
    const MAX_SAFE: u64 = (1 << 53) - 1;
    if ev.event_ts > MAX_SAFE || ev.input_size > MAX_SAFE {
        return Err(EventsError::InvalidField(
            "event_ts and input_size must be below 2^53",
        ));
    }
    Ok(ev)
}

/// `GET /events` paging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Rows to return.
    pub limit: u32,
    /// Only rows with a smaller id (`u64::MAX` for the newest).
    pub before: u64,
}

/// Parses `limit` and `before` from a query string; unknown keys are ignored.
pub fn parse_page(query: Option<&str>) -> Result<Page, ApiError> {
    let mut page = Page {
        limit: DEFAULT_LIMIT,
        before: u64::MAX,
    };
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "limit" => {
                page.limit = v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!("limit must be an integer in 1..={MAX_LIMIT}"))
                    })?;
            }
            "before" => {
                page.before = v.parse::<u64>().map_err(|_| {
                    ApiError::BadRequest("before must be an event id (an integer)".into())
                })?;
            }
            _ => {}
        }
    }
    Ok(page)
}

/// The secret store holding the database URL: the one service.toml grants
/// (`[dapr] secrets`, with the secret's name), which the host and Dapr enforce.
pub const SECRET_STORE: &str = "secretstore";

/// Key of the database URL in the secret store.
pub const DB_URL_SECRET: &str = "events-db-url";

#[cfg(test)]
mod tests {
    use super::*;
    use dapr::pubsub::TopicStatus;

    /// A delivery as the outbox publishes one (`data` is the projection).
    fn delivery(data: &str) -> Vec<u8> {
        format!(
            r#"{{"id":"outbox-2f1c","source":"image-api-grayscale","type":"com.dapr.event.sent","specversion":"1.0","topic":"events","pubsubname":"pubsub","datacontenttype":"application/json","data":{data}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn subscribes_to_events_with_a_dead_letter_topic() {
        let subs: serde_json::Value = serde_json::from_slice(&subscriptions()).expect("json");
        assert_eq!(
            subs,
            serde_json::json!([{"pubsubname": "pubsub", "topic": "events",
                "route": "/subscriptions/events", "deadLetterTopic": "events-dead"}])
        );
    }

    #[test]
    fn a_delivery_is_an_event_keyed_by_its_event_id_or_the_cloudevent_id() {
        let ev = parse_delivery(&delivery(
            r#"{"event_id":"a-1","event_ts":5,"op_type":"grayscale","input_size":7}"#,
        ))
        .expect("event");
        assert_eq!(
            (ev.event_id.as_deref(), ev.event_ts, ev.input_size),
            (Some("a-1"), 5, 7)
        );
        let ev = parse_delivery(&delivery(
            r#"{"event_ts":5,"op_type":"classify","input_size":7}"#,
        ))
        .expect("event");
        assert_eq!(ev.event_id.as_deref(), Some("outbox-2f1c"));
    }

    #[test]
    fn malformed_deliveries_are_errors() {
        for bad in [
            b"not json".to_vec(),
            br#"{"data":{}}"#.to_vec(), // no id
            delivery(r#""a string""#),
            delivery(r#"{"event_ts":"soon","op_type":"grayscale","input_size":1}"#),
            delivery(r#"{"event_ts":1,"op_type":"drop table","input_size":1}"#),
        ] {
            assert!(
                parse_delivery(&bad).is_err(),
                "{}",
                String::from_utf8_lossy(&bad)
            );
        }
    }

    #[test]
    fn only_an_unreachable_database_is_retried() {
        let ok: Result<(), EventsError> = Ok(());
        assert_eq!(delivery_status(&ok), TopicStatus::Success);
        let down: Result<(), EventsError> =
            Err(ApiError::unavailable("the database", "refused").into());
        assert_eq!(delivery_status(&down), TopicStatus::Retry);
        let refused: Result<(), EventsError> = Err(EventsError::Database {
            cause: "1406".into(),
        });
        assert_eq!(delivery_status(&refused), TopicStatus::Drop);
        let invalid: Result<(), EventsError> = Err(EventsError::InvalidField("x"));
        assert_eq!(delivery_status(&invalid), TopicStatus::Drop);
    }

    #[test]
    fn readme_lists_every_code() {
        let table = service_common::check_readme_table(env!("CARGO_MANIFEST_DIR"), &error_codes());
        table.unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn valid_event() {
        let e = parse_new_event(
            br#"{"event_ts":1665358852918,"op_type":"grayscale","input_size":68016}"#,
        )
        .expect("valid");
        assert_eq!(e.event_id, None);
        assert_eq!(
            (e.event_ts, e.op_type.as_str(), e.input_size),
            (1665358852918, "grayscale", 68016)
        );
        let e = parse_new_event(
            br#"{"event_id":"ab-1","event_ts":1,"op_type":"classify","input_size":0,"x":1}"#,
        )
        .expect("valid");
        assert_eq!(e.event_id.as_deref(), Some("ab-1"));
    }

    #[test]
    fn invalid_events_are_400() {
        for body in [
            &b""[..],
            b"  ",
            b"not json",
            b"[]",
            br#"{"op_type":"grayscale","input_size":1}"#,
            br#"{"event_ts":"yesterday","op_type":"grayscale","input_size":1}"#,
            br#"{"event_ts":-1,"op_type":"grayscale","input_size":1}"#,
            br#"{"event_ts":1,"op_type":"","input_size":1}"#,
            br#"{"event_ts":1,"op_type":"'; DROP TABLE events; --","input_size":1}"#,
            br#"{"event_ts":1,"op_type":"g","input_size":1.5}"#,
            br#"{"event_ts":1,"op_type":"g","input_size":1,"event_id":"a b"}"#,
            br#"{"event_ts":18446744073709551615,"op_type":"g","input_size":1}"#,
        ] {
            let e = parse_new_event(body).expect_err(&String::from_utf8_lossy(body));
            assert_eq!(e.status(), 400, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn paging() {
        assert_eq!(
            parse_page(None).expect("ok"),
            Page {
                limit: 100,
                before: u64::MAX
            }
        );
        assert_eq!(
            parse_page(Some("limit=5&before=10&x=y")).expect("ok"),
            Page {
                limit: 5,
                before: 10
            }
        );
        for bad in ["limit=0", "limit=1001", "limit=abc", "before=-1", "limit"] {
            assert_eq!(parse_page(Some(bad)).expect_err(bad).status(), 400);
        }
    }
}
