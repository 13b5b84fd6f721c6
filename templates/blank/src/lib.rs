//! service-template's pure core: no I/O, unit-tested natively. `handler.rs`
//! does the HTTP around it.

use serde::Serialize;
pub use service_common::ApiError;

/// This service's Dapr app id.
pub const APP_ID: &str = "service-template";

/// The answer of `GET /service-template`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Greeting {
    /// `Hello, <who>!`
    pub message: String,
    /// Who answered.
    pub service: &'static str,
}

/// Greets `who` from the query string (`who=Ada`; "world" without one).
/// A name is 1-64 letters, digits, spaces, dots or dashes.
pub fn greet(query: Option<&str>) -> Result<Greeting, ApiError> {
    let who = query
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("who="))
        .map(|w| w.replace('+', " "))
        .unwrap_or_else(|| "world".to_string());
    let ok = (1..=64).contains(&who.chars().count())
        && who
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '.' | '-'));
    if !ok {
        return Err(ApiError::BadRequest(
            "who must be 1-64 letters, digits, spaces, dots or dashes".into(),
        ));
    }
    Ok(Greeting {
        message: format!("Hello, {who}!"),
        service: APP_ID,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use service_common::Problem;

    #[test]
    fn greets_by_name_and_refuses_odd_names() {
        assert_eq!(greet(Some("who=Ada")).expect("ok").message, "Hello, Ada!");
        assert_eq!(greet(None).expect("ok").message, "Hello, world!");
        for bad in ["who=", "who=%3Cscript%3E", "who=<b>"] {
            assert_eq!(greet(Some(bad)).expect_err(bad).status(), 400);
        }
    }
}
