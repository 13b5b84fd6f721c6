//! Output bindings, and the shape of input-binding deliveries.

use crate::request::{DaprRequest, non_empty, path};
use crate::{Error, Result};
use http::{HeaderMap, Method};
use serde::Serialize;
use std::collections::BTreeMap;

/// `POST /v1.0/bindings/{name}` with `{data, metadata, operation}`.
pub fn invoke_binding_request<T: Serialize>(
    name: &str,
    operation: &str,
    data: &T,
    metadata: &BTreeMap<String, String>,
) -> Result<DaprRequest> {
    non_empty("binding name", name)?;
    non_empty("operation", operation)?;
    #[derive(Serialize)]
    struct Body<'a, T> {
        data: &'a T,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        metadata: &'a BTreeMap<String, String>,
        operation: &'a str,
    }
    DaprRequest::new(Method::POST, path("/v1.0/bindings", &[name], &[])).json(&Body {
        data,
        metadata,
        operation,
    })
}

/// A binding's answer: its data and the metadata Dapr returns as
/// `Metadata.<key>` headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingResponse {
    /// Response data (may be empty).
    pub data: Vec<u8>,
    /// Response metadata.
    pub metadata: BTreeMap<String, String>,
}

/// Decodes a binding answer.
pub fn decode_binding(status: u16, headers: &HeaderMap, body: Vec<u8>) -> Result<BindingResponse> {
    if !(200..300).contains(&status) {
        return Err(Error::from_response(status, &body));
    }
    let metadata = headers
        .iter()
        .filter_map(|(k, v)| {
            let key = k.as_str().strip_prefix("metadata.")?;
            Some((key.to_string(), v.to_str().ok()?.to_string()))
        })
        .collect();
    Ok(BindingResponse {
        data: body,
        metadata,
    })
}

/// An input binding delivers by POSTing the event's data to the app at a
/// route named like the binding; the app answers 200 to acknowledge, any
/// other status to have it redelivered (where the binding supports that).
/// This is the route to serve for a binding `name`.
pub fn input_binding_route(name: &str) -> String {
    format!("/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_round_trip() {
        let mut md = BTreeMap::new();
        md.insert("fileName".to_string(), "a.txt".to_string());
        let r = invoke_binding_request("files", "create", &"hello", &md).expect("req");
        assert_eq!(r.path_and_query, "/v1.0/bindings/files");
        assert_eq!(
            r.body,
            br#"{"data":"hello","metadata":{"fileName":"a.txt"},"operation":"create"}"#
        );
        let mut h = HeaderMap::new();
        h.insert("metadata.filename", "a.txt".parse().expect("header"));
        h.insert("content-type", "application/json".parse().expect("header"));
        let resp = decode_binding(200, &h, b"x".to_vec()).expect("ok");
        assert_eq!(
            resp.metadata.get("filename").map(String::as_str),
            Some("a.txt")
        );
        assert_eq!(resp.metadata.len(), 1);
        assert!(decode_binding(500, &h, b"{}".to_vec()).is_err());
        assert_eq!(input_binding_route("cron"), "/cron");
    }
}
