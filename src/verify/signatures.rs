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

/// Below this many signatures a batch is not split: a thread costs more than it saves.
const MIN_ITEMS_PER_THREAD: usize = 256;

/// [`batch_ok`] over up to `threads` threads: the items are cut into contiguous parts, each
/// verified as a batch of its own on a scoped thread (the first on this one). True only if
/// every part verifies. wasm32 has no threads: one batch.
pub(crate) fn batch_ok_split(items: &[BatchItem<'_>], threads: usize) -> bool {
    let parts = threads.min(items.len() / MIN_ITEMS_PER_THREAD).max(1);
    if parts == 1 || cfg!(target_arch = "wasm32") {
        return batch_ok(items);
    }
    let chunk = items.len().div_ceil(parts);
    let mut chunks = items.chunks(chunk);
    let Some(first) = chunks.next() else {
        return true;
    };
    std::thread::scope(|scope| {
        let others: Vec<_> = chunks
            .map(|part| scope.spawn(move || batch_ok(part)))
            .collect();
        let here = batch_ok(first);
        // A panic in a part is a failed batch; the scope joins every thread before returning.
        here && others.into_iter().all(|t| t.join().unwrap_or(false))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::ed25519::{PublicKey, Signature, SigningKey};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// `n` valid (key, message, signature) triples.
    fn signed(n: usize) -> Vec<(PublicKey, Vec<u8>, Signature)> {
        (0..n)
            .map(|i| {
                let key = SigningKey::from_seed(&[(i % 251) as u8 + 1; 32]);
                let message = (i as u64).to_le_bytes().to_vec();
                let signature = key.sign(&message);
                (key.public_key(), message, signature)
            })
            .collect()
    }

    fn items(signed: &[(PublicKey, Vec<u8>, Signature)]) -> Vec<BatchItem<'_>> {
        signed
            .iter()
            .map(|(key, message, signature)| BatchItem {
                key,
                message,
                signature,
            })
            .collect()
    }

    #[test]
    fn a_split_batch_fails_if_any_part_holds_a_bad_signature() {
        let n = 3 * MIN_ITEMS_PER_THREAD + 7;
        let good = signed(n);
        for threads in [1, 2, 3, 8] {
            assert!(batch_ok_split(&items(&good), threads), "{threads} threads");
        }
        // A bad signature in the first part, in the last part, and at a part boundary.
        for bad in [0, n - 1, n.div_ceil(2), n.div_ceil(3)] {
            let mut tampered = good.clone();
            tampered[bad].2 = tampered[(bad + 1) % n].2;
            for threads in [1, 2, 3] {
                assert!(
                    !batch_ok_split(&items(&tampered), threads),
                    "bad item {bad} passed with {threads} threads"
                );
            }
        }
    }
}
