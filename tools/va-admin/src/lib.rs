//! What the `va-admin` commands share with the tests that run them as the
//! operator.
#![warn(missing_docs)]

pub mod buses;
pub mod offboard;
pub mod onboard;
