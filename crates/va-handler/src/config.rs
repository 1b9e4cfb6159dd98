//! The conversation-events function's environment.

use lambda_support::{ConfigErrors, Env};
use token_broker::TokenConfig;
use va_analytics::KpiConfig;

/// Variable name.
pub const ANALYTICS_TABLE: &str = "ANALYTICS_TABLE";
/// Variable name.
pub const ENRICHMENT: &str = "ENRICHMENT";
/// Variable name.
pub const BOT_FLOW_TYPES: &str = "BOT_FLOW_TYPES";

/// What the conversation-events handler needs.
#[derive(Debug, Clone)]
pub struct HandlerConfig {
    /// The aggregates' table.
    pub analytics_table: String,
    /// Which flows are bots.
    pub kpi: KpiConfig,
    /// Present when enrichment is on.
    pub token: Option<TokenConfig>,
}

impl HandlerConfig {
    /// From the process environment.
    pub fn from_env() -> Result<Self, ConfigErrors> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// From `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String> + Copy) -> Result<Self, ConfigErrors> {
        let mut env = Env::new(get);
        let analytics_table = env.required(
            ANALYTICS_TABLE,
            "the DynamoDB table of aggregates and event markers",
        );
        let mut kpi = KpiConfig::default();
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
                    env.extend(e);
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

