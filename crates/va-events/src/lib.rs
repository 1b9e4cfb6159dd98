//! The Genesys Cloud EventBridge envelope and the conversation topics this
//! product reads. Parsing never panics: anything it cannot use is a
//! [`Rejection`] naming the event id and the field, never the field's value
//! (bodies carry ANIs and other personal data). Pure: no I/O, no AWS SDK.
//!
//! Body fields are the SDK models' (`FlowEndDetailEventTopicFlowEndEvent` and
//! siblings) in snake case; every one is optional there, so only what the KPIs
//! cannot do without is required here.
#![warn(missing_docs)]

mod bodies;
mod bounds;
mod envelope;
mod event;
mod topics;

pub use bodies::{Body, FlowBody, FlowOutcomeBody, ParticipantBody};
pub use bounds::{
    MAX_CLOCK_SKEW_MS, MAX_DURATION_MS, MAX_EVENT_ID_BYTES, MAX_EVENT_TIME_MS, MAX_NAME_BYTES,
    MIN_EVENT_TIME_MS, Rejection, check_event_time, is_uuid,
};
pub use envelope::{PARTNER_SOURCE_PREFIX, event_id_of, org_of, parse, parse_slice};
pub use event::Event;
pub use topics::Topic;

#[cfg(test)]
mod tests;
