//! Who is calling: the address the rate limit and client records use.
//!
//! wasm-host (host/) sets exactly one `forwarded: for=<ip>` on every request
//! it hands a component, from the TCP peer, or from the calling app's word
//! when the request proves it came through our own sidecar; whatever the
//! client sent under `forwarded` or `x-forwarded-for` is dropped first. So
//! the services trust that header and nothing else.

/// Used when the request carries no usable client address (a host that does
/// not set one). Such callers share one rate limit.
pub const UNKNOWN: &str = "unknown";

/// The client's address from the host's `forwarded: for=` value, else
/// [`UNKNOWN`]. Only an IP literal is accepted, so a malformed header cannot
/// choose arbitrary state keys.
pub fn client_address(forwarded: Option<&str>) -> String {
    forwarded
        .and_then(|v| {
            v.split([';', ',']).map(str::trim).find_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| v.trim().trim_matches('"'))
            })
        })
        .and_then(parse_ip)
        .unwrap_or_else(|| UNKNOWN.to_string())
}

fn parse_ip(s: &str) -> Option<String> {
    let s = s.trim();
    // `[v6]:port`, `[v6]` or `v4:port` forms.
    let candidates = [
        s.strip_prefix('[').and_then(|r| r.split(']').next()),
        Some(s),
        s.rsplit_once(':').map(|(h, _)| h),
    ];
    candidates
        .into_iter()
        .flatten()
        .find_map(|c| c.parse::<std::net::IpAddr>().ok())
        .map(|ip| ip.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_hosts_forwarded_value() {
        assert_eq!(client_address(Some("for=127.0.0.2")), "127.0.0.2");
        assert_eq!(client_address(Some("for=\"[2001:db8::2]\"")), "2001:db8::2");
        assert_eq!(
            client_address(Some("for=192.0.2.60;proto=http;by=203.0.113.43")),
            "192.0.2.60"
        );
        assert_eq!(
            client_address(Some("for=198.51.100.2:5000")),
            "198.51.100.2"
        );
    }

    #[test]
    fn garbage_is_unknown() {
        assert_eq!(client_address(None), UNKNOWN);
        assert_eq!(client_address(Some("for=../../etc/passwd")), UNKNOWN);
        assert_eq!(client_address(Some("for=unknown")), UNKNOWN);
        assert_eq!(client_address(Some("by=1.2.3.4")), UNKNOWN);
    }
}
