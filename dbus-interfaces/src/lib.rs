//! vigil-dbus: the client side of Vigil's D-Bus interfaces — typed proxies
//! that follow the reviewed contracts in this folder (`*.xml`), and
//! helpers built on them. Daemons that talk to each other use these
//! instead of carrying their own proxies.

pub mod cib;
pub mod controller;
pub mod executor;
pub mod fencing;
pub mod membership;
