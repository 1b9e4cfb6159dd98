//! The open-ended names counters carry (outcome ids, intents): finding
//! them in a plan and counting one under another name.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{Plan, Scope, attr};

/// Distinct outcome ids (and, separately, intent names) kept per flow and
/// day; the rest count under [`OTHER_NAME`], so no bucket grows without
/// bound whatever names arrive.
pub const MAX_NAMES_PER_FLOW_DAY: usize = 100;
/// Where names past the cap (or longer than [`va_events::MAX_NAME_BYTES`]) count.
pub const OTHER_NAME: &str = "other";

/// A kind of open-ended name a counter carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum NameKind {
    /// `o#<outcome id>#success|failure`.
    Outcome,
    /// `i#<intent name>`.
    Intent,
}

impl NameKind {
    /// The registry attribute holding this kind's names.
    pub fn attribute(self) -> &'static str {
        match self {
            NameKind::Outcome => "outcomes",
            NameKind::Intent => "intents",
        }
    }
}

/// The name a counter carries, if it carries one.
fn counter_name(counter: &str) -> Option<(NameKind, &str)> {
    if let Some(rest) = counter.strip_prefix(attr::OUTCOME_PREFIX) {
        let (id, _) = rest.rsplit_once('#')?;
        return Some((NameKind::Outcome, id));
    }
    counter
        .strip_prefix(attr::INTENT_PREFIX)
        .map(|n| (NameKind::Intent, n))
}

/// `counter` with its name replaced by `to`, its kind and suffix kept.
fn renamed(counter: &str, to: &str) -> String {
    match counter_name(counter) {
        Some((NameKind::Outcome, _)) => {
            let kind = counter.rsplit_once('#').map_or("", |(_, k)| k);
            format!("{}{to}#{kind}", attr::OUTCOME_PREFIX)
        }
        Some((NameKind::Intent, _)) => format!("{}{to}", attr::INTENT_PREFIX),
        None => counter.to_string(),
    }
}

impl Plan {
    /// The open-ended names this plan counts, per flow and minute: what the
    /// store admits (or sends to [`OTHER_NAME`]) before it writes.
    pub fn names(&self) -> BTreeSet<(NameKind, String, i64, String)> {
        let mut out = BTreeSet::new();
        for ((scope, minute), counters) in &self.buckets {
            let Scope::Flow(flow) = scope else { continue };
            for counter in counters.keys() {
                if let Some((kind, name)) = counter_name(counter)
                    && name != OTHER_NAME
                {
                    out.insert((kind, flow.clone(), *minute, name.to_string()));
                }
            }
        }
        out
    }

    /// Counts `kind`'s `name` under `to` instead, in every scope.
    pub fn rename(&mut self, kind: NameKind, name: &str, to: &str) {
        for counters in self.buckets.values_mut() {
            let moved: Vec<String> = counters
                .keys()
                .filter(|c| counter_name(c) == Some((kind, name)))
                .cloned()
                .collect();
            for c in moved {
                if let Some(n) = counters.remove(&c) {
                    let e = counters.entry(renamed(&c, to)).or_default();
                    *e = e.saturating_add(n);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_found_and_renamed_in_every_scope() {
        let mut p = Plan::default();
        let flow = Scope::Flow("f".into());
        p.both(&flow, 60_000, "o#o-1#success", 1);
        p.both(&flow, 60_000, "o#o-2#failure", 2);
        p.both(&flow, 60_000, "i#Billing", 1);
        p.both(&flow, 60_000, attr::ENDED, 1);
        let names: Vec<_> = p.names().into_iter().map(|(k, _, _, n)| (k, n)).collect();
        assert_eq!(
            names,
            vec![
                (NameKind::Outcome, "o-1".to_string()),
                (NameKind::Outcome, "o-2".to_string()),
                (NameKind::Intent, "Billing".to_string())
            ]
        );
        p.rename(NameKind::Outcome, "o-2", OTHER_NAME);
        p.rename(NameKind::Intent, "Billing", OTHER_NAME);
        for scope in [Scope::Org, flow] {
            let c = &p.buckets[&(scope, 60_000)];
            assert_eq!(c.get("o#other#failure"), Some(&2));
            assert_eq!(c.get("o#o-1#success"), Some(&1));
            assert_eq!(c.get("i#other"), Some(&1));
            assert!(!c.contains_key("o#o-2#failure") && !c.contains_key("i#Billing"));
        }
        assert_eq!(p.names().len(), 1, "`other` is not admitted again");
    }
}
