//! dashboard-api: behind an API Gateway HTTP API whose JWT authorizer admits
//! only signed-in viewers (a Cognito user pool) to `/api/dashboard`; serves
//! the page and `/api/sign-in` (where the page signs in) to anyone, and
//! checks the viewer's token itself too. Read-only: aggregates of a time
//! range and the token health attributes, never a token or an error text.

use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderValue};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use lambda_support::{SystemClock, telemetry};
use token_store::TokenStore;
use token_store::tenants::TenantRegistry;
use va_analytics::AnalyticsStore;
use va_analytics::dashboard::access::TaggedReaders;
use va_analytics::dashboard::auth::Verifier;
use va_analytics::dashboard::{DashboardApi, DashboardConfig};

async fn handle(api: &DashboardApi, req: ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
    let method = req.request_context.http.method.as_str().to_string();
    let path = req.raw_path.clone().unwrap_or_else(|| "/".into());
    let query: Vec<(String, String)> = req
        .query_string_parameters
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let authorization = req
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    // A live refresh's settled part (JSON); API Gateway may base64 it.
    let body = match (&req.body, req.is_base64_encoded) {
        (Some(b), true) => base64_text(b),
        (Some(b), false) => Some(b.clone()),
        (None, _) => None,
    };
    let reply = api
        .reply_with_body(&method, &path, &query, authorization, body.as_deref())
        .await;
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static(reply.content_type));
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    let mut resp = ApiGatewayV2httpResponse::default();
    resp.status_code = i64::from(reply.status);
    resp.headers = headers;
    resp.body = Some(Body::Text(reply.body));
    resp.is_base64_encoded = false;
    resp
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let cfg = match DashboardConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "dashboard-api cannot start");
            return Err(e.into());
        }
    };
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let ddb = aws_sdk_dynamodb::Client::new(&aws);
    let api = Arc::new(DashboardApi {
        store: AnalyticsStore::new(ddb.clone(), cfg.analytics_table.clone()),
        tokens: TokenStore::new(ddb.clone(), cfg.token_table.clone(), &cfg.secret_id),
        pool_size: cfg.pool_size,
        clock: Arc::new(SystemClock),
        auth: Verifier::new(cfg.auth.clone()),
        tenants: cfg
            .tenants_table
            .as_ref()
            .map(|t| TenantRegistry::new(ddb, t.clone())),
        readers: cfg.org_reader_role_arn.as_ref().map(|role| {
            Arc::new(TaggedReaders::new(
                aws.clone(),
                role.clone(),
                cfg.analytics_table.clone(),
            ))
        }),
    });
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2httpRequest>| {
            let api = api.clone();
            async move { Ok::<_, Error>(handle(&api, event.payload).await) }
        },
    ))
    .await
}

/// A base64 body as text; `None` (refused as an invalid body) when it is not
/// base64 of UTF-8.
fn base64_text(b: &str) -> Option<String> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(b)
        .ok()
        .and_then(|v| String::from_utf8(v).ok())
}
