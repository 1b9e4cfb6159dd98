//! Which URLs a function may send a token, a secret or an event to.

/// `http://` to this machine (127.0.0.1, localhost, [::1]), with or without
/// a port or path: the simulator and moto in tests and local runs.
pub fn is_loopback_http(url: &str) -> bool {
    ["http://127.0.0.1", "http://localhost", "http://[::1]"]
        .iter()
        .any(|p| {
            url.strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
        })
}

/// `https://`, or loopback `http://` when `allow_loopback_http`.
pub fn is_https_or_allowed_loopback(url: &str, allow_loopback_http: bool) -> bool {
    url.starts_with("https://") || (allow_loopback_http && is_loopback_http(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_allowed_loopback_passes() {
        assert!(is_https_or_allowed_loopback(
            "https://api.example.com",
            false
        ));
        assert!(!is_https_or_allowed_loopback(
            "http://127.0.0.1:9000",
            false
        ));
        assert!(is_https_or_allowed_loopback("http://127.0.0.1:9000", true));
        assert!(is_https_or_allowed_loopback("http://localhost/x", true));
        assert!(!is_https_or_allowed_loopback(
            "http://127.0.0.1.evil.example",
            true
        ));
        assert!(!is_https_or_allowed_loopback(
            "http://api.mypurecloud.com",
            true
        ));
        assert!(!is_https_or_allowed_loopback("ftp://127.0.0.1", true));
    }
}
