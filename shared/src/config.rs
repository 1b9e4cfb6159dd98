//! Configuration from environment variables, with one clear error per missing
//! or invalid value.

use std::fmt;
use std::time::Duration;

use crate::broker::BrokerConfig;
use crate::genesys::Hosts;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    Missing {
        var: &'static str,
        what: &'static str,
    },
    Invalid {
        var: &'static str,
        value: String,
        reason: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { var, what } => write!(f, "{var} is not set: {what}"),
            Self::Invalid { var, value, reason } => {
                write!(f, "{var}={value:?} is invalid: {reason}")
            }
        }
    }
}

/// Every problem found, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration:")?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

/// What the token broker and its users need.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    pub token_table: String,
    pub secret_id: String,
    pub hosts: Hosts,
    pub broker: BrokerConfig,
    pub credentials_max_age: Duration,
}

pub const TOKEN_TABLE: &str = "TOKEN_TABLE";
pub const GENESYS_SECRET_ID: &str = "GENESYS_SECRET_ID";
pub const GENESYS_REGION: &str = "GENESYS_REGION";
pub const GENESYS_BASE_URL: &str = "GENESYS_BASE_URL";
pub const TOKEN_POOL_SIZE: &str = "TOKEN_POOL_SIZE";
pub const TOKEN_REFRESH_MARGIN_SECONDS: &str = "TOKEN_REFRESH_MARGIN_SECONDS";
pub const TOKEN_LEASE_SECONDS: &str = "TOKEN_LEASE_SECONDS";
pub const TOKEN_MAX_AGE_SECONDS: &str = "TOKEN_MAX_AGE_SECONDS";
pub const CREDENTIALS_MAX_AGE_SECONDS: &str = "CREDENTIALS_MAX_AGE_SECONDS";

/// Reads variables through `get` (the process environment in production).
pub struct Env<F: Fn(&str) -> Option<String>> {
    get: F,
    errors: Vec<ConfigError>,
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn new(get: F) -> Self {
        Self {
            get,
            errors: Vec::new(),
        }
    }

    fn value(&self, var: &str) -> Option<String> {
        (self.get)(var)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&mut self, var: &'static str, what: &'static str) -> String {
        self.value(var).unwrap_or_else(|| {
            self.errors.push(ConfigError::Missing { var, what });
            String::new()
        })
    }

    pub fn optional(&self, var: &'static str) -> Option<String> {
        self.value(var)
    }

    /// A whole number in `range`, `default` when unset.
    pub fn number(
        &mut self,
        var: &'static str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> u64 {
        let Some(raw) = self.value(var) else {
            return default;
        };
        match raw.parse::<u64>() {
            Ok(v) if range.contains(&v) => v,
            _ => {
                self.errors.push(ConfigError::Invalid {
                    var,
                    value: raw,
                    reason: format!(
                        "expected a whole number from {} to {}",
                        range.start(),
                        range.end()
                    ),
                });
                default
            }
        }
    }

    pub fn invalid(&mut self, var: &'static str, value: String, reason: String) {
        self.errors
            .push(ConfigError::Invalid { var, value, reason });
    }

    pub fn finish<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(ConfigErrors(self.errors))
        }
    }
}

impl TokenConfig {
    pub fn from_env() -> Result<Self, ConfigErrors> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

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

pub const ANALYTICS_TABLE: &str = "ANALYTICS_TABLE";
pub const ENRICHMENT: &str = "ENRICHMENT";
pub const BOT_FLOW_TYPES: &str = "BOT_FLOW_TYPES";

/// What the conversation-events handler needs.
#[derive(Debug, Clone)]
pub struct HandlerConfig {
    pub analytics_table: String,
    pub kpi: crate::analytics::KpiConfig,
    /// Present when enrichment is on.
    pub token: Option<TokenConfig>,
}

impl HandlerConfig {
    pub fn from_env() -> Result<Self, ConfigErrors> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String> + Copy) -> Result<Self, ConfigErrors> {
        let mut env = Env::new(get);
        let analytics_table = env.required(
            ANALYTICS_TABLE,
            "the DynamoDB table of aggregates and event markers",
        );
        let mut kpi = crate::analytics::KpiConfig::default();
        if let Some(extra) = env.optional(BOT_FLOW_TYPES) {
            for t in extra.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                if t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    if !kpi.is_bot(t) {
                        kpi.bot_flow_types.push(t.to_ascii_uppercase());
                    }
                } else {
                    env.invalid(
                        BOT_FLOW_TYPES,
                        extra.clone(),
                        format!("'{t}' is not a flow type (letters, digits, _)"),
                    );
                }
            }
        }
        let enrichment = match env
            .optional(ENRICHMENT)
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("off" | "false" | "0") => false,
            Some("on" | "true" | "1") => true,
            Some(other) => {
                env.invalid(ENRICHMENT, other.to_string(), "expected on or off".into());
                false
            }
        };
        let token = if enrichment {
            match TokenConfig::from_lookup(get) {
                Ok(t) => Some(t),
                Err(e) => {
                    env.errors.extend(e.0);
                    None
                }
            }
        } else {
            None
        };
        env.finish(Self {
            analytics_table,
            kpi,
            token,
        })
    }
}

/// What `dashboard-api` needs: it reads aggregates and token items, never the secret.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    pub analytics_table: String,
    pub token_table: String,
    /// Names the token items; the secret itself is not read.
    pub secret_id: String,
    pub pool_size: usize,
}

impl DashboardConfig {
    pub fn from_env() -> Result<Self, ConfigErrors> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigErrors> {
        let mut env = Env::new(get);
        let analytics_table = env.required(ANALYTICS_TABLE, "the DynamoDB table of aggregates");
        let token_table = env.required(TOKEN_TABLE, "the DynamoDB table of token items");
        let secret_id = env.required(
            GENESYS_SECRET_ID,
            "the secret's name or ARN (only to find the token items)",
        );
        let pool_size = env.number(TOKEN_POOL_SIZE, 1, 1..=32) as usize;
        env.finish(Self {
            analytics_table,
            token_table,
            secret_id,
            pool_size,
        })
    }
}
