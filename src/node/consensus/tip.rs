//! The chain tip consensus builds on: the last finalized header, its hash, and the MMR the next
//! header commits to.

use crate::chain::{
    BlockHash, BlockHeader, ChainId, FinalizedBlock, Genesis, Hash, SignedEvent, PROTOCOL_VERSION,
};
use crate::crypto::ed25519::PublicKey;
use crate::proof::{merkle_root, MmrError, MmrPeaks};

/// The last finalized block, as far as building and checking its successor needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainTip {
    pub header: BlockHeader,
    pub hash: BlockHash,
    /// The MMR over the hashes of blocks `0..=header.height` (the tip included): exactly what
    /// the next header's `mmr_root` and `mmr_leaf_count` commit to.
    pub mmr: MmrPeaks,
}

/// Why a tip is unusable, or cannot advance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TipError {
    #[error("the MMR holds {got} leaves, a tip at height {height} needs {expected}")]
    MmrLeafCount {
        height: u64,
        expected: u64,
        got: u64,
    },
    #[error("the tip is on chain {got}, the genesis on {expected}")]
    ChainIdMismatch { expected: ChainId, got: ChainId },
    #[error("the tip announces next set {got}, the genesis schedules {expected}")]
    NextValidatorsMismatch { expected: Hash, got: Hash },
    #[error("block at height {got} does not follow the tip at {height}")]
    NotNext { height: u64, got: u64 },
    #[error("block parent {got} is not the tip {expected}")]
    NotChild { expected: BlockHash, got: BlockHash },
    #[error("MMR: {0}")]
    Mmr(#[from] MmrError),
}

impl ChainTip {
    /// A tip from a finalized header and the MMR over blocks `0..=header.height`.
    pub fn new(header: BlockHeader, mmr: MmrPeaks) -> Result<ChainTip, TipError> {
        let expected = header.height.saturating_add(1);
        if mmr.leaf_count() != expected {
            return Err(TipError::MmrLeafCount {
                height: header.height,
                expected,
                got: mmr.leaf_count(),
            });
        }
        Ok(ChainTip {
            hash: header.hash(),
            header,
            mmr,
        })
    }

    /// The tip of a chain that has only its genesis block.
    pub fn genesis(genesis: &Genesis) -> ChainTip {
        let header = genesis.block().block.header;
        let hash = header.hash();
        let mut mmr = MmrPeaks::new();
        // One leaf: cannot overflow.
        let _ = mmr.append(&hash);
        ChainTip { header, hash, mmr }
    }

    pub fn height(&self) -> u64 {
        self.header.height
    }

    /// The height of the block built on this tip.
    pub fn next_height(&self) -> u64 {
        self.header.height.saturating_add(1)
    }

    /// Checks that the tip belongs to `genesis` and announces the set it schedules next.
    pub fn check_against(&self, genesis: &Genesis) -> Result<(), TipError> {
        if self.header.chain_id != genesis.chain_id {
            return Err(TipError::ChainIdMismatch {
                expected: genesis.chain_id.clone(),
                got: self.header.chain_id.clone(),
            });
        }
        let expected = genesis.validators_at(self.next_height()).hash();
        if self.header.next_validators_hash != expected {
            return Err(TipError::NextValidatorsMismatch {
                expected,
                got: self.header.next_validators_hash,
            });
        }
        Ok(())
    }

    /// The tip after `block`, which must be the block right after this tip.
    pub fn advance(&self, block: &FinalizedBlock) -> Result<ChainTip, TipError> {
        let header = &block.block.header;
        if header.height != self.next_height() {
            return Err(TipError::NotNext {
                height: self.height(),
                got: header.height,
            });
        }
        if header.parent_hash != self.hash {
            return Err(TipError::NotChild {
                expected: self.hash,
                got: header.parent_hash,
            });
        }
        let hash = header.hash();
        let mut mmr = self.mmr.clone();
        mmr.append(&hash)?;
        Ok(ChainTip {
            header: header.clone(),
            hash,
            mmr,
        })
    }

    /// The header of the next block with these events, proposer and timestamp: every field
    /// but those three is fixed by the tip and the genesis schedule.
    pub fn next_header(
        &self,
        genesis: &Genesis,
        proposer: PublicKey,
        events: &[SignedEvent],
        timestamp_ms: u64,
    ) -> BlockHeader {
        let height = self.next_height();
        let ids: Vec<Hash> = events.iter().map(SignedEvent::id).collect();
        BlockHeader {
            version: PROTOCOL_VERSION,
            chain_id: self.header.chain_id.clone(),
            height,
            parent_hash: self.hash,
            timestamp_ms,
            events_root: merkle_root(&ids),
            // Blocks hold at most MAX_BLOCK_EVENTS events: the count fits.
            event_count: events.len() as u32,
            mmr_root: self.mmr.root(),
            mmr_leaf_count: self.mmr.leaf_count(),
            validators_hash: genesis.validators_at(height).hash(),
            next_validators_hash: genesis.validators_at(height.saturating_add(1)).hash(),
            proposer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    fn genesis() -> Genesis {
        Genesis::new(
            ChainId::new("tip").unwrap(),
            1_000,
            testkit::validator_set(&testkit::keys(0, 4)),
            Default::default(),
        )
        .unwrap()
    }

    #[test]
    fn genesis_tip_is_checked_and_rejects_a_short_mmr() {
        let g = genesis();
        let tip = ChainTip::genesis(&g);
        assert_eq!(tip.check_against(&g), Ok(()));
        assert_eq!(tip.next_height(), 1);
        assert_eq!(
            ChainTip::new(tip.header.clone(), MmrPeaks::new()),
            Err(TipError::MmrLeafCount {
                height: 0,
                expected: 1,
                got: 0
            })
        );
        assert_eq!(ChainTip::new(tip.header.clone(), tip.mmr.clone()), Ok(tip));
    }

    #[test]
    fn advance_requires_the_child_of_the_tip() {
        let g = genesis();
        let tip = ChainTip::genesis(&g);
        let mut fb = g.block();
        assert!(matches!(tip.advance(&fb), Err(TipError::NotNext { .. })));
        fb.block.header = tip.next_header(&g, testkit::key(0).public_key(), &[], 1_000);
        let next = tip.advance(&fb).unwrap();
        assert_eq!(next.height(), 1);
        assert_eq!(next.mmr.leaf_count(), 2);
        fb.block.header.parent_hash = Hash([1; 32]);
        assert!(matches!(tip.advance(&fb), Err(TipError::NotChild { .. })));
    }
}
