//! The store behind a JS `LightClient`: IndexedDB by default, or memory for `storeName: null`
//! (a page that must persist nothing, or a test). One enum, so the driver stays monomorphic.

use crate::chain::{Checkpoint, ValidatorSet};
use crate::client::{HeaderStore, IdbStore, IdbStoreError, StoreFailure};
use crate::light::{LightStoreError, MemoryLightStore, StoredHeader, VerifiedHeader};

/// Either store, chosen by the config's `storeName`.
#[derive(Debug)]
pub enum JsStore {
    Memory(MemoryLightStore),
    IndexedDb(IdbStore),
}

/// The error of whichever store is in use; its message is the store's own.
#[derive(Debug, thiserror::Error)]
pub enum JsStoreError {
    #[error(transparent)]
    Memory(#[from] LightStoreError),
    #[error(transparent)]
    IndexedDb(#[from] IdbStoreError),
}

impl JsStore {
    /// Opens the IndexedDB store `name`, or an in-memory store for `None`.
    pub async fn open(name: Option<&str>) -> Result<JsStore, JsStoreError> {
        Ok(match name {
            Some(name) => JsStore::IndexedDb(IdbStore::open(name).await?),
            None => JsStore::Memory(MemoryLightStore::default()),
        })
    }

    /// Closes the database and waits until its Web Lock is free, so the same store can be
    /// opened again (by this page or another tab) as soon as this returns.
    pub async fn close(self) {
        if let JsStore::IndexedDb(store) = self {
            store.close().await;
        }
    }
}

/// Delegates one async call to whichever store is in use.
macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            JsStore::Memory($store) => Ok($call.await?),
            JsStore::IndexedDb($store) => Ok($call.await?),
        }
    };
}

impl HeaderStore for JsStore {
    type Error = JsStoreError;

    fn failure(error: &JsStoreError) -> StoreFailure {
        match error {
            JsStoreError::Memory(e) => <MemoryLightStore as HeaderStore>::failure(e),
            JsStoreError::IndexedDb(e) => <IdbStore as HeaderStore>::failure(e),
        }
    }

    async fn checkpoint(&self) -> Result<Option<Checkpoint>, JsStoreError> {
        delegate!(self, s => HeaderStore::checkpoint(s))
    }

    async fn set_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), JsStoreError> {
        delegate!(self, s => HeaderStore::set_checkpoint(s, checkpoint))
    }

    async fn append(&mut self, headers: &[VerifiedHeader]) -> Result<(), JsStoreError> {
        delegate!(self, s => HeaderStore::append(s, headers))
    }

    async fn head(&self) -> Result<Option<StoredHeader>, JsStoreError> {
        delegate!(self, s => HeaderStore::head(s))
    }

    async fn header(&self, height: u64) -> Result<Option<StoredHeader>, JsStoreError> {
        delegate!(self, s => HeaderStore::header(s, height))
    }

    async fn next_validators(&self, height: u64) -> Result<Option<ValidatorSet>, JsStoreError> {
        delegate!(self, s => HeaderStore::next_validators(s, height))
    }

    async fn prune(&mut self, keep: u64) -> Result<(), JsStoreError> {
        delegate!(self, s => HeaderStore::prune(s, keep))
    }

    async fn header_count(&self) -> Result<u64, JsStoreError> {
        delegate!(self, s => HeaderStore::header_count(s))
    }
}
