//! The token endpoint and the Platform API over HTTPS (rustls).

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::StatusCode;
use serde::Deserialize;

use lambda_support::Redacted;

use crate::credentials::ClientCredentials;
use crate::hosts::Hosts;
use crate::token::{AccessToken, IssuedToken};

/// Official SDKs retry a 429 only when `Retry-After` is at most this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(180);

/// How the token request retries. Server errors (5xx but 501) and connection
/// failures back off exponentially with jitter; a 429 waits its `Retry-After`
/// when that fits in `max_in_call_wait`, else it is returned to the caller,
/// which records it as the fleet's shared backoff.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: usize,
    /// First backoff pause.
    pub min_delay: Duration,
    /// Longest backoff pause.
    pub max_delay: Duration,
    /// Longest `Retry-After` waited out inside one call.
    pub max_in_call_wait: Duration,
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout of a token request.
    pub request_timeout: Duration,
    /// Whole-request timeout of a Platform API request: longer, since an
    /// analytics page holds up to 250 items and a token grant is small.
    pub api_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
            max_in_call_wait: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(5),
            api_timeout: Duration::from_secs(20),
        }
    }
}

/// A token request that did not produce a token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenRequestError {
    /// Wrong client id or secret, or the client may not use this grant.
    #[error("Genesys Cloud rejected the OAuth client credentials (invalid_client: {description})")]
    InvalidClient {
        /// The server's `error_description`.
        description: String,
    },
    /// 429 with a `Retry-After` the caller may wait out.
    #[error("the token endpoint is rate limiting this client; retry after {}s", retry_after.as_secs())]
    RateLimited {
        /// The server's `Retry-After`.
        retry_after: Duration,
    },
    /// HTTP 400 `invalid_request` "rate limit exceeded": how the token
    /// endpoint throttles (docs/DESIGN.md 3.2). No `Retry-After`, and Genesys'
    /// own tooling retries such a login for up to a minute, so it is not
    /// retried within the call.
    #[error("the token endpoint is rate limiting this client (400 invalid_request: {description})")]
    Throttled {
        /// The server's `error_description`.
        description: String,
    },
    /// 429 with a `Retry-After` past what the official SDKs accept.
    #[error("the token endpoint asked to retry after {}s, past the {}s the SDKs accept; giving up", retry_after.as_secs(), MAX_RETRY_AFTER.as_secs())]
    RetryAfterTooLong {
        /// The server's `Retry-After`.
        retry_after: Duration,
    },
    /// 5xx (but 501) or a transport failure, after the retries.
    #[error("the token endpoint is unavailable: {last}")]
    Unavailable {
        /// The last failure.
        last: String,
    },
    /// Any other OAuth error.
    #[error("the token endpoint refused the request ({status}): {error}: {description}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// OAuth `error`.
        error: String,
        /// OAuth `error_description`.
        description: String,
    },
    /// A success whose body is not a token.
    #[error("unexpected token endpoint response: {0}")]
    Protocol(String),
}

impl TokenRequestError {
    fn retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::RateLimited { .. })
    }
}

/// A Platform API call that did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// The token was rejected.
    #[error("401 from the Platform API: {message}")]
    Unauthorized {
        /// The body's `message`.
        message: String,
    },
    /// Over a rate limit.
    #[error("429 from the Platform API; retry after {}s", retry_after.as_secs())]
    RateLimited {
        /// The server's `Retry-After`.
        retry_after: Duration,
    },
    /// Any other non-success status.
    #[error("{status} from the Platform API: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The body's `message`.
        message: String,
    },
    /// No answer (connect, TLS, timeout).
    #[error("Platform API unreachable: {0}")]
    Transport(String),
    /// A success whose body is not the expected JSON.
    #[error("unexpected Platform API response: {0}")]
    Protocol(String),
}

impl ApiError {
    /// A 401: the token is dead.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Self::Unauthorized { .. })
    }

    /// Worth another try (5xx but 501, transport errors, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Status { status, .. } => *status >= 500 && *status != 501,
            Self::Transport(_) | Self::RateLimited { .. } => true,
            _ => false,
        }
    }
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    #[serde(default)]
    token_type: String,
    expires_in: u64,
}

/// The login host's error body; it sends the text as both `error_description`
/// and `description`, so either is read.
#[derive(Deserialize, Default)]
struct OAuthErrorBody {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    description: String,
}

impl OAuthErrorBody {
    fn text(self) -> String {
        if self.error_description.is_empty() {
            self.description
        } else {
            self.error_description
        }
    }

    /// The token endpoint's throttle: `400 - invalid_request (rate limit
    /// exceeded; ...)`, as Genesys' Terraform provider matches it.
    fn is_throttle(&self, status: StatusCode) -> bool {
        status == StatusCode::BAD_REQUEST
            && self.error == "invalid_request"
            && [&self.error_description, &self.description]
                .iter()
                .any(|d| d.to_ascii_lowercase().contains("rate limit exceeded"))
    }
}

/// The HTTP client could not be built (TLS roots, resolver).
#[derive(Debug, Clone, thiserror::Error)]
#[error("could not build the HTTP client: {0}")]
pub struct BuildError(String);

/// Genesys Cloud over HTTPS (rustls). Build once per container.
#[derive(Debug, Clone)]
pub struct GenesysClient {
    http: reqwest::Client,
    hosts: Hosts,
    retry: RetryPolicy,
}

/// The longest `Retry-After` believed; a larger (or hostile) value is read
/// as this, so no wait or deadline sum can overflow.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(3_600);

/// The longest token lifetime Genesys Cloud issues (an OAuth client's token
/// duration is at most 172,800 s); a larger `expires_in` is read as this.
pub const MAX_TOKEN_LIFETIME_S: u64 = 172_800;

fn retry_after_of(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s).min(RETRY_AFTER_CAP))
}

/// Error text of a transport failure, without the URL's query (never secret
/// here, but kept short).
fn transport(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut msg = kind.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}

impl GenesysClient {
    /// A client for `hosts`; its connection pool lives as long as it does.
    pub fn new(hosts: Hosts, retry: RetryPolicy) -> Result<Self, BuildError> {
        // The process's one TLS provider, the same the AWS SDK uses; an Err
        // means one is installed already.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(retry.connect_timeout)
            .user_agent(concat!("genesys-va-analytics/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| BuildError(transport(&e)))?;
        Ok(Self { http, hosts, retry })
    }

    /// One client-credentials grant, with retries.
    pub async fn request_token(
        &self,
        creds: &ClientCredentials,
    ) -> Result<IssuedToken, TokenRequestError> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.retry.min_delay)
            .with_max_delay(self.retry.max_delay)
            .with_max_times(self.retry.attempts.saturating_sub(1))
            .with_jitter();
        let max_wait = self.retry.max_in_call_wait;
        (|| self.request_token_once(creds))
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(|e: &TokenRequestError| match e {
                TokenRequestError::RateLimited { retry_after } => *retry_after <= max_wait,
                other => other.retryable(),
            })
            .adjust(|e, delay| match e {
                TokenRequestError::RateLimited { retry_after } => Some(*retry_after),
                _ => delay,
            })
            .notify(|e, delay| tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "token request failed; retrying"))
            .await
    }

    async fn request_token_once(
        &self,
        creds: &ClientCredentials,
    ) -> Result<IssuedToken, TokenRequestError> {
        let resp = self
            .http
            .post(format!("{}/oauth/token", self.hosts.login))
            .timeout(self.retry.request_timeout)
            .basic_auth(&creds.client_id, Some(creds.client_secret.expose()))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body("grant_type=client_credentials")
            .send()
            .await
            .map_err(|e| TokenRequestError::Unavailable {
                last: transport(&e),
            })?;
        let status = resp.status();
        let retry_after = retry_after_of(resp.headers());
        let body = resp
            .bytes()
            .await
            .map_err(|e| TokenRequestError::Unavailable {
                last: transport(&e),
            })?;
        if status.is_success() {
            let t: TokenBody = serde_json::from_slice(&body).map_err(|e| {
                TokenRequestError::Protocol(format!(
                    "token response is not the expected JSON ({:?})",
                    e.classify()
                ))
            })?;
            if t.access_token.is_empty() {
                return Err(TokenRequestError::Protocol("empty access_token".into()));
            }
            if t.expires_in == 0 {
                return Err(TokenRequestError::Protocol("expires_in is 0".into()));
            }
            return Ok(IssuedToken {
                access_token: Redacted::new(t.access_token),
                token_type: if t.token_type.is_empty() {
                    "bearer".into()
                } else {
                    t.token_type
                },
                expires_in: t.expires_in.min(MAX_TOKEN_LIFETIME_S),
            });
        }
        Err(token_error(status, retry_after, &body))
    }

    /// `HEAD /api/v2/tokens/me`: `Ok(true)` alive, `Ok(false)` rejected (401).
    pub async fn token_alive(&self, token: &AccessToken) -> Result<bool, ApiError> {
        let resp = self
            .http
            .head(format!("{}/api/v2/tokens/me", self.hosts.api))
            .timeout(self.retry.request_timeout)
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(|e| ApiError::Transport(transport(&e)))?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::UNAUTHORIZED => Ok(false),
            StatusCode::TOO_MANY_REQUESTS => Err(ApiError::RateLimited {
                retry_after: retry_after_of(resp.headers()).unwrap_or(Duration::from_secs(1)),
            }),
            s => Err(ApiError::Status {
                status: s.as_u16(),
                message: "token check failed".into(),
            }),
        }
    }

    /// One authenticated `GET` on the API host; `path_and_query` starts with `/api/v2/`.
    pub async fn get_json(
        &self,
        token: &AccessToken,
        path_and_query: &str,
    ) -> Result<serde_json::Value, ApiError> {
        self.get_json_within(token, path_and_query, self.retry.api_timeout)
            .await
    }

    /// [`Self::get_json`] cut off after `limit` (and never later than the
    /// API timeout): what a caller with a deadline asks.
    pub async fn get_json_within(
        &self,
        token: &AccessToken,
        path_and_query: &str,
        limit: Duration,
    ) -> Result<serde_json::Value, ApiError> {
        if limit.is_zero() {
            return Err(ApiError::Transport("not sent: no time left".into()));
        }
        let resp = self
            .http
            .get(format!("{}{path_and_query}", self.hosts.api))
            .timeout(limit.min(self.retry.api_timeout))
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(|e| ApiError::Transport(transport(&e)))?;
        let status = resp.status();
        let retry_after = retry_after_of(resp.headers());
        let body = resp
            .bytes()
            .await
            .map_err(|e| ApiError::Transport(transport(&e)))?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map_err(|e| ApiError::Protocol(format!("body is not JSON ({:?})", e.classify())));
        }
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_default();
        Err(match status {
            StatusCode::UNAUTHORIZED => ApiError::Unauthorized { message },
            StatusCode::TOO_MANY_REQUESTS => ApiError::RateLimited {
                retry_after: retry_after.unwrap_or(Duration::from_secs(1)),
            },
            s => ApiError::Status {
                status: s.as_u16(),
                message,
            },
        })
    }
}

/// What a token response that is not a success means.
fn token_error(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> TokenRequestError {
    let err: OAuthErrorBody = serde_json::from_slice(body).unwrap_or_default();
    if err.is_throttle(status) {
        // The server's text, bounded: it goes into logs and the token item.
        return TokenRequestError::Throttled {
            description: err.text().chars().take(200).collect(),
        };
    }
    match status {
        StatusCode::TOO_MANY_REQUESTS => {
            let retry_after = retry_after.unwrap_or(Duration::from_secs(1));
            if retry_after > MAX_RETRY_AFTER {
                TokenRequestError::RetryAfterTooLong { retry_after }
            } else {
                TokenRequestError::RateLimited { retry_after }
            }
        }
        s if s.is_server_error() && s != StatusCode::NOT_IMPLEMENTED => {
            TokenRequestError::Unavailable {
                last: format!("HTTP {}", s.as_u16()),
            }
        }
        _ if err.error == "invalid_client" || status == StatusCode::UNAUTHORIZED => {
            let text = err.text();
            TokenRequestError::InvalidClient {
                description: if text.is_empty() {
                    format!("HTTP {}", status.as_u16())
                } else {
                    text
                },
            }
        }
        _ => {
            let error = err.error.clone();
            TokenRequestError::Rejected {
                status: status.as_u16(),
                error,
                description: err.text(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(status: u16, body: &str) -> TokenRequestError {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        token_error(status, None, body.as_bytes())
    }

    #[test]
    fn the_token_endpoints_400_rate_limit_is_throttling_not_a_rejection() {
        let e = classify(
            400,
            r#"{"error":"invalid_request","description":"rate limit exceeded; try again later","error_description":"rate limit exceeded; try again later"}"#,
        );
        assert!(matches!(e, TokenRequestError::Throttled { .. }), "{e:?}");
        // Either key carries the text.
        let e = classify(
            400,
            r#"{"error":"invalid_request","description":"Rate limit exceeded; ..."}"#,
        );
        assert!(matches!(e, TokenRequestError::Throttled { .. }), "{e:?}");
    }

    #[test]
    fn other_400s_stay_rejections_and_invalid_client_stays_itself() {
        let e = classify(
            400,
            r#"{"error":"invalid_request","error_description":"Missing grant_type."}"#,
        );
        assert!(
            matches!(e, TokenRequestError::Rejected { status: 400, .. }),
            "{e:?}"
        );
        let e = classify(
            400,
            r#"{"error":"invalid_grant","error_description":"rate limit exceeded"}"#,
        );
        assert!(matches!(e, TokenRequestError::Rejected { .. }), "{e:?}");
        let e = classify(
            401,
            r#"{"error":"invalid_client","description":"client not found"}"#,
        );
        assert!(
            matches!(&e, TokenRequestError::InvalidClient { description } if description == "client not found"),
            "{e:?}"
        );
        let e = classify(429, "");
        assert!(matches!(e, TokenRequestError::RateLimited { .. }), "{e:?}");
    }
}
