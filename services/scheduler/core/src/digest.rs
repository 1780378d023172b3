//! Operation digests.
