//! The dashboard's sign-in: Amazon Cognito user pool access tokens (RS256
//! JWTs), checked here as the HTTP API's JWT authorizer checks them in AWS
//! (issuer, client, expiry, signature against the pool's published keys), so
//! the same rule holds locally and a misrouted request is refused anyway.
//! <https://docs.aws.amazon.com/cognito/latest/developerguide/amazon-cognito-user-pools-using-tokens-verifying-a-jwt.html>

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Where the sign-in happens and what a token must say.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// The user pool's issuer, `https://cognito-idp.<region>.amazonaws.com/<pool id>`.
    pub issuer: String,
    /// The app client the page signs in with (no secret).
    pub client_id: String,
    /// The pool's keys; by default `<issuer>/.well-known/jwks.json`.
    pub jwks_url: String,
    /// The Cognito endpoint the page posts `InitiateAuth` to; by default
    /// the issuer's origin.
    pub sign_in_endpoint: String,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl AuthConfig {
    /// The Cognito defaults for `issuer`.
    pub fn cognito(issuer: &str, client_id: &str) -> Self {
        let issuer = issuer.trim_end_matches('/').to_string();
        let origin = issuer.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
        Self {
            jwks_url: format!("{issuer}/.well-known/jwks.json"),
            sign_in_endpoint: format!("{origin}/"),
            issuer,
            client_id: client_id.to_string(),
        }
    }

    /// The region, from a Cognito issuer's host.
    pub fn region(&self) -> Option<&str> {
        self.issuer
            .strip_prefix("https://cognito-idp.")?
            .split('.')
            .next()
    }
}

/// What the page needs to sign in: no secret in it.
#[derive(Debug, Clone, Serialize)]
pub struct SignIn {
    /// POST `InitiateAuth` here.
    pub endpoint: String,
    /// The app client.
    pub client_id: String,
    /// The pool's region.
    pub region: Option<String>,
}

/// Who signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// The Cognito user name.
    pub username: String,
    /// The user's groups (`cognito:groups`).
    pub groups: Vec<String>,
}

/// Why a request is refused; each is a stable code for the JSON answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("sign_in_required")]
    Missing,
    /// A token that is not a valid access token of this pool and client.
    #[error("token_invalid")]
    Invalid,
    /// Signed, but past its expiry.
    #[error("token_expired")]
    Expired,
    /// The pool's keys could not be fetched.
    #[error("keys_unavailable")]
    KeysUnavailable,
}

impl AuthError {
    /// The code the JSON answer carries.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "sign_in_required",
            AuthError::Invalid => "token_invalid",
            AuthError::Expired => "token_expired",
            AuthError::KeysUnavailable => "keys_unavailable",
        }
    }
}

#[derive(Deserialize)]
struct Claims {
    token_use: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(rename = "cognito:groups", default)]
    groups: Vec<String>,
}

/// How long fetched keys are trusted before a refetch, and the least time
/// between two fetches for an unknown key id.
const KEYS_TTL: Duration = Duration::from_secs(3_600);
const KEYS_REFETCH: Duration = Duration::from_secs(60);

struct Keys {
    set: JwkSet,
    fetched: Instant,
}

/// Checks access tokens; build once per container.
pub struct Verifier {
    cfg: AuthConfig,
    http: reqwest::Client,
    keys: Mutex<Option<Keys>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier for `cfg`.
    pub fn new(cfg: AuthConfig) -> Arc<Self> {
        // reqwest is built without a default TLS provider (one provider for
        // the whole workspace): install aws-lc-rs, as the Genesys client does.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(4))
            .build()
            .unwrap_or_default();
        Arc::new(Self {
            cfg,
            http,
            keys: Mutex::new(None),
        })
    }

    /// What the page needs to sign in.
    pub fn sign_in(&self) -> SignIn {
        SignIn {
            endpoint: self.cfg.sign_in_endpoint.clone(),
            client_id: self.cfg.client_id.clone(),
            region: self.cfg.region().map(str::to_string),
        }
    }

    /// The viewer an `Authorization` header value names, or why not.
    pub async fn verify(&self, authorization: Option<&str>) -> Result<Viewer, AuthError> {
        let token = authorization
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        if token.len() > 8_192 {
            return Err(AuthError::Invalid);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
        if header.alg != Algorithm::RS256 {
            return Err(AuthError::Invalid);
        }
        let kid = header.kid.ok_or(AuthError::Invalid)?;
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.cfg.issuer]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        // Access tokens carry `client_id`, not `aud`; checked below.
        validation.validate_aud = false;
        validation.leeway = 30;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| match e
            .kind()
        {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
            _ => AuthError::Invalid,
        })?;
        let c = data.claims;
        if c.token_use != "access" || c.client_id.as_deref() != Some(self.cfg.client_id.as_str()) {
            return Err(AuthError::Invalid);
        }
        Ok(Viewer {
            username: c.username.unwrap_or_default(),
            groups: c.groups,
        })
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        let mut keys = self.keys.lock().await;
        let fresh = keys
            .as_ref()
            .is_some_and(|k| k.fetched.elapsed() < KEYS_TTL);
        let known = keys.as_ref().and_then(|k| k.set.find(kid).cloned());
        let may_refetch = keys
            .as_ref()
            .is_none_or(|k| k.fetched.elapsed() >= KEYS_REFETCH);
        let jwk = match known {
            Some(jwk) if fresh => jwk,
            known if may_refetch || !fresh => match self.fetch().await {
                Ok(set) => {
                    let jwk = set.find(kid).cloned();
                    *keys = Some(Keys {
                        set,
                        fetched: Instant::now(),
                    });
                    jwk.ok_or(AuthError::Invalid)?
                }
                // The pool's keys rotate rarely: a known key stays good
                // while the issuer cannot be reached.
                Err(e) => known.ok_or(e)?,
            },
            _ => return Err(AuthError::Invalid),
        };
        DecodingKey::from_jwk(&jwk).map_err(|_| AuthError::Invalid)
    }

    async fn fetch(&self) -> Result<JwkSet, AuthError> {
        let r = self
            .http
            .get(&self.cfg.jwks_url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| {
                tracing::error!(error = %e, "could not fetch the user pool's keys");
                AuthError::KeysUnavailable
            })?;
        r.json::<JwkSet>().await.map_err(|e| {
            tracing::error!(error = %e, "the user pool's keys are not a JWK set");
            AuthError::KeysUnavailable
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cognito_defaults_follow_the_issuer() {
        let c = AuthConfig::cognito(
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC/",
            "client",
        );
        assert_eq!(
            c.issuer,
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC"
        );
        assert_eq!(
            c.jwks_url,
            "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC/.well-known/jwks.json"
        );
        assert_eq!(
            c.sign_in_endpoint,
            "https://cognito-idp.eu-west-1.amazonaws.com/"
        );
        assert_eq!(c.region(), Some("eu-west-1"));
    }

    #[tokio::test]
    async fn garbage_and_missing_tokens_are_refused_without_a_fetch() {
        let v = Verifier::new(AuthConfig::cognito("https://127.0.0.1:9/x", "c"));
        assert_eq!(v.verify(None).await, Err(AuthError::Missing));
        assert_eq!(v.verify(Some("Basic abc")).await, Err(AuthError::Missing));
        assert_eq!(
            v.verify(Some("Bearer not.a.jwt")).await,
            Err(AuthError::Invalid)
        );
        let long = format!("Bearer {}", "a".repeat(9_000));
        assert_eq!(v.verify(Some(&long)).await, Err(AuthError::Invalid));
    }
}
