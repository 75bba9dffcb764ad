//! The checks a header must pass, one small function each.
//!
//! Each predicate looks at one property and returns the one [`VerifyError`] naming it, so the
//! full list of what is verified is this file, and every rejection can be tested alone. The
//! [`Verifier`](super::Verifier) composes them; the signature cryptography is in
//! [`signatures`](super::signatures).

use std::sync::Arc;

use super::error::VerifyError;
use crate::chain::{
    BlockHash, BlockHeader, Checkpoint, Commit, Hash, ValidatorSet, PROTOCOL_VERSION,
};

pub fn version_supported(header: &BlockHeader) -> Result<(), VerifyError> {
    if header.version != PROTOCOL_VERSION {
        return Err(VerifyError::UnsupportedVersion {
            supported: PROTOCOL_VERSION,
            got: header.version,
        });
    }
    Ok(())
}

pub fn same_chain(trusted: &BlockHeader, header: &BlockHeader) -> Result<(), VerifyError> {
    if header.chain_id != trusted.chain_id {
        return Err(VerifyError::ChainIdMismatch {
            expected: trusted.chain_id.clone(),
            got: header.chain_id.clone(),
        });
    }
    Ok(())
}

pub fn next_height(trusted: &BlockHeader, header: &BlockHeader) -> Result<(), VerifyError> {
    if trusted.height.checked_add(1) != Some(header.height) {
        return Err(VerifyError::NonSequentialHeight {
            trusted: trusted.height,
            got: header.height,
        });
    }
    Ok(())
}

pub fn links_to_parent(trusted_hash: &BlockHash, header: &BlockHeader) -> Result<(), VerifyError> {
    if header.parent_hash != *trusted_hash {
        return Err(VerifyError::ParentHashMismatch {
            expected: *trusted_hash,
            got: header.parent_hash,
        });
    }
    Ok(())
}

/// Not before the parent; not more than `max_drift_ms` after `now_ms`.
pub fn timestamp_in_bounds(
    trusted: &BlockHeader,
    header: &BlockHeader,
    now_ms: u64,
    max_drift_ms: u64,
) -> Result<(), VerifyError> {
    if header.timestamp_ms < trusted.timestamp_ms {
        return Err(VerifyError::TimestampBeforeParent {
            parent: trusted.timestamp_ms,
            got: header.timestamp_ms,
        });
    }
    if header.timestamp_ms > now_ms.saturating_add(max_drift_ms) {
        return Err(VerifyError::TimestampInFuture {
            now: now_ms,
            max_drift: max_drift_ms,
            got: header.timestamp_ms,
        });
    }
    Ok(())
}

/// The MMR holds exactly the blocks before this one.
pub fn mmr_covers_all_ancestors(header: &BlockHeader) -> Result<(), VerifyError> {
    if header.mmr_leaf_count != header.height {
        return Err(VerifyError::MmrLeafCountMismatch {
            expected: header.height,
            got: header.mmr_leaf_count,
        });
    }
    Ok(())
}

pub fn empty_block_has_zero_root(header: &BlockHeader) -> Result<(), VerifyError> {
    if header.event_count == 0 && header.events_root != Hash::ZERO {
        return Err(VerifyError::EmptyEventsRoot);
    }
    Ok(())
}

/// The header is signed by the set the trusted header named as next.
pub fn signed_by_trusted_set(
    trusted_next: &ValidatorSet,
    header: &BlockHeader,
) -> Result<(), VerifyError> {
    if header.validators_hash != trusted_next.hash() {
        return Err(VerifyError::ValidatorSetMismatch {
            expected: trusted_next.hash(),
            got: header.validators_hash,
        });
    }
    Ok(())
}

pub fn proposer_in_set(set: &ValidatorSet, header: &BlockHeader) -> Result<(), VerifyError> {
    if set.index_of(&header.proposer).is_none() {
        return Err(VerifyError::ProposerNotInSet {
            proposer: header.proposer.to_hex(),
        });
    }
    Ok(())
}

/// The commit finalizes this very header.
pub fn commit_targets_header(
    header: &BlockHeader,
    hash: &BlockHash,
    commit: &Commit,
) -> Result<(), VerifyError> {
    if commit.height != header.height {
        return Err(VerifyError::CommitHeightMismatch {
            expected: header.height,
            got: commit.height,
        });
    }
    if commit.block_hash != *hash {
        return Err(VerifyError::CommitHashMismatch {
            expected: *hash,
            got: commit.block_hash,
        });
    }
    Ok(())
}

/// Checks that every signer is a distinct member named in increasing order, and that the
/// signers hold strictly more than 2/3 of the power. Returns how many leading signatures
/// reach that threshold: only those need their cryptography checked (as in Tendermint's
/// light verification); the rest are checked structurally here and otherwise ignored.
pub fn sufficient_distinct_signers(
    set: &ValidatorSet,
    commit: &Commit,
) -> Result<usize, VerifyError> {
    let mut signed: u64 = 0;
    let mut needed = None;
    let mut previous: Option<u32> = None;
    for (position, sig) in commit.signatures.iter().enumerate() {
        let index = sig.validator_index;
        let validator = set
            .get(index as usize)
            .ok_or(VerifyError::UnknownValidator {
                index,
                set_len: set.len(),
            })?;
        if let Some(previous) = previous {
            if index == previous {
                return Err(VerifyError::DuplicateSigner { index });
            }
            if index < previous {
                return Err(VerifyError::UnsortedSignatures { previous, index });
            }
        }
        previous = Some(index);
        if needed.is_none() {
            // Cannot overflow: the set's total power is capped far below u64::MAX.
            signed += validator.power;
            if set.is_supermajority(signed) {
                needed = Some(position + 1);
            }
        }
    }
    needed.ok_or(VerifyError::InsufficientVotingPower {
        signed,
        total: set.total_power(),
    })
}

/// At a hand-over the header must carry the announced set; otherwise it must carry none.
/// Returns the set that signs the next block.
pub fn next_set_matches(
    current: &Arc<ValidatorSet>,
    header: &BlockHeader,
    next: Option<&ValidatorSet>,
) -> Result<Arc<ValidatorSet>, VerifyError> {
    match (header.hands_over(), next) {
        (false, None) => Ok(Arc::clone(current)),
        (false, Some(_)) => Err(VerifyError::UnexpectedNextValidators),
        (true, None) => Err(VerifyError::MissingNextValidators {
            announced: header.next_validators_hash,
        }),
        (true, Some(set)) if set.hash() != header.next_validators_hash => {
            Err(VerifyError::NextValidatorsHashMismatch {
                expected: header.next_validators_hash,
                got: set.hash(),
            })
        }
        (true, Some(set)) => Ok(Arc::new(set.clone())),
    }
}

/// A header at a pinned checkpoint's height must be that checkpoint's block.
pub fn matches_pinned_checkpoint(
    pinned: Option<&Checkpoint>,
    header: &BlockHeader,
) -> Result<(), VerifyError> {
    match pinned {
        Some(c) if c.height == header.height => Ok(c.check_header(header)?),
        _ => Ok(()),
    }
}
