//! Region -> login and API hosts, as in the official SDKs' region tables
//! (docs/DESIGN.md lists them with their sources).

use chrono::{DateTime, SecondsFormat};

/// AWS-style region name -> Genesys Cloud domain.
pub const REGIONS: [(&str, &str); 18] = [
    ("us-east-1", "mypurecloud.com"),
    ("us-east-2", "use2.us-gov-pure.cloud"),
    ("us-west-2", "usw2.pure.cloud"),
    ("ca-central-1", "cac1.pure.cloud"),
    ("sa-east-1", "sae1.pure.cloud"),
    ("mx-central-1", "mxc1.pure.cloud"),
    ("eu-west-1", "mypurecloud.ie"),
    ("eu-west-2", "euw2.pure.cloud"),
    ("eu-central-1", "mypurecloud.de"),
    ("eu-central-2", "euc2.pure.cloud"),
    ("eusc-de-east-1", "edee1.eusc-pure.cloud"),
    ("me-central-1", "mec1.pure.cloud"),
    ("ap-south-1", "aps1.pure.cloud"),
    ("ap-northeast-1", "mypurecloud.jp"),
    ("ap-northeast-2", "apne2.pure.cloud"),
    ("ap-northeast-3", "apne3.pure.cloud"),
    ("ap-southeast-1", "apse1.pure.cloud"),
    ("ap-southeast-2", "mypurecloud.com.au"),
];

/// Base URLs (no trailing slash) of the login host and the API host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hosts {
    /// `https://login.<domain>`: the token endpoint.
    pub login: String,
    /// `https://api.<domain>`: the Platform API.
    pub api: String,
}

/// A region or domain that is not in [`REGIONS`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown Genesys Cloud region or domain '{0}': use a region name such as us-east-1 or a domain such as mypurecloud.com"
)]
pub struct UnknownRegion(pub String);

impl Hosts {
    /// From a region name (`us-east-1`) or a raw domain (`mypurecloud.com`).
    pub fn for_region(region_or_domain: &str) -> Result<Self, UnknownRegion> {
        let key = region_or_domain
            .trim()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let domain = REGIONS
            .iter()
            .find(|(region, domain)| *region == key || *domain == key)
            .map(|(_, d)| (*d).to_string())
            .ok_or_else(|| UnknownRegion(region_or_domain.to_string()))?;
        Ok(Self {
            login: format!("https://login.{domain}"),
            api: format!("https://api.{domain}"),
        })
    }

    /// One base URL for both hosts (the simulator).
    pub fn single(base_url: &str) -> Self {
        let base = base_url.trim_end_matches('/').to_string();
        Self {
            login: base.clone(),
            api: base,
        }
    }
}

/// An ISO-8601 interval `start/end` in UTC with milliseconds, as the
/// analytics endpoints take it. `None` outside chrono's range of dates.
pub fn interval(from_ms: i64, to_ms: i64) -> Option<String> {
    let iso = |ms| {
        DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
    };
    Some(format!("{}/{}", iso(from_ms)?, iso(to_ms)?))
}

/// Percent-encodes a path segment or query value: every byte but RFC 3986's
/// unreserved characters, so an id from an event can never change a URL's
/// shape.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_percent_encoded() {
        assert_eq!(encode_component("a-B_9.~"), "a-B_9.~");
        assert_eq!(
            encode_component("../../tokens/me?x="),
            "..%2F..%2Ftokens%2Fme%3Fx%3D"
        );
        assert_eq!(
            encode_component("2026-11-20T15:02:30.107Z/x"),
            "2026-11-20T15%3A02%3A30.107Z%2Fx"
        );
    }

    #[test]
    fn intervals_are_utc_with_milliseconds() {
        assert_eq!(
            interval(1_795_186_950_107, 1_795_186_960_000).as_deref(),
            Some("2026-11-20T15:02:30.107Z/2026-11-20T15:02:40.000Z")
        );
        assert_eq!(interval(i64::MAX, 0), None);
    }

    #[test]
    fn every_region_and_its_domain_resolve_to_the_same_hosts() {
        for (region, domain) in REGIONS {
            let by_region = Hosts::for_region(region).expect("region");
            assert_eq!(by_region, Hosts::for_region(domain).expect("domain"));
            assert_eq!(by_region.login, format!("https://login.{domain}"));
            assert_eq!(by_region.api, format!("https://api.{domain}"));
        }
        assert_eq!(
            Hosts::for_region(" EU-West-1 ")
                .expect("case and spaces")
                .api,
            "https://api.mypurecloud.ie"
        );
    }

    #[test]
    fn unknown_regions_are_a_clear_error() {
        let e = Hosts::for_region("mars-north-1").expect_err("unknown");
        assert!(e.to_string().contains("mars-north-1"));
    }

    #[test]
    fn a_base_url_serves_both_hosts() {
        let h = Hosts::single("http://127.0.0.1:8080/");
        assert_eq!(h.login, "http://127.0.0.1:8080");
        assert_eq!(h.api, "http://127.0.0.1:8080");
    }
}
