//! Configuration API: read items, subscribe to changes, and the shape of
//! the updates Dapr POSTs to the app.

use crate::request::{DaprRequest, non_empty, path};
use crate::{Error, Result};
use http::Method;
use serde::Deserialize;
use std::collections::BTreeMap;

/// One configuration item.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ConfigurationItem {
    /// Its value.
    pub value: String,
    /// The store's version of it.
    #[serde(default)]
    pub version: String,
    /// Store metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

fn keys_query(keys: &[&str]) -> Vec<(&'static str, String)> {
    keys.iter().map(|k| ("key", (*k).to_string())).collect()
}

/// `GET /v1.0/configuration/{store}?key=a&key=b` (all keys when empty).
pub fn get_request(store: &str, keys: &[&str]) -> Result<DaprRequest> {
    non_empty("configuration store name", store)?;
    Ok(DaprRequest::new(
        Method::GET,
        path("/v1.0/configuration", &[store], &keys_query(keys)),
    ))
}

/// Decodes items by key.
pub fn decode_get(status: u16, body: &[u8]) -> Result<BTreeMap<String, ConfigurationItem>> {
    if status != 200 {
        return Err(Error::from_response(status, body));
    }
    serde_json::from_slice(body).map_err(Error::Decode)
}

/// `GET /v1.0/configuration/{store}/subscribe?key=...`: Dapr then POSTs
/// changes to the app at `/configuration/{store}/{key}`.
pub fn subscribe_request(store: &str, keys: &[&str]) -> Result<DaprRequest> {
    non_empty("configuration store name", store)?;
    Ok(DaprRequest::new(
        Method::GET,
        path(
            "/v1.0/configuration",
            &[store, "subscribe"],
            &keys_query(keys),
        ),
    ))
}

/// Decodes a subscribe answer: the subscription id.
pub fn decode_subscribe(status: u16, body: &[u8]) -> Result<String> {
    #[derive(Deserialize)]
    struct Body {
        id: String,
    }
    if status != 200 {
        return Err(Error::from_response(status, body));
    }
    serde_json::from_slice::<Body>(body)
        .map(|b| b.id)
        .map_err(Error::Decode)
}

/// `GET /v1.0/configuration/{store}/{id}/unsubscribe`.
pub fn unsubscribe_request(store: &str, id: &str) -> Result<DaprRequest> {
    non_empty("configuration store name", store)?;
    non_empty("subscription id", id)?;
    Ok(DaprRequest::new(
        Method::GET,
        path("/v1.0/configuration", &[store, id, "unsubscribe"], &[]),
    ))
}

/// What Dapr POSTs to the app's `/configuration/{store}/{key}` route.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ConfigurationUpdate {
    /// The subscription id.
    pub id: String,
    /// Changed items.
    pub items: BTreeMap<String, ConfigurationItem>,
}

/// Parses a configuration update delivered to the app.
pub fn parse_update(body: &[u8]) -> Result<ConfigurationUpdate> {
    serde_json::from_slice(body).map_err(Error::Decode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_round_trip() {
        let r = get_request("cfg", &["a", "b c"]).expect("req");
        assert_eq!(r.path_and_query, "/v1.0/configuration/cfg?key=a&key=b%20c");
        let items =
            decode_get(200, br#"{"a":{"value":"1","version":"2","metadata":{}}}"#).expect("items");
        assert_eq!(items["a"].value, "1");
        assert_eq!(
            subscribe_request("cfg", &["a"])
                .expect("req")
                .path_and_query,
            "/v1.0/configuration/cfg/subscribe?key=a"
        );
        assert_eq!(decode_subscribe(200, br#"{"id":"s1"}"#).expect("id"), "s1");
        assert_eq!(
            unsubscribe_request("cfg", "s1")
                .expect("req")
                .path_and_query,
            "/v1.0/configuration/cfg/s1/unsubscribe"
        );
        let u = parse_update(br#"{"id":"s1","items":{"a":{"value":"3"}}}"#).expect("update");
        assert_eq!(u.items["a"].value, "3");
    }
}
