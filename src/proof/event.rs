//! End-to-end event proofs: this event is in this block, and this block is in the chain that
//! a trusted header commits to.

use serde::Serialize;

use super::merkle::{merkle_proof, MerkleError, MerkleProof};
use super::mmr::{prove, MmrError, MmrNodes, MmrProof};
use crate::chain::{
    Block, BlockHash, BlockHeader, Decode, DecodeError, Encode, EventError, EventId, Reader,
    SignedEvent, Writer,
};

/// An event, its block's header, the Merkle path from the event to the header's events root,
/// and, when proven against a later header, the MMR path from the block hash to that
/// header's MMR root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventProof {
    pub event: SignedEvent,
    pub header: BlockHeader,
    pub merkle: MerkleProof,
    /// `None` iff the trusted header is the event's own block header.
    pub mmr: Option<MmrProof>,
}

/// What a verified proof establishes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifiedEvent {
    pub event_id: EventId,
    pub height: u64,
    pub block_hash: BlockHash,
    /// Position of the event in its block.
    pub index: u32,
}

/// Why an event proof is rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventProofError {
    #[error("the event itself is invalid: {0}")]
    Event(#[from] EventError),
    #[error("proof is for chain {got}, the trusted header is on {expected}")]
    ChainMismatch { expected: String, got: String },
    #[error("event block {event_height} is after the trusted header {trusted_height}")]
    BlockAfterTrustedHeader {
        event_height: u64,
        trusted_height: u64,
    },
    #[error("event not in its block: {0}")]
    Merkle(#[from] MerkleError),
    #[error("block header hashes to {got}, the trusted header at that height is {expected}")]
    BlockHashMismatch { expected: BlockHash, got: BlockHash },
    #[error("proof against the event's own block must not carry an MMR path")]
    UnexpectedMmrProof,
    #[error("proof against a later header needs an MMR path")]
    MissingMmrProof,
    #[error("MMR path is for leaf {got}, the event's block is at height {expected}")]
    MmrLeafMismatch { expected: u64, got: u64 },
    #[error("block not in the chain of the trusted header: {0}")]
    Mmr(#[from] MmrError),
}

impl EventProof {
    /// Builds the proof that `block.events[index]` is in the chain committed to by a header at
    /// `trusted_height` (at or after the block). `nodes` is the chain MMR over block hashes,
    /// holding at least `trusted_height` leaves.
    pub fn build<N: MmrNodes + ?Sized>(
        block: &Block,
        index: u32,
        nodes: &N,
        trusted_height: u64,
    ) -> Result<EventProof, EventProofError> {
        let height = block.header.height;
        if height > trusted_height {
            return Err(EventProofError::BlockAfterTrustedHeader {
                event_height: height,
                trusted_height,
            });
        }
        let event = block
            .events
            .get(index as usize)
            .ok_or(MerkleError::IndexOutOfRange {
                index,
                leaf_count: block.header.event_count,
            })?
            .clone();
        let ids: Vec<EventId> = block.events.iter().map(SignedEvent::id).collect();
        let merkle = merkle_proof(&ids, index)?;
        let mmr = if height == trusted_height {
            None
        } else {
            Some(prove(nodes, height, trusted_height)?)
        };
        Ok(EventProof {
            event,
            header: block.header.clone(),
            merkle,
            mmr,
        })
    }

    /// Verifies the proof against a header the caller already trusts (verified by signatures,
    /// at or after the event's block). Checks the event's own signature too.
    pub fn verify(&self, trusted: &BlockHeader) -> Result<VerifiedEvent, EventProofError> {
        self.event.validate()?;
        if self.header.chain_id != trusted.chain_id {
            return Err(EventProofError::ChainMismatch {
                expected: trusted.chain_id.to_string(),
                got: self.header.chain_id.to_string(),
            });
        }
        let event_id = self.event.id();
        self.merkle
            .verify(&event_id, self.header.event_count, &self.header.events_root)?;
        let block_hash = self.header.hash();
        let height = self.header.height;
        if height > trusted.height {
            return Err(EventProofError::BlockAfterTrustedHeader {
                event_height: height,
                trusted_height: trusted.height,
            });
        }
        if height == trusted.height {
            if self.mmr.is_some() {
                return Err(EventProofError::UnexpectedMmrProof);
            }
            let expected = trusted.hash();
            if block_hash != expected {
                return Err(EventProofError::BlockHashMismatch {
                    expected,
                    got: block_hash,
                });
            }
        } else {
            let mmr = self.mmr.as_ref().ok_or(EventProofError::MissingMmrProof)?;
            if mmr.leaf_index != height {
                return Err(EventProofError::MmrLeafMismatch {
                    expected: height,
                    got: mmr.leaf_index,
                });
            }
            mmr.verify(&block_hash, &trusted.mmr_root, trusted.mmr_leaf_count)?;
        }
        Ok(VerifiedEvent {
            event_id,
            height,
            block_hash,
            index: self.merkle.index,
        })
    }
}

impl Encode for EventProof {
    fn encode_to(&self, w: &mut Writer) {
        w.value(&self.event)
            .value(&self.header)
            .value(&self.merkle)
            .option(self.mmr.as_ref());
    }
}

impl Decode for EventProof {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(EventProof {
            event: SignedEvent::decode_from(r)?,
            header: BlockHeader::decode_from(r)?,
            merkle: MerkleProof::decode_from(r)?,
            mmr: r.option("event proof MMR path")?,
        })
    }
}
