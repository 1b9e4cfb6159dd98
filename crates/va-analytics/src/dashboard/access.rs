//! Which org a viewer may read. In a multi-org deployment a viewer's Cognito
//! groups name their orgs (`org-<orgId>`, one group per org), or grant every
//! registered org (`orgs-all`, the vendor's staff); a request for any other
//! org is refused before a key is built, so the store is never asked for
//! another tenant's items. Either way each org is read with credentials
//! that can read only that org ([`TaggedReaders`]).

/// Prefix of the Cognito groups that grant an org.
pub const ORG_GROUP_PREFIX: &str = "org-";

/// The Cognito group that grants every registered org: for the vendor's
/// staff, so they need no group per org. Only the user pool's
/// administrators can put a user in it.
pub const ALL_ORGS_GROUP: &str = "orgs-all";

/// Whether `groups` grant every registered org.
pub fn grants_all(groups: &[String]) -> bool {
    groups.iter().any(|g| g == ALL_ORGS_GROUP)
}

/// The orgs `groups` grant, lowercased, sorted, without duplicates.
pub fn orgs_of(groups: &[String]) -> Vec<String> {
    let mut orgs: Vec<String> = groups
        .iter()
        .filter_map(|g| g.strip_prefix(ORG_GROUP_PREFIX))
        .filter(|o| va_events::is_uuid(o))
        .map(str::to_ascii_lowercase)
        .collect();
    orgs.sort();
    orgs.dedup();
    orgs
}

/// Why a viewer gets no org.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `org` is not an org id.
    Invalid,
    /// The viewer's groups do not grant that org (or any org).
    Forbidden,
    /// The viewer may see several orgs and named none.
    Required,
}

impl Refusal {
    /// HTTP status, stable code and a fixed sentence.
    pub fn answer(self) -> (u16, &'static str, &'static str) {
        match self {
            Refusal::Invalid => (400, "org_invalid", "`org` must be an org id"),
            Refusal::Forbidden => (403, "org_forbidden", "your sign-in does not grant this org"),
            Refusal::Required => (400, "org_required", "name the org to show (`org`)"),
        }
    }
}

/// The org a viewer with `groups` reads when asking for `requested`: the
/// one named, if their groups grant it; their only org, if they named none.
/// With [`ALL_ORGS_GROUP`], any org id (whether it is registered is the
/// registry's answer), and one must be named.
pub fn org_for(groups: &[String], requested: Option<&str>) -> Result<String, Refusal> {
    let allowed = orgs_of(groups);
    match requested.filter(|r| !r.is_empty()) {
        Some(r) if !va_events::is_uuid(r) => Err(Refusal::Invalid),
        Some(r) => {
            let r = r.to_ascii_lowercase();
            if grants_all(groups) || allowed.contains(&r) {
                Ok(r)
            } else {
                Err(Refusal::Forbidden)
            }
        }
        None if grants_all(groups) => Err(Refusal::Required),
        None => match allowed.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(Refusal::Forbidden),
            _ => Err(Refusal::Required),
        },
    }
}

/// The environment variable naming the role [`TaggedReaders`] assume.
pub const ORG_READER_ROLE_ARN: &str = "ORG_READER_ROLE_ARN";

/// Per-org readers of the analytics table whose credentials can read only
/// that org's buckets: an assumed role with the session tag `org=<orgId>`,
/// whose policy allows `dynamodb:Query` only with `dynamodb:LeadingKeys`
/// `org#${aws:PrincipalTag/org}#agg#*`. So IAM, not only this function,
/// keeps a request for one org away from another's items. One reader per
/// org and container; the SDK's identity cache renews its credentials.
pub struct TaggedReaders {
    role_arn: String,
    sdk: aws_config::SdkConfig,
    table: String,
    readers: tokio::sync::Mutex<std::collections::HashMap<String, crate::AnalyticsStore>>,
}

impl TaggedReaders {
    /// Readers of `table` through `role_arn`, assumed with `sdk`'s credentials.
    pub fn new(
        sdk: aws_config::SdkConfig,
        role_arn: impl Into<String>,
        table: impl Into<String>,
    ) -> Self {
        Self {
            role_arn: role_arn.into(),
            sdk,
            table: table.into(),
            readers: tokio::sync::Mutex::default(),
        }
    }

    /// The org's store, read with that org's tagged session.
    pub async fn store(&self, org_id: &str) -> crate::AnalyticsStore {
        let mut readers = self.readers.lock().await;
        if let Some(s) = readers.get(org_id) {
            return s.clone();
        }
        let provider = aws_config::sts::AssumeRoleProvider::builder(&self.role_arn)
            .session_name("dashboard-org-reader")
            .tags([("org", org_id)])
            .configure(&self.sdk)
            .build()
            .await;
        let conf = aws_sdk_dynamodb::config::Builder::from(&self.sdk)
            .credentials_provider(provider)
            .build();
        let store =
            crate::AnalyticsStore::new(aws_sdk_dynamodb::Client::from_conf(conf), &self.table)
                .for_org(org_id);
        if readers.len() >= 10_000 {
            readers.clear();
        }
        readers.insert(org_id.to_string(), store.clone());
        store
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0a000000-0000-4000-8000-00000000000a";
    const B: &str = "0b000000-0000-4000-8000-00000000000b";

    fn groups(g: &[&str]) -> Vec<String> {
        g.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_viewer_reads_only_the_orgs_their_groups_grant() {
        let a_only = groups(&[&format!("org-{A}"), "viewers"]);
        assert_eq!(org_for(&a_only, None), Ok(A.to_string()));
        assert_eq!(org_for(&a_only, Some(A)), Ok(A.to_string()));
        assert_eq!(org_for(&a_only, Some(&A.to_uppercase())), Ok(A.to_string()));
        assert_eq!(org_for(&a_only, Some(B)), Err(Refusal::Forbidden));
        assert_eq!(org_for(&a_only, Some("../agg")), Err(Refusal::Invalid));
        let both = groups(&[&format!("org-{B}"), &format!("org-{A}")]);
        assert_eq!(org_for(&both, None), Err(Refusal::Required));
        assert_eq!(org_for(&both, Some(B)), Ok(B.to_string()));
        assert_eq!(orgs_of(&both), vec![A.to_string(), B.to_string()]);
        // No grant, or a look-alike group: nothing.
        for g in [
            groups(&[]),
            groups(&["viewers"]),
            groups(&[&format!("xorg-{A}")]),
            groups(&["org-*"]),
            groups(&[&format!("org-{A}x")]),
        ] {
            assert_eq!(org_for(&g, Some(A)), Err(Refusal::Forbidden), "{g:?}");
            assert_eq!(org_for(&g, None), Err(Refusal::Forbidden), "{g:?}");
        }
    }

    #[test]
    fn the_vendor_group_grants_any_named_org_and_look_alikes_grant_none() {
        let staff = groups(&["orgs-all"]);
        assert_eq!(org_for(&staff, Some(A)), Ok(A.to_string()));
        assert_eq!(org_for(&staff, Some(B)), Ok(B.to_string()));
        assert_eq!(org_for(&staff, None), Err(Refusal::Required));
        assert_eq!(org_for(&staff, Some("../agg")), Err(Refusal::Invalid));
        for g in [
            groups(&["orgs-all-x"]),
            groups(&["Orgs-All"]),
            groups(&["org-all"]),
            groups(&[&format!("org-{A}"), "orgs-al"]),
        ] {
            assert!(!grants_all(&g), "{g:?}");
            assert_eq!(org_for(&g, Some(B)), Err(Refusal::Forbidden), "{g:?}");
        }
    }
}
