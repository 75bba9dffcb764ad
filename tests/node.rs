//! Full nodes end to end, in one process: validators and full nodes started with
//! `service::start` on 127.0.0.1 (ephemeral ports, temp data dirs, fast consensus timeouts),
//! talking over the real libp2p network. Every assertion is on a condition the nodes reach
//! (polled with an upper bound), never on timing.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use headway::chain::{
    ChainId, Checkpoint, EventId, Genesis, Hash, SignedEvent, TrustedHeader, Validator,
    ValidatorSet,
};
use headway::crypto::ed25519::SigningKey;
use headway::net::{NetEvent, Network};
use headway::node::api::SubmitError;
use headway::node::consensus::{ConsensusConfig, TimeoutConfig};
use headway::node::now_ms;
use headway::node::service::{self, NodeHandle, NodeParams};
use headway::proof::{merkle_root, EventProof};
use headway::protocol::limits::{
    MAX_BLOCKS_PER_REQUEST, MAX_HEADERS_PER_REQUEST, MAX_SNAPSHOT_CHUNKS,
};
use headway::protocol::{
    BlocksResponse, ErrorCode, GetBlocks, GetHeaders, GetProof, GetSnapshot, HeadersResponse,
    ProofResponse, Request, Response, SnapshotAssembler, SnapshotResponse,
};
use headway::store::{ChainStore, RedbStore};
use headway::testkit;
use headway::verify::{TrustedState, Verifier};
use libp2p::{Multiaddr, PeerId};
use tempfile::TempDir;
use tokio::time::Instant;

/// Upper bound of every wait: generous, so a loaded machine slows the tests down instead of
/// failing them.
const LIMIT: Duration = Duration::from_secs(60);

/// Minimum time between blocks.
const BLOCK_INTERVAL_MS: u64 = 150;

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

/// A genesis starting now, signed by `keys` (power 10 each), with `schedule`.
fn genesis(chain: &str, keys: &[SigningKey], schedule: BTreeMap<u64, ValidatorSet>) -> Genesis {
    Genesis::new(
        ChainId::new(chain).unwrap(),
        now_ms(),
        testkit::validator_set(keys),
        schedule,
    )
    .unwrap()
}

/// The trusted state at the genesis block, from its checkpoint.
fn genesis_state(genesis: &Genesis) -> TrustedState {
    let header = genesis.block().block.header;
    let checkpoint = Checkpoint::for_header(&header, genesis.validators_at(1).clone()).unwrap();
    TrustedState::from_checkpoint(&checkpoint, header).unwrap()
}

/// Verifies `headers` (consecutive, after `trusted`) with the light verifier.
fn verify_from(trusted: &TrustedState, headers: &[TrustedHeader]) -> TrustedState {
    Verifier::new()
        .verify_range(trusted, headers, now_ms())
        .unwrap_or_else(|e| panic!("headers do not verify: {e}"))
}

/// Polls `cond` until it holds; panics after `timeout`, with `what()`.
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

/// Nodes of one chain: validators first, then full nodes. A stopped node keeps its slot and
/// its data dir, so it can be restarted.
struct Cluster {
    // Declared first: nodes are dropped before their data dirs.
    nodes: Vec<Option<NodeHandle>>,
    keys: Vec<Option<SigningKey>>,
    dirs: Vec<TempDir>,
    genesis: Genesis,
}

impl Cluster {
    /// Starts a validator per key, then `full_nodes` full nodes, each bootnoding to every
    /// node started before it.
    async fn start(genesis: Genesis, validators: &[SigningKey], full_nodes: usize) -> Cluster {
        init_logging();
        let mut cluster = Cluster {
            nodes: Vec::new(),
            keys: Vec::new(),
            dirs: Vec::new(),
            genesis,
        };
        for key in validators {
            cluster.add(Some(key.clone())).await;
        }
        for _ in 0..full_nodes {
            cluster.add(None).await;
        }
        cluster
    }

    async fn add(&mut self, key: Option<SigningKey>) -> usize {
        let dir = tempfile::tempdir().unwrap();
        let node = self.launch(dir.path(), key.clone()).await;
        self.nodes.push(Some(node));
        self.keys.push(key);
        self.dirs.push(dir);
        self.nodes.len() - 1
    }

    async fn launch(&self, dir: &Path, key: Option<SigningKey>) -> NodeHandle {
        let bootnodes = self.running().map(|n| n.listen[0].clone()).collect();
        service::start(params(&self.genesis, dir, key, bootnodes))
            .await
            .expect("node starts")
    }

    fn node(&self, i: usize) -> &NodeHandle {
        self.nodes[i].as_ref().expect("node is running")
    }

    fn running(&self) -> impl Iterator<Item = &NodeHandle> {
        self.nodes.iter().flatten()
    }

    fn heads(&self) -> String {
        let heads: Vec<String> = self
            .nodes
            .iter()
            .map(|n| {
                n.as_ref()
                    .map_or("stopped".into(), |n| n.head_height().to_string())
            })
            .collect();
        format!("heads [{}]", heads.join(", "))
    }

    fn min_head(&self) -> u64 {
        self.running().map(NodeHandle::head_height).min().unwrap()
    }

    fn max_head(&self) -> u64 {
        self.running().map(NodeHandle::head_height).max().unwrap()
    }

    /// Waits until every running node has finalized `height`.
    async fn wait_all(&self, height: u64) {
        wait_until(
            || self.min_head() >= height,
            LIMIT,
            || format!("every node reaches height {height}: {}", self.heads()),
        )
        .await;
    }

    /// Stops node `i`; returns its store's head height at the stop.
    async fn stop_node(&mut self, i: usize) -> u64 {
        let node = self.nodes[i].take().expect("node is running");
        node.stop().await.expect("node stops cleanly");
        // The store is closed now: reopening the file proves it.
        let store = RedbStore::open(self.dirs[i].path().join("chain.redb"))
            .expect("the stopped node released its store");
        store.head().unwrap().expect("a head").height
    }

    /// Restarts node `i` on its data dir, bootnoding to every running node.
    async fn restart_node(&mut self, i: usize) {
        assert!(self.nodes[i].is_none(), "node {i} is running");
        let node = self.launch(self.dirs[i].path(), self.keys[i].clone()).await;
        self.nodes[i] = Some(node);
    }

    /// Asserts every running node stores the same block at every height `0..=up_to`.
    fn assert_agree(&self, up_to: u64) {
        for height in 0..=up_to {
            let hashes: Vec<Hash> = self
                .running()
                .map(|n| {
                    n.store
                        .header(height)
                        .unwrap()
                        .unwrap_or_else(|| panic!("{} has no header {height}", n.peer_id))
                        .header
                        .hash()
                })
                .collect();
            assert!(
                hashes.windows(2).all(|w| w[0] == w[1]),
                "nodes disagree at height {height}: {hashes:?}"
            );
        }
    }

    /// Headers `1..=up_to` of node `i`'s store.
    fn headers(&self, i: usize, up_to: u64) -> Vec<TrustedHeader> {
        let headers = self.node(i).store.headers(1, up_to as u32).unwrap();
        assert_eq!(
            headers.len() as u64,
            up_to,
            "node {i} has headers 1..={up_to}"
        );
        headers
    }

    async fn shutdown(mut self) {
        for node in self.nodes.drain(..).flatten() {
            node.stop().await.expect("node stops cleanly");
        }
    }
}

/// A signed event from the test's event source, unique per `n`.
fn event(n: u64) -> SignedEvent {
    testkit::event(&testkit::key(9_000), n, now_ms())
}

/// Scenario 1: four validators and a full node finalize a chain that every node stores
/// identically and that verifies from the genesis checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validators_and_a_full_node_agree_on_a_verifiable_chain() {
    let keys = testkit::keys(0, 4);
    let cluster = Cluster::start(genesis("node-agree", &keys, BTreeMap::new()), &keys, 1).await;
    cluster.wait_all(20).await;
    cluster.assert_agree(20);

    let trusted = genesis_state(&cluster.genesis);
    for i in 0..cluster.nodes.len() {
        let headers = cluster.headers(i, 20);
        let state = verify_from(&trusted, &headers);
        assert_eq!(state.height(), 20);
        assert_eq!(state.hash, headers[19].header.hash());
    }
    // Header 0 is the genesis block everywhere.
    let genesis_hash = cluster.genesis.block().block.header.hash();
    assert_eq!(trusted.hash, genesis_hash);
    cluster.shutdown().await;
}

/// Scenario 2: with one of four equal validators stopped, the other three still hold more
/// than 2/3 of the power and keep finalizing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_of_four_validators_keep_finalizing() {
    let keys = testkit::keys(10, 4);
    let mut cluster = Cluster::start(genesis("node-three", &keys, BTreeMap::new()), &keys, 0).await;
    cluster.wait_all(3).await;
    // Validator 0 is every other node's bootnode: the rest must not depend on it.
    let stopped_at = cluster.stop_node(0).await;
    let before = cluster.max_head().max(stopped_at);
    let up_to = before + 5;
    cluster.wait_all(up_to).await;
    cluster.assert_agree(up_to);
    // Commits signed by three of four validators are enough for the light verifier.
    let headers = cluster.headers(1, up_to);
    let state = verify_from(&genesis_state(&cluster.genesis), &headers);
    assert_eq!(state.height(), up_to);
    // The stopped validator may have signed or proposed up to its head + 1, not after.
    let stopped = keys[0].public_key();
    let index = cluster.genesis.validators.index_of(&stopped).unwrap() as u32;
    for h in &headers[(before + 1) as usize..] {
        assert_ne!(h.header.proposer, stopped, "height {}", h.header.height);
        assert!(
            h.commit
                .signatures
                .iter()
                .all(|s| s.validator_index != index),
            "the stopped validator signed height {}",
            h.header.height
        );
    }
    cluster.shutdown().await;
}

/// Scenario 3: a hand-over scheduled in the genesis at height 8, to a different subset of
/// the running keys with different powers, is finalized and verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_validator_set_change_is_finalized() {
    const HAND_OVER: u64 = 8;
    let keys = testkit::keys(20, 4);
    // Validator 0 leaves; the others stay, one of them with double power.
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
    let old_set = testkit::validator_set(&keys);
    let schedule = BTreeMap::from([(HAND_OVER, new_set.clone())]);
    let cluster = Cluster::start(genesis("node-hand-over", &keys, schedule), &keys, 1).await;
    let up_to = HAND_OVER + 6;
    cluster.wait_all(up_to).await;
    cluster.assert_agree(up_to);

    for i in 0..cluster.nodes.len() {
        let headers = cluster.headers(i, up_to);
        for h in &headers {
            let height = h.header.height;
            let signers = if height < HAND_OVER {
                &old_set
            } else {
                &new_set
            };
            assert_eq!(h.header.validators_hash, signers.hash(), "height {height}");
            let next = if height + 1 < HAND_OVER {
                &old_set
            } else {
                &new_set
            };
            assert_eq!(
                h.header.next_validators_hash,
                next.hash(),
                "height {height}"
            );
            if height == HAND_OVER - 1 {
                assert_eq!(h.next_validators.as_ref(), Some(&new_set), "the hand-over");
            } else {
                assert_eq!(h.next_validators, None, "height {height}");
            }
            if height >= HAND_OVER {
                assert_ne!(h.header.proposer, keys[0].public_key(), "height {height}");
            }
        }
        let state = verify_from(&genesis_state(&cluster.genesis), &headers);
        assert_eq!(state.height(), up_to);
        assert_eq!(*state.next_validators, new_set);
    }
    cluster.shutdown().await;
}

/// Scenario 4: a stopped node restarted on its data dir resumes from its stored head, with
/// the same genesis and identity, and syncs what it missed; then the same for a validator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_resumes_and_catches_up() {
    let keys = testkit::keys(30, 4);
    let mut cluster =
        Cluster::start(genesis("node-restart", &keys, BTreeMap::new()), &keys, 1).await;
    let genesis_hash = cluster.genesis.block().block.header.hash();
    cluster.wait_all(5).await;

    for i in [4, 3] {
        let peer_id = cluster.node(i).peer_id;
        let stopped_at = cluster.stop_node(i).await;
        assert!(stopped_at >= 5);
        // Let the others move on, so the restarted node has blocks to sync.
        wait_until(
            || cluster.max_head() >= stopped_at + 5,
            LIMIT,
            || format!("the others pass {}: {}", stopped_at + 5, cluster.heads()),
        )
        .await;

        cluster.restart_node(i).await;
        let node = cluster.node(i);
        assert!(
            node.head_height() >= stopped_at,
            "node {i} restarted at {} below its head {stopped_at} before the stop",
            node.head_height()
        );
        assert_eq!(node.peer_id, peer_id, "the node key is kept in the store");
        let genesis_header = node.store.header(0).unwrap().unwrap();
        assert_eq!(genesis_header.header.hash(), genesis_hash);

        let target = cluster.max_head();
        cluster.wait_all(target).await;
        cluster.assert_agree(target);
        let headers = cluster.headers(i, target);
        verify_from(&genesis_state(&cluster.genesis), &headers);
    }
    // Everyone, the restarted validator included, keeps finalizing.
    let target = cluster.max_head() + 3;
    cluster.wait_all(target).await;
    cluster.assert_agree(target);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_warp_synced_to_a_checkpoint_follows_the_live_chain() {
    let keys = testkit::keys(40, 4);
    let cluster = Cluster::start(genesis("node-warp", &keys, BTreeMap::new()), &keys, 0).await;
    cluster.wait_all(12).await;
    const AT: u64 = 10;
    let validator = cluster.node(0);
    let header = validator.store.header(AT).unwrap().unwrap().header;
    let checkpoint =
        Checkpoint::for_header(&header, cluster.genesis.validators_at(AT + 1).clone()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bootnodes = cluster.running().map(|n| n.listen[0].clone()).collect();
    let node = tokio::time::timeout(
        LIMIT,
        service::start(NodeParams {
            warp_from: Some(checkpoint.clone()),
            ..params(&cluster.genesis, dir.path(), None, bootnodes)
        }),
    )
    .await
    .expect("warp sync finishes")
    .expect("node starts");
    // It started at the checkpoint: nothing below it, the checkpoint's block at it.
    assert!(node.store.header(AT - 1).unwrap().is_none());
    assert_eq!(
        node.store.header(AT).unwrap().unwrap().header.hash(),
        checkpoint.block_hash
    );
    // It catches up, then keeps following blocks finalized after it joined.
    let joined_at = cluster.max_head();
    let target = joined_at + 5;
    wait_until(
        || node.head_height() >= target,
        LIMIT,
        || {
            format!(
                "the warp-synced node follows to {target}: at {}, {}",
                node.head_height(),
                cluster.heads()
            )
        },
    )
    .await;
    let height = node.head_height();
    cluster.wait_all(height).await;
    for h in AT..=height {
        assert_eq!(
            node.store.header(h).unwrap().map(|t| t.header.hash()),
            validator.store.header(h).unwrap().map(|t| t.header.hash()),
            "height {h}"
        );
    }
    // Its headers verify from the checkpoint alone.
    let trusted = TrustedState::from_checkpoint(&checkpoint, header).unwrap();
    let headers = node.store.headers(AT + 1, (height - AT) as u32).unwrap();
    verify_from(&trusted, &headers);
    // Its MMR is the chain's: the same root as the validator's at the same height.
    assert_eq!(
        headway::store::mmr_root_at(&*node.store, height + 1).unwrap(),
        headway::store::mmr_root_at(&*validator.store, height + 1).unwrap()
    );
    node.stop().await.unwrap();
    cluster.shutdown().await;
}

#[path = "support/client.rs"]
mod client;

async fn connect_client(seed: u64, genesis: &Genesis, node: &NodeHandle) -> Network {
    client::connect_client(seed, genesis, node, LIMIT).await
}

/// Sends `request` to `peer` and drives the client until its response arrives.
async fn request(client: &mut Network, peer: PeerId, request: Request) -> Response {
    let id = client
        .send_request(peer, request.clone())
        .expect("the node is handshaken");
    let deadline = Instant::now() + LIMIT;
    loop {
        let event = tokio::time::timeout_at(deadline, client.next_event())
            .await
            .unwrap_or_else(|_| panic!("no response to {request:?}"));
        if let NetEvent::Response {
            id: got, result, ..
        } = event
        {
            if got == id {
                return result.unwrap_or_else(|e| panic!("{request:?} failed: {e}"));
            }
        }
    }
}

fn error_code(response: &Response) -> ErrorCode {
    response
        .as_error()
        .unwrap_or_else(|| panic!("expected an error, got {response:?}"))
        .code
}

async fn get_headers(
    client: &mut Network,
    peer: PeerId,
    start: u64,
    count: u32,
) -> Vec<TrustedHeader> {
    match request(
        client,
        peer,
        Request::GetHeaders(GetHeaders { start, count }),
    )
    .await
    {
        Response::Headers(HeadersResponse::Headers(h)) => h,
        other => panic!("GetHeaders {start}+{count}: {other:?}"),
    }
}

async fn get_proof(
    client: &mut Network,
    peer: PeerId,
    event_id: EventId,
    at_height: Option<u64>,
) -> Option<Box<EventProof>> {
    let r = request(
        client,
        peer,
        Request::GetProof(GetProof {
            event_id,
            at_height,
        }),
    )
    .await;
    match r {
        Response::Proof(ProofResponse::Proof(p)) => p,
        other => panic!("GetProof {event_id} at {at_height:?}: {other:?}"),
    }
}

async fn get_snapshot(client: &mut Network, peer: PeerId, height: u64, chunk: u32) -> Response {
    request(
        client,
        peer,
        Request::GetSnapshot(GetSnapshot { height, chunk }),
    )
    .await
}

/// The height of the header a proof is against.
fn proof_height(proof: &EventProof) -> u64 {
    proof
        .mmr
        .as_ref()
        .map_or(proof.header.height, |m| m.leaf_count)
}

/// Scenario 5: every request type, answered by a full node over the network to a `Network`
/// test client, verifies; and the error answers are the documented ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_type_answers_verifiably_over_the_network() {
    let keys = testkit::keys(40, 4);
    let cluster = Cluster::start(genesis("node-requests", &keys, BTreeMap::new()), &keys, 1).await;
    let full = cluster.node(4);
    let peer = full.peer_id;
    let genesis = &cluster.genesis;

    let ev = event(1);
    let event_id = full.submit(ev.clone()).await.expect("event accepted");
    assert_eq!(event_id, ev.id());
    let store = full.store.clone();
    wait_until(
        || {
            store
                .event_location(&event_id)
                .unwrap()
                .is_some_and(|loc| full.head_height() >= loc.height + 3)
        },
        LIMIT,
        || {
            format!(
                "the event is finalized and 3 blocks deep: {}",
                cluster.heads()
            )
        },
    )
    .await;
    let location = store.event_location(&event_id).unwrap().unwrap();
    let head = full.head_height();

    let mut client = connect_client(5_000, genesis, full).await;

    // Headers: the whole chain verifies from the genesis checkpoint and matches the store.
    let headers = get_headers(&mut client, peer, 1, head as u32).await;
    assert_eq!(headers.len() as u64, head);
    let trusted = verify_from(&genesis_state(genesis), &headers);
    assert_eq!(trusted.height(), head);
    for h in &headers {
        assert_eq!(Some(h), store.header(h.header.height).unwrap().as_ref());
    }
    // Past the head: an empty answer, not an error.
    assert!(get_headers(&mut client, peer, head + 1_000, 10)
        .await
        .is_empty());

    // Blocks: events match the headers' roots; blocks equal the store's.
    let count = (head as u32).min(MAX_BLOCKS_PER_REQUEST);
    let blocks = match request(
        &mut client,
        peer,
        Request::GetBlocks(GetBlocks { start: 1, count }),
    )
    .await
    {
        Response::Blocks(BlocksResponse::Blocks(b)) => b,
        other => panic!("GetBlocks: {other:?}"),
    };
    assert_eq!(blocks.len() as u32, count);
    for (i, block) in blocks.iter().enumerate() {
        let height = i as u64 + 1;
        let header = &block.block.header;
        assert_eq!(header.height, height);
        assert_eq!(block.trusted_header(), headers[i]);
        let ids: Vec<EventId> = block.block.events.iter().map(SignedEvent::id).collect();
        assert_eq!(header.event_count as usize, ids.len());
        assert_eq!(
            header.events_root,
            merkle_root(&ids),
            "events root at {height}"
        );
        assert_eq!(Some(block), store.block(height).unwrap().as_ref());
    }
    let in_block = &blocks[location.height as usize - 1].block.events[location.index as usize];
    assert_eq!(in_block.id(), event_id);

    // Proofs: against a later header, against the event's own block, and against the head.
    let verified_header = |height: u64| &headers[height as usize - 1].header;
    let at = location.height + 2;
    let proof = get_proof(&mut client, peer, event_id, Some(at))
        .await
        .expect("a proof");
    assert_eq!(proof_height(&proof), at);
    let v = proof.verify(verified_header(at)).expect("proof verifies");
    assert_eq!(
        (v.event_id, v.height, v.index),
        (event_id, location.height, location.index)
    );
    let own = get_proof(&mut client, peer, event_id, Some(location.height))
        .await
        .expect("a proof");
    assert!(own.mmr.is_none());
    own.verify(verified_header(location.height))
        .expect("own-block proof verifies");
    let latest = get_proof(&mut client, peer, event_id, None)
        .await
        .expect("a proof");
    let against = proof_height(&latest);
    assert!(
        against >= head,
        "the head proof is against {against}, below {head}"
    );
    // The node may have moved on: fetch and verify the headers up to the one proven against.
    let mut trusted_head = trusted.clone();
    if against > head {
        let more = get_headers(&mut client, peer, head + 1, (against - head) as u32).await;
        trusted_head = verify_from(&trusted, &more);
    }
    assert_eq!(trusted_head.height(), against);
    latest
        .verify(&trusted_head.header)
        .expect("head proof verifies");
    // A proof does not verify against another header.
    assert!(latest.verify(verified_header(head - 1)).is_err());
    // Unknown event: no proof.
    assert!(get_proof(&mut client, peer, Hash([0xab; 32]), None)
        .await
        .is_none());

    // Snapshot: all chunks reassemble into a consistent snapshot of the stored header.
    let first = match get_snapshot(&mut client, peer, head, 0).await {
        Response::Snapshot(SnapshotResponse::Chunk(c)) => c,
        other => panic!("GetSnapshot: {other:?}"),
    };
    let total = first.total_chunks;
    let mut assembler = SnapshotAssembler::new(head);
    let mut complete = assembler.push(first).unwrap();
    for index in 1..total {
        match get_snapshot(&mut client, peer, head, index).await {
            Response::Snapshot(SnapshotResponse::Chunk(c)) => complete = assembler.push(c).unwrap(),
            other => panic!("GetSnapshot chunk {index}: {other:?}"),
        }
    }
    assert!(complete);
    let snapshot = assembler.finish().expect("snapshot reassembles");
    snapshot.check().expect("snapshot is consistent");
    assert_eq!(Some(&snapshot.header), store.header(head).unwrap().as_ref());
    assert_eq!(snapshot.header, headers[head as usize - 1]);
    assert_eq!(snapshot.next_validators, *trusted.next_validators);
    assert_eq!(snapshot.lowest_height, 0);
    // Errors: above the head, and a chunk past the last.
    let above = get_snapshot(&mut client, peer, head + 1_000_000, 0).await;
    assert_eq!(error_code(&above), ErrorCode::NotFound);
    let past_last = get_snapshot(&mut client, peer, head, total).await;
    assert_eq!(error_code(&past_last), ErrorCode::NotFound);

    // Ranges the decoder refuses: the network answers them before the node sees them, with
    // `Malformed` for a count of 0 and `TooLarge` for a count over the limit. Each costs the
    // client score, so they are spread over two clients (four would get one banned).
    let r = request(
        &mut client,
        peer,
        Request::GetHeaders(GetHeaders { start: 1, count: 0 }),
    )
    .await;
    assert_eq!(error_code(&r), ErrorCode::Malformed);
    let over = MAX_HEADERS_PER_REQUEST + 1;
    let r = request(
        &mut client,
        peer,
        Request::GetHeaders(GetHeaders {
            start: 1,
            count: over,
        }),
    )
    .await;
    assert_eq!(error_code(&r), ErrorCode::TooLarge);
    let mut other_client = connect_client(5_001, genesis, full).await;
    let r = request(
        &mut other_client,
        peer,
        Request::GetBlocks(GetBlocks { start: 1, count: 0 }),
    )
    .await;
    assert_eq!(error_code(&r), ErrorCode::Malformed);
    let over = MAX_BLOCKS_PER_REQUEST + 1;
    let r = request(
        &mut other_client,
        peer,
        Request::GetBlocks(GetBlocks {
            start: 1,
            count: over,
        }),
    )
    .await;
    assert_eq!(error_code(&r), ErrorCode::TooLarge);
    let r = get_snapshot(&mut other_client, peer, head, MAX_SNAPSHOT_CHUNKS).await;
    assert_eq!(error_code(&r), ErrorCode::TooLarge);
    // Refused requests lower a score but do not get a client banned: it is still served.
    let again = get_headers(&mut client, peer, 1, 1).await;
    assert_eq!(again, headers[..1]);

    drop((client, other_client));
    cluster.shutdown().await;
}

/// Scenario 6: events submitted to a full node reach every node's chain exactly once, and a
/// resubmission is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submitted_events_are_finalized_once_and_duplicates_refused() {
    let keys = testkit::keys(50, 4);
    let cluster = Cluster::start(genesis("node-events", &keys, BTreeMap::new()), &keys, 1).await;
    let full = cluster.node(4);

    let events: Vec<SignedEvent> = (0..20).map(event).collect();
    let mut ids = Vec::new();
    for ev in &events {
        ids.push(full.submit(ev.clone()).await.expect("event accepted"));
    }
    assert_eq!(ids, events.iter().map(SignedEvent::id).collect::<Vec<_>>());
    // At once: still pending (or, at the earliest, already in a block).
    match full.submit(events[0].clone()).await {
        Err(SubmitError::Duplicate(id) | SubmitError::AlreadyInChain(id)) => assert_eq!(id, ids[0]),
        other => panic!("duplicate submission: {other:?}"),
    }
    // A tampered event is refused.
    let mut forged = event(1_000);
    forged.event.actor = "someone-else".into();
    assert!(matches!(
        full.submit(forged).await,
        Err(SubmitError::Invalid(_))
    ));

    wait_until(
        || {
            cluster.running().all(|n| {
                ids.iter()
                    .all(|id| n.store.event_location(id).unwrap().is_some())
            })
        },
        LIMIT,
        || format!("every node stores every event: {}", cluster.heads()),
    )
    .await;

    // Every event sits where its location says, in exactly one block, the same on every node.
    // The heads from the stores, which the wait above read: the published status can lag a
    // block just written.
    let head = cluster
        .running()
        .map(|n| n.store.head().unwrap().map_or(0, |h| h.height))
        .min()
        .unwrap();
    cluster.assert_agree(head);
    for node in cluster.running() {
        let mut seen: HashMap<EventId, u64> = HashMap::new();
        for block in node.store.blocks(1, head as u32).unwrap() {
            for ev in &block.block.events {
                assert!(
                    seen.insert(ev.id(), block.height()).is_none(),
                    "event {} included twice",
                    ev.id()
                );
            }
        }
        for (id, ev) in ids.iter().zip(&events) {
            let loc = node.store.event_location(id).unwrap().unwrap();
            assert_eq!(seen.get(id), Some(&loc.height));
            let block = node.store.block(loc.height).unwrap().unwrap();
            assert_eq!(&block.block.events[loc.index as usize], ev);
        }
    }
    // Once finalized, every resubmission is refused as already in the chain.
    for (id, ev) in ids.iter().zip(&events) {
        assert_eq!(
            full.submit(ev.clone()).await,
            Err(SubmitError::AlreadyInChain(*id))
        );
    }
    cluster.shutdown().await;
}

/// A node serving HTTP stops cleanly even while a client holds a keep-alive connection, and
/// restarts on the same data dir in the same process (the store was released).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_http_stops_while_a_client_is_connected_and_restarts() {
    use std::io::{Read, Write};
    init_logging();
    let keys = testkit::keys(0, 1);
    let genesis = genesis("http-restart", &keys, BTreeMap::new());
    let dir = tempfile::tempdir().unwrap();
    let with_http = |key: SigningKey| {
        let mut p = params(&genesis, &dir.path().join("v0"), Some(key), Vec::new());
        p.http = Some("127.0.0.1:0".parse().unwrap());
        p
    };
    let node = service::start(with_http(keys[0].clone())).await.unwrap();
    let http = node.http.unwrap();
    wait_until(
        || node.head_height() >= 3,
        Duration::from_secs(60),
        || "height 3".into(),
    )
    .await;
    // A client that sends one request and keeps the connection open.
    let mut conn = std::net::TcpStream::connect(http).unwrap();
    conn.write_all(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 512];
    let n = conn.read(&mut buf).unwrap();
    assert!(std::str::from_utf8(&buf[..n])
        .unwrap()
        .starts_with("HTTP/1.1 200"));
    let height = node.head_height();
    node.stop().await.unwrap();
    let node = service::start(with_http(keys[0].clone())).await.unwrap();
    assert!(node.head_height() >= height);
    node.stop().await.unwrap();
    drop(conn);
}
