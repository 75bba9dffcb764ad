//! The HTTP API against a real store (in memory and redb): every endpoint, every error path.

#![cfg(not(target_arch = "wasm32"))]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use headway::chain::{Checkpoint, Decode, EventId, Genesis, SignedEvent};
use headway::node::api::{router, ApiState, Command, NodeStatus, SubmitError};
use headway::node::metrics::Metrics;
use headway::proof::EventProof;
use headway::store::{ChainStore, MemoryStore};
use headway::testkit::{self, ChainBuilder};
use http_body_util::BodyExt;
use tokio::sync::{mpsc, watch};
use tower::ServiceExt;

struct Fixture {
    app: axum::Router,
    events: Vec<SignedEvent>,
    genesis: Genesis,
}

/// A store holding 6 blocks (block 2 with 3 events) and a fake node loop that accepts every
/// valid new event once.
fn fixture() -> Fixture {
    let keys = testkit::keys(0, 4);
    let genesis = Genesis::new(
        headway::chain::ChainId::new("api-test").unwrap(),
        1_700_000_000_000,
        testkit::validator_set(&keys),
        Default::default(),
    )
    .unwrap();
    let store = MemoryStore::new();
    let mut chain = ChainBuilder::new("api-test", 4);
    let source = testkit::key(50);
    let mut events = Vec::new();
    let mut blocks = Vec::new();
    for h in 0..6u64 {
        let evs: Vec<_> = if h == 2 {
            (0..3).map(|n| testkit::event(&source, n, n)).collect()
        } else {
            Vec::new()
        };
        events.extend(evs.clone());
        let (block, trusted) = chain.next_block(evs);
        blocks.push(headway::chain::FinalizedBlock {
            block,
            commit: trusted.commit,
            next_validators: trusted.next_validators,
        });
    }
    store.append(&blocks).unwrap();

    let (commands, mut rx) = mpsc::channel::<Command>(8);
    tokio::spawn(async move {
        let mut seen = std::collections::HashSet::new();
        while let Some(Command::SubmitEvent { event, reply }) = rx.recv().await {
            let result = match event.validate() {
                Err(e) => Err(SubmitError::Invalid(e.to_string())),
                Ok(()) if !seen.insert(event.id()) => Err(SubmitError::Duplicate(event.id())),
                Ok(()) => Ok(event.id()),
            };
            let _ = reply.send(result);
        }
    });
    let (_status_tx, status) = watch::channel(NodeStatus {
        chain_id: "api-test".into(),
        head_height: 5,
        ..Default::default()
    });
    let state = ApiState {
        store: Arc::new(store),
        genesis: Arc::new(genesis.clone()),
        commands,
        status,
        metrics: Metrics::new(),
    };
    // Keep the status sender alive for the test's duration.
    std::mem::forget(_status_tx);
    Fixture {
        app: router(state),
        events,
        genesis,
    }
}

async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, String) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, String) {
    call(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn post_json(app: &axum::Router, uri: &str, body: String) -> (StatusCode, String) {
    call(
        app,
        Request::post(uri)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn assert_error(result: (StatusCode, String), status: StatusCode, code: &str) {
    assert_eq!(result.0, status, "{}", result.1);
    assert_eq!(json(&result.1)["error"], code, "{}", result.1);
}

#[tokio::test]
async fn serves_headers_with_their_canonical_encoding() {
    let f = fixture();
    let (status, body) = get(&f.app, "/headers/3").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v = json(&body);
    let bytes = hex::decode(v["encoded"].as_str().unwrap()).unwrap();
    let header = headway::chain::TrustedHeader::decode(&bytes).unwrap();
    assert_eq!(header.header.height, 3);
    assert_eq!(v["hash"], header.header.hash().to_hex());
}

#[tokio::test]
async fn header_errors() {
    let f = fixture();
    assert_error(
        get(&f.app, "/headers/99").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        get(&f.app, "/headers/abc").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_error(
        get(&f.app, "/headers/-1").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_error(
        get(&f.app, "/headers/99999999999999999999999").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
}

#[tokio::test]
async fn serves_events_and_verifiable_proofs() {
    let f = fixture();
    let id = f.events[1].id();
    let (status, body) = get(&f.app, &format!("/events/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(json(&body)["height"], 2);
    assert_eq!(json(&body)["index"], 1);

    let (status, body) = get(&f.app, &format!("/events/{id}/proof")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v = json(&body);
    let proof = EventProof::decode(&hex::decode(v["proof"].as_str().unwrap()).unwrap()).unwrap();
    let (_, head_body) = get(&f.app, "/headers/5").await;
    let head: headway::chain::TrustedHeader =
        serde_json::from_value(json(&head_body)["header"].clone()).unwrap();
    let verified = proof.verify(&head.header).unwrap();
    assert_eq!(verified.event_id, id);
    assert_eq!(verified.height, 2);

    let (status, body) = get(&f.app, &format!("/events/{id}/proof?at_height=3")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(json(&body)["trusted_height"], 3);
}

#[tokio::test]
async fn event_errors() {
    let f = fixture();
    let unknown = EventId::default();
    assert_error(
        get(&f.app, &format!("/events/{unknown}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        get(&f.app, "/events/xyz").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_error(
        get(&f.app, &format!("/events/{unknown}/proof")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let id = f.events[0].id();
    assert_error(
        get(&f.app, &format!("/events/{id}/proof?at_height=1")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        get(&f.app, &format!("/events/{id}/proof?at_height=x")).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
    assert_error(
        get(&f.app, &format!("/events/{id}/proof?height=3")).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
}

#[tokio::test]
async fn accepts_a_new_event_once() {
    let f = fixture();
    let source = testkit::key(51);
    let event = testkit::event(&source, 1000, 5);
    let body = serde_json::to_string(&event).unwrap();
    let (status, resp) = post_json(&f.app, "/events", body.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{resp}");
    assert_eq!(json(&resp)["id"], event.id().to_hex());
    assert_error(
        post_json(&f.app, "/events", body).await,
        StatusCode::CONFLICT,
        "duplicate",
    );
}

#[tokio::test]
async fn rejects_bad_event_submissions() {
    let f = fixture();
    let source = testkit::key(51);
    let mut event = testkit::event(&source, 1000, 5);
    event.event.actor = "mallory".into(); // signature no longer matches
    assert_error(
        post_json(&f.app, "/events", serde_json::to_string(&event).unwrap()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_event",
    );
    let r = post_json(&f.app, "/events", "{not json".into()).await;
    assert_eq!(json(&r.1)["error"], "malformed");
    assert!(r.0.is_client_error());
    let r = post_json(&f.app, "/events", "{\"event\": 1}".into()).await;
    assert_eq!(json(&r.1)["error"], "malformed");
    assert!(r.0.is_client_error());
    let huge = format!("{{\"pad\": \"{}\"}}", "a".repeat(100_000));
    let r = post_json(&f.app, "/events", huge).await;
    assert_eq!(r.0, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.1);
    let r = call(
        &f.app,
        Request::post("/events").body(Body::from("{}")).unwrap(),
    )
    .await;
    assert_eq!(r.0, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.1);
}

#[tokio::test]
async fn checkpoint_is_the_head_and_parses() {
    let f = fixture();
    let (status, text) = get(&f.app, "/checkpoint").await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let cp = Checkpoint::parse(&text).unwrap();
    assert_eq!(cp.height, 5);
    assert_eq!(cp.validators, *f.genesis.validators_at(6));
    let (status, json_text) = get(&f.app, "/checkpoint?format=json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(Checkpoint::parse(&json_text).unwrap(), cp);
    assert_error(
        get(&f.app, "/checkpoint?format=xml").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );
}

#[tokio::test]
async fn status_health_metrics_and_unknown_routes() {
    let f = fixture();
    let (status, body) = get(&f.app, "/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["head_height"], 5);
    let (status, body) = get(&f.app, "/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["head_height"], 5);
    let (status, body) = get(&f.app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("headway_head_height"), "{body}");
    assert_error(
        get(&f.app, "/nope").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}
