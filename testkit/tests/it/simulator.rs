//! The Genesys Cloud simulator, one test per documented policy and fault switch.

use std::time::Duration;

use serde_json::Value;
use testkit::sim::{DEFAULT_CLIENT_SECRET, FaultSide, Faults, Policies};

use crate::common::{api_get, eventually, frozen_sim, http, new_token, token_request};

const ME: &str = "/api/v2/tokens/me";

async fn error_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, r.json().await.expect("json error body"))
}

#[tokio::test]
async fn wrong_secret_is_invalid_client() {
    let sim = frozen_sim(Policies::default()).await;
    let (status, body) =
        error_of(token_request(&sim, "not-the-secret", "client_credentials").await).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    assert!(body["error_description"].is_string());
    let c = sim.counters();
    assert_eq!((c.token_requests, c.tokens_issued), (1, 0));
}

#[tokio::test]
async fn refresh_token_grant_gives_the_seeds_invalid_grant_and_other_grants_are_unsupported() {
    let sim = frozen_sim(Policies::default()).await;
    let (status, body) =
        error_of(token_request(&sim, DEFAULT_CLIENT_SECRET, "refresh_token").await).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        body["error_description"],
        "The refresh token has been revoked or expired"
    );

    let (status, body) =
        error_of(token_request(&sim, DEFAULT_CLIENT_SECRET, "password").await).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "unsupported_grant_type");

    let r = http()
        .post(format!("{}/oauth/token", sim.base_url()))
        .basic_auth(testkit::sim::DEFAULT_CLIENT_ID, Some(DEFAULT_CLIENT_SECRET))
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), 400, "a JSON body is not a form body");
}

#[tokio::test]
async fn client_credentials_grant_returns_an_opaque_bearer_token_with_the_configured_lifetime() {
    let sim = frozen_sim(Policies {
        token_lifetime_s: 1234,
        ..Policies::default()
    })
    .await;
    let r = token_request(&sim, DEFAULT_CLIENT_SECRET, "client_credentials").await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["token_type"], "bearer");
    assert_eq!(v["expires_in"], 1234);
    assert!(
        v.get("refresh_token").is_none(),
        "client credentials have no refresh token"
    );
    let token = v["access_token"].as_str().expect("token");
    assert_eq!(api_get(&sim, token, ME).await.status(), 200);
}

#[tokio::test]
async fn tokens_expire_after_their_lifetime() {
    let sim = frozen_sim(Policies {
        token_lifetime_s: 300,
        ..Policies::default()
    })
    .await;
    let token = new_token(&sim).await;
    sim.clock().advance(Duration::from_secs(299));
    assert_eq!(api_get(&sim, &token, ME).await.status(), 200);
    sim.clock().advance(Duration::from_secs(1));
    let (status, body) = error_of(api_get(&sim, &token, ME).await).await;
    assert_eq!(status, 401);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("expired"),
        "{body}"
    );
    assert_eq!(sim.counters().unauthorized_total, 1);
}

#[tokio::test]
async fn idle_timeout_kills_unused_tokens_and_can_be_switched_off() {
    let sim = frozen_sim(Policies {
        idle_timeout_s: Some(900),
        ..Policies::default()
    })
    .await;
    let token = new_token(&sim).await;
    for _ in 0..3 {
        sim.clock().advance(Duration::from_secs(899));
        assert_eq!(
            api_get(&sim, &token, ME).await.status(),
            200,
            "use resets the idle timer"
        );
    }
    sim.clock().advance(Duration::from_secs(901));
    let (status, body) = error_of(api_get(&sim, &token, ME).await).await;
    assert_eq!(status, 401);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("idle"),
        "{body}"
    );
    // Once dead, it stays dead even if used again at once.
    assert_eq!(api_get(&sim, &token, ME).await.status(), 401);

    sim.set_policies(Policies::default());
    let token = new_token(&sim).await;
    sim.clock().advance(Duration::from_secs(86_000));
    assert_eq!(api_get(&sim, &token, ME).await.status(), 200);
}

#[tokio::test]
async fn revocation_by_delete_tokens_me_and_by_the_revoke_all_control() {
    let sim = frozen_sim(Policies::default()).await;
    let (a, b, c) = (
        new_token(&sim).await,
        new_token(&sim).await,
        new_token(&sim).await,
    );
    let r = http()
        .delete(format!("{}{ME}", sim.base_url()))
        .bearer_auth(&a)
        .send()
        .await
        .expect("sent");
    assert!(r.status().is_success());
    let head = http()
        .head(format!("{}{ME}", sim.base_url()))
        .bearer_auth(&a)
        .send()
        .await
        .expect("sent");
    assert_eq!(head.status(), 401, "HEAD sees the revoked token");
    assert_eq!(
        api_get(&sim, &b, ME).await.status(),
        200,
        "others unaffected"
    );

    let r = http()
        .post(format!("{}/sim/revoke-all", sim.base_url()))
        .send()
        .await
        .expect("sent");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["revoked"], 2);
    for t in [&b, &c] {
        let (status, body) = error_of(api_get(&sim, t, ME).await).await;
        assert_eq!(status, 401);
        assert!(
            body["message"]
                .as_str()
                .unwrap_or_default()
                .contains("revoked"),
            "{body}"
        );
    }
    assert_eq!(sim.counters().live_tokens, 0);
}

#[tokio::test]
async fn live_token_cap_revokes_the_oldest_and_is_off_by_default() {
    let sim = frozen_sim(Policies {
        live_token_cap: Some(2),
        ..Policies::default()
    })
    .await;
    let t1 = new_token(&sim).await;
    let t2 = new_token(&sim).await;
    assert_eq!(api_get(&sim, &t1, ME).await.status(), 200);
    let t3 = new_token(&sim).await;
    let (status, body) = error_of(api_get(&sim, &t1, ME).await).await;
    assert_eq!(status, 401);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("newer token"),
        "{body}"
    );
    assert_eq!(api_get(&sim, &t2, ME).await.status(), 200);
    assert_eq!(api_get(&sim, &t3, ME).await.status(), 200);
    assert_eq!(sim.counters().live_tokens, 2);

    let uncapped = frozen_sim(Policies::default()).await;
    let tokens = [
        new_token(&uncapped).await,
        new_token(&uncapped).await,
        new_token(&uncapped).await,
    ];
    for t in &tokens {
        assert_eq!(api_get(&uncapped, t, ME).await.status(), 200);
    }
}

fn header(r: &reqwest::Response, name: &str) -> Option<u64> {
    r.headers().get(name)?.to_str().ok()?.parse().ok()
}

#[tokio::test]
async fn per_token_limit_is_300_a_minute_with_ratelimit_headers_and_retry_after() {
    let sim = frozen_sim(Policies::default()).await;
    let token = new_token(&sim).await;
    let other = new_token(&sim).await;
    for n in 1..=300u64 {
        let r = api_get(&sim, &token, ME).await;
        assert_eq!(r.status(), 200, "request {n}");
        assert_eq!(header(&r, "inin-ratelimit-allowed"), Some(300));
        assert_eq!(header(&r, "inin-ratelimit-count"), Some(n));
        assert_eq!(header(&r, "inin-ratelimit-reset"), Some(60));
    }
    sim.clock().advance(Duration::from_secs(20));
    let r = api_get(&sim, &token, ME).await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "retry-after"), Some(40));
    assert_eq!(
        header(&r, "inin-ratelimit-count"),
        Some(301),
        "the count exceeds the allowance on a 429"
    );
    assert_eq!(header(&r, "inin-ratelimit-reset"), Some(40));
    assert_eq!(
        api_get(&sim, &other, ME).await.status(),
        200,
        "the budget is per token"
    );
    sim.clock().advance(Duration::from_secs(40));
    let r = api_get(&sim, &token, ME).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "inin-ratelimit-count"), Some(1));
    assert_eq!(sim.counters().api_rate_limited, 1);
}

#[tokio::test]
async fn token_endpoint_rate_limit_answers_429_with_retry_after() {
    let sim = frozen_sim(Policies {
        token_rate_limit_per_min: Some(2),
        ..Policies::default()
    })
    .await;
    new_token(&sim).await;
    new_token(&sim).await;
    let r = token_request(&sim, DEFAULT_CLIENT_SECRET, "client_credentials").await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "retry-after"), Some(60));
    sim.clock().advance(Duration::from_secs(60));
    new_token(&sim).await;
}

/// Sends one request to the given side: a token request or an API call.
async fn hit(
    sim: &testkit::sim::Simulator,
    side: FaultSide,
    token: &str,
    client: &reqwest::Client,
) -> reqwest::Result<reqwest::Response> {
    match side {
        FaultSide::Token => {
            client
                .post(format!("{}/oauth/token", sim.base_url()))
                .basic_auth(testkit::sim::DEFAULT_CLIENT_ID, Some(DEFAULT_CLIENT_SECRET))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials")
                .send()
                .await
        }
        FaultSide::Api => {
            client
                .get(format!("{}{ME}", sim.base_url()))
                .bearer_auth(token)
                .send()
                .await
        }
    }
}

#[tokio::test]
async fn fault_5xx_burst_on_each_side() {
    for side in [FaultSide::Token, FaultSide::Api] {
        let sim = frozen_sim(Policies::default()).await;
        let token = new_token(&sim).await;
        sim.set_faults(
            side,
            Faults {
                errors_5xx: 2,
                status_5xx: 502,
                ..Faults::default()
            },
        );
        let other = match side {
            FaultSide::Token => FaultSide::Api,
            FaultSide::Api => FaultSide::Token,
        };
        assert!(
            hit(&sim, other, &token, &http())
                .await
                .expect("sent")
                .status()
                .is_success(),
            "{side:?}: other side clean"
        );
        for _ in 0..2 {
            assert_eq!(
                hit(&sim, side, &token, &http())
                    .await
                    .expect("sent")
                    .status(),
                502,
                "{side:?}"
            );
        }
        assert!(
            hit(&sim, side, &token, &http())
                .await
                .expect("sent")
                .status()
                .is_success(),
            "{side:?}: burst over"
        );
        assert_eq!(sim.counters().injected_5xx, 2);
    }
}

#[tokio::test]
async fn fault_429_storm_on_each_side() {
    for side in [FaultSide::Token, FaultSide::Api] {
        let sim = frozen_sim(Policies::default()).await;
        let token = new_token(&sim).await;
        sim.set_faults(
            side,
            Faults {
                storm_429: 3,
                storm_retry_after_s: 7,
                ..Faults::default()
            },
        );
        for _ in 0..3 {
            let r = hit(&sim, side, &token, &http()).await.expect("sent");
            assert_eq!(r.status(), 429, "{side:?}");
            assert_eq!(header(&r, "retry-after"), Some(7));
        }
        assert!(
            hit(&sim, side, &token, &http())
                .await
                .expect("sent")
                .status()
                .is_success()
        );
        assert_eq!(sim.counters().injected_429, 3);
    }
}

#[tokio::test]
async fn fault_dropped_connection_on_each_side() {
    for side in [FaultSide::Token, FaultSide::Api] {
        let sim = frozen_sim(Policies::default()).await;
        let token = new_token(&sim).await;
        sim.set_faults(
            side,
            Faults {
                drop_connections: 1,
                ..Faults::default()
            },
        );
        let err = hit(&sim, side, &token, &http())
            .await
            .expect_err("connection dropped");
        assert!(!err.is_timeout() && !err.is_status(), "{side:?}: {err}");
        assert!(
            hit(&sim, side, &token, &http())
                .await
                .expect("sent")
                .status()
                .is_success()
        );
        assert_eq!(sim.counters().dropped_connections, 1);
    }
}

#[tokio::test]
async fn fault_latency_on_each_side_outlasts_a_short_client_timeout() {
    for side in [FaultSide::Token, FaultSide::Api] {
        let sim = frozen_sim(Policies::default()).await;
        let token = new_token(&sim).await;
        sim.set_faults(
            side,
            Faults {
                latency_ms: 5_000,
                ..Faults::default()
            },
        );
        let impatient = reqwest::Client::builder()
            .timeout(Duration::from_millis(100))
            .build()
            .expect("client");
        let err = hit(&sim, side, &token, &impatient)
            .await
            .expect_err("times out");
        assert!(err.is_timeout(), "{side:?}: {err}");
        sim.set_faults(side, Faults::default());
        assert!(
            hit(&sim, side, &token, &http())
                .await
                .expect("sent")
                .status()
                .is_success()
        );
    }
}

#[tokio::test]
async fn counts_token_requests_in_flight_at_once() {
    let sim = frozen_sim(Policies::default()).await;
    sim.set_faults(
        FaultSide::Token,
        Faults {
            latency_ms: 1_000,
            ..Faults::default()
        },
    );
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let url = sim.base_url();
            tokio::spawn(async move {
                http()
                    .post(format!("{url}/oauth/token"))
                    .basic_auth(testkit::sim::DEFAULT_CLIENT_ID, Some(DEFAULT_CLIENT_SECRET))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("grant_type=client_credentials")
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    eventually(
        Duration::from_secs(10),
        "five token requests in flight",
        || async { sim.counters().token_requests_in_flight == 5 },
    )
    .await;
    for t in tasks {
        assert_eq!(t.await.expect("task").expect("sent"), 200);
    }
    let c = sim.counters();
    assert_eq!(
        (
            c.token_requests,
            c.max_token_requests_in_flight,
            c.token_requests_in_flight
        ),
        (5, 5, 0)
    );
    assert_eq!(c.live_tokens, 5);
}

#[tokio::test]
async fn control_api_moves_the_clock_and_switches_faults_and_policies() {
    let sim = frozen_sim(Policies::default()).await;
    let base = sim.base_url();
    let before = sim.clock().now_ms();
    let v: Value = http()
        .post(format!("{base}/sim/clock"))
        .json(&serde_json::json!({"advance_ms": 3_600_000}))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(v["now_ms"].as_i64(), Some(before + 3_600_000));

    let r = http()
        .put(format!("{base}/sim/policies"))
        .json(&serde_json::json!({"token_lifetime_s": 600}))
        .send()
        .await
        .expect("sent");
    assert!(r.status().is_success());
    assert_eq!(sim.policies().token_lifetime_s, 600);
    assert_eq!(
        sim.policies().api_rate_limit_per_min,
        Some(300),
        "unnamed fields keep defaults"
    );

    let r = http()
        .put(format!("{base}/sim/faults/api"))
        .json(&serde_json::json!({"errors_5xx": 1}))
        .send()
        .await
        .expect("sent");
    assert!(r.status().is_success());
    let token = new_token(&sim).await;
    assert_eq!(api_get(&sim, &token, ME).await.status(), 503);
    let counters: Value = http()
        .get(format!("{base}/sim/counters"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(counters["injected_5xx"], 1);
    assert_eq!(counters["token_requests"], 1);
}

#[tokio::test]
async fn missing_or_unknown_bearer_is_401_with_the_reason() {
    let sim = frozen_sim(Policies::default()).await;
    let r = http()
        .get(format!("{}{ME}", sim.base_url()))
        .send()
        .await
        .expect("sent");
    let (status, body) = error_of(r).await;
    assert_eq!(status, 401);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("No authentication"),
        "{body}"
    );
    let (status, body) = error_of(api_get(&sim, "made-up", ME).await).await;
    assert_eq!(status, 401);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("unknown"),
        "{body}"
    );
    assert_eq!(sim.counters().unauthorized_total, 2);
}
