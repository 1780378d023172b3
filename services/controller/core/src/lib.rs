//! vigil-controller: the controller's decisions as data (pacemaker-controld's
//! logic without its messages and processes).
//!
//! - [`graph`]: the transition graph the scheduler writes (Pacemaker's
//!   `transition_graph` XML), as typed synapses and actions;
//! - [`transition`]: running a graph: which actions may start (their
//!   inputs done, within `batch-limit`), pseudo-actions completing at
//!   once, results coming in, and an unexpected result aborting the rest;
//! - [`status`]: operation results as the CIB status section records them
//!   (`lrm_rsc_op`, transition keys, digests), read back by the scheduler.
//!
//! Nothing here sends a request, reads a clock or runs anything.

pub mod graph;
pub mod status;
pub mod transition;
