//! vigil-cibd as a library: the CIB's storage on disk, and the replication
//! of changes through the membership layer's ordered group `cib`.

pub mod replica;
pub mod store;
