//! The JavaScript API (`headway::wasm::LightClient`) in headless Chromium, called through the
//! exported methods themselves: config errors reject with `HeadwayError`s carrying the right
//! `code`, an in-memory client works, the lifecycle refuses calls in the wrong state, the
//! IndexedDB store is locked while a client holds it, and the TypeScript declarations name
//! exactly the fields serde produces. No live node: `start` dials a closed loopback port.
#![cfg(target_arch = "wasm32")]

use std::collections::BTreeSet;

use headway::chain::{BlockHash, Checkpoint, Hash};
use headway::client::{
    ClientError, ClientEvent, ClientStatus, ErrorCode, EventVerification, ForkAlarm, ForkSide,
    HeaderView,
};
use headway::light::{LightStats, Phase, Progress};
use headway::net::keypair_from_seed;
use headway::testkit::ChainBuilder;
use headway::wasm::{to_js, LightClient, ERROR_NAME, EVENT_NAMES, TYPESCRIPT};
use js_sys::{Function, Object, Reflect};
use serde_json::{json, Value};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test as test;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// A checkpoint at `height` of a small test chain.
fn checkpoint_at(height: usize) -> Checkpoint {
    let mut chain = ChainBuilder::new("wasm-api", 4);
    chain.headers(height + 1);
    chain.checkpoint().expect("a block was built")
}

/// A dialable browser address (nothing listens there).
fn bootnode() -> String {
    let peer = keypair_from_seed([7; 32]).public().to_peer_id();
    format!("/ip4/127.0.0.1/tcp/1/ws/p2p/{peer}")
}

/// A valid in-memory config, as JSON to edit.
fn base() -> Value {
    json!({
        "checkpoint": checkpoint_at(0).to_text(),
        "bootnodes": [bootnode()],
        "storeName": null,
    })
}

fn js(config: &Value) -> JsValue {
    js_sys::JSON::parse(&config.to_string()).expect("valid JSON")
}

fn unique(name: &str) -> String {
    format!("headway-wasm-api-{name}-{}", js_sys::Date::now() as u64)
}

/// The `code` and `message` of a rejection, after checking it is a real `HeadwayError`.
fn code_of(error: &JsValue) -> (String, String) {
    let e = error
        .dyn_ref::<js_sys::Error>()
        .unwrap_or_else(|| panic!("not a JS Error: {error:?}"));
    assert_eq!(String::from(e.name()), ERROR_NAME);
    let code = Reflect::get(error, &"code".into())
        .unwrap()
        .as_string()
        .expect("code is a string");
    (code, String::from(e.message()))
}

async fn create(config: &Value) -> Result<LightClient, JsValue> {
    LightClient::create(js(config)).await
}

async fn create_err(config: &Value) -> (String, String) {
    match create(config).await {
        Ok(_) => panic!("config accepted: {config}"),
        Err(e) => code_of(&e),
    }
}

async fn call(promise: js_sys::Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(promise).await
}

async fn call_err(promise: js_sys::Promise) -> (String, String) {
    match call(promise).await {
        Ok(v) => panic!("resolved with {v:?}"),
        Err(e) => code_of(&e),
    }
}

#[test]
async fn rejects_missing_or_empty_bootnodes() {
    let mut config = base();
    config.as_object_mut().unwrap().remove("bootnodes");
    let (code, message) = create_err(&config).await;
    assert_eq!(code, "INVALID_CONFIG");
    assert!(message.contains("bootnodes"), "{message}");

    config["bootnodes"] = json!([]);
    let (code, message) = create_err(&config).await;
    assert_eq!(code, "INVALID_CONFIG");
    assert!(message.contains("at least one bootnode"), "{message}");
}

#[test]
async fn rejects_bootnode_without_peer_id_or_undialable() {
    let mut config = base();
    config["bootnodes"] = json!(["/ip4/127.0.0.1/tcp/1/ws"]);
    let (code, message) = create_err(&config).await;
    assert_eq!(code, "INVALID_CONFIG");
    assert!(message.contains("/p2p/"), "{message}");

    let peer = keypair_from_seed([7; 32]).public().to_peer_id();
    config["bootnodes"] = json!([format!("/ip4/127.0.0.1/tcp/1/p2p/{peer}")]);
    let (code, message) = create_err(&config).await;
    assert_eq!(code, "INVALID_CONFIG");
    assert!(message.contains("cannot dial"), "{message}");

    config["bootnodes"] = json!(["not an address"]);
    assert_eq!(create_err(&config).await.0, "INVALID_CONFIG");
}

#[test]
async fn rejects_bad_checkpoints_with_their_own_code() {
    let text = checkpoint_at(0).to_text();
    // Another checksum: a mangled paste.
    let (body, _) = text.rsplit_once(':').unwrap();
    let mut config = base();
    config["checkpoint"] = json!(format!("{body}:00000000"));
    let (code, message) = create_err(&config).await;
    assert_eq!(code, "INVALID_CHECKPOINT");
    assert!(message.contains("checksum"), "{message}");

    config["checkpoint"] = json!(42);
    assert_eq!(create_err(&config).await.0, "INVALID_CHECKPOINT");

    let mut object: Value = serde_json::from_str(&checkpoint_at(0).to_json()).unwrap();
    object["extra"] = json!(1);
    config["checkpoint"] = object;
    let (code, message) = create_err(&config).await;
    assert_eq!(code, "INVALID_CHECKPOINT");
    assert!(message.contains("extra"), "{message}");

    config.as_object_mut().unwrap().remove("checkpoint");
    let (code, message) = create_err(&config).await;
    assert_eq!(code, "INVALID_CONFIG");
    assert!(message.contains("checkpoint"), "{message}");
}

#[test]
async fn rejects_unknown_fields_and_wrong_types() {
    let mut config = base();
    config["bootnode"] = json!(bootnode());
    let (code, message) = create_err(&config).await;
    assert_eq!(code, "INVALID_CONFIG");
    assert!(message.contains("unknown field `bootnode`"), "{message}");

    for (field, value) in [
        ("bootnodes", json!(bootnode())),
        ("keepHeaders", json!(-1)),
        ("keepHeaders", json!(1.5)),
        ("keepHeaders", json!(0)),
        ("trustPeriodMs", json!("1d")),
        ("refuseStaleCheckpoint", json!(1)),
        ("batchSize", json!(0)),
        ("maxRequestsPerPeer", json!(0)),
        ("storeName", json!(7)),
        ("storeName", json!("")),
        ("genesisHash", json!("abc")),
    ] {
        let mut config = base();
        config[field] = value.clone();
        let (code, message) = create_err(&config).await;
        assert_eq!(code, "INVALID_CONFIG", "{field} = {value}: {message}");
    }

    let Err(error) = LightClient::create(JsValue::from_str("config")).await else {
        panic!("a string is refused");
    };
    assert_eq!(code_of(&error).0, "INVALID_CONFIG");
}

#[test]
async fn needs_the_genesis_hash_for_a_checkpoint_after_genesis() {
    let mut config = base();
    config["checkpoint"] = json!(checkpoint_at(2).to_text());
    let (code, message) = create_err(&config).await;
    assert_eq!(code, "INVALID_CONFIG");
    assert!(message.contains("genesisHash"), "{message}");

    config["genesisHash"] = json!(Hash([9; 32]).to_string());
    assert!(create(&config).await.is_ok());
}

#[test]
async fn accepts_the_checkpoint_as_text_json_string_and_object() {
    let checkpoint = checkpoint_at(0);
    let object: Value = serde_json::from_str(&checkpoint.to_json()).unwrap();
    for form in [
        json!(checkpoint.to_text()),
        json!(checkpoint.to_json()),
        object,
    ] {
        let mut config = base();
        config["checkpoint"] = form;
        config["keepHeaders"] = json!(100);
        config["trustPeriodMs"] = json!(86_400_000);
        config["refuseStaleCheckpoint"] = json!(true);
        config["batchSize"] = json!(256);
        config["maxRequestsPerPeer"] = json!(4);
        if let Err(e) = create(&config).await {
            panic!("{config}: {:?}", code_of(&e));
        }
    }
}

/// The top-level field names of `interface name` in the TypeScript declarations.
fn ts_fields(name: &str) -> BTreeSet<String> {
    let start = TYPESCRIPT
        .find(&format!("export interface {name} "))
        .unwrap_or_else(|| panic!("no interface {name}"));
    TYPESCRIPT[start..]
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with('}'))
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| {
            let field = l.trim_start().split([':', '?']).next()?;
            field
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
                .then(|| field.to_owned())
        })
        .filter(|f| !f.is_empty())
        .collect()
}

fn js_fields(value: &JsValue) -> BTreeSet<String> {
    Object::keys(value.unchecked_ref())
        .iter()
        .map(|k| k.as_string().unwrap())
        .collect()
}

fn serde_fields<T: serde::Serialize>(value: &T) -> BTreeSet<String> {
    js_fields(&to_js(value).expect("serializes"))
}

fn header() -> HeaderView {
    HeaderView {
        height: 5,
        hash: BlockHash::ZERO,
        parent_hash: BlockHash::ZERO,
        timestamp_ms: 1,
        event_count: 0,
        events_root: Hash::ZERO,
        mmr_root: Hash::ZERO,
        validators_hash: Hash::ZERO,
        next_validators_hash: Hash::ZERO,
    }
}

#[test]
async fn status_has_the_documented_fields() {
    let client = create(&base()).await.expect("in-memory client");
    let status = client.status().expect("status");
    assert_eq!(js_fields(&status), ts_fields("Status"));
    let stats = Reflect::get(&status, &"stats".into()).unwrap();
    assert_eq!(js_fields(&stats), ts_fields("Stats"));
    // `null`, not `undefined`: every declared field is present.
    assert!(Reflect::get(&status, &"verifiedHeight".into())
        .unwrap()
        .is_null());
    assert_eq!(
        Reflect::get(&status, &"phase".into()).unwrap().as_string(),
        Some("bootstrapping".into())
    );
    assert!(client.head().expect("head").is_null());
}

#[test]
fn typescript_interfaces_name_the_serde_fields() {
    let side = ForkSide {
        header: header(),
        signed_header_hex: "00".into(),
    };
    let events = [
        (
            "Progress",
            ClientEvent::Progress(Progress {
                phase: Phase::Syncing,
                verified_height: 1,
                target_height: 2,
                peers: 1,
                headers_per_second: 0.5,
            }),
        ),
        (
            "NewHead",
            ClientEvent::NewHead {
                height: 1,
                hash: BlockHash::ZERO,
            },
        ),
        (
            "ForkDetected",
            ClientEvent::ForkDetected(Box::new(ForkAlarm {
                height: 1,
                ours: side.clone(),
                theirs: side.clone(),
                peer: "p".into(),
            })),
        ),
        (
            "CheckpointStale",
            ClientEvent::CheckpointStale {
                age_ms: 1,
                trust_period_ms: 2,
            },
        ),
    ];
    for (interface, event) in &events {
        assert_eq!(serde_fields(event), ts_fields(interface), "{interface}");
    }
    assert_eq!(serde_fields(&header()), ts_fields("Header"));
    assert_eq!(serde_fields(&side), ts_fields("ForkSide"));
    let verification = EventVerification {
        event_id: Hash::ZERO,
        height: 1,
        block_hash: BlockHash::ZERO,
        index: 0,
    };
    assert_eq!(serde_fields(&verification), ts_fields("EventVerification"));
    let status = ClientStatus {
        phase: Phase::Following,
        verified_height: Some(1),
        verified_hash: Some(BlockHash::ZERO),
        target_height: 1,
        peers: 1,
        stored_height: Some(1),
        headers_per_second: 1.0,
        fork_height: None,
        checkpoint_stale_ms: None,
        store_paused: false,
        last_error: Some(ClientError::new(ErrorCode::Timeout, "t")),
        stats: LightStats::default(),
        store_writes: 1,
        running: true,
    };
    assert_eq!(serde_fields(&status), ts_fields("Status"));
    assert_eq!(serde_fields(&LightStats::default()), ts_fields("Stats"));
    let json = json!({"checkpoint": "", "bootnodes": []});
    let config_fields = ts_fields("LightClientConfig");
    assert!(json
        .as_object()
        .unwrap()
        .keys()
        .all(|k| config_fields.contains(k)));
}

#[test]
fn typescript_error_codes_are_every_error_code() {
    let declared: BTreeSet<String> = TYPESCRIPT
        .lines()
        .filter_map(|l| l.trim().strip_prefix("| \""))
        .filter_map(|l| l.strip_suffix('"').or_else(|| l.strip_suffix("\";")))
        .map(str::to_owned)
        .collect();
    let codes: BTreeSet<String> = ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    assert_eq!(declared, codes);
}

#[test]
async fn events_have_their_js_names_and_unknown_names_throw() {
    let samples = [
        ClientEvent::Progress(Progress {
            phase: Phase::Syncing,
            verified_height: 0,
            target_height: 0,
            peers: 0,
            headers_per_second: 0.0,
        }),
        ClientEvent::NewHead {
            height: 0,
            hash: BlockHash::ZERO,
        },
        ClientEvent::CheckpointStale {
            age_ms: 0,
            trust_period_ms: 0,
        },
        ClientEvent::Error(ClientError::new(ErrorCode::Network, "n")),
    ];
    let mut names: Vec<&str> = samples.iter().map(ClientEvent::name).collect();
    names.insert(2, "forkDetected");
    assert_eq!(names, EVENT_NAMES);
    for event in &samples[..3] {
        let js = to_js(event).unwrap();
        let tag = Reflect::get(&js, &"type".into()).unwrap().as_string();
        assert_eq!(tag.as_deref(), Some(event.name()));
    }
    assert_eq!(
        ts_fields("LightClientEvents"),
        EVENT_NAMES.iter().map(|n| n.to_string()).collect()
    );

    let client = create(&base()).await.expect("in-memory client");
    let listener = Function::new_no_args("");
    for name in EVENT_NAMES {
        client.on(name, listener.clone()).expect("known event");
        client.off(name, listener.clone()).expect("known event");
    }
    let error = client
        .on("newhead", listener)
        .expect_err("unknown name refused");
    let (code, message) = code_of(&error);
    assert_eq!(code, "INVALID_CONFIG");
    assert!(message.contains("newHead"), "{message}");
}

#[test]
async fn refuses_calls_in_the_wrong_state() {
    let client = create(&base()).await.expect("in-memory client");
    let event = Hash([1; 32]).to_string();
    let (code, message) = call_err(client.verify_event(event.clone())).await;
    assert_eq!(code, "STOPPED");
    assert!(message.contains("start()"), "{message}");
    assert_eq!(
        call_err(client.verify_event("xyz".into())).await.0,
        "INVALID_CONFIG"
    );
    // Before start, the store answers.
    assert!(call(client.header(0.0)).await.unwrap().is_null());
    assert_eq!(call_err(client.header(-1.0)).await.0, "INVALID_CONFIG");
    assert_eq!(call_err(client.header(0.5)).await.0, "INVALID_CONFIG");

    call(client.start())
        .await
        .expect("starts (the dial fails later)");
    let status = client.status().unwrap();
    assert_eq!(
        Reflect::get(&status, &"running".into()).unwrap(),
        JsValue::TRUE
    );
    let (code, message) = call_err(client.start()).await;
    assert_eq!(code, "STOPPED");
    assert!(message.contains("already"), "{message}");
    assert!(call(client.header(0.0)).await.unwrap().is_null());

    call(client.stop()).await.expect("stops");
    let status = client.status().unwrap();
    assert_eq!(
        Reflect::get(&status, &"running".into()).unwrap(),
        JsValue::FALSE
    );
    call(client.stop()).await.expect("stopping twice is fine");
    assert_eq!(call_err(client.verify_event(event)).await.0, "STOPPED");
    assert_eq!(call_err(client.header(0.0)).await.0, "STOPPED");
    assert_eq!(call_err(client.start()).await.0, "STOPPED");
}

#[test]
async fn indexeddb_store_is_locked_until_stop_and_keeps_its_checkpoint() {
    let name = unique("lock");
    let mut config = base();
    config["storeName"] = json!(name);
    let first = create(&config).await.expect("IndexedDB client");
    let (code, _) = create_err(&config).await;
    assert_eq!(code, "STORE_LOCKED");

    // start() records the checkpoint in the store.
    call(first.start()).await.expect("starts");
    call(first.stop()).await.expect("stops");

    let again = create(&config).await.expect("the lock was released");
    call(again.stop()).await.unwrap();

    let mut other = config.clone();
    other["checkpoint"] = json!(checkpoint_at(1).to_text());
    other["genesisHash"] = json!(checkpoint_at(0).block_hash.to_string());
    let (code, message) = create_err(&other).await;
    assert_eq!(code, "CHECKPOINT_MISMATCH", "{message}");
    // The refused client closed the store again.
    let last = create(&config).await.expect("reopens after a refusal");
    call(last.stop()).await.unwrap();
}

#[test]
async fn stop_before_start_releases_the_store() {
    let name = unique("stop-first");
    let mut config = base();
    config["storeName"] = json!(name);
    let client = create(&config).await.expect("IndexedDB client");
    call(client.stop()).await.unwrap();
    assert_eq!(call_err(client.start()).await.0, "STOPPED");
    let again = create(&config).await.expect("released");
    call(again.stop()).await.unwrap();
}
