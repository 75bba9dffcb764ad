//! Cryptographic primitives: ed25519 keys and the protocol's single signature rule.

pub mod ed25519;
