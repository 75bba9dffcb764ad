//! The full node's chain storage: one synchronous trait, [`ChainStore`], and its backends.
//!
//! - [`MemoryStore`]: maps behind one lock, for tests and in-process tools.
//! - [`RedbStore`]: the on-disk store, one redb write transaction per [`ChainStore::append`].
//!
//! Both run the same append rules (`append.rs` turns a batch of blocks into the exact writes,
//! or the first reason to refuse it), so they accept and reject the same batches. The store holds
//! only finalized blocks, appended in height order; it checks that each block extends the head
//! (height, parent hash, MMR, commit target, events), not the commit signatures: the caller has
//! verified those.
//!
//! The trait is synchronous: the node calls it directly for reads and for the one-block appends
//! of consensus; synced batches are appended on a writer thread of their own
//! (`node::sync_driver`), so the node loop keeps downloading and verifying meanwhile. Free
//! functions on top of it build event proofs ([`event_proof`]) and MMR roots ([`mmr_root_at`])
//! from the stored MMR nodes.

mod append;
mod memory;
mod redb;

use std::cell::RefCell;
use std::fmt;

use crate::chain::{
    BlockHash, Decode, DecodeError, Encode, EventId, FinalizedBlock, Genesis, Hash, Reader,
    TrustedHeader, ValidatorSet, Writer,
};
use crate::proof::mmr::{peaks_at, MmrNodes, MmrPeaks};
use crate::proof::EventProof;
use crate::protocol::snapshot::Snapshot;

pub use self::memory::MemoryStore;
pub use self::redb::{RedbStore, SCHEMA_VERSION};

/// The highest committed block and the chain MMR after it (over blocks `0..=height`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub height: u64,
    pub hash: BlockHash,
    /// `height + 1` leaves: the root the block at `height + 1` must commit to.
    pub peaks: MmrPeaks,
}

/// Where an event is: block height and position among the block's events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EventLocation {
    pub height: u64,
    pub index: u32,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("block at height {got} does not extend the store: expected height {expected_height}")]
    NotContiguous { expected_height: u64, got: u64 },
    #[error("block {height} names parent {got}, expected {expected} (the head's hash)")]
    ParentMismatch {
        height: u64,
        expected: BlockHash,
        got: BlockHash,
    },
    #[error("block {height} commits to an MMR root or leaf count other than the store's")]
    MmrMismatch { height: u64 },
    #[error("the commit given for block {height} is for another block or height")]
    CommitMismatch { height: u64 },
    #[error("block {height}'s events do not match its header's event count and events root")]
    BodyMismatch { height: u64 },
    #[error(
        "the store has schema version {found}, this build reads version {expected}: \
         use a fresh data directory (resync) or a build that matches the store"
    )]
    SchemaMismatch { found: u32, expected: u32 },
    #[error("the store already holds blocks up to height {height}: a snapshot starts only an empty store")]
    NotEmpty { height: u64 },
    #[error("the snapshot's parts do not agree with its header: {0}")]
    InvalidSnapshot(String),
    #[error("corrupt store: {0}")]
    Corrupt(String),
    #[error("storage backend: {0}")]
    Backend(String),
    #[error("storage I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Storage of a finalized chain, as the full node uses it. Every method is one consistent view
/// or one atomic change: a failed [`append`](ChainStore::append) writes nothing.
pub trait ChainStore: Send + Sync {
    /// Highest committed block (height, block hash, MMR peaks after it), `None` if empty.
    fn head(&self) -> Result<Option<Head>, StoreError>;

    /// Appends finalized blocks atomically: all of them or, on any error, none.
    ///
    /// Each block must be at head + 1 with `parent_hash` = the head's hash (the first block of
    /// an empty store at height 0 with a zero parent), its header must commit to the store's MMR
    /// before it (`mmr_root`, `mmr_leaf_count`), its commit must be for its hash and height,
    /// and its events must match the header's `event_count` and `events_root`. Writes the block,
    /// its trusted header, its hash → height, every event's location (an event id seen before
    /// keeps its first location), the new MMR nodes, the validator set at a hand-over, and the
    /// new head. An empty slice is a no-op.
    fn append(&self, blocks: &[FinalizedBlock]) -> Result<(), StoreError>;

    /// Starts an empty store from a warp-sync snapshot at height `h`, atomically: the
    /// snapshot's trusted header becomes the head (no block body: [`lowest_height`] is `h`
    /// until block `h + 1` is appended, then `h + 1`), with the MMR peaks and the set that
    /// signs `h + 1`. Blocks below `h` are never stored; appends continue at `h + 1`.
    ///
    /// Refuses a store that holds anything ([`StoreError::NotEmpty`]) and a snapshot whose
    /// parts disagree with its header ([`StoreError::InvalidSnapshot`]). The header itself must
    /// have been checked against a trusted checkpoint by the caller.
    ///
    /// [`lowest_height`]: ChainStore::lowest_height
    fn install_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError>;

    /// The trusted header (header, commit, next set at a hand-over) at `height`.
    fn header(&self, height: u64) -> Result<Option<TrustedHeader>, StoreError>;

    /// Up to `count` consecutive headers from `start`; fewer if the head comes first.
    fn headers(&self, start: u64, count: u32) -> Result<Vec<TrustedHeader>, StoreError>;

    /// The finalized block at `height`, if its body is stored (see [`lowest_height`]).
    ///
    /// [`lowest_height`]: ChainStore::lowest_height
    fn block(&self, height: u64) -> Result<Option<FinalizedBlock>, StoreError>;

    /// Up to `count` consecutive blocks from `start`; fewer if the head comes first.
    fn blocks(&self, start: u64, count: u32) -> Result<Vec<FinalizedBlock>, StoreError>;

    /// Height of the stored block with this hash.
    fn height_of(&self, hash: &BlockHash) -> Result<Option<u64>, StoreError>;

    /// Where the event with this id is.
    fn event_location(&self, id: &EventId) -> Result<Option<EventLocation>, StoreError>;

    /// The chain MMR node `(level, index)` (see [`crate::proof::mmr`]).
    fn mmr_node(&self, level: u8, index: u64) -> Result<Option<Hash>, StoreError>;

    /// The validator set that signs block `height` when a stored hand-over announced it: the
    /// set of the latest hand-over taking effect at or before `height`. `None` before the first
    /// hand-over, where the genesis set signs (the node has it from its genesis, the store does
    /// not). Heights past head + 1 get the set as of the head.
    fn validators_for(&self, height: u64) -> Result<Option<ValidatorSet>, StoreError>;

    /// Lowest height whose block body is stored (0 unless pruned or warp-synced, 0 if empty).
    /// A store started from a snapshot at `h` with no block since answers `h`: it holds that
    /// height's header, so `lowest ≤ head` holds as [`crate::protocol::Status`] requires.
    fn lowest_height(&self) -> Result<u64, StoreError>;

    /// A small named blob: node identity key, WebRTC certificate, known peers, sync progress.
    fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Stores (or replaces) a named blob, durably.
    fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
}

/// Reads the chain MMR from a store, for [`crate::proof::mmr::prove`] and
/// [`EventProof::build`]. [`MmrNodes`] cannot fail, so a lookup that hits a store error answers
/// "missing" and keeps the error for [`StoreNodes::take_error`].
pub struct StoreNodes<'a, S: ChainStore + ?Sized> {
    store: &'a S,
    error: RefCell<Option<StoreError>>,
}

impl<'a, S: ChainStore + ?Sized> StoreNodes<'a, S> {
    pub fn new(store: &'a S) -> Self {
        StoreNodes {
            store,
            error: RefCell::new(None),
        }
    }

    /// The first store error a lookup hit, if any.
    pub fn take_error(&self) -> Option<StoreError> {
        self.error.borrow_mut().take()
    }

    /// The error to report for a failed MMR operation: the store's own error if a lookup hit
    /// one, else `what` with the MMR error, as corruption (a stored MMR below the head is
    /// complete).
    fn failure(&self, what: fmt::Arguments<'_>, e: impl fmt::Display) -> StoreError {
        self.take_error()
            .unwrap_or_else(|| StoreError::Corrupt(format!("{what}: {e}")))
    }
}

impl<S: ChainStore + ?Sized> MmrNodes for StoreNodes<'_, S> {
    fn node(&self, level: u8, index: u64) -> Option<Hash> {
        match self.store.mmr_node(level, index) {
            Ok(node) => node,
            Err(e) => {
                self.error.borrow_mut().get_or_insert(e);
                None
            }
        }
    }
}

/// The set that signs the block after `header`: the set it hands over to, else the set of the
/// latest stored hand-over, else the genesis schedule's.
pub fn next_validators<S: ChainStore + ?Sized>(
    store: &S,
    genesis: &Genesis,
    header: &TrustedHeader,
) -> Result<ValidatorSet, StoreError> {
    if let Some(set) = &header.next_validators {
        return Ok(set.clone());
    }
    let next = header.header.height + 1;
    Ok(match store.validators_for(next)? {
        Some(set) => set,
        None => genesis.validators_at(next).clone(),
    })
}

/// The root of the chain MMR over blocks `0..leaf_count`, which the header at height
/// `leaf_count` commits to, computed from the stored nodes. `None` if the store holds fewer
/// blocks.
pub fn mmr_root_at<S: ChainStore + ?Sized>(
    store: &S,
    leaf_count: u64,
) -> Result<Option<Hash>, StoreError> {
    let stored = store.head()?.map_or(0, |h| h.peaks.leaf_count());
    if leaf_count > stored {
        return Ok(None);
    }
    let nodes = StoreNodes::new(store);
    match peaks_at(&nodes, leaf_count) {
        Ok(peaks) => Ok(Some(peaks.root())),
        Err(e) => Err(nodes.failure(format_args!("MMR peaks of size {leaf_count}"), e)),
    }
}

/// The proof that event `id` is in the chain, against the head header or, with `at_height`,
/// against the header at that height. `None` if the event is unknown, its block body is no
/// longer stored, or `at_height` is before the event's block or after the head.
pub fn event_proof<S: ChainStore + ?Sized>(
    store: &S,
    id: &EventId,
    at_height: Option<u64>,
) -> Result<Option<EventProof>, StoreError> {
    let Some(location) = store.event_location(id)? else {
        return Ok(None);
    };
    let Some(head) = store.head()? else {
        return Ok(None);
    };
    let trusted = at_height.unwrap_or(head.height);
    if trusted < location.height || trusted > head.height {
        return Ok(None);
    }
    let Some(block) = store.block(location.height)? else {
        return Ok(None);
    };
    let stored_id = block
        .block
        .events
        .get(location.index as usize)
        .map(|e| e.id());
    if stored_id != Some(*id) {
        return Err(StoreError::Corrupt(format!(
            "event {id} is indexed at height {}, index {}, which holds another event",
            location.height, location.index
        )));
    }
    let nodes = StoreNodes::new(store);
    EventProof::build(&block.block, location.index, &nodes, trusted)
        .map(Some)
        .map_err(|e| nodes.failure(format_args!("proof of event {id} at height {trusted}"), e))
}

/// Decodes a stored value; a failure is corruption, named by `what`.
pub(crate) fn decode_stored<T: Decode>(
    what: fmt::Arguments<'_>,
    bytes: &[u8],
) -> Result<T, StoreError> {
    T::decode(bytes).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// A stored record keyed by height must be for that height.
pub(crate) fn check_height(what: &str, key: u64, found: u64) -> Result<(), StoreError> {
    if key == found {
        Ok(())
    } else {
        Err(StoreError::Corrupt(format!(
            "{what} stored at height {key} is for height {found}"
        )))
    }
}

impl Encode for Head {
    fn encode_to(&self, w: &mut Writer) {
        w.u64(self.height).hash(&self.hash).value(&self.peaks);
    }
}

impl Decode for Head {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let height = r.u64()?;
        let hash = r.hash()?;
        let peaks = MmrPeaks::decode_from(r)?;
        if height.checked_add(1) != Some(peaks.leaf_count()) {
            return Err(DecodeError::Invalid {
                what: "store head",
                reason: format!(
                    "head at height {height} with an MMR of {} leaves",
                    peaks.leaf_count()
                ),
            });
        }
        Ok(Head {
            height,
            hash,
            peaks,
        })
    }
}

impl Encode for EventLocation {
    fn encode_to(&self, w: &mut Writer) {
        w.u64(self.height).u32(self.index);
    }
}

impl Decode for EventLocation {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(EventLocation {
            height: r.u64()?,
            index: r.u32()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proof::mmr::Mmr;

    #[test]
    fn head_round_trips_and_rejects_a_peak_count_of_another_height() {
        let mut mmr = Mmr::new();
        for i in 0..5u64 {
            mmr.append(&Hash([i as u8; 32])).unwrap();
        }
        let head = Head {
            height: 4,
            hash: Hash([9; 32]),
            peaks: mmr.peaks(),
        };
        assert_eq!(Head::decode(&head.encode()).unwrap(), head);
        let wrong = Head { height: 5, ..head };
        assert!(matches!(
            Head::decode(&wrong.encode()),
            Err(DecodeError::Invalid {
                what: "store head",
                ..
            })
        ));
    }

    #[test]
    fn event_location_round_trips() {
        let loc = EventLocation {
            height: u64::MAX,
            index: 7,
        };
        assert_eq!(EventLocation::decode(&loc.encode()), Ok(loc));
    }
}
