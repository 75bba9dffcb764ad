#![cfg(not(target_arch = "wasm32"))]
//! The `ChainStore` contract. Each behaviour is written once, over `&dyn ChainStore`, and run
//! against every backend (`memory::*`, `redb::*`); redb-only behaviours (reopening, schema
//! version, corrupt values) follow.

use headway::chain::{BlockHash, Encode, FinalizedBlock, Hash, SignedEvent, TrustedHeader};
use headway::proof::mmr::MmrPeaks;
use headway::store::{
    self, ChainStore, EventLocation, Head, RedbStore, StoreError, SCHEMA_VERSION,
};
use headway::testkit::{self, ChainBuilder};

/// Blocks in the sample chain.
const LEN: usize = 12;
/// The sample chain's hand-over: block `HAND_OVER - 1` announces the set that signs from here.
const HAND_OVER: u64 = 6;

fn finalized(chain: &mut ChainBuilder, events: Vec<SignedEvent>) -> FinalizedBlock {
    let (block, trusted) = chain.next_block(events);
    FinalizedBlock {
        block,
        commit: trusted.commit,
        next_validators: trusted.next_validators,
    }
}

/// Events for block `h`: `h % 4` of them, numbered across the chain.
fn events_for(h: u64) -> Vec<SignedEvent> {
    let source = testkit::key(1000);
    (0..h % 4)
        .map(|i| {
            let n = h * 10 + i;
            testkit::event(&source, n, 1_700_000_000_000 + n)
        })
        .collect()
}

/// A builder at the start of the sample chain: 4 validators, 5 new ones from `HAND_OVER`.
fn sample_builder() -> ChainBuilder {
    ChainBuilder::new("store-chain", 4).hand_over_at(HAND_OVER, testkit::keys(100, 5))
}

/// The sample chain's `LEN` blocks, and the builder after them (ready for block `LEN`).
fn sample_chain() -> (ChainBuilder, Vec<FinalizedBlock>) {
    let mut chain = sample_builder();
    let blocks = (0..LEN as u64)
        .map(|h| finalized(&mut chain, events_for(h)))
        .collect();
    (chain, blocks)
}

/// A store holding the sample chain, appended in batches of 1, 4 and the rest.
fn filled(store: &dyn ChainStore) -> (ChainBuilder, Vec<FinalizedBlock>) {
    let (chain, blocks) = sample_chain();
    store.append(&blocks[..1]).unwrap();
    store.append(&blocks[1..5]).unwrap();
    store.append(&blocks[5..]).unwrap();
    (chain, blocks)
}

/// A redb file holding the sample chain, closed again, to tamper with: the directory that
/// holds it (removed when dropped), its path, the blocks, and what the store read back.
fn closed_filled_redb() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    Vec<FinalizedBlock>,
    Snapshot,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let store = RedbStore::open(&path).unwrap();
    let blocks = filled(&store).1;
    let before = snapshot(&store);
    drop(store);
    (dir, path, blocks, before)
}

/// Everything readable about a store, to check that a rejected append changed nothing.
#[derive(Debug, PartialEq)]
struct Snapshot {
    head: Option<Head>,
    headers: Vec<TrustedHeader>,
    blocks: Vec<FinalizedBlock>,
    lowest: u64,
    nodes: Vec<Option<Hash>>,
}

fn snapshot(store: &dyn ChainStore) -> Snapshot {
    Snapshot {
        head: store.head().unwrap(),
        headers: store.headers(0, u32::MAX).unwrap(),
        blocks: store.blocks(0, u32::MAX).unwrap(),
        lowest: store.lowest_height().unwrap(),
        nodes: (0..5u8)
            .flat_map(|level| (0..2 * LEN as u64).map(move |index| (level, index)))
            .map(|(level, index)| store.mmr_node(level, index).unwrap())
            .collect(),
    }
}

/// Asserts that appending `blocks` fails as `check` expects and leaves the store unchanged,
/// its indexes included.
fn assert_refused(
    store: &dyn ChainStore,
    blocks: &[FinalizedBlock],
    check: impl FnOnce(&StoreError) -> bool,
) {
    let indexes = |store: &dyn ChainStore| {
        let hashes = blocks.iter().map(|b| b.block.header.hash());
        let heights: Vec<_> = hashes.map(|h| store.height_of(&h).unwrap()).collect();
        let events = blocks.iter().flat_map(|b| &b.block.events);
        let locations: Vec<_> = events
            .map(|e| store.event_location(&e.id()).unwrap())
            .collect();
        (heights, locations)
    };
    let before = (snapshot(store), indexes(store));
    let err = store.append(blocks).unwrap_err();
    assert!(check(&err), "unexpected error: {err:?}");
    assert_eq!((snapshot(store), indexes(store)), before);
}

/// `count` events no sample block holds.
fn fresh_events(count: u64) -> Vec<SignedEvent> {
    let source = testkit::key(2000);
    (0..count)
        .map(|n| testkit::event(&source, n, 1_800_000_000_000 + n))
        .collect()
}

fn is_empty(store: &dyn ChainStore) {
    assert_eq!(store.head().unwrap(), None);
    assert_eq!(store.header(0).unwrap(), None);
    assert_eq!(store.headers(0, 10).unwrap(), vec![]);
    assert_eq!(store.block(0).unwrap(), None);
    assert_eq!(store.blocks(0, 10).unwrap(), vec![]);
    assert_eq!(store.height_of(&Hash([1; 32])).unwrap(), None);
    assert_eq!(store.event_location(&Hash([1; 32])).unwrap(), None);
    assert_eq!(store.mmr_node(0, 0).unwrap(), None);
    assert_eq!(store.validators_for(5).unwrap(), None);
    assert_eq!(store.lowest_height().unwrap(), 0);
    assert_eq!(store.get_meta("identity").unwrap(), None);
    assert!(store::event_proof(store, &Hash([1; 32]), None)
        .unwrap()
        .is_none());
    assert_eq!(
        store::mmr_root_at(store, 0).unwrap(),
        Some(MmrPeaks::new().root())
    );
    assert_eq!(store::mmr_root_at(store, 1).unwrap(), None);
}

fn appends_and_reads_back_exactly(store: &dyn ChainStore) {
    let (chain, blocks) = filled(store);
    let last = blocks.last().unwrap();
    assert_eq!(
        store.head().unwrap(),
        Some(Head {
            height: LEN as u64 - 1,
            hash: last.block.header.hash(),
            peaks: chain.mmr().peaks(),
        })
    );
    for block in &blocks {
        let h = block.height();
        assert_eq!(store.header(h).unwrap(), Some(block.trusted_header()));
        assert_eq!(store.block(h).unwrap().as_ref(), Some(block));
        assert_eq!(
            store.height_of(&block.block.header.hash()).unwrap(),
            Some(h)
        );
    }
    assert_eq!(store.header(LEN as u64).unwrap(), None);
    assert_eq!(store.block(LEN as u64).unwrap(), None);
    assert_eq!(store.lowest_height().unwrap(), 0);
}

fn ranges_are_consecutive_and_stop_at_head(store: &dyn ChainStore) {
    let (_, blocks) = filled(store);
    let headers: Vec<TrustedHeader> = blocks.iter().map(FinalizedBlock::trusted_header).collect();
    assert_eq!(store.headers(0, u32::MAX).unwrap(), headers);
    assert_eq!(store.headers(3, 4).unwrap(), headers[3..7]);
    assert_eq!(
        store.headers(LEN as u64 - 2, 10).unwrap(),
        headers[LEN - 2..]
    );
    assert_eq!(store.headers(LEN as u64, 10).unwrap(), vec![]);
    assert_eq!(store.headers(2, 0).unwrap(), vec![]);
    assert_eq!(store.headers(u64::MAX, 3).unwrap(), vec![]);
    assert_eq!(store.blocks(0, u32::MAX).unwrap(), blocks);
    assert_eq!(store.blocks(5, 3).unwrap(), blocks[5..8]);
    assert_eq!(store.blocks(LEN as u64 - 1, 10).unwrap(), blocks[LEN - 1..]);
    assert_eq!(store.blocks(LEN as u64 + 1, 1).unwrap(), vec![]);
}

fn indexes_every_event(store: &dyn ChainStore) {
    let (_, blocks) = filled(store);
    let mut events = 0;
    for block in &blocks {
        for (index, event) in (0u32..).zip(&block.block.events) {
            let location = EventLocation {
                height: block.height(),
                index,
            };
            assert_eq!(store.event_location(&event.id()).unwrap(), Some(location));
            events += 1;
        }
    }
    assert!(events > 10, "the sample chain has events: {events}");
}

fn event_proofs_verify_against_head_and_earlier_headers(store: &dyn ChainStore) {
    let (_, blocks) = filled(store);
    let head = store.head().unwrap().unwrap().height;
    let head_header = store.header(head).unwrap().unwrap().header;
    for block in &blocks {
        let h = block.height();
        for (index, event) in (0u32..).zip(&block.block.events) {
            let id = event.id();
            let proof = store::event_proof(store, &id, None).unwrap().unwrap();
            let verified = proof.verify(&head_header).unwrap();
            assert_eq!((verified.event_id, verified.height), (id, h));
            assert_eq!(verified.index, index);
            for at in h..=head {
                let trusted = store.header(at).unwrap().unwrap().header;
                let proof = store::event_proof(store, &id, Some(at)).unwrap().unwrap();
                assert_eq!(proof.mmr.is_some(), at > h);
                assert_eq!(proof.verify(&trusted).unwrap().event_id, id);
            }
            if h > 0 {
                assert!(store::event_proof(store, &id, Some(h - 1))
                    .unwrap()
                    .is_none());
            }
            assert!(store::event_proof(store, &id, Some(head + 1))
                .unwrap()
                .is_none());
        }
    }
    assert!(store::event_proof(store, &Hash([7; 32]), None)
        .unwrap()
        .is_none());
}

fn mmr_root_from_nodes_matches_every_header(store: &dyn ChainStore) {
    let (_, blocks) = filled(store);
    for block in &blocks {
        let header = &block.block.header;
        assert_eq!(
            store::mmr_root_at(store, header.height).unwrap(),
            Some(header.mmr_root),
            "MMR root before block {}",
            header.height
        );
    }
    let head = store.head().unwrap().unwrap();
    assert_eq!(
        store::mmr_root_at(store, LEN as u64).unwrap(),
        Some(head.peaks.root())
    );
    assert_eq!(store::mmr_root_at(store, LEN as u64 + 1).unwrap(), None);
}

fn records_validator_set_hand_overs(store: &dyn ChainStore) {
    let (_, blocks) = filled(store);
    let announced = blocks[HAND_OVER as usize - 1].next_validators.clone();
    assert!(announced.is_some());
    assert_eq!(
        announced.as_ref().map(|s| s.hash()),
        Some(blocks[HAND_OVER as usize].block.header.validators_hash)
    );
    for h in 0..HAND_OVER {
        assert_eq!(store.validators_for(h).unwrap(), None, "height {h}");
    }
    for h in HAND_OVER..LEN as u64 + 5 {
        assert_eq!(store.validators_for(h).unwrap(), announced, "height {h}");
    }
}

fn rejects_a_first_block_after_genesis(store: &dyn ChainStore) {
    let (_, blocks) = sample_chain();
    assert_refused(store, &blocks[1..3], |e| {
        matches!(
            e,
            StoreError::NotContiguous {
                expected_height: 0,
                got: 1
            }
        )
    });
    assert_eq!(store.head().unwrap(), None);
}

fn rejects_a_gap(store: &dyn ChainStore) {
    let (mut chain, _) = filled(store);
    finalized(&mut chain, vec![]);
    let skipped = finalized(&mut chain, fresh_events(2));
    assert_refused(store, &[skipped], |e| {
        matches!(
            e,
            StoreError::NotContiguous { expected_height, got }
                if *expected_height == LEN as u64 && *got == LEN as u64 + 1
        )
    });
}

fn rejects_a_block_already_stored(store: &dyn ChainStore) {
    let (_, blocks) = filled(store);
    assert_refused(store, &blocks[3..4], |e| {
        matches!(
            e,
            StoreError::NotContiguous { expected_height, got: 3 }
                if *expected_height == LEN as u64
        )
    });
}

/// The next block of `chain` with its header changed by `tamper` and signed again.
fn tampered(
    chain: &ChainBuilder,
    events: Vec<SignedEvent>,
    tamper: impl FnOnce(&mut headway::chain::BlockHeader),
) -> FinalizedBlock {
    let mut header = chain.next_header(&events);
    tamper(&mut header);
    let commit = chain.commit_for(&header);
    FinalizedBlock {
        block: headway::chain::Block { header, events },
        commit,
        next_validators: None,
    }
}

fn rejects_a_wrong_parent(store: &dyn ChainStore) {
    let (chain, blocks) = filled(store);
    let wrong: BlockHash = Hash([9; 32]);
    let block = tampered(&chain, fresh_events(1), |h| h.parent_hash = wrong);
    let expected = blocks.last().unwrap().block.header.hash();
    assert_refused(store, &[block], |e| {
        matches!(
            e,
            StoreError::ParentMismatch { height, expected: x, got }
                if *height == LEN as u64 && *x == expected && *got == wrong
        )
    });
}

fn rejects_a_wrong_mmr_root(store: &dyn ChainStore) {
    let (chain, _) = filled(store);
    let block = tampered(&chain, fresh_events(3), |h| h.mmr_root = Hash([3; 32]));
    assert_refused(
        store,
        &[block],
        |e| matches!(e, StoreError::MmrMismatch { height } if *height == LEN as u64),
    );
    let block = tampered(&chain, vec![], |h| h.mmr_leaf_count += 1);
    assert_refused(
        store,
        &[block],
        |e| matches!(e, StoreError::MmrMismatch { height } if *height == LEN as u64),
    );
}

fn rejects_a_commit_for_another_block(store: &dyn ChainStore) {
    let (mut chain, _) = filled(store);
    let other = tampered(&chain, vec![], |h| h.timestamp_ms += 1);
    let mut block = finalized(&mut chain, fresh_events(3));
    block.commit = other.commit;
    assert_refused(
        store,
        &[block.clone()],
        |e| matches!(e, StoreError::CommitMismatch { height } if *height == LEN as u64),
    );
    let mut late = block;
    late.commit = chain.commit_for(&late.block.header);
    late.commit.height += 1;
    assert_refused(
        store,
        &[late],
        |e| matches!(e, StoreError::CommitMismatch { height } if *height == LEN as u64),
    );
}

fn rejects_events_the_header_does_not_commit_to(store: &dyn ChainStore) {
    let (mut chain, _) = filled(store);
    let mut block = finalized(&mut chain, fresh_events(2));
    block.block.events.swap(0, 1);
    assert_refused(
        store,
        &[block.clone()],
        |e| matches!(e, StoreError::BodyMismatch { height } if *height == LEN as u64),
    );
    block.block.events.pop();
    assert_refused(
        store,
        &[block],
        |e| matches!(e, StoreError::BodyMismatch { height } if *height == LEN as u64),
    );
}

fn a_failed_batch_writes_nothing(store: &dyn ChainStore) {
    let (_, blocks) = sample_chain();
    store.append(&blocks[..4]).unwrap();
    let mut bad = blocks[4..9].to_vec();
    bad[4].commit.block_hash = Hash([1; 32]);
    assert_refused(store, &bad, |e| {
        matches!(e, StoreError::CommitMismatch { height: 8 })
    });
    assert_eq!(store.mmr_node(0, 4).unwrap(), None);
    assert_eq!(store.validators_for(HAND_OVER).unwrap(), None);
    // The same batch, intact, goes in.
    store.append(&blocks[4..9]).unwrap();
    assert_eq!(store.head().unwrap().unwrap().height, 8);
    assert!(store.validators_for(HAND_OVER).unwrap().is_some());
}

fn empty_batch_is_a_no_op(store: &dyn ChainStore) {
    store.append(&[]).unwrap();
    assert_eq!(store.head().unwrap(), None);
    let (_, blocks) = filled(store);
    let before = snapshot(store);
    store.append(&[]).unwrap();
    assert_eq!(snapshot(store), before);
    assert_eq!(before.blocks, blocks);
}

fn an_event_seen_twice_keeps_its_first_location(store: &dyn ChainStore) {
    let mut chain = sample_builder();
    let event = testkit::event(&testkit::key(1000), 1, 1);
    let blocks = [
        finalized(&mut chain, vec![]),
        finalized(&mut chain, vec![event.clone()]),
        finalized(&mut chain, vec![event.clone(), event.clone()]),
    ];
    store.append(&blocks[..2]).unwrap();
    store.append(&blocks[2..]).unwrap();
    let first = EventLocation {
        height: 1,
        index: 0,
    };
    assert_eq!(store.event_location(&event.id()).unwrap(), Some(first));
}

fn meta_round_trips(store: &dyn ChainStore) {
    assert_eq!(store.get_meta("identity").unwrap(), None);
    store.put_meta("identity", b"key-1").unwrap();
    store.put_meta("peers", b"").unwrap();
    assert_eq!(store.get_meta("identity").unwrap(), Some(b"key-1".to_vec()));
    assert_eq!(store.get_meta("peers").unwrap(), Some(vec![]));
    store.put_meta("identity", &[0xff; 1000]).unwrap();
    assert_eq!(store.get_meta("identity").unwrap(), Some(vec![0xff; 1000]));
    // Meta lives apart from the chain, also under names the store uses internally.
    store.put_meta("head", b"not a head").unwrap();
    store.put_meta("schema_version", b"x").unwrap();
    assert_eq!(store.head().unwrap(), None);
    filled(store);
    assert_eq!(
        store.get_meta("head").unwrap(),
        Some(b"not a head".to_vec())
    );
}

/// Runs each behaviour against a fresh store of every backend.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[test]
                fn $name() {
                    super::$name(&headway::store::MemoryStore::new());
                }
            )*
        }

        mod redb {
            $(
                #[test]
                fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let path = dir.path().join("chain.redb");
                    super::$name(&headway::store::RedbStore::open(path).unwrap());
                }
            )*
        }
    };
}

on_every_backend!(
    is_empty,
    appends_and_reads_back_exactly,
    ranges_are_consecutive_and_stop_at_head,
    indexes_every_event,
    event_proofs_verify_against_head_and_earlier_headers,
    mmr_root_from_nodes_matches_every_header,
    records_validator_set_hand_overs,
    rejects_a_first_block_after_genesis,
    rejects_a_gap,
    rejects_a_block_already_stored,
    rejects_a_wrong_parent,
    rejects_a_wrong_mmr_root,
    rejects_a_commit_for_another_block,
    rejects_events_the_header_does_not_commit_to,
    a_failed_batch_writes_nothing,
    empty_batch_is_a_no_op,
    an_event_seen_twice_keeps_its_first_location,
    meta_round_trips,
);

// ---- redb only: the file on disk ----

/// The store's on-disk tables, as a raw redb user sees them (see `src/store/redb.rs`).
const META: ::redb::TableDefinition<&str, &[u8]> = ::redb::TableDefinition::new("meta");
const HEADERS: ::redb::TableDefinition<&[u8; 8], &[u8]> = ::redb::TableDefinition::new("headers");
const BODIES: ::redb::TableDefinition<&[u8; 8], &[u8]> =
    ::redb::TableDefinition::new("block_bodies");

/// Writes `value` under `key` of `table` with redb directly (the store must be closed).
fn raw_write<K: ::redb::Key + 'static>(
    path: &std::path::Path,
    table: ::redb::TableDefinition<'_, K, &'static [u8]>,
    key: K::SelfType<'_>,
    value: &[u8],
) {
    let db = ::redb::Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(table).unwrap().insert(key, value).unwrap();
    txn.commit().unwrap();
}

#[test]
fn redb_reopens_with_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/chain.redb");
    let (mut chain, blocks, before) = {
        let store = RedbStore::open(&path).unwrap();
        let (chain, blocks) = filled(&store);
        store.put_meta("identity", b"k").unwrap();
        (chain, blocks, snapshot(&store))
    };
    let store = RedbStore::open(&path).unwrap();
    assert_eq!(snapshot(&store), before);
    assert_eq!(store.get_meta("identity").unwrap(), Some(b"k".to_vec()));
    let id = blocks[7].block.events[2].id();
    let proof = store::event_proof(&store, &id, None).unwrap().unwrap();
    proof.verify(&blocks[LEN - 1].block.header).unwrap();
    assert!(store.validators_for(HAND_OVER).unwrap().is_some());
    // And it goes on from where it was.
    store.append(&[finalized(&mut chain, vec![])]).unwrap();
    assert_eq!(store.head().unwrap().unwrap().height, LEN as u64);
}

#[test]
fn redb_refuses_a_second_open_of_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let _store = RedbStore::open(&path).unwrap();
    assert!(matches!(
        RedbStore::open(&path),
        Err(StoreError::Backend(_))
    ));
}

#[test]
fn redb_rejects_another_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    drop(RedbStore::open(&path).unwrap());
    for other in [0, SCHEMA_VERSION + 1] {
        raw_write(&path, META, "schema_version", &other.to_le_bytes());
        let err = RedbStore::open(&path).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::SchemaMismatch {
                    found,
                    expected: SCHEMA_VERSION
                } if found == other
            ),
            "{err:?}"
        );
        assert!(
            err.to_string().contains(&format!("schema version {other}")),
            "{err}"
        );
    }
}

#[test]
fn redb_rejects_a_database_that_is_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.redb");
    raw_write(
        &path,
        ::redb::TableDefinition::<&str, &[u8]>::new("x"),
        "k",
        b"v",
    );
    assert!(matches!(
        RedbStore::open(&path),
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn redb_reports_corrupt_values_without_panicking() {
    let (_dir, path, blocks, _) = closed_filled_redb();
    raw_write(&path, HEADERS, &3u64.to_be_bytes(), b"garbage");
    // A valid header stored under another height is corrupt too.
    let header_2 = blocks[2].trusted_header().encode();
    raw_write(&path, HEADERS, &5u64.to_be_bytes(), &header_2);
    raw_write(&path, META, "head", &[1, 2, 3]);

    let store = RedbStore::open(&path).unwrap();
    assert!(matches!(store.header(3), Err(StoreError::Corrupt(_))));
    assert!(matches!(store.header(5), Err(StoreError::Corrupt(_))));
    assert!(matches!(store.headers(0, 10), Err(StoreError::Corrupt(_))));
    assert_eq!(store.headers(0, 3).unwrap().len(), 3);
    assert!(matches!(store.head(), Err(StoreError::Corrupt(_))));
    let mut chain = sample_chain().0;
    let next = finalized(&mut chain, vec![]);
    assert!(matches!(store.append(&[next]), Err(StoreError::Corrupt(_))));
    let message = store.header(3).unwrap_err().to_string();
    assert!(message.contains("header at height 3"), "{message}");
}

#[test]
fn redb_reports_a_corrupt_or_orphan_block_body() {
    let (_dir, path, blocks, _) = closed_filled_redb();
    // A body that does not decode, and one at a height without a header.
    raw_write(&path, BODIES, &4u64.to_be_bytes(), &[9, 9, 9]);
    let beyond = LEN as u64 + 3;
    raw_write(&path, BODIES, &beyond.to_be_bytes(), &[0, 0, 0, 0]);

    let store = RedbStore::open(&path).unwrap();
    let message = store.block(4).unwrap_err().to_string();
    assert!(message.contains("body at height 4"), "{message}");
    assert!(matches!(store.blocks(2, 5), Err(StoreError::Corrupt(_))));
    // The blocks before it are still read, and its header is intact.
    assert_eq!(store.blocks(0, 4).unwrap(), blocks[..4].to_vec());
    assert_eq!(store.header(4).unwrap(), Some(blocks[4].trusted_header()));
    let message = store.block(beyond).unwrap_err().to_string();
    assert!(message.contains("has a body and no header"), "{message}");
}

/// A store of schema 1 kept whole blocks in a `blocks` table beside the headers.
const SCHEMA_1_BLOCKS: ::redb::TableDefinition<&[u8; 8], &[u8]> =
    ::redb::TableDefinition::new("blocks");

#[test]
fn redb_migrates_a_store_of_schema_1() {
    let (_dir, path, blocks, before) = closed_filled_redb();
    // Turn it into what schema 1 wrote: whole blocks, no bodies table.
    {
        let db = ::redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut old = txn.open_table(SCHEMA_1_BLOCKS).unwrap();
            for block in &blocks {
                old.insert(&block.height().to_be_bytes(), block.encode().as_slice())
                    .unwrap();
            }
            txn.open_table(META)
                .unwrap()
                .insert("schema_version", 1u32.to_le_bytes().as_slice())
                .unwrap();
        }
        assert!(txn.delete_table(BODIES).unwrap());
        txn.commit().unwrap();
    }

    let store = RedbStore::open(&path).unwrap();
    assert_eq!(snapshot(&store), before);
    assert_eq!(store.blocks(0, LEN as u32).unwrap(), blocks);
    drop(store);
    let db = ::redb::Database::create(&path).unwrap();
    let txn = ::redb::ReadableDatabase::begin_read(&db).unwrap();
    let schema = txn.open_table(META).unwrap();
    let version = schema.get("schema_version").unwrap().unwrap();
    assert_eq!(version.value(), SCHEMA_VERSION.to_le_bytes());
    assert!(
        txn.open_table(SCHEMA_1_BLOCKS).is_err(),
        "the old table is gone"
    );
}
