//! vigil-scheduler: the policy engine.
