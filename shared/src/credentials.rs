//! The OAuth client credentials, read from AWS Secrets Manager and cached per
//! container for a bounded time.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use crate::token::Redacted;

/// An OAuth client. `Debug` shows the id, never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: Redacted,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CredentialsError {
    #[error("could not read secret '{secret_id}' from Secrets Manager: {reason}")]
    Fetch { secret_id: String, reason: String },
    #[error(
        "secret '{secret_id}' is not valid: {reason}; it must be JSON {{\"clientId\": \"...\", \"clientSecret\": \"...\"}}"
    )]
    Malformed { secret_id: String, reason: String },
}

#[derive(Deserialize)]
struct SecretJson {
    #[serde(rename = "clientId")]
    client_id: String,
    #[serde(rename = "clientSecret")]
    client_secret: String,
}

/// Parses the secret's JSON. Errors never quote the input.
pub fn parse_secret(secret_id: &str, text: &str) -> Result<ClientCredentials, CredentialsError> {
    let malformed = |reason: String| CredentialsError::Malformed {
        secret_id: secret_id.to_string(),
        reason,
    };
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        malformed(format!(
            "not JSON ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?;
    let s: SecretJson = serde_json::from_value(v)
        .map_err(|_| malformed("clientId and clientSecret must both be strings".into()))?;
    if s.client_id.trim().is_empty() || s.client_secret.is_empty() {
        return Err(malformed("clientId or clientSecret is empty".into()));
    }
    Ok(ClientCredentials {
        client_id: s.client_id.trim().to_string(),
        client_secret: Redacted::new(s.client_secret),
    })
}

/// Reads and caches the secret; re-reads it when older than `max_age` or when
/// told the credentials were rejected.
#[derive(Debug)]
pub struct SecretsManagerCredentials {
    client: aws_sdk_secretsmanager::Client,
    secret_id: String,
    max_age: Duration,
    cached: Mutex<Option<(ClientCredentials, Instant)>>,
}

impl SecretsManagerCredentials {
    pub fn new(
        client: aws_sdk_secretsmanager::Client,
        secret_id: impl Into<String>,
        max_age: Duration,
    ) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
            max_age,
            cached: Mutex::new(None),
        }
    }

    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }

    pub async fn get(&self) -> Result<ClientCredentials, CredentialsError> {
        let mut cached = self.cached.lock().await;
        if let Some((creds, at)) = cached.as_ref()
            && at.elapsed() < self.max_age
        {
            return Ok(creds.clone());
        }
        let out = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|e| CredentialsError::Fetch {
                secret_id: self.secret_id.clone(),
                reason: aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
            })?;
        let text = out
            .secret_string()
            .ok_or_else(|| CredentialsError::Malformed {
                secret_id: self.secret_id.clone(),
                reason: "it has no SecretString".into(),
            })?;
        let creds = parse_secret(&self.secret_id, text)?;
        *cached = Some((creds.clone(), Instant::now()));
        Ok(creds)
    }

    /// Forgets the cached value, so the next `get` reads the secret again.
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_secret_and_never_quotes_it_in_errors() {
        let c = parse_secret(
            "s",
            r#"{"clientId":" abc ","clientSecret":"hunter2-value"}"#,
        )
        .expect("valid");
        assert_eq!(c.client_id, "abc");
        assert_eq!(c.client_secret.expose(), "hunter2-value");
        assert!(!format!("{c:?}").contains("hunter2"));
        for bad in [
            r#"{"clientId":"abc","clientSecret":12345678}"#,
            r#"{"clientId":"abc"}"#,
            r#"hunter2-value"#,
            r#"{"clientId":"abc","clientSecret":"hunter2-value""#,
            r#"{"clientId":"","clientSecret":"hunter2-value"}"#,
        ] {
            let e = parse_secret("my-secret", bad).expect_err(bad).to_string();
            assert!(e.contains("my-secret"), "{e}");
            assert!(!e.contains("hunter2") && !e.contains("12345678"), "{e}");
        }
    }
}
