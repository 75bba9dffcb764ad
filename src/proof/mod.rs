//! Proofs: event-in-block (Merkle), block-in-chain (MMR), and their composition.

pub mod event;
pub mod merkle;
pub mod mmr;

pub use event::{EventProof, EventProofError, VerifiedEvent};
pub use merkle::{merkle_proof, merkle_root, MerkleError, MerkleProof};
pub use mmr::{Mmr, MmrError, MmrNodes, MmrPeaks, MmrProof};
