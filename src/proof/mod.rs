//! Proofs: event-in-block (Merkle), block-in-chain (MMR), and their composition.

pub mod merkle;
pub mod mmr;
