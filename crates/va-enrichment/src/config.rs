//! The enrichment sweeper's environment.

use std::time::Duration;

use lambda_support::{ConfigErrors, Env};
use token_broker::TokenConfig;

use crate::sweep::SweepConfig;

/// Variable: the analytics table.
pub use va_analytics::ANALYTICS_TABLE;
/// Variable: first look for a session this long after it ended.
pub const ENRICHMENT_DELAY_SECONDS: &str = "ENRICHMENT_DELAY_SECONDS";
/// Variable: give a session up as "intent unknown" after this.
pub const ENRICHMENT_GIVE_UP_HOURS: &str = "ENRICHMENT_GIVE_UP_HOURS";

/// What the enrichment sweeper needs.
#[derive(Debug, Clone)]
pub struct SweeperConfig {
    /// The aggregates' table (pending sessions live there too).
    pub analytics_table: String,
    /// The token it calls the Platform API with.
    pub token: TokenConfig,
    /// Its tuning.
    pub sweep: SweepConfig,
    /// How long the cells it writes (enrichments, hour cells) live.
    pub retention: va_analytics::Retention,
}

impl SweeperConfig {
    /// From the process environment.
    pub fn from_env() -> Result<Self, ConfigErrors> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// From `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String> + Copy) -> Result<Self, ConfigErrors> {
        let retention = va_analytics::Retention::from_lookup(get);
        let mut env = Env::new(get);
        let analytics_table = env.required(
            ANALYTICS_TABLE,
            "the DynamoDB table of aggregates and pending enrichments",
        );
        let defaults = SweepConfig::default();
        let delay = env.number(
            ENRICHMENT_DELAY_SECONDS,
            defaults.delay.as_secs(),
            0..=3_600,
        );
        let give_up = env.number(ENRICHMENT_GIVE_UP_HOURS, 24, 1..=240);
        let token = match TokenConfig::from_lookup(get) {
            Ok(t) => Some(t),
            Err(e) => {
                env.extend(e);
                None
            }
        };
        let sweep = SweepConfig {
            delay: Duration::from_secs(delay),
            give_up_after: Duration::from_secs(give_up * 3_600),
            ..defaults
        };
        let retention = retention.unwrap_or_else(|e| {
            env.extend(e);
            va_analytics::Retention::default()
        });
        match token {
            Some(token) => env.finish(Self {
                analytics_table,
                token,
                sweep,
                retention,
            }),
            None => Err(env
                .finish(())
                .err()
                .unwrap_or_else(|| ConfigErrors(Vec::new()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweeper_reports_its_and_the_token_configs_problems_together() {
        let e = SweeperConfig::from_lookup(|k| match k {
            ENRICHMENT_DELAY_SECONDS => Some("soon".into()),
            _ => None,
        })
        .expect_err("invalid");
        let text = e.to_string();
        for var in [
            ANALYTICS_TABLE,
            ENRICHMENT_DELAY_SECONDS,
            "TOKEN_TABLE",
            "GENESYS_SECRET_ID",
        ] {
            assert!(text.contains(var), "{var} in {text}");
        }
    }
}
