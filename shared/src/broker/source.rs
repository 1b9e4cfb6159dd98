//! Genesys Cloud as the broker's token source: client credentials from
//! Secrets Manager, the token endpoint, and `HEAD /api/v2/tokens/me`.

use super::{SourceError, TokenHealth, TokenSource};
use crate::credentials::SecretsManagerCredentials;
use crate::genesys::{ApiError, GenesysClient, TokenRequestError};
use crate::token::{AccessToken, IssuedToken};

#[derive(Debug)]
pub struct GenesysTokenSource {
    client: GenesysClient,
    credentials: SecretsManagerCredentials,
}

impl GenesysTokenSource {
    pub fn new(client: GenesysClient, credentials: SecretsManagerCredentials) -> Self {
        Self {
            client,
            credentials,
        }
    }

    pub fn client(&self) -> &GenesysClient {
        &self.client
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
