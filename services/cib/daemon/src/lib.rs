//! vigil-cibd as a library: the CIB's storage on disk, the replication of
//! changes through the membership layer's ordered group `cib`, how a
//! change is applied, and the bus interface and loop that serve it.

pub mod dbus;
pub mod engine;
pub mod replica;
pub mod request;
pub mod runtime;
pub mod store;
pub mod writer;
