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
    /// Refresh when the token expires within this.
    pub refresh_margin: Duration,
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
            refresh_margin: Duration::from_secs(600),
            lease: Duration::from_secs(30),
            max_age: Duration::from_secs(60),
            expiry_skew: Duration::from_secs(30),
            wait_timeout: Duration::from_secs(10),
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(300),
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
}

/// Variable: the token table.
pub const TOKEN_TABLE: &str = "TOKEN_TABLE";
/// Variable name.
pub const GENESYS_SECRET_ID: &str = "GENESYS_SECRET_ID";
/// Variable name.
pub const GENESYS_REGION: &str = "GENESYS_REGION";
/// Variable name.
pub const GENESYS_BASE_URL: &str = "GENESYS_BASE_URL";
/// Variable name.
pub const TOKEN_POOL_SIZE: &str = "TOKEN_POOL_SIZE";
/// Variable name.
pub const TOKEN_REFRESH_MARGIN_SECONDS: &str = "TOKEN_REFRESH_MARGIN_SECONDS";
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
        let secret_id = env.required(
            GENESYS_SECRET_ID,
            "the Secrets Manager secret (name or ARN) holding {\"clientId\",\"clientSecret\"}",
        );
        let hosts = match (env.optional(GENESYS_BASE_URL), env.optional(GENESYS_REGION)) {
            (Some(url), _) => {
                if url.starts_with("http://") || url.starts_with("https://") {
                    Hosts::single(&url)
                } else {
                    env.invalid(
                        GENESYS_BASE_URL,
                        url,
                        "expected an http:// or https:// URL".into(),
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
        };
        let defaults = BrokerConfig::default();
        let pool_size = env.number(TOKEN_POOL_SIZE, 1, 1..=32) as usize;
        let refresh_margin = env.number(
            TOKEN_REFRESH_MARGIN_SECONDS,
            defaults.refresh_margin.as_secs(),
            60..=86_400,
        );
        let lease = env.number(TOKEN_LEASE_SECONDS, defaults.lease.as_secs(), 10..=600);
        let max_age = env.number(TOKEN_MAX_AGE_SECONDS, defaults.max_age.as_secs(), 1..=3_600);
        let credentials_max_age = env.number(CREDENTIALS_MAX_AGE_SECONDS, 300, 0..=86_400);
        env.finish(Self {
            token_table,
            secret_id,
            hosts,
            broker: BrokerConfig {
                pool_size,
                refresh_margin: Duration::from_secs(refresh_margin),
                lease: Duration::from_secs(lease),
                max_age: Duration::from_secs(max_age),
                ..defaults
            },
            credentials_max_age: Duration::from_secs(credentials_max_age),
        })
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
        assert_eq!(c.broker.refresh_margin, Duration::from_secs(600));
        let c = TokenConfig::from_lookup(lookup(&[
            (TOKEN_TABLE, "tokens"),
            (GENESYS_SECRET_ID, "s"),
            (GENESYS_BASE_URL, "http://127.0.0.1:9000/"),
        ]))
        .expect("valid");
        assert_eq!(c.hosts.api, "http://127.0.0.1:9000");
    }
}
