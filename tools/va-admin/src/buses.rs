//! The account's event buses against their quota. Every org's partner event
//! source is an event bus of this account and region, and EventBridge allows
//! 100 by default, adjustable ("Event buses", Amazon EventBridge User Guide,
//! "Amazon EventBridge quotas"); an increase takes days, so `org add` warns
//! well before the last one.

use aws_sdk_eventbridge::error::DisplayErrorContext;

/// EventBridge's default quota of event buses per account and region.
pub const DEFAULT_BUS_QUOTA: u32 = 100;

/// Warn from this share of the quota on.
const WARN_AT_PERCENT: u32 = 90;

/// Every event bus of the account in this region (the default one, custom
/// ones and associated partner sources), page by page.
pub async fn count_event_buses(client: &aws_sdk_eventbridge::Client) -> Result<u32, String> {
    let mut count = 0u32;
    let mut next: Option<String> = None;
    loop {
        let page = client
            .list_event_buses()
            .limit(100)
            .set_next_token(next)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "EventBridge ListEventBuses failed: {}",
                    DisplayErrorContext(e)
                )
            })?;
        count = count.saturating_add(u32::try_from(page.event_buses().len()).unwrap_or(u32::MAX));
        next = page.next_token().map(str::to_string);
        if next.is_none() {
            return Ok(count);
        }
    }
}

/// The warning for `count` buses against `quota`, if it is due.
pub fn quota_warning(count: u32, quota: u32) -> Option<String> {
    let quota = quota.max(1);
    (u64::from(count) * 100 >= u64::from(quota) * u64::from(WARN_AT_PERCENT)).then(|| {
        format!(
            "warning: this account uses {count} of its {quota} event buses in this region, and every \
             org's partner event source is one: request an increase of \"Event buses\" (Amazon \
             EventBridge) in Service Quotas before the next orgs; it can take days"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_from_nine_tenths_of_the_quota() {
        assert_eq!(quota_warning(89, 100), None);
        assert!(quota_warning(90, 100).is_some_and(|w| w.contains("90 of its 100")));
        assert!(quota_warning(100, 100).is_some());
        assert_eq!(quota_warning(179, 200), None);
        assert!(quota_warning(180, 200).is_some());
        assert!(quota_warning(1, 0).is_some(), "a zero quota is read as one");
    }
}
