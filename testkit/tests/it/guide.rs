//! The deploy guide's "Check it works" (infra/README.md, section 3), run as
//! written as far as a test can without Lambda: the refresher invoke's
//! payload parses as the function's event, its `--function-name` comes
//! from an output the stack has, and the tick the function runs answers
//! what the guide says it prints (`"outcome": "refreshed"` first, then
//! `"skipped"`), against moto and the simulator as the refresher's role.

use testkit::aws::TestResources;
use testkit::sim::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SimConfig, Simulator};

/// The section of the guide, and the text quoted after `after` up to the
/// next `'`.
fn quoted(after: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/README.md");
    let guide = std::fs::read_to_string(path).expect("infra/README.md");
    let section = guide
        .split("## 3. Check it works")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .unwrap_or_default()
        .to_string();
    section
        .split(after)
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn the_guides_refresher_invoke_answers_as_the_guide_says() {
    let payload = quoted("--payload '");
    let parsed: Result<aws_lambda_events::eventbridge::EventBridgeEvent<serde_json::Value>, _> =
        serde_json::from_str(&payload);
    assert!(parsed.is_ok(), "the refresher parses {payload}: {parsed:?}");
    let output = quoted("OutputKey=='");
    let template = crate::template::template();
    assert!(
        !template["Outputs"][output.as_str()].is_null(),
        "{output} is an output"
    );

    let res = TestResources::create(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        .await
        .expect("moto");
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    let broker = testkit::product::broker(&res, &sim, token_broker::BrokerConfig::default());
    let first = serde_json::to_string(&broker.tick().await).expect("report");
    assert!(first.contains(r#""outcome":"refreshed""#), "{first}");
    let second = serde_json::to_string(&broker.tick().await).expect("report");
    assert!(second.contains(r#""outcome":"skipped""#), "{second}");
    res.delete().await.expect("cleanup");
}
