//! `va-admin org onboard`: the AWS-side steps of a new org in one command.
//! It stores (or checks) the org's OAuth client where the functions may read
//! it, finds its partner event source, and prints what is left to do by
//! hand: the Genesys-side steps if the source is not there yet, and the org
//! stack's deploy command. Registering and checking the org is `org add`'s
//! own code, which `onboard` runs next.

use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata};

/// Where an org's OAuth client lives: `<stack>/org/<orgId>`, the only
/// secrets the template lets the functions read.
pub fn secret_name(stack: &str, org_id: &str) -> String {
    format!("{stack}/org/{org_id}")
}

/// What happened to the org's secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretAction {
    /// Made now.
    Created,
    /// It existed; the new client was stored as its current value.
    Updated,
    /// It existed and holds a client (nothing was given to store).
    Checked,
}

/// An OAuth client to store. `Debug` never shows the secret.
pub struct OAuthClient {
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: String,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

impl OAuthClient {
    fn json(&self) -> String {
        serde_json::json!({"clientId": self.client_id, "clientSecret": self.client_secret})
            .to_string()
    }
}

/// Stores `client` at `name` (creating the secret, with `kms_key_id` if
/// given, or putting a new value), or with no client checks that the secret
/// exists and holds one. Returns its ARN. Errors never carry the secret.
pub async fn ensure_secret(
    sm: &aws_sdk_secretsmanager::Client,
    name: &str,
    client: Option<&OAuthClient>,
    kms_key_id: Option<&str>,
) -> Result<(String, SecretAction), String> {
    let Some(client) = client else {
        return check_secret(sm, name).await;
    };
    let created = sm
        .create_secret()
        .name(name)
        .secret_string(client.json())
        .set_kms_key_id(kms_key_id.map(str::to_string))
        .send()
        .await;
    match created {
        Ok(out) => Ok((
            out.arn().unwrap_or_default().to_string(),
            SecretAction::Created,
        )),
        Err(e) if e.code() == Some("ResourceExistsException") => {
            let out = sm
                .put_secret_value()
                .secret_id(name)
                .secret_string(client.json())
                .send()
                .await
                .map_err(|e| format!("secret {name}: {}", DisplayErrorContext(e)))?;
            Ok((
                out.arn().unwrap_or_default().to_string(),
                SecretAction::Updated,
            ))
        }
        Err(e) => Err(format!("secret {name}: {}", DisplayErrorContext(e))),
    }
}

/// The ARN of the secret at `name`, if it holds an OAuth client.
async fn check_secret(
    sm: &aws_sdk_secretsmanager::Client,
    name: &str,
) -> Result<(String, SecretAction), String> {
    let got = sm
        .get_secret_value()
        .secret_id(name)
        .send()
        .await
        .map_err(|e| format!("secret {name}: {}", DisplayErrorContext(e)))?;
    let holds_client = got
        .secret_string()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .is_some_and(|v| {
            ["clientId", "clientSecret"].iter().all(|k| {
                v.get(k)
                    .and_then(|x| x.as_str())
                    .is_some_and(|x| !x.is_empty())
            })
        });
    if !holds_client {
        return Err(format!(
            "secret {name} does not hold {{\"clientId\",\"clientSecret\"}}; give --client-id and the secret on stdin"
        ));
    }
    Ok((
        got.arn().unwrap_or_default().to_string(),
        SecretAction::Checked,
    ))
}

/// The org's partner event source, if it is associated (a bus of this
/// account whose name starts `aws.partner/genesys.com/cloud/<orgId>/`).
pub async fn partner_source(
    events: &aws_sdk_eventbridge::Client,
    org_id: &str,
) -> Result<Option<String>, String> {
    let buses = events
        .list_event_buses()
        .name_prefix(format!("aws.partner/genesys.com/cloud/{org_id}/"))
        .send()
        .await
        .map_err(|e| {
            format!(
                "EventBridge ListEventBuses failed: {}",
                aws_sdk_eventbridge::error::DisplayErrorContext(e)
            )
        })?;
    Ok(buses
        .event_buses()
        .iter()
        .find_map(|b| b.name().map(str::to_string)))
}

/// The org's `OrgKey`: the first block of its id (unique enough within one
/// deployment, and within the key's 15 characters).
pub fn org_key(org_id: &str) -> String {
    org_id.split('-').next().unwrap_or(org_id).to_string()
}

/// What is left to do by hand, as text: the Genesys-side steps while the
/// source is missing, then the org stack and the viewers' group.
pub fn next_steps(stack: &str, org_id: &str, source: Option<&str>, region: &str) -> String {
    let mut out = String::new();
    let source_name = match source {
        Some(s) => s.to_string(),
        None => {
            out.push_str(&format!(
                "The org's partner event source is not associated yet. In Genesys Cloud (org {org_id}):\n\
                 \x20 Admin > Integrations > Amazon EventBridge Source: this AWS account id, AWS region {region},\n\
                 \x20 an event source suffix (e.g. va-analytics) and the topics of infra/README.md step 3.\n\
                 Then associate the source in this account and region:\n\
                 \x20 aws events create-event-bus --name aws.partner/genesys.com/cloud/{org_id}/<suffix> --event-source-name aws.partner/genesys.com/cloud/{org_id}/<suffix>\n\n"
            ));
            format!("aws.partner/genesys.com/cloud/{org_id}/<suffix>")
        }
    };
    out.push_str(&format!(
        "Wire its bus (one stack per org):\n\
         \x20 aws cloudformation deploy --template-file infra/org.yaml --stack-name {stack}-org-{key} \
         --parameter-overrides MainStackName={stack} OrgEventSourceName={source_name} OrgKey={key}\n\
         \x20 (add AlarmTopicArn=<the main stack's alarm topic> so the org stack's alarms reach someone)\n\
         Give its viewers the group org-{org_id}:\n\
         \x20 aws cognito-idp create-group --user-pool-id <DashboardUserPoolId> --group-name org-{org_id}\n\
         Events that arrived before the org was enabled wait in the dead-letter queue: run va-admin redrive.\n",
        key = org_key(org_id),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_steps_name_the_org_stack_and_ask_for_the_source_only_while_it_is_missing() {
        let org = "7f3c1a52-0d4e-4f1b-9a63-2b8e5c9d0a11";
        let missing = next_steps("va", org, None, "eu-west-1");
        assert!(missing.contains("Amazon EventBridge Source"), "{missing}");
        assert!(
            missing.contains("--stack-name va-org-7f3c1a52"),
            "{missing}"
        );
        let found = next_steps(
            "va",
            org,
            Some("aws.partner/genesys.com/cloud/x/y"),
            "eu-west-1",
        );
        assert!(!found.contains("Amazon EventBridge Source"), "{found}");
        assert!(
            found.contains("OrgEventSourceName=aws.partner/genesys.com/cloud/x/y OrgKey=7f3c1a52"),
            "{found}"
        );
    }

    #[test]
    fn a_client_never_shows_its_secret() {
        let c = OAuthClient {
            client_id: "id".into(),
            client_secret: "s3cr3t".into(),
        };
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }
}
