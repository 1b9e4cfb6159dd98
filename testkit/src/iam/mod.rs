//! The enforcing double: every AWS request of a test or the local stack is
//! authorized as AWS would authorize it, against the policies that
//! `infra/template.yaml` gives the caller's role, before moto sees it.
//!
//! - `policy`: IAM policy documents and their evaluation (pure).
//! - `template`: the template's policies resolved for one test stack's names.

pub mod policy;
pub mod template;
