//! The on-disk [`ChainStore`]: one redb database file.
//!
//! Every [`ChainStore::append`] is one redb write transaction, committed with redb's default
//! immediate durability (fsync before `commit` returns), so after a crash at any moment the
//! store reopens at exactly the last committed append.
//!
//! Layout (schema version [`SCHEMA_VERSION`]). Keys are big-endian so ranges iterate in height
//! order; values are the crate's canonical encoding.
//!
//! | table            | key                              | value                              |
//! |------------------|----------------------------------|------------------------------------|
//! | `meta`           | `"schema_version"`, `"head"`     | `u32` LE; [`Head`]                 |
//! | `headers`        | height (`u64` BE)                | [`TrustedHeader`]                  |
//! | `block_bodies`   | height (`u64` BE)                | the block's events: `seq(SignedEvent)` |
//! | `block_hashes`   | block hash                       | height (`u64`)                     |
//! | `events`         | event id                         | [`EventLocation`]                  |
//! | `mmr_nodes`      | level (`u8`) ‖ index (`u64` BE)  | hash                               |
//! | `validator_sets` | announcing height (`u64` BE)     | [`ValidatorSet`] signing from h + 1 |
//! | `node_meta`      | name (UTF-8)                     | bytes ([`ChainStore::put_meta`])   |
//!
//! A block is its `headers` row (header, commit, announced set) and its `block_bodies` row
//! (events): the commit, most of a block's bytes with many validators, is stored once. Schema 1
//! stored whole blocks beside the headers, every commit twice; [`RedbStore::open`] migrates
//! such a store in place. The height of a warp-sync snapshot has a header and no body.

use std::borrow::Borrow;
use std::fmt;
use std::path::{Path, PathBuf};

use ::redb::{
    Database, Key, ReadTransaction, ReadableDatabase, ReadableTable, Table, TableDefinition,
    TableHandle, WriteTransaction,
};

use super::append::{plan, plan_snapshot, Plan};
use super::{check_height, decode_stored, ChainStore, EventLocation, Head, StoreError};
use crate::chain::{
    Block, BlockHash, Decode, DecodeError, Encode, EventId, FinalizedBlock, Hash, Reader,
    TrustedHeader, ValidatorSet, Writer, MAX_BLOCK_EVENTS,
};
use crate::protocol::snapshot::Snapshot;

/// The layout version this build reads and writes; [`RedbStore::open`] migrates schema 1 and
/// refuses any other.
pub const SCHEMA_VERSION: u32 = 2;

/// redb's page cache: enough for the hot top of every table, modest for a small node.
const CACHE_BYTES: usize = 64 << 20;

type HeightKey = [u8; 8];
type NodeKey = [u8; 9];

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const HEADERS: TableDefinition<&HeightKey, &[u8]> = TableDefinition::new("headers");
const BODIES: TableDefinition<&HeightKey, &[u8]> = TableDefinition::new("block_bodies");
const BLOCK_HASHES: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("block_hashes");
const EVENTS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("events");
const MMR_NODES: TableDefinition<&NodeKey, &[u8]> = TableDefinition::new("mmr_nodes");
const VALIDATOR_SETS: TableDefinition<&HeightKey, &[u8]> = TableDefinition::new("validator_sets");
const NODE_META: TableDefinition<&str, &[u8]> = TableDefinition::new("node_meta");

const SCHEMA_KEY: &str = "schema_version";
const HEAD_KEY: &str = "head";

fn height_key(height: u64) -> HeightKey {
    height.to_be_bytes()
}

fn key_height(key: &HeightKey) -> u64 {
    u64::from_be_bytes(*key)
}

fn node_key(level: u8, index: u64) -> NodeKey {
    let mut key = [0u8; 9];
    key[0] = level;
    key[1..].copy_from_slice(&index.to_be_bytes());
    key
}

/// A redb error as a store error: I/O stays I/O, the rest is the backend's message.
fn backend(e: impl Into<::redb::Error>) -> StoreError {
    match e.into() {
        ::redb::Error::Io(e) => StoreError::Io(e),
        other => StoreError::Backend(other.to_string()),
    }
}

/// A [`ChainStore`] in a redb database file.
pub struct RedbStore {
    db: Database,
    path: PathBuf,
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RedbStore {
    /// Opens the store at `path`, creating the file (and its directory) if missing, migrating
    /// a store of schema 1. Fails with
    /// [`StoreError::SchemaMismatch`] on a store of another layout version, and with
    /// [`StoreError::Backend`] if another process has it open.
    pub fn open(path: impl AsRef<Path>) -> Result<RedbStore, StoreError> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(backend)?;
        init_schema(&db)?;
        Ok(RedbStore {
            db,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<ReadTransaction, StoreError> {
        self.db.begin_read().map_err(backend)
    }

    /// The value under `key` in `table`, decoded.
    fn get<'k, K: Key + 'static, T: Decode>(
        &self,
        table: TableDefinition<'static, K, &'static [u8]>,
        key: impl Borrow<K::SelfType<'k>>,
        what: fmt::Arguments<'_>,
    ) -> Result<Option<T>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(table).map_err(backend)?;
        let value = table.get(key).map_err(backend)?;
        value.map(|v| decode_stored(what, v.value())).transpose()
    }

    /// Up to `count` consecutive values from `start` in a height-keyed table.
    fn consecutive<T: Decode>(
        &self,
        table: TableDefinition<'static, &'static HeightKey, &'static [u8]>,
        start: u64,
        count: u32,
        height_of: impl Fn(&T) -> u64,
    ) -> Result<Vec<T>, StoreError> {
        let what = table.name();
        let txn = self.read()?;
        let table = txn.open_table(table).map_err(backend)?;
        consecutive_rows(&table, start, count, |height, value| {
            let item: T = decode_stored(format_args!("{what} at height {height}"), value)?;
            check_height(what, height, height_of(&item))?;
            Ok(item)
        })
    }
}

/// `f(height, value)` of up to `count` rows of a height-keyed table, from `start` up to the
/// first missing height.
fn consecutive_rows<T>(
    table: &impl ReadableTable<&'static HeightKey, &'static [u8]>,
    start: u64,
    count: u32,
    mut f: impl FnMut(u64, &[u8]) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::with_capacity((count as usize).min(1024));
    let mut expected = start;
    for entry in table
        .range::<&HeightKey>(&height_key(start)..)
        .map_err(backend)?
    {
        if out.len() >= count as usize {
            break;
        }
        let (key, value) = entry.map_err(backend)?;
        let height = key_height(key.value());
        if height != expected {
            break;
        }
        out.push(f(height, value.value())?);
        match expected.checked_add(1) {
            Some(next) => expected = next,
            None => break,
        }
    }
    Ok(out)
}

/// Checks the schema version of an existing store, or writes it and creates every table in a
/// new one (so that reads never meet a missing table).
fn init_schema(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(backend)?;
    {
        let mut meta = txn.open_table(META).map_err(backend)?;
        let found = meta.get(SCHEMA_KEY).map_err(backend)?.map(|v| {
            <[u8; 4]>::try_from(v.value())
                .map(u32::from_le_bytes)
                .map_err(|_| {
                    StoreError::Corrupt(format!(
                        "schema version is {} bytes, expected 4",
                        v.value().len()
                    ))
                })
        });
        match found.transpose()? {
            Some(1) => {
                migrate_from_schema_1(&txn)?;
                meta.insert(SCHEMA_KEY, SCHEMA_VERSION.to_le_bytes().as_slice())
                    .map_err(backend)?;
                tracing::info!("store migrated from schema 1 to {SCHEMA_VERSION}");
            }
            Some(found) if found != SCHEMA_VERSION => {
                return Err(StoreError::SchemaMismatch {
                    found,
                    expected: SCHEMA_VERSION,
                })
            }
            Some(_) => {}
            None => {
                let foreign = txn
                    .list_tables()
                    .map_err(backend)?
                    .find(|t| t.name() != META.name());
                if let Some(table) = foreign {
                    return Err(StoreError::Corrupt(format!(
                        "the database has a table {:?} but no schema version: not a headway store",
                        table.name()
                    )));
                }
                meta.insert(SCHEMA_KEY, SCHEMA_VERSION.to_le_bytes().as_slice())
                    .map_err(backend)?;
            }
        }
    }
    txn.open_table(HEADERS).map_err(backend)?;
    txn.open_table(BODIES).map_err(backend)?;
    txn.open_table(BLOCK_HASHES).map_err(backend)?;
    txn.open_table(EVENTS).map_err(backend)?;
    txn.open_table(MMR_NODES).map_err(backend)?;
    txn.open_table(VALIDATOR_SETS).map_err(backend)?;
    txn.open_table(NODE_META).map_err(backend)?;
    txn.commit().map_err(backend)
}

/// Schema 1's table of whole blocks (header, events, commit, announced set).
const SCHEMA_1_BLOCKS: TableDefinition<&HeightKey, &[u8]> = TableDefinition::new("blocks");

/// Schema 1 to 2: each whole block becomes its events in `block_bodies` (its header, commit and
/// set are in `headers` already). Inside the opening transaction, so a crash leaves schema 1.
fn migrate_from_schema_1(txn: &WriteTransaction) -> Result<(), StoreError> {
    {
        let old = txn.open_table(SCHEMA_1_BLOCKS).map_err(backend)?;
        let mut bodies = txn.open_table(BODIES).map_err(backend)?;
        let mut w = Writer::new();
        for entry in old.iter().map_err(backend)? {
            let (key, value) = entry.map_err(backend)?;
            let height = key_height(key.value());
            let block: FinalizedBlock = decode_stored(
                format_args!("schema 1 block at height {height}"),
                value.value(),
            )?;
            check_height("block", height, block.height())?;
            w.clear();
            w.seq(&block.block.events);
            bodies.insert(key.value(), w.as_bytes()).map_err(backend)?;
        }
    }
    txn.delete_table(SCHEMA_1_BLOCKS).map_err(backend)?;
    Ok(())
}

fn read_head(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Option<Head>, StoreError> {
    meta.get(HEAD_KEY)
        .map_err(backend)?
        .map(|v| decode_stored(format_args!("head record"), v.value()))
        .transpose()
}

/// Writes a checked plan inside `txn`.
fn write_plan(txn: &WriteTransaction, plan: &Plan<'_>) -> Result<(), StoreError> {
    let mut headers = txn.open_table(HEADERS).map_err(backend)?;
    let mut bodies = txn.open_table(BODIES).map_err(backend)?;
    let mut hashes = txn.open_table(BLOCK_HASHES).map_err(backend)?;
    let mut events = txn.open_table(EVENTS).map_err(backend)?;
    let mut nodes = txn.open_table(MMR_NODES).map_err(backend)?;
    let mut sets = txn.open_table(VALIDATOR_SETS).map_err(backend)?;
    let mut w = Writer::new();
    for p in &plan.blocks {
        let key = height_key(p.height);
        w.clear();
        p.block.encode_trusted_header_to(&mut w);
        headers.insert(&key, w.as_bytes()).map_err(backend)?;
        w.clear();
        w.seq(&p.block.block.events);
        bodies.insert(&key, w.as_bytes()).map_err(backend)?;
        hashes
            .insert(p.hash.as_bytes(), p.height.encode().as_slice())
            .map_err(backend)?;
        for (id, location) in p.events() {
            insert_first(&mut events, id, &location)?;
        }
        for (level, index, node) in &p.mmr_nodes {
            nodes
                .insert(&node_key(*level, *index), node.as_bytes().as_slice())
                .map_err(backend)?;
        }
        if let Some(set) = &p.block.next_validators {
            sets.insert(&key, set.encode().as_slice())
                .map_err(backend)?;
        }
    }
    let mut meta = txn.open_table(META).map_err(backend)?;
    meta.insert(HEAD_KEY, plan.head.encode().as_slice())
        .map_err(backend)?;
    Ok(())
}

/// The block at `height` from its stored header and body.
fn assemble(height: u64, header: &[u8], body: &[u8]) -> Result<FinalizedBlock, StoreError> {
    let header: TrustedHeader = decode_stored(format_args!("header at height {height}"), header)?;
    check_height("header", height, header.header.height)?;
    let events = (|| {
        let mut r = Reader::new(body);
        let events = r.seq("block events", MAX_BLOCK_EVENTS)?;
        r.finish()?;
        Ok(events)
    })()
    .map_err(|e: DecodeError| StoreError::Corrupt(format!("body at height {height}: {e}")))?;
    Ok(FinalizedBlock {
        block: Block {
            header: header.header,
            events,
        },
        commit: header.commit,
        next_validators: header.next_validators,
    })
}

/// An event id keeps its first location.
fn insert_first(
    events: &mut Table<'_, &'static [u8; 32], &'static [u8]>,
    id: &EventId,
    location: &EventLocation,
) -> Result<(), StoreError> {
    if events.get(id.as_bytes()).map_err(backend)?.is_none() {
        events
            .insert(id.as_bytes(), location.encode().as_slice())
            .map_err(backend)?;
    }
    Ok(())
}

impl ChainStore for RedbStore {
    fn head(&self) -> Result<Option<Head>, StoreError> {
        let txn = self.read()?;
        let meta = txn.open_table(META).map_err(backend)?;
        read_head(&meta)
    }

    fn append(&self, blocks: &[FinalizedBlock]) -> Result<(), StoreError> {
        if blocks.is_empty() {
            return Ok(());
        }
        // The head is read inside the write transaction: redb has one writer at a time, so no
        // other append can move it between the check and the commit. An early return drops
        // `txn`, which aborts it.
        let txn = self.db.begin_write().map_err(backend)?;
        let head = {
            let meta = txn.open_table(META).map_err(backend)?;
            read_head(&meta)?
        };
        let Some(plan) = plan(head.as_ref(), blocks)? else {
            return Ok(());
        };
        write_plan(&txn, &plan)?;
        txn.commit().map_err(backend)
    }

    fn install_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(backend)?;
        let head = {
            let meta = txn.open_table(META).map_err(backend)?;
            read_head(&meta)?
        };
        let plan = plan_snapshot(head.as_ref(), snapshot)?;
        {
            let key = height_key(plan.height);
            txn.open_table(HEADERS)
                .map_err(backend)?
                .insert(&key, plan.header.encode().as_slice())
                .map_err(backend)?;
            txn.open_table(BLOCK_HASHES)
                .map_err(backend)?
                .insert(plan.hash.as_bytes(), plan.height.encode().as_slice())
                .map_err(backend)?;
            let mut nodes = txn.open_table(MMR_NODES).map_err(backend)?;
            for (level, index, node) in &plan.mmr_nodes {
                nodes
                    .insert(&node_key(*level, *index), node.as_bytes().as_slice())
                    .map_err(backend)?;
            }
            txn.open_table(VALIDATOR_SETS)
                .map_err(backend)?
                .insert(&key, plan.next_validators.encode().as_slice())
                .map_err(backend)?;
            txn.open_table(META)
                .map_err(backend)?
                .insert(HEAD_KEY, plan.head.encode().as_slice())
                .map_err(backend)?;
        }
        txn.commit().map_err(backend)
    }

    fn header(&self, height: u64) -> Result<Option<TrustedHeader>, StoreError> {
        let header: Option<TrustedHeader> = self.get(
            HEADERS,
            &height_key(height),
            format_args!("header at height {height}"),
        )?;
        if let Some(h) = &header {
            check_height("header", height, h.header.height)?;
        }
        Ok(header)
    }

    fn headers(&self, start: u64, count: u32) -> Result<Vec<TrustedHeader>, StoreError> {
        self.consecutive(HEADERS, start, count, |h: &TrustedHeader| h.header.height)
    }

    fn block(&self, height: u64) -> Result<Option<FinalizedBlock>, StoreError> {
        Ok(self.blocks(height, 1)?.pop())
    }

    fn blocks(&self, start: u64, count: u32) -> Result<Vec<FinalizedBlock>, StoreError> {
        let txn = self.read()?;
        let bodies = txn.open_table(BODIES).map_err(backend)?;
        let headers = txn.open_table(HEADERS).map_err(backend)?;
        // Both tables hold every height from the lowest block on, so they are read in step.
        let mut header_rows = headers
            .range::<&HeightKey>(&height_key(start)..)
            .map_err(backend)?;
        consecutive_rows(&bodies, start, count, |height, body| {
            match header_rows.next().transpose().map_err(backend)? {
                Some((key, header)) if key_height(key.value()) == height => {
                    assemble(height, header.value(), body)
                }
                _ => Err(StoreError::Corrupt(format!(
                    "the block at height {height} has a body and no header"
                ))),
            }
        })
    }

    fn height_of(&self, hash: &BlockHash) -> Result<Option<u64>, StoreError> {
        self.get(
            BLOCK_HASHES,
            hash.as_bytes(),
            format_args!("height of block {hash}"),
        )
    }

    fn event_location(&self, id: &EventId) -> Result<Option<EventLocation>, StoreError> {
        self.get(
            EVENTS,
            id.as_bytes(),
            format_args!("location of event {id}"),
        )
    }

    fn mmr_node(&self, level: u8, index: u64) -> Result<Option<Hash>, StoreError> {
        self.get(
            MMR_NODES,
            &node_key(level, index),
            format_args!("MMR node ({level}, {index})"),
        )
    }

    fn validators_for(&self, height: u64) -> Result<Option<ValidatorSet>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(VALIDATOR_SETS).map_err(backend)?;
        let last = table
            .range::<&HeightKey>(..&height_key(height))
            .map_err(backend)?
            .next_back()
            .transpose()
            .map_err(backend)?;
        last.map(|(key, value)| {
            decode_stored(
                format_args!(
                    "validator set announced at height {}",
                    key_height(key.value())
                ),
                value.value(),
            )
        })
        .transpose()
    }

    fn lowest_height(&self) -> Result<u64, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(BODIES).map_err(backend)?;
        if let Some((key, _)) = table.first().map_err(backend)? {
            return Ok(key_height(key.value()));
        }
        // Started from a snapshot, no block since: its header's height.
        let meta = txn.open_table(META).map_err(backend)?;
        Ok(read_head(&meta)?.map_or(0, |h| h.height))
    }

    fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(NODE_META).map_err(backend)?;
        let value = table.get(key).map_err(backend)?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(backend)?;
        txn.open_table(NODE_META)
            .map_err(backend)?
            .insert(key, value)
            .map_err(backend)?;
        txn.commit().map_err(backend)
    }
}
