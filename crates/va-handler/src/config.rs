//! The environment of conversation-events.

use lambda_support::{ConfigErrors, Env};
use va_analytics::KpiConfig;

/// Variable: the analytics table.
pub use va_analytics::ANALYTICS_TABLE;
/// Variable: extra bot flow types, comma-separated.
pub const BOT_FLOW_TYPES: &str = "BOT_FLOW_TYPES";

/// Variable: the dead-letter queue's URL, where rejected events go at once.
pub const DEAD_LETTER_QUEUE_URL: &str = "DEAD_LETTER_QUEUE_URL";

/// What the conversation-events handler needs.
#[derive(Debug, Clone)]
pub struct HandlerConfig {
    /// The aggregates' table.
    pub analytics_table: String,
    /// Where rejected events go; `None` outside Lambda (they are logged).
    pub dead_letter_queue_url: Option<String>,
    /// Which flows are bots.
    pub kpi: KpiConfig,
    /// The tenant registry's table: set, events are routed by the org in
    /// their `source` ([`crate::Tenancy::Registry`]); unset, one implicit org.
    pub tenants_table: Option<String>,
    /// How long the cells it writes live.
    pub retention: va_analytics::Retention,
}

fn kpi(env: &mut Env<impl Fn(&str) -> Option<String>>) -> KpiConfig {
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
    kpi
}

impl HandlerConfig {
    /// The tenancy this configuration asks for, reading the registry with `ddb`.
    pub fn tenancy(
        &self,
        ddb: &aws_sdk_dynamodb::Client,
        clock: std::sync::Arc<dyn lambda_support::Clock>,
    ) -> crate::Tenancy {
        match &self.tenants_table {
            None => crate::Tenancy::Single,
            Some(table) => crate::Tenancy::Registry(std::sync::Arc::new(crate::OrgDirectory::new(
                token_store::tenants::TenantRegistry::new(ddb.clone(), table.clone()),
                clock,
            ))),
        }
    }

    /// From the process environment.
    pub fn from_env() -> Result<Self, ConfigErrors> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// From `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigErrors> {
        let retention = va_analytics::Retention::from_lookup(&get);
        let mut env = Env::new(get);
        let analytics_table = env.required(
            ANALYTICS_TABLE,
            "the DynamoDB table of aggregates and event markers",
        );
        let dead_letter_queue_url = env.optional(DEAD_LETTER_QUEUE_URL);
        if let Some(url) = &dead_letter_queue_url
            && !lambda_support::is_https_or_allowed_loopback(url, true)
        {
            env.invalid(
                DEAD_LETTER_QUEUE_URL,
                url.clone(),
                "expected the queue's https:// URL".into(),
            );
        }
        let kpi = kpi(&mut env);
        let tenants_table = env.optional(token_store::tenants::TENANTS_TABLE);
        let retention = retention.unwrap_or_else(|e| {
            env.extend(e);
            va_analytics::Retention::default()
        });
        env.finish(Self {
            analytics_table,
            dead_letter_queue_url,
            kpi,
            tenants_table,
            retention,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handler_needs_its_table_and_takes_extra_bot_types() {
        let e = HandlerConfig::from_lookup(|_| None).expect_err("no table");
        assert!(e.to_string().contains(ANALYTICS_TABLE));
        let c = HandlerConfig::from_lookup(|k| match k {
            ANALYTICS_TABLE => Some("analytics".into()),
            BOT_FLOW_TYPES => Some("voicebot, BOT".into()),
            _ => None,
        })
        .expect("valid");
        assert!(c.kpi.is_bot("VOICEBOT"));
        assert_eq!(
            c.tenants_table, None,
            "one implicit org unless TENANTS_TABLE is set"
        );
        let many = HandlerConfig::from_lookup(|k| match k {
            ANALYTICS_TABLE => Some("analytics".into()),
            token_store::tenants::TENANTS_TABLE => Some("tenants".into()),
            _ => None,
        })
        .expect("valid");
        assert_eq!(many.tenants_table.as_deref(), Some("tenants"));
        assert_eq!(c.kpi.bot_flow_types.len(), 3);
        let bad = HandlerConfig::from_lookup(|k| match k {
            ANALYTICS_TABLE => Some("analytics".into()),
            BOT_FLOW_TYPES => Some("a b".into()),
            _ => None,
        });
        assert!(bad.is_err());
    }
}
