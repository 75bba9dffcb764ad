//! The light client's header store as the driver sees it: async, because IndexedDB is.
//!
//! Every [`LightStore`] (the synchronous in-memory store, a native command's store) is a
//! [`HeaderStore`] through the blanket impl below; the browser's IndexedDB store implements
//! [`HeaderStore`] directly. The layout is the same everywhere: headers by height (the
//! header without its commit, [`StoredHeader`]), validator sets by the height that announces
//! them, commits only at hand-overs, and metadata (the checkpoint).

use crate::chain::{Checkpoint, ValidatorSet};
use crate::light::{
    LightClient, LightError, LightOptions, LightStore, StoredHeader, VerifiedHeader,
};

/// What kind of failure a store error is: the driver reacts to the kind (a full quota pauses
/// sync and is reported with its own code), the message goes to the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreFailure {
    /// The storage quota is exhausted (`QuotaExceededError`): nothing was written.
    QuotaExceeded,
    /// The database cannot be opened: another connection blocks an upgrade, or the browser
    /// refuses storage (private mode, disabled).
    Unavailable,
    /// Another client (another tab) holds the store.
    Locked,
    /// Stored data does not decode or breaks the store's invariants.
    Corrupt,
    /// The write breaks the append rules (not contiguous, wrong parent): a driver bug.
    Rejected,
    /// Anything else.
    Other,
}

/// An async light-client store. One writer at a time: the driver owns it.
#[allow(async_fn_in_trait)] // used with concrete stores; no `Send` bound is needed
pub trait HeaderStore {
    type Error: std::error::Error + 'static;

    /// The kind of `error`, for the driver's reaction and the error code users see.
    fn failure(error: &Self::Error) -> StoreFailure;

    /// The checkpoint the stored headers descend from.
    async fn checkpoint(&self) -> Result<Option<Checkpoint>, Self::Error>;

    /// Records the checkpoint; a store holds the headers of one checkpoint only.
    async fn set_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), Self::Error>;

    /// Appends consecutive verified headers after the head, atomically: all or none.
    async fn append(&mut self, headers: &[VerifiedHeader]) -> Result<(), Self::Error>;

    /// The highest stored header.
    async fn head(&self) -> Result<Option<StoredHeader>, Self::Error>;

    async fn header(&self, height: u64) -> Result<Option<StoredHeader>, Self::Error>;

    /// The set that signs block `height + 1`: the last set announced at or below `height`.
    async fn next_validators(&self, height: u64) -> Result<Option<ValidatorSet>, Self::Error>;

    /// Keeps only the last `keep` headers (and the validator sets they still need).
    async fn prune(&mut self, keep: u64) -> Result<(), Self::Error>;

    /// How many headers the store holds.
    async fn header_count(&self) -> Result<u64, Self::Error>;
}

impl<S: LightStore> HeaderStore for S {
    type Error = S::Error;

    fn failure(error: &Self::Error) -> StoreFailure {
        if S::is_corrupt(error) {
            StoreFailure::Corrupt
        } else {
            StoreFailure::Rejected
        }
    }

    async fn checkpoint(&self) -> Result<Option<Checkpoint>, Self::Error> {
        LightStore::checkpoint(self)
    }

    async fn set_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), Self::Error> {
        LightStore::set_checkpoint(self, checkpoint)
    }

    async fn append(&mut self, headers: &[VerifiedHeader]) -> Result<(), Self::Error> {
        LightStore::append(self, headers)
    }

    async fn head(&self) -> Result<Option<StoredHeader>, Self::Error> {
        LightStore::head(self)
    }

    async fn header(&self, height: u64) -> Result<Option<StoredHeader>, Self::Error> {
        LightStore::header(self, height)
    }

    async fn next_validators(&self, height: u64) -> Result<Option<ValidatorSet>, Self::Error> {
        LightStore::next_validators(self, height)
    }

    async fn prune(&mut self, keep: u64) -> Result<(), Self::Error> {
        LightStore::prune(self, keep)
    }

    async fn header_count(&self) -> Result<u64, Self::Error> {
        LightStore::header_count(self)
    }
}

/// Opens a client on `store`: resumes from its head if it holds headers of the same
/// checkpoint, starts from the checkpoint otherwise (and records it). The async twin of
/// [`LightClient::from_store`].
pub async fn open_client<P, S>(
    store: &mut S,
    checkpoint: Checkpoint,
    options: LightOptions,
    now_ms: u64,
) -> Result<LightClient<P>, LightError>
where
    P: Clone + Ord + std::fmt::Debug,
    S: HeaderStore,
{
    let store_err = |e: S::Error| LightError::Store(e.to_string());
    match store.checkpoint().await.map_err(store_err)? {
        Some(stored) if stored != checkpoint => {
            return Err(LightError::StoreCheckpointMismatch {
                stored: stored.block_hash,
                given: checkpoint.block_hash,
            })
        }
        Some(_) => {}
        None => store.set_checkpoint(&checkpoint).await.map_err(store_err)?,
    }
    let Some(head) = store.head().await.map_err(store_err)? else {
        return LightClient::new(checkpoint, options, now_ms);
    };
    let next = store
        .next_validators(head.height())
        .await
        .map_err(store_err)?
        .ok_or_else(|| {
            LightError::Resume(format!(
                "no validator set stored for height {}",
                head.height()
            ))
        })?;
    LightClient::resume(checkpoint, head, next, options, now_ms)
}
