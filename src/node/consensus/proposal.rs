//! Building the next block as proposer, and checking a proposed block: one predicate per
//! property, each with its own [`ConsensusError`].
//!
//! [`check_block`] holds what depends only on the block and the chain tip (so its verdict can be
//! cached per block hash); [`check_proposal`] what depends on the round the block is proposed
//! in; [`timestamp_not_in_future`] what depends on the clock, checked when prevoting.

use std::collections::HashMap;

use super::error::ConsensusError;
use super::tip::ChainTip;
use crate::chain::{
    Block, BlockHeader, Encode, EventId, Genesis, SignedEvent, ValidatorSet, MAX_BLOCK_EVENTS,
    PROTOCOL_VERSION,
};
use crate::crypto::ed25519::PublicKey;
use crate::proof::merkle_root;

/// Size limits of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockLimits {
    /// Most events (capped at [`MAX_BLOCK_EVENTS`]).
    pub max_events: usize,
    /// Most bytes of the block's canonical encoding.
    pub max_bytes: usize,
}

impl BlockLimits {
    fn events(&self) -> usize {
        self.max_events.min(MAX_BLOCK_EVENTS)
    }
}

/// Builds the block after `tip` from `events`, in their order: an event that fails
/// [`SignedEvent::validate`] or repeats an earlier one is skipped; the block ends before the
/// first event that would break a limit. Every event kept is validated here, so the block
/// passes [`check_block`] by construction.
pub fn build_block(
    tip: &ChainTip,
    genesis: &Genesis,
    proposer: PublicKey,
    events: Vec<SignedEvent>,
    timestamp_ms: u64,
    limits: BlockLimits,
) -> Block {
    // The header's encoded length does not depend on the events: measure it once.
    let mut bytes = tip
        .next_header(genesis, proposer.clone(), &[], timestamp_ms)
        .encode()
        .len()
        + 4;
    let mut seen: HashMap<EventId, ()> = HashMap::new();
    let mut kept = Vec::new();
    for event in events {
        if kept.len() >= limits.events() {
            break;
        }
        let size = event.encoded_len();
        if bytes + size > limits.max_bytes {
            break;
        }
        if event.validate().is_err() || seen.insert(event.id(), ()).is_some() {
            continue;
        }
        bytes += size;
        kept.push(event);
    }
    let header = tip.next_header(genesis, proposer, &kept, timestamp_ms);
    Block {
        header,
        events: kept,
    }
}

/// Checks everything about `block` as the successor of `tip` that depends on neither the round
/// nor the clock. Event signatures are checked only if `event_signatures` (a block learned with
/// its commit needs its events to match its header, not to be re-validated).
pub fn check_block(
    tip: &ChainTip,
    genesis: &Genesis,
    block: &Block,
    limits: BlockLimits,
    event_signatures: bool,
) -> Result<(), ConsensusError> {
    let header = &block.header;
    version_supported(header)?;
    same_chain(tip, header)?;
    next_height(tip, header)?;
    links_to_tip(tip, header)?;
    timestamp_not_before_parent(tip, header)?;
    mmr_matches(tip, header)?;
    validator_sets_match(genesis, header)?;
    proposer_in_set(genesis.validators_at(header.height), header)?;
    within_limits(block, limits)?;
    let ids = events_match_header(block)?;
    no_duplicate_events(&ids)?;
    if event_signatures {
        events_valid(block)?;
    }
    Ok(())
}

/// Checks `header` as the block of a proposal for `round` with proof-of-lock round `pol_round`,
/// at a height signed by `set`.
pub fn check_proposal(
    set: &ValidatorSet,
    round: u32,
    pol_round: Option<u32>,
    header: &BlockHeader,
) -> Result<(), ConsensusError> {
    pol_round_before(round, pol_round)?;
    proposer_matches(set, round, pol_round, header)
}

pub fn version_supported(header: &BlockHeader) -> Result<(), ConsensusError> {
    if header.version != PROTOCOL_VERSION {
        return Err(ConsensusError::UnsupportedVersion {
            supported: PROTOCOL_VERSION,
            got: header.version,
        });
    }
    Ok(())
}

pub fn same_chain(tip: &ChainTip, header: &BlockHeader) -> Result<(), ConsensusError> {
    if header.chain_id != tip.header.chain_id {
        return Err(ConsensusError::ChainIdMismatch {
            expected: tip.header.chain_id.clone(),
            got: header.chain_id.clone(),
        });
    }
    Ok(())
}

pub fn next_height(tip: &ChainTip, header: &BlockHeader) -> Result<(), ConsensusError> {
    if header.height != tip.next_height() {
        return Err(ConsensusError::WrongHeight {
            expected: tip.next_height(),
            got: header.height,
        });
    }
    Ok(())
}

pub fn links_to_tip(tip: &ChainTip, header: &BlockHeader) -> Result<(), ConsensusError> {
    if header.parent_hash != tip.hash {
        return Err(ConsensusError::ParentMismatch {
            expected: tip.hash,
            got: header.parent_hash,
        });
    }
    Ok(())
}

pub fn timestamp_not_before_parent(
    tip: &ChainTip,
    header: &BlockHeader,
) -> Result<(), ConsensusError> {
    if header.timestamp_ms < tip.header.timestamp_ms {
        return Err(ConsensusError::TimestampBeforeParent {
            parent: tip.header.timestamp_ms,
            got: header.timestamp_ms,
        });
    }
    Ok(())
}

/// Not more than `max_drift_ms` past `now_ms` (checked before prevoting a new block).
pub fn timestamp_not_in_future(
    header: &BlockHeader,
    now_ms: u64,
    max_drift_ms: u64,
) -> Result<(), ConsensusError> {
    if header.timestamp_ms > now_ms.saturating_add(max_drift_ms) {
        return Err(ConsensusError::TimestampInFuture {
            now: now_ms,
            max_drift: max_drift_ms,
            got: header.timestamp_ms,
        });
    }
    Ok(())
}

/// The header commits to the MMR over every block up to the tip.
pub fn mmr_matches(tip: &ChainTip, header: &BlockHeader) -> Result<(), ConsensusError> {
    if header.mmr_leaf_count != tip.mmr.leaf_count() {
        return Err(ConsensusError::MmrLeafCountMismatch {
            expected: tip.mmr.leaf_count(),
            got: header.mmr_leaf_count,
        });
    }
    let expected = tip.mmr.root();
    if header.mmr_root != expected {
        return Err(ConsensusError::MmrRootMismatch {
            expected,
            got: header.mmr_root,
        });
    }
    Ok(())
}

/// The header names the genesis-scheduled sets of its height and of the next.
pub fn validator_sets_match(genesis: &Genesis, header: &BlockHeader) -> Result<(), ConsensusError> {
    let expected = genesis.validators_at(header.height).hash();
    if header.validators_hash != expected {
        return Err(ConsensusError::ValidatorsHashMismatch {
            expected,
            got: header.validators_hash,
        });
    }
    let expected = genesis
        .validators_at(header.height.saturating_add(1))
        .hash();
    if header.next_validators_hash != expected {
        return Err(ConsensusError::NextValidatorsHashMismatch {
            expected,
            got: header.next_validators_hash,
        });
    }
    Ok(())
}

pub fn proposer_in_set(set: &ValidatorSet, header: &BlockHeader) -> Result<(), ConsensusError> {
    if set.index_of(&header.proposer).is_none() {
        return Err(ConsensusError::ProposerNotInSet {
            proposer: header.proposer.to_hex(),
        });
    }
    Ok(())
}

pub fn within_limits(block: &Block, limits: BlockLimits) -> Result<(), ConsensusError> {
    if block.events.len() > limits.events() {
        return Err(ConsensusError::TooManyEvents {
            count: block.events.len(),
            max: limits.events(),
        });
    }
    let bytes = block.encoded_len();
    if bytes > limits.max_bytes {
        return Err(ConsensusError::BlockTooLarge {
            bytes,
            max: limits.max_bytes,
        });
    }
    Ok(())
}

/// The header's event count and root are those of the events; returns the event ids.
pub fn events_match_header(block: &Block) -> Result<Vec<EventId>, ConsensusError> {
    let header = &block.header;
    if header.event_count as usize != block.events.len() {
        return Err(ConsensusError::EventCountMismatch {
            header: header.event_count,
            events: block.events.len(),
        });
    }
    let ids: Vec<EventId> = block.events.iter().map(SignedEvent::id).collect();
    let expected = merkle_root(&ids);
    if header.events_root != expected {
        return Err(ConsensusError::EventsRootMismatch {
            expected,
            got: header.events_root,
        });
    }
    Ok(ids)
}

pub fn no_duplicate_events(ids: &[EventId]) -> Result<(), ConsensusError> {
    let mut first_at: HashMap<EventId, usize> = HashMap::with_capacity(ids.len());
    for (second, id) in ids.iter().enumerate() {
        if let Some(&first) = first_at.get(id) {
            return Err(ConsensusError::DuplicateEvent {
                id: *id,
                first,
                second,
            });
        }
        first_at.insert(*id, second);
    }
    Ok(())
}

pub fn events_valid(block: &Block) -> Result<(), ConsensusError> {
    for (index, event) in block.events.iter().enumerate() {
        event
            .validate()
            .map_err(|error| ConsensusError::InvalidEvent { index, error })?;
    }
    Ok(())
}

pub fn pol_round_before(round: u32, pol_round: Option<u32>) -> Result<(), ConsensusError> {
    match pol_round {
        Some(pol_round) if pol_round >= round => {
            Err(ConsensusError::PolRoundNotBefore { round, pol_round })
        }
        _ => Ok(()),
    }
}

/// A new block (no proof-of-lock round) names the round's proposer. A block proposed again
/// with a proof-of-lock round was built in an earlier round, by that round's proposer, so
/// it only has to name a member of the set (which [`check_block`] checks).
pub fn proposer_matches(
    set: &ValidatorSet,
    round: u32,
    pol_round: Option<u32>,
    header: &BlockHeader,
) -> Result<(), ConsensusError> {
    if pol_round.is_some() {
        return Ok(());
    }
    let expected = &set.proposer(header.height, round).key;
    if header.proposer != *expected {
        return Err(ConsensusError::WrongProposer {
            expected: expected.to_hex(),
            got: header.proposer.to_hex(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{ChainId, Hash};
    use crate::testkit;

    const LIMITS: BlockLimits = BlockLimits {
        max_events: 100,
        max_bytes: 1 << 20,
    };

    fn setup() -> (Genesis, ChainTip) {
        let g = Genesis::new(
            ChainId::new("proposal").unwrap(),
            1_000,
            testkit::validator_set(&testkit::keys(0, 4)),
            Default::default(),
        )
        .unwrap();
        let tip = ChainTip::genesis(&g);
        (g, tip)
    }

    fn events(n: u64) -> Vec<SignedEvent> {
        let source = testkit::key(50);
        (0..n).map(|i| testkit::event(&source, i, 5_000)).collect()
    }

    #[test]
    fn built_block_passes_every_check() {
        let (g, tip) = setup();
        let proposer = g.validators.proposer(1, 0).key.clone();
        let block = build_block(&tip, &g, proposer, events(5), 2_000, LIMITS);
        assert_eq!(block.events.len(), 5);
        assert_eq!(check_block(&tip, &g, &block, LIMITS, true), Ok(()));
        assert_eq!(
            check_proposal(&g.validators, 0, None, &block.header),
            Ok(())
        );
    }

    #[test]
    fn build_skips_invalid_and_repeated_events_and_respects_limits() {
        let (g, tip) = setup();
        let proposer = g.validators.proposer(1, 0).key.clone();
        let mut input = events(4);
        input.insert(1, input[0].clone());
        let mut forged = input[2].clone();
        forged.event.actor = "mallory".into();
        input.insert(2, forged);
        let block = build_block(&tip, &g, proposer.clone(), input, 2_000, LIMITS);
        assert_eq!(block.events, events(4));
        let limits = BlockLimits {
            max_events: 2,
            ..LIMITS
        };
        let block = build_block(&tip, &g, proposer.clone(), events(4), 2_000, limits);
        assert_eq!(block.events.len(), 2);
        let empty = build_block(&tip, &g, proposer.clone(), Vec::new(), 2_000, LIMITS);
        let limits = BlockLimits {
            max_bytes: empty.encode().len() + events(1)[0].encode().len() * 3 / 2,
            ..LIMITS
        };
        let block = build_block(&tip, &g, proposer, events(4), 2_000, limits);
        assert_eq!(block.events.len(), 1);
        assert_eq!(check_block(&tip, &g, &block, limits, true), Ok(()));
    }

    #[test]
    fn rejects_each_tampered_field() {
        let (g, tip) = setup();
        let proposer = g.validators.proposer(1, 0).key.clone();
        let good = build_block(&tip, &g, proposer, events(3), 2_000, LIMITS);
        let check = |edit: &dyn Fn(&mut Block)| {
            let mut b = good.clone();
            edit(&mut b);
            check_block(&tip, &g, &b, LIMITS, true)
        };
        assert!(matches!(
            check(&|b| b.header.version = 9),
            Err(ConsensusError::UnsupportedVersion { got: 9, .. })
        ));
        assert!(matches!(
            check(&|b| b.header.parent_hash = Hash([1; 32])),
            Err(ConsensusError::ParentMismatch { .. })
        ));
        assert!(matches!(
            check(&|b| b.header.timestamp_ms = 999),
            Err(ConsensusError::TimestampBeforeParent {
                parent: 1_000,
                got: 999
            })
        ));
        assert!(matches!(
            check(&|b| b.header.mmr_root = Hash([1; 32])),
            Err(ConsensusError::MmrRootMismatch { .. })
        ));
        assert!(matches!(
            check(&|b| b.header.mmr_leaf_count = 5),
            Err(ConsensusError::MmrLeafCountMismatch {
                expected: 1,
                got: 5
            })
        ));
        assert!(matches!(
            check(&|b| b.header.validators_hash = Hash([1; 32])),
            Err(ConsensusError::ValidatorsHashMismatch { .. })
        ));
        assert!(matches!(
            check(&|b| b.header.next_validators_hash = Hash([1; 32])),
            Err(ConsensusError::NextValidatorsHashMismatch { .. })
        ));
        assert!(matches!(
            check(&|b| b.header.proposer = testkit::key(77).public_key()),
            Err(ConsensusError::ProposerNotInSet { .. })
        ));
        assert!(matches!(
            check(&|b| b.header.event_count = 2),
            Err(ConsensusError::EventCountMismatch {
                header: 2,
                events: 3
            })
        ));
        assert!(matches!(
            check(&|b| b.header.events_root = Hash([1; 32])),
            Err(ConsensusError::EventsRootMismatch { .. })
        ));
        assert!(matches!(
            check(&|b| b.header.height = 2),
            Err(ConsensusError::WrongHeight {
                expected: 1,
                got: 2
            })
        ));
        let limits = BlockLimits {
            max_events: 2,
            ..LIMITS
        };
        assert!(matches!(
            check_block(&tip, &g, &good, limits, true),
            Err(ConsensusError::TooManyEvents { count: 3, max: 2 })
        ));
        let limits = BlockLimits {
            max_bytes: 100,
            ..LIMITS
        };
        assert!(matches!(
            check_block(&tip, &g, &good, limits, true),
            Err(ConsensusError::BlockTooLarge { max: 100, .. })
        ));
    }

    #[test]
    fn rejects_duplicate_and_invalid_events_with_a_matching_root() {
        let (g, tip) = setup();
        let proposer = g.validators.proposer(1, 0).key.clone();
        let mut dup = events(3);
        dup.push(dup[1].clone());
        let header = tip.next_header(&g, proposer.clone(), &dup, 2_000);
        let block = Block {
            header,
            events: dup,
        };
        assert!(matches!(
            check_block(&tip, &g, &block, LIMITS, true),
            Err(ConsensusError::DuplicateEvent {
                first: 1,
                second: 3,
                ..
            })
        ));
        let mut bad = events(3);
        bad[2].event.actor = "mallory".into();
        let header = tip.next_header(&g, proposer, &bad, 2_000);
        let block = Block {
            header,
            events: bad,
        };
        assert!(matches!(
            check_block(&tip, &g, &block, LIMITS, true),
            Err(ConsensusError::InvalidEvent { index: 2, .. })
        ));
        // A block learned with its commit is not re-validated event by event.
        assert_eq!(check_block(&tip, &g, &block, LIMITS, false), Ok(()));
    }

    #[test]
    fn proposal_context_checks() {
        let (g, tip) = setup();
        let other = g.validators.proposer(1, 1).key.clone();
        let block = build_block(&tip, &g, other, Vec::new(), 2_000, LIMITS);
        assert!(matches!(
            check_proposal(&g.validators, 0, None, &block.header),
            Err(ConsensusError::WrongProposer { .. })
        ));
        assert_eq!(
            check_proposal(&g.validators, 2, Some(1), &block.header),
            Ok(())
        );
        assert_eq!(
            check_proposal(&g.validators, 2, Some(2), &block.header),
            Err(ConsensusError::PolRoundNotBefore {
                round: 2,
                pol_round: 2
            })
        );
        assert!(matches!(
            timestamp_not_in_future(&block.header, 1_000, 999),
            Err(ConsensusError::TimestampInFuture { got: 2_000, .. })
        ));
        assert_eq!(timestamp_not_in_future(&block.header, 1_000, 1_000), Ok(()));
    }
}
