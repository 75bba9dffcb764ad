//! Where a light client's verified headers live between runs.
//!
//! The machine never calls a store: it emits [`Action::StoreHeaders`](super::Action) and the
//! driver writes them (with whatever backend and whatever async-ness it has), then feeds back
//! [`Input::Stored`](super::Input). On restart the driver reads the stored head and the set
//! that signs the block after it, and builds the machine with
//! [`LightClient::resume`](super::LightClient::resume) (or [`LightClient::from_store`] for a
//! [`LightStore`]).
//!
//! [`LightStore`] is the small synchronous interface of the in-memory store below and of a
//! native command's store; an IndexedDB backend keeps the same layout (headers by height,
//! validator sets by the height that announces them, hand-over commits, metadata) behind
//! async calls. Both write the values of [`super::stored`]'s shared encoding: a set in full
//! or as a delta against the previous one, a commit as its quorum prefix.

use std::collections::BTreeMap;
use std::fmt;

use super::error::LightError;
use super::machine::LightClient;
use super::options::LightOptions;
use super::stored::{
    check_set, encode_append, CorruptEntry, RebuiltSet, SetWalk, StoredHeader, StoredValidators,
    VerifiedHeader, Walk,
};
use crate::chain::{Checkpoint, Decode, Encode, ValidatorSet};

/// A synchronous light-client store.
pub trait LightStore {
    type Error: std::error::Error + Send + Sync + 'static;

    /// The checkpoint the stored headers descend from.
    fn checkpoint(&self) -> Result<Option<Checkpoint>, Self::Error>;

    /// Records the checkpoint; a store holds the headers of one checkpoint only.
    fn set_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), Self::Error>;

    /// Appends consecutive verified headers after the head, atomically: all or none.
    fn append(&mut self, headers: &[VerifiedHeader]) -> Result<(), Self::Error>;

    /// The highest stored header.
    fn head(&self) -> Result<Option<StoredHeader>, Self::Error>;

    fn header(&self, height: u64) -> Result<Option<StoredHeader>, Self::Error>;

    /// The set that signs block `height + 1`: the last set announced at or below `height`.
    fn next_validators(&self, height: u64) -> Result<Option<ValidatorSet>, Self::Error>;

    /// Keeps only the last `keep` headers (and the validator sets they still need).
    fn prune(&mut self, keep: u64) -> Result<(), Self::Error>;

    /// How many headers the store holds.
    fn header_count(&self) -> Result<u64, Self::Error>;

    /// Whether `error` says the stored data is corrupt (rather than a refused write).
    fn is_corrupt(_error: &Self::Error) -> bool {
        false
    }
}

impl<P: Clone + Ord + fmt::Debug> LightClient<P> {
    /// Opens a client on `store`: resumes from its head if it has one (for the same
    /// checkpoint), starts from the checkpoint otherwise (and records it).
    pub fn from_store<S: LightStore>(
        store: &mut S,
        checkpoint: Checkpoint,
        options: LightOptions,
        now_ms: u64,
    ) -> Result<Self, LightError> {
        let store_err = |e: S::Error| LightError::Store(e.to_string());
        match store.checkpoint().map_err(store_err)? {
            Some(stored) if stored != checkpoint => {
                return Err(LightError::StoreCheckpointMismatch {
                    stored: stored.block_hash,
                    given: checkpoint.block_hash,
                })
            }
            Some(_) => {}
            None => store.set_checkpoint(&checkpoint).map_err(store_err)?,
        }
        let Some(head) = store.head().map_err(store_err)? else {
            return LightClient::new(checkpoint, options, now_ms);
        };
        let next = store
            .next_validators(head.height())
            .map_err(store_err)?
            .ok_or_else(|| {
                LightError::Resume(format!(
                    "no validator set stored for height {}",
                    head.height()
                ))
            })?;
        LightClient::resume(checkpoint, head, next, options, now_ms)
    }
}

/// Why a [`MemoryLightStore`] refused a write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LightStoreError {
    #[error("headers must continue the stored head: expected height {expected}, got {got}")]
    NotContiguous { expected: u64, got: u64 },
    #[error("header {height} does not link to the stored header below it")]
    ParentMismatch { height: u64 },
    #[error("the first header stored must carry the set that signs its successor")]
    MissingValidators,
    #[error("the store holds another checkpoint")]
    OtherCheckpoint,
    /// A stored value does not decode, or a rebuilt validator set is not the one the stored
    /// headers name.
    #[error(transparent)]
    Corrupt(#[from] CorruptEntry),
}

/// Headers, sets and metadata in memory. Headers are kept encoded, as a persistent backend
/// would keep them, so [`MemoryLightStore::bytes`] measures the real size.
#[derive(Clone, Debug, Default)]
pub struct MemoryLightStore {
    checkpoint: Option<Checkpoint>,
    headers: BTreeMap<u64, Vec<u8>>,
    /// Height that announces a set → the set that signs the blocks after it, as an encoded
    /// [`StoredValidators`] (in full or as a delta against the previous entry).
    validators: BTreeMap<u64, Vec<u8>>,
    /// Commits kept at hand-overs (their quorum prefix), encoded.
    commits: BTreeMap<u64, Vec<u8>>,
    writes: u64,
}

/// Sizes of what a [`MemoryLightStore`] holds, in bytes of canonical encoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreBytes {
    pub headers: usize,
    pub header_count: usize,
    pub validator_sets: usize,
    pub commits: usize,
}

impl StoreBytes {
    pub fn total(&self) -> usize {
        self.headers + self.validator_sets + self.commits
    }

    /// Everything stored, per header.
    pub fn per_header(&self) -> f64 {
        self.total() as f64 / self.header_count.max(1) as f64
    }
}

impl MemoryLightStore {
    /// The append rules, shared by every store so they all refuse the same writes: `headers`
    /// must continue `head` (the stored head, `None` for an empty store) height by height and
    /// hash by hash, and the first header of an empty store must carry the set that signs its
    /// successor (without it the store could not resume).
    pub(crate) fn check_append(
        head: Option<&StoredHeader>,
        headers: &[VerifiedHeader],
    ) -> Result<(), LightStoreError> {
        if head.is_none() && headers.first().is_some_and(|h| h.next_validators.is_none()) {
            return Err(LightStoreError::MissingValidators);
        }
        let mut below = head;
        for h in headers {
            if let Some(b) = below {
                if h.height() != b.height() + 1 {
                    return Err(LightStoreError::NotContiguous {
                        expected: b.height() + 1,
                        got: h.height(),
                    });
                }
                if h.header.header.parent_hash != b.hash {
                    return Err(LightStoreError::ParentMismatch { height: h.height() });
                }
            }
            below = Some(&h.header);
        }
        Ok(())
    }

    pub fn new() -> Self {
        Self::default()
    }

    /// How many [`LightStore::append`] calls succeeded.
    pub fn writes(&self) -> u64 {
        self.writes
    }

    pub fn len(&self) -> usize {
        self.headers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    pub fn bytes(&self) -> StoreBytes {
        StoreBytes {
            headers: self.headers.values().map(Vec::len).sum(),
            header_count: self.headers.len(),
            validator_sets: self.validators.values().map(Vec::len).sum(),
            commits: self.commits.values().map(Vec::len).sum(),
        }
    }

    /// Overwrites the stored validator-set entry at `height` with `bytes`, as a faulty disk
    /// would: for tests of the corruption checks.
    #[doc(hidden)]
    pub fn overwrite_validators(&mut self, height: u64, bytes: Vec<u8>) {
        self.validators.insert(height, bytes);
    }

    fn decode(bytes: &[u8]) -> StoredHeader {
        // Only this store writes these bytes, from valid headers.
        StoredHeader::decode(bytes).expect("stored header decodes")
    }

    /// Rebuilds the set stored at `at` from the last full set and the deltas after it.
    fn rebuild(&self, at: u64) -> Result<RebuiltSet, CorruptEntry> {
        let mut walk = SetWalk::new(at);
        let mut next = at;
        loop {
            match walk.feed(next, self.validators.get(&next).map(Vec::as_slice))? {
                Walk::Read(base) => next = base,
                Walk::Done(set) => return Ok(set),
            }
        }
    }

    /// The set in force after `height`, rebuilt and checked against the stored header that
    /// names it: the header at `height`, the head above it, the lowest one below it.
    fn set_in_force(&self, height: u64) -> Result<Option<RebuiltSet>, CorruptEntry> {
        let Some((&at, _)) = self.validators.range(..=height).next_back() else {
            return Ok(None);
        };
        let set = self.rebuild(at)?;
        let header = self
            .headers
            .range(..=height)
            .next_back()
            .or_else(|| self.headers.first_key_value())
            .map(|(_, b)| Self::decode(b))
            .ok_or_else(|| CorruptEntry::new("validator set", at, "no stored header names it"))?;
        check_set(&set, &header)?;
        Ok(Some(set))
    }
}

impl LightStore for MemoryLightStore {
    type Error = LightStoreError;

    fn is_corrupt(error: &LightStoreError) -> bool {
        matches!(error, LightStoreError::Corrupt(_))
    }

    fn checkpoint(&self) -> Result<Option<Checkpoint>, LightStoreError> {
        Ok(self.checkpoint.clone())
    }

    fn set_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), LightStoreError> {
        match &self.checkpoint {
            Some(c) if c != checkpoint => Err(LightStoreError::OtherCheckpoint),
            _ => {
                self.checkpoint = Some(checkpoint.clone());
                Ok(())
            }
        }
    }

    fn append(&mut self, headers: &[VerifiedHeader]) -> Result<(), LightStoreError> {
        let head = self.head()?;
        Self::check_append(head.as_ref(), headers)?;
        let previous = match &head {
            Some(head) => Some(self.set_in_force(head.height())?.ok_or_else(|| {
                CorruptEntry::new("validator set", head.height(), "none stored for the head")
            })?),
            None => None,
        };
        let encoded = encode_append(previous, headers);
        for h in headers {
            self.headers.insert(h.height(), h.header.encode());
        }
        self.validators.extend(encoded.validators);
        self.commits.extend(encoded.commits);
        self.writes += 1;
        Ok(())
    }

    fn head(&self) -> Result<Option<StoredHeader>, LightStoreError> {
        Ok(self.headers.values().next_back().map(|b| Self::decode(b)))
    }

    fn header(&self, height: u64) -> Result<Option<StoredHeader>, LightStoreError> {
        Ok(self.headers.get(&height).map(|b| Self::decode(b)))
    }

    fn next_validators(&self, height: u64) -> Result<Option<ValidatorSet>, LightStoreError> {
        Ok(self.set_in_force(height)?.map(|s| s.set))
    }

    fn header_count(&self) -> Result<u64, LightStoreError> {
        Ok(self.headers.len() as u64)
    }

    fn prune(&mut self, keep: u64) -> Result<(), LightStoreError> {
        let Some((&head, _)) = self.headers.last_key_value() else {
            return Ok(());
        };
        let lowest = head.saturating_sub(keep.saturating_sub(1));
        // Keep the set in force at `lowest` (announced at or below it) and every later one;
        // the kept entry becomes a full set if it was a delta, so no delta loses its base.
        if let Some((&in_force, bytes)) = self.validators.range(..=lowest).next_back() {
            if !matches!(
                StoredValidators::decode(bytes),
                Ok(StoredValidators::Full(_))
            ) {
                let set = self.rebuild(in_force)?;
                let header = self.headers.get(&lowest).map(|b| Self::decode(b));
                if let Some(header) = header {
                    check_set(&set, &header)?;
                }
                let full = StoredValidators::Full(set.set).encode();
                self.validators.insert(in_force, full);
            }
            self.validators = self.validators.split_off(&in_force);
        }
        self.headers = self.headers.split_off(&lowest);
        self.commits = self.commits.split_off(&lowest);
        Ok(())
    }
}
