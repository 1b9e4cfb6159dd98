//! The double's front door: an HTTP server on loopback in front of one moto
//! server. Each request is authorized (`authorize`) before moto sees it; a
//! refused one is answered as its service answers a refusal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode};

use super::authorize::{ADMINISTRATOR_KEY, After, Refusal, authorize, register_key};
use super::request::{Call, Service};

struct Upstream {
    url: String,
    http: reqwest::Client,
    /// Secret name -> ARN, as moto reported it.
    secrets: Mutex<HashMap<String, String>>,
}

/// Starts a front for the moto server at `upstream` on its own thread and
/// runtime (tests each run their own runtime; this one outlives them).
/// Returns its base URL.
pub fn start(upstream: &str) -> Result<String, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let state = Arc::new(Upstream {
        url: upstream.trim_end_matches('/').to_string(),
        http,
        secrets: Mutex::default(),
    });
    std::thread::Builder::new()
        .name("iam-front".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let app = axum::Router::new().fallback(front).with_state(state);
                let _ = axum::serve(listener, app).await;
            });
        })
        .map_err(|e| e.to_string())?;
    Ok(format!("http://{addr}"))
}

async fn front(State(up): State<Arc<Upstream>>, req: Request<Body>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 256 * 1024 * 1024).await else {
        return plain(StatusCode::BAD_REQUEST, "unreadable body");
    };
    let call = Call::read(&parts.headers, &bytes);
    let secret = match (
        call.service,
        call.body.get("SecretId").and_then(|v| v.as_str()),
    ) {
        (Service::SecretsManager, Some(id)) if !id.starts_with("arn:") => secret_arn(&up, id).await,
        _ => None,
    };
    let after = match authorize(&call, &|_| secret.clone()) {
        Ok(a) => a,
        Err(refusal) => return refused(call.service, &refusal),
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut fwd = up
        .http
        .request(parts.method.clone(), format!("{}{path}", up.url))
        .body(bytes);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            fwd = fwd.header(name, value);
        }
    }
    let Ok(answer) = fwd.send().await else {
        return plain(StatusCode::BAD_GATEWAY, "moto did not answer");
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let Ok(body) = answer.bytes().await else {
        return plain(StatusCode::BAD_GATEWAY, "moto's answer was cut off");
    };
    if let (After::Session(caller), true) = (after, status.is_success())
        && let Some(key) = between(&body, "<AccessKeyId>", "</AccessKeyId>")
    {
        register_key(key, caller);
    }
    let mut out = Response::new(Body::from(body));
    *out.status_mut() = status;
    for (name, value) in &headers {
        if !matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            out.headers_mut().append(name, value.clone());
        }
    }
    out
}

fn between(body: &Bytes, open: &str, close: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find(open)? + open.len();
    let end = start + text[start..].find(close)?;
    Some(text[start..end].to_string())
}

/// A secret's ARN by name, asked of moto as the administrator.
async fn secret_arn(up: &Upstream, name: &str) -> Option<String> {
    if let Some(arn) = up
        .secrets
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(name)
    {
        return Some(arn.clone());
    }
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={ADMINISTRATOR_KEY}/20260101/{}/secretsmanager/aws4_request, SignedHeaders=host, Signature=0",
        super::request::REGION
    );
    let answer = up
        .http
        .post(format!("{}/", up.url))
        .header("x-amz-target", "secretsmanager.DescribeSecret")
        .header("content-type", "application/x-amz-json-1.1")
        .header("authorization", auth)
        .body(serde_json::json!({"SecretId": name}).to_string())
        .send()
        .await
        .ok()?;
    let v: serde_json::Value = answer.json().await.ok()?;
    let arn = v.get("ARN")?.as_str()?.to_string();
    up.secrets
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(name.to_string(), arn.clone());
    Some(arn)
}

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(Body::from(text.to_string()));
    *r.status_mut() = status;
    r
}

fn json(status: StatusCode, content_type: &str, body: serde_json::Value) -> Response<Body> {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = status;
    put(r.headers_mut(), "content-type", content_type);
    put(
        r.headers_mut(),
        "x-amzn-requestid",
        &uuid::Uuid::new_v4().to_string(),
    );
    r
}

fn put(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

/// A refusal as each service answers it (shapes from each service's
/// protocol as the official SDKs parse it; see docs/DESIGN.md):
/// - DynamoDB (awsJson1_0): 400, `__type` `...#AccessDeniedException`;
/// - SQS (awsJson1_0, query-compatible): the code in `x-amzn-query-error`;
///   `AccessDenied` with 403, `KMS.AccessDeniedException` with 400;
/// - Secrets Manager and KMS (awsJson1_1): 400 `AccessDeniedException`;
/// - STS (awsQuery): 403 with an XML `ErrorResponse`.
fn refused(service: Service, refusal: &Refusal) -> Response<Body> {
    let (code, message) = match refusal {
        Refusal::AccessDenied(m) | Refusal::Unsupported(m) => ("AccessDeniedException", m.clone()),
        Refusal::KmsAccessDenied(m) => ("KMS.AccessDeniedException", m.clone()),
        Refusal::UnknownKey => (
            "UnrecognizedClientException",
            "The security token included in the request is invalid.".to_string(),
        ),
        Refusal::Unsigned => (
            "MissingAuthenticationTokenException",
            "Request is missing Authentication Token".to_string(),
        ),
    };
    match service {
        Service::DynamoDb => json(
            StatusCode::BAD_REQUEST,
            "application/x-amz-json-1.0",
            serde_json::json!({
                "__type": format!("com.amazon.coral.service#{code}"),
                "Message": message,
            }),
        ),
        Service::Sqs => {
            let (status, query_code, ty) = match code {
                "KMS.AccessDeniedException" => (
                    StatusCode::BAD_REQUEST,
                    "KMS.AccessDeniedException",
                    "com.amazonaws.sqs#KmsAccessDenied",
                ),
                "AccessDeniedException" => (
                    StatusCode::FORBIDDEN,
                    "AccessDenied",
                    "com.amazon.coral.service#AccessDeniedException",
                ),
                _ => (
                    StatusCode::FORBIDDEN,
                    "InvalidClientTokenId",
                    "com.amazon.coral.service#UnrecognizedClientException",
                ),
            };
            let mut r = json(
                status,
                "application/x-amz-json-1.0",
                serde_json::json!({"__type": ty, "message": message}),
            );
            put(
                r.headers_mut(),
                "x-amzn-query-error",
                &format!("{query_code};Sender"),
            );
            r
        }
        Service::Sts => {
            let code = match code {
                "AccessDeniedException" => "AccessDenied",
                "UnrecognizedClientException" => "InvalidClientTokenId",
                c => c,
            };
            let body = format!(
                "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
                xml_escape(&message),
                uuid::Uuid::new_v4()
            );
            let mut r = Response::new(Body::from(body));
            *r.status_mut() = StatusCode::FORBIDDEN;
            put(r.headers_mut(), "content-type", "text/xml");
            r
        }
        _ => json(
            StatusCode::BAD_REQUEST,
            "application/x-amz-json-1.1",
            serde_json::json!({"__type": code, "Message": message}),
        ),
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
