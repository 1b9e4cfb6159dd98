//! Genesys Cloud as the broker's token source: client credentials from
//! Secrets Manager, the token endpoint, and `HEAD /api/v2/tokens/me`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use genesys::{
    AccessToken, ApiError, ClientCredentials, CredentialsError, GenesysClient, IssuedToken,
    TokenRequestError, parse_secret,
};
use lambda_support::Clock;
use token_store::TokenStore;
use tokio::sync::Mutex;

use crate::{SourceError, TokenBroker, TokenConfig, TokenHealth, TokenSource};

/// The production source: the OAuth client from Secrets Manager, tokens from
/// Genesys Cloud.
#[derive(Debug)]
pub struct GenesysTokenSource {
    client: GenesysClient,
    credentials: SecretsManagerCredentials,
}

/// The least the fleet waits after the token endpoint's 400 throttle.
pub const THROTTLED_LOGIN_WAIT: Duration = Duration::from_secs(30);

impl GenesysTokenSource {
    /// A source using `client` and the secret behind `credentials`.
    pub fn new(client: GenesysClient, credentials: SecretsManagerCredentials) -> Self {
        Self {
            client,
            credentials,
        }
    }

    fn map(&self, e: TokenRequestError) -> SourceError {
        let secret_id = self.credentials.secret_id();
        match e {
            TokenRequestError::InvalidClient { description } => SourceError::Rejected(format!(
                "Genesys Cloud rejected the OAuth client credentials in secret '{secret_id}' (invalid_client: {description}); \
                 check clientId and clientSecret in that secret and the OAuth client's grant type (client credentials)"
            )),
            TokenRequestError::Rejected { .. } => SourceError::Rejected(e.to_string()),
            TokenRequestError::RateLimited { retry_after }
            | TokenRequestError::RetryAfterTooLong { retry_after } => SourceError::RateLimited {
                message: e.to_string(),
                retry_after,
            },
            // The platform's throttle is a 400 that says nothing of how long;
            // Genesys' Terraform provider retries such a login for up to a
            // minute, so the fleet waits half of that before the next try
            // (ASSUMPTION: the window is not published).
            TokenRequestError::Throttled { .. } => SourceError::RateLimited {
                message: e.to_string(),
                retry_after: THROTTLED_LOGIN_WAIT,
            },
            TokenRequestError::Unavailable { .. } | TokenRequestError::Protocol(_) => {
                SourceError::Unavailable(e.to_string())
            }
        }
    }
}

impl TokenSource for GenesysTokenSource {
    async fn fetch(&self) -> Result<IssuedToken, SourceError> {
        let creds = self
            .credentials
            .get()
            .await
            .map_err(|e| SourceError::Unavailable(e.to_string()))?;
        match self.client.request_token(&creds).await {
            Ok(t) => Ok(t),
            Err(TokenRequestError::InvalidClient { .. }) => {
                // The secret may have been rotated since we cached it: read it
                // again, and try once more only if it changed.
                self.credentials.invalidate().await;
                let fresh = self
                    .credentials
                    .get()
                    .await
                    .map_err(|e| SourceError::Unavailable(e.to_string()))?;
                if fresh == creds {
                    return Err(self.map(TokenRequestError::InvalidClient {
                        description: "the secret has not changed since".into(),
                    }));
                }
                self.client
                    .request_token(&fresh)
                    .await
                    .map_err(|e| self.map(e))
            }
            Err(e) => Err(self.map(e)),
        }
    }

    async fn check(&self, token: &AccessToken) -> Result<TokenHealth, SourceError> {
        match self.client.token_alive(token).await {
            Ok(true) => Ok(TokenHealth::Alive),
            Ok(false) => Ok(TokenHealth::Dead),
            Err(ApiError::RateLimited { retry_after }) => Err(SourceError::RateLimited {
                message: "token check rate limited".into(),
                retry_after,
            }),
            Err(e) => Err(SourceError::Unavailable(e.to_string())),
        }
    }
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
    /// Reads `secret_id` through `client`, caching it for `max_age`.
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

    /// The secret's name or ARN.
    pub fn secret_id(&self) -> &str {
        &self.secret_id
    }

    /// The credentials, from the cache or the secret.
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

/// The production broker: Genesys Cloud through `client` (the caller's, so a
/// container that also calls the API keeps one connection pool), DynamoDB and
/// Secrets Manager through `aws`. Build once per container.
pub fn genesys_broker(
    aws: &aws_config::SdkConfig,
    cfg: &TokenConfig,
    client: GenesysClient,
    clock: Arc<dyn Clock>,
) -> TokenBroker<GenesysTokenSource> {
    let credentials = SecretsManagerCredentials::new(
        aws_sdk_secretsmanager::Client::new(aws),
        cfg.secret_id.clone(),
        cfg.credentials_max_age,
    );
    let store = TokenStore::new(
        aws_sdk_dynamodb::Client::new(aws),
        cfg.token_table.clone(),
        &cfg.secret_id,
    );
    TokenBroker::new(
        store,
        Arc::new(GenesysTokenSource::new(client, credentials)),
        clock,
        cfg.broker.clone(),
    )
}
