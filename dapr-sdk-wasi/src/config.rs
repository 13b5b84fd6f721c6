//! Where the sidecar is and how to authenticate to it.

/// Port of the sidecar's HTTP API. `dapr run` sets it for the app.
pub const ENV_HTTP_PORT: &str = "DAPR_HTTP_PORT";
/// Full base URL of the sidecar's HTTP API (e.g. `http://127.0.0.1:3500`).
/// Takes precedence over [`ENV_HTTP_PORT`].
pub const ENV_HTTP_ENDPOINT: &str = "DAPR_HTTP_ENDPOINT";
/// API token sent as `dapr-api-token` when set (Dapr's `APP_API_TOKEN`
/// counterpart for app-to-sidecar calls).
pub const ENV_API_TOKEN: &str = "DAPR_API_TOKEN";
/// Default sidecar HTTP port when nothing is set.
pub const DEFAULT_HTTP_PORT: u16 = 3500;

/// Resolved client settings.
///
/// Resolution order for the address: an explicit builder value, then
/// `DAPR_HTTP_ENDPOINT`, then `http://127.0.0.1:$DAPR_HTTP_PORT`, then
/// `http://127.0.0.1:3500`. The token: builder value, then `DAPR_API_TOKEN`.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// Base URL without a trailing slash.
    pub endpoint: String,
    /// Token for the `dapr-api-token` header, if any.
    pub api_token: Option<String>,
}

impl std::fmt::Debug for Config {
    // Never print the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("endpoint", &self.endpoint)
            .field("api_token", &self.api_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Config {
    /// Resolves settings through `lookup` (normally `std::env::var`).
    pub fn resolve(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, crate::Error> {
        let non_empty = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let endpoint = match (non_empty(ENV_HTTP_ENDPOINT), non_empty(ENV_HTTP_PORT)) {
            (Some(endpoint), _) => endpoint.trim_end_matches('/').to_string(),
            (None, Some(port)) => {
                let port: u16 = port.trim().parse().map_err(|_| {
                    crate::Error::Config(format!("{ENV_HTTP_PORT} is not a port number: {port:?}"))
                })?;
                format!("http://127.0.0.1:{port}")
            }
            (None, None) => format!("http://127.0.0.1:{DEFAULT_HTTP_PORT}"),
        };
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(crate::Error::Config(format!(
                "sidecar endpoint must be an http(s) URL: {endpoint:?}"
            )));
        }
        Ok(Self {
            endpoint,
            api_token: non_empty(ENV_API_TOKEN),
        })
    }

    /// Resolves settings from the process environment.
    pub fn from_env() -> Result<Self, crate::Error> {
        Self::resolve(|k| std::env::var(k).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_to_3500() {
        let c = Config::resolve(env(&[])).expect("config");
        assert_eq!(c.endpoint, "http://127.0.0.1:3500");
        assert_eq!(c.api_token, None);
    }

    #[test]
    fn port_and_token() {
        let c = Config::resolve(env(&[("DAPR_HTTP_PORT", "3503"), ("DAPR_API_TOKEN", "t")]))
            .expect("config");
        assert_eq!(c.endpoint, "http://127.0.0.1:3503");
        assert_eq!(c.api_token.as_deref(), Some("t"));
        assert!(!format!("{c:?}").contains("\"t\""));
    }

    #[test]
    fn endpoint_wins_and_bad_port_is_an_error() {
        let c = Config::resolve(env(&[
            ("DAPR_HTTP_ENDPOINT", "http://localhost:9999/"),
            ("DAPR_HTTP_PORT", "1"),
        ]))
        .expect("config");
        assert_eq!(c.endpoint, "http://localhost:9999");
        assert!(Config::resolve(env(&[("DAPR_HTTP_PORT", "x")])).is_err());
        assert!(Config::resolve(env(&[("DAPR_HTTP_ENDPOINT", "ftp://x")])).is_err());
    }
}
