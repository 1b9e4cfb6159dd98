//! One integration-test binary (one link) with a module per area.

mod baseline;
mod broker;
mod browser;
mod common;
mod conformance;
mod events;
mod fuzz;
mod guide;
mod hostile;
mod hygiene;
mod iam;
mod moto;
mod offboard;
mod operations;
mod orgs;
mod policy_sizes;
mod reads;
mod redrive;
mod retention;
mod simulator;
mod sweeper;
mod template;
mod traffic;
mod upgrade;
