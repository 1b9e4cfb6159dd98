//! The OAuth client (client credentials grant) and the JSON its secret is
//! stored as.

use lambda_support::Redacted;
use serde::Deserialize;

/// An OAuth client. `Debug` shows the id, never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    /// The OAuth client id (not a secret).
    pub client_id: String,
    /// The OAuth client secret.
    pub client_secret: Redacted,
}

/// The secret could not be read or does not hold a client. Names the secret's
/// id, never its value.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CredentialsError {
    /// The secret store failed or refused.
    #[error("could not read secret '{secret_id}': {reason}")]
    Fetch {
        /// The secret's name or ARN.
        secret_id: String,
        /// The store's error.
        reason: String,
    },
    /// The secret is not `{"clientId","clientSecret"}`.
    #[error(
        "secret '{secret_id}' is not valid: {reason}; it must be JSON {{\"clientId\": \"...\", \"clientSecret\": \"...\"}}"
    )]
    Malformed {
        /// The secret's name or ARN.
        secret_id: String,
        /// What is wrong, without quoting the value.
        reason: String,
    },
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
