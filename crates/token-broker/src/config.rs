//! The broker's tuning and the environment variables it comes from.

use std::time::Duration;

use genesys::Hosts;
use lambda_support::{ConfigErrors, Env};

/// Tuning of the protocol. Times are in the clock's milliseconds except
/// `wait_timeout`, which bounds real waiting.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Token slots (each its own 300 requests/min budget).
    pub pool_size: usize,
    /// Replace a token this long before it expires; `None` picks it from the
    /// token's lifetime (see [`BrokerConfig::margin_for`]). Clamped either way.
    pub refresh_margin: Option<Duration>,
    /// How often the refresher runs (its schedule): a token is replaced at
    /// least two periods before it expires, so one missed run costs nothing.
    pub refresher_period: Duration,
    /// Lease length; longer than the worst-case fetch including retries.
    pub lease: Duration,
    /// Re-read the item when the in-memory copy is older than this.
    pub max_age: Duration,
    /// Treat a token as expired this much early (clock skew).
    pub expiry_skew: Duration,
    /// How long a caller waits for another writer's token.
    pub wait_timeout: Duration,
    /// First pause of the shared backoff.
    pub backoff_base: Duration,
    /// Longest pause of the shared backoff (and the pause after `invalid_client`).
    pub backoff_max: Duration,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            pool_size: 1,
            refresh_margin: None,
            refresher_period: Duration::from_secs(60),
            lease: Duration::from_secs(30),
            max_age: Duration::from_secs(60),
            expiry_skew: Duration::from_secs(30),
            wait_timeout: Duration::from_secs(10),
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(300),
        }
    }
}

/// When a token is replaced, as time before its expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Margin {
    /// Replace this long before expiry.
    pub before_expiry: Duration,
    /// Set when the configured margin could not be used as given.
    pub clamped: Option<Clamped>,
}

/// Why a configured margin was not used as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clamped {
    /// Under two refresher periods plus the skew: raised to that.
    BelowTwoPeriods,
    /// Over half the lifetime: a token would be replaced while young, every
    /// reader would find it due at once. Lowered to half the lifetime.
    OverHalfTheLifetime,
    /// The lifetime is shorter than four refresher periods: replaced at half
    /// its lifetime, the most that can be kept without a storm.
    LifetimeTooShort,
}

impl BrokerConfig {
    /// When to replace a token that lives `lifetime`. Automatic: a tenth of
    /// the lifetime, at most 10 minutes (the token endpoint outage the fleet
    /// rides out), at least two refresher periods plus the skew, at most half
    /// the lifetime. A configured margin is held to the same bounds.
    pub fn margin_for(&self, lifetime: Duration) -> Margin {
        let floor = self.refresher_period.saturating_mul(2) + self.expiry_skew;
        let ceiling = lifetime / 2;
        if floor > ceiling {
            return Margin {
                before_expiry: ceiling,
                clamped: Some(Clamped::LifetimeTooShort),
            };
        }
        let (want, configured) = match self.refresh_margin {
            Some(m) => (m, true),
            None => (
                (lifetime / 10).min(Duration::from_secs(600)).max(floor),
                false,
            ),
        };
        let (before_expiry, clamped) = if want < floor {
            (floor, Some(Clamped::BelowTwoPeriods))
        } else if want > ceiling {
            (ceiling, Some(Clamped::OverHalfTheLifetime))
        } else {
            (want, None)
        };
        Margin {
            before_expiry,
            clamped: clamped.filter(|_| configured),
        }
    }
}

/// What the token broker and its users need.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    /// DynamoDB table of the token items.
    pub token_table: String,
    /// Secrets Manager secret (name or ARN) of the OAuth client.
    pub secret_id: String,
    /// Genesys Cloud hosts.
    pub hosts: Hosts,
    /// The protocol's tuning.
    pub broker: BrokerConfig,
    /// How long a container caches the secret.
    pub credentials_max_age: Duration,
    /// Set (`TENANTS_TABLE`): many orgs, each with its region and secret in
    /// the tenant registry in this table; `secret_id` and `hosts` are unused.
    pub tenants_table: Option<String>,
    /// `GENESYS_ALLOW_LOOPBACK_HTTP=1`: an org's base URL may be loopback http.
    pub allow_loopback_http: bool,
}

/// Variable: the token table.
pub const TOKEN_TABLE: &str = "TOKEN_TABLE";
/// Variable name.
pub const GENESYS_SECRET_ID: &str = "GENESYS_SECRET_ID";
/// Variable name.
pub const GENESYS_REGION: &str = "GENESYS_REGION";
/// Variable name.
pub const GENESYS_BASE_URL: &str = "GENESYS_BASE_URL";
/// Variable (tests and local runs only): `1` lets `GENESYS_BASE_URL` be
/// plain `http://` to a loopback host (the simulator). The token and the
/// client secret never travel in clear text otherwise.
pub const GENESYS_ALLOW_LOOPBACK_HTTP: &str = "GENESYS_ALLOW_LOOPBACK_HTTP";
/// Variable name.
pub const TOKEN_POOL_SIZE: &str = "TOKEN_POOL_SIZE";
/// Variable name.
pub const TOKEN_REFRESH_MARGIN_SECONDS: &str = "TOKEN_REFRESH_MARGIN_SECONDS";
/// Variable: the token refresher's schedule, seconds (the template's rate).
pub const TOKEN_REFRESHER_PERIOD_SECONDS: &str = "TOKEN_REFRESHER_PERIOD_SECONDS";
/// Variable name.
pub const TOKEN_LEASE_SECONDS: &str = "TOKEN_LEASE_SECONDS";
/// Variable name.
pub const TOKEN_MAX_AGE_SECONDS: &str = "TOKEN_MAX_AGE_SECONDS";
/// Variable name.
pub const CREDENTIALS_MAX_AGE_SECONDS: &str = "CREDENTIALS_MAX_AGE_SECONDS";

impl TokenConfig {
    /// From the process environment.
    pub fn from_env() -> Result<Self, ConfigErrors> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// From `get` (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigErrors> {
        let mut env = Env::new(get);
        let token_table =
            env.required(TOKEN_TABLE, "the DynamoDB table that holds the token items");
        let tenants_table = env.optional(token_store::tenants::TENANTS_TABLE);
        let loopback_ok = env.optional(GENESYS_ALLOW_LOOPBACK_HTTP).as_deref() == Some("1");
        // Many orgs: each org's secret and region come from its registry item.
        let single = tenants_table.is_none();
        let secret_id = if single {
            env.required(
                GENESYS_SECRET_ID,
                "the Secrets Manager secret (name or ARN) holding {\"clientId\",\"clientSecret\"}",
            )
        } else {
            String::new()
        };
        let hosts = if single {
            genesys_hosts(&mut env, loopback_ok)
        } else {
            Hosts::single("http://invalid")
        };
        let defaults = BrokerConfig::default();
        let pool_size = env.number(TOKEN_POOL_SIZE, 1, 1..=32) as usize;
        // 0 (the template's default) or unset: from each token's lifetime.
        let refresh_margin = match env.number(TOKEN_REFRESH_MARGIN_SECONDS, 0, 0..=86_400) {
            0 => None,
            s => Some(s),
        };
        let refresher_period = env.number(
            TOKEN_REFRESHER_PERIOD_SECONDS,
            defaults.refresher_period.as_secs(),
            60..=3_600,
        );
        // At most 60 s: a fetch runs under the lease, and the functions
        // that fetch (refresher, sweeper) must finish one within their
        // 120 s timeout with time to publish.
        let lease = env.number(TOKEN_LEASE_SECONDS, defaults.lease.as_secs(), 10..=60);
        let max_age = env.number(TOKEN_MAX_AGE_SECONDS, defaults.max_age.as_secs(), 1..=3_600);
        let credentials_max_age = env.number(CREDENTIALS_MAX_AGE_SECONDS, 300, 0..=86_400);
        env.finish(Self {
            token_table,
            secret_id,
            hosts,
            broker: BrokerConfig {
                pool_size,
                refresh_margin: refresh_margin.map(Duration::from_secs),
                refresher_period: Duration::from_secs(refresher_period),
                lease: Duration::from_secs(lease),
                max_age: Duration::from_secs(max_age),
                ..defaults
            },
            credentials_max_age: Duration::from_secs(credentials_max_age),
            tenants_table,
            allow_loopback_http: loopback_ok,
        })
    }
}

/// The single org's Genesys Cloud hosts: from `GENESYS_BASE_URL` (https,
/// or http to a loopback host when allowed) or `GENESYS_REGION`.
fn genesys_hosts<F: Fn(&str) -> Option<String>>(env: &mut Env<F>, loopback_ok: bool) -> Hosts {
    match (env.optional(GENESYS_BASE_URL), env.optional(GENESYS_REGION)) {
        (Some(url), _) => {
            if lambda_support::is_https_or_allowed_loopback(&url, loopback_ok) {
                Hosts::single(&url)
            } else {
                env.invalid(
                    GENESYS_BASE_URL,
                    url,
                    format!(
                        "expected an https:// URL (http:// only to a loopback host, with {GENESYS_ALLOW_LOOPBACK_HTTP}=1)"
                    ),
                );
                Hosts::single("http://invalid")
            }
        }
        (None, Some(region)) => match Hosts::for_region(&region) {
            Ok(h) => h,
            Err(e) => {
                env.invalid(GENESYS_REGION, region, e.to_string());
                Hosts::single("http://invalid")
            }
        },
        (None, None) => {
            env.required(
                GENESYS_REGION,
                "the Genesys Cloud region (us-east-1, eu-west-1, ...) or domain (mypurecloud.com); or GENESYS_BASE_URL",
            );
            Hosts::single("http://invalid")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn every_missing_or_invalid_value_gets_its_own_error() {
        let e = TokenConfig::from_lookup(lookup(&[
            (TOKEN_POOL_SIZE, "0"),
            (TOKEN_LEASE_SECONDS, "soon"),
            (GENESYS_REGION, "atlantis-1"),
        ]))
        .expect_err("invalid");
        let text = e.to_string();
        for var in [
            TOKEN_TABLE,
            GENESYS_SECRET_ID,
            GENESYS_REGION,
            TOKEN_POOL_SIZE,
            TOKEN_LEASE_SECONDS,
        ] {
            assert!(text.contains(var), "{var} in {text}");
        }
        assert_eq!(e.0.len(), 5, "{text}");
    }

    #[test]
    fn many_orgs_need_no_secret_or_region_of_their_own() {
        let c = TokenConfig::from_lookup(lookup(&[
            (TOKEN_TABLE, "tokens"),
            (token_store::tenants::TENANTS_TABLE, "tokens"),
        ]))
        .expect("valid");
        assert_eq!(c.tenants_table.as_deref(), Some("tokens"));
        assert!(TokenConfig::from_lookup(lookup(&[(TOKEN_TABLE, "tokens")])).is_err());
    }

    #[test]
    fn defaults_and_overrides() {
        let c = TokenConfig::from_lookup(lookup(&[
            (TOKEN_TABLE, "tokens"),
            (GENESYS_SECRET_ID, "genesys/oauth"),
            (GENESYS_REGION, "eu-central-1"),
            (TOKEN_POOL_SIZE, "4"),
        ]))
        .expect("valid");
        assert_eq!(c.hosts.login, "https://login.mypurecloud.de");
        assert_eq!(c.broker.pool_size, 4);
        assert_eq!(c.broker.refresh_margin, None, "automatic");
        assert_eq!(c.broker.refresher_period, Duration::from_secs(60));
        let c = TokenConfig::from_lookup(lookup(&[
            (TOKEN_TABLE, "tokens"),
            (GENESYS_SECRET_ID, "s"),
            (GENESYS_BASE_URL, "http://127.0.0.1:9000/"),
            (GENESYS_ALLOW_LOOPBACK_HTTP, "1"),
        ]))
        .expect("valid");
        assert_eq!(c.hosts.api, "http://127.0.0.1:9000");
        for (url, switch) in [
            ("http://127.0.0.1:9000/", "0"),
            ("http://api.mypurecloud.com", "1"),
            ("http://127.0.0.1.evil.example", "1"),
            ("ftp://127.0.0.1", "1"),
        ] {
            let c = TokenConfig::from_lookup(lookup(&[
                (TOKEN_TABLE, "tokens"),
                (GENESYS_SECRET_ID, "s"),
                (GENESYS_BASE_URL, url),
                (GENESYS_ALLOW_LOOPBACK_HTTP, switch),
            ]));
            assert!(
                c.is_err_and(|e| e.to_string().contains(GENESYS_BASE_URL)),
                "{url} with the switch {switch} is refused"
            );
        }
        assert!(
            TokenConfig::from_lookup(lookup(&[
                (TOKEN_TABLE, "tokens"),
                (GENESYS_SECRET_ID, "s"),
                (GENESYS_REGION, "us-east-1"),
                (TOKEN_LEASE_SECONDS, "600"),
            ]))
            .is_err(),
            "a lease past 60 s is refused"
        );
    }

    #[test]
    fn the_margin_follows_the_lifetime_and_never_makes_a_young_token_due() {
        let auto = BrokerConfig::default();
        let m = |cfg: &BrokerConfig, s: u64| cfg.margin_for(Duration::from_secs(s));
        // Two 60 s periods plus 30 s of skew is the floor.
        assert_eq!(m(&auto, 900).before_expiry, Duration::from_secs(150));
        assert_eq!(m(&auto, 3_600).before_expiry, Duration::from_secs(360));
        assert_eq!(m(&auto, 86_400).before_expiry, Duration::from_secs(600));
        // 300 s: the floor is half the lifetime; 200 s: half the lifetime wins.
        assert_eq!(m(&auto, 300).before_expiry, Duration::from_secs(150));
        let short = m(&auto, 200);
        assert_eq!(short.before_expiry, Duration::from_secs(100));
        assert_eq!(short.clamped, Some(Clamped::LifetimeTooShort));
        for s in [1, 60, 200, 300, 900, 3_600, 86_400] {
            let margin = m(&auto, s).before_expiry;
            assert!(margin <= Duration::from_secs(s) / 2, "{s}: {margin:?}");
        }
        // A configured 600 s margin on 900 s tokens would replace them at 5
        // minutes old: clamped to half the lifetime, with a reason.
        let fixed = BrokerConfig {
            refresh_margin: Some(Duration::from_secs(600)),
            ..BrokerConfig::default()
        };
        assert_eq!(
            m(&fixed, 900),
            Margin {
                before_expiry: Duration::from_secs(450),
                clamped: Some(Clamped::OverHalfTheLifetime)
            }
        );
        assert_eq!(m(&fixed, 3_600).clamped, None);
        let tiny = BrokerConfig {
            refresh_margin: Some(Duration::from_secs(60)),
            ..BrokerConfig::default()
        };
        assert_eq!(m(&tiny, 3_600).clamped, Some(Clamped::BelowTwoPeriods));
    }
}
