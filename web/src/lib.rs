//! web: the page and the API gateway it talks to.
//!
//! | Route | Answer |
//! |---|---|
//! | `GET /` (`/index.html`), `/app.js`, `/style.css` | the static page, compiled into the component |
//! | `POST /api/grayscale` | forwarded to image-api-grayscale `POST /grayscale` by Dapr service invocation |
//! | `POST /api/classify` | forwarded to image-api-classify `POST /classify` |
//! | `GET /api/events` | forwarded to events-service `GET /events` (query kept) |
//! | `GET /healthz` | `{"status":"ok"}` |
//!
//! Status codes, error bodies, Content-Type and Retry-After come back
//! unchanged. This file is the pure part (routing, header selection); the
//! handler does the I/O.

use http::{HeaderMap, HeaderName, HeaderValue, Method};
pub use service_common::ApiError;
use service_common::CodeDoc;

/// The codes the gateway itself answers (the services' own pass through
/// unchanged), for the README table.
pub fn error_codes() -> Vec<CodeDoc> {
    ApiError::docs(&[
        "bad_request",
        "not_found",
        "method_not_allowed",
        "payload_too_large",
        "headers_too_large",
        "unavailable",
        "internal",
    ])
}

/// A static file of the page.
#[derive(Debug, PartialEq, Eq)]
pub struct Asset {
    /// Bytes.
    pub body: &'static [u8],
    /// Content-Type.
    pub content_type: &'static str,
}

static INDEX: Asset = Asset {
    body: include_bytes!("../static/index.html"),
    content_type: "text/html; charset=utf-8",
};
static APP_JS: Asset = Asset {
    body: include_bytes!("../static/app.js"),
    content_type: "text/javascript; charset=utf-8",
};
static STYLE: Asset = Asset {
    body: include_bytes!("../static/style.css"),
    content_type: "text/css; charset=utf-8",
};

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// A static file.
    Asset(&'static Asset),
    /// Forward to `app_id` at `path` with `method`.
    Api {
        /// Target Dapr app id.
        app_id: &'static str,
        /// Method to invoke with.
        method: Method,
        /// Route on the target app.
        path: &'static str,
    },
    /// `GET /healthz`.
    Health,
    /// Known path, wrong method.
    MethodNotAllowed,
    /// Unknown path.
    NotFound,
}

/// Routes on method and path (never on the query string). Each path is
/// listed once, with the method it takes: a known path with another method
/// is 405, anything else 404.
pub fn route(method: &Method, path: &str) -> Route {
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    let (route, allowed) = match path {
        "/" | "/index.html" => (Route::Asset(&INDEX), get),
        "/app.js" => (Route::Asset(&APP_JS), get),
        "/style.css" => (Route::Asset(&STYLE), get),
        "/healthz" | "/health" => (Route::Health, get),
        "/api/grayscale" => (
            Route::Api {
                app_id: "image-api-grayscale",
                method: Method::POST,
                path: "grayscale",
            },
            post,
        ),
        "/api/classify" => (
            Route::Api {
                app_id: "image-api-classify",
                method: Method::POST,
                path: "classify",
            },
            post,
        ),
        "/api/events" => (
            Route::Api {
                app_id: "events-service",
                method: Method::GET,
                path: "events",
            },
            get,
        ),
        _ => return Route::NotFound,
    };
    if allowed {
        route
    } else {
        Route::MethodNotAllowed
    }
}

/// The largest upload the gateway forwards: `MAX_BODY_BYTES`, which the
/// host sets from web's host.toml (`max_body_bytes`, under the sidecar's
/// request limit); the host itself answers 413 above it.
pub fn max_upload_bytes(lookup: impl Fn(&str) -> Option<String>) -> usize {
    service_common::ImageLimits::from_lookup(lookup).max_body_bytes
}

/// Request headers forwarded to a service: what describes the body and the
/// wanted answer, plus the client's address. Nothing else (cookies,
/// authorization, hop-by-hop headers) leaves the gateway.
pub fn forward_request_headers(incoming: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in [http::header::CONTENT_TYPE, http::header::ACCEPT] {
        if let Some(v) = incoming.get(&name) {
            out.insert(name, v.clone());
        }
    }
    // Our host replaced whatever the browser claimed with `forwarded:
    // for=<its address>`. Passed on, it reaches the service through both
    // sidecars, whose host trusts it because the call carries the app token
    // (host/README.md, "Which client").
    if let Some(v) = incoming.get(http::header::FORWARDED) {
        out.insert(http::header::FORWARDED, v.clone());
    }
    out
}

/// A refusal by a sidecar on the way (daprd answers a body or headers over
/// its limits in plain text), as our JSON error. The services' own answers
/// are JSON and pass through unchanged.
pub fn sidecar_refusal(status: u16, headers: &HeaderMap, max_upload: usize) -> Option<ApiError> {
    let json = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    match status {
        413 if !json => Some(ApiError::too_large(max_upload)),
        431 if !json => Some(ApiError::HeadersTooLarge),
        _ => None,
    }
}

/// Response headers passed back to the browser unchanged.
pub fn forward_response_headers(from_service: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    [http::header::CONTENT_TYPE, http::header::RETRY_AFTER]
        .into_iter()
        .filter_map(|n| from_service.get(&n).map(|v| (n, v.clone())))
        .collect()
}

/// The target path with the original query string, if any.
pub fn with_query(path: &str, query: Option<&str>) -> String {
    match query {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_lists_every_code() {
        let readme = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
        if let Err(e) = service_common::check_readme_table(&readme, &error_codes()) {
            panic!("{e}");
        }
    }

    #[test]
    fn a_sidecars_plain_refusals_become_json_errors() {
        let text = HeaderMap::from_iter([(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )]);
        let json = HeaderMap::from_iter([(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )]);
        assert_eq!(
            sidecar_refusal(431, &text, 10),
            Some(ApiError::HeadersTooLarge)
        );
        assert_eq!(
            sidecar_refusal(413, &HeaderMap::new(), 10),
            Some(ApiError::too_large(10))
        );
        assert_eq!(sidecar_refusal(413, &json, 10), None, "the service's own");
        assert_eq!(sidecar_refusal(200, &text, 10), None);
    }

    #[test]
    fn routes() {
        assert_eq!(route(&Method::GET, "/"), Route::Asset(&INDEX));
        assert_eq!(route(&Method::HEAD, "/app.js"), Route::Asset(&APP_JS));
        assert!(matches!(
            route(&Method::POST, "/api/grayscale"),
            Route::Api {
                app_id: "image-api-grayscale",
                path: "grayscale",
                ..
            }
        ));
        assert!(matches!(
            route(&Method::GET, "/api/events"),
            Route::Api {
                app_id: "events-service",
                ..
            }
        ));
        assert_eq!(
            route(&Method::GET, "/api/grayscale"),
            Route::MethodNotAllowed
        );
        assert_eq!(route(&Method::DELETE, "/"), Route::MethodNotAllowed);
        assert_eq!(route(&Method::GET, "/../Cargo.toml"), Route::NotFound);
        assert_eq!(route(&Method::GET, "/api/other"), Route::NotFound);
        assert_eq!(route(&Method::GET, "/healthz"), Route::Health);
    }

    #[test]
    fn everything_the_page_loads_is_served_with_its_type() {
        let page = std::str::from_utf8(INDEX.body).expect("utf-8");
        let mut found = 0;
        for attr in ["src=\"", "href=\""] {
            for (i, _) in page.match_indices(attr) {
                let rest = &page[i + attr.len()..];
                let path = &rest[..rest.find('"').expect("closing quote")];
                if !path.starts_with('/') {
                    continue; // not ours (none today)
                }
                found += 1;
                let Route::Asset(a) = route(&Method::GET, path) else {
                    panic!("the page loads {path}, which is not served");
                };
                let want = match path.rsplit('.').next() {
                    Some("js") => "text/javascript",
                    Some("css") => "text/css",
                    other => panic!("no type expected for {other:?}"),
                };
                assert!(
                    a.content_type.starts_with(want),
                    "{path}: {}",
                    a.content_type
                );
                assert!(!a.body.is_empty(), "{path} is empty");
            }
        }
        assert!(found >= 2, "the page should load its script and style");
    }

    #[test]
    fn only_safe_headers_are_forwarded() {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("image/png"));
        h.insert("accept", HeaderValue::from_static("image/png"));
        h.insert("cookie", HeaderValue::from_static("session=secret"));
        h.insert("authorization", HeaderValue::from_static("Bearer x"));
        h.insert("forwarded", HeaderValue::from_static("for=203.0.113.9"));
        h.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        h.insert("connection", HeaderValue::from_static("keep-alive"));
        let out = forward_request_headers(&h);
        assert_eq!(out.len(), 3);
        assert!(out.get("cookie").is_none() && out.get("authorization").is_none());
        assert!(out.get("x-forwarded-for").is_none());
        assert_eq!(
            out.get("forwarded").map(|v| v.as_bytes()),
            Some(&b"for=203.0.113.9"[..])
        );

        let mut r = HeaderMap::new();
        r.insert("content-type", HeaderValue::from_static("application/json"));
        r.insert("retry-after", HeaderValue::from_static("7"));
        r.insert("set-cookie", HeaderValue::from_static("x=y"));
        let back = forward_response_headers(&r);
        assert_eq!(back.len(), 2);
    }

    #[test]
    fn the_upload_limit_follows_max_body_bytes() {
        assert_eq!(max_upload_bytes(|_| None), 10_000_000);
        let set = |k: &str| (k == "MAX_BODY_BYTES").then(|| "1234".to_string());
        assert_eq!(max_upload_bytes(set), 1234);
    }

    #[test]
    fn query_is_kept() {
        assert_eq!(with_query("events", Some("limit=5")), "events?limit=5");
        assert_eq!(with_query("events", Some("")), "events");
        assert_eq!(with_query("events", None), "events");
    }
}
