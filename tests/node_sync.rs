//! Full-node block sync end to end: nodes serving a generated chain (`node::gen_chain`) and a
//! node catching up from them over loopback libp2p, in parallel, through the sync machine
//! (`headway::sync`, driven by `node::sync_driver`). Every wait polls a condition with an
//! upper bound, never a fixed time.
#![cfg(not(target_arch = "wasm32"))]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use headway::chain::{Checkpoint, Genesis};
use headway::net::Network;
use headway::node::consensus::ConsensusConfig;
use headway::node::dishonest::Dishonest;
use headway::node::gen_chain::{self, ChainSpec, GENESIS_FILE};
use headway::node::service::{self, NodeHandle, NodeParams};
use headway::protocol::gossip::GossipMessage;
use headway::store::{ChainStore, RedbStore};
use headway::sync::{SyncMode, SyncOptions};
use libp2p::Multiaddr;
use tempfile::TempDir;
use tokio::time::Instant;

/// Upper bound of every wait: generous, so a loaded machine slows the tests down instead of
/// failing them.
const LIMIT: Duration = Duration::from_secs(120);

fn init_logging() {
    if let Ok(filter) = std::env::var("RUST_LOG") {
        headway::node::init_logging(&filter);
    }
}

/// A generated chain: its folder (with `chain.redb`) and genesis.
struct Chain {
    dir: TempDir,
    genesis: Genesis,
}

fn generate(chain_id: &str, blocks: u64) -> Chain {
    let dir = tempfile::tempdir().unwrap();
    let spec = ChainSpec::ending_now(chain_id, 4, blocks, 1_000);
    gen_chain::generate(&spec, dir.path()).expect("chain generated");
    let text = std::fs::read_to_string(dir.path().join(GENESIS_FILE)).unwrap();
    Chain {
        genesis: Genesis::from_json(&text).unwrap(),
        dir,
    }
}

impl Chain {
    /// A copy of the chain's store in a new folder (before any node opened it, so each copy
    /// gets its own node identity).
    fn copy(&self) -> TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            self.dir.path().join("chain.redb"),
            dir.path().join("chain.redb"),
        )
        .unwrap();
        dir
    }
}

fn any_port() -> Multiaddr {
    "/ip4/127.0.0.1/tcp/0".parse().unwrap()
}

async fn start(
    genesis: &Genesis,
    dir: &Path,
    bootnodes: Vec<Multiaddr>,
    dishonest: Option<Dishonest>,
) -> NodeHandle {
    service::start(params(genesis, dir, bootnodes, dishonest))
        .await
        .expect("node starts")
}

fn params(
    genesis: &Genesis,
    dir: &Path,
    bootnodes: Vec<Multiaddr>,
    dishonest: Option<Dishonest>,
) -> NodeParams {
    NodeParams {
        data_dir: dir.to_path_buf(),
        genesis: genesis.clone(),
        validator_key: None,
        listen: vec![any_port()],
        bootnodes,
        http: None,
        consensus: ConsensusConfig::default(),
        block_interval_ms: 1_000,
        www: None,
        dishonest,
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

/// The value of a metric line starting with `prefix` (`name{labels}`), 0 if absent.
fn metric(node: &NodeHandle, prefix: &str) -> f64 {
    node.metrics
        .encode()
        .lines()
        .find(|l| l.starts_with(prefix) && l[prefix.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

fn blocks_served(node: &NodeHandle) -> f64 {
    metric(
        node,
        "headway_requests_total{protocol=\"/headway/1/blocks\",outcome=\"served\"}",
    )
}

/// Head hash and MMR root of a store.
fn head_of(store: &dyn ChainStore) -> (u64, String, String) {
    let head = store.head().unwrap().unwrap();
    (head.height, head.hash.to_hex(), head.peaks.root().to_hex())
}

async fn wait_synced(node: &NodeHandle, target: u64, timeout: Duration) {
    let mut status = node.status.clone();
    wait_until(
        || {
            let s = status.borrow_and_update();
            s.head_height >= target && s.state == "synced"
        },
        timeout,
        || format!("synced to {target}: {:?}", node.status.borrow()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_blocks_from_two_peers_in_parallel() {
    init_logging();
    const BLOCKS: u64 = 10_000;
    let started = std::time::Instant::now();
    let chain = generate("sync-two-peers", BLOCKS);
    eprintln!("generated {BLOCKS} blocks in {:?}", started.elapsed());
    let a_dir = chain.copy();
    let a = start(&chain.genesis, a_dir.path(), Vec::new(), None).await;
    let b = start(&chain.genesis, chain.dir.path(), Vec::new(), None).await;
    let sync_dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let node = start(
        &chain.genesis,
        sync_dir.path(),
        vec![a.listen[0].clone(), b.listen[0].clone()],
        None,
    )
    .await;
    wait_synced(&node, BLOCKS, LIMIT).await;
    let took = started.elapsed();
    eprintln!(
        "synced {BLOCKS} blocks in {took:?} ({:.0} blocks/s)",
        BLOCKS as f64 / took.as_secs_f64()
    );
    assert_eq!(head_of(&*node.store), head_of(&*a.store));
    // Both peers served ranges: the sync ran in parallel.
    let (served_a, served_b) = (blocks_served(&a), blocks_served(&b));
    assert!(
        served_a >= 1.0 && served_b >= 1.0,
        "both peers serve: {served_a} and {served_b} block requests"
    );
    // Status and metrics show the run.
    let status = node.status.borrow().clone();
    let sync = status.sync.expect("sync status");
    assert_eq!(
        (sync.state.as_str(), sync.current, sync.target),
        ("synced", BLOCKS, BLOCKS)
    );
    assert_eq!(sync.percent, 100.0);
    assert_eq!(metric(&node, "headway_sync_current_block"), BLOCKS as f64);
    assert_eq!(metric(&node, "headway_sync_target_block"), BLOCKS as f64);
    assert_eq!(
        metric(&node, "headway_sync_written_blocks_total"),
        BLOCKS as f64
    );
    assert!(metric(&node, "headway_sync_downloaded_bodies_total") >= BLOCKS as f64);
    assert_eq!(metric(&node, "headway_sync_validation_errors_total"), 0.0);
    assert_eq!(
        metric(&node, "headway_sync_state{kind=\"synced\"}"),
        1.0,
        "{}",
        node.metrics.encode()
    );
    assert!(metric(&node, "headway_sync_write_seconds_count") >= 1.0);
    // Every range had its signatures checked ahead, and the machine used them: at least one
    // signature per block was not verified again.
    assert!(
        metric(&node, "headway_sync_check_ahead_seconds_count") >= (BLOCKS / 128) as f64,
        "{}",
        node.metrics.encode()
    );
    assert!(metric(&node, "headway_sync_signatures_checked_ahead_total") >= BLOCKS as f64);
    // A progress record for operators.
    let record = node
        .store
        .get_meta("sync:progress")
        .unwrap()
        .expect("record");
    let record: serde_json::Value = serde_json::from_slice(&record).unwrap();
    assert!(record["currentHeight"].as_u64().unwrap() > 0, "{record}");
    node.stop().await.unwrap();
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

/// A node syncing a generated chain from an honest peer and from one in `mode`, all started.
struct Beside {
    // Declared first: nodes stop before their folders go.
    node: NodeHandle,
    odd: NodeHandle,
    honest: NodeHandle,
    _dirs: (Chain, TempDir, TempDir),
}

impl Beside {
    async fn start(chain_id: &str, blocks: u64, mode: Dishonest) -> Beside {
        init_logging();
        let chain = generate(chain_id, blocks);
        let odd_dir = chain.copy();
        let odd = start(&chain.genesis, odd_dir.path(), Vec::new(), Some(mode)).await;
        let honest = start(&chain.genesis, chain.dir.path(), Vec::new(), None).await;
        let sync_dir = tempfile::tempdir().unwrap();
        let node = start(
            &chain.genesis,
            sync_dir.path(),
            vec![odd.listen[0].clone(), honest.listen[0].clone()],
            None,
        )
        .await;
        wait_synced(&node, blocks, LIMIT).await;
        assert_eq!(head_of(&*node.store), head_of(&*honest.store));
        Beside {
            node,
            odd,
            honest,
            _dirs: (chain, odd_dir, sync_dir),
        }
    }

    async fn stop(self) {
        self.node.stop().await.unwrap();
        self.odd.stop().await.unwrap();
        self.honest.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_serving_bad_signatures_is_banned_and_sync_completes() {
    let run = Beside::start("sync-liar", 3_000, Dishonest::BadSignature).await;
    let (node, liar) = (&run.node, &run.odd);
    assert!(
        blocks_served(liar) >= 1.0,
        "the liar was asked (and lied) at least once"
    );
    assert!(metric(node, "headway_sync_peers_reported_total") >= 1.0);
    assert!(metric(node, "headway_sync_validation_errors_total") >= 1.0);
    // Banned: disconnected, and it stays away.
    let mut status = node.status.clone();
    wait_until(
        || status.borrow_and_update().peers == 1,
        LIMIT,
        || format!("only the honest peer left: {:?}", node.status.borrow()),
    )
    .await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalling_peer_is_timed_out_and_its_ranges_go_to_the_other() {
    let run = Beside::start("sync-stall", 2_000, Dishonest::Stall).await;
    assert_eq!(blocks_served(&run.odd), 0.0, "the staller answered nothing");
    // Its requests were given up on (stall detection first, the timeout otherwise) and their
    // ranges served by the honest peer; no one was reported: silence is not invalid data.
    let failed = metric(&run.node, "headway_sync_errors_total");
    assert!(failed >= 1.0, "no request to the staller failed: {failed}");
    assert_eq!(metric(&run.node, "headway_sync_peers_reported_total"), 0.0);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_first_sync_from_two_peers_ends_on_the_same_chain() {
    init_logging();
    const BLOCKS: u64 = 2_500;
    let chain = generate("sync-header-first", BLOCKS);
    let a_dir = chain.copy();
    let a = start(&chain.genesis, a_dir.path(), Vec::new(), None).await;
    let b = start(&chain.genesis, chain.dir.path(), Vec::new(), None).await;
    let sync_dir = tempfile::tempdir().unwrap();
    let node = service::start_with_sync(
        params(
            &chain.genesis,
            sync_dir.path(),
            vec![a.listen[0].clone(), b.listen[0].clone()],
            None,
        ),
        None,
        SyncOptions {
            mode: SyncMode::HeaderFirst,
            ..SyncOptions::default()
        },
    )
    .await
    .expect("node starts");
    wait_synced(&node, BLOCKS, LIMIT).await;
    assert_eq!(head_of(&*node.store), head_of(&*a.store));
    assert_eq!(
        node.status.borrow().sync.clone().unwrap().mode,
        "headerfirst"
    );
    // Headers first, then every body.
    assert!(metric(&node, "headway_sync_downloaded_headers_total") >= BLOCKS as f64);
    assert!(metric(&node, "headway_sync_downloaded_bodies_total") >= BLOCKS as f64);
    node.stop().await.unwrap();
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_in_a_quiet_period_catches_up_at_once() {
    init_logging();
    const BLOCKS: u64 = 2_000;
    const HELD: u64 = 700;
    let chain = generate("sync-quiet", BLOCKS);
    // The restarted node's store: the chain up to HELD, as if it went down there.
    let dir = tempfile::tempdir().unwrap();
    {
        let source = RedbStore::open(chain.dir.path().join("chain.redb")).unwrap();
        let store = service::open_store(dir.path(), &chain.genesis, None).unwrap();
        let mut next = 1;
        while next <= HELD {
            let count = (HELD - next + 1).min(128) as u32;
            let blocks = source.blocks(next, count).unwrap();
            store.append(&blocks).unwrap();
            next += blocks.len() as u64;
        }
    }
    let server = start(&chain.genesis, chain.dir.path(), Vec::new(), None).await;
    // No block is produced from here on: nothing but the restart itself can start the sync.
    let started = std::time::Instant::now();
    let node = start(
        &chain.genesis,
        dir.path(),
        vec![server.listen[0].clone()],
        None,
    )
    .await;
    assert_eq!(node.head_height(), HELD);
    // Well within the status interval (30 s): it does not wait for a peer's next status.
    wait_synced(&node, BLOCKS, Duration::from_secs(20)).await;
    eprintln!(
        "caught up {} blocks in {:?}",
        BLOCKS - HELD,
        started.elapsed()
    );
    assert_eq!(head_of(&*node.store), head_of(&*server.store));
    let sync = node.status.borrow().sync.clone().unwrap();
    assert_eq!(sync.start, HELD, "resumed from the store head");
    node.stop().await.unwrap();
    server.stop().await.unwrap();
}

/// A generated chain of `blocks` blocks with this genesis time (chains of one id and time
/// share their prefix: the generator's keys and events are fixed).
fn generate_at(chain_id: &str, blocks: u64, genesis_time_ms: u64) -> Chain {
    let dir = tempfile::tempdir().unwrap();
    let spec = ChainSpec {
        genesis_time_ms,
        ..ChainSpec::ending_now(chain_id, 4, blocks, 1_000)
    };
    gen_chain::generate(&spec, dir.path()).expect("chain generated");
    let text = std::fs::read_to_string(dir.path().join(GENESIS_FILE)).unwrap();
    Chain {
        genesis: Genesis::from_json(&text).unwrap(),
        dir,
    }
}

fn snapshots_served(node: &NodeHandle) -> f64 {
    metric(
        node,
        "headway_requests_total{protocol=\"/headway/1/snapshot\",outcome=\"served\"}",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warp_sync_starts_at_a_checkpoint_refuses_a_forged_snapshot_and_syncs_the_rest() {
    init_logging();
    const BLOCKS: u64 = 1_200;
    const HONEST_HEAD: u64 = 1_150;
    const AT: u64 = 1_050; // after the hand-over at 1,000
    let time = headway::node::now_ms().saturating_sub((BLOCKS + 1) * 1_000);
    let long = generate_at("sync-warp", BLOCKS, time);
    let short = generate_at("sync-warp", HONEST_HEAD, time);
    assert_eq!(long.genesis, short.genesis);
    let genesis = long.genesis.clone();
    let liar = start(
        &genesis,
        long.dir.path(),
        Vec::new(),
        Some(Dishonest::ForgedSnapshot),
    )
    .await;
    let honest = start(&genesis, short.dir.path(), Vec::new(), None).await;
    let header = honest.store.header(AT).unwrap().unwrap().header;
    let checkpoint =
        Checkpoint::for_header(&header, genesis.validators_at(AT + 1).clone()).unwrap();

    // Alone with the liar: its snapshot is refused, it is banned, and nothing is installed.
    let lone_dir = tempfile::tempdir().unwrap();
    let lone = tokio::spawn(service::start(NodeParams {
        warp_from: Some(checkpoint.clone()),
        ..params(
            &genesis,
            lone_dir.path(),
            vec![liar.listen[0].clone()],
            None,
        )
    }));
    let mut liar_status = liar.status.clone();
    wait_until(
        || snapshots_served(&liar) >= 1.0 && liar_status.borrow_and_update().peers == 0,
        LIMIT,
        || {
            format!(
                "the liar served a snapshot and was dropped: {} served, {:?}",
                snapshots_served(&liar),
                liar.status.borrow()
            )
        },
    )
    .await;
    assert!(!lone.is_finished(), "no node starts on a forged snapshot");
    lone.abort();
    let _ = lone.await;

    // With an honest peer too: the snapshot is checked against the checkpoint, then the
    // blocks after it are synced; nothing below the checkpoint is ever fetched.
    let dir = tempfile::tempdir().unwrap();
    let node = tokio::time::timeout(
        LIMIT,
        service::start(NodeParams {
            warp_from: Some(checkpoint.clone()),
            ..params(
                &genesis,
                dir.path(),
                vec![liar.listen[0].clone(), honest.listen[0].clone()],
                None,
            )
        }),
    )
    .await
    .expect("warp sync finishes")
    .expect("node starts");
    // The liar's blocks are the real chain's (only its snapshots are forged): whether it was
    // asked for the snapshot first (and banned) or not, the node ends on the chain.
    wait_synced(&node, HONEST_HEAD, LIMIT).await;
    let head = node.store.head().unwrap().unwrap();
    assert!(head.height >= HONEST_HEAD);
    assert_eq!(
        Some(head.hash),
        liar.store
            .header(head.height)
            .unwrap()
            .map(|h| h.header.hash())
    );
    assert_eq!(
        node.store.header(HONEST_HEAD).unwrap(),
        honest.store.header(HONEST_HEAD).unwrap()
    );
    assert_eq!(node.store.lowest_height().unwrap(), AT + 1);
    assert_eq!(node.status.borrow().lowest_height, AT + 1);
    assert!(node.store.header(AT - 1).unwrap().is_none());
    assert_eq!(
        node.store.header(AT).unwrap().unwrap().header.hash(),
        checkpoint.block_hash
    );
    assert_eq!(
        metric(&node, "headway_sync_written_blocks_total"),
        (head.height - AT) as f64,
        "only the blocks after the checkpoint were downloaded"
    );
    let sync = node.status.borrow().sync.clone().unwrap();
    assert_eq!(sync.start, AT);
    node.stop().await.unwrap();

    // Restarted with the same checkpoint, it resumes from its store (no second snapshot), and
    // a checkpoint the store contradicts is refused before anything starts.
    let served_before = snapshots_served(&honest);
    let node = service::start(NodeParams {
        warp_from: Some(checkpoint.clone()),
        ..params(&genesis, dir.path(), vec![honest.listen[0].clone()], None)
    })
    .await
    .expect("node restarts");
    assert_eq!(node.head_height(), head.height);
    node.stop().await.unwrap();
    assert_eq!(snapshots_served(&honest), served_before);
    let other = honest.store.header(AT + 1).unwrap().unwrap().header;
    let mut wrong = checkpoint.clone();
    wrong.block_hash = other.hash();
    let refused = service::start(NodeParams {
        warp_from: Some(wrong),
        ..params(&genesis, dir.path(), Vec::new(), None)
    })
    .await;
    let err = refused
        .err()
        .expect("a contradicting checkpoint is refused");
    assert!(
        format!("{err:#}").contains("warp checkpoint names"),
        "{err:#}"
    );
    liar.stop().await.unwrap();
    honest.stop().await.unwrap();
}

#[tokio::test]
async fn a_warp_checkpoint_of_another_chain_or_schedule_is_refused_at_start() {
    let chain = generate("sync-warp-config", 10);
    let header = chain.genesis.block().block.header;
    let good = Checkpoint::for_header(&header, chain.genesis.validators_at(1).clone()).unwrap();
    let mut other_chain = good.clone();
    other_chain.chain_id = headway::chain::ChainId::new("another-chain").unwrap();
    let mut other_set = good.clone();
    other_set.validators = headway::testkit::validator_set(&headway::testkit::keys(50, 3));
    for (bad, expected) in [(other_chain, "is for chain"), (other_set, "validator set")] {
        let dir = tempfile::tempdir().unwrap();
        let err = service::start(NodeParams {
            warp_from: Some(bad),
            ..params(&chain.genesis, dir.path(), Vec::new(), None)
        })
        .await
        .err()
        .expect("refused");
        assert!(format!("{err:#}").contains(expected), "{err:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_dials_its_bootnode_again_when_it_comes_back() {
    init_logging();
    let chain = generate("sync-redial", 50);
    let listen: Multiaddr = format!("/ip4/127.0.0.1/tcp/{}", free_port())
        .parse()
        .unwrap();
    let serve = || {
        service::start(NodeParams {
            listen: vec![listen.clone()],
            ..params(&chain.genesis, chain.dir.path(), Vec::new(), None)
        })
    };
    let a = serve().await.expect("bootnode starts");
    let dir = tempfile::tempdir().unwrap();
    let node = start(&chain.genesis, dir.path(), vec![a.listen[0].clone()], None).await;
    wait_synced(&node, 50, LIMIT).await;
    a.stop().await.unwrap();
    let mut status = node.status.clone();
    wait_until(
        || status.borrow_and_update().peers == 0,
        LIMIT,
        || format!("the bootnode is gone: {:?}", node.status.borrow()),
    )
    .await;
    // Same store (same peer id), same address: the node finds it again by itself.
    let a = serve().await.expect("bootnode restarts");
    wait_until(
        || status.borrow_and_update().peers == 1,
        LIMIT,
        || format!("the bootnode is back: {:?}", node.status.borrow()),
    )
    .await;
    node.stop().await.unwrap();
    a.stop().await.unwrap();
}

#[path = "support/client.rs"]
mod client;

/// A client on the node's network (not a node): handshakes with `node` and lets the gossip
/// mesh form.
async fn gossip_client(genesis: &Genesis, node: &NodeHandle) -> Network {
    let mut client = client::connect_client(91, genesis, node, LIMIT).await;
    pump(&mut client, Duration::from_millis(1_500)).await;
    client
}

/// Drives a client's network for `d` (it must be polled for gossip to leave).
async fn pump(client: &mut Network, d: Duration) {
    let until = Instant::now() + d;
    while tokio::time::timeout_at(until, client.next_event())
        .await
        .is_ok()
    {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validly_finalized_conflicting_block_stops_sync_with_evidence() {
    init_logging();
    const BLOCKS: u64 = 300;
    const FORK_AT: u64 = 250;
    let time = headway::node::now_ms().saturating_sub((BLOCKS + 1) * 1_000);
    let chain = generate_at("sync-fork", BLOCKS, time);
    let fork_dir = tempfile::tempdir().unwrap();
    let spec = ChainSpec {
        genesis_time_ms: time,
        fork_at: Some(FORK_AT),
        ..ChainSpec::ending_now("sync-fork", 4, BLOCKS, 1_000)
    };
    gen_chain::generate(&spec, fork_dir.path()).unwrap();
    let fork = RedbStore::open(fork_dir.path().join("chain.redb")).unwrap();
    let node = start(&chain.genesis, chain.dir.path(), Vec::new(), None).await;
    let theirs = fork.block(260).unwrap().unwrap();
    let ours = node.store.header(260).unwrap().unwrap();
    assert_ne!(theirs.block.header.hash(), ours.header.hash());

    let mut client = gossip_client(&chain.genesis, &node).await;
    // A conflicting block whose commit does not verify is no evidence: it costs its publisher.
    let mut forged = theirs.clone();
    forged.commit.signatures[0].signature.0[0] ^= 1;
    client
        .publish(&GossipMessage::Finalized(forged))
        .expect("the node is subscribed");
    pump(&mut client, Duration::from_millis(1_000)).await;
    assert_ne!(node.status.borrow().state, "stopped");
    assert_eq!(metric(&node, "headway_sync_forks_total"), 0.0);
    // A validly finalized one is: sync stops with both headers as evidence.
    client
        .publish(&GossipMessage::Finalized(theirs.clone()))
        .expect("the node is subscribed");
    let mut status = node.status.clone();
    let deadline = Instant::now() + LIMIT;
    while status.borrow_and_update().state != "stopped" {
        assert!(
            Instant::now() < deadline,
            "no fork alarm: {:?}",
            node.status.borrow()
        );
        pump(&mut client, Duration::from_millis(50)).await;
    }
    let fork_report = node
        .status
        .borrow()
        .sync
        .clone()
        .unwrap()
        .fork
        .expect("fork report");
    assert_eq!(fork_report.height, 260);
    assert_eq!(fork_report.ours, ours.header.hash().to_hex());
    assert_eq!(fork_report.theirs, theirs.block.header.hash().to_hex());
    assert_eq!(fork_report.peer, client.local_peer_id().to_string());
    let stored: headway::node::api::ForkReport =
        serde_json::from_slice(&node.store.get_meta("sync:fork").unwrap().unwrap()).unwrap();
    assert_eq!(stored, fork_report);
    assert_eq!(metric(&node, "headway_sync_forks_total"), 1.0);
    assert_eq!(metric(&node, "headway_sync_state{kind=\"stopped\"}"), 1.0);
    // Nothing was rolled back.
    assert_eq!(node.store.head().unwrap().unwrap().height, BLOCKS);
    assert_eq!(node.store.header(260).unwrap().unwrap(), ours);
    node.stop().await.unwrap();
}

// ---- the real binary, killed mid-sync ------------------------------------------------------

/// A running `headway node` process.
struct Process {
    child: Child,
    http: SocketAddr,
    log: PathBuf,
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[path = "support/http.rs"]
mod http;
use http::{free_port, http_get, node_command};

fn status_of(p: &Process) -> Option<serde_json::Value> {
    serde_json::from_str(&http_get(p.http, "/status")?).ok()
}

fn spawn_node(genesis: &Path, data_dir: &Path, bootnodes: &[Multiaddr], log: PathBuf) -> Process {
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let out = std::fs::File::create(&log).unwrap();
    let child = node_command(genesis, data_dir, bootnodes, http, "info")
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("headway node starts");
    Process { child, http, log }
}

fn head_of_process(p: &Process) -> Option<(u64, String)> {
    let s = status_of(p)?;
    Some((s["head_height"].as_u64()?, s["state"].as_str()?.to_string()))
}

async fn wait_process(p: &Process, what: &str, mut cond: impl FnMut(u64, &str) -> bool) -> u64 {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some((height, state)) = head_of_process(p) {
            if cond(height, &state) {
                return height;
            }
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting until {what}; log:\n{}",
            std::fs::read_to_string(&p.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_sync_resumes_from_its_store_and_finishes_identically() {
    init_logging();
    const BLOCKS: u64 = 10_000;
    let chain = generate("sync-kill", BLOCKS);
    let a_dir = chain.copy();
    let a = start(&chain.genesis, a_dir.path(), Vec::new(), None).await;
    let b = start(&chain.genesis, chain.dir.path(), Vec::new(), None).await;
    let peers = vec![a.listen[0].clone(), b.listen[0].clone()];
    let work = tempfile::tempdir().unwrap();
    let genesis = work.path().join("genesis.json");
    std::fs::write(&genesis, chain.genesis.to_json()).unwrap();
    let data = work.path().join("data");

    let first = spawn_node(&genesis, &data, &peers, work.path().join("first.log"));
    let at_kill = wait_process(&first, "some blocks are written", |h, _| h >= 1_000).await;
    let mut first = first;
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();
    eprintln!("killed at height >= {at_kill}");

    // What was durably written is a consistent prefix of the chain.
    let stored = {
        let store = RedbStore::open(data.join("chain.redb")).unwrap();
        let (height, hash, _) = head_of(&store);
        assert_eq!(
            Some(hash),
            a.store
                .header(height)
                .unwrap()
                .map(|h| h.header.hash().to_hex()),
            "the stored head is the chain's block at its height"
        );
        height
    };
    assert!(
        stored >= at_kill,
        "{stored} < {at_kill}: a reported height was lost"
    );

    let second = spawn_node(&genesis, &data, &peers, work.path().join("second.log"));
    wait_process(&second, "synced again", |h, s| h >= BLOCKS && s == "synced").await;
    let status = status_of(&second).unwrap();
    assert_eq!(
        status["sync"]["start"].as_u64(),
        Some(stored),
        "resumed from the store head: {status}"
    );
    let mut second = second;
    second.child.kill().unwrap();
    second.child.wait().unwrap();
    let store = RedbStore::open(data.join("chain.redb")).unwrap();
    assert_eq!(head_of(&store), head_of(&*a.store));
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
