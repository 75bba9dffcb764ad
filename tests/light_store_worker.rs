//! The IndexedDB header store in a dedicated Worker, where there is no `window`: `indexedDB`
//! and `navigator.locks` must come from the worker's global scope. (wasm-bindgen-test picks
//! the context per test binary, hence this separate file; natively it holds no test.)

#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::wasm_bindgen_test as test;
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

use headway::client::{HeaderStore, IdbStore, IdbStoreError};
use headway::light::{StoredHeader, VerifiedHeader};
use headway::testkit::{self, ChainBuilder};
use wasm_bindgen::JsCast;

#[test]
async fn idb_store_works_in_a_dedicated_worker() {
    assert!(
        js_sys::global()
            .dyn_ref::<web_sys::WorkerGlobalScope>()
            .is_some(),
        "runs in a worker"
    );
    let mut builder = ChainBuilder::new("store-worker", 4).hand_over_at(4, testkit::keys(100, 5));
    let anchor = builder.next_block(Vec::new()).1;
    let checkpoint = builder.checkpoint().unwrap();
    let mut headers = vec![VerifiedHeader {
        header: StoredHeader::new(anchor.header),
        next_validators: Some(checkpoint.validators.clone()),
        commit: None,
    }];
    for th in builder.headers(7) {
        let hands_over = th.header.hands_over();
        headers.push(VerifiedHeader {
            header: StoredHeader::new(th.header),
            next_validators: if hands_over { th.next_validators } else { None },
            commit: hands_over.then_some(th.commit),
        });
    }

    let name = format!("light-store-worker-{}", js_sys::Date::now() as u64);
    let mut store = IdbStore::open(&name).await.unwrap();
    assert!(store.is_locked(), "Web Locks are there in a worker");
    assert_eq!(
        IdbStore::open(&name).await.unwrap_err(),
        IdbStoreError::Locked(name.clone())
    );
    store.set_checkpoint(&checkpoint).await.unwrap();
    store.append(&headers).await.unwrap();
    store.close().await;

    let store = IdbStore::open(&name).await.unwrap();
    assert_eq!(store.checkpoint().await.unwrap(), Some(checkpoint.clone()));
    assert_eq!(store.header_count().await.unwrap(), 8);
    assert_eq!(store.head().await.unwrap(), Some(headers[7].header.clone()));
    assert_eq!(
        store.header(2).await.unwrap(),
        Some(headers[2].header.clone())
    );
    assert_eq!(
        store.next_validators(7).await.unwrap(),
        Some(testkit::validator_set(&testkit::keys(100, 5)))
    );
    store.close().await;
    IdbStore::delete(&name).await.unwrap();
}
