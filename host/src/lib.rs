//! wasm-host's pure core, unit-tested natively: the manifest that says what a
//! service may touch, and the rules the host applies with it (which client a
//! request is from, which outbound requests and sockets are allowed), and
//! what it does against hostile clients (`guard`, `buffer`).
//! `main.rs` wires them into wasmtime.

pub mod buffer;
pub mod forwarded;
pub mod guard;
pub mod manifest;
pub mod metrics;
pub mod pool;
pub mod recorder;
pub mod spans;
pub mod trace;

pub use forwarded::{client_of, forwarded_value, set_client};
pub use manifest::{Capabilities, Limits, Manifest, Plan, SidecarPolicy, resolve};

use std::net::SocketAddr;

/// An outbound destination a manifest allows: exact host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    /// Host name or IP literal, lower case; IPv6 without brackets.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl Authority {
    /// Parses `host:port` (`[v6]:port` for IPv6). The port is required: an
    /// allow-list entry names one listener, not a whole host.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("`{s}`: expected host:port"))?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() || host.contains(['/', '@', ' ', '[', ']']) {
            return Err(format!("`{s}`: not a host"));
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("`{s}`: not a port"))?;
        Ok(Self {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

/// Whether a component may send an HTTP request to `authority` (the
/// request's `host[:port]`, default port from `scheme`).
pub fn outbound_allowed(allow: &[Authority], scheme: &str, authority: &str) -> bool {
    let default_port = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    let parsed = match authority.rsplit_once(':') {
        // A bare IPv6 literal has colons but no port; it must be bracketed.
        Some((_, p)) if p.bytes().all(|b| b.is_ascii_digit()) => Authority::parse(authority),
        _ => Authority::parse(&format!("{authority}:{default_port}")),
    };
    parsed.is_ok_and(|a| allow.contains(&a))
}

/// What a component is doing with a socket address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketUse {
    /// Binding a TCP socket (explicitly, or the implicit bind of `connect`).
    TcpBind,
    /// Connecting a TCP socket.
    TcpConnect,
    /// Anything else: listening, UDP.
    Other,
}

/// Whether a component may use `addr` so: TCP connections to the listed
/// addresses only, with the implicit wildcard bind that precedes them.
pub fn socket_allowed(allow: &[SocketAddr], addr: SocketAddr, use_: SocketUse) -> bool {
    match use_ {
        SocketUse::TcpConnect => allow.contains(&addr),
        SocketUse::TcpBind => !allow.is_empty() && addr.ip().is_unspecified() && addr.port() == 0,
        SocketUse::Other => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<Authority> {
        items
            .iter()
            .map(|s| Authority::parse(s).expect("authority"))
            .collect()
    }

    #[test]
    fn outbound_only_exact_host_and_port() {
        let allow = list(&["127.0.0.1:3503"]);
        assert!(outbound_allowed(&allow, "http", "127.0.0.1:3503"));
        for (scheme, authority) in [
            ("http", "127.0.0.1:3504"),
            ("http", "127.0.0.1"),
            ("https", "127.0.0.1:3503:1"),
            ("http", "localhost:3503"),
            ("http", "example.com"),
            ("http", "127.0.0.1:3503@evil"),
            ("ftp", "127.0.0.1:3503"),
            ("http", ""),
        ] {
            assert!(!outbound_allowed(&allow, scheme, authority), "{authority}");
        }
        let allow = list(&["Example.COM:443", "[::1]:80"]);
        assert!(outbound_allowed(&allow, "https", "example.com"));
        assert!(outbound_allowed(&allow, "http", "[::1]"));
        assert!(!outbound_allowed(&allow, "http", "example.com"));
    }

    #[test]
    fn authority_needs_a_port() {
        for bad in ["127.0.0.1", "host:0", ":80", "a/b:80", "host:http", "[::1]"] {
            assert!(Authority::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sockets_only_to_the_listed_addresses() {
        let db: SocketAddr = "127.0.0.1:3306".parse().expect("addr");
        let wildcard: SocketAddr = "0.0.0.0:0".parse().expect("addr");
        let allow = [db];
        assert!(socket_allowed(&allow, db, SocketUse::TcpConnect));
        assert!(socket_allowed(&allow, wildcard, SocketUse::TcpBind));
        for (addr, use_) in [
            ("127.0.0.1:3307", SocketUse::TcpConnect),
            ("10.0.0.1:3306", SocketUse::TcpConnect),
            ("0.0.0.0:8080", SocketUse::TcpBind),
            ("127.0.0.1:3306", SocketUse::Other),
        ] {
            let addr = addr.parse().expect("addr");
            assert!(!socket_allowed(&allow, addr, use_), "{addr} {use_:?}");
        }
        assert!(!socket_allowed(&[], wildcard, SocketUse::TcpBind));
    }
}
