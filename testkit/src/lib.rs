//! Test support for the product: a local AWS endpoint (moto in server mode),
//! the Genesys Cloud simulator, the Virtual Agent traffic generator and the
//! naive-fleet baseline the product must beat.

pub mod aws;
pub mod baselines;
pub mod browser;
pub mod cells;
pub mod delivery;
pub mod fixtures;
pub mod genesys_sdk;
pub mod iam;
pub mod metering;
pub mod orgs;
pub mod permissions;
pub mod product;
pub mod replay;
pub mod sign_in;
pub mod sim;
pub mod stack;
pub mod traffic;
