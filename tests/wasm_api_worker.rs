//! The JavaScript API in a dedicated Web Worker (no `window`): a client on an IndexedDB store
//! is created, reports its status, starts and stops, and its store's Web Lock is free again
//! once `stop()` resolved. No live node: `start` dials a closed loopback port.
#![cfg(target_arch = "wasm32")]

use headway::net::keypair_from_seed;
use headway::testkit::ChainBuilder;
use headway::wasm::{LightClient, ERROR_NAME};
use js_sys::Reflect;
use serde_json::{json, Value};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test as test;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_dedicated_worker);

fn config(store_name: &str) -> JsValue {
    let mut chain = ChainBuilder::new("wasm-worker", 4);
    chain.headers(1);
    let checkpoint = chain.checkpoint().expect("a block was built");
    let peer = keypair_from_seed([7; 32]).public().to_peer_id();
    let config: Value = json!({
        "checkpoint": checkpoint.to_text(),
        "bootnodes": [format!("/ip4/127.0.0.1/tcp/1/ws/p2p/{peer}")],
        "storeName": store_name,
    });
    js_sys::JSON::parse(&config.to_string()).expect("valid JSON")
}

fn field(value: &JsValue, name: &str) -> JsValue {
    Reflect::get(value, &name.into()).expect("an object")
}

#[test]
fn runs_without_a_window() {
    assert!(js_sys::global()
        .dyn_ref::<web_sys::WorkerGlobalScope>()
        .is_some());
    assert!(field(&js_sys::global(), "window").is_undefined());
}

#[test]
async fn creates_starts_and_stops_on_indexeddb_in_a_worker() {
    let name = format!("headway-wasm-worker-{}", js_sys::Date::now() as u64);
    let client = LightClient::create(config(&name))
        .await
        .expect("IndexedDB opens in a worker");
    let status = client.status().expect("status");
    assert_eq!(field(&status, "running"), JsValue::FALSE);
    assert!(field(&status, "storedHeight").is_null());
    assert!(client.head().expect("head").is_null());

    let Err(error) = LightClient::create(config(&name)).await else {
        panic!("a second client on the same store must be refused");
    };
    let e = error.dyn_ref::<js_sys::Error>().expect("a JS Error");
    assert_eq!(String::from(e.name()), ERROR_NAME);
    assert_eq!(
        field(&error, "code").as_string().as_deref(),
        Some("STORE_LOCKED")
    );

    JsFuture::from(client.start()).await.expect("starts");
    assert_eq!(field(&client.status().unwrap(), "running"), JsValue::TRUE);
    JsFuture::from(client.stop()).await.expect("stops");
    assert_eq!(field(&client.status().unwrap(), "running"), JsValue::FALSE);

    let again = LightClient::create(config(&name))
        .await
        .expect("the lock is free once stop() resolved");
    JsFuture::from(again.stop()).await.expect("stops");
}

#[test]
async fn a_webrtc_bootnode_is_a_config_error_in_a_worker_not_a_panic() {
    // Workers have no RTCPeerConnection: refuse the address up front.
    let peer = keypair_from_seed([7; 32]).public().to_peer_id();
    let config = config("headway-wasm-worker-webrtc");
    let bootnodes = js_sys::Array::of1(&JsValue::from_str(&format!(
        "/ip4/127.0.0.1/udp/1/webrtc-direct/certhash/uEiAmRPPX8yVrl4PRis_xAZa2eNHxx8Yb7n79PY68m88FVw/p2p/{peer}"
    )));
    Reflect::set(&config, &"bootnodes".into(), &bootnodes).unwrap();
    Reflect::set(&config, &"storeName".into(), &JsValue::NULL).unwrap();
    let Err(error) = LightClient::create(config).await else {
        panic!("a WebRTC bootnode was accepted in a Worker");
    };
    assert_eq!(
        field(&error, "code").as_string().as_deref(),
        Some("INVALID_CONFIG")
    );
    let message = String::from(error.dyn_ref::<js_sys::Error>().unwrap().message());
    assert!(message.contains("Worker"), "{message}");
}
