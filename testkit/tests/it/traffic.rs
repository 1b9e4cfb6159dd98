//! The traffic generator: fixture shape, determinism, and a ground truth that
//! matches its own events.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use testkit::sim::Policies;
use testkit::traffic::{self, BOT_FLOW_TYPES, SessionKind, TrafficConfig};

use crate::common::{api_get, frozen_sim, new_token};

use testkit::fixtures::all as fixtures;

/// Field name -> JSON type, for one object.
fn shape(v: &Value) -> BTreeMap<String, &'static str> {
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    v.as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), kind(v))).collect())
        .unwrap_or_default()
}

#[test]
fn generated_envelopes_have_the_shape_of_the_fixtures_topic_by_topic() {
    let t = traffic::generate(&TrafficConfig {
        minutes: 5,
        ..TrafficConfig::default()
    });
    let mut compared = BTreeSet::new();
    for (name, fixture) in fixtures() {
        let dt = fixture["detail-type"].as_str().unwrap_or_default();
        if !dt.starts_with("v2.detail.events.conversation.") {
            continue;
        }
        let transfer = fixture["detail"]["eventBody"].get("transferType").is_some();
        let media = fixture["detail"]["eventBody"]["mediaType"].clone();
        let generated = t
            .events
            .iter()
            .map(|e| &e.envelope)
            .find(|e| {
                e["detail-type"] == dt
                    && e["detail"]["eventBody"].get("transferType").is_some() == transfer
                    && e["detail"]["eventBody"]["mediaType"] == media
            })
            .unwrap_or_else(|| panic!("no generated event like {name}"));
        assert_eq!(shape(generated), shape(&fixture), "{name}: envelope");
        assert_eq!(
            shape(&generated["detail"]),
            shape(&fixture["detail"]),
            "{name}: detail"
        );
        assert_eq!(
            shape(&generated["detail"]["metadata"]),
            shape(&fixture["detail"]["metadata"]),
            "{name}: metadata"
        );
        assert_eq!(
            shape(&generated["detail"]["eventBody"]),
            shape(&fixture["detail"]["eventBody"]),
            "{name}: eventBody"
        );
        let topic = generated["detail"]["topicName"]
            .as_str()
            .unwrap_or_default();
        let conv = generated["detail"]["eventBody"]["conversationId"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(
            topic,
            dt.replace("{id}", conv),
            "{name}: topicName carries the real id"
        );
        compared.insert(dt.to_string());
    }
    assert!(compared.len() >= 5, "compared topics: {compared:?}");
}

#[test]
fn the_same_seed_gives_the_same_traffic_and_another_seed_does_not() {
    let cfg = TrafficConfig {
        minutes: 3,
        ..TrafficConfig::default()
    };
    let a = traffic::generate(&cfg);
    let b = traffic::generate(&cfg);
    let c = traffic::generate(&TrafficConfig { seed: 2, ..cfg });
    let ids = |t: &traffic::Traffic| {
        t.events
            .iter()
            .map(|e| e.envelope.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&a), ids(&b));
    assert_eq!(a.truth, b.truth);
    assert_ne!(ids(&a), ids(&c));
}

#[test]
fn rate_mix_and_ground_truth_agree_with_the_events_themselves() {
    let cfg = TrafficConfig {
        sessions_per_minute: 60,
        minutes: 20,
        ..TrafficConfig::default()
    };
    let t = traffic::generate(&cfg);
    assert_eq!(t.conversations.len(), 1200);
    // A conversation through two bot flows is two bot sessions.
    let second_bots = t
        .conversations
        .iter()
        .filter(|c| c.first_bot.is_some())
        .count() as u64;
    assert!(second_bots > 0);
    assert_eq!(
        t.truth.bot_sessions + t.truth.non_bot_sessions,
        1200 + second_bots
    );
    for kind in SessionKind::ALL {
        assert!(
            t.conversations.iter().any(|c| c.is_bot && c.kind == kind),
            "{kind:?} present"
        );
    }
    assert!(
        t.events.windows(2).all(|w| w[0].at_ms <= w[1].at_ms),
        "sorted by delivery"
    );

    // Recount the KPIs from the envelopes alone, by the documented rules
    // (README, "KPI definitions"); they must equal the truth.
    let mut started = 0;
    let mut duration = 0u64;
    let mut outcomes = 0u64;
    // Per conversation: bot flow.ends (exit reason, transfer type, time) and queue entries.
    let mut ends: BTreeMap<&str, Vec<(String, String, i64)>> = BTreeMap::new();
    let mut queued: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for e in &t.events {
        let body = &e.envelope["detail"]["eventBody"];
        let bot = BOT_FLOW_TYPES.contains(&body["flowType"].as_str().unwrap_or_default());
        let time = body["eventTime"].as_i64().unwrap_or_default();
        match (
            e.detail_type.rsplit('.').nth(1),
            e.detail_type.rsplit('.').next(),
            bot,
        ) {
            (Some("flow"), Some("start"), true) => started += 1,
            (Some("flow"), Some("end"), true) => {
                let text = |k: &str| body[k].as_str().unwrap_or_default().to_string();
                ends.entry(e.conversation_id.as_str()).or_default().push((
                    text("exitReason"),
                    text("transferType"),
                    time,
                ));
                duration += body["connectedDurationMs"].as_u64().unwrap_or_default();
            }
            (Some("flow"), Some("outcome"), true) => outcomes += 1,
            (Some("acd"), Some("start"), _) => queued
                .entry(e.conversation_id.as_str())
                .or_default()
                .push(time),
            _ => {}
        }
    }
    let mut classes = BTreeMap::<&str, u64>::new();
    for (conversation, list) in &ends {
        for (reason, transfer, end) in list {
            let queue_after = queued
                .get(conversation)
                .is_some_and(|q| q.iter().any(|t| *t >= end - 5_000));
            let class = match (reason.as_str(), transfer.as_str()) {
                (_, "RETURN_TO_AGENT") | ("TRANSFER", "ACD" | "USER" | "GROUP") => "escalated",
                ("TRANSFER", _) => "other",
                ("FLOW_DISCONNECT", _) => "contained",
                (r, _) if r.ends_with("_EXIT") && queue_after => "escalated",
                ("USER_EXIT" | "FLOW_EXIT", _) => "contained",
                ("RECOGNITION_FAILURE_EXIT" | "RECOGNITION_FAILURE_DISCONNECT", _) => "recognition",
                ("FLOW_ERROR_EXIT" | "FLOW_ERROR_DISCONNECT", _) => "error",
                ("DISCONNECT" | "SESSION_EXPIRE_DISCONNECT", _) => "abandoned",
                _ => "unknown",
            };
            *classes.entry(class).or_default() += 1;
        }
    }
    let k = &t.truth.total;
    let class = |c: &str| classes.get(c).copied().unwrap_or(0);
    assert_eq!(started, k.sessions_started);
    assert_eq!(started, t.truth.bot_sessions);
    assert_eq!(classes.values().sum::<u64>(), k.sessions_ended);
    assert_eq!(class("contained"), k.contained);
    assert_eq!(class("escalated"), k.escalated);
    assert_eq!(class("abandoned"), k.abandoned);
    assert_eq!(class("recognition"), k.recognition_failures);
    assert_eq!(class("error"), k.errors);
    assert_eq!(class("other"), k.other_exits);
    assert_eq!(class("unknown"), k.unknown_outcomes);
    // Every path the definitions distinguish is exercised.
    assert!(
        ends.values().any(|l| l.len() == 2),
        "two bot flows in one conversation"
    );
    for reason in [
        "USER_EXIT",
        "FLOW_EXIT",
        "SESSION_EXPIRE_DISCONNECT",
        "UNKNOWN",
    ] {
        assert!(
            ends.values().flatten().any(|(r, _, _)| r == reason),
            "{reason} present"
        );
    }
    assert!(
        ends.values()
            .flatten()
            .any(|(_, t, _)| t == "RETURN_TO_AGENT")
    );
    assert!(
        t.events
            .iter()
            .filter_map(|e| e.envelope["detail"]["eventBody"]["messageType"].as_str())
            .all(|m| m == m.to_ascii_uppercase()),
        "messageType is upper case"
    );
    assert_eq!(duration, k.duration_ms_sum);
    assert_eq!(
        outcomes,
        k.outcomes
            .values()
            .map(|o| o.success + o.failure)
            .sum::<u64>()
    );
    let per_minute: u64 = t.truth.by_minute.values().map(|m| m.sessions_started).sum();
    assert_eq!(per_minute, k.sessions_started);
    let per_flow: u64 = t
        .truth
        .by_flow_minute
        .values()
        .flat_map(|m| m.values())
        .map(|m| m.sessions_ended)
        .sum();
    assert_eq!(per_flow, k.sessions_ended);
    assert_eq!(t.truth.events, t.events.len() as u64);
}

#[tokio::test]
async fn platform_api_serves_the_generated_conversations() {
    let t = traffic::generate(&TrafficConfig {
        minutes: 2,
        ..TrafficConfig::default()
    });
    let sim = frozen_sim(Policies::default()).await;
    sim.register_conversations(t.sim_conversations());
    // Sessions are listed once they have ended (and been ingested).
    let last_end = t.conversations.iter().map(|c| c.detail.end_ms).max();
    sim.clock().advance_to(last_end.expect("traffic") + 1);
    let token = new_token(&sim).await;
    let conv = t
        .conversations
        .iter()
        .find(|c| c.is_bot && c.kind == SessionKind::Escalated)
        .expect("an escalated bot session");

    let r = api_get(
        &sim,
        &token,
        &format!("/api/v2/analytics/conversations/{}/details", conv.id),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    let flow = v["participants"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["sessions"].as_array().into_iter().flatten())
        .find_map(|s| s.get("flow"))
        .expect("a flow session");
    assert_eq!(flow["exitReason"], "TRANSFER");
    assert_eq!(flow["flowId"], conv.detail.flow_id.as_str());
    assert_eq!(
        flow["transferType"].as_str(),
        conv.detail.transfer_type.as_deref()
    );

    let mut found = None;
    let mut path = format!(
        "/api/v2/analytics/botflows/{}/sessions?pageSize=50",
        conv.detail.flow_id
    );
    while found.is_none() {
        let v: Value = api_get(&sim, &token, &path)
            .await
            .json()
            .await
            .expect("json");
        found = v["entities"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["conversation"]["id"] == conv.id.as_str())
            .cloned();
        match v["nextUri"].as_str() {
            Some(next) => path = next.to_string(),
            None => break,
        }
    }
    let session = found.expect("the bot session is listed");
    assert_eq!(session["botResult"], "TransferToACD");
    assert_eq!(session["botResultCategory"], "Transfer");
    assert!(session.get("intents").is_none(), "no invented field");
    let bot = conv.detail.bot.as_ref().expect("bot");
    assert_eq!(session["id"], bot.id.as_str());
    let turns: Value = api_get(
        &sim,
        &token,
        &format!(
            "/api/v2/analytics/botflows/{}/divisions/reportingturns?sessionId={}&pageSize=250",
            conv.detail.flow_id, bot.id
        ),
    )
    .await
    .json()
    .await
    .expect("json");
    let turns = turns["entities"].as_array().expect("entities");
    assert_eq!(turns.len(), bot.turns.len());
    assert_eq!(
        turns.last().and_then(|t| t["intent"]["name"].as_str()),
        bot.final_intent()
    );

    let r = api_get(&sim, &token, &format!("/api/v2/conversations/{}", conv.id)).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["id"], conv.id.as_str());
    assert_eq!(
        api_get(&sim, &token, "/api/v2/conversations/nope")
            .await
            .status(),
        404
    );
}
