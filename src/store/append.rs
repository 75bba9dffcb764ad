//! The append rules, shared by every backend: a batch of blocks and the current head in, the
//! writes out (or the first block that does not extend the head). Pure: no storage here, so a
//! backend only has to apply a [`Plan`] inside one transaction.
//!
//! Each rule is a small function with its own error, checked in a fixed order per block:
//! height, parent, MMR, commit, events.

use super::{EventLocation, Head, StoreError};
use crate::chain::{
    BlockHash, BlockHeader, Commit, EventId, FinalizedBlock, Hash, SignedEvent, TrustedHeader,
    ValidatorSet,
};
use crate::proof::merkle::merkle_root;
use crate::proof::mmr::MmrPeaks;
use crate::protocol::snapshot::Snapshot;

/// One checked block and what storing it adds beyond the block itself.
pub(crate) struct PlannedBlock<'a> {
    pub block: &'a FinalizedBlock,
    pub height: u64,
    pub hash: BlockHash,
    /// Event ids in block order: event `i` is at `EventLocation { height, index: i }`.
    pub event_ids: Vec<EventId>,
    /// MMR nodes created by appending this block's hash, as `(level, index, hash)`.
    pub mmr_nodes: Vec<(u8, u64, Hash)>,
}

impl PlannedBlock<'_> {
    /// Each event's id and location.
    pub fn events(&self) -> impl Iterator<Item = (&EventId, EventLocation)> + '_ {
        self.event_ids.iter().zip(0u32..).map(|(id, index)| {
            (
                id,
                EventLocation {
                    height: self.height,
                    index,
                },
            )
        })
    }
}

/// Everything one successful append writes, in block order, and the head after it.
pub(crate) struct Plan<'a> {
    pub blocks: Vec<PlannedBlock<'a>>,
    pub head: Head,
}

/// Checks that `blocks` extend `head` one by one and computes their writes. `None` for an
/// empty batch.
pub(crate) fn plan<'a>(
    head: Option<&Head>,
    blocks: &'a [FinalizedBlock],
) -> Result<Option<Plan<'a>>, StoreError> {
    let Some(last) = blocks.last() else {
        return Ok(None);
    };
    let (mut next_height, mut parent, mut peaks) = match head {
        None => (0, Hash::ZERO, MmrPeaks::new()),
        Some(head) => {
            let next = head.height.checked_add(1).ok_or_else(|| {
                StoreError::Corrupt("the head is at the largest height: nothing can follow".into())
            })?;
            (next, head.hash, head.peaks.clone())
        }
    };
    let mut planned = Vec::with_capacity(blocks.len());
    for block in blocks {
        let header = &block.block.header;
        at_next_height(next_height, header)?;
        links_to_parent(&parent, header)?;
        commits_to_store_mmr(&peaks, header)?;
        let hash = header.hash();
        commit_is_for_block(header, &hash, &block.commit)?;
        let event_ids = events_match_header(header, &block.block.events)?;
        let mut mmr_nodes = Vec::with_capacity(2);
        peaks
            .append_with(&hash, |level, index, node| {
                mmr_nodes.push((level, index, *node))
            })
            .map_err(|e| StoreError::Corrupt(format!("chain MMR: {e}")))?;
        planned.push(PlannedBlock {
            block,
            height: header.height,
            hash,
            event_ids,
            mmr_nodes,
        });
        parent = hash;
        // The MMR append above succeeded, so it had fewer than u64::MAX leaves: no overflow.
        next_height = next_height.saturating_add(1);
    }
    Ok(Some(Plan {
        blocks: planned,
        head: Head {
            height: last.height(),
            hash: parent,
            peaks,
        },
    }))
}

/// What installing a warp-sync snapshot writes: the snapshot's trusted header, its hash, the
/// MMR nodes the store needs from then on, the set that signs the next block, and the head.
pub(crate) struct SnapshotPlan<'a> {
    pub header: &'a TrustedHeader,
    pub height: u64,
    pub hash: BlockHash,
    /// The snapshot's peaks at their `(level, index)`, then the nodes that appending the
    /// snapshot block's own hash creates. Every later append and proof only needs these: a
    /// node of an older mountain that a later proof passes is one of these peaks.
    pub mmr_nodes: Vec<(u8, u64, Hash)>,
    pub next_validators: &'a ValidatorSet,
    pub head: Head,
}

/// Checks that a store with head `head` can start from `snapshot` (it must be empty, and the
/// snapshot's parts must agree with its header: [`Snapshot::check`]) and computes the writes.
/// The header itself is not verified here: the caller checked it against a checkpoint.
pub(crate) fn plan_snapshot<'a>(
    head: Option<&Head>,
    snapshot: &'a Snapshot,
) -> Result<SnapshotPlan<'a>, StoreError> {
    if let Some(head) = head {
        return Err(StoreError::NotEmpty {
            height: head.height,
        });
    }
    snapshot
        .check()
        .map_err(|e| StoreError::InvalidSnapshot(e.to_string()))?;
    let header = &snapshot.header;
    let height = header.header.height;
    let hash = header.header.hash();
    if header.commit.block_hash != hash || header.commit.height != height {
        return Err(StoreError::CommitMismatch { height });
    }
    let mut mmr_nodes: Vec<(u8, u64, Hash)> = snapshot
        .peaks
        .positions()
        .zip(snapshot.peaks.peaks())
        .map(|((level, index), peak)| (level, index, *peak))
        .collect();
    let mut peaks = snapshot.peaks.clone();
    peaks
        .append_with(&hash, |level, index, node| {
            mmr_nodes.push((level, index, *node))
        })
        .map_err(|e| StoreError::InvalidSnapshot(format!("chain MMR: {e}")))?;
    Ok(SnapshotPlan {
        header,
        height,
        hash,
        mmr_nodes,
        next_validators: &snapshot.next_validators,
        head: Head {
            height,
            hash,
            peaks,
        },
    })
}

/// The block is at the height after the head (0 on an empty store).
fn at_next_height(expected_height: u64, header: &BlockHeader) -> Result<(), StoreError> {
    if header.height != expected_height {
        return Err(StoreError::NotContiguous {
            expected_height,
            got: header.height,
        });
    }
    Ok(())
}

/// The block's parent is the head (the zero hash for block 0).
fn links_to_parent(expected: &BlockHash, header: &BlockHeader) -> Result<(), StoreError> {
    if header.parent_hash != *expected {
        return Err(StoreError::ParentMismatch {
            height: header.height,
            expected: *expected,
            got: header.parent_hash,
        });
    }
    Ok(())
}

/// The header commits to the store's MMR over every earlier block.
fn commits_to_store_mmr(peaks: &MmrPeaks, header: &BlockHeader) -> Result<(), StoreError> {
    if header.mmr_leaf_count != peaks.leaf_count() || header.mmr_root != peaks.root() {
        return Err(StoreError::MmrMismatch {
            height: header.height,
        });
    }
    Ok(())
}

/// The commit finalizes this block: its hash and height.
fn commit_is_for_block(
    header: &BlockHeader,
    hash: &BlockHash,
    commit: &Commit,
) -> Result<(), StoreError> {
    if commit.block_hash != *hash || commit.height != header.height {
        return Err(StoreError::CommitMismatch {
            height: header.height,
        });
    }
    Ok(())
}

/// The events are the ones the header commits to; returns their ids.
fn events_match_header(
    header: &BlockHeader,
    events: &[SignedEvent],
) -> Result<Vec<EventId>, StoreError> {
    let ids: Vec<EventId> = events.iter().map(SignedEvent::id).collect();
    if header.event_count as usize != ids.len() || header.events_root != merkle_root(&ids) {
        return Err(StoreError::BodyMismatch {
            height: header.height,
        });
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proof::mmr::MmrNodes;
    use crate::testkit::ChainBuilder;

    fn chain(n: usize) -> (ChainBuilder, Vec<FinalizedBlock>) {
        let mut chain = ChainBuilder::new("append", 3);
        let blocks = (0..n)
            .map(|_| {
                let (block, trusted) = chain.next_block(Vec::new());
                FinalizedBlock {
                    block,
                    commit: trusted.commit,
                    next_validators: trusted.next_validators,
                }
            })
            .collect();
        (chain, blocks)
    }

    #[test]
    fn an_empty_batch_plans_nothing() {
        assert!(plan(None, &[]).unwrap().is_none());
    }

    #[test]
    fn plan_lists_every_new_mmr_node_once_and_the_new_head() {
        let (chain, blocks) = chain(8);
        let first = plan(None, &blocks[..3]).unwrap().unwrap();
        let rest = plan(Some(&first.head), &blocks[3..]).unwrap().unwrap();
        let nodes: Vec<(u8, u64, Hash)> = first
            .blocks
            .iter()
            .chain(&rest.blocks)
            .flat_map(|p| p.mmr_nodes.iter().copied())
            .collect();
        // 8 leaves make a perfect mountain of 15 nodes.
        assert_eq!(nodes.len(), 15);
        for (level, index, node) in nodes {
            assert_eq!(chain.mmr().node(level, index), Some(node));
        }
        assert_eq!(rest.head.height, 7);
        assert_eq!(rest.head.hash, blocks[7].block.header.hash());
        assert_eq!(rest.head.peaks, chain.mmr().peaks());
    }

    #[test]
    fn a_refusal_names_the_first_block_that_breaks_a_rule() {
        let (_, mut blocks) = chain(5);
        blocks[3].block.header.parent_hash = Hash([1; 32]);
        blocks[4].commit.height = 0;
        assert!(matches!(
            plan(None, &blocks),
            Err(StoreError::ParentMismatch { height: 3, .. })
        ));
    }
}
