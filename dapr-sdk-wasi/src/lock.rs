//! Distributed lock (alpha API).

use crate::request::{DaprRequest, non_empty, path};
use crate::{Error, Result};
use http::Method;
use serde::{Deserialize, Serialize};

/// `POST /v1.0-alpha1/lock/{store}`.
pub fn lock_request(
    store: &str,
    resource_id: &str,
    owner: &str,
    expiry_seconds: u32,
) -> Result<DaprRequest> {
    non_empty("lock store name", store)?;
    non_empty("resource id", resource_id)?;
    non_empty("lock owner", owner)?;
    #[derive(Serialize)]
    struct Body<'a> {
        #[serde(rename = "resourceId")]
        resource_id: &'a str,
        #[serde(rename = "lockOwner")]
        lock_owner: &'a str,
        #[serde(rename = "expiryInSeconds")]
        expiry_in_seconds: u32,
    }
    DaprRequest::new(Method::POST, path("/v1.0-alpha1/lock", &[store], &[])).json(&Body {
        resource_id,
        lock_owner: owner,
        expiry_in_seconds: expiry_seconds,
    })
}

/// Decodes a lock answer: `true` when this owner now holds the lock.
pub fn decode_lock(status: u16, body: &[u8]) -> Result<bool> {
    #[derive(Deserialize)]
    struct Body {
        #[serde(default)]
        success: bool,
    }
    if status != 200 {
        return Err(Error::from_response(status, body));
    }
    serde_json::from_slice::<Body>(body)
        .map(|b| b.success)
        .map_err(Error::Decode)
}

/// `POST /v1.0-alpha1/unlock/{store}`.
pub fn unlock_request(store: &str, resource_id: &str, owner: &str) -> Result<DaprRequest> {
    non_empty("lock store name", store)?;
    non_empty("resource id", resource_id)?;
    non_empty("lock owner", owner)?;
    #[derive(Serialize)]
    struct Body<'a> {
        #[serde(rename = "resourceId")]
        resource_id: &'a str,
        #[serde(rename = "lockOwner")]
        lock_owner: &'a str,
    }
    DaprRequest::new(Method::POST, path("/v1.0-alpha1/unlock", &[store], &[])).json(&Body {
        resource_id,
        lock_owner: owner,
    })
}

/// The result of an unlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlockStatus {
    /// Released.
    Success,
    /// There was no such lock.
    LockDoesNotExist,
    /// Another owner holds it.
    LockBelongsToOthers,
    /// The store failed.
    InternalError,
}

/// Decodes an unlock answer (`{"status": 0..3}`).
pub fn decode_unlock(status: u16, body: &[u8]) -> Result<UnlockStatus> {
    #[derive(Deserialize)]
    struct Body {
        #[serde(default)]
        status: u8,
    }
    if status != 200 {
        return Err(Error::from_response(status, body));
    }
    let b: Body = serde_json::from_slice(body).map_err(Error::Decode)?;
    Ok(match b.status {
        0 => UnlockStatus::Success,
        1 => UnlockStatus::LockDoesNotExist,
        2 => UnlockStatus::LockBelongsToOthers,
        _ => UnlockStatus::InternalError,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_round_trip() {
        let r = lock_request("lockstore", "res", "me", 10).expect("req");
        assert_eq!(r.path_and_query, "/v1.0-alpha1/lock/lockstore");
        assert_eq!(
            r.body,
            br#"{"resourceId":"res","lockOwner":"me","expiryInSeconds":10}"#
        );
        assert!(decode_lock(200, br#"{"success":true}"#).expect("ok"));
        assert!(!decode_lock(200, br#"{}"#).expect("ok"));
        assert_eq!(
            decode_unlock(200, br#"{"status":2}"#).expect("ok"),
            UnlockStatus::LockBelongsToOthers
        );
        assert_eq!(
            decode_unlock(200, br#"{}"#).expect("ok"),
            UnlockStatus::Success
        );
        assert!(lock_request("s", "", "me", 1).is_err());
    }
}
