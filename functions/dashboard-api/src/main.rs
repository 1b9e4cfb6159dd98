//! dashboard-api: behind a Lambda function URL, serves the dashboard page and
//! `GET /api/dashboard` (aggregates of a time range and the token health,
//! never a token). Read-only.

use std::sync::Arc;

use aws_lambda_events::http::{HeaderMap, HeaderValue};
use aws_lambda_events::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use lambda_support::{SystemClock, telemetry};
use token_store::TokenStore;
use va_analytics::AnalyticsStore;
use va_analytics::dashboard::{DashboardApi, DashboardConfig};

async fn handle(api: &DashboardApi, req: LambdaFunctionUrlRequest) -> LambdaFunctionUrlResponse {
    let http = &req.request_context.http;
    let method = http.method.clone().unwrap_or_else(|| "GET".into());
    let path = req.raw_path.clone().unwrap_or_else(|| "/".into());
    let query: Vec<(String, String)> = req
        .query_string_parameters
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let reply = api.reply(&method, &path, &query).await;
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static(reply.content_type));
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    let mut resp = LambdaFunctionUrlResponse::default();
    resp.status_code = i64::from(reply.status);
    resp.headers = headers;
    resp.body = Some(reply.body);
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
        tokens: TokenStore::new(ddb, cfg.token_table.clone(), &cfg.secret_id),
        pool_size: cfg.pool_size,
        clock: Arc::new(SystemClock),
    });
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<LambdaFunctionUrlRequest>| {
            let api = api.clone();
            async move { Ok::<_, Error>(handle(&api, event.payload).await) }
        },
    ))
    .await
}
