//! The native light client driver ([`LightDriver`]) against a real cluster: four validators
//! and a full node on 127.0.0.1 with a hand-over at height 10; the light client starts from
//! a checkpoint at height 5, talks to the full node over TCP, verifies up to its head, follows
//! new heads and proves an event. Waits are on conditions, with generous upper bounds.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use headway::chain::{ChainId, Checkpoint, Genesis, Hash, SignedEvent, Validator, ValidatorSet};
use headway::client::ErrorCode;
use headway::crypto::ed25519::SigningKey;
use headway::light::LightStore;
use headway::node::consensus::{ConsensusConfig, TimeoutConfig};
use headway::node::light::{LightDriver, LightDriverConfig};
use headway::node::now_ms;
use headway::node::service::{self, NodeHandle, NodeParams};
use headway::testkit;
use libp2p::Multiaddr;
use tempfile::TempDir;
use tokio::time::Instant;

const LIMIT: Duration = Duration::from_secs(60);
const BLOCK_INTERVAL_MS: u64 = 150;
const HAND_OVER: u64 = 10;
const CHECKPOINT_HEIGHT: u64 = 5;

fn fast_consensus() -> ConsensusConfig {
    ConsensusConfig {
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
    }
}

fn init_logging() {
    if let Ok(filter) = std::env::var("RUST_LOG") {
        headway::node::init_logging(&filter);
    }
}

fn params(
    genesis: &Genesis,
    dir: &Path,
    key: Option<SigningKey>,
    bootnodes: Vec<Multiaddr>,
) -> NodeParams {
    NodeParams {
        data_dir: dir.to_path_buf(),
        genesis: genesis.clone(),
        validator_key: key,
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootnodes,
        http: None,
        consensus: fast_consensus(),
        block_interval_ms: BLOCK_INTERVAL_MS,
        www: None,
        dishonest: None,
        warp_from: None,
        trusted_peers: Vec::new(),
    }
}

async fn wait_until(mut cond: impl FnMut() -> bool, timeout: Duration, what: impl Fn() -> String) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {}",
            what()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Validators first, then full nodes, each bootnoding to every node started before it.
struct Cluster {
    // Declared first: nodes are dropped before their data dirs.
    nodes: Vec<NodeHandle>,
    _dirs: Vec<TempDir>,
    genesis: Genesis,
}

impl Cluster {
    async fn start(genesis: Genesis, validators: &[SigningKey], full_nodes: usize) -> Cluster {
        init_logging();
        let mut cluster = Cluster {
            nodes: Vec::new(),
            _dirs: Vec::new(),
            genesis,
        };
        let keys = validators
            .iter()
            .cloned()
            .map(Some)
            .chain(std::iter::repeat_n(None, full_nodes));
        for key in keys {
            let dir = tempfile::tempdir().unwrap();
            let bootnodes = cluster.nodes.iter().map(|n| n.listen[0].clone()).collect();
            let node = service::start(params(&cluster.genesis, dir.path(), key, bootnodes))
                .await
                .expect("node starts");
            cluster.nodes.push(node);
            cluster._dirs.push(dir);
        }
        cluster
    }

    fn heads(&self) -> String {
        let heads: Vec<String> = self
            .nodes
            .iter()
            .map(|n| n.head_height().to_string())
            .collect();
        format!("heads [{}]", heads.join(", "))
    }

    fn min_head(&self) -> u64 {
        self.nodes
            .iter()
            .map(NodeHandle::head_height)
            .min()
            .unwrap()
    }

    async fn shutdown(self) {
        for node in self.nodes {
            node.stop().await.expect("node stops cleanly");
        }
    }
}

fn event(n: u64) -> SignedEvent {
    testkit::event(&testkit::key(9_100), n, now_ms())
}

/// The checkpoint of `node`'s block at `height`: its header and the set that signs the next.
fn checkpoint_at(node: &NodeHandle, genesis: &Genesis, height: u64) -> Checkpoint {
    let header = node.store.header(height).unwrap().expect("header stored");
    Checkpoint::for_header(&header.header, genesis.validators_at(height + 1).clone()).unwrap()
}

fn block_hash(node: &NodeHandle, height: u64) -> Hash {
    node.store.header(height).unwrap().unwrap().header.hash()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn light_driver_syncs_follows_and_proves_against_a_full_node() {
    let keys = testkit::keys(40, 4);
    let new_set = ValidatorSet::new(
        keys[1..]
            .iter()
            .zip([10, 10, 20])
            .map(|(k, power)| Validator {
                key: k.public_key(),
                power,
            })
            .collect(),
    )
    .unwrap();
    let genesis = Genesis::new(
        ChainId::new("light-node").unwrap(),
        now_ms(),
        testkit::validator_set(&keys),
        BTreeMap::from([(HAND_OVER, new_set)]),
    )
    .unwrap();
    let genesis_hash = genesis.block().block.header.hash();
    let cluster = Cluster::start(genesis, &keys, 1).await;
    wait_until(
        || cluster.min_head() >= 30,
        LIMIT,
        || format!("every node reaches 30: {}", cluster.heads()),
    )
    .await;
    let full = &cluster.nodes[4];
    let checkpoint = checkpoint_at(full, &cluster.genesis, CHECKPOINT_HEIGHT);
    let bootnodes = vec![full.listen[0].clone()];

    // Without the genesis hash the handshake cannot be made: a clear error at start.
    let Err(e) = LightDriver::start(LightDriverConfig::new(
        checkpoint.clone(),
        bootnodes.clone(),
    ))
    .await
    else {
        panic!("a driver without the genesis hash started");
    };
    assert!(e.to_string().contains("--genesis-hash"), "{e}");

    // A tampered checkpoint hash is refused: the peer's block at height 5 is not it.
    let mut tampered = checkpoint.clone();
    tampered.block_hash.0[0] ^= 1;
    let mut config = LightDriverConfig::new(tampered, bootnodes.clone());
    config.genesis_hash = Some(genesis_hash);
    let mut bad = LightDriver::start(config).await.expect("driver starts");
    let e = bad
        .run_until(|s| s.verified_height.is_some(), LIMIT)
        .await
        .expect_err("a tampered checkpoint is refused");
    let message = e.to_string();
    assert_eq!(e.code, ErrorCode::CheckpointMismatch, "{message}");
    assert!(message.contains("height 5"), "{message}");
    assert_eq!(bad.status().verified_height, None);
    drop(bad);

    // The real checkpoint: verify up to the node's head, across the hand-over at 10.
    let mut config = LightDriverConfig::new(checkpoint, bootnodes);
    config.genesis_hash = Some(genesis_hash);
    let mut light = LightDriver::start(config).await.expect("driver starts");
    let head = full.head_height();
    let status = light
        .run_until(|s| s.verified_height >= Some(head), LIMIT)
        .await
        .expect("the light client catches up");
    let verified = status.verified_height.unwrap();
    assert_eq!(status.verified_hash, Some(block_hash(full, verified)));
    assert!(status.fork_height.is_none() && status.last_error.is_none());

    // It follows new heads.
    let next = full.head_height() + 3;
    let status = light
        .run_until(|s| s.verified_height >= Some(next), LIMIT)
        .await
        .expect("the light client follows the head");
    let verified = status.verified_height.unwrap();
    assert_eq!(status.verified_hash, Some(block_hash(full, verified)));
    // Every verified header was stored, from just above the checkpoint.
    light
        .run_until(|s| s.stored_height >= Some(verified), LIMIT)
        .await
        .expect("headers stored");
    let store = light.store().await;
    assert_eq!(
        store.header(CHECKPOINT_HEIGHT + 1).unwrap().unwrap().hash,
        block_hash(full, CHECKPOINT_HEIGHT + 1)
    );
    assert_eq!(
        store.header(HAND_OVER).unwrap().unwrap().hash,
        block_hash(full, HAND_OVER)
    );

    // An event submitted to the full node, once finalized and verified past, is proven.
    let ev = event(1);
    let event_id = full.submit(ev.clone()).await.expect("event accepted");
    assert_eq!(event_id, ev.id());
    let store = full.store.clone();
    let location = light
        .run_until(
            |_| store.event_location(&event_id).unwrap().is_some(),
            LIMIT,
        )
        .await
        .map(|_| store.event_location(&event_id).unwrap().unwrap())
        .expect("the event is finalized");
    light
        .run_until(|s| s.verified_height >= Some(location.height), LIMIT)
        .await
        .expect("the light client verifies the event's block");
    let proven = light
        .verify_event(event_id, LIMIT)
        .await
        .expect("the event is proven");
    assert_eq!(proven.event_id, event_id);
    assert_eq!(proven.height, location.height);
    assert_eq!(proven.block_hash, block_hash(full, location.height));

    // An unknown event is not.
    let unknown = event(2).id();
    assert!(light.verify_event(unknown, LIMIT).await.is_err());

    drop(light);

    // A driver keeping few headers prunes its store but still verifies to the head.
    let mut config = LightDriverConfig::new(
        checkpoint_at(full, &cluster.genesis, 5),
        vec![full.listen[0].clone()],
    );
    config.genesis_hash = Some(genesis_hash);
    config.keep_headers = Some(8);
    let mut pruned = LightDriver::start(config).await.expect("driver starts");
    let head = full.head_height();
    let status = pruned
        .run_until(
            |s| s.verified_height >= Some(head) && s.stored_height >= Some(head),
            LIMIT,
        )
        .await
        .expect("the pruning light client catches up");
    let kept = pruned.store().await;
    assert!(kept.len() <= 10, "{} headers kept", kept.len());
    assert!(kept.header(CHECKPOINT_HEIGHT + 1).unwrap().is_none());
    let stored = status.stored_height.unwrap();
    assert_eq!(
        kept.header(stored).unwrap().unwrap().hash,
        block_hash(full, stored)
    );
    drop(pruned);
    cluster.shutdown().await;
}
