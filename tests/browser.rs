//! The light client in a real browser (headless Chromium; the WebSocket tests also in Firefox
//! ESR) against live native nodes on loopback: header-first sync of > 1,000 headers across
//! validator-set hand-overs into IndexedDB, resume from IndexedDB without re-downloading,
//! event proofs (a real one, a tampered one), dishonest peers next to an honest one, and a
//! fork alarm from validators that signed two chains.
//!
//! scripts/test.sh starts the nodes (scripts/browser-fixture.sh) and passes their addresses
//! in `HEADWAY_BROWSER_FIXTURE`. WebRTC is in tests/browser_webrtc.rs (Chromium only).
#![cfg(target_arch = "wasm32")]

mod support;

use headway::client::indexeddb::IdbStore;
use headway::client::{Driver, ErrorCode, HeaderStore};
use headway::light::MemoryLightStore;
use support::browser::{fixture, sync_to_head, LIMIT};
use wasm_bindgen_test::wasm_bindgen_test as test;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

fn unique(name: &str) -> String {
    format!("headway-test-{name}-{}", js_sys::Date::now() as u64)
}

#[test]
async fn syncs_over_websocket_into_indexeddb_and_resumes_without_downloading() {
    let f = fixture();
    let name = unique("ws");
    let store = IdbStore::open(&name).await.expect("IndexedDB opens");
    let mut driver = Driver::start(f.config(&[&f.honest_ws]), store)
        .await
        .expect("the client starts");
    let status = sync_to_head(&mut driver, f.head_height).await;
    let checkpoint = f.checkpoint().height;
    assert!(
        status.stats.headers_verified >= 1_000,
        "{} headers verified",
        status.stats.headers_verified
    );
    assert!(
        f.hand_overs.iter().filter(|h| **h > checkpoint).count() >= 1,
        "the chain hands over at least once above the checkpoint: {:?}",
        f.hand_overs
    );
    assert_eq!(status.stored_height, Some(f.head_height));
    assert!(status.fork_height.is_none(), "{status:?}");

    // A real event's proof verifies and names its block.
    let (height, event_id) = f.event(0);
    let verified = driver
        .verify_event(event_id, LIMIT)
        .await
        .expect("a real event is proven");
    assert_eq!(verified.event_id, event_id);
    assert_eq!(verified.height, height);
    let stored = driver
        .store()
        .await
        .header(height)
        .await
        .unwrap()
        .expect("the event's header is stored");
    assert_eq!(verified.block_hash, stored.hash);

    // Measured, not assumed: bytes per stored header.
    let bytes = driver.store().await.bytes().await.unwrap();
    assert!(
        bytes.per_header() <= 300.0,
        "{:.0} bytes per stored header ({bytes:?})",
        bytes.per_header()
    );
    let first_received = status.stats.headers_received;

    // Reopen the same IndexedDB in a new client: it resumes from the stored head and
    // downloads no header it already has.
    let store = driver.into_store().await;
    store.close().await;
    let store = IdbStore::open(&name).await.expect("IndexedDB reopens");
    let mut resumed = Driver::start(f.config(&[&f.honest_ws]), store)
        .await
        .expect("the client resumes");
    assert_eq!(resumed.status().verified_height, Some(f.head_height));
    let status = resumed
        .run_until(|s| s.peers >= 1 && s.target_height >= f.head_height, LIMIT)
        .await
        .expect("the resumed client connects");
    assert_eq!(status.verified_height, Some(f.head_height));
    assert_eq!(
        status.stats.headers_received, 0,
        "a resumed client re-downloaded headers (first run received {first_received})"
    );
    let store = resumed.into_store().await;
    store.close().await;
    IdbStore::delete(&name).await.unwrap();
}

#[test]
async fn a_tampered_proof_is_an_error_never_true() {
    let f = fixture();
    let forged = &f.dishonest["forged-proof"];
    let mut driver = Driver::start(f.config(&[forged]), MemoryLightStore::new())
        .await
        .expect("the client starts");
    // The forged-proof node serves honest headers; only its proofs are tampered.
    sync_to_head(&mut driver, f.head_height).await;
    let (_, event_id) = f.event(0);
    let e = driver
        .verify_event(event_id, LIMIT)
        .await
        .expect_err("a tampered proof must not verify");
    assert!(
        matches!(
            e.code,
            ErrorCode::InvalidProof | ErrorCode::ProofUnavailable
        ),
        "{e}"
    );
}

#[test]
async fn dishonest_peers_are_dropped_and_sync_finishes_from_the_honest_one() {
    let f = fixture();
    let mut bootnodes: Vec<&str> = f.dishonest.values().map(String::as_str).collect();
    bootnodes.push(&f.honest_ws);
    let mut driver = Driver::start(f.config(&bootnodes), MemoryLightStore::new())
        .await
        .expect("the client starts");
    let status = sync_to_head(&mut driver, f.head_height).await;
    assert!(status.fork_height.is_none());
    assert!(
        status.stats.peers_dropped >= 1,
        "no dishonest peer was dropped: {status:?}"
    );
    // Proofs still verify: the honest node answers them.
    let (height, event_id) = f.event(f.events.len() - 1);
    let verified = driver
        .verify_event(event_id, LIMIT)
        .await
        .expect("proven by the honest peer");
    assert_eq!(verified.height, height);
}

#[test]
async fn two_validly_signed_chains_raise_a_fork_alarm() {
    let f = fixture();
    let mut driver = Driver::start(
        f.config(&[&f.honest_ws, &f.fork_ws]),
        MemoryLightStore::new(),
    )
    .await
    .expect("the client starts");
    let mut events = driver.events();
    // Either the condition or the fatal check ends the wait; both must show the fork.
    match driver.run_until(|s| s.fork_height.is_some(), LIMIT).await {
        Ok(status) => assert_eq!(status.phase, headway::light::Phase::Stopped),
        Err(e) => assert_eq!(e.code, ErrorCode::ForkDetected, "{e}"),
    }
    let e = driver.check_fatal().expect_err("a fork stops the client");
    assert_eq!(e.code, ErrorCode::ForkDetected, "{e}");
    let height = driver.status().fork_height.expect("fork height");
    assert!(
        height >= f.fork_at,
        "fork at {height}, chains split at {}",
        f.fork_at
    );
    // The alarm carries both signed headers as evidence.
    let mut alarm = None;
    while let Ok(event) = events.try_recv() {
        if let headway::client::ClientEvent::ForkDetected(a) = event {
            alarm = Some(a);
        }
    }
    let alarm = alarm.expect("a forkDetected event");
    assert_eq!(alarm.height, height);
    assert_ne!(alarm.ours.header.hash, alarm.theirs.header.hash);
    assert_eq!(alarm.ours.header.height, alarm.theirs.header.height);
    assert!(!alarm.ours.signed_header_hex.is_empty() && !alarm.theirs.signed_header_hex.is_empty());
}
