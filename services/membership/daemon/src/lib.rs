//! vigil-membershipd as a library: the cluster configuration file, the
//! sealed datagram transport and the cluster key, the bus interfaces and the
//! event loop. The `vigil-membershipd` binary runs them; the `vigil` CLI
//! uses `config` and `transport` to write configuration and keys.

pub mod config;
pub mod dbus;
pub mod runtime;
pub mod state;
pub mod transport;
