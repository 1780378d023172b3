//! vigil-cib: the cluster information base as data.
//!
//! Parses Pacemaker's CIB XML into a lossless tree ([`xml`]) and offers typed
//! views of what the scheduler needs. Pure: no I/O, no clock.

pub mod rules;
pub mod time;
pub mod xml;
