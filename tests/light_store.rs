//! The header-store contract, one set of test bodies run against every store: the in-memory
//! store (natively and in headless Chromium) and the IndexedDB store (in the browser only):
//! append rules, reads, validator sets across a hand-over, pruning, refused writes that leave
//! nothing behind; then what only IndexedDB has: reopening, the Web Lock, corrupted values,
//! DOMException mapping and stored size.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use headway::chain::{Checkpoint, Encode, TrustedHeader, ValidatorSet};
use headway::client::HeaderStore;
use headway::light::{LightStore, LightStoreError, MemoryLightStore, StoredHeader, VerifiedHeader};
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
