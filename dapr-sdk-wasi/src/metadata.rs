//! The sidecar's metadata, and health beyond readiness.

use crate::request::{DaprRequest, non_empty, path};
use crate::{Error, Result};
use http::Method;
use serde::Deserialize;
use std::collections::BTreeMap;

/// What `GET /v1.0/metadata` says (the fields most apps use).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Metadata {
    /// The app id.
    pub id: String,
    /// Dapr runtime version.
    #[serde(rename = "runtimeVersion", default)]
    pub runtime_version: String,
    /// Loaded components.
    #[serde(default)]
    pub components: Vec<ComponentInfo>,
    /// Custom attributes set with [`put_request`].
    #[serde(default)]
    pub extended: BTreeMap<String, String>,
}

/// One loaded component.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ComponentInfo {
    /// Component name.
    pub name: String,
    /// Type, e.g. `state.sqlite`.
    #[serde(rename = "type")]
    pub ty: String,
    /// Version, e.g. `v1`.
    #[serde(default)]
    pub version: String,
}

/// `GET /v1.0/metadata`.
pub fn get_request() -> DaprRequest {
    DaprRequest::new(Method::GET, "/v1.0/metadata".into())
}

/// Decodes the metadata answer.
pub fn decode_get(status: u16, body: &[u8]) -> Result<Metadata> {
    if status != 200 {
        return Err(Error::from_response(status, body));
    }
    serde_json::from_slice(body).map_err(Error::Decode)
}

/// `PUT /v1.0/metadata/{key}` with the value as the body.
pub fn put_request(key: &str, value: &str) -> Result<DaprRequest> {
    non_empty("metadata key", key)?;
    let mut r = DaprRequest::new(Method::PUT, path("/v1.0/metadata", &[key], &[]));
    r.body = value.as_bytes().to_vec();
    Ok(r)
}

/// `GET /v1.0/healthz/outbound`: ready for the app to call out (components
/// initialised), even before the app itself is up.
pub fn outbound_health_request() -> DaprRequest {
    DaprRequest::new(Method::GET, "/v1.0/healthz/outbound".into())
}

/// `POST /v1.0/shutdown`: asks the sidecar to shut down.
pub fn shutdown_request() -> DaprRequest {
    DaprRequest::new(Method::POST, "/v1.0/shutdown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_metadata() {
        let m = decode_get(
            200,
            br#"{"id":"app","runtimeVersion":"1.18.3","components":[{"name":"statestore","type":"state.sqlite","version":"v1","capabilities":["ETAG"]}],"extended":{"k":"v"},"actors":[]}"#,
        )
        .expect("metadata");
        assert_eq!(
            (m.id.as_str(), m.runtime_version.as_str()),
            ("app", "1.18.3")
        );
        assert_eq!(m.components[0].ty, "state.sqlite");
        assert_eq!(m.extended.get("k").map(String::as_str), Some("v"));
        assert_eq!(
            put_request("a b", "v").expect("req").path_and_query,
            "/v1.0/metadata/a%20b"
        );
        assert!(put_request("", "v").is_err());
    }
}
