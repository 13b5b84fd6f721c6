//! Which client a request is from. The host replaces whatever the caller sent
//! under `forwarded` and `x-forwarded-for` with one `forwarded: for=<ip>`
//! that the services trust (the trust model is in the host's README):
//!
//! - A direct call: the TCP peer. Headers are the caller's word, so ignored.
//! - A call through the service's own sidecar, proven by the Dapr app API
//!   token: the peer is the sidecar. Dapr appends one `Forwarded` element of
//!   its own (`for=<sidecar>;by=<sidecar>;host=<name>`, see
//!   `addForwardedHeadersToMetadata` in dapr's `pkg/messaging/
//!   direct_messaging.go`). The element before it is the one the calling app
//!   (our gateway, which the access-control policy lets call) put there from
//!   its own host's header. With no such element, the calling sidecar.

use http::{HeaderMap, HeaderValue};
use std::net::IpAddr;
use subtle::ConstantTimeEq as _;

/// Headers a caller might use to claim to be someone else; all dropped.
const CLAIMS: [&str; 3] = ["forwarded", "x-forwarded-for", "x-real-ip"];

/// Replaces the caller's client headers with the one the services trust.
/// `app_token` is this app's `APP_API_TOKEN`: a request carrying it as
/// `dapr-api-token` came through our own sidecar. Returns the end client
/// (the peer, or the one the gateway vouched for), or `None` for Dapr's own
/// calls through the sidecar (pub/sub deliveries, another app's invocation
/// with no client of its own).
pub fn set_client(
    headers: &mut HeaderMap,
    peer: IpAddr,
    app_token: Option<&str>,
) -> Option<IpAddr> {
    let via_sidecar = match (app_token, headers.get("dapr-api-token")) {
        (Some(want), Some(got)) => bool::from(want.as_bytes().ct_eq(got.as_bytes())),
        _ => false,
    };
    let values: Vec<&str> = headers
        .get_all(http::header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let (client, end_client) = decide(peer, &values, via_sidecar);
    for name in CLAIMS {
        headers.remove(name);
    }
    if let Ok(v) = HeaderValue::from_str(&forwarded_value(client)) {
        headers.insert(http::header::FORWARDED, v);
    }
    end_client.then_some(client)
}

/// The client of a request from `peer`, given every value of its `forwarded`
/// header in order, and whether it proved it came through our sidecar.
pub fn client_of(peer: IpAddr, forwarded: &[&str], via_sidecar: bool) -> IpAddr {
    decide(peer, forwarded, via_sidecar).0
}

/// The client, and whether it is an end client rather than the calling
/// sidecar.
fn decide(peer: IpAddr, forwarded: &[&str], via_sidecar: bool) -> (IpAddr, bool) {
    if !via_sidecar {
        return (peer, true);
    }
    let elements: Vec<&str> = forwarded.iter().flat_map(|v| v.split(',')).collect();
    let n = elements.len();
    if let Some(vouched) = n.checked_sub(2).and_then(|i| for_ip(elements[i])) {
        return (vouched, true);
    }
    let sidecar = n.checked_sub(1).and_then(|i| for_ip(elements[i]));
    (sidecar.unwrap_or(peer), false)
}

/// The `forwarded` value the host sets: `for=1.2.3.4`, `for="[2001:db8::1]"`.
pub fn forwarded_value(client: IpAddr) -> String {
    match client {
        IpAddr::V4(ip) => format!("for={ip}"),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => format!("for={v4}"),
            None => format!("for=\"[{ip}]\""),
        },
    }
}

/// The IP of an element's `for=` node (RFC 7239 §6: `1.2.3.4`, `"[v6]"`,
/// either with a port); `None` for obfuscated or unknown nodes.
fn for_ip(element: &str) -> Option<IpAddr> {
    let node = element.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then(|| v.trim())
    })?;
    let node = node.trim_matches('"');
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    let host = match node.split_once(':') {
        Some((h, _port)) => h,
        None => node,
    };
    host.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn direct_calls_are_the_peer_whatever_they_claim() {
        let peer = ip("127.0.0.2");
        for claims in [
            &[][..],
            &["for=203.0.113.9"],
            &["for=203.0.113.9, for=198.51.100.1"],
            &["for=198.51.100.1", "for=203.0.113.9;by=1.1.1.1"],
        ] {
            assert_eq!(client_of(peer, claims, false), peer, "{claims:?}");
        }
    }

    #[test]
    fn through_the_sidecar_the_element_before_daprs() {
        let sidecar = ip("127.0.0.1");
        // Our gateway set the browser's address; Dapr appended its own.
        let h = ["for=127.0.0.3", "for=10.1.2.3;by=10.1.2.3;host=node"];
        assert_eq!(client_of(sidecar, &h, true), ip("127.0.0.3"));
        // Same, as one comma-joined field.
        let h = ["for=127.0.0.3, for=10.1.2.3;by=10.1.2.3;host=node"];
        assert_eq!(client_of(sidecar, &h, true), ip("127.0.0.3"));
        // Anything a client smuggled further left is never read.
        let h = [
            "for=6.6.6.6, for=127.0.0.3",
            "for=10.1.2.3;by=10.1.2.3;host=node",
        ];
        assert_eq!(client_of(sidecar, &h, true), ip("127.0.0.3"));
        // IPv6 and ports.
        let h = ["for=\"[2001:db8::7]:4711\"", "for=10.1.2.3"];
        assert_eq!(client_of(sidecar, &h, true), ip("2001:db8::7"));
        let h = ["for=192.0.2.4:5000", "for=10.1.2.3"];
        assert_eq!(client_of(sidecar, &h, true), ip("192.0.2.4"));
    }

    #[test]
    fn through_the_sidecar_without_a_vouched_client() {
        let sidecar = ip("127.0.0.1");
        // An app that sent none: the calling sidecar.
        let h = ["for=10.1.2.3;by=10.1.2.3;host=node"];
        assert_eq!(client_of(sidecar, &h, true), ip("10.1.2.3"));
        // Garbage where the client should be: the calling sidecar.
        let h = ["for=_hidden", "for=10.1.2.3"];
        assert_eq!(client_of(sidecar, &h, true), ip("10.1.2.3"));
        // Nothing usable at all: the peer.
        assert_eq!(client_of(sidecar, &[], true), sidecar);
        assert_eq!(client_of(sidecar, &["host=x", "by=y"], true), sidecar);
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    fn only_forwarded(h: &HeaderMap) -> Vec<&str> {
        assert!(h.get("x-forwarded-for").is_none() && h.get("x-real-ip").is_none());
        h.get_all("forwarded")
            .iter()
            .map(|v| v.to_str().expect("ascii"))
            .collect()
    }

    #[test]
    fn spoofed_headers_are_replaced_by_the_peer() {
        let mut h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-real-ip", "6.6.6.7"),
            ("forwarded", "for=6.6.6.8"),
            ("forwarded", "for=6.6.6.9"),
            ("accept", "image/png"),
        ]);
        let end = set_client(&mut h, ip("127.0.0.2"), Some("secret"));
        assert_eq!(
            end,
            Some(ip("127.0.0.2")),
            "a direct call's client is the peer"
        );
        assert_eq!(only_forwarded(&h), ["for=127.0.0.2"]);
        assert_eq!(
            h.get("accept").map(|v| v.as_bytes()),
            Some(&b"image/png"[..])
        );
        // A wrong token, or a token where none is configured, is no proof.
        for token in [Some("secret"), None] {
            let mut h = headers(&[
                ("dapr-api-token", "guess"),
                ("forwarded", "for=6.6.6.8, for=10.0.0.1"),
            ]);
            if token.is_none() {
                h.insert("dapr-api-token", HeaderValue::from_static("secret"));
            }
            set_client(&mut h, ip("127.0.0.2"), token);
            assert_eq!(only_forwarded(&h), ["for=127.0.0.2"]);
        }
    }

    #[test]
    fn the_sidecars_path_keeps_the_gateways_word() {
        let mut h = headers(&[
            ("dapr-api-token", "secret"),
            ("x-forwarded-for", "127.0.0.3, 10.1.2.3"),
            ("forwarded", "for=127.0.0.3"),
            ("forwarded", "for=10.1.2.3;by=10.1.2.3;host=node"),
        ]);
        let end = set_client(&mut h, ip("127.0.0.1"), Some("secret"));
        assert_eq!(end, Some(ip("127.0.0.3")), "the gateway's client");
        assert_eq!(only_forwarded(&h), ["for=127.0.0.3"]);
        // Dapr's own call (a delivery): the calling sidecar, not an end client.
        let mut h = headers(&[
            ("dapr-api-token", "secret"),
            ("forwarded", "for=10.1.2.3;by=10.1.2.3;host=node"),
        ]);
        assert_eq!(set_client(&mut h, ip("127.0.0.1"), Some("secret")), None);
        assert_eq!(only_forwarded(&h), ["for=10.1.2.3"]);
    }

    #[test]
    fn value_round_trips() {
        for s in ["127.0.0.2", "2001:db8::1"] {
            let v = forwarded_value(ip(s));
            assert_eq!(client_of(ip("1.1.1.1"), &[&v, "for=9.9.9.9"], true), ip(s));
        }
        assert_eq!(forwarded_value(ip("::ffff:127.0.0.2")), "for=127.0.0.2");
    }
}
