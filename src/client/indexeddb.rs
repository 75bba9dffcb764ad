//! The browser's light-client store: IndexedDB, in a Window or in a dedicated Worker.
//!
//! Layout (one database per store name, schema version [`SCHEMA_VERSION`]):
//!
//! | object store | key | value |
//! | --- | --- | --- |
//! | `headers` | height (number) | `Uint8Array`: the [`StoredHeader`] canonical encoding |
//! | `validators` | height that announces the set | `Uint8Array`: the encoded [`StoredValidators`] (the set in full, or a delta against the previous entry) |
//! | `commits` | height of a hand-over | `Uint8Array`: the encoded [`Commit`](crate::chain::Commit), its quorum prefix only |
//! | `meta` | `"checkpoint"`, `"schema"` | checkpoint text ([`Checkpoint::to_text`]), number |
//!
//! The values are those of the in-memory store ([`crate::light::stored`]'s shared code): a set
//! read back is rebuilt from the last full set and the deltas after it, and checked against
//! the `next_validators_hash` of a stored header; a mismatch is [`IdbStoreError::Corrupt`].
//! A database of another schema version (version 1 stored every set in full) is reported as
//! [`IdbStoreError::Corrupt`] ("schema version"), never misread: delete it and sync again.
//!
//! Heights are IndexedDB number keys, so they sort numerically and a cursor finds the head or
//! the set in force without reading everything; numbers are exact only up to 2^53 − 1, so a
//! larger height is refused ([`IdbStoreError::HeightTooLarge`]) instead of stored rounded.
//!
//! One writer per store: [`IdbStore::open`] first takes the Web Lock
//! `headway-store:<name>` (exclusive, `ifAvailable`), so a second tab or worker of the same
//! origin gets [`IdbStoreError::Locked`] instead of interleaving appends with ours. Where the
//! Web Locks API is missing (old browsers, some embedded webviews) the store opens without a
//! lock: the store still works, it just cannot tell that another client uses it.

use std::cell::RefCell;
use std::future::IntoFuture;
use std::rc::Rc;

use futures::channel::oneshot;
use futures::future::{select, Either};
use idb::{CursorDirection, Database, Factory, KeyRange, ObjectStore, Query, TransactionMode};
use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{DomException, IdbTransaction};

use super::store::{HeaderStore, StoreFailure};
use crate::chain::{Checkpoint, Decode, Encode, ValidatorSet};
use crate::light::stored::{check_set, encode_append, SetWalk, Walk};
use crate::light::{
    CorruptEntry, LightStoreError, MemoryLightStore, RebuiltSet, StoreBytes, StoredHeader,
    StoredValidators, VerifiedHeader,
};

/// The database version; [`IdbStore::open`] creates the object stores when it upgrades to it.
/// Also written to `meta` so a database of another layout is recognised as such. Version 2:
/// validator sets as deltas, hand-over commits trimmed to their quorum prefix.
pub const SCHEMA_VERSION: u32 = 2;

/// The largest height stored exactly as a JS number key.
pub const MAX_HEIGHT: u64 = (1 << 53) - 1;

const HEADERS: &str = "headers";
const VALIDATORS: &str = "validators";
const COMMITS: &str = "commits";
const META: &str = "meta";
const ALL_STORES: [&str; 4] = [HEADERS, VALIDATORS, COMMITS, META];
const CHECKPOINT_KEY: &str = "checkpoint";
const SCHEMA_KEY: &str = "schema";

/// Why an [`IdbStore`] call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdbStoreError {
    /// The origin's storage quota is full (`QuotaExceededError`); the transaction was
    /// aborted, so nothing of it was written.
    #[error("storage quota exceeded: {0}")]
    QuotaExceeded(String),
    /// Another connection (an older tab mid-upgrade, a pending delete) blocks opening or
    /// deleting the database.
    #[error("the database {0:?} is blocked by another open connection")]
    Blocked(String),
    /// IndexedDB is missing or refuses this context (private mode, storage disabled, a
    /// database of a newer schema).
    #[error("IndexedDB is unavailable: {0}")]
    Unavailable(String),
    /// Another client of the same origin holds the store's Web Lock.
    #[error("the store {0:?} is in use by another client (tab or worker)")]
    Locked(String),
    /// A stored value does not decode or breaks the layout.
    #[error("corrupt {what} at {at}: {reason}")]
    Corrupt {
        what: &'static str,
        at: String,
        reason: String,
    },
    /// The write breaks the append rules (the same as [`crate::light::MemoryLightStore`]'s).
    #[error(transparent)]
    Rejected(#[from] LightStoreError),
    /// Heights above 2^53 − 1 are not exact as IndexedDB number keys.
    #[error("height {0} is above 2^53 - 1, the largest exact IndexedDB number key")]
    HeightTooLarge(u64),
    /// Any other IndexedDB or JS failure.
    #[error("IndexedDB: {0}")]
    Js(String),
}

impl IdbStoreError {
    /// Maps a DOMException by its `name`: the name is the stable part (messages differ
    /// between browsers).
    pub fn from_dom(name: &str, message: &str) -> IdbStoreError {
        match name {
            "QuotaExceededError" => IdbStoreError::QuotaExceeded(message.to_owned()),
            // A database of a newer schema, or storage refused for this origin.
            "VersionError" | "SecurityError" => {
                IdbStoreError::Unavailable(format!("{name}: {message}"))
            }
            _ => IdbStoreError::Js(format!("{name}: {message}")),
        }
    }

    /// Maps a thrown or rejected JS value: a DOMException by its name, anything else as text.
    pub fn from_js(value: &JsValue) -> IdbStoreError {
        if let Some(e) = value.dyn_ref::<DomException>() {
            return IdbStoreError::from_dom(&e.name(), &e.message());
        }
        IdbStoreError::Js(js_text(value))
    }

    /// The append rule this error reports, if it is one.
    pub fn rule(&self) -> Option<&LightStoreError> {
        match self {
            IdbStoreError::Rejected(e) => Some(e),
            _ => None,
        }
    }
}

fn js_text(value: &JsValue) -> String {
    if let Some(s) = value.as_string() {
        s
    } else if let Some(e) = value.dyn_ref::<js_sys::Error>() {
        String::from(e.message())
    } else if value.is_object() {
        String::from(value.unchecked_ref::<Object>().to_string())
    } else {
        format!("{value:?}")
    }
}

fn from_idb(error: idb::Error) -> IdbStoreError {
    use idb::Error as E;
    match error {
        E::DomException(e) => IdbStoreError::from_dom(&e.name(), &e.message()),
        E::IndexedDbNotFound(_) => {
            IdbStoreError::Unavailable("no indexedDB in this global scope".into())
        }
        E::IndexedDbOpenFailed(v) | E::IndexedDbDeleteFailed(v) => match IdbStoreError::from_js(&v)
        {
            IdbStoreError::Js(text) => IdbStoreError::Unavailable(text),
            other => other,
        },
        E::AddFailed(v)
        | E::UpdateFailed(v)
        | E::DeleteFailed(v)
        | E::ClearFailed(v)
        | E::GetFailed(v)
        | E::GetAllFailed(v)
        | E::GetAllKeysFailed(v)
        | E::CountFailed(v)
        | E::OpenCursorFailed(v)
        | E::OpenKeyCursorFailed(v)
        | E::KeyRangeCreateFailed(v)
        | E::ObjectStoreNotFound(v)
        | E::TransactionOpenFailed(v)
        | E::CursorKeyNotFound(v)
        | E::CursorValueNotFound(v)
        | E::RequestResultNotFound(v) => IdbStoreError::from_js(&v),
        other => IdbStoreError::Js(other.to_string()),
    }
}

fn corrupt(what: &'static str, at: impl ToString, reason: impl ToString) -> IdbStoreError {
    IdbStoreError::Corrupt {
        what,
        at: at.to_string(),
        reason: reason.to_string(),
    }
}

/// A height as an exact number key.
fn key_of(height: u64) -> Result<JsValue, IdbStoreError> {
    if height > MAX_HEIGHT {
        return Err(IdbStoreError::HeightTooLarge(height));
    }
    Ok(JsValue::from_f64(height as f64))
}

/// A number key read back as a height: anything else means someone else wrote the store.
fn height_of(what: &'static str, key: &JsValue) -> Result<u64, IdbStoreError> {
    match key.as_f64() {
        Some(k) if k.fract() == 0.0 && (0.0..=MAX_HEIGHT as f64).contains(&k) => Ok(k as u64),
        _ => Err(corrupt(what, format!("key {key:?}"), "not a height")),
    }
}

fn bytes_of(what: &'static str, at: u64, value: &JsValue) -> Result<Vec<u8>, IdbStoreError> {
    value
        .dyn_ref::<Uint8Array>()
        .map(Uint8Array::to_vec)
        .ok_or_else(|| corrupt(what, format!("height {at}"), "value is not a Uint8Array"))
}

fn decode_value<T: Decode>(
    what: &'static str,
    at: u64,
    value: &JsValue,
) -> Result<T, IdbStoreError> {
    let bytes = bytes_of(what, at, value)?;
    T::decode(&bytes).map_err(|e| corrupt(what, format!("height {at}"), e))
}

fn decode_header(at: u64, value: &JsValue) -> Result<StoredHeader, IdbStoreError> {
    let header: StoredHeader = decode_value("header", at, value)?;
    if header.height() != at {
        return Err(corrupt(
            "header",
            format!("height {at}"),
            format!("holds the header of height {}", header.height()),
        ));
    }
    Ok(header)
}

fn encoded(value: &impl Encode) -> JsValue {
    bytes_value(&value.encode())
}

fn bytes_value(bytes: &[u8]) -> JsValue {
    Uint8Array::from(bytes).into()
}

/// The shared code's corruption report as this store's error.
fn from_entry(e: CorruptEntry) -> IdbStoreError {
    corrupt(e.what, format!("height {}", e.height), e.reason)
}

/// Rebuilds the set stored at `at` (whose value is `value`) from the last full set and the
/// deltas after it.
async fn rebuild(
    validators: &ObjectStore,
    at: u64,
    value: JsValue,
) -> Result<RebuiltSet, IdbStoreError> {
    let mut walk = SetWalk::new(at);
    let (mut next, mut value) = (at, Some(value));
    loop {
        let bytes = value
            .as_ref()
            .map(|v| bytes_of("validator set", next, v))
            .transpose()?;
        match walk.feed(next, bytes.as_deref()).map_err(from_entry)? {
            Walk::Done(set) => return Ok(set),
            Walk::Read(base) => {
                next = base;
                value = validators
                    .get(key_of(base)?)
                    .map_err(from_idb)?
                    .await
                    .map_err(from_idb)?;
            }
        }
    }
}

/// The set in force after `height`, rebuilt and checked against the stored header that names
/// it: the header at `height`, the head above it, the lowest header below it.
async fn set_in_force(
    headers: &ObjectStore,
    validators: &ObjectStore,
    height: u64,
) -> Result<Option<RebuiltSet>, IdbStoreError> {
    // Keys never exceed MAX_HEIGHT, so clamping a larger query changes nothing.
    let height = height.min(MAX_HEIGHT);
    let Some((at, value)) = last_record(validators, "validator set", Some(height)).await? else {
        return Ok(None);
    };
    let set = rebuild(validators, at, value).await?;
    let header = match last_record(headers, "header", Some(height)).await? {
        Some(record) => Some(record),
        None => first_record(headers, "header").await?,
    };
    let Some((header_at, header)) = header else {
        return Err(corrupt(
            "validator set",
            format!("height {at}"),
            "no stored header names it",
        ));
    };
    check_set(&set, &decode_header(header_at, &header)?).map_err(from_entry)?;
    Ok(Some(set))
}

fn upper_bound(height: u64, open: bool) -> Result<Query, IdbStoreError> {
    let range =
        KeyRange::upper_bound(&key_of(height.min(MAX_HEIGHT))?, Some(open)).map_err(from_idb)?;
    Ok(Query::KeyRange(range))
}

/// The last record at or below `at` (`None`: the whole store), key and value.
async fn last_record(
    store: &ObjectStore,
    what: &'static str,
    at: Option<u64>,
) -> Result<Option<(u64, JsValue)>, IdbStoreError> {
    let query = at.map(|h| upper_bound(h, false)).transpose()?;
    let cursor = store
        .open_cursor(query, Some(CursorDirection::Prev))
        .map_err(from_idb)?
        .await
        .map_err(from_idb)?;
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    let key = cursor.key().map_err(from_idb)?;
    let value = cursor.value().map_err(from_idb)?;
    Ok(Some((height_of(what, &key)?, value)))
}

/// The first record of the store, key and value.
async fn first_record(
    store: &ObjectStore,
    what: &'static str,
) -> Result<Option<(u64, JsValue)>, IdbStoreError> {
    let cursor = store
        .open_cursor(None, Some(CursorDirection::Next))
        .map_err(from_idb)?
        .await
        .map_err(from_idb)?;
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    let key = cursor.key().map_err(from_idb)?;
    let value = cursor.value().map_err(from_idb)?;
    Ok(Some((height_of(what, &key)?, value)))
}

/// The last key at or below `at` (`None`: the whole store), without reading its value.
async fn last_key(
    store: &ObjectStore,
    what: &'static str,
    at: Option<u64>,
) -> Result<Option<u64>, IdbStoreError> {
    let query = at.map(|h| upper_bound(h, false)).transpose()?;
    let cursor = store
        .open_key_cursor(query, Some(CursorDirection::Prev))
        .map_err(from_idb)?
        .await
        .map_err(from_idb)?;
    match cursor {
        Some(cursor) => Ok(Some(height_of(what, &cursor.key().map_err(from_idb)?)?)),
        None => Ok(None),
    }
}

/// Waits for a transaction to commit (or abort), so a successful write is durable when the
/// call returns. Ignores `error` events on purpose: an unhandled request error aborts the
/// transaction, and the abort carries the error worth reporting (`QuotaExceededError`).
struct Settle {
    tx: IdbTransaction,
    _complete: Closure<dyn FnMut()>,
    _abort: Closure<dyn FnMut()>,
    done: oneshot::Receiver<bool>,
}

impl Settle {
    fn new(tx: &IdbTransaction) -> Settle {
        let (sender, done) = oneshot::channel();
        let sender = Rc::new(RefCell::new(Some(sender)));
        let signal = |committed: bool| {
            let sender = Rc::clone(&sender);
            Closure::<dyn FnMut()>::new(move || {
                if let Some(s) = sender.borrow_mut().take() {
                    let _ = s.send(committed);
                }
            })
        };
        let complete = signal(true);
        let abort = signal(false);
        tx.set_oncomplete(Some(complete.as_ref().unchecked_ref()));
        tx.set_onabort(Some(abort.as_ref().unchecked_ref()));
        Settle {
            tx: tx.clone(),
            _complete: complete,
            _abort: abort,
            done,
        }
    }

    async fn wait(mut self) -> Result<(), IdbStoreError> {
        match (&mut self.done).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(match self.tx.error() {
                Some(e) => IdbStoreError::from_dom(&e.name(), &e.message()),
                None => IdbStoreError::Js("transaction aborted".into()),
            }),
            Err(_) => Err(IdbStoreError::Js(
                "transaction ended without an outcome".into(),
            )),
        }
    }
}

impl Drop for Settle {
    /// Unhooks the handlers before their closures are freed (a cancelled wait must not leave
    /// JS calling freed closures).
    fn drop(&mut self) {
        self.tx.set_oncomplete(None);
        self.tx.set_onabort(None);
    }
}

/// A readwrite transaction that aborts on drop unless it was committed: an early return
/// (rule check, encode error) leaves nothing half-written.
struct WriteTx {
    raw: IdbTransaction,
    settle: Option<Settle>,
}

impl WriteTx {
    fn new(db: &Database, stores: &[&str]) -> Result<WriteTx, IdbStoreError> {
        let tx = db
            .transaction(stores, TransactionMode::ReadWrite)
            .map_err(from_idb)?;
        let raw = IdbTransaction::from(tx);
        let settle = Some(Settle::new(&raw));
        Ok(WriteTx { raw, settle })
    }

    fn store(&self, name: &str) -> Result<ObjectStore, IdbStoreError> {
        idb::Transaction::from(self.raw.clone())
            .object_store(name)
            .map_err(from_idb)
    }

    async fn commit(mut self) -> Result<(), IdbStoreError> {
        match self.settle.take() {
            Some(settle) => settle.wait().await,
            None => Err(IdbStoreError::Js("transaction already settled".into())),
        }
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if self.settle.is_some() {
            // Already finished or never written to: either way nothing to undo.
            let _ = self.raw.abort();
        }
    }
}

/// The Web Lock held while the store is open: the lock is held as long as the promise its
/// callback returned is pending.
struct HeldLock {
    /// Resolves that promise: releases the lock.
    release: Function,
    /// `locks.request()`'s own promise: settles once the lock is released.
    released: Promise,
}

impl HeldLock {
    fn release(&self) {
        let _ = self.release.call0(&JsValue::UNDEFINED);
    }
}

/// `navigator.locks` of the current global (Window or Worker), if the browser has it.
fn lock_manager() -> Option<Object> {
    let global = js_sys::global();
    let navigator = Reflect::get(&global, &"navigator".into()).ok()?;
    if !navigator.is_object() {
        return None;
    }
    let locks = Reflect::get(&navigator, &"locks".into()).ok()?;
    locks.dyn_into::<Object>().ok()
}

/// Takes `headway-store:<name>` if nobody holds it. `Ok(None)`: Web Locks are unavailable.
///
/// Called through `Reflect` because web-sys exposes `LockManager` only behind
/// `--cfg web_sys_unstable_apis`, which this crate does not build with.
async fn acquire_lock(name: &str) -> Result<Option<HeldLock>, IdbStoreError> {
    let Some(locks) = lock_manager() else {
        return Ok(None);
    };
    let Some(request) = Reflect::get(&locks, &"request".into())
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok())
    else {
        return Ok(None);
    };
    let options = Object::new();
    let set = |k: &str, v: JsValue| {
        Reflect::set(&options, &k.into(), &v).map_err(|e| IdbStoreError::from_js(&e))
    };
    set("mode", "exclusive".into())?;
    set("ifAvailable", true.into())?;

    let (sender, granted) = oneshot::channel::<Option<Function>>();
    let callback = Closure::once_into_js(move |lock: JsValue| -> JsValue {
        if lock.is_null() || lock.is_undefined() {
            let _ = sender.send(None);
            return JsValue::UNDEFINED;
        }
        let mut resolve = None;
        let held = Promise::new(&mut |res, _| resolve = Some(res));
        // If the opener is gone, returning `undefined` releases the lock at once.
        match resolve.map(|r| sender.send(Some(r))) {
            Some(Ok(())) => held.into(),
            _ => JsValue::UNDEFINED,
        }
    });
    let lock_name = JsValue::from_str(&format!("headway-store:{name}"));
    let released: Promise = request
        .call3(&locks, &lock_name, &options, &callback)
        .map_err(|e| IdbStoreError::from_js(&e))?
        .dyn_into()
        .map_err(|v| IdbStoreError::Js(format!("locks.request returned {v:?}")))?;

    match select(granted, JsFuture::from(released.clone())).await {
        Either::Left((Ok(Some(release)), _)) => Ok(Some(HeldLock { release, released })),
        Either::Left((Ok(None), _)) => Err(IdbStoreError::Locked(name.to_owned())),
        Either::Left((Err(_), _)) => Err(IdbStoreError::Js("lock callback dropped".into())),
        // The request was refused (e.g. a SecurityError in an opaque origin): no locking here.
        Either::Right((Err(e), _)) => {
            tracing::warn!(
                "Web Lock refused, opening store {name:?} without one: {}",
                js_text(&e)
            );
            Ok(None)
        }
        Either::Right((Ok(_), _)) => Err(IdbStoreError::Js(
            "lock request settled without calling back".into(),
        )),
    }
}

/// An IndexedDB-backed [`HeaderStore`]: see the module docs for the layout and the lock.
///
/// Every write is one transaction awaited to completion: a returned `Ok` is on disk, an
/// error left nothing of that call behind.
pub struct IdbStore {
    name: String,
    db: Database,
    lock: Option<HeldLock>,
    writes: u64,
}

impl std::fmt::Debug for IdbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdbStore")
            .field("name", &self.name)
            .field("locked", &self.lock.is_some())
            .field("writes", &self.writes)
            .finish()
    }
}

impl IdbStore {
    /// Opens (creating if needed) the store `name`. Takes the store's Web Lock first:
    /// [`IdbStoreError::Locked`] if another client of the origin holds it. Works in a Window
    /// and in a dedicated Worker (everything comes from the global scope). Where the Web Locks
    /// API is missing the store opens without a lock (see [`IdbStore::is_locked`]) rather
    /// than not at all: one tab is by far the common case.
    pub async fn open(name: &str) -> Result<IdbStore, IdbStoreError> {
        let lock = acquire_lock(name).await?;
        let db = match open_database(name).await {
            Ok(db) => db,
            Err(e) => {
                if let Some(lock) = &lock {
                    lock.release();
                }
                return Err(e);
            }
        };
        let store = IdbStore {
            name: name.to_owned(),
            db,
            lock,
            writes: 0,
        };
        if let Err(e) = store.check_layout().await {
            // Released before returning, so the caller can delete or reopen at once.
            store.close().await;
            return Err(e);
        }
        Ok(store)
    }

    /// Closes the connection and releases the lock, and waits until the lock is free, so
    /// the same context can open the store again right after. (Dropping an `IdbStore` also
    /// closes and releases, but cannot wait for the release.)
    pub async fn close(mut self) {
        self.db.close();
        if let Some(lock) = self.lock.take() {
            lock.release();
            let _ = JsFuture::from(lock.released).await;
        }
    }

    /// Deletes the store `name` (its whole database). Refused with
    /// [`IdbStoreError::Locked`] while a client has it open; [`IdbStoreError::Blocked`] if
    /// an unlocked connection keeps it open (the deletion then happens once it closes).
    pub async fn delete(name: &str) -> Result<(), IdbStoreError> {
        let lock = acquire_lock(name).await?;
        let result = delete_database(name).await;
        if let Some(lock) = lock {
            lock.release();
            let _ = JsFuture::from(lock.released).await;
        }
        result
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many appends succeeded through this handle (not persisted): lets tests and
    /// benchmarks count write transactions, as [`crate::light::MemoryLightStore::writes`].
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// Whether this handle holds the store's Web Lock (`false` where Web Locks are missing).
    pub fn is_locked(&self) -> bool {
        self.lock.is_some()
    }

    /// What the store holds, in bytes of stored values (reads every value once: a
    /// measurement, not for a hot path).
    pub async fn bytes(&self) -> Result<StoreBytes, IdbStoreError> {
        let tx = self.read(&[HEADERS, VALIDATORS, COMMITS])?;
        let mut sizes = [0usize; 3];
        let mut header_count = 0;
        for (i, name) in [HEADERS, VALIDATORS, COMMITS].into_iter().enumerate() {
            let store = tx.object_store(name).map_err(from_idb)?;
            let values = store
                .get_all(None, None)
                .map_err(from_idb)?
                .await
                .map_err(from_idb)?;
            if name == HEADERS {
                header_count = values.len();
            }
            for value in values {
                let bytes = value
                    .dyn_ref::<Uint8Array>()
                    .ok_or_else(|| corrupt("value", name, "not a Uint8Array"))?;
                sizes[i] += bytes.byte_length() as usize;
            }
        }
        Ok(StoreBytes {
            headers: sizes[0],
            header_count,
            validator_sets: sizes[1],
            commits: sizes[2],
        })
    }

    fn read(&self, stores: &[&str]) -> Result<idb::Transaction, IdbStoreError> {
        self.db
            .transaction(stores, TransactionMode::ReadOnly)
            .map_err(from_idb)
    }

    fn read_store(&self, name: &str) -> Result<ObjectStore, IdbStoreError> {
        self.read(&[name])?.object_store(name).map_err(from_idb)
    }

    /// The four object stores and this schema's marker are there: a database of the same
    /// name written by something else is reported, not misread.
    async fn check_layout(&self) -> Result<(), IdbStoreError> {
        let names = self.db.store_names();
        if let Some(missing) = ALL_STORES.iter().find(|s| !names.iter().any(|n| n == *s)) {
            return Err(corrupt(
                "database layout",
                &self.name,
                format!("no object store {missing:?}"),
            ));
        }
        let schema = self
            .read_store(META)?
            .get(JsValue::from_str(SCHEMA_KEY))
            .map_err(from_idb)?
            .await
            .map_err(from_idb)?;
        match schema.as_ref().and_then(JsValue::as_f64) {
            Some(v) if v == f64::from(SCHEMA_VERSION) => Ok(()),
            _ => Err(corrupt(
                "schema version",
                &self.name,
                format!(
                    "expected {SCHEMA_VERSION}, found {schema:?}: the store needs a reset \
                     (IdbStore::delete, then sync again)"
                ),
            )),
        }
    }
}

impl Drop for IdbStore {
    fn drop(&mut self) {
        self.db.close();
        if let Some(lock) = self.lock.take() {
            lock.release();
        }
    }
}

/// Opens the database at [`SCHEMA_VERSION`], creating the object stores (and the schema
/// marker) in the upgrade.
async fn open_database(name: &str) -> Result<Database, IdbStoreError> {
    let factory = Factory::new().map_err(from_idb)?;
    let mut request = factory.open(name, Some(SCHEMA_VERSION)).map_err(from_idb)?;
    let upgrade_error: Rc<RefCell<Option<IdbStoreError>>> = Rc::default();
    let upgrade_slot = Rc::clone(&upgrade_error);
    request.on_upgrade_needed(move |event| {
        if let Err(e) = create_layout(&event) {
            *upgrade_slot.borrow_mut() = Some(e);
        }
    });
    let (blocked_tx, blocked) = oneshot::channel::<()>();
    request.on_blocked(move |_| {
        let _ = blocked_tx.send(());
    });
    let opening = request.into_future();
    let db = match select(opening, blocked).await {
        Either::Left((result, _)) => result,
        Either::Right((Ok(()), opening)) => {
            // The open stays queued: close the connection if it is granted later.
            wasm_bindgen_futures::spawn_local(async move {
                if let Ok(db) = opening.await {
                    db.close();
                }
            });
            return Err(IdbStoreError::Blocked(name.to_owned()));
        }
        Either::Right((Err(_), opening)) => opening.await,
    };
    let db = db.map_err(|e| match from_idb(e) {
        IdbStoreError::Js(text) => IdbStoreError::Unavailable(text),
        other => other,
    });
    if let Some(e) = upgrade_error.borrow_mut().take() {
        if let Ok(db) = &db {
            db.close();
        }
        return Err(e);
    }
    db
}

fn create_layout(event: &idb::event::VersionChangeEvent) -> Result<(), IdbStoreError> {
    use idb::{DatabaseEvent, Event, Request};
    let db = event.database().map_err(from_idb)?;
    let names = db.store_names();
    // A database of an older schema keeps its own marker, so `check_layout` reports it
    // instead of this version reading values of another layout.
    let existing = names.iter().any(|n| n == META);
    for store in ALL_STORES {
        if !names.iter().any(|n| n == store) {
            db.create_object_store(store, idb::ObjectStoreParams::new())
                .map_err(from_idb)?;
        }
    }
    let tx = event
        .target()
        .map_err(from_idb)?
        .transaction()
        .ok_or_else(|| IdbStoreError::Js("upgrade without a transaction".into()))?;
    if existing {
        return Ok(());
    }
    tx.object_store(META)
        .map_err(from_idb)?
        .put(
            &JsValue::from_f64(f64::from(SCHEMA_VERSION)),
            Some(&JsValue::from_str(SCHEMA_KEY)),
        )
        .map_err(from_idb)?;
    Ok(())
}

async fn delete_database(name: &str) -> Result<(), IdbStoreError> {
    let factory = Factory::new().map_err(from_idb)?;
    let mut request = factory.delete(name).map_err(from_idb)?;
    let (blocked_tx, blocked) = oneshot::channel::<()>();
    request.on_blocked(move |_| {
        let _ = blocked_tx.send(());
    });
    match select(request.into_future(), blocked).await {
        Either::Left((result, _)) => result.map_err(from_idb),
        Either::Right((Ok(()), _)) => Err(IdbStoreError::Blocked(name.to_owned())),
        Either::Right((Err(_), deleting)) => deleting.await.map_err(from_idb),
    }
}

impl HeaderStore for IdbStore {
    type Error = IdbStoreError;

    fn failure(error: &IdbStoreError) -> StoreFailure {
        match error {
            IdbStoreError::QuotaExceeded(_) => StoreFailure::QuotaExceeded,
            IdbStoreError::Blocked(_) | IdbStoreError::Unavailable(_) => StoreFailure::Unavailable,
            IdbStoreError::Locked(_) => StoreFailure::Locked,
            IdbStoreError::Corrupt { .. } => StoreFailure::Corrupt,
            IdbStoreError::Rejected(_) => StoreFailure::Rejected,
            IdbStoreError::HeightTooLarge(_) | IdbStoreError::Js(_) => StoreFailure::Other,
        }
    }

    async fn checkpoint(&self) -> Result<Option<Checkpoint>, IdbStoreError> {
        let value = self
            .read_store(META)?
            .get(JsValue::from_str(CHECKPOINT_KEY))
            .map_err(from_idb)?
            .await
            .map_err(from_idb)?;
        value.map(|v| parse_checkpoint(&v)).transpose()
    }

    async fn set_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), IdbStoreError> {
        let tx = WriteTx::new(&self.db, &[META])?;
        let meta = tx.store(META)?;
        let key = JsValue::from_str(CHECKPOINT_KEY);
        let stored = meta
            .get(key.clone())
            .map_err(from_idb)?
            .await
            .map_err(from_idb)?;
        match stored.map(|v| parse_checkpoint(&v)).transpose()? {
            Some(c) if c == *checkpoint => return Ok(()),
            Some(_) => return Err(LightStoreError::OtherCheckpoint.into()),
            None => {}
        }
        meta.put(&JsValue::from_str(&checkpoint.to_text()), Some(&key))
            .map_err(from_idb)?;
        tx.commit().await
    }

    async fn append(&mut self, headers: &[VerifiedHeader]) -> Result<(), IdbStoreError> {
        // Every key is checked before anything is written.
        let keys = headers
            .iter()
            .map(|h| key_of(h.height()))
            .collect::<Result<Vec<_>, _>>()?;
        let tx = WriteTx::new(&self.db, &[HEADERS, VALIDATORS, COMMITS])?;
        let header_store = tx.store(HEADERS)?;
        // The head is read in the write transaction itself: nothing can land in between.
        let head = match last_record(&header_store, "header", None).await? {
            Some((at, value)) => Some(decode_header(at, &value)?),
            None => None,
        };
        MemoryLightStore::check_append(head.as_ref(), headers)?;
        if headers.is_empty() {
            // Counted like MemoryLightStore counts it; the empty transaction is aborted on drop.
            self.writes += 1;
            return Ok(());
        }
        let validator_store = tx.store(VALIDATORS)?;
        let commit_store = tx.store(COMMITS)?;
        // The set in force after the head: the base of the next delta, and the signer of a
        // hand-over commit at the first new height.
        let previous = match &head {
            Some(head) => Some(
                set_in_force(&header_store, &validator_store, head.height())
                    .await?
                    .ok_or_else(|| {
                        corrupt(
                            "validator set",
                            format!("height {}", head.height()),
                            "none stored for the head",
                        )
                    })?,
            ),
            None => None,
        };
        let values = encode_append(previous, headers);
        for (h, key) in headers.iter().zip(&keys) {
            header_store
                .put(&encoded(&h.header), Some(key))
                .map_err(from_idb)?;
        }
        for (store, entries) in [
            (&validator_store, &values.validators),
            (&commit_store, &values.commits),
        ] {
            for (height, bytes) in entries {
                store
                    .put(&bytes_value(bytes), Some(&key_of(*height)?))
                    .map_err(from_idb)?;
            }
        }
        tx.commit().await?;
        self.writes += 1;
        Ok(())
    }

    async fn head(&self) -> Result<Option<StoredHeader>, IdbStoreError> {
        let store = self.read_store(HEADERS)?;
        match last_record(&store, "header", None).await? {
            Some((at, value)) => decode_header(at, &value).map(Some),
            None => Ok(None),
        }
    }

    async fn header(&self, height: u64) -> Result<Option<StoredHeader>, IdbStoreError> {
        if height > MAX_HEIGHT {
            // Never stored (append refuses it), so the exact answer is "none".
            return Ok(None);
        }
        let value = self
            .read_store(HEADERS)?
            .get(key_of(height)?)
            .map_err(from_idb)?
            .await
            .map_err(from_idb)?;
        value.map(|v| decode_header(height, &v)).transpose()
    }

    async fn next_validators(&self, height: u64) -> Result<Option<ValidatorSet>, IdbStoreError> {
        let tx = self.read(&[HEADERS, VALIDATORS])?;
        let headers = tx.object_store(HEADERS).map_err(from_idb)?;
        let validators = tx.object_store(VALIDATORS).map_err(from_idb)?;
        Ok(set_in_force(&headers, &validators, height)
            .await?
            .map(|s| s.set))
    }

    async fn prune(&mut self, keep: u64) -> Result<(), IdbStoreError> {
        let tx = WriteTx::new(&self.db, &[HEADERS, VALIDATORS, COMMITS])?;
        let headers = tx.store(HEADERS)?;
        let Some(head) = last_key(&headers, "header", None).await? else {
            return Ok(());
        };
        let lowest = head.saturating_sub(keep.saturating_sub(1));
        let below = |h: u64| upper_bound(h, true);
        // Keep the set in force at `lowest` (announced at or below it) and every later one;
        // the kept entry becomes a full set if it was a delta, so no delta loses its base.
        // Rebuilt (and checked against the header at `lowest`) before anything is deleted.
        let validators = tx.store(VALIDATORS)?;
        if let Some((in_force, value)) =
            last_record(&validators, "validator set", Some(lowest)).await?
        {
            let bytes = bytes_of("validator set", in_force, &value)?;
            if !matches!(
                StoredValidators::decode(&bytes),
                Ok(StoredValidators::Full(_))
            ) {
                let set = set_in_force(&headers, &validators, lowest)
                    .await?
                    .filter(|s| s.height == in_force)
                    .ok_or_else(|| {
                        corrupt("validator set", format!("height {in_force}"), "not rebuilt")
                    })?;
                validators
                    .put(
                        &encoded(&StoredValidators::Full(set.set)),
                        Some(&key_of(in_force)?),
                    )
                    .map_err(from_idb)?;
            }
            validators.delete(below(in_force)?).map_err(from_idb)?;
        }
        headers.delete(below(lowest)?).map_err(from_idb)?;
        tx.store(COMMITS)?
            .delete(below(lowest)?)
            .map_err(from_idb)?;
        tx.commit().await
    }

    async fn header_count(&self) -> Result<u64, IdbStoreError> {
        let count = self
            .read_store(HEADERS)?
            .count(None)
            .map_err(from_idb)?
            .await
            .map_err(from_idb)?;
        Ok(u64::from(count))
    }
}

fn parse_checkpoint(value: &JsValue) -> Result<Checkpoint, IdbStoreError> {
    let text = value
        .as_string()
        .ok_or_else(|| corrupt("checkpoint", "meta", "not a string"))?;
    Checkpoint::from_text(&text).map_err(|e| corrupt("checkpoint", "meta", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn dom_names_map_to_kinds() {
        let quota = IdbStoreError::from_dom("QuotaExceededError", "full");
        assert_eq!(quota, IdbStoreError::QuotaExceeded("full".into()));
        assert_eq!(IdbStore::failure(&quota), StoreFailure::QuotaExceeded);
        assert_eq!(
            IdbStore::failure(&IdbStoreError::from_dom("VersionError", "newer")),
            StoreFailure::Unavailable
        );
        assert_eq!(
            IdbStore::failure(&IdbStoreError::from_dom("UnknownError", "disk")),
            StoreFailure::Other
        );
    }

    #[test]
    fn keys_are_exact_or_refused() {
        assert_eq!(
            key_of(MAX_HEIGHT).unwrap().as_f64(),
            Some(MAX_HEIGHT as f64)
        );
        assert_eq!(
            key_of(MAX_HEIGHT + 1),
            Err(IdbStoreError::HeightTooLarge(MAX_HEIGHT + 1))
        );
        assert_eq!(height_of("header", &JsValue::from_f64(7.0)), Ok(7));
        assert!(height_of("header", &JsValue::from_f64(7.5)).is_err());
        assert!(height_of("header", &JsValue::from_f64(-1.0)).is_err());
        assert!(height_of("header", &JsValue::from_str("7")).is_err());
    }
}
