//! The verifier: composes the predicates for one header or a contiguous range.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::cache::SignatureCache;
use super::error::{RangeError, VerifyError};
use super::predicates as check;
use super::signatures::{self, SignatureMode};
use crate::chain::{
    BlockHash, BlockHeader, Checkpoint, CheckpointError, Hash, TrustedHeader, ValidatorSet,
};

/// Default allowance for a proposer's clock running ahead of ours: 15 s.
pub const DEFAULT_MAX_CLOCK_DRIFT_MS: u64 = 15_000;

/// What a verifier trusts: a verified header, its hash, and the set that signs the next one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedState {
    pub header: BlockHeader,
    pub hash: BlockHash,
    pub next_validators: Arc<ValidatorSet>,
}

impl TrustedState {
    /// Trust a checkpoint's block: `header` must be exactly the checkpointed header.
    pub fn from_checkpoint(
        checkpoint: &Checkpoint,
        header: BlockHeader,
    ) -> Result<TrustedState, CheckpointError> {
        checkpoint.check_header(&header)?;
        Ok(TrustedState {
            hash: checkpoint.block_hash,
            header,
            next_validators: Arc::new(checkpoint.validators.clone()),
        })
    }

    pub fn height(&self) -> u64 {
        self.header.height
    }
}

/// Header verification settings. Pure: the current time is an argument of each call.
#[derive(Clone, Debug)]
pub struct Verifier {
    max_clock_drift_ms: u64,
    mode: SignatureMode,
    pinned: BTreeMap<u64, Checkpoint>,
    /// Threads a range's signature batch is split over (1: the caller's thread only).
    threads: usize,
    /// Signatures already checked ahead of their range's turn, skipped by `verify_range`.
    cache: Option<Arc<SignatureCache>>,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            max_clock_drift_ms: DEFAULT_MAX_CLOCK_DRIFT_MS,
            mode: SignatureMode::Batch,
            pinned: BTreeMap::new(),
            threads: 1,
            cache: None,
        }
    }
}

/// A header that passed every check but the signature cryptography.
struct Checked<'a> {
    state: TrustedState,
    /// The set that signed this header (the previous state's next set).
    signers: Arc<ValidatorSet>,
    candidate: &'a TrustedHeader,
    digest: Hash,
    needed: usize,
}

impl Verifier {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_max_clock_drift_ms(mut self, ms: u64) -> Self {
        self.max_clock_drift_ms = ms;
        self
    }

    pub fn with_signature_mode(mut self, mode: SignatureMode) -> Self {
        self.mode = mode;
        self
    }

    /// Splits the signature batch of a large range ([`Verifier::verify_range`]) over up to
    /// `threads` threads (scoped, joined before it returns). Each part is a batch of its own,
    /// with coefficients derived from its own items, so the rule is unchanged: the range passes
    /// only if every part does. On wasm32 (no threads) the setting is ignored. Default: 1.
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Lets [`Verifier::verify_range`] skip the cryptography of signatures found in `cache`
    /// (checked ahead by [`SignatureCache::check_ahead`]); every other check still runs.
    pub fn with_cache(mut self, cache: Arc<SignatureCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Pins a checkpoint: a header at its height must be its block.
    pub fn with_checkpoint(mut self, checkpoint: Checkpoint) -> Self {
        self.pinned.insert(checkpoint.height, checkpoint);
        self
    }

    /// Every check except signature cryptography, in a fixed order.
    fn check<'a>(
        &self,
        trusted: &TrustedState,
        candidate: &'a TrustedHeader,
        now_ms: u64,
    ) -> Result<Checked<'a>, VerifyError> {
        let header = &candidate.header;
        let signers = &trusted.next_validators;
        check::version_supported(header)?;
        check::same_chain(&trusted.header, header)?;
        check::next_height(&trusted.header, header)?;
        check::links_to_parent(&trusted.hash, header)?;
        check::timestamp_in_bounds(&trusted.header, header, now_ms, self.max_clock_drift_ms)?;
        check::mmr_covers_all_ancestors(header)?;
        check::empty_block_has_zero_root(header)?;
        check::signed_by_trusted_set(signers, header)?;
        check::proposer_in_set(signers, header)?;
        let hash = header.hash();
        check::commit_targets_header(header, &hash, &candidate.commit)?;
        let needed = check::sufficient_distinct_signers(signers, &candidate.commit)?;
        let next_validators =
            check::next_set_matches(signers, header, candidate.next_validators.as_ref())?;
        check::matches_pinned_checkpoint(self.pinned.get(&header.height), header)?;
        Ok(Checked {
            digest: candidate.commit.vote(&header.chain_id).digest(),
            state: TrustedState {
                header: header.clone(),
                hash,
                next_validators,
            },
            signers: Arc::clone(signers),
            candidate,
            needed,
        })
    }

    fn verify_signatures(&self, c: &Checked<'_>) -> Result<(), VerifyError> {
        signatures::verify_commit(
            self.mode,
            &c.signers,
            &c.candidate.commit,
            c.needed,
            &c.digest,
        )
    }

    /// Verifies `candidate` as the header right after `trusted`; returns the new trusted state.
    pub fn verify(
        &self,
        trusted: &TrustedState,
        candidate: &TrustedHeader,
        now_ms: u64,
    ) -> Result<TrustedState, VerifyError> {
        let checked = self.check(trusted, candidate, now_ms)?;
        self.verify_signatures(&checked)?;
        Ok(checked.state)
    }

    /// Verifies a contiguous range of headers after `trusted`, checking all their needed
    /// signatures in one batch (in batch mode). Returns the state after the last header.
    ///
    /// On failure the error names the first header that fails any check, as if the headers
    /// had been verified one by one, and carries the last state that did verify.
    pub fn verify_range(
        &self,
        trusted: &TrustedState,
        candidates: &[TrustedHeader],
        now_ms: u64,
    ) -> Result<TrustedState, RangeFailure> {
        let mut checked: Vec<Checked<'_>> = Vec::with_capacity(candidates.len());
        let mut structural = None;
        for (position, candidate) in candidates.iter().enumerate() {
            let previous = checked.last().map_or(trusted, |c| &c.state);
            match self.check(previous, candidate, now_ms) {
                Ok(c) => checked.push(c),
                Err(error) => {
                    structural = Some(RangeError {
                        position,
                        height: candidate.header.height,
                        error,
                    });
                    break;
                }
            }
        }

        if self.mode == SignatureMode::Batch && structural.is_none() {
            let total: usize = checked.iter().map(|c| c.needed).sum();
            let mut items = Vec::with_capacity(total);
            for c in &checked {
                signatures::push_items(
                    &mut items,
                    &c.signers,
                    &c.candidate.commit,
                    c.needed,
                    &c.digest,
                );
            }
            if let Some(cache) = &self.cache {
                cache.take_verified(&mut items);
            }
            if signatures::batch_ok_split(&items, self.threads) {
                return Ok(checked.pop().map_or_else(|| trusted.clone(), |c| c.state));
            }
        }

        // Find the first header whose signatures fail, one header at a time.
        let mut last_good: Option<Box<TrustedState>> = None;
        for (position, c) in checked.into_iter().enumerate() {
            if let Err(error) = self.verify_signatures(&c) {
                return Err(RangeFailure {
                    error: RangeError {
                        position,
                        height: c.state.header.height,
                        error,
                    },
                    last_good,
                });
            }
            last_good = Some(Box::new(c.state));
        }
        match structural {
            Some(error) => Err(RangeFailure { error, last_good }),
            None => Ok(last_good.map_or_else(|| trusted.clone(), |s| *s)),
        }
    }
}

/// Why a range failed, with the state after the longest verified prefix (if any).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct RangeFailure {
    pub error: RangeError,
    /// State after the last header before the failing one; `None` if the first one failed.
    pub last_good: Option<Box<TrustedState>>,
}
