//! The header-store contract, one set of test bodies run against every store: the in-memory
//! store (natively and in headless Chromium) and the IndexedDB store (in the browser only):
//! append rules, reads, validator sets across a hand-over, pruning, refused writes that leave
//! nothing behind, validator sets stored as deltas across many hand-overs (rebuilt exactly,
//! kept rebuildable by pruning, corruption reported), hand-over commits kept as their quorum
//! prefix, bytes per header with 100 validators; then what only IndexedDB has: reopening, an
//! old schema, the Web Lock, corrupted values, DOMException mapping and stored size.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use std::sync::OnceLock;

use headway::chain::{Checkpoint, Encode, TrustedHeader, ValidatorSet};
use headway::client::HeaderStore;
use headway::light::{
    quorum_commit, LightStore, LightStoreError, MemoryLightStore, StoreBytes, StoredHeader,
    StoredValidators, ValidatorDelta, VerifiedHeader, MAX_DELTAS,
};
use headway::testkit::{self, ChainBuilder};

/// Heights 0..TIP; block HAND_OVER is the first the new set signs, so HAND_OVER − 1 announces it.
const TIP: u64 = 20;
const HAND_OVER: u64 = 10;
const ANNOUNCED: u64 = HAND_OVER - 1;

struct Fixture {
    checkpoint: Checkpoint,
    /// A checkpoint of another chain.
    other_checkpoint: Checkpoint,
    /// Heights 0..TIP as the light machine hands them to the store.
    headers: Vec<VerifiedHeader>,
    /// Heights 0..TIP of another chain (same heights, other parents).
    other_headers: Vec<VerifiedHeader>,
    old_set: ValidatorSet,
    new_set: ValidatorSet,
}

/// What the machine emits: the anchor with the checkpoint's set, then each header with its
/// next set and commit only where it hands over (see `light::sync`).
fn verified(chain_id: &str) -> (Checkpoint, Vec<VerifiedHeader>) {
    let mut builder = ChainBuilder::new(chain_id, 4).hand_over_at(HAND_OVER, testkit::keys(100, 5));
    let anchor = builder.next_block(Vec::new()).1;
    let checkpoint = builder.checkpoint().expect("checkpoint after block 0");
    let mut headers = vec![VerifiedHeader {
        header: StoredHeader::new(anchor.header),
        next_validators: Some(checkpoint.validators.clone()),
        commit: None,
    }];
    let rest: Vec<TrustedHeader> = builder.headers(TIP as usize - 1);
    for th in rest {
        let hands_over = th.header.hands_over();
        headers.push(VerifiedHeader {
            header: StoredHeader::new(th.header),
            next_validators: if hands_over { th.next_validators } else { None },
            commit: hands_over.then_some(th.commit),
        });
    }
    (checkpoint, headers)
}

fn fixture() -> Fixture {
    let (checkpoint, headers) = verified("store-test");
    let (other_checkpoint, other_headers) = verified("store-other");
    let old_set = checkpoint.validators.clone();
    let new_set = testkit::validator_set(&testkit::keys(100, 5));
    assert!(headers[ANNOUNCED as usize].next_validators.as_ref() == Some(&new_set));
    assert!(headers[ANNOUNCED as usize].commit.is_some());
    assert_eq!(
        headers
            .iter()
            .filter(|h| h.next_validators.is_some())
            .count(),
        2,
        "the anchor and the hand-over carry sets"
    );
    Fixture {
        checkpoint,
        other_checkpoint,
        headers,
        other_headers,
        old_set,
        new_set,
    }
}

/// A chain of `validators` equal-power keys handing over every `every` blocks, each time to
/// the same keys but one (the lowest leaves, the next one joins), as the light machine hands
/// it to the store (full commits: the stores keep their quorum prefix). Heights 0..tip.
struct Rotating {
    headers: Vec<VerifiedHeader>,
    /// Per height, the set that signs the block after it.
    next_sets: Vec<ValidatorSet>,
    /// The hand-over commits as stored: quorum prefixes.
    commits: Vec<headway::chain::Commit>,
}

fn rotating(chain_id: &str, validators: usize, every: u64, tip: u64) -> Rotating {
    let set_of = |k: u64| testkit::validator_set(&testkit::keys(k, validators));
    let mut builder = ChainBuilder::new(chain_id, validators);
    for k in 1..=tip / every {
        builder = builder.hand_over_at(k * every, testkit::keys(k, validators));
    }
    let anchor = builder.next_block(Vec::new()).1;
    let checkpoint = builder.checkpoint().expect("checkpoint after block 0");
    let mut headers = vec![VerifiedHeader {
        header: StoredHeader::new(anchor.header),
        next_validators: Some(checkpoint.validators.clone()),
        commit: None,
    }];
    let mut commits = Vec::new();
    for th in builder.headers(tip as usize - 1) {
        let hands_over = th.header.hands_over();
        if hands_over {
            let signers = set_of(th.header.height / every);
            commits.push(quorum_commit(&signers, &th.commit));
        }
        headers.push(VerifiedHeader {
            header: StoredHeader::new(th.header),
            next_validators: if hands_over { th.next_validators } else { None },
            commit: hands_over.then_some(th.commit),
        });
    }
    let next_sets = (0..tip).map(|h| set_of((h + 1) / every)).collect();
    Rotating {
        headers,
        next_sets,
        commits,
    }
}

/// Heights 0..DELTA_TIP, a hand-over every DELTA_EVERY blocks: more hand-overs than
/// MAX_DELTAS, so a full set is stored again.
const DELTA_TIP: u64 = 60;
const DELTA_EVERY: u64 = 3;
const DELTA_VALIDATORS: usize = 8;

fn deltas() -> &'static Rotating {
    static CHAIN: OnceLock<Rotating> = OnceLock::new();
    CHAIN.get_or_init(|| rotating("delta-test", DELTA_VALIDATORS, DELTA_EVERY, DELTA_TIP))
}

/// What a store holds, in bytes of stored values, whatever the store.
#[allow(async_fn_in_trait)]
trait Sizes {
    async fn sizes(&self) -> StoreBytes;
}

impl Sizes for MemoryLightStore {
    async fn sizes(&self) -> StoreBytes {
        self.bytes()
    }
}

/// Overwrites a stored validator-set entry, as a faulty disk would, whatever the store.
#[allow(async_fn_in_trait)]
trait Overwrite {
    async fn overwrite_set(&mut self, height: u64, bytes: Vec<u8>);
}

impl Overwrite for MemoryLightStore {
    async fn overwrite_set(&mut self, height: u64, bytes: Vec<u8>) {
        self.overwrite_validators(height, bytes);
    }
}

/// Whether a store's error reports corrupt stored data.
trait IsCorrupt {
    fn is_corrupt(&self) -> bool;
}

impl IsCorrupt for LightStoreError {
    fn is_corrupt(&self) -> bool {
        matches!(self, LightStoreError::Corrupt(_))
    }
}

#[cfg(target_arch = "wasm32")]
impl IsCorrupt for headway::client::IdbStoreError {
    fn is_corrupt(&self) -> bool {
        matches!(self, headway::client::IdbStoreError::Corrupt { .. })
    }
}

/// The append rule a store's error reports, whatever the store's error type.
trait Rule {
    fn rule(&self) -> Option<LightStoreError>;
}

impl Rule for LightStoreError {
    fn rule(&self) -> Option<LightStoreError> {
        Some(self.clone())
    }
}

#[cfg(target_arch = "wasm32")]
impl Rule for headway::client::IdbStoreError {
    fn rule(&self) -> Option<LightStoreError> {
        headway::client::IdbStoreError::rule(self).cloned()
    }
}

fn at(f: &Fixture, height: u64) -> &StoredHeader {
    &f.headers[height as usize].header
}

/// The store holds exactly heights `lowest..TIP` of the fixture.
async fn assert_holds<S: HeaderStore>(store: &S, f: &Fixture, lowest: u64) {
    assert_eq!(store.header_count().await.unwrap(), TIP - lowest);
    assert_eq!(store.head().await.unwrap().as_ref(), Some(at(f, TIP - 1)));
    for h in 0..TIP {
        let got = store.header(h).await.unwrap();
        assert_eq!(got.as_ref(), (h >= lowest).then(|| at(f, h)), "height {h}");
    }
    assert_eq!(store.header(TIP).await.unwrap(), None);
}

mod contract {
    use super::*;

    pub async fn empty<S: HeaderStore>(store: &mut S) {
        assert_eq!(store.header_count().await.unwrap(), 0);
        assert_eq!(store.head().await.unwrap(), None);
        assert_eq!(store.header(0).await.unwrap(), None);
        assert_eq!(store.next_validators(0).await.unwrap(), None);
        assert_eq!(store.next_validators(u64::MAX).await.unwrap(), None);
        assert_eq!(store.checkpoint().await.unwrap(), None);
        store.prune(3).await.unwrap();
        assert_eq!(store.header_count().await.unwrap(), 0);
    }

    pub async fn append_and_read<S: HeaderStore>(store: &mut S) {
        let f = fixture();
        store.set_checkpoint(&f.checkpoint).await.unwrap();
        store.append(&f.headers[..5]).await.unwrap();
        assert_eq!(store.head().await.unwrap().as_ref(), Some(at(&f, 4)));
        store.append(&f.headers[5..]).await.unwrap();
        store.append(&[]).await.unwrap();
        assert_holds(store, &f, 0).await;
        assert_eq!(
            store.checkpoint().await.unwrap(),
            Some(f.checkpoint.clone())
        );
        // Setting the same checkpoint again is fine.
        store.set_checkpoint(&f.checkpoint).await.unwrap();
    }

    pub async fn validators_across_hand_over<S: HeaderStore>(store: &mut S) {
        let f = fixture();
        store.append(&f.headers).await.unwrap();
        for h in 0..ANNOUNCED {
            assert_eq!(
                store.next_validators(h).await.unwrap(),
                Some(f.old_set.clone()),
                "{h}"
            );
        }
        for h in [ANNOUNCED, HAND_OVER, TIP - 1, TIP + 100, u64::MAX] {
            assert_eq!(
                store.next_validators(h).await.unwrap(),
                Some(f.new_set.clone()),
                "{h}"
            );
        }
    }

    pub async fn prune_keeps_set_in_force<S: HeaderStore>(store: &mut S) {
        let f = fixture();
        store.append(&f.headers).await.unwrap();
        store.prune(TIP + 10).await.unwrap();
        assert_holds(store, &f, 0).await;

        // Lowest kept: 5, below the announcement: the old set must stay.
        store.prune(TIP - 5).await.unwrap();
        assert_holds(store, &f, 5).await;
        assert_eq!(
            store.next_validators(5).await.unwrap(),
            Some(f.old_set.clone())
        );
        assert_eq!(
            store.next_validators(ANNOUNCED).await.unwrap(),
            Some(f.new_set.clone())
        );

        // Lowest kept: 15, above it: the new set (announced at 9, below 15) must stay.
        store.prune(5).await.unwrap();
        assert_holds(store, &f, TIP - 5).await;
        assert_eq!(
            store.next_validators(TIP - 5).await.unwrap(),
            Some(f.new_set.clone())
        );
        assert_eq!(
            store.next_validators(TIP - 1).await.unwrap(),
            Some(f.new_set.clone())
        );

        store.prune(1).await.unwrap();
        assert_eq!(store.header_count().await.unwrap(), 1);
        assert_eq!(store.head().await.unwrap().as_ref(), Some(at(&f, TIP - 1)));
        assert_eq!(
            store.next_validators(TIP - 1).await.unwrap(),
            Some(f.new_set.clone())
        );
    }

    /// Every set of the rotating chain reads back exactly, appended in several batches (so
    /// deltas are also taken against a set read back from the store), with a full set again
    /// after MAX_DELTAS deltas; hand-over commits are stored as their quorum prefix.
    pub async fn deltas_across_hand_overs<S: HeaderStore + Sizes>(store: &mut S) {
        let c = deltas();
        for batch in c.headers.chunks(7) {
            store.append(batch).await.unwrap();
        }
        for h in 0..DELTA_TIP {
            assert_eq!(
                store.next_validators(h).await.unwrap().as_ref(),
                Some(&c.next_sets[h as usize]),
                "{h}"
            );
        }
        // Hand-overs at 3, 6, .., 60: the last announced by the last header, 59.
        let sets = (DELTA_TIP / DELTA_EVERY) as usize + 1;
        assert_eq!(sets, 21, "the anchor and 20 hand-overs");
        assert!(sets > MAX_DELTAS + 1);
        let full = 1 + c.next_sets[0].encode().len();
        let one_key = StoredValidators::Delta(ValidatorDelta::between(
            0,
            &c.next_sets[0],
            &c.next_sets[DELTA_EVERY as usize],
        ))
        .encode()
        .len();
        assert!(one_key < full / 4, "{one_key} vs {full}");
        let bytes = store.sizes().await;
        // The anchor's set, MAX_DELTAS deltas, a full set, then deltas again.
        let fulls = 2;
        assert_eq!(
            bytes.validator_sets,
            fulls * full + (sets - fulls) * one_key,
            "{bytes:?}"
        );
        assert_eq!(
            bytes.commits,
            c.commits.iter().map(|c| c.encode().len()).sum::<usize>()
        );
        // 8 validators of equal power: 6 signatures reach more than 2/3.
        assert!(c.commits.iter().all(|c| c.signatures.len() == 6));
    }

    /// Pruning into a run of deltas keeps every kept height's set readable, and appends
    /// after it continue the deltas from the set pruning kept.
    pub async fn prune_keeps_what_rebuilding_needs<S: HeaderStore>(store: &mut S) {
        let c = deltas();
        let check = |from: u64, to: u64| (from..to).map(move |h| (h, &c.next_sets[h as usize]));
        store.append(&c.headers[..40]).await.unwrap();
        // Lowest kept: 31, between the deltas announced at 29 and 32.
        store.prune(9).await.unwrap();
        assert_eq!(store.header_count().await.unwrap(), 9);
        for (h, set) in check(31, 40) {
            assert_eq!(
                store.next_validators(h).await.unwrap().as_ref(),
                Some(set),
                "{h}"
            );
        }
        assert_eq!(
            store.next_validators(29).await.unwrap().as_ref(),
            Some(&c.next_sets[31])
        );
        assert_eq!(store.next_validators(28).await.unwrap(), None);
        store.append(&c.headers[40..]).await.unwrap();
        for (h, set) in check(31, DELTA_TIP) {
            assert_eq!(
                store.next_validators(h).await.unwrap().as_ref(),
                Some(set),
                "{h}"
            );
        }
        // Pruned right onto an announcing height, then to the head alone.
        store.prune(DELTA_TIP - 44).await.unwrap();
        for (h, set) in check(44, DELTA_TIP) {
            assert_eq!(
                store.next_validators(h).await.unwrap().as_ref(),
                Some(set),
                "{h}"
            );
        }
        store.prune(1).await.unwrap();
        assert_eq!(
            store.next_validators(DELTA_TIP - 1).await.unwrap().as_ref(),
            Some(&c.next_sets[DELTA_TIP as usize - 1])
        );
        assert_eq!(
            store.head().await.unwrap().as_ref(),
            Some(&c.headers[DELTA_TIP as usize - 1].header)
        );
    }

    /// A stored delta that decodes but rebuilds another set, one that does not decode, and
    /// one whose base is missing: each a typed corruption error, never a wrong set.
    pub async fn corrupt_delta_is_an_error<S: HeaderStore + Overwrite>(store: &mut S)
    where
        S::Error: IsCorrupt,
    {
        let c = deltas();
        store.append(&c.headers[..30]).await.unwrap();
        let announced = 2 * DELTA_EVERY - 1; // the second hand-over's set, a delta on 2
        let expect_corrupt = |result: Result<Option<ValidatorSet>, S::Error>| match result {
            Err(e) => assert!(e.is_corrupt(), "{e}"),
            Ok(set) => panic!("a corrupt store answered {set:?}"),
        };
        let wrong = ValidatorDelta {
            base_height: DELTA_EVERY - 1,
            removed: vec![0],
            powers: vec![(1, 99)],
            added: Vec::new(),
        };
        for bytes in [
            StoredValidators::Delta(wrong.clone()).encode(),
            vec![1, 2, 3],
            StoredValidators::Delta(ValidatorDelta {
                base_height: 1,
                ..wrong
            })
            .encode(),
        ] {
            store.overwrite_set(announced, bytes).await;
            // The corrupt set, and every later delta built on it.
            for h in [announced, announced + 1, 20, 29, u64::MAX] {
                expect_corrupt(store.next_validators(h).await);
            }
            // Sets below it still read.
            assert_eq!(
                store.next_validators(announced - 1).await.unwrap().as_ref(),
                Some(&c.next_sets[announced as usize - 1])
            );
            // Appending reads the set in force after the head: refused, nothing written.
            assert!(store
                .append(&c.headers[30..31])
                .await
                .unwrap_err()
                .is_corrupt());
            assert_eq!(store.header_count().await.unwrap(), 30);
        }
    }

    /// Bytes per stored header with 100 validators and a hand-over every 100 blocks, one key
    /// swapped per hand-over (issue 4's target: at most 300).
    pub async fn bytes_per_header_with_100_validators<S: HeaderStore + Sizes>(store: &mut S) {
        let c = hundred();
        for batch in c.headers.chunks(64) {
            store.append(batch).await.unwrap();
        }
        let bytes = store.sizes().await;
        assert_eq!(bytes.header_count, HUNDRED_TIP as usize);
        // 67 of 100 equal powers are more than 2/3.
        assert!(c.commits.iter().all(|c| c.signatures.len() == 67));
        println!(
            "100 validators, {HUNDRED_TIP} headers: {:.1} B per header ({bytes:?})",
            bytes.per_header()
        );
        assert!(bytes.per_header() <= 300.0, "{bytes:?}");
        // Every store keeps the same bytes.
        let mut memory = MemoryLightStore::new();
        for batch in c.headers.chunks(64) {
            LightStore::append(&mut memory, batch).unwrap();
        }
        assert_eq!(bytes, memory.bytes());
        assert_eq!(
            store
                .next_validators(HUNDRED_TIP - 1)
                .await
                .unwrap()
                .as_ref(),
            c.next_sets.last()
        );
    }

    pub async fn refused_writes_leave_nothing<S: HeaderStore>(store: &mut S)
    where
        S::Error: Rule,
    {
        let f = fixture();
        // The first header of an empty store must carry the set after it.
        let e = store.append(&f.headers[1..3]).await.unwrap_err();
        assert_eq!(e.rule(), Some(LightStoreError::MissingValidators));
        assert_eq!(store.header_count().await.unwrap(), 0);

        store.append(&f.headers[..5]).await.unwrap();
        let gap = store.append(&f.headers[6..8]).await.unwrap_err();
        assert_eq!(
            gap.rule(),
            Some(LightStoreError::NotContiguous {
                expected: 5,
                got: 6
            })
        );
        // A gap inside the batch: its valid first header is not written either.
        let batch = [f.headers[5].clone(), f.headers[7].clone()];
        let inner = store.append(&batch).await.unwrap_err();
        assert_eq!(
            inner.rule(),
            Some(LightStoreError::NotContiguous {
                expected: 6,
                got: 7
            })
        );
        let parent = store.append(&f.other_headers[5..7]).await.unwrap_err();
        assert_eq!(
            parent.rule(),
            Some(LightStoreError::ParentMismatch { height: 5 })
        );
        let batch = [f.headers[5].clone(), f.other_headers[6].clone()];
        let parent = store.append(&batch).await.unwrap_err();
        assert_eq!(
            parent.rule(),
            Some(LightStoreError::ParentMismatch { height: 6 })
        );
        assert_eq!(store.header_count().await.unwrap(), 5);
        assert_eq!(store.head().await.unwrap().as_ref(), Some(at(&f, 4)));
        assert_eq!(store.header(5).await.unwrap(), None);

        store.set_checkpoint(&f.checkpoint).await.unwrap();
        let other = store.set_checkpoint(&f.other_checkpoint).await.unwrap_err();
        assert_eq!(other.rule(), Some(LightStoreError::OtherCheckpoint));
        assert_eq!(
            store.checkpoint().await.unwrap(),
            Some(f.checkpoint.clone())
        );

        // Still appendable after the refusals.
        store.append(&f.headers[5..]).await.unwrap();
        assert_holds(store, &f, 0).await;
    }
}

/// Heights 0..HUNDRED_TIP of a 100-validator chain handing over every 100 blocks.
const HUNDRED_TIP: u64 = 1000;

fn hundred() -> &'static Rotating {
    static CHAIN: OnceLock<Rotating> = OnceLock::new();
    CHAIN.get_or_init(|| rotating("bytes-test", 100, 100, HUNDRED_TIP))
}

/// Runs a contract body on a fresh in-memory store, natively and in the browser.
macro_rules! memory_test {
    ($name:ident, $body:path) => {
        #[cfg(not(target_arch = "wasm32"))]
        #[test]
        fn $name() {
            futures::executor::block_on($body(&mut MemoryLightStore::new()));
        }

        #[cfg(target_arch = "wasm32")]
        #[wasm_bindgen_test::wasm_bindgen_test]
        async fn $name() {
            $body(&mut MemoryLightStore::new()).await;
        }
    };
}

memory_test!(memory_empty, contract::empty);
memory_test!(memory_append_and_read, contract::append_and_read);
memory_test!(
    memory_validators_across_hand_over,
    contract::validators_across_hand_over
);
memory_test!(
    memory_prune_keeps_set_in_force,
    contract::prune_keeps_set_in_force
);
memory_test!(
    memory_refused_writes_leave_nothing,
    contract::refused_writes_leave_nothing
);
memory_test!(
    memory_deltas_across_hand_overs,
    contract::deltas_across_hand_overs
);
memory_test!(
    memory_prune_keeps_what_rebuilding_needs,
    contract::prune_keeps_what_rebuilding_needs
);
memory_test!(
    memory_corrupt_delta_is_an_error,
    contract::corrupt_delta_is_an_error
);
memory_test!(
    memory_bytes_per_header_with_100_validators,
    contract::bytes_per_header_with_100_validators
);

#[test]
fn memory_bytes_per_plain_header() {
    let f = fixture();
    let mut store = MemoryLightStore::new();
    LightStore::append(&mut store, &f.headers).unwrap();
    let bytes = store.bytes();
    assert_eq!(bytes.header_count, TIP as usize);
    assert!(bytes.headers / bytes.header_count <= 300, "{bytes:?}");
    assert!(f.headers[3].header.encode().len() <= 300);
    assert_eq!(store.writes(), 1);
}

#[cfg(target_arch = "wasm32")]
mod indexeddb {
    use super::*;
    use headway::client::{IdbStore, IdbStoreError, StoreFailure};
    use std::future::IntoFuture;
    use wasm_bindgen::JsValue;
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn unique(tag: &str) -> String {
        let n = (js_sys::Math::random() * 1e12) as u64;
        format!("light-store-test-{tag}-{}-{n}", js_sys::Date::now() as u64)
    }

    async fn fresh(tag: &str) -> IdbStore {
        IdbStore::open(&unique(tag))
            .await
            .expect("open a fresh store")
    }

    async fn remove(store: IdbStore) {
        let name = store.name().to_owned();
        store.close().await;
        IdbStore::delete(&name).await.expect("delete the store");
    }

    macro_rules! idb_test {
        ($name:ident, $body:path) => {
            #[test]
            async fn $name() {
                let mut store = fresh(stringify!($name)).await;
                $body(&mut store).await;
                remove(store).await;
            }
        };
    }

    idb_test!(idb_empty, contract::empty);
    idb_test!(idb_append_and_read, contract::append_and_read);
    idb_test!(
        idb_validators_across_hand_over,
        contract::validators_across_hand_over
    );
    idb_test!(
        idb_prune_keeps_set_in_force,
        contract::prune_keeps_set_in_force
    );
    idb_test!(
        idb_refused_writes_leave_nothing,
        contract::refused_writes_leave_nothing
    );
    idb_test!(
        idb_deltas_across_hand_overs,
        contract::deltas_across_hand_overs
    );
    idb_test!(
        idb_prune_keeps_what_rebuilding_needs,
        contract::prune_keeps_what_rebuilding_needs
    );
    idb_test!(
        idb_corrupt_delta_is_an_error,
        contract::corrupt_delta_is_an_error
    );
    idb_test!(
        idb_bytes_per_header_with_100_validators,
        contract::bytes_per_header_with_100_validators
    );

    impl Sizes for IdbStore {
        async fn sizes(&self) -> StoreBytes {
            self.bytes().await.unwrap()
        }
    }

    impl Overwrite for IdbStore {
        async fn overwrite_set(&mut self, height: u64, bytes: Vec<u8>) {
            let value = js_sys::Uint8Array::from(&bytes[..]);
            write_raw(self.name(), "validators", height as f64, value.into()).await;
        }
    }

    /// A database of schema version 1 (every set in full) is reported, never misread.
    #[test]
    async fn an_old_schema_is_corrupt_not_misread() {
        let name = unique("old-schema");
        let factory = idb::Factory::new().unwrap();
        let mut request = factory.open(&name, Some(1)).unwrap();
        request.on_upgrade_needed(|event| {
            use idb::{DatabaseEvent, Event, Request};
            let db = event.database().unwrap();
            for store in ["headers", "validators", "commits", "meta"] {
                db.create_object_store(store, idb::ObjectStoreParams::new())
                    .unwrap();
            }
            let tx = event.target().unwrap().transaction().unwrap();
            tx.object_store("meta")
                .unwrap()
                .put(&JsValue::from_f64(1.0), Some(&JsValue::from_str("schema")))
                .unwrap();
        });
        request.into_future().await.unwrap().close();

        let e = IdbStore::open(&name).await.unwrap_err();
        assert_eq!(IdbStore::failure(&e), StoreFailure::Corrupt, "{e}");
        assert!(e.to_string().contains("schema version"), "{e}");
        assert!(e.to_string().contains("reset"), "{e}");
        // Still version 1 inside: opening again reports the same, nothing was rewritten.
        let again = IdbStore::open(&name).await.unwrap_err();
        assert_eq!(again, e);
        IdbStore::delete(&name).await.unwrap();
        let fresh = IdbStore::open(&name).await.unwrap();
        remove(fresh).await;
    }

    #[test]
    async fn reopen_keeps_everything() {
        let f = fixture();
        let name = unique("reopen");
        let mut store = IdbStore::open(&name).await.unwrap();
        store.set_checkpoint(&f.checkpoint).await.unwrap();
        store.append(&f.headers[..12]).await.unwrap();
        store.append(&f.headers[12..]).await.unwrap();
        assert_eq!(store.writes(), 2);
        store.close().await;

        let mut store = IdbStore::open(&name).await.unwrap();
        assert_eq!(store.writes(), 0, "the counter is per handle");
        assert_eq!(
            store.checkpoint().await.unwrap(),
            Some(f.checkpoint.clone())
        );
        assert_holds(&store, &f, 0).await;
        assert_eq!(
            store.next_validators(5).await.unwrap(),
            Some(f.old_set.clone())
        );
        assert_eq!(
            store.next_validators(TIP).await.unwrap(),
            Some(f.new_set.clone())
        );
        let other = store.set_checkpoint(&f.other_checkpoint).await.unwrap_err();
        assert_eq!(IdbStore::failure(&other), StoreFailure::Rejected);

        // A pruned store reopens pruned.
        store.prune(5).await.unwrap();
        store.close().await;
        let store = IdbStore::open(&name).await.unwrap();
        assert_holds(&store, &f, TIP - 5).await;
        remove(store).await;
    }

    #[test]
    async fn second_open_is_locked() {
        let name = unique("lock");
        let first = IdbStore::open(&name).await.unwrap();
        assert!(first.is_locked(), "Chromium has Web Locks");
        let second = IdbStore::open(&name).await.unwrap_err();
        assert_eq!(second, IdbStoreError::Locked(name.clone()));
        assert_eq!(IdbStore::failure(&second), StoreFailure::Locked);
        let deleting = IdbStore::delete(&name).await.unwrap_err();
        assert_eq!(IdbStore::failure(&deleting), StoreFailure::Locked);
        // Released by close: the next client gets it.
        first.close().await;
        let again = IdbStore::open(&name).await.unwrap();
        remove(again).await;
    }

    #[test]
    async fn dropped_store_releases_its_lock() {
        let name = unique("drop");
        drop(IdbStore::open(&name).await.unwrap());
        // The release is asynchronous after a drop; a later task sees the lock free.
        gloo_timers::future::TimeoutFuture::new(50).await;
        let again = IdbStore::open(&name).await.unwrap();
        remove(again).await;
    }

    /// Writes `value` under `key` into `store_name`, bypassing IdbStore.
    async fn write_raw(name: &str, store_name: &str, key: f64, value: JsValue) {
        let factory = idb::Factory::new().unwrap();
        let db = factory
            .open(name, None)
            .unwrap()
            .into_future()
            .await
            .unwrap();
        let tx = db
            .transaction(&[store_name], idb::TransactionMode::ReadWrite)
            .unwrap();
        tx.object_store(store_name)
            .unwrap()
            .put(&value, Some(&JsValue::from_f64(key)))
            .unwrap();
        let result = tx.into_future().await.unwrap();
        assert!(result.is_committed());
        db.close();
    }

    #[test]
    async fn corrupt_values_are_errors_not_panics() {
        let f = fixture();
        let name = unique("corrupt");
        let mut store = IdbStore::open(&name).await.unwrap();
        store.append(&f.headers).await.unwrap();
        store.close().await;

        let garbage = js_sys::Uint8Array::from(&[1u8, 2, 3][..]);
        write_raw(&name, "headers", (TIP - 1) as f64, garbage.clone().into()).await;
        write_raw(&name, "headers", 3.0, JsValue::from_str("not bytes")).await;
        // Valid bytes of the wrong height.
        let wrong = js_sys::Uint8Array::from(&f.headers[6].header.encode()[..]);
        write_raw(&name, "headers", 4.0, wrong.into()).await;
        write_raw(&name, "validators", ANNOUNCED as f64, garbage.into()).await;

        let mut store = IdbStore::open(&name).await.unwrap();
        for result in [
            store.head().await,
            store.header(3).await,
            store.header(4).await,
        ] {
            let e = result.unwrap_err();
            assert!(matches!(e, IdbStoreError::Corrupt { .. }), "{e:?}");
            assert_eq!(IdbStore::failure(&e), StoreFailure::Corrupt);
        }
        let e = store.next_validators(TIP).await.unwrap_err();
        assert_eq!(IdbStore::failure(&e), StoreFailure::Corrupt, "{e}");
        assert!(e.to_string().contains("validator set"), "{e}");
        let e = store.bytes().await.unwrap_err();
        assert_eq!(IdbStore::failure(&e), StoreFailure::Corrupt, "{e}");
        // Appending reads the (corrupt) head first, and writes nothing.
        let e = store.append(&f.headers[..1]).await.unwrap_err();
        assert_eq!(IdbStore::failure(&e), StoreFailure::Corrupt);
        // Intact heights still read.
        assert_eq!(store.header(5).await.unwrap().as_ref(), Some(at(&f, 5)));
        assert_eq!(
            store.next_validators(5).await.unwrap(),
            Some(f.old_set.clone())
        );
        remove(store).await;
    }

    #[test]
    async fn corrupt_checkpoint_is_an_error() {
        let f = fixture();
        let name = unique("corrupt-meta");
        let mut store = IdbStore::open(&name).await.unwrap();
        store.set_checkpoint(&f.checkpoint).await.unwrap();
        store.close().await;
        // The checkpoint's key is a string: write it raw.
        let factory = idb::Factory::new().unwrap();
        let db = factory
            .open(&name, None)
            .unwrap()
            .into_future()
            .await
            .unwrap();
        let tx = db
            .transaction(&["meta"], idb::TransactionMode::ReadWrite)
            .unwrap();
        tx.object_store("meta")
            .unwrap()
            .put(
                &JsValue::from_str("headway1:mangled"),
                Some(&JsValue::from_str("checkpoint")),
            )
            .unwrap();
        assert!(tx.into_future().await.unwrap().is_committed());
        db.close();

        let mut store = IdbStore::open(&name).await.unwrap();
        let e = store.checkpoint().await.unwrap_err();
        assert_eq!(IdbStore::failure(&e), StoreFailure::Corrupt, "{e}");
        let e = store.set_checkpoint(&f.checkpoint).await.unwrap_err();
        assert_eq!(IdbStore::failure(&e), StoreFailure::Corrupt, "{e}");
        remove(store).await;
    }

    #[test]
    fn quota_exceeded_dom_exception_maps_to_quota_exceeded() {
        let exception = web_sys::DomException::new_with_message_and_name(
            "the disk is full",
            "QuotaExceededError",
        )
        .unwrap();
        let e = IdbStoreError::from_js(&exception.into());
        assert_eq!(e, IdbStoreError::QuotaExceeded("the disk is full".into()));
        assert_eq!(IdbStore::failure(&e), StoreFailure::QuotaExceeded);

        let other = web_sys::DomException::new_with_message_and_name("x", "DataError").unwrap();
        let e = IdbStoreError::from_js(&other.into());
        assert_eq!(IdbStore::failure(&e), StoreFailure::Other);
        let e = IdbStoreError::from_js(&JsValue::from_str("plain"));
        assert_eq!(e, IdbStoreError::Js("plain".into()));
    }

    #[test]
    async fn bytes_match_the_memory_store() {
        let f = fixture();
        let mut store = fresh("bytes").await;
        let mut memory = MemoryLightStore::new();
        for batch in [&f.headers[..7], &f.headers[7..]] {
            store.append(batch).await.unwrap();
            HeaderStore::append(&mut memory, batch).await.unwrap();
        }
        assert_eq!(store.writes(), 2);
        let bytes = store.bytes().await.unwrap();
        assert_eq!(bytes, memory.bytes());
        assert_eq!(bytes.header_count, TIP as usize);
        assert!(bytes.headers / bytes.header_count <= 300, "{bytes:?}");
        remove(store).await;
    }
}
