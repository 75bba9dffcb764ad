//! The audit chain's data model, its canonical encoding and hashing.

pub mod encoding;
pub mod hash;

pub use encoding::{Decode, DecodeError, Encode, Reader, Writer};
pub use hash::{hash, hash_pair, Domain, Hash, HASH_LEN};
