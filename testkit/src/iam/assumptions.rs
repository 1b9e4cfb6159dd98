//! What the double assumes where no AWS text says, each with a switch: an
//! environment variable read once per process ("1", the default, is the
//! assumption; "0" the alternative).

use std::sync::OnceLock;

/// The double's assumptions.
#[derive(Debug, Clone, Copy)]
pub struct Assumptions {
    /// `VA_IAM_ASSUME_ROLE_NEEDS_BOTH`: an `AssumeRole` (and its
    /// `TagSession`) needs both the caller's identity policy and the role's
    /// trust policy. AWS may accept the trust policy alone within one
    /// account, so this is the stricter reading.
    pub assume_role_needs_both: bool,
    /// `VA_IAM_KMS_SEES_SOURCE_ARN`: when SQS calls KMS for a message an
    /// AWS service (EventBridge) sends, the key policy sees the service's
    /// `aws:SourceArn` (the rule) and `aws:SourceAccount`.
    pub kms_sees_source_arn: bool,
    /// `VA_IAM_GETITEM_PRESENTS_SELECT`: `GetItem`, which has no `Select`
    /// parameter, presents `dynamodb:Select` as `Query` does:
    /// `SPECIFIC_ATTRIBUTES` with a projection, `ALL_ATTRIBUTES` without.
    pub getitem_presents_select: bool,
}

fn switch(name: &str) -> bool {
    std::env::var(name).map_or(true, |v| v.trim() != "0")
}

/// The assumptions in force for this process.
pub fn assumptions() -> Assumptions {
    static ONCE: OnceLock<Assumptions> = OnceLock::new();
    *ONCE.get_or_init(|| Assumptions {
        assume_role_needs_both: switch("VA_IAM_ASSUME_ROLE_NEEDS_BOTH"),
        kms_sees_source_arn: switch("VA_IAM_KMS_SEES_SOURCE_ARN"),
        getitem_presents_select: switch("VA_IAM_GETITEM_PRESENTS_SELECT"),
    })
}
