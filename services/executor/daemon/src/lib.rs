//! vigil-execd's parts: running agent processes ([`spawn`]), each class's
//! way of performing an operation ([`agents`], [`systemd`]), the bus
//! interface ([`dbus`]) and the loop that drives `vigil-executor`
//! ([`runtime`]). The `vigil` CLI uses [`agents`] to run an agent by hand.

pub mod agents;
pub mod dbus;
pub mod runtime;
pub mod spawn;
pub mod systemd;
