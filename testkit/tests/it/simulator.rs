//! The Genesys Cloud simulator, one test per documented policy and fault switch.

use std::time::Duration;

use serde_json::Value;
use testkit::sim::{DEFAULT_CLIENT_SECRET, FaultSide, Faults, Policies, RateScope, TokenThrottle};

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
async fn per_client_scope_shares_one_budget_across_the_clients_tokens() {
    let sim = frozen_sim(Policies {
        api_rate_scope: RateScope::PerClient,
        ..Policies::default()
    })
    .await;
    let (a, b) = (new_token(&sim).await, new_token(&sim).await);
    for n in 1..=300u64 {
        let token = if n % 2 == 0 { &a } else { &b };
        let r = api_get(&sim, token, ME).await;
        assert_eq!(r.status(), 200, "request {n}");
        assert_eq!(
            header(&r, "inin-ratelimit-count"),
            Some(n),
            "one count for both tokens"
        );
    }
    for token in [&a, &b] {
        assert_eq!(api_get(&sim, token, ME).await.status(), 429);
    }
    sim.clock().advance(Duration::from_secs(60));
    assert_eq!(api_get(&sim, &a, ME).await.status(), 200);
}

#[tokio::test]
async fn token_endpoint_throttling_is_400_invalid_request_and_the_switch_keeps_429() {
    for shape in [
        TokenThrottle::InvalidRequest400,
        TokenThrottle::TooManyRequests429,
    ] {
        let sim = frozen_sim(Policies {
            token_rate_limit_per_min: Some(2),
            token_throttle: shape,
            ..Policies::default()
        })
        .await;
        new_token(&sim).await;
        new_token(&sim).await;
        let r = token_request(&sim, DEFAULT_CLIENT_SECRET, "client_credentials").await;
        let (status, retry_after) = (r.status().as_u16(), header(&r, "retry-after"));
        let body: Value = r.json().await.expect("json");
        match shape {
            TokenThrottle::InvalidRequest400 => {
                assert_eq!((status, retry_after), (400, None));
                assert_eq!(body["error"], "invalid_request");
                let description = body["error_description"].as_str().unwrap_or_default();
                assert!(description.contains("rate limit exceeded"), "{body}");
            }
            TokenThrottle::TooManyRequests429 => {
                assert_eq!((status, retry_after), (429, Some(60)));
                assert_eq!(body["code"], "too.many.requests");
            }
        }
        assert_eq!(sim.counters().token_rate_limited, 1);
        sim.clock().advance(Duration::from_secs(60));
        new_token(&sim).await;
    }
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
            // The token endpoint throttles in its own shape (see above).
            let expected = match side {
                FaultSide::Token => (400, None),
                FaultSide::Api => (429, Some(7)),
            };
            assert_eq!((r.status().as_u16(), header(&r, "retry-after")), expected);
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

#[tokio::test]
async fn oauth_errors_and_token_info_have_the_platforms_keys() {
    let sim = frozen_sim(Policies::default()).await;
    let (status, body) =
        error_of(token_request(&sim, "not-the-secret", "client_credentials").await).await;
    assert_eq!(status, 401);
    let mut keys: Vec<&String> = body.as_object().expect("object").keys().collect();
    keys.sort();
    assert_eq!(keys, ["description", "error", "error_description"]);
    assert_eq!(body["error"], "invalid_client");

    let token = new_token(&sim).await;
    let v: Value = api_get(&sim, &token, ME).await.json().await.expect("json");
    for org in [&v["organization"], &v["homeOrganization"]] {
        let mut keys: Vec<&String> = org.as_object().expect("NamedEntity").keys().collect();
        keys.sort();
        assert_eq!(keys, ["id", "name"], "NamedEntity has no selfUri");
    }
}

const FLOW: &str = "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c";

/// A simulator knowing two minutes of traffic, clock after every session ended.
async fn sim_with_traffic(
    policies: Policies,
) -> (testkit::sim::Simulator, testkit::traffic::Traffic, String) {
    let t = testkit::traffic::generate(&testkit::traffic::TrafficConfig {
        minutes: 2,
        sessions_per_minute: 30,
        ..testkit::traffic::TrafficConfig::default()
    });
    let sim = frozen_sim(policies).await;
    sim.register_conversations(t.sim_conversations());
    let last = t.conversations.iter().map(|c| c.detail.flow_end_ms).max();
    sim.clock().advance_to(last.expect("traffic") + 1);
    let token = new_token(&sim).await;
    (sim, t, token)
}

/// Every bot session of `FLOW`, a conversation's second bot flow included.
fn bot_sessions(t: &testkit::traffic::Traffic) -> Vec<&testkit::sim::BotSession> {
    t.conversations
        .iter()
        .flat_map(|c| c.detail.bot.iter().chain(c.detail.extra_bots.iter()))
        .filter(|b| b.flow_id == FLOW)
        .collect()
}

/// Every entity of a listing, following `nextUri`; also checks the envelope.
async fn list_all(sim: &testkit::sim::Simulator, token: &str, first: &str) -> Vec<Value> {
    let mut path = first.to_string();
    let mut all = Vec::new();
    loop {
        let r = api_get(sim, token, &path).await;
        assert_eq!(r.status(), 200, "{path}");
        let v: Value = r.json().await.expect("json");
        for k in v.as_object().expect("envelope").keys() {
            assert!(
                ["entities", "nextUri", "selfUri", "previousUri"].contains(&k.as_str()),
                "envelope key {k}"
            );
        }
        all.extend(v["entities"].as_array().expect("entities").iter().cloned());
        match v["nextUri"].as_str() {
            Some(next) => {
                assert!(next.starts_with("/api/v2/analytics/botflows/"), "{next}");
                let last_id = all
                    .last()
                    .and_then(|e| e["id"].as_str())
                    .map(str::to_string);
                if let Some(id) = last_id {
                    assert!(next.contains(&format!("after={id}")), "{next}");
                }
                path = next.to_string();
            }
            None => return all,
        }
    }
}

#[tokio::test]
async fn sessions_are_filtered_on_completion_time_newest_first_with_cursor_paging() {
    let (sim, t, token) = sim_with_traffic(Policies::default()).await;
    let all = bot_sessions(&t);
    // A window in the middle: sessions completed in it, whenever they started.
    let (a, b) = (
        t.conversations[0].detail.flow_start_ms + 60_000,
        t.conversations[0].detail.flow_start_ms + 150_000,
    );
    let expected: std::collections::BTreeSet<&str> = all
        .iter()
        .filter(|s| s.date_completed_ms >= a && s.date_completed_ms < b)
        .map(|s| s.id.as_str())
        .collect();
    assert!(
        all.iter()
            .any(|s| s.date_created_ms < a && s.date_completed_ms >= a && s.date_completed_ms < b),
        "a session started before the window and completed in it"
    );
    let interval = genesys::interval(a, b).expect("interval");
    let path = format!("/api/v2/analytics/botflows/{FLOW}/sessions?interval={interval}&pageSize=3");
    let paged = list_all(&sim, &token, &path).await;
    let ids: Vec<&str> = paged.iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(
        ids.iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        expected
    );
    assert_eq!(ids.len(), expected.len(), "no duplicates across pages");
    let done: Vec<i64> = paged
        .iter()
        .map(|s| testkit::sim::parse_iso(s["dateCompleted"].as_str().expect("date")).expect("iso"))
        .collect();
    assert!(done.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let one = api_get(
        &sim,
        &token,
        &format!("/api/v2/analytics/botflows/{FLOW}/sessions?interval={interval}&pageSize=250"),
    )
    .await
    .json::<Value>()
    .await
    .expect("json");
    assert!(one.get("nextUri").is_none(), "one page holds them all");
    assert_eq!(one["entities"].as_array().map(Vec::len), Some(ids.len()));
    let s = &paged[0];
    let mut keys: Vec<&String> = s.as_object().expect("session").keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "botResult",
            "botResultCategory",
            "channel",
            "conversation",
            "dateCompleted",
            "dateCreated",
            "endLanguage",
            "flow",
            "id",
            "language"
        ],
        "BotFlowSession has no intents"
    );
    assert_eq!(
        s["flow"].as_object().map(|o| o.len()),
        Some(1),
        "flow is {{id}}"
    );
    let bad = api_get(
        &sim,
        &token,
        &format!("/api/v2/analytics/botflows/{FLOW}/sessions?pageSize=3&after=not-a-cursor"),
    )
    .await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn page_size_outside_1_to_250_is_a_400_error_body() {
    let (sim, _t, token) = sim_with_traffic(Policies::default()).await;
    for (path, size) in [
        ("sessions", 251),
        ("sessions", 0),
        ("divisions/reportingturns", 251),
    ] {
        let (status, body) = error_of(
            api_get(
                &sim,
                &token,
                &format!("/api/v2/analytics/botflows/{FLOW}/{path}?pageSize={size}"),
            )
            .await,
        )
        .await;
        assert_eq!(status, 400, "{path} {size}");
        assert_eq!(body["message"], "pageSize must be between 1 and 250");
        assert_eq!(body["code"], "bad.request");
        assert_eq!(body["status"], 400);
        assert!(body["contextId"].is_string());
    }
}

#[tokio::test]
async fn reporting_turns_are_chronological_and_the_last_carries_the_final_intent() {
    let (sim, t, token) = sim_with_traffic(Policies::default()).await;
    let sessions = bot_sessions(&t);
    let multi = sessions
        .iter()
        .find(|s| s.turns.len() >= 3 && s.final_intent().is_some())
        .expect("a session with several turns");
    let path = format!(
        "/api/v2/analytics/botflows/{FLOW}/divisions/reportingturns?sessionId={}&pageSize=1",
        multi.id
    );
    let mut turns = Vec::new();
    let mut next = Some(path);
    while let Some(p) = next.take() {
        let v: Value = api_get(&sim, &token, &p).await.json().await.expect("json");
        turns.extend(v["entities"].as_array().expect("entities").iter().cloned());
        next = v["nextUri"].as_str().map(str::to_string);
    }
    assert_eq!(turns.len(), multi.turns.len(), "paged one turn at a time");
    let created: Vec<i64> = turns
        .iter()
        .map(|t| testkit::sim::parse_iso(t["dateCreated"].as_str().expect("date")).expect("iso"))
        .collect();
    assert!(created.windows(2).all(|w| w[0] < w[1]), "chronological");
    assert!(turns.iter().all(|x| x["sessionId"] == multi.id.as_str()));
    let last = turns.last().expect("turns");
    assert_eq!(last["intent"]["name"].as_str(), multi.final_intent());
    assert!(last["sessionEndDetails"]["type"].is_string());
    assert!(
        turns[..turns.len() - 1]
            .iter()
            .all(|x| x.get("sessionEndDetails").is_none())
    );
    // Ground truth is the same intent as before turns existed.
    let truth: u64 = t.truth.total.intents.values().sum();
    let finals = t
        .conversations
        .iter()
        .flat_map(|c| c.detail.bot.iter().chain(c.detail.extra_bots.iter()))
        .filter(|b| b.final_intent().is_some())
        .count() as u64;
    assert_eq!(truth, finals);
}

#[tokio::test]
async fn ingestion_lag_hides_sessions_until_it_passes() {
    let t = testkit::traffic::generate(&testkit::traffic::TrafficConfig {
        minutes: 1,
        sessions_per_minute: 30,
        ..testkit::traffic::TrafficConfig::default()
    });
    let sim = frozen_sim(Policies {
        analytics_lag_s: 90,
        ..Policies::default()
    })
    .await;
    sim.register_conversations(t.sim_conversations());
    let session = *bot_sessions(&t).first().expect("a session");
    let token = new_token(&sim).await;
    let path = format!("/api/v2/analytics/botflows/{FLOW}/sessions?pageSize=250");
    let listed = |v: Value| {
        v["entities"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["id"] == session.id.as_str())
    };
    sim.clock().advance_to(session.date_completed_ms + 1);
    let v: Value = api_get(&sim, &token, &path)
        .await
        .json()
        .await
        .expect("json");
    assert!(!listed(v), "completed but not ingested yet");
    sim.clock().advance_to(session.date_completed_ms + 89_000);
    let v: Value = api_get(&sim, &token, &path)
        .await
        .json()
        .await
        .expect("json");
    assert!(!listed(v), "still within the lag");
    sim.clock().advance_to(session.date_completed_ms + 90_000);
    let v: Value = api_get(&sim, &token, &path)
        .await
        .json()
        .await
        .expect("json");
    assert!(listed(v), "listed once the lag has passed");
}

#[tokio::test]
async fn app_limit_across_the_orgs_tokens_is_an_assumption_off_by_default() {
    assert_eq!(Policies::default().app_rate_limit_per_min, None);
    let sim = frozen_sim(Policies {
        app_rate_limit_per_min: Some(5),
        ..Policies::default()
    })
    .await;
    let a = new_token(&sim).await;
    let b = new_token(&sim).await;
    for n in 0..5 {
        let token = if n % 2 == 0 { &a } else { &b };
        assert_eq!(api_get(&sim, token, ME).await.status(), 200, "call {n}");
    }
    let r = api_get(&sim, &b, ME).await;
    assert_eq!(
        r.status(),
        429,
        "the sixth call of the org, on either token"
    );
    assert_eq!(header(&r, "retry-after"), Some(60));
    assert_eq!(header(&r, "inin-ratelimit-allowed"), Some(5));
    assert_eq!(sim.counters().app_rate_limited, 1);
    sim.clock().advance(Duration::from_secs(60));
    assert_eq!(api_get(&sim, &a, ME).await.status(), 200);
}

/// `GET /api/v2/flows/{flowId}`: the flow's `Flow` (its name), 404 for a
/// flow it does not know, 401 without a token, and 403 when the client
/// lacks `architect:flow:view` (the switch).
#[tokio::test]
async fn flows_answer_their_names_and_refuse_without_the_permission() {
    let (sim, t, token) = sim_with_traffic(Policies::default()).await;
    let name = t
        .conversations
        .iter()
        .find(|c| c.detail.flow_id == FLOW)
        .map(|c| c.detail.flow_name.clone())
        .expect("the flow is in the traffic");
    let flow: Value = api_get(&sim, &token, &format!("/api/v2/flows/{FLOW}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        (flow["id"].as_str(), flow["name"].as_str()),
        (Some(FLOW), Some(name.as_str()))
    );
    let (status, body) = error_of(
        api_get(
            &sim,
            &token,
            "/api/v2/flows/00000000-0000-4000-8000-000000000000",
        )
        .await,
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not.found")));
    let (status, _) = error_of(api_get(&sim, "", &format!("/api/v2/flows/{FLOW}")).await).await;
    assert_eq!(status, 401);
    sim.set_policies(Policies {
        flows_forbidden: true,
        ..Policies::default()
    });
    let (status, body) =
        error_of(api_get(&sim, &token, &format!("/api/v2/flows/{FLOW}")).await).await;
    assert_eq!(status, 403);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("architect:flow:view"))
    );
}

#[tokio::test]
async fn the_rate_scope_probe_tells_the_two_readings_apart() {
    let creds = genesys::ClientCredentials {
        client_id: testkit::sim::DEFAULT_CLIENT_ID.into(),
        client_secret: lambda_support::Redacted::new(DEFAULT_CLIENT_SECRET),
    };
    for (scope, limit) in [
        (RateScope::PerToken, Some(300)),
        (RateScope::PerClient, Some(300)),
        (RateScope::PerToken, None),
    ] {
        let sim = frozen_sim(Policies {
            api_rate_scope: scope,
            api_rate_limit_per_min: limit,
            ..Policies::default()
        })
        .await;
        let verdict = genesys::probe_rate_scope(&testkit::product::api(&sim), &creds, 350)
            .await
            .expect("probe");
        // Ten at a time: the 301st request is in the 31st batch.
        let expected = match (scope, limit) {
            (_, None) => genesys::RateScopeVerdict::Inconclusive {
                requests: 350,
                reason: "no 429 within the allowance: the limit is higher",
            },
            (RateScope::PerToken, _) => genesys::RateScopeVerdict::PerToken { requests: 310 },
            (RateScope::PerClient, _) => genesys::RateScopeVerdict::PerClient { requests: 310 },
        };
        assert_eq!(verdict, expected, "{scope:?}, limit {limit:?}");
        assert_eq!(sim.counters().token_requests, 2, "two tokens, no more");
    }
}
