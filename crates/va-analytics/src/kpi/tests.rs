//! Planning events in every order: starts, ends, outcomes, queues and
//! enrichment.

use std::collections::BTreeMap;

use va_events::{Body, Event, FlowBody, FlowOutcomeBody, Topic};

use super::*;

fn flow(topic: Topic, flow_type: &str, body: impl FnOnce(&mut FlowBody)) -> Event {
    let mut b = FlowBody {
        event_time: 1_795_186_950_107,
        conversation_id: "c-1".into(),
        participant_id: None,
        session_id: None,
        media_type: None,
        flow_type: flow_type.into(),
        flow_id: "f-1".into(),
        flow_version: None,
        division_id: None,
        disconnect_type: None,
        connected_duration_ms: None,
        exit_reason: None,
        transfer_type: None,
    };
    body(&mut b);
    Event::Conversation {
        id: "e-1".into(),
        topic,
        conversation_id: "c-1".into(),
        body: Body::Flow(b),
    }
}

fn counter(p: &Plan, scope: &Scope, minute: i64, name: &str) -> i64 {
    p.buckets
        .get(&(scope.clone(), minute))
        .and_then(|c| c.get(name))
        .copied()
        .unwrap_or(0)
}

#[test]
fn a_bot_start_counts_in_the_org_and_flow_buckets() {
    let p = plan(
        &flow(Topic::FlowStart, "DIGITALBOT", |_| {}),
        &KpiConfig::default(),
        None,
    );
    let m = minute_of(1_795_186_950_107);
    assert_eq!(counter(&p, &Scope::Org, m, attr::STARTED), 1);
    assert_eq!(counter(&p, &Scope::Flow("f-1".into()), m, attr::STARTED), 1);
    assert!(!p.is_noop());
    let ivr = plan(
        &flow(Topic::FlowStart, "INBOUNDCALL", |_| {}),
        &KpiConfig::default(),
        None,
    );
    assert_eq!(counter(&ivr, &Scope::Org, m, attr::STARTED), 0, "not a bot");
    assert!(ivr.is_noop(), "changes nothing: no marker, no write");
}

#[test]
fn an_end_adds_duration_and_active_minutes_and_waits_for_its_intent() {
    let e = flow(Topic::FlowEnd, "BOT", |b| {
        b.connected_duration_ms = Some(150_000);
        b.exit_reason = Some("TRANSFER".into());
        b.transfer_type = Some("ACD".into());
        b.participant_id = Some("p-1".into());
    });
    let p = plan(&e, &KpiConfig::default(), None);
    let end = minute_of(1_795_186_950_107);
    let org = |m, n| counter(&p, &Scope::Org, m, n);
    assert_eq!(org(end, attr::ENDED), 1);
    assert_eq!(org(end, attr::ESCALATED), 1);
    assert_eq!(org(end, attr::DURATION_MS_SUM), 150_000);
    assert_eq!(org(end, "d_le_180"), 1);
    // 15:00:00.107 to 15:02:30.107 spans minutes 15:00, 15:01, 15:02:
    // one counter in the end minute, read back as 3 active minutes.
    assert_eq!(org(end, "span_3"), 1);
    assert_eq!(p.buckets.len(), 2, "one org and one flow bucket");
    let ended: BTreeMap<i64, BTreeMap<String, i64>> = p
        .buckets
        .iter()
        .filter(|((s, _), _)| *s == Scope::Org)
        .map(|((_, m), c)| (*m, c.clone()))
        .collect();
    let active = active_from_spans(&ended);
    assert_eq!(
        active.into_iter().collect::<Vec<_>>(),
        vec![(end - 120_000, 1), (end - 60_000, 1), (end, 1)]
    );
    assert_eq!(p.state, None, "a transfer needs no correlation");
    let pending = p.pending.expect("enrichment comes later");
    assert_eq!(pending.session_key, "f-1#p-1#1795186950107");
    let found = Enrichment {
        final_intent: Some("Billing".into()),
        bot_result: Some("TransferToACD".into()),
    };
    let later = plan_enrichment(&pending, Some(&found), None);
    assert_eq!(counter(&later, &Scope::Org, end, "i#Billing"), 1);
    assert_eq!(
        counter(&later, &Scope::Flow("f-1".into()), end, "i#Billing"),
        1
    );
    let gave_up = plan_enrichment(&pending, None, None);
    assert_eq!(counter(&gave_up, &Scope::Org, end, attr::INTENT_UNKNOWN), 1);
    assert_ne!(later.marker, p.marker);
}

/// Totals of every counter over the plans of `events` applied in order,
/// each planned with the state the previous ones left.
fn totals(events: &[&Event]) -> BTreeMap<(Scope, i64, String), i64> {
    let mut state: Option<ConversationState> = None;
    let mut out = BTreeMap::new();
    for e in events {
        let p = plan(e, &KpiConfig::default(), state.as_ref());
        if p.state.is_some() {
            state = p.state.clone();
        }
        for ((scope, m), counters) in p.buckets {
            for (name, n) in counters {
                {
                    let e: &mut i64 = out.entry((scope.clone(), m, name)).or_default();
                    *e = e.saturating_add(n);
                }
            }
        }
    }
    out.retain(|_, v| *v != 0);
    out
}

fn acd(at: i64) -> Event {
    Event::Conversation {
        id: format!("acd-{at}"),
        topic: Topic::AcdStart,
        conversation_id: "c-1".into(),
        body: Body::Participant(va_events::ParticipantBody {
            event_time: at,
            conversation_id: "c-1".into(),
            participant_id: Some("q-1".into()),
            session_id: None,
            media_type: None,
            queue_id: Some("queue".into()),
            user_id: None,
            disconnect_type: None,
            connected_duration_ms: None,
        }),
    }
}

#[test]
fn a_hand_back_followed_by_a_queue_is_escalated_in_either_order() {
    let end = 1_795_186_950_107;
    let exit = flow(Topic::FlowEnd, "BOT", |b| {
        b.exit_reason = Some("USER_EXIT".into());
        b.participant_id = Some("p-1".into());
    });
    let queue = acd(end + 300);
    let a = totals(&[&exit, &queue]);
    let b = totals(&[&queue, &exit]);
    assert_eq!(a, b);
    let m = minute_of(end);
    assert_eq!(
        a.get(&(Scope::Org, m, attr::ESCALATED.to_string())),
        Some(&1)
    );
    assert_eq!(a.get(&(Scope::Org, m, attr::CONTAINED.to_string())), None);
    // A queue long before the bot ended does not escalate it.
    let early = acd(end - 600_000);
    let c = totals(&[&early, &exit]);
    assert_eq!(
        c.get(&(Scope::Org, m, attr::CONTAINED.to_string())),
        Some(&1)
    );
    assert_eq!(c, totals(&[&exit, &early]));
}

#[test]
fn a_transfer_bot_result_escalates_a_hand_back_once() {
    let exit = flow(Topic::FlowEnd, "BOT", |b| {
        b.exit_reason = Some("FLOW_EXIT".into());
        b.participant_id = Some("p-1".into());
    });
    let p = plan(&exit, &KpiConfig::default(), None);
    let pending = p.pending.clone().expect("pending");
    let state = p.state.clone().expect("state");
    let found = Enrichment {
        final_intent: None,
        bot_result: Some("TransferToACD".into()),
    };
    let e = plan_enrichment(&pending, Some(&found), Some(&state));
    let m = minute_of(1_795_186_950_107);
    assert_eq!(counter(&e, &Scope::Org, m, attr::CONTAINED), -1);
    assert_eq!(counter(&e, &Scope::Org, m, attr::ESCALATED), 1);
    // A queue after that changes nothing more.
    let after = plan(
        &acd(1_795_186_951_000),
        &KpiConfig::default(),
        e.state.as_ref(),
    );
    assert_eq!(counter(&after, &Scope::Org, m, attr::ESCALATED), 0);
}

#[test]
fn outcomes_count_success_and_failure_per_outcome_id() {
    let e = Event::Conversation {
        id: "e-2".into(),
        topic: Topic::FlowOutcome,
        conversation_id: "c-1".into(),
        body: Body::FlowOutcome(FlowOutcomeBody {
            event_time: 60_000,
            conversation_id: "c-1".into(),
            flow_type: "BOT".into(),
            flow_id: "f-1".into(),
            flow_outcome_id: "o-1".into(),
            flow_outcome_value: "SUCCESS".into(),
            flow_outcome_start_time: None,
            flow_outcome_end_time: None,
        }),
    };
    let p = plan(&e, &KpiConfig::default(), None);
    assert_eq!(counter(&p, &Scope::Org, 60_000, "o#o-1#success"), 1);
}
