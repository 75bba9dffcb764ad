//! Commit signature cryptography: batch first, single verification to name the culprit.

use super::error::VerifyError;
use crate::chain::{Commit, Hash, ValidatorSet};
use crate::crypto::ed25519::{self, BatchItem};

/// How commit signatures are checked. Both modes apply the same signature rule
/// (`crypto::ed25519`), so they accept exactly the same commits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignatureMode {
    /// One batch equation for all needed signatures (of one header, or of a whole range).
    #[default]
    Batch,
    /// One verification per signature.
    Single,
}

/// Appends the first `needed` signatures of `commit` over `digest` to a batch.
pub(crate) fn push_items<'a>(
    items: &mut Vec<BatchItem<'a>>,
    set: &'a ValidatorSet,
    commit: &'a Commit,
    needed: usize,
    digest: &'a Hash,
) {
    for sig in commit.signatures.iter().take(needed) {
        // Indices were checked against the set by `sufficient_distinct_signers`.
        if let Some(v) = set.get(sig.validator_index as usize) {
            items.push(BatchItem {
                key: &v.key,
                message: digest.as_bytes(),
                signature: &sig.signature,
            });
        }
    }
}

/// Verifies the first `needed` signatures one by one; the error names the first bad one.
pub(crate) fn verify_each(
    set: &ValidatorSet,
    commit: &Commit,
    needed: usize,
    digest: &Hash,
) -> Result<(), VerifyError> {
    for sig in commit.signatures.iter().take(needed) {
        let index = sig.validator_index;
        let v = set
            .get(index as usize)
            .ok_or(VerifyError::UnknownValidator {
                index,
                set_len: set.len(),
            })?;
        ed25519::verify(&v.key, digest.as_bytes(), &sig.signature)
            .map_err(|error| VerifyError::InvalidSignature { index, error })?;
    }
    Ok(())
}

/// Verifies one commit's needed signatures in the given mode.
pub(crate) fn verify_commit(
    mode: SignatureMode,
    set: &ValidatorSet,
    commit: &Commit,
    needed: usize,
    digest: &Hash,
) -> Result<(), VerifyError> {
    if mode == SignatureMode::Batch {
        let mut items = Vec::with_capacity(needed);
        push_items(&mut items, set, commit, needed, digest);
        if ed25519::verify_batch(&items).is_ok() {
            return Ok(());
        }
    }
    verify_each(set, commit, needed, digest)
}

/// True if a whole batch verifies.
pub(crate) fn batch_ok(items: &[BatchItem<'_>]) -> bool {
    matches!(ed25519::verify_batch(items), Ok(()))
}
