//! vigil-controld's parts: the messages controllers exchange in the
//! membership group `crmd` ([`message`]) and the loop ([`runtime`]): the
//! DC runs the scheduler on the CIB and carries its transitions out through
//! every node's executor and the fencer; every node records its
//! executor's results in the CIB status section.

pub mod dbus;
mod dc;
mod local;
pub mod message;
pub mod runtime;
