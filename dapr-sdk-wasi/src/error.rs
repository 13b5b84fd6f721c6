//! One error type for every call.

use std::fmt;

/// What went wrong talking to the sidecar.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The sidecar answered with an error status. `error_code` and `message`
    /// come from Dapr's JSON error body (`{"errorCode": …, "message": …}`)
    /// when it has one.
    Dapr {
        /// HTTP status from the sidecar.
        status: u16,
        /// Dapr's `errorCode`, e.g. `ERR_STATE_STORE_NOT_FOUND`; empty if none.
        error_code: String,
        /// Dapr's `message`, or the raw body when it was not JSON.
        message: String,
    },
    /// The request never got an answer (connection refused, timeout, …).
    Transport(String),
    /// A value could not be serialized to JSON.
    Encode(serde_json::Error),
    /// The sidecar's answer was not the JSON we expected.
    Decode(serde_json::Error),
    /// Bad configuration (environment variable or builder value).
    Config(String),
    /// An argument that cannot be sent, e.g. an empty key.
    InvalidArgument(String),
    /// A body was larger than the limit it was read with.
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

impl Error {
    /// HTTP status for [`Error::Dapr`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Dapr { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Dapr's `errorCode` for [`Error::Dapr`].
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Error::Dapr { error_code, .. } => Some(error_code),
            _ => None,
        }
    }

    /// True when a save or delete lost an optimistic-concurrency race: the
    /// ETag did not match, or a first-write insert found the key taken.
    /// A transaction reports it as a 500 `ERR_STATE_TRANSACTION` that
    /// names the mismatch.
    pub fn is_etag_mismatch(&self) -> bool {
        match self {
            Error::Dapr { status: 409, .. } => true,
            Error::Dapr {
                status: 500,
                error_code,
                message,
            } => error_code == "ERR_STATE_TRANSACTION" && message.contains("etag mismatch"),
            _ => false,
        }
    }

    /// True when the sidecar could not be reached at all.
    pub fn is_transport(&self) -> bool {
        matches!(self, Error::Transport(_))
    }

    /// Builds [`Error::Dapr`] from an error response.
    pub fn from_response(status: u16, body: &[u8]) -> Self {
        #[derive(serde::Deserialize)]
        struct Body {
            #[serde(rename = "errorCode", default)]
            error_code: String,
            #[serde(default)]
            message: String,
        }
        match serde_json::from_slice::<Body>(body) {
            Ok(b) => Error::Dapr {
                status,
                error_code: b.error_code,
                message: b.message,
            },
            Err(_) => Error::Dapr {
                status,
                error_code: String::new(),
                message: String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
            },
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Dapr {
                status,
                error_code,
                message,
            } if error_code.is_empty() => {
                write!(f, "dapr sidecar answered {status}: {message}")
            }
            Error::Dapr {
                status,
                error_code,
                message,
            } => {
                write!(f, "dapr sidecar answered {status} {error_code}: {message}")
            }
            Error::Transport(m) => write!(f, "cannot reach the dapr sidecar: {m}"),
            Error::Encode(_) => write!(f, "cannot encode request as JSON"),
            Error::Decode(_) => write!(f, "unexpected response from the dapr sidecar"),
            Error::Config(m) => write!(f, "dapr client configuration: {m}"),
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::TooLarge { limit } => write!(f, "body larger than {limit} bytes"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Encode(e) | Error::Decode(e) => Some(e),
            _ => None,
        }
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dapr_error_body() {
        let e = Error::from_response(
            400,
            br#"{"errorCode":"ERR_STATE_STORE_NOT_FOUND","message":"state store x is not found"}"#,
        );
        assert_eq!(e.status(), Some(400));
        assert_eq!(e.error_code(), Some("ERR_STATE_STORE_NOT_FOUND"));
        assert!(e.to_string().contains("ERR_STATE_STORE_NOT_FOUND"));
        assert!(!e.is_etag_mismatch());
    }

    #[test]
    fn non_json_body_is_kept_as_message() {
        let e = Error::from_response(409, b"conflict");
        assert!(e.is_etag_mismatch());
        assert_eq!(e.error_code(), Some(""));
        assert!(e.to_string().contains("conflict"));
    }

    #[test]
    fn a_transaction_reports_a_mismatch_as_a_500() {
        // As daprd 1.18 answers a transaction whose ETag lost the race.
        let e = Error::from_response(
            500,
            br#"{"errorCode":"ERR_STATE_TRANSACTION","message":"error while executing state transaction: possible etag mismatch. error from state store"}"#,
        );
        assert!(e.is_etag_mismatch());
        let other = Error::from_response(
            500,
            br#"{"errorCode":"ERR_STATE_TRANSACTION","message":"error while executing state transaction: database is locked"}"#,
        );
        assert!(!other.is_etag_mismatch());
    }
}
