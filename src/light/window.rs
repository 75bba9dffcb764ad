//! The recent verified headers, kept to recognise a fork: a different header at a height the
//! client already holds, signed by more than two thirds of the same validator set.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::chain::{BlockHash, BlockHeader, TrustedHeader, ValidatorSet};
use crate::verify::{TrustedState, Verifier, VerifyError};

/// One held height.
#[derive(Clone, Debug)]
pub(crate) struct Held {
    pub hash: BlockHash,
    /// The verified header with its commit, and the set that signed it; `None` at the anchor
    /// (the checkpoint's block or the stored head), which is trusted without a commit.
    pub signed: Option<(TrustedHeader, Arc<ValidatorSet>)>,
}

/// The last `capacity` verified heights.
#[derive(Clone, Debug)]
pub(crate) struct Window {
    held: BTreeMap<u64, Held>,
    capacity: usize,
}

/// What a header seen at a held height turns out to be.
#[derive(Debug)]
pub(crate) enum Conflict {
    /// The same header (or a height no longer held): nothing to say.
    None,
    /// A different header, validly signed by the set that signed ours: a fork.
    Fork(Box<TrustedHeader>),
    /// A different header at the anchor, which has no commit to compare with.
    ContradictsAnchor(BlockHash),
    /// A different header that does not verify: the peer is at fault.
    Invalid(VerifyError),
}

impl Window {
    pub fn new(capacity: usize) -> Self {
        Window {
            held: BTreeMap::new(),
            capacity,
        }
    }

    pub fn insert(&mut self, height: u64, held: Held) {
        self.held.insert(height, held);
        while self.held.len() > self.capacity {
            self.held.pop_first();
        }
    }

    pub fn get(&self, height: u64) -> Option<&Held> {
        self.held.get(&height)
    }

    /// Compares `theirs` with the held header at its height. A different header counts as a
    /// fork only if it passes every check the verifier makes except the parent link: same
    /// chain and height, signed by the set that signed ours (or, at a hand-over, carrying the
    /// set it announces), commit for this header, more than 2/3 of the power with valid
    /// signatures, not past `now_ms` + drift, and consistent with the pinned checkpoint.
    pub fn check(&self, verifier: &Verifier, theirs: &TrustedHeader, now_ms: u64) -> Conflict {
        let height = theirs.header.height;
        let Some(held) = self.held.get(&height) else {
            return Conflict::None;
        };
        if theirs.header.hash() == held.hash {
            return Conflict::None;
        }
        let Some((ours, signers)) = &held.signed else {
            return Conflict::ContradictsAnchor(held.hash);
        };
        if height == 0 {
            return Conflict::ContradictsAnchor(held.hash);
        }
        match verify_unlinked(verifier, &ours.header, signers, theirs, now_ms) {
            Ok(()) => Conflict::Fork(Box::new(theirs.clone())),
            Err(e) => Conflict::Invalid(e),
        }
    }
}

/// Verifies `theirs` as the verifier would, except for the link to a parent: `like` is any
/// header of ours (for the chain id), `signers` the set we trust to sign at `theirs`' height.
/// The stand-in parent has `theirs`' parent hash, the height below and no time constraint.
pub(crate) fn verify_unlinked(
    verifier: &Verifier,
    like: &BlockHeader,
    signers: &Arc<ValidatorSet>,
    theirs: &TrustedHeader,
    now_ms: u64,
) -> Result<(), VerifyError> {
    let height = theirs.header.height;
    let parent = TrustedState {
        header: BlockHeader {
            height: height.saturating_sub(1),
            timestamp_ms: 0,
            ..like.clone()
        },
        hash: theirs.header.parent_hash,
        next_validators: Arc::clone(signers),
    };
    if height == 0 {
        // Genesis has no parent: nothing can sign it but the checkpoint itself.
        return Err(VerifyError::NonSequentialHeight { trusted: 0, got: 0 });
    }
    verifier.verify(&parent, theirs, now_ms).map(|_| ())
}
