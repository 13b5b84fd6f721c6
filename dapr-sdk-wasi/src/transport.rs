//! One HTTP exchange with the sidecar over wasi:http, directly on `wasip2`.
//!
//! Not `wstd::http::Client`: it writes the request body concurrently with
//! waiting for the response, and fails the whole call if the host has
//! already closed the body stream, which happens when the server answers
//! first (daprd answers a GET without reading a body). That showed up as
//! intermittent "connection reset" errors. Here an empty body is finished
//! before the request is handed to the host, and a body write that fails
//! after a response has arrived does not discard that response.

use crate::{Error, Result};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use std::time::Duration;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, Method as WasiMethod, OutgoingBody, OutgoingRequest,
    RequestOptions, Scheme,
};
use wstd::io::{AsyncInputStream, AsyncOutputStream};
use wstd::runtime::AsyncPollable;

/// A parsed sidecar endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    https: bool,
    authority: String,
}

impl Endpoint {
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(Error::Config(format!(
                "sidecar endpoint must be an http(s) URL: {url:?}"
            )));
        };
        let authority = rest.split('/').next().unwrap_or_default().to_string();
        if authority.is_empty() {
            return Err(Error::Config(format!(
                "sidecar endpoint has no host: {url:?}"
            )));
        }
        Ok(Self { https, authority })
    }
}

fn wasi_method(m: &Method) -> WasiMethod {
    match *m {
        Method::GET => WasiMethod::Get,
        Method::POST => WasiMethod::Post,
        Method::PUT => WasiMethod::Put,
        Method::DELETE => WasiMethod::Delete,
        Method::PATCH => WasiMethod::Patch,
        Method::HEAD => WasiMethod::Head,
        Method::OPTIONS => WasiMethod::Options,
        Method::CONNECT => WasiMethod::Connect,
        Method::TRACE => WasiMethod::Trace,
        ref other => WasiMethod::Other(other.as_str().to_string()),
    }
}

fn transport(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::Transport(format!("{what}: {e:?}"))
}

fn error_code(e: ErrorCode) -> Error {
    Error::Transport(match e {
        ErrorCode::ConnectionRefused => "connection refused".to_string(),
        ErrorCode::ConnectionTimeout => "connection timed out".to_string(),
        ErrorCode::ConnectionReadTimeout => "read timed out".to_string(),
        other => format!("{other:?}"),
    })
}

/// Sends one request and reads the whole answer (at most `limit` bytes).
pub(crate) async fn exchange(
    endpoint: &Endpoint,
    method: &Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: &[u8],
    timeout: Duration,
    limit: usize,
) -> Result<(u16, HeaderMap, Vec<u8>)> {
    let fields = Fields::new();
    for (name, value) in headers {
        fields
            .append(name.as_str(), value.as_bytes())
            .map_err(|e| transport("header", e))?;
    }
    let request = OutgoingRequest::new(fields);
    request
        .set_method(&wasi_method(method))
        .map_err(|()| Error::InvalidArgument("method".into()))?;
    request
        .set_scheme(Some(if endpoint.https {
            &Scheme::Https
        } else {
            &Scheme::Http
        }))
        .map_err(|()| Error::InvalidArgument("scheme".into()))?;
    request
        .set_authority(Some(&endpoint.authority))
        .map_err(|()| Error::InvalidArgument("authority".into()))?;
    request
        .set_path_with_query(Some(path_and_query))
        .map_err(|()| Error::InvalidArgument(format!("path {path_and_query:?}")))?;
    let options = RequestOptions::new();
    let nanos = timeout.as_nanos().min(u128::from(u64::MAX)) as u64;
    // Both setters only fail when the host does not support the option.
    let _ = options.set_connect_timeout(Some(nanos));
    let _ = options.set_first_byte_timeout(Some(nanos));
    let _ = options.set_between_bytes_timeout(Some(nanos));

    let outgoing_body = request
        .body()
        .map_err(|()| transport("request body", "taken"))?;
    let mut write_error = None;
    let future = if body.is_empty() {
        OutgoingBody::finish(outgoing_body, None).map_err(error_code)?;
        outgoing_handler::handle(request, Some(options)).map_err(error_code)?
    } else {
        let future = outgoing_handler::handle(request, Some(options)).map_err(error_code)?;
        let stream = outgoing_body
            .write()
            .map_err(|()| transport("request body", "stream taken"))?;
        let stream = AsyncOutputStream::new(stream);
        let written = stream.write_all(body).await;
        drop(stream);
        match written {
            Ok(()) => OutgoingBody::finish(outgoing_body, None).map_err(error_code)?,
            Err(e) => write_error = Some(e),
        }
        future
    };

    AsyncPollable::new(future.subscribe()).wait_for().await;
    let response = match future.get() {
        Some(Ok(Ok(r))) => r,
        Some(Ok(Err(code))) => return Err(error_code(code)),
        _ if write_error.is_some() => return Err(transport("request body", write_error)),
        _ => return Err(transport("response", "not ready")),
    };
    let status = response.status();
    let mut out_headers = HeaderMap::new();
    for (name, value) in response.headers().entries() {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_bytes(&value),
        ) {
            out_headers.append(n, v);
        }
    }
    let incoming = response
        .consume()
        .map_err(|()| transport("response body", "taken"))?;
    let data = read_all(&incoming, limit).await?;
    drop(IncomingBody::finish(incoming));
    Ok((status, out_headers, data))
}

async fn read_all(incoming: &IncomingBody, limit: usize) -> Result<Vec<u8>> {
    let stream = AsyncInputStream::new(
        incoming
            .stream()
            .map_err(|()| transport("response body", "stream taken"))?,
    );
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| transport("response body", e))?;
        if n == 0 {
            return Ok(out);
        }
        if out.len() + n > limit {
            return Err(Error::TooLarge { limit });
        }
        out.extend_from_slice(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_or_say_why_not() {
        let e = Endpoint::parse("http://127.0.0.1:3500").expect("http");
        assert!(!e.https);
        assert_eq!(e.authority, "127.0.0.1:3500");
        let e = Endpoint::parse("https://dapr.local/ignored/path").expect("https");
        assert!(e.https);
        assert_eq!(e.authority, "dapr.local");
        for bad in ["127.0.0.1:3500", "ftp://x", "http://", "http:///v1.0", ""] {
            assert!(
                matches!(Endpoint::parse(bad), Err(Error::Config(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn every_method_maps_to_its_wasi_name() {
        for (m, want) in [
            (Method::GET, "Get"),
            (Method::POST, "Post"),
            (Method::PUT, "Put"),
            (Method::DELETE, "Delete"),
            (Method::PATCH, "Patch"),
            (Method::HEAD, "Head"),
            (Method::OPTIONS, "Options"),
            (Method::CONNECT, "Connect"),
            (Method::TRACE, "Trace"),
        ] {
            let got = format!("{:?}", wasi_method(&m));
            assert!(got.contains(want), "{m}: {got}");
        }
        let purge = Method::from_bytes(b"PURGE").expect("method");
        assert!(matches!(wasi_method(&purge), WasiMethod::Other(s) if s == "PURGE"));
    }

    #[test]
    fn host_errors_become_transport_errors_with_a_readable_reason() {
        let refused = error_code(ErrorCode::ConnectionRefused);
        assert!(matches!(&refused, Error::Transport(m) if m == "connection refused"));
        let denied = error_code(ErrorCode::HttpRequestDenied);
        assert!(matches!(&denied, Error::Transport(m) if m.contains("HttpRequestDenied")));
    }

    #[test]
    fn an_unreachable_or_forbidden_sidecar_is_an_error_not_a_hang() {
        // Port 9 (discard) is not granted by tests/host.toml and nothing
        // listens there: the host refuses it or the connection fails.
        let endpoint = Endpoint::parse("http://127.0.0.1:9").expect("endpoint");
        for body in [&b""[..], b"{\"a\":1}"] {
            let r = wstd::runtime::block_on(exchange(
                &endpoint,
                &Method::POST,
                "/v1.0/state/x",
                &HeaderMap::new(),
                body,
                Duration::from_secs(2),
                1024,
            ));
            assert!(matches!(r, Err(Error::Transport(_))), "{r:?}");
        }
    }
}
