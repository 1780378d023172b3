//! vigil-fenced's parts: the fencing configuration read from the CIB
//! ([`config`]), running fence agents ([`runner`]), the bus interface
//! ([`dbus`]) and the loop that drives `vigil-fencer` through the
//! membership group `fencing` ([`runtime`]).

pub mod config;
pub mod dbus;
pub mod runner;
pub mod runtime;
