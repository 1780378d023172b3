//! vigil-types: the vocabulary every Vigil crate shares.
