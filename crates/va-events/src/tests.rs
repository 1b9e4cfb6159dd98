//! Parsing whole envelopes: typed bodies, unknown topics, rejections.

use super::*;
use serde_json::{Value, json};

fn envelope(topic: &str, body: Value) -> Value {
    json!({
        "version": "0",
        "id": "e-1",
        "detail-type": format!("v2.detail.events.conversation.{{id}}.{topic}"),
        "source": "aws.partner/genesys.com/cloud/org/suffix",
        "account": "123456789012",
        "time": "2026-11-20T15:02:30Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "topicName": format!("v2.detail.events.conversation.c-1.{topic}"),
            "version": "2",
            "eventBody": body,
        }
    })
}

#[test]
fn a_flow_end_parses_into_its_typed_body() {
    let e = parse(&envelope(
        "flow.end",
        json!({"eventTime": 1_795_186_950_107_i64, "conversationId": "5e0b8a3c-9f12-4c67-8d21-3a4b5c6d7e8f", "flowType": "BOT",
               "flowId": "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c", "exitReason": "TRANSFER", "transferType": "ACD",
               "connectedDurationMs": 5_000, "ani": "tel:+15550100"}),
    ))
    .expect("valid");
    let Event::Conversation {
        topic: Topic::FlowEnd,
        body: Body::Flow(b),
        ..
    } = e
    else {
        panic!("not a flow.end: {e:?}");
    };
    assert_eq!(b.flow_id, "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c");
    assert_eq!(b.connected_duration_ms, Some(5_000));
    assert_eq!(b.transfer_type.as_deref(), Some("ACD"));
}

#[test]
fn a_resend_with_a_new_id_has_the_same_content_key() {
    let body = json!({"eventTime": 1_795_186_950_107_i64, "conversationId": "5e0b8a3c-9f12-4c67-8d21-3a4b5c6d7e8f", "participantId": "a9d8c7b6-1111-4222-8333-444455556666",
                      "flowType": "BOT", "flowId": "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c"});
    let first = parse(&envelope("flow.end", body.clone())).expect("valid");
    let mut again = envelope("flow.end", body);
    again["id"] = json!("e-2");
    let again = parse(&again).expect("valid");
    assert_ne!(first.id(), again.id());
    assert_eq!(first.content_key(), again.content_key());
    let start = parse(&envelope(
        "flow.start",
        json!({"eventTime": 1_795_186_950_107_i64, "conversationId": "5e0b8a3c-9f12-4c67-8d21-3a4b5c6d7e8f", "participantId": "a9d8c7b6-1111-4222-8333-444455556666",
               "flowType": "BOT", "flowId": "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c"}),
    ))
    .expect("valid");
    assert_ne!(first.content_key(), start.content_key(), "the topic counts");
}

#[test]
fn other_topics_are_unknown_not_errors() {
    let mut v = envelope("flow.end", json!({}));
    v["detail"]["topicName"] = json!("v2.users.u-1.presence");
    v["detail-type"] = json!("v2.users.{id}.presence");
    assert!(matches!(parse(&v), Ok(Event::Unknown { .. })));
    let v = envelope("wrapup", json!({"eventTime": 1_795_186_950_107_i64}));
    assert!(matches!(parse(&v), Ok(Event::Unknown { .. })));
}

#[test]
fn rejections_name_the_field_and_never_the_value() {
    let v = envelope(
        "flow.end",
        json!({"eventTime": "tel:+15550100", "conversationId": "5e0b8a3c-9f12-4c67-8d21-3a4b5c6d7e8f",
               "flowType": "BOT", "flowId": "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c"}),
    );
    let r = parse(&v).expect_err("wrong type");
    assert_eq!(r.field, "detail.eventBody.eventTime");
    assert!(!r.to_string().contains("15550100"), "{r}");
    let v = envelope(
        "flow.end",
        json!({"eventTime": 1_795_186_950_107_i64, "conversationId": "5e0b8a3c-9f12-4c67-8d21-3a4b5c6d7e8f", "flowType": "BOT"}),
    );
    assert_eq!(
        parse(&v).expect_err("missing").field,
        "detail.eventBody.flowId"
    );
    for (body, field) in [
        (
            json!({"eventTime": 0, "conversationId": "5e0b8a3c-9f12-4c67-8d21-3a4b5c6d7e8f", "flowType": "BOT", "flowId": "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c"}),
            "detail.eventBody.eventTime",
        ),
        (
            json!({"eventTime": i64::MAX, "conversationId": "5e0b8a3c-9f12-4c67-8d21-3a4b5c6d7e8f", "flowType": "BOT", "flowId": "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c",
                   "connectedDurationMs": 60_000}),
            "detail.eventBody.eventTime",
        ),
        (
            json!({"eventTime": 1_795_186_950_107_i64, "conversationId": "5e0b8a3c-9f12-4c67-8d21-3a4b5c6d7e8f", "flowType": "BOT",
                   "flowId": "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c", "connectedDurationMs": i64::MAX}),
            "detail.eventBody.connectedDurationMs",
        ),
        (
            json!({"eventTime": 1_795_186_950_107_i64, "conversationId": "../../tokens/me?x=", "flowType": "BOT", "flowId": "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c"}),
            "detail.eventBody.conversationId",
        ),
        (
            json!({"eventTime": 1_795_186_950_107_i64, "conversationId": "5e0b8a3c-9f12-4c67-8d21-3a4b5c6d7e8f", "flowType": "BOT", "flowId": "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c", "connectedDurationMs": -1}),
            "detail.eventBody.connectedDurationMs",
        ),
    ] {
        assert_eq!(
            parse(&envelope("flow.end", body)).expect_err(field).field,
            field
        );
    }
    assert_eq!(parse_slice(b"{not json").expect_err("json").field, ".");
    let long = "x".repeat(MAX_EVENT_ID_BYTES + 1);
    assert_eq!(parse(&json!({"id": long})).expect_err("id").field, "id");
    assert_eq!(parse(&json!({"id": ""})).expect_err("id").field, "id");
}

#[test]
fn the_org_comes_from_the_partner_source() {
    let org = "3f0c1a2b-4d5e-4f60-8a7b-9c0d1e2f3a4b";
    let mut v = envelope("user.end", json!({}));
    v["source"] = json!(format!("aws.partner/genesys.com/cloud/{org}/va-analytics"));
    assert_eq!(org_of(&v).expect("org"), org);
    v["source"] = json!(format!(
        "aws.partner/genesys.com/cloud/{}/va-analytics",
        org.to_uppercase()
    ));
    assert_eq!(org_of(&v).expect("org"), org, "one form: lowercase");
    for bad in [
        json!("aws.partner/genesys.com/cloud/org/suffix"),
        json!(format!("aws.partner/genesys.com/cloud/{org}/")),
        json!(format!("aws.partner/genesys.com/cloud/{org}")),
        json!(format!("aws.partner/other.com/cloud/{org}/x")),
        json!(format!("custom.{org}")),
        json!(7),
    ] {
        v["source"] = bad.clone();
        let e = org_of(&v).expect_err("rejected");
        assert_eq!(e.field, "source", "{bad}");
    }
    v.as_object_mut().expect("object").remove("source");
    assert_eq!(org_of(&v).expect_err("missing").problem, "is missing");
}

#[test]
fn ids_must_be_uuids_and_names_short() {
    let ok = json!({"eventTime": 1_795_186_950_107_i64, "conversationId": "5e0b8a3c-9f12-4c67-8d21-3a4b5c6d7e8f", "flowType": "BOT", "flowId": "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c"});
    assert!(parse(&envelope("flow.end", ok.clone())).is_ok());
    for (field, bad) in [
        ("flowId", json!("../../tokens/me?x=")),
        (
            "flowId",
            json!("c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c".to_uppercase() + "0"),
        ),
        ("flowId", json!("c2a1f0e47b3d4e59a8c61d2e3f4a5b6c")),
        ("conversationId", json!("x".repeat(4096))),
        ("participantId", json!("p-1")),
        (
            "divisionId",
            json!("{c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c}"),
        ),
        ("exitReason", json!("r".repeat(MAX_NAME_BYTES + 1))),
    ] {
        let mut body = ok.clone();
        body[field] = bad;
        let r = parse(&envelope("flow.end", body)).expect_err(field);
        assert_eq!(r.field, format!("detail.eventBody.{field}"));
    }
    assert!(is_uuid("c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c"));
    assert!(is_uuid(
        &"c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c".to_uppercase()
    ));
}

#[test]
fn event_times_outside_the_remembered_window_are_rejected() {
    let e = parse(&envelope(
        "flow.start",
        json!({"eventTime": 1_795_186_950_107_i64, "conversationId": "5e0b8a3c-9f12-4c67-8d21-3a4b5c6d7e8f", "flowType": "BOT", "flowId": "c2a1f0e4-7b3d-4e59-a8c6-1d2e3f4a5b6c"}),
    ))
    .expect("valid");
    let t = 1_795_186_950_107_i64;
    let day = 86_400_000;
    assert!(check_event_time(&e, t, 16 * day).is_ok());
    assert!(check_event_time(&e, t - MAX_CLOCK_SKEW_MS, 16 * day).is_ok());
    assert!(check_event_time(&e, t - MAX_CLOCK_SKEW_MS - 1, 16 * day).is_err());
    assert!(check_event_time(&e, t + 16 * day, 16 * day).is_ok());
    assert!(check_event_time(&e, t + 16 * day + 1, 16 * day).is_err());
    assert!(check_event_time(&e, i64::MIN, i64::MAX).is_err());
    assert!(check_event_time(&e, i64::MAX, i64::MAX).is_ok());
}
