//! The dashboard's sign-in on moto's Cognito: a user pool, an app client
//! without a secret (as the template's), and one viewer with a permanent
//! password. Setup talks moto's JSON protocol directly (moto does not check
//! SigV4); the product only ever verifies the tokens moto signs.

use serde_json::{Value, json};
use va_analytics::dashboard::auth::AuthConfig;

use crate::aws::HarnessError;

/// A pool with one viewer.
#[derive(Clone)]
pub struct LocalSignIn {
    /// What the dashboard checks tokens against.
    pub auth: AuthConfig,
    /// The viewer's user name.
    pub username: String,
    /// The viewer's password (a test user's, made up per run).
    pub password: String,
    /// moto's endpoint.
    pub endpoint: String,
    /// The user pool.
    pub pool_id: String,
}

impl std::fmt::Debug for LocalSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSignIn")
            .field("auth", &self.auth)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

async fn call(endpoint: &str, op: &str, body: Value) -> Result<Value, HarnessError> {
    let r = reqwest::Client::new()
        .post(format!("{}/", endpoint.trim_end_matches('/')))
        .header("content-type", "application/x-amz-json-1.1")
        .header(
            "x-amz-target",
            format!("AWSCognitoIdentityProviderService.{op}"),
        )
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| HarnessError::Aws(format!("cognito {op}: {e}")))?;
    let status = r.status();
    let text = r
        .text()
        .await
        .map_err(|e| HarnessError::Aws(format!("cognito {op}: {e}")))?;
    if !status.is_success() {
        return Err(HarnessError::Aws(format!("cognito {op}: {status} {text}")));
    }
    serde_json::from_str(&text).map_err(|e| HarnessError::Aws(format!("cognito {op}: {e}")))
}

impl LocalSignIn {
    /// Creates the pool, the client and the viewer on the moto `config`
    /// points at (the test's own server of the pool).
    pub async fn create(config: &aws_config::SdkConfig) -> Result<Self, HarnessError> {
        let endpoint = config
            .endpoint_url()
            .ok_or_else(|| {
                HarnessError::Aws("the local sign-in needs moto, not a real account".into())
            })?
            .to_string();
        let pool = call(
            &endpoint,
            "CreateUserPool",
            json!({"PoolName": crate::aws::unique_name("viewers"),
                   "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": true}}),
        )
        .await?;
        let pool_id = pool["UserPool"]["Id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let client = call(
            &endpoint,
            "CreateUserPoolClient",
            json!({"UserPoolId": pool_id, "ClientName": "dashboard", "GenerateSecret": false,
                   "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]}),
        )
        .await?;
        let client_id = client["UserPoolClient"]["ClientId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let username = "viewer".to_string();
        let password = format!("Va-{}-1!", uuid::Uuid::new_v4().simple());
        call(
            &endpoint,
            "AdminCreateUser",
            json!({"UserPoolId": pool_id, "Username": username, "MessageAction": "SUPPRESS"}),
        )
        .await?;
        call(
            &endpoint,
            "AdminSetUserPassword",
            json!({"UserPoolId": pool_id, "Username": username, "Password": password, "Permanent": true}),
        )
        .await?;
        // moto names the real Cognito host in `iss` and serves the keys itself.
        let region = pool_id.split('_').next().unwrap_or("us-east-1");
        let issuer = format!("https://cognito-idp.{region}.amazonaws.com/{pool_id}");
        let mut auth = AuthConfig::cognito(&issuer, &client_id);
        auth.jwks_url = format!(
            "{}/{pool_id}/.well-known/jwks.json",
            endpoint.trim_end_matches('/')
        );
        auth.sign_in_endpoint = format!("{}/", endpoint.trim_end_matches('/'));
        Ok(Self {
            auth,
            username,
            password,
            endpoint,
            pool_id,
        })
    }

    /// Signs the viewer in as the page does; returns the access token.
    /// Another viewer of the same pool, in `groups` (created as needed):
    /// `org-<orgId>` grants an org in a multi-org deployment.
    pub async fn add_viewer(&self, username: &str, groups: &[&str]) -> Result<Self, HarnessError> {
        let password = format!("Va-{}-1!", uuid::Uuid::new_v4().simple());
        call(
            &self.endpoint,
            "AdminCreateUser",
            json!({"UserPoolId": self.pool_id, "Username": username, "MessageAction": "SUPPRESS"}),
        )
        .await?;
        call(
            &self.endpoint,
            "AdminSetUserPassword",
            json!({"UserPoolId": self.pool_id, "Username": username, "Password": password, "Permanent": true}),
        )
        .await?;
        for g in groups {
            // The group may exist already (another viewer of the org).
            let _ = call(
                &self.endpoint,
                "CreateGroup",
                json!({"UserPoolId": self.pool_id, "GroupName": g}),
            )
            .await;
            call(
                &self.endpoint,
                "AdminAddUserToGroup",
                json!({"UserPoolId": self.pool_id, "Username": username, "GroupName": g}),
            )
            .await?;
        }
        Ok(Self {
            username: username.to_string(),
            password,
            ..self.clone()
        })
    }

    pub async fn access_token(&self) -> Result<String, HarnessError> {
        let r = call(
            &self.endpoint,
            "InitiateAuth",
            json!({"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": self.auth.client_id,
                   "AuthParameters": {"USERNAME": self.username, "PASSWORD": self.password}}),
        )
        .await?;
        r["AuthenticationResult"]["AccessToken"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| HarnessError::Aws("InitiateAuth gave no access token".into()))
    }
}
