//! State management: typed get/save/delete with ETags and options.

use crate::request::{DaprRequest, non_empty, path};
use crate::{Error, Result};
use http::Method;
use serde::{Deserialize, Serialize};

/// Concurrency mode for a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Concurrency {
    /// The write succeeds only if the ETag matches; with no ETag it only
    /// inserts a key that does not exist yet.
    FirstWrite,
    /// The last write wins (Dapr's default).
    LastWrite,
}

/// Consistency mode for a read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Consistency {
    /// Eventual consistency (Dapr's default).
    Eventual,
    /// Strong consistency.
    Strong,
}

/// Options of a state write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StateOptions {
    /// Concurrency mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
    /// Consistency mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistency: Option<Consistency>,
}

impl StateOptions {
    /// First-write concurrency, strong consistency: the usual pair for
    /// compare-and-swap loops.
    pub fn first_write() -> Self {
        Self {
            concurrency: Some(Concurrency::FirstWrite),
            consistency: Some(Consistency::Strong),
        }
    }
}

/// An opaque version tag of a stored value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ETag(pub String);

/// A value read from the store with its ETag.
#[derive(Debug, Clone, PartialEq)]
pub struct StateEntry<T> {
    /// The decoded value.
    pub value: T,
    /// Its ETag, when the store has ETags.
    pub etag: Option<ETag>,
}

/// One item of a save request.
#[derive(Debug, Clone, Serialize)]
pub struct SaveItem<T> {
    /// The key.
    pub key: String,
    /// The value, stored as JSON.
    pub value: T,
    /// Expected ETag, for concurrency control.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<ETag>,
    /// Write options.
    #[serde(skip_serializing_if = "is_default_options")]
    pub options: StateOptions,
    /// Store metadata, e.g. `ttlInSeconds`.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub metadata: std::collections::BTreeMap<String, String>,
}

fn is_default_options(o: &StateOptions) -> bool {
    *o == StateOptions::default()
}

impl<T> SaveItem<T> {
    /// A plain last-write item.
    pub fn new(key: impl Into<String>, value: T) -> Self {
        Self {
            key: key.into(),
            value,
            etag: None,
            options: StateOptions::default(),
            metadata: Default::default(),
        }
    }

    /// Expect this ETag (use with [`StateOptions::first_write`]).
    pub fn etag(mut self, etag: Option<ETag>) -> Self {
        self.etag = etag;
        self
    }

    /// Sets write options.
    pub fn options(mut self, options: StateOptions) -> Self {
        self.options = options;
        self
    }

    /// Expire the item after `seconds` (stores with TTL support).
    pub fn ttl_seconds(mut self, seconds: u64) -> Self {
        self.metadata
            .insert("ttlInSeconds".into(), seconds.to_string());
        self
    }

    /// Sets one metadata entry.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Marks this item as the outbox projection of the upsert of the same
    /// key in one transaction on a store with a transactional outbox: the
    /// other item is stored, this value (as JSON) is what gets published.
    pub fn outbox_projection(self) -> Self {
        self.metadata("outbox.projection", "true")
            .metadata("contentType", "application/json")
    }
}

/// `GET /v1.0/state/{store}/{key}`.
pub fn get_request(
    store: &str,
    key: &str,
    consistency: Option<Consistency>,
) -> Result<DaprRequest> {
    non_empty("state store name", store)?;
    non_empty("state key", key)?;
    let query = match consistency {
        Some(Consistency::Strong) => vec![("consistency", "strong".to_string())],
        Some(Consistency::Eventual) => vec![("consistency", "eventual".to_string())],
        None => vec![],
    };
    Ok(DaprRequest::new(
        Method::GET,
        path("/v1.0/state", &[store, key], &query),
    ))
}

/// Decodes a get answer: 204 (or an empty body) means the key is missing.
pub fn decode_get<T: serde::de::DeserializeOwned>(
    status: u16,
    etag: Option<&str>,
    body: &[u8],
) -> Result<Option<StateEntry<T>>> {
    match status {
        204 => Ok(None),
        200 if body.is_empty() => Ok(None),
        200 => {
            let value = serde_json::from_slice(body).map_err(Error::Decode)?;
            Ok(Some(StateEntry {
                value,
                etag: etag.map(|e| ETag(e.to_string())),
            }))
        }
        _ => Err(Error::from_response(status, body)),
    }
}

/// `POST /v1.0/state/{store}/bulk` for these keys.
pub fn bulk_get_request(store: &str, keys: &[&str]) -> Result<DaprRequest> {
    non_empty("state store name", store)?;
    for k in keys {
        non_empty("state key", k)?;
    }
    #[derive(Serialize)]
    struct Body<'a> {
        keys: &'a [&'a str],
        parallelism: usize,
    }
    DaprRequest::new(Method::POST, path("/v1.0/state", &[store, "bulk"], &[])).json(&Body {
        keys,
        parallelism: 10,
    })
}

/// Decodes a bulk get answer: one entry per key, in request order; `None`
/// for a missing key. A per-key error fails the whole call.
pub fn decode_bulk_get<T: serde::de::DeserializeOwned>(
    status: u16,
    keys: &[&str],
    body: &[u8],
) -> Result<Vec<(String, Option<StateEntry<T>>)>> {
    if status != 200 {
        return Err(Error::from_response(status, body));
    }
    #[derive(Deserialize)]
    struct Item {
        key: String,
        #[serde(default)]
        data: Option<serde_json::Value>,
        #[serde(default)]
        etag: Option<String>,
        #[serde(default)]
        error: Option<String>,
    }
    let items: Vec<Item> = serde_json::from_slice(body).map_err(Error::Decode)?;
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let entry = match items.iter().find(|i| i.key == *key) {
            Some(Item { error: Some(e), .. }) if !e.is_empty() => {
                return Err(Error::Dapr {
                    status,
                    error_code: String::new(),
                    message: format!("{key}: {e}"),
                });
            }
            Some(Item {
                data: Some(v),
                etag,
                ..
            }) if !v.is_null() => Some(StateEntry {
                value: T::deserialize(v).map_err(Error::Decode)?,
                etag: etag.clone().map(ETag),
            }),
            _ => None,
        };
        out.push((key.to_string(), entry));
    }
    Ok(out)
}

/// One operation of a state transaction.
#[derive(Debug, Clone)]
pub enum TransactionOp<T> {
    /// Insert or update (with the item's ETag and options).
    Upsert(SaveItem<T>),
    /// Delete a key, optionally only if its ETag matches.
    Delete {
        /// The key.
        key: String,
        /// Expected ETag.
        etag: Option<ETag>,
    },
}

/// `POST /v1.0/state/{store}/transaction`: all operations or none.
pub fn transaction_request<T: Serialize>(
    store: &str,
    ops: &[TransactionOp<T>],
) -> Result<DaprRequest> {
    non_empty("state store name", store)?;
    if ops.is_empty() {
        return Err(Error::InvalidArgument("empty transaction".into()));
    }
    let operations: Vec<serde_json::Value> = ops
        .iter()
        .map(|op| match op {
            TransactionOp::Upsert(item) => {
                non_empty("state key", &item.key)?;
                let request = serde_json::to_value(item).map_err(Error::Encode)?;
                Ok(serde_json::json!({"operation": "upsert", "request": request}))
            }
            TransactionOp::Delete { key, etag } => {
                non_empty("state key", key)?;
                let mut request = serde_json::json!({"key": key});
                if let Some(e) = etag {
                    request["etag"] = serde_json::Value::String(e.0.clone());
                }
                Ok(serde_json::json!({"operation": "delete", "request": request}))
            }
        })
        .collect::<Result<_>>()?;
    DaprRequest::new(
        Method::POST,
        path("/v1.0/state", &[store, "transaction"], &[]),
    )
    .json(&serde_json::json!({ "operations": operations }))
}

/// `POST /v1.0-alpha1/state/{store}/query` with a Dapr state query (filter,
/// sort, page), for stores that support queries.
pub fn query_request(store: &str, query: &serde_json::Value) -> Result<DaprRequest> {
    non_empty("state store name", store)?;
    DaprRequest::new(
        Method::POST,
        path("/v1.0-alpha1/state", &[store, "query"], &[]),
    )
    .json(query)
}

/// A query answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct QueryResponse<T> {
    /// Matching items.
    pub results: Vec<QueryItem<T>>,
    /// Token for the next page, if any.
    #[serde(default)]
    pub token: Option<String>,
}

/// One query result.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct QueryItem<T> {
    /// The key.
    pub key: String,
    /// The value.
    pub data: T,
    /// Its ETag.
    #[serde(default)]
    pub etag: Option<ETag>,
}

/// `POST /v1.0/state/{store}` with the items.
pub fn save_request<T: Serialize>(store: &str, items: &[SaveItem<T>]) -> Result<DaprRequest> {
    non_empty("state store name", store)?;
    if items.is_empty() {
        return Err(Error::InvalidArgument("nothing to save".into()));
    }
    for i in items {
        non_empty("state key", &i.key)?;
    }
    DaprRequest::new(Method::POST, path("/v1.0/state", &[store], &[])).json(items)
}

/// `DELETE /v1.0/state/{store}/{key}` with `If-Match` and options.
pub fn delete_request(
    store: &str,
    key: &str,
    etag: Option<&ETag>,
    options: StateOptions,
) -> Result<DaprRequest> {
    non_empty("state store name", store)?;
    non_empty("state key", key)?;
    let mut query = Vec::new();
    if let Some(c) = options.concurrency {
        query.push((
            "concurrency",
            if c == Concurrency::FirstWrite {
                "first-write"
            } else {
                "last-write"
            }
            .to_string(),
        ));
    }
    if let Some(c) = options.consistency {
        query.push((
            "consistency",
            if c == Consistency::Strong {
                "strong"
            } else {
                "eventual"
            }
            .to_string(),
        ));
    }
    let req = DaprRequest::new(Method::DELETE, path("/v1.0/state", &[store, key], &query));
    match etag {
        Some(e) => req.header("if-match", &e.0),
        None => Ok(req),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_outbox_projection_is_marked_as_one_and_as_json() {
        let ops = [
            TransactionOp::Upsert(SaveItem::new("k", json!({"n": 1})).etag(Some(ETag("4".into())))),
            TransactionOp::Upsert(SaveItem::new("k", json!({"e": 2})).outbox_projection()),
        ];
        let r = transaction_request("s", &ops).expect("req");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&r.body).expect("json")["operations"][1],
            json!({"operation": "upsert", "request": {"key": "k", "value": {"e": 2},
                "metadata": {"contentType": "application/json", "outbox.projection": "true"}}})
        );
    }

    #[test]
    fn save_encodes_etag_options_and_ttl() {
        let item = SaveItem::new("client:1.2.3.4", json!({"n": 1}))
            .etag(Some(ETag("7".into())))
            .options(StateOptions::first_write())
            .ttl_seconds(60);
        let req = save_request("statestore", &[item]).expect("request");
        assert_eq!(req.method, Method::POST);
        assert_eq!(req.path_and_query, "/v1.0/state/statestore");
        let body: serde_json::Value = serde_json::from_slice(&req.body).expect("json");
        assert_eq!(
            body,
            json!([{"key": "client:1.2.3.4", "value": {"n": 1}, "etag": "7",
                    "options": {"concurrency": "first-write", "consistency": "strong"},
                    "metadata": {"ttlInSeconds": "60"}}])
        );
    }

    #[test]
    fn plain_save_has_no_optional_fields() {
        let req = save_request("s", &[SaveItem::new("k", 5)]).expect("request");
        assert_eq!(req.body, br#"[{"key":"k","value":5}]"#);
    }

    #[test]
    fn empty_names_are_rejected() {
        assert!(get_request("", "k", None).is_err());
        assert!(get_request("s", "", None).is_err());
        assert!(save_request::<u8>("s", &[]).is_err());
    }

    #[test]
    fn missing_key_is_none() {
        assert_eq!(decode_get::<u8>(204, None, b"").expect("ok"), None);
        assert_eq!(decode_get::<u8>(200, None, b"").expect("ok"), None);
        let e = decode_get::<u8>(200, Some("3"), b"42")
            .expect("ok")
            .expect("some");
        assert_eq!((e.value, e.etag), (42, Some(ETag("3".into()))));
        assert!(decode_get::<u8>(200, None, b"nope").is_err());
        assert!(decode_get::<u8>(500, None, b"{}").is_err());
    }

    #[test]
    fn bulk_get_round_trip() {
        let req = bulk_get_request("s", &["a", "b"]).expect("request");
        assert_eq!(req.path_and_query, "/v1.0/state/s/bulk");
        assert_eq!(req.body, br#"{"keys":["a","b"],"parallelism":10}"#);
        let body = br#"[{"key":"b","etag":"2"},{"key":"a","data":{"n":1},"etag":"1"}]"#;
        let got = decode_bulk_get::<serde_json::Value>(200, &["a", "b"], body).expect("decode");
        assert_eq!(
            got[0].1.as_ref().map(|e| e.value.clone()),
            Some(json!({"n": 1}))
        );
        assert_eq!(
            got[0].1.as_ref().and_then(|e| e.etag.clone()),
            Some(ETag("1".into()))
        );
        assert!(got[1].1.is_none());
        assert!(decode_bulk_get::<u8>(200, &["a"], br#"[{"key":"a","error":"boom"}]"#).is_err());
    }

    #[test]
    fn transaction_encoding() {
        let ops = vec![
            TransactionOp::Upsert(SaveItem::new("a", 1).etag(Some(ETag("3".into())))),
            TransactionOp::Delete {
                key: "b".into(),
                etag: None,
            },
        ];
        let r = transaction_request("s", &ops).expect("req");
        assert_eq!(r.path_and_query, "/v1.0/state/s/transaction");
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
        assert_eq!(
            v,
            json!({"operations": [
                {"operation": "upsert", "request": {"key": "a", "value": 1, "etag": "3"}},
                {"operation": "delete", "request": {"key": "b"}}
            ]})
        );
        assert!(transaction_request::<u8>("s", &[]).is_err());
        let q = query_request("s", &json!({"filter": {"EQ": {"state": "CA"}}})).expect("req");
        assert_eq!(q.path_and_query, "/v1.0-alpha1/state/s/query");
        let resp: QueryResponse<u8> =
            serde_json::from_slice(br#"{"results":[{"key":"k","data":1,"etag":"2"}],"token":"3"}"#)
                .expect("json");
        assert_eq!(resp.results[0].data, 1);
    }

    #[test]
    fn delete_carries_if_match_and_options() {
        let req = delete_request(
            "s",
            "k",
            Some(&ETag("9".into())),
            StateOptions::first_write(),
        )
        .expect("request");
        assert_eq!(
            req.path_and_query,
            "/v1.0/state/s/k?concurrency=first-write&consistency=strong"
        );
        assert_eq!(
            req.headers.get("if-match").map(|v| v.as_bytes()),
            Some(&b"9"[..])
        );
    }

    #[test]
    fn get_with_consistency() {
        let req = get_request("s", "a b", Some(Consistency::Strong)).expect("request");
        assert_eq!(req.path_and_query, "/v1.0/state/s/a%20b?consistency=strong");
    }
}
