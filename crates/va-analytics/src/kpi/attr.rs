//! Counter attribute names: the names of the counters a bucket item holds.
// The names say what they count; the few that need more say it.
#![allow(missing_docs)]

pub const EVENTS: &str = "events";
pub const UNKNOWN_TOPICS: &str = "unknown_topics";
pub const STARTED: &str = "started";
pub const ENDED: &str = "ended";
pub const ACTIVE: &str = "active";
pub const CONTAINED: &str = "contained";
pub const ESCALATED: &str = "escalated";
pub const ABANDONED: &str = "abandoned";
pub const RECOGNITION_FAILURES: &str = "recognition_failures";
pub const ERRORS: &str = "errors";
pub const OTHER_EXITS: &str = "other_exits";
pub const UNKNOWN_OUTCOMES: &str = "unknown_outcomes";
/// Ended sessions whose intent enrichment gave up on (not in the
/// analytics API within the enrichment's time limit).
pub const INTENT_UNKNOWN: &str = "intent_unknown";
pub const DURATION_MS_SUM: &str = "duration_ms_sum";
pub const DURATION_COUNT: &str = "duration_count";
/// `d_le_<seconds>`: sessions that lasted at most that long (one bucket each).
pub const DURATION_BUCKET_PREFIX: &str = "d_le_";
/// `o#<outcome id>#success` / `#failure`.
pub const OUTCOME_PREFIX: &str = "o#";
/// `i#<intent name>`: final intents of ended sessions (from enrichment).
pub const INTENT_PREFIX: &str = "i#";
/// Sessions that ended in this minute and span N minutes (`span_N`);
/// stored, never shown: readers turn them into [`ACTIVE`].
pub const SPAN_PREFIX: &str = "span_";
