//! The real `headway` binary, killed with SIGKILL while it finalizes blocks: after each kill
//! it reopens its store at (at least) the last height it reported, and the store on disk is a
//! consistent, verifiable chain.
#![cfg(not(target_arch = "wasm32"))]

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use headway::chain::{ChainId, Checkpoint, Genesis};
use headway::node::config::{ConsensusTimeouts, NodeConfig};
use headway::node::keys::write_key_file;
use headway::node::now_ms;
use headway::store::{mmr_root_at, ChainStore, RedbStore};
use headway::testkit;
use headway::verify::{TrustedState, Verifier};

/// Upper bound of every wait.
const LIMIT: Duration = Duration::from_secs(60);

/// Blocks finalized between two kills.
const BLOCKS_PER_RUN: u64 = 5;

/// Files of one single-validator chain.
struct Setup {
    dir: tempfile::TempDir,
    genesis: Genesis,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let key = testkit::key(7_000);
        write_key_file(&dir.path().join("validator.key"), &key).unwrap();
        let genesis = Genesis::new(
            ChainId::new("node-kill").unwrap(),
            now_ms(),
            testkit::validator_set(std::slice::from_ref(&key)),
            Default::default(),
        )
        .unwrap();
        std::fs::write(dir.path().join("genesis.json"), genesis.to_json()).unwrap();
        // The CLI has no flags for the consensus timeouts: they come from a config file.
        let config = NodeConfig {
            data_dir: dir.path().join("data"),
            genesis: dir.path().join("genesis.json"),
            listen: Vec::new(),
            bootnodes: Vec::new(),
            http: None,
            validator_key: None,
            consensus: ConsensusTimeouts {
                block_interval_ms: 100,
                propose_ms: 400,
                propose_delta_ms: 100,
                vote_ms: 200,
                vote_delta_ms: 100,
            },
            www: None,
            tls_certificate: None,
            tls_private_key: None,
            addr_file: None,
            dishonest: None,
            warp_checkpoint: None,
            sync_mode: Default::default(),
            trusted_peers: Vec::new(),
        };
        std::fs::write(dir.path().join("node.toml"), config.to_toml()).unwrap();
        Setup { dir, genesis }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn data_dir(&self) -> PathBuf {
        self.path("data")
    }
}

/// A running `headway node` process.
struct Node {
    child: Child,
    http: SocketAddr,
    log: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        // A failing test must not leave the process behind.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[path = "support/http.rs"]
#[allow(dead_code)] // node_command: this test starts its node from a config file instead
mod http;
use http::{free_port, http_get};

/// The node's head height from `GET /status`.
fn head_height(node: &Node) -> Option<u64> {
    let body = http_get(node.http, "/status")?;
    let status: serde_json::Value = serde_json::from_str(&body).ok()?;
    status["head_height"].as_u64()
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Starts `headway node` on the setup's data dir and waits until its HTTP API answers.
/// Returns the node and the head height of its first status.
fn start(setup: &Setup, run: usize) -> (Node, u64) {
    for attempt in 0..5 {
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let log = setup.path(&format!("node-{run}-{attempt}.log"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_headway"));
        for (name, _) in std::env::vars() {
            if name.starts_with("HEADWAY_") {
                command.env_remove(name);
            }
        }
        let child = command
            .arg("node")
            .arg("--config")
            .arg(setup.path("node.toml"))
            .arg("--data-dir")
            .arg(setup.data_dir())
            .arg("--genesis")
            .arg(setup.path("genesis.json"))
            .arg("--validator-key")
            .arg(setup.path("validator.key"))
            .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
            .args(["--http", &http.to_string()])
            .args(["--log", "info"])
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .expect("the headway binary starts");
        let mut node = Node { child, http, log };
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(status) = node.child.try_wait().unwrap() {
                let log = read_log(&node.log);
                // Another process took the port between our probe and the bind: retry.
                if log.contains("binding the HTTP API") {
                    break;
                }
                panic!("headway node exited with {status} during start:\n{log}");
            }
            if let Some(height) = head_height(&node) {
                return (node, height);
            }
            assert!(
                Instant::now() < deadline,
                "the HTTP API did not answer:\n{}",
                read_log(&node.log)
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }
    panic!("no free HTTP port after 5 attempts");
}

/// Polls `/status` until the head reaches `height`; returns the last height seen.
fn wait_for_height(node: &mut Node, height: u64) -> u64 {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(status) = node.child.try_wait().unwrap() {
            panic!(
                "headway node exited with {status}:\n{}",
                read_log(&node.log)
            );
        }
        if let Some(seen) = head_height(node).filter(|&h| h >= height) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "the node did not reach height {height}:\n{}",
            read_log(&node.log)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGKILL (`Child::kill` on unix), then reap.
fn kill(mut node: Node) {
    node.child.kill().unwrap();
    node.child.wait().unwrap();
}

/// Stops the node with SIGTERM (a clean shutdown) where the `kill` command exists, else
/// SIGKILL; waits for the exit.
fn terminate(mut node: Node) {
    let pid = node.child.id().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .is_ok_and(|s| s.success());
    if !sent {
        return kill(node);
    }
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(status) = node.child.try_wait().unwrap() {
            assert!(
                status.success(),
                "clean shutdown failed ({status}):\n{}",
                read_log(&node.log)
            );
            return;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Opens the store of a stopped node and checks every stored block: heights, parent links,
/// MMR roots against the stored MMR, blocks against headers, the hash index, the head, and
/// the commits with the light verifier from the genesis checkpoint. Returns the head height.
fn check_store(setup: &Setup, at_least: u64) -> u64 {
    let store = RedbStore::open(setup.data_dir().join("chain.redb")).expect("the store opens");
    let head = store.head().unwrap().expect("a head");
    assert!(
        head.height >= at_least,
        "store head {} below the height {at_least} the node reported",
        head.height
    );
    let genesis = setup.genesis.block().block.header;
    assert_eq!(store.header(0).unwrap().unwrap().header, genesis);

    let headers = store.headers(1, head.height as u32).unwrap();
    assert_eq!(headers.len() as u64, head.height);
    let mut parent = genesis.hash();
    for (i, trusted) in headers.iter().enumerate() {
        let height = i as u64 + 1;
        let header = &trusted.header;
        assert_eq!(header.height, height);
        assert_eq!(header.parent_hash, parent, "parent link at {height}");
        assert_eq!(header.mmr_leaf_count, height);
        assert_eq!(
            Some(header.mmr_root),
            mmr_root_at(&store, height).unwrap(),
            "MMR root at {height}"
        );
        let block = store.block(height).unwrap().expect("block body");
        assert_eq!(block.trusted_header(), *trusted);
        let hash = header.hash();
        assert_eq!(store.height_of(&hash).unwrap(), Some(height));
        parent = hash;
    }
    assert_eq!(head.hash, parent);
    assert_eq!(
        Some(head.peaks.root()),
        mmr_root_at(&store, head.height + 1).unwrap()
    );
    assert!(store.header(head.height + 1).unwrap().is_none());
    assert!(store.block(head.height + 1).unwrap().is_none());

    let checkpoint =
        Checkpoint::for_header(&genesis, setup.genesis.validators_at(1).clone()).unwrap();
    let trusted = TrustedState::from_checkpoint(&checkpoint, genesis).unwrap();
    let state = Verifier::new()
        .verify_range(&trusted, &headers, now_ms())
        .unwrap_or_else(|e| panic!("stored headers do not verify: {e}"));
    assert_eq!(state.height(), head.height);
    head.height
}

#[test]
fn a_killed_node_reopens_a_consistent_store() {
    let setup = Setup::new();
    let (mut node, first) = start(&setup, 0);
    assert_eq!(first, 0, "a new data dir starts at genesis");
    let mut last_seen = wait_for_height(&mut node, BLOCKS_PER_RUN);

    for run in 1..=2 {
        kill(node);
        let stored = check_store(&setup, last_seen);
        let (mut restarted, resumed_at) = start(&setup, run);
        assert!(
            resumed_at >= last_seen,
            "run {run}: reopened at {resumed_at}, below {last_seen} reported before the kill"
        );
        assert!(resumed_at >= stored);
        last_seen = wait_for_height(&mut restarted, resumed_at + BLOCKS_PER_RUN);
        node = restarted;
    }

    terminate(node);
    let head = check_store(&setup, last_seen);
    assert!(head >= 3 * BLOCKS_PER_RUN);
}
