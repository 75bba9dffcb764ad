//! A validator's record of what it signed (`SignState`, store meta `sign_state`), end to end
//! with `service::start`: written while it validates, reloaded when it restarts on the same
//! data dir in the middle of a height, and a start refused when the record is corrupt or not
//! its key's. Every wait is on a condition, bounded.
#![cfg(not(target_arch = "wasm32"))]

use std::path::Path;
use std::time::Duration;

use headway::chain::{ChainId, Checkpoint, Decode, Encode, Genesis, Hash};
use headway::crypto::ed25519::SigningKey;
use headway::node::consensus::{ConsensusConfig, SignState, TimeoutConfig};
use headway::node::now_ms;
use headway::node::service::{self, NodeHandle, NodeParams, META_SIGN_STATE};
use headway::store::{ChainStore, RedbStore};
use headway::testkit;
use headway::verify::{TrustedState, Verifier};
use libp2p::Multiaddr;
use tempfile::TempDir;
use tokio::time::Instant;

const LIMIT: Duration = Duration::from_secs(60);

fn params(genesis: &Genesis, dir: &Path, key: SigningKey, bootnodes: Vec<Multiaddr>) -> NodeParams {
    NodeParams {
        data_dir: dir.to_path_buf(),
        genesis: genesis.clone(),
        validator_key: Some(key),
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootnodes,
        http: None,
        consensus: ConsensusConfig {
            propose: TimeoutConfig {
                base_ms: 400,
                delta_ms: 100,
            },
            prevote: TimeoutConfig {
                base_ms: 200,
                delta_ms: 100,
            },
            precommit: TimeoutConfig {
                base_ms: 200,
                delta_ms: 100,
            },
            rebroadcast_ms: Some(500),
            ..ConsensusConfig::default()
        },
        block_interval_ms: 100,
        www: None,
        dishonest: None,
        warp_from: None,
        trusted_peers: Vec::new(),
    }
}

fn genesis(chain: &str, keys: &[SigningKey]) -> Genesis {
    Genesis::new(
        ChainId::new(chain).unwrap(),
        now_ms(),
        testkit::validator_set(keys),
        Default::default(),
    )
    .unwrap()
}

async fn wait_until(mut cond: impl FnMut() -> bool, what: impl Fn() -> String) {
    let deadline = Instant::now() + LIMIT;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting until {}",
            what()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn record(store: &dyn ChainStore) -> Option<SignState> {
    store
        .get_meta(META_SIGN_STATE)
        .unwrap()
        .map(|bytes| SignState::decode(&bytes).expect("the stored record decodes"))
}

/// Four validators; one is stopped while the others keep deciding and restarted on its data
/// dir: it reloads its record (never regressing it), signs again past it, and every node
/// stores the same chain, which verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_restarted_mid_height_resumes_from_its_record() {
    let keys = testkit::keys(40, 4);
    let genesis = genesis("restart-signing", &keys);
    let dirs: Vec<TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes: Vec<Option<NodeHandle>> = Vec::new();
    for (key, dir) in keys.iter().zip(&dirs) {
        let bootnodes = nodes
            .iter()
            .flatten()
            .map(|n| n.listen[0].clone())
            .collect();
        let node = service::start(params(&genesis, dir.path(), key.clone(), bootnodes))
            .await
            .expect("node starts");
        nodes.push(Some(node));
    }
    let heads = |nodes: &[Option<NodeHandle>]| -> Vec<Option<u64>> {
        nodes
            .iter()
            .map(|n| n.as_ref().map(NodeHandle::head_height))
            .collect()
    };
    let min_head =
        |nodes: &[Option<NodeHandle>]| nodes.iter().flatten().map(NodeHandle::head_height).min();
    wait_until(
        || min_head(&nodes) >= Some(3),
        || format!("every node at height 3: {:?}", heads(&nodes)),
    )
    .await;

    // Validator 1 stops while the others keep deciding: in the middle of some height.
    let me = 1;
    nodes[me]
        .take()
        .unwrap()
        .stop()
        .await
        .expect("stops cleanly");
    let stopped = {
        let store = RedbStore::open(dirs[me].path().join("chain.redb")).unwrap();
        let head = store.head().unwrap().unwrap().height;
        let stopped = record(&store).expect("a validator that signed has a record");
        assert!(stopped.is_signed_by(&genesis, &keys[me].public_key()));
        assert!(
            (1..=head + 1).contains(&stopped.height()),
            "record at {:?}, head {head}",
            stopped.point()
        );
        stopped
    };
    wait_until(
        || {
            nodes
                .iter()
                .flatten()
                .all(|n| n.head_height() > stopped.height())
        },
        || {
            format!(
                "the others pass height {}: {:?}",
                stopped.height(),
                heads(&nodes)
            )
        },
    )
    .await;

    let bootnodes = nodes
        .iter()
        .flatten()
        .map(|n| n.listen[0].clone())
        .collect();
    let node = service::start(params(
        &genesis,
        dirs[me].path(),
        keys[me].clone(),
        bootnodes,
    ))
    .await
    .expect("restarts on its data dir");
    // Reloaded: whatever the restarted node stores from now on is at or past the old record.
    let now = record(&*node.store).unwrap();
    assert!(now.point() >= stopped.point());
    nodes[me] = Some(node);

    let target = nodes
        .iter()
        .flatten()
        .map(NodeHandle::head_height)
        .max()
        .unwrap()
        + 4;
    wait_until(
        || min_head(&nodes) >= Some(target),
        || format!("every node at height {target}: {:?}", heads(&nodes)),
    )
    .await;
    let restarted = nodes[me].as_ref().unwrap();
    wait_until(
        || record(&*restarted.store).unwrap().height() > stopped.height(),
        || "the restarted validator signs again".into(),
    )
    .await;

    for height in 0..=target {
        let hashes: Vec<Hash> = nodes
            .iter()
            .flatten()
            .map(|n| n.store.header(height).unwrap().unwrap().header.hash())
            .collect();
        assert!(
            hashes.windows(2).all(|w| w[0] == w[1]),
            "nodes disagree at height {height}: {hashes:?}"
        );
    }
    let g = genesis.block();
    let checkpoint =
        Checkpoint::for_header(&g.block.header, genesis.validators_at(1).clone()).unwrap();
    let trusted = TrustedState::from_checkpoint(&checkpoint, g.block.header.clone()).unwrap();
    let headers = restarted.store.headers(1, target as u32).unwrap();
    Verifier::new()
        .verify_range(&trusted, &headers, now_ms())
        .expect("the chain verifies");

    for node in nodes.into_iter().flatten() {
        node.stop().await.expect("stops cleanly");
    }
}

/// A validator whose stored record is corrupt, or was signed by another key, refuses to start
/// (it would not know what it signed); with its own record back it starts and goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_refuses_to_start_on_a_corrupt_or_foreign_record() {
    let key = testkit::key(4_200);
    let genesis = genesis("restart-refuse", std::slice::from_ref(&key));
    let dir = tempfile::tempdir().unwrap();
    let node = service::start(params(&genesis, dir.path(), key.clone(), Vec::new()))
        .await
        .expect("node starts");
    wait_until(|| node.head_height() >= 2, || "height 2".into()).await;
    node.stop().await.expect("stops cleanly");

    let path = dir.path().join("chain.redb");
    let good = {
        let store = RedbStore::open(&path).unwrap();
        let good = store.get_meta(META_SIGN_STATE).unwrap().expect("a record");
        store
            .put_meta(META_SIGN_STATE, &good[..good.len() - 1])
            .unwrap();
        good
    };
    let refused = |result: anyhow::Result<NodeHandle>| match result {
        Ok(_) => panic!("the node started"),
        Err(e) => format!("{e:#}"),
    };
    let error =
        refused(service::start(params(&genesis, dir.path(), key.clone(), Vec::new())).await);
    assert!(error.contains("corrupt"), "{error}");

    // A well-formed record, but another key's.
    {
        let store = RedbStore::open(&path).unwrap();
        store.put_meta(META_SIGN_STATE, &good).unwrap();
    }
    let other = testkit::key(4_201);
    let error = refused(service::start(params(&genesis, dir.path(), other, Vec::new())).await);
    assert!(
        error.contains("not signed by this validator key"),
        "{error}"
    );

    // Its own record: it starts, resumes and signs past it.
    let before = SignState::decode(&good).unwrap();
    let node = service::start(params(&genesis, dir.path(), key, Vec::new()))
        .await
        .expect("starts with its own record");
    let height = node.head_height();
    wait_until(
        || node.head_height() >= height + 2,
        || "two more blocks".into(),
    )
    .await;
    let after = record(&*node.store).unwrap();
    assert!(after.point() > before.point());
    assert_eq!(SignState::decode(&after.encode()).unwrap(), after);
    node.stop().await.expect("stops cleanly");
}
