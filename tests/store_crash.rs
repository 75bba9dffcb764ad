#![cfg(not(target_arch = "wasm32"))]
//! Crash safety of the redb store. This test binary re-executes itself as a writer process that
//! appends blocks of a deterministic chain and reports each commit; the parent kills it with
//! SIGKILL at a random-ish moment, then checks that the store reopens on a consistent head no
//! older than the last commit the writer reported, and takes the next block. Three kills, each
//! resuming the same store.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use headway::chain::{Checkpoint, FinalizedBlock, TrustedHeader};
use headway::store::{self, ChainStore, RedbStore};
use headway::testkit::{self, ChainBuilder};
use headway::verify::{TrustedState, Verifier};

/// Set (to the store path) in the writer process only.
const WRITER_ENV: &str = "HEADWAY_STORE_CRASH_WRITER";
/// What the writer prints after each committed append, followed by the head height.
const COMMITTED: &str = "store-crash committed ";
/// The writer stops appending here (and waits to be killed), bounding the file size.
const WRITER_LIMIT: u64 = 50_000;
const KILLS: usize = 3;

/// The deterministic chain: 4 validators, a hand-over at 40, block h has h % 3 events.
fn builder() -> ChainBuilder {
    ChainBuilder::new("crash-chain", 4).hand_over_at(40, testkit::keys(100, 4))
}

fn next(chain: &mut ChainBuilder) -> FinalizedBlock {
    let h = chain.next_height();
    let source = testkit::key(1000);
    let events = (0..h % 3)
        .map(|i| testkit::event(&source, h * 3 + i, 1_700_000_000_000 + h))
        .collect();
    let (block, trusted) = chain.next_block(events);
    FinalizedBlock {
        block,
        commit: trusted.commit,
        next_validators: trusted.next_validators,
    }
}

/// The chain's first `n` blocks and the builder after them.
fn chain_of(n: u64) -> (ChainBuilder, Vec<FinalizedBlock>) {
    let mut chain = builder();
    let blocks = (0..n).map(|_| next(&mut chain)).collect();
    (chain, blocks)
}

/// The writer process: resumes the store's chain and appends batches of 1 to 4 blocks until
/// killed, printing each committed head height.
#[test]
#[ignore = "child process of kill_at_any_moment_keeps_the_last_commit"]
fn writer() {
    let Ok(path) = std::env::var(WRITER_ENV) else {
        return;
    };
    let store = RedbStore::open(&path).unwrap();
    let resume = store.head().unwrap().map_or(0, |h| h.height + 1);
    let (mut chain, _) = chain_of(resume);
    let mut next_height = resume;
    while next_height < WRITER_LIMIT {
        let batch: Vec<FinalizedBlock> =
            (0..1 + next_height % 4).map(|_| next(&mut chain)).collect();
        store.append(&batch).unwrap();
        next_height += batch.len() as u64;
        println!("{COMMITTED}{}", next_height - 1);
    }
    loop {
        thread::sleep(Duration::from_secs(1));
    }
}

/// A small xorshift generator seeded from the clock: a different moment each run.
struct Jitter(u64);

impl Jitter {
    fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Jitter(nanos | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn spawn_writer(path: &Path) -> Child {
    let exe = std::env::current_exe().unwrap();
    Command::new(exe)
        .args([
            "writer",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(WRITER_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs the writer, kills it `delay` after its first reported commit, and returns the last
/// commit it reported.
fn kill_writer_after(path: &Path, delay: Duration) -> u64 {
    let mut child = spawn_writer(path);
    let stdout = child.stdout.take().unwrap();
    let (first_tx, first_rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut last = None;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(at) = line.find(COMMITTED) {
                let height: u64 = line[at + COMMITTED.len()..].trim().parse().unwrap();
                if last.is_none() {
                    let _ = first_tx.send(());
                }
                last = Some(height);
            }
        }
        last
    });
    let started = first_rx.recv_timeout(Duration::from_secs(60));
    if started.is_ok() {
        thread::sleep(delay);
    }
    let exited_early = child.try_wait().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let last = reader.join().unwrap();
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    assert!(
        started.is_ok() && exited_early.is_none(),
        "the writer did not run until killed ({exited_early:?}): {stderr}"
    );
    last.expect("the writer reported a commit")
}

/// Checks the reopened store against the deterministic chain and returns its head height
/// (before it takes the next block).
fn check_store(path: &Path, last_reported: u64) -> u64 {
    let store = RedbStore::open(path).expect("the store reopens after SIGKILL");
    let head = store.head().unwrap().expect("the store has a head");
    assert!(
        head.height >= last_reported,
        "head {} is older than the last reported commit {last_reported}",
        head.height
    );
    let (mut chain, expected) = chain_of(head.height + 1);

    // Exactly the chain's blocks and headers, up to the head and nothing after.
    assert_eq!(store.blocks(0, u32::MAX).unwrap(), expected);
    let headers = store.headers(0, u32::MAX).unwrap();
    let expected_headers: Vec<TrustedHeader> = expected
        .iter()
        .map(FinalizedBlock::trusted_header)
        .collect();
    assert_eq!(headers, expected_headers);
    assert_eq!(store.header(head.height + 1).unwrap(), None);
    assert_eq!(headers[head.height as usize].header.hash(), head.hash);
    for pair in headers.windows(2) {
        assert_eq!(pair[1].header.parent_hash, pair[0].header.hash());
    }

    // The MMR nodes agree with the head's peaks and with every header.
    assert_eq!(head.peaks, chain.mmr().peaks());
    for h in (0..=head.height).step_by(7).chain([head.height]) {
        assert_eq!(
            store::mmr_root_at(&store, h).unwrap(),
            Some(headers[h as usize].header.mmr_root)
        );
    }
    assert_eq!(
        store::mmr_root_at(&store, head.height + 1).unwrap(),
        Some(head.peaks.root())
    );

    // The stored headers verify as a chain from the genesis checkpoint.
    let genesis = &headers[0].header;
    let checkpoint =
        Checkpoint::for_header(genesis, testkit::validator_set(&testkit::keys(0, 4))).unwrap();
    let trusted = TrustedState::from_checkpoint(&checkpoint, genesis.clone()).unwrap();
    let verified = Verifier::new()
        .verify_range(&trusted, &headers[1..], u64::MAX / 2)
        .unwrap();
    assert_eq!(verified.hash, head.hash);

    // And the store takes the next block.
    store.append(&[next(&mut chain)]).unwrap();
    assert_eq!(store.head().unwrap().unwrap().height, head.height + 1);
    head.height
}

#[test]
fn kill_at_any_moment_keeps_the_last_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let mut jitter = Jitter::new();
    for round in 0..KILLS {
        let delay = Duration::from_millis(100 + jitter.below(400));
        let reported = kill_writer_after(&path, delay);
        let head = check_store(&path, reported);
        eprintln!(
            "kill {round}: {delay:?} after the first commit; last reported commit {reported}, \
             reopened at head {head}"
        );
    }
}
