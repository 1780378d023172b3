//! vigil-cib: the cluster information base as data.
//!
//! Parses Pacemaker's CIB XML into a lossless tree ([`xml`]), evaluates rules
//! ([`rules`], [`time`]), offers typed read-only views of a whole CIB
//! ([`model`]) and reports everything wrong with one ([`validate`]): line and
//! column, element and id, and what to do. Pure: no I/O, no clock.

pub mod acl;
pub mod model;
pub mod ops;
pub mod patchset;
pub mod rules;
pub mod time;
pub mod validate;
pub mod xml;
pub mod xpath;
