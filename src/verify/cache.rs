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

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::predicates as check;
use super::signatures;
use crate::chain::{BlockHeader, Commit, ValidatorSet};
use crate::crypto::ed25519::{self, BatchItem, PUBLIC_KEY_LEN, SIGNATURE_LEN};

/// A header as [`SignatureCache::check_ahead`] takes it: the header, its commit, and the set it
/// announces (at a hand-over).
pub type HeaderView<'a> = (&'a BlockHeader, &'a Commit, Option<&'a ValidatorSet>);

/// A key and a signature of it that verified for the message its entry is filed under.
type Pair = ([u8; PUBLIC_KEY_LEN], [u8; SIGNATURE_LEN]);

fn pair_of(item: &BatchItem<'_>) -> Pair {
    (*item.key.as_bytes(), item.signature.0)
}

/// Triples whose signatures verified, shared by the threads that check them early and the
/// verifier that uses them.
///
/// Filed by message (a commit's vote digest: one per block), each with its (key, signature)
/// pairs in the order [`signatures::push_items`] lists them, so the verifier finds a commit's
/// triples with one map lookup and compares them in order, byte for byte. (Keying each triple
/// by a hash of it cost a BLAKE3 and a map operation per signature on both sides.)
#[derive(Debug)]
pub struct SignatureCache {
    capacity: usize,
    inner: Mutex<Entries>,
    /// Triples found here by the verifier so far.
    used: AtomicU64,
}

#[derive(Debug, Default)]
struct Entries {
    by_message: HashMap<Box<[u8]>, Vec<Pair>>,
    /// Triples held in `by_message`.
    triples: usize,
    /// Insertion order, for dropping the oldest (may still name entries already taken).
    order: VecDeque<Box<[u8]>>,
}

impl Entries {
    fn take(&mut self, message: &[u8]) -> Option<Vec<Pair>> {
        let pairs = self.by_message.remove(message)?;
        self.triples -= pairs.len();
        if self.by_message.is_empty() {
            self.order.clear();
        }
        Some(pairs)
    }
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
        self.lock().triples
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many triples the verifier has found here (and so not verified again) so far.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves the entries consistent (each step is one insert
        // or removal with its count), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Files verified `items` (each run of one message becomes one entry) and drops the oldest
    /// entries beyond the capacity.
    fn insert(&self, items: &[BatchItem<'_>]) {
        let mut entries = self.lock();
        for run in items.chunk_by(|a, b| a.message == b.message) {
            let message: Box<[u8]> = run[0].message.into();
            let pairs: Vec<Pair> = run.iter().map(pair_of).collect();
            entries.take(&message);
            entries.triples += pairs.len();
            entries.by_message.insert(message.clone(), pairs);
            entries.order.push_back(message);
        }
        while entries.triples > self.capacity || entries.order.len() > self.capacity {
            let Some(old) = entries.order.pop_front() else {
                break;
            };
            entries.take(&old);
        }
    }

    /// Removes from `items` those found here (and forgets their entries: each is used once).
    pub(crate) fn take_verified(&self, items: &mut Vec<BatchItem<'_>>) {
        let mut entries = self.lock();
        if entries.by_message.is_empty() {
            return;
        }
        let before = items.len();
        let mut left = Vec::with_capacity(before);
        for run in items.chunk_by(|a, b| a.message == b.message) {
            match entries.take(run[0].message) {
                Some(pairs) => {
                    let mut next = 0;
                    left.extend(run.iter().filter(|item| !holds(&pairs, &mut next, item)));
                }
                None => left.extend_from_slice(run),
            }
        }
        self.used
            .fetch_add((before - left.len()) as u64, Ordering::Relaxed);
        *items = left;
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
        self.insert(&items);
        items.len()
    }
}

/// Whether `pairs` holds `item`'s key and signature. The verifier lists a commit's items in
/// the order they were filed, so the pair after the last one found (`next`) is tried first.
fn holds(pairs: &[Pair], next: &mut usize, item: &BatchItem<'_>) -> bool {
    let pair = pair_of(item);
    let found = if pairs.get(*next) == Some(&pair) {
        Some(*next)
    } else {
        pairs.iter().position(|p| *p == pair)
    };
    if let Some(i) = found {
        *next = i + 1;
    }
    found.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::ed25519::{PublicKey, Signature};
    use crate::testkit;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Keys 0..n and their signatures of `message`.
    fn signed(n: u64, message: &[u8]) -> Vec<(PublicKey, Signature)> {
        (0..n)
            .map(|i| {
                let key = testkit::key(i);
                (key.public_key(), key.sign(message))
            })
            .collect()
    }

    fn items<'a>(message: &'a [u8], signed: &'a [(PublicKey, Signature)]) -> Vec<BatchItem<'a>> {
        signed
            .iter()
            .map(|(key, signature)| BatchItem {
                key,
                message,
                signature,
            })
            .collect()
    }

    #[test]
    fn triples_are_found_in_any_order_and_only_under_their_own_message() {
        let (a, b) = (b"digest a".as_slice(), b"digest b".as_slice());
        let (by_a, by_b) = (signed(4, a), signed(4, b));
        let cache = SignatureCache::new(100);
        cache.insert(&items(a, &by_a));
        assert_eq!(cache.len(), 4);

        // Listed in another order, then a triple that is not filed (a's pair under message b)
        // and one of b's own, not filed either.
        let mut wanted = items(a, &by_a);
        wanted.reverse();
        wanted.push(BatchItem {
            key: &by_a[0].0,
            message: b,
            signature: &by_a[0].1,
        });
        wanted.push(items(b, &by_b)[1]);
        cache.take_verified(&mut wanted);
        assert_eq!(wanted.len(), 2, "only the two unfiled triples are left");
        assert!(wanted.iter().all(|item| item.message == b));
        assert_eq!(cache.used(), 4);
        assert!(cache.is_empty());
    }

    #[test]
    fn an_entry_is_used_once() {
        let message = b"digest".as_slice();
        let by = signed(3, message);
        let cache = SignatureCache::new(100);
        cache.insert(&items(message, &by));
        let mut first = items(message, &by[..2]);
        cache.take_verified(&mut first);
        assert!(first.is_empty());
        // The entry went with its first use, the third pair included.
        let mut again = items(message, &by);
        cache.take_verified(&mut again);
        assert_eq!(again.len(), 3);
        assert_eq!(cache.used(), 2);
    }
}
