//! Signatures checked ahead of their turn.
//!
//! A range's headers can only be verified in height order: each needs the state after the one
//! before. Their signatures need much less: the set that signs them, which is known long before
//! the range's turn (it only changes at a hand-over). So a node can batch-verify the commit
//! signatures of a range as soon as it arrives, on another thread, against the set it expects,
//! and remember which (key, message, signature) triples passed. When the range's turn comes,
//! [`Verifier::verify_range`](super::Verifier::verify_range) runs every check as usual but
//! skips the cryptography of the triples found here.
//!
//! Sound whatever was guessed: an entry is a triple whose signature verified for that key and
//! message, so finding it proves exactly what verifying it again would. A wrong guess of the
//! set (a hand-over the guesser did not know of) or a bad signature only leaves the triples out,
//! and the verifier checks them itself. Entries are taken out when used, and the oldest are
//! dropped beyond a capacity, so ranges fetched and then discarded cannot make it grow.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::predicates as check;
use super::signatures;
use crate::chain::{BlockHeader, Commit, ValidatorSet};
use crate::crypto::ed25519::{self, BatchItem};

/// A header as [`SignatureCache::check_ahead`] takes it: the header, its commit, and the set it
/// announces (at a hand-over).
pub type HeaderView<'a> = (&'a BlockHeader, &'a Commit, Option<&'a ValidatorSet>);

/// What identifies a checked triple: BLAKE3 of key, signature and message.
type Key = [u8; 32];

fn key_of(item: &BatchItem<'_>) -> Key {
    let mut h = blake3::Hasher::new();
    h.update(item.key.as_bytes());
    h.update(&item.signature.0);
    h.update(item.message);
    *h.finalize().as_bytes()
}

/// Triples whose signatures verified, shared by the threads that check them early and the
/// verifier that uses them.
#[derive(Debug)]
pub struct SignatureCache {
    capacity: usize,
    inner: Mutex<Entries>,
    /// Triples found here by the verifier so far.
    used: AtomicU64,
}

#[derive(Debug, Default)]
struct Entries {
    present: HashSet<Key>,
    /// Insertion order, for dropping the oldest (may still name entries already taken).
    order: VecDeque<Key>,
}

impl SignatureCache {
    /// A cache of at most `capacity` triples (a 128-block range of 100 validators needs about
    /// 8,700).
    pub fn new(capacity: usize) -> Arc<SignatureCache> {
        Arc::new(SignatureCache {
            capacity,
            inner: Mutex::new(Entries::default()),
            used: AtomicU64::new(0),
        })
    }

    /// Triples held now.
    pub fn len(&self) -> usize {
        self.lock().present.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many triples the verifier has found here (and so not verified again) so far.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves the sets consistent (each step is one insert
        // or removal), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(&self, keys: Vec<Key>) {
        let mut entries = self.lock();
        for key in keys {
            if entries.present.insert(key) {
                entries.order.push_back(key);
            }
        }
        while entries.order.len() > self.capacity {
            if let Some(old) = entries.order.pop_front() {
                entries.present.remove(&old);
            }
        }
    }

    /// Removes from `items` those found here (and forgets them: each is used once).
    pub(crate) fn take_verified(&self, items: &mut Vec<BatchItem<'_>>) {
        let mut entries = self.lock();
        if entries.present.is_empty() {
            return;
        }
        let before = items.len();
        items.retain(|item| !entries.present.remove(&key_of(item)));
        self.used
            .fetch_add((before - items.len()) as u64, Ordering::Relaxed);
        if entries.present.is_empty() {
            entries.order.clear();
        }
    }

    /// Batch-verifies the needed commit signatures of consecutive headers, in order, given as
    /// (header, commit, announced next set), against `signers`, the set expected to sign the
    /// first, following the hand-overs the headers announce; remembers them if the batch
    /// passes. Nothing else about the headers is checked here, and nothing is remembered from a
    /// header whose commit is malformed for that set, or at all if any signature fails: the
    /// verifier sees to those. Returns how many triples were added.
    pub fn check_ahead<'a>(
        &self,
        signers: &Arc<ValidatorSet>,
        headers: impl IntoIterator<Item = HeaderView<'a>>,
    ) -> usize {
        let mut signers = Arc::clone(signers);
        let mut plan = Vec::new();
        for (header, commit, next) in headers {
            if let Ok(needed) = check::sufficient_distinct_signers(&signers, commit) {
                let digest = commit.vote(&header.chain_id).digest();
                plan.push((Arc::clone(&signers), commit, needed, digest));
            }
            if let (true, Some(next)) = (header.hands_over(), next) {
                signers = Arc::new(next.clone());
            }
        }
        let mut items = Vec::new();
        for (set, commit, needed, digest) in &plan {
            signatures::push_items(&mut items, set, commit, *needed, digest);
        }
        if items.is_empty() || ed25519::verify_batch(&items).is_err() {
            return 0;
        }
        let keys: Vec<Key> = items.iter().map(key_of).collect();
        let added = keys.len();
        self.insert(keys);
        added
    }
}
