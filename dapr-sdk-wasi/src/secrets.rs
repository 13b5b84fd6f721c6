//! Secrets: read from a Dapr secret store.

use crate::request::{DaprRequest, non_empty, path};
use crate::{Error, Result};
use http::Method;
use std::collections::BTreeMap;

/// A secret's values by name. `Debug` never shows them.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(pub BTreeMap<String, String>);

impl Secret {
    /// One value of the secret (for single-valued stores, its own key).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// `GET /v1.0/secrets/{store}/{key}`.
pub fn get_request(store: &str, key: &str) -> Result<DaprRequest> {
    non_empty("secret store name", store)?;
    non_empty("secret key", key)?;
    Ok(DaprRequest::new(
        Method::GET,
        path("/v1.0/secrets", &[store, key], &[]),
    ))
}

/// Decodes a secret answer.
pub fn decode_get(status: u16, body: &[u8]) -> Result<Secret> {
    if status != 200 {
        return Err(Error::from_response(status, body));
    }
    serde_json::from_slice(body)
        .map(Secret)
        .map_err(Error::Decode)
}

/// `GET /v1.0/secrets/{store}/bulk`: every secret the app may read.
pub fn bulk_request(store: &str) -> Result<DaprRequest> {
    non_empty("secret store name", store)?;
    Ok(DaprRequest::new(
        Method::GET,
        path("/v1.0/secrets", &[store, "bulk"], &[]),
    ))
}

/// Decodes a bulk secret answer: secrets by name.
pub fn decode_bulk(status: u16, body: &[u8]) -> Result<BTreeMap<String, Secret>> {
    if status != 200 {
        return Err(Error::from_response(status, body));
    }
    let m: BTreeMap<String, BTreeMap<String, String>> =
        serde_json::from_slice(body).map_err(Error::Decode)?;
    Ok(m.into_iter().map(|(k, v)| (k, Secret(v))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_debug_hides_values() {
        let s = decode_get(200, br#"{"db-url":"mysql://u:hunter2@h/db"}"#).expect("secret");
        assert_eq!(s.get("db-url"), Some("mysql://u:hunter2@h/db"));
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(
            get_request("st", "db-url").expect("req").path_and_query,
            "/v1.0/secrets/st/db-url"
        );
    }

    #[test]
    fn bulk_secrets() {
        assert_eq!(
            bulk_request("st").expect("req").path_and_query,
            "/v1.0/secrets/st/bulk"
        );
        let all = decode_bulk(200, br#"{"a":{"a":"1"},"b":{"b":"2"}}"#).expect("bulk");
        assert_eq!(all["b"].get("b"), Some("2"));
    }

    #[test]
    fn missing_secret_is_an_error() {
        let e = decode_get(500, br#"{"errorCode":"ERR_SECRET_GET","message":"nope"}"#).unwrap_err();
        assert_eq!(e.error_code(), Some("ERR_SECRET_GET"));
    }
}
