//! Who is calling: the address the rate limit and client records use.

/// Used when the request carries no client address. wasi:http does not give
/// a component its peer's address, so direct calls to a service port share it.
pub const UNKNOWN: &str = "unknown";

/// The client's address from `X-Forwarded-For` (set by our gateway and by
/// the Dapr sidecar), else `Forwarded: for=`, else [`UNKNOWN`]. Never the
/// Referer. Only an IP literal is accepted, so a hostile header cannot
/// choose arbitrary state keys.
pub fn client_address(x_forwarded_for: Option<&str>, forwarded: Option<&str>) -> String {
    let from_xff = x_forwarded_for
        .and_then(|v| v.split(',').next())
        .map(str::trim);
    let from_fwd = forwarded.and_then(|v| {
        v.split([';', ',']).map(str::trim).find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("for")
                .then(|| v.trim().trim_matches('"'))
        })
    });
    from_xff
        .and_then(parse_ip)
        .or_else(|| from_fwd.and_then(parse_ip))
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
    fn picks_first_forwarded_ip() {
        assert_eq!(
            client_address(Some("203.0.113.7, 10.0.0.1"), None),
            "203.0.113.7"
        );
        assert_eq!(
            client_address(Some("[2001:db8::1]:443"), None),
            "2001:db8::1"
        );
        assert_eq!(
            client_address(Some("198.51.100.2:5000"), None),
            "198.51.100.2"
        );
        assert_eq!(
            client_address(None, Some("for=192.0.2.60;proto=http;by=203.0.113.43")),
            "192.0.2.60"
        );
        assert_eq!(
            client_address(None, Some("proto=http; for=\"[2001:db8::2]\"")),
            "2001:db8::2"
        );
    }

    #[test]
    fn garbage_is_unknown() {
        assert_eq!(client_address(None, None), UNKNOWN);
        assert_eq!(client_address(Some("../../etc/passwd"), None), UNKNOWN);
        assert_eq!(client_address(Some(""), Some("for=unknown")), UNKNOWN);
    }
}
