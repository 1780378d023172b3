//! vigil-scheduler: the policy engine.
pub mod digest;
