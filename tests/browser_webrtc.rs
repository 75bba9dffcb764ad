//! The light client in headless Chromium over WebRTC-direct against a live native node
//! (Firefox refuses WebRTC to loopback, so this file runs in Chromium only; the WebSocket
//! scenarios are in tests/browser.rs).
#![cfg(target_arch = "wasm32")]

mod support;

use headway::client::Driver;
use headway::light::MemoryLightStore;
use support::browser::{fixture, sync_to_head, LIMIT};
use wasm_bindgen_test::wasm_bindgen_test as test;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

#[test]
async fn syncs_over_webrtc_across_hand_overs_and_proves_an_event() {
    // TRACE=1 at build time logs the client and libp2p at DEBUG to the browser console.
    if option_env!("TRACE").is_some() {
        tracing_wasm::set_as_global_default_with_config(
            tracing_wasm::WASMLayerConfigBuilder::new()
                .set_max_level(tracing::Level::DEBUG)
                .build(),
        );
    }
    let f = fixture();
    let mut driver = Driver::start(f.config(&[&f.honest_webrtc]), MemoryLightStore::new())
        .await
        .expect("the client starts");
    let status = sync_to_head(&mut driver, f.head_height).await;
    assert!(
        status.stats.headers_verified >= 1_000,
        "{} headers verified",
        status.stats.headers_verified
    );
    let (height, event_id) = f.event(0);
    let verified = driver
        .verify_event(event_id, LIMIT)
        .await
        .expect("a real event is proven over WebRTC");
    assert_eq!(verified.height, height);
}
