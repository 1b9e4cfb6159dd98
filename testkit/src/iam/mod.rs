//! The enforcing double: every AWS request of a test or the local stack is
//! authorized as AWS would authorize it, against the policies that
//! `infra/template.yaml` gives the caller's role, before moto sees it.
//!
//! - `policy`: IAM policy documents and their evaluation (pure).
//! - `template`: the template's policies resolved for one test stack's names.
//! - `request`: what IAM authorizes for one API call (actions, resources, keys).
//! - `stack`: one test's deployment: roles, key and queue policies, denials.
//! - `authorize`: who signs a request and whether AWS would allow it.
//! - `proxy`: the HTTP front in front of moto that enforces it.
//! - `assumptions`: where no AWS text says, each with a switch.

pub mod assumptions;
pub mod authorize;
pub mod policy;
pub mod proxy;
pub mod request;
pub mod stack;
pub mod template;

pub use authorize::{ADMINISTRATOR_KEY, Caller, Who};
pub use stack::{Delivery, Denial, Role, Shape, StackBinding, Tenancy};
