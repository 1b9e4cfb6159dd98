//! What a plan adds to which cell: its counters per minute and flow.

use std::collections::{BTreeMap, BTreeSet};

use super::late_hours;
use crate::kpi::{Plan, Scope, attr};

/// Counters that belong to the org, not to a flow (the event itself): they
/// may ride in a flow's cell to save an item and are hidden from flow views.
pub(super) const ORG_ONLY: [&str; 2] = [attr::EVENTS, attr::UNKNOWN_TOPICS];

/// The bucket items a plan adds to: per minute, one cell per flow it
/// touches, the flow's counters in it; what the org gets beyond the sum of
/// its flows (the event's own count) rides in the flow's cell when the
/// minute has exactly one, else in the minute's flowless cell.
pub fn cells(plan: &Plan) -> BTreeMap<(i64, Option<String>), BTreeMap<String, i64>> {
    let mut out: BTreeMap<(i64, Option<String>), BTreeMap<String, i64>> = BTreeMap::new();
    let mut rest: BTreeMap<i64, BTreeMap<String, i64>> = BTreeMap::new();
    for ((scope, minute), counters) in &plan.buckets {
        match scope {
            Scope::Flow(f) => {
                let cell = out.entry((*minute, Some(f.clone()))).or_default();
                let org = rest.entry(*minute).or_default();
                for (name, n) in counters {
                    {
                        let e: &mut i64 = cell.entry(name.clone()).or_default();
                        *e = e.saturating_add(*n);
                    }
                    *org.entry(name.clone()).or_default() -= n;
                }
            }
            Scope::Org => {
                let org = rest.entry(*minute).or_default();
                for (name, n) in counters {
                    {
                        let e: &mut i64 = org.entry(name.clone()).or_default();
                        *e = e.saturating_add(*n);
                    }
                }
            }
        }
    }
    for (minute, mut counters) in rest {
        counters.retain(|_, n| *n != 0);
        if counters.is_empty() {
            continue;
        }
        let flows: Vec<_> = out
            .keys()
            .filter(|(m, f)| *m == minute && f.is_some())
            .cloned()
            .collect();
        // Only the org-only counters may ride in a flow's cell: flow views
        // hide exactly those.
        let rides = matches!(flows.as_slice(), [_])
            && counters.keys().all(|k| ORG_ONLY.contains(&k.as_str()));
        let target = match flows.as_slice() {
            [one] if rides => one.clone(),
            _ => (minute, None),
        };
        let cell = out.entry(target).or_default();
        for (name, n) in counters {
            {
                let e: &mut i64 = cell.entry(name).or_default();
                *e = e.saturating_add(n);
            }
        }
    }
    out
}

/// Items [`super::AnalyticsStore::apply_batch`] writes for `plans`: a marker and
/// pending enrichment each, their merged cells, and a dirty mark for every
/// hour they touch (counted as if all were late).
pub fn batch_items<'a>(plans: impl IntoIterator<Item = &'a Plan>) -> usize {
    let mut per_plan = 0;
    let mut merged = BTreeSet::new();
    let mut hours = BTreeSet::new();
    for p in plans {
        per_plan += 1 + usize::from(p.pending.is_some());
        merged.extend(cells(p).into_keys());
        // Every hour it touches might be late: the bound holds whenever it runs.
        hours.extend(late_hours(p, i64::MAX));
    }
    per_plan + merged.len() + hours.len()
}

/// A plan that adds `buckets`: (scope, minute, counter, delta).
#[cfg(test)]
pub(super) fn plan_with(buckets: &[(Scope, i64, &str, i64)]) -> Plan {
    let mut p = Plan::default();
    for (scope, m, name, n) in buckets {
        *p.buckets
            .entry((scope.clone(), *m))
            .or_default()
            .entry((*name).to_string())
            .or_default() += n;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_of_one_flow_writes_one_cell_with_its_own_count_in_it() {
        let f = Scope::Flow("f-1".into());
        let p = plan_with(&[
            (Scope::Org, 60_000, attr::EVENTS, 1),
            (Scope::Org, 60_000, attr::STARTED, 1),
            (f.clone(), 60_000, attr::STARTED, 1),
        ]);
        let c = cells(&p);
        assert_eq!(c.len(), 1);
        let cell = &c[&(60_000, Some("f-1".to_string()))];
        assert_eq!(cell.get(attr::STARTED), Some(&1));
        assert_eq!(cell.get(attr::EVENTS), Some(&1));
    }

    #[test]
    fn flowless_counts_and_several_flows_keep_the_org_total() {
        let only_org = plan_with(&[(Scope::Org, 0, attr::EVENTS, 1)]);
        assert_eq!(
            cells(&only_org).into_keys().collect::<Vec<_>>(),
            vec![(0, None)]
        );
        // An escalation moves counts in two flows' minutes: the org's total
        // is their sum, with nothing left over for a flowless cell.
        let p = plan_with(&[
            (Scope::Org, 0, attr::EVENTS, 1),
            (Scope::Flow("a".into()), 0, attr::CONTAINED, -1),
            (Scope::Org, 0, attr::CONTAINED, -1),
            (Scope::Flow("b".into()), 0, attr::ESCALATED, 1),
            (Scope::Org, 0, attr::ESCALATED, 1),
        ]);
        let c = cells(&p);
        assert_eq!(c.len(), 3, "two flows and the event's own count: {c:?}");
        assert_eq!(c[&(0, None)].get(attr::EVENTS), Some(&1));
        let total = |name: &str| -> i64 { c.values().filter_map(|x| x.get(name)).sum() };
        assert_eq!(total(attr::CONTAINED), -1);
        assert_eq!(total(attr::ESCALATED), 1);
        // An org counter that is not org-only never rides in a flow's cell
        // (flow views would show it).
        let odd = plan_with(&[
            (Scope::Org, 0, attr::STARTED, 2),
            (Scope::Flow("a".into()), 0, attr::STARTED, 1),
        ]);
        let c = cells(&odd);
        assert_eq!(c[&(0, Some("a".to_string()))].get(attr::STARTED), Some(&1));
        assert_eq!(c[&(0, None)].get(attr::STARTED), Some(&1));
    }
}
