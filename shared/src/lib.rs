//! The domain library every function links: the Genesys Cloud client, the
//! fleet-wide token broker, the Virtual Agent event model and the analytics store.
