//! The block-sync machine against scripted peers serving testkit chains: 10,000 blocks from two
//! peers in parallel, header-first, bounded buffers, dishonest, stalling and vanishing peers,
//! missed store notifications, resume, progress records, forks. Pure, so it also builds for
//! wasm32.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use headway::chain::{BlockHash, Commit, FinalizedBlock, Hash, ValidatorSet};
use headway::crypto::ed25519::SigningKey;
use headway::proof::Mmr;
use headway::protocol::{
    BlocksResponse, ErrorCode, ErrorResponse, GetBlocks, GetHeaders, HeadersResponse, Request,
    Response, Status,
};
use headway::sync::{
    Action, BlockSync, Fault, GiveUp, Input, ProgressRecord, RequestFailure, RequestId, StopReason,
    SyncError, SyncMode, SyncOptions, SyncState,
};
use headway::testkit::{self, ChainBuilder};
use headway::verify::{TrustedState, VerifyError};

type Peer = u32;

const CHAIN_ID: &str = "sync-test";
/// The small chain: heights 0..=TIP, a hand-over at HAND_OVER, events in EVENT_BLOCKS.
const TIP: u64 = 1500;
const HAND_OVER: u64 = 700;
const EVENT_BLOCKS: [u64; 4] = [3, 300, 900, 1450];
/// The fork chain differs from here (an extra event), same keys and history before.
const FORK_AT: u64 = 1450;
const LONG_TIP: u64 = 10_000;

struct Chain {
    blocks: Vec<FinalizedBlock>,
    /// MMR over every block, 0..=tip.
    mmr: Mmr,
    hand_over: Option<u64>,
}

impl Chain {
    fn tip(&self) -> u64 {
        self.blocks.len() as u64 - 1
    }

    fn hash(&self, h: u64) -> BlockHash {
        self.blocks[h as usize].block.header.hash()
    }

    /// The set that signs block `h`.
    fn signers(&self, h: u64) -> (Vec<SigningKey>, ValidatorSet) {
        let keys = match self.hand_over {
            Some(at) if h >= at => testkit::keys(100, 5),
            _ => testkit::keys(0, 4),
        };
        let set = testkit::validator_set(&keys);
        (keys, set)
    }

    /// What a node whose store ends at `h` starts from.
    fn anchor(&self, h: u64) -> TrustedState {
        let header = self.blocks[h as usize].block.header.clone();
        TrustedState {
            hash: header.hash(),
            header,
            next_validators: Arc::new(self.signers(h + 1).1),
        }
    }
}

fn build(tip: u64, hand_over: Option<u64>, fork_at: Option<u64>) -> Chain {
    let mut builder = ChainBuilder::new(CHAIN_ID, 4);
    if let Some(at) = hand_over {
        builder = builder.hand_over_at(at, testkit::keys(100, 5));
    }
    let source = testkit::key(77);
    let mut blocks = Vec::with_capacity(tip as usize + 1);
    for h in 0..=tip {
        let mut events: Vec<_> = if EVENT_BLOCKS.contains(&h) {
            (0..3)
                .map(|i| testkit::event(&source, h * 10 + i, 1_700_000_000_000 + h))
                .collect()
        } else {
            Vec::new()
        };
        if fork_at == Some(h) {
            events.push(testkit::event(&source, 424_242, 1_700_000_000_000));
        }
        let (block, trusted) = builder.next_block(events);
        blocks.push(FinalizedBlock {
            block,
            commit: trusted.commit,
            next_validators: trusted.next_validators,
        });
    }
    Chain {
        blocks,
        mmr: builder.mmr().clone(),
        hand_over,
    }
}

fn main_chain() -> &'static Chain {
    static CHAIN: OnceLock<Chain> = OnceLock::new();
    CHAIN.get_or_init(|| build(TIP, Some(HAND_OVER), None))
}

fn fork_chain() -> &'static Chain {
    static CHAIN: OnceLock<Chain> = OnceLock::new();
    CHAIN.get_or_init(|| build(TIP, Some(HAND_OVER), Some(FORK_AT)))
}

fn long_chain() -> &'static Chain {
    static CHAIN: OnceLock<Chain> = OnceLock::new();
    CHAIN.get_or_init(|| build(LONG_TIP, None, None))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    Honest,
    /// Swaps the first two commit signatures of every block from this height on.
    BadSignatureFrom(u64),
    /// Serves blocks from this height on with another parent, re-signed by the validators.
    WrongParentFrom(u64),
    /// Drops the last event of every block with events from this height on (header intact).
    DropsEventsFrom(u64),
    /// Serves the fork chain's blocks (headers and bodies: another finalized chain from
    /// FORK_AT) in answer to `GetBlocks`, the main chain's headers to `GetHeaders`.
    ForkBodies,
    /// Serves blocks shifted one height up.
    Shifted,
    /// Answers `GetBlocks` with a headers response.
    WrongKind,
    /// Answers every request with this error.
    Error(ErrorCode),
    /// Never answers.
    Silent,
}

struct ScriptedPeer {
    chain: &'static Chain,
    lowest: u64,
    head: u64,
    behaviour: Behaviour,
}

impl ScriptedPeer {
    fn new(chain: &'static Chain, behaviour: Behaviour) -> Self {
        ScriptedPeer {
            chain,
            lowest: 0,
            head: chain.tip(),
            behaviour,
        }
    }

    fn honest(chain: &'static Chain) -> Self {
        Self::new(chain, Behaviour::Honest)
    }

    fn status(&self) -> Status {
        let header = &self.chain.blocks[self.head as usize].block.header;
        Status {
            head_height: self.head,
            head_hash: header.hash(),
            mmr_root: header.mmr_root,
            lowest_height: self.lowest,
            syncing: false,
        }
    }

    fn block(&self, h: u64) -> FinalizedBlock {
        let mut b = self.chain.blocks[h as usize].clone();
        match self.behaviour {
            Behaviour::BadSignatureFrom(from) if h >= from => {
                let s = &mut b.commit.signatures;
                let first = s[0].signature;
                s[0].signature = s[1].signature;
                s[1].signature = first;
            }
            Behaviour::WrongParentFrom(from) if h >= from => {
                b.block.header.parent_hash = Hash([9; 32]);
                let (keys, set) = self.chain.signers(h);
                let refs: Vec<&SigningKey> = keys.iter().collect();
                b.commit = Commit::sign(&b.block.header, 0, &set, &refs);
            }
            Behaviour::DropsEventsFrom(from) if h >= from => {
                b.block.events.pop();
            }
            Behaviour::ForkBodies => b = fork_chain().blocks[h as usize].clone(),
            _ => {}
        }
        b
    }

    fn answer(&self, request: &Request) -> Option<Response> {
        match self.behaviour {
            Behaviour::Silent => return None,
            Behaviour::Error(code) => {
                let e = ErrorResponse::new(code, "scripted");
                return Response::error(request.protocol(), e);
            }
            _ => {}
        }
        let range = |start: u64, count: u32| {
            let end = (start + u64::from(count)).min(self.head + 1);
            let start = start.max(self.lowest);
            start..end.max(start)
        };
        Some(match request {
            Request::GetBlocks(GetBlocks { start, count }) => {
                if self.behaviour == Behaviour::WrongKind {
                    return Some(Response::Headers(HeadersResponse::Headers(Vec::new())));
                }
                let shift = u64::from(self.behaviour == Behaviour::Shifted);
                let blocks = range(*start, *count)
                    .filter(|h| h + shift <= self.head)
                    .map(|h| self.block(h + shift))
                    .collect();
                Response::Blocks(BlocksResponse::Blocks(blocks))
            }
            Request::GetHeaders(GetHeaders { start, count }) => {
                let headers = range(*start, *count)
                    .map(|h| self.chain.blocks[h as usize].trusted_header())
                    .collect();
                Response::Headers(HeadersResponse::Headers(headers))
            }
            other => panic!("unexpected request {other:?}"),
        })
    }
}

/// A test store: appends must extend the head (as `ChainStore::append` checks).
struct TestStore {
    blocks: Vec<FinalizedBlock>,
    mmr: Mmr,
}

impl TestStore {
    /// A store holding `chain` up to `height`.
    fn holding(chain: &Chain, height: u64) -> Self {
        let mut store = TestStore {
            blocks: Vec::new(),
            mmr: Mmr::new(),
        };
        store.append(&chain.blocks[..=height as usize]);
        store
    }

    fn head(&self) -> u64 {
        self.blocks.len() as u64 - 1
    }

    fn append(&mut self, blocks: &[FinalizedBlock]) {
        for b in blocks {
            let h = b.height();
            assert_eq!(h, self.blocks.len() as u64, "writes are in height order");
            if let Some(parent) = self.blocks.last() {
                assert_eq!(b.block.header.parent_hash, parent.block.header.hash());
            }
            assert_eq!(b.block.header.mmr_root, self.mmr.root());
            self.mmr.append(&b.block.header.hash()).unwrap();
            self.blocks.push(b.clone());
        }
    }
}

/// A driver over scripted peers: responses are delivered last-in first-out (so ranges arrive
/// out of order); each delivery takes `step_ms`; when nothing is left to deliver, time jumps to
/// the machine's deadline.
struct Net {
    sync: BlockSync<Peer>,
    chain: &'static Chain,
    peers: BTreeMap<Peer, ScriptedPeer>,
    now: u64,
    step_ms: u64,
    inbox: Vec<Input<Peer>>,
    store: TestStore,
    /// Drop this many store notifications (the driver then relies on `CheckStore`).
    drop_notifications: usize,
    /// Store notifications and answers to `CheckStore`, delivered before responses unless
    /// `slow_store` (then after everything else queued).
    acks: Vec<Input<Peer>>,
    slow_store: bool,
    /// Every action but requests and writes, in order.
    actions: Vec<Action<Peer>>,
    sent: Vec<(u64, Peer, Request)>,
    outstanding: BTreeMap<RequestId, Peer>,
    writes: Vec<(u64, u64)>,
    max_busy_peers: usize,
    max_blocks: u64,
    max_bytes: u64,
    max_reserved: u64,
}

fn now_for(chain: &Chain) -> u64 {
    chain.blocks.last().unwrap().block.header.timestamp_ms + 60_000
}

impl Net {
    fn new(chain: &'static Chain, options: SyncOptions) -> Net {
        Self::from_store(chain, TestStore::holding(chain, 0), options)
    }

    fn from_store(chain: &'static Chain, store: TestStore, options: SyncOptions) -> Net {
        Self::at(chain, store, options, now_for(chain))
    }

    fn at(chain: &'static Chain, store: TestStore, options: SyncOptions, now: u64) -> Net {
        let sync = BlockSync::new(chain.anchor(store.head()), options, now).unwrap();
        Net {
            sync,
            chain,
            peers: BTreeMap::new(),
            now,
            step_ms: 0,
            inbox: Vec::new(),
            store,
            drop_notifications: 0,
            acks: Vec::new(),
            slow_store: false,
            actions: Vec::new(),
            sent: Vec::new(),
            outstanding: BTreeMap::new(),
            writes: Vec::new(),
            max_busy_peers: 0,
            max_blocks: 0,
            max_bytes: 0,
            max_reserved: 0,
        }
    }

    fn connect(&mut self, id: Peer, peer: ScriptedPeer) {
        self.connect_as(id, peer, false);
    }

    fn connect_as(&mut self, id: Peer, peer: ScriptedPeer, trusted: bool) {
        let status = peer.status();
        self.peers.insert(id, peer);
        self.sync.feed(Input::PeerConnected {
            peer: id,
            status,
            trusted,
        });
    }

    fn disconnect(&mut self, id: Peer) {
        self.peers.remove(&id);
        self.inbox.retain(|i| !from_peer(i, id));
        self.outstanding.retain(|_, p| *p != id);
        self.sync.feed(Input::PeerDisconnected { peer: id });
    }

    fn drain(&mut self) {
        while let Some(action) = self.sync.next_action() {
            match action {
                Action::SendRequest {
                    peer,
                    request_id,
                    request,
                } => {
                    self.sent.push((self.now, peer, request.clone()));
                    self.outstanding.insert(request_id, peer);
                    if let Some(response) = self.peers.get(&peer).and_then(|p| p.answer(&request)) {
                        self.inbox.push(Input::Response {
                            peer,
                            request_id,
                            response,
                        });
                    }
                }
                Action::Write { blocks } => {
                    let first = blocks[0].height();
                    let last = blocks.last().unwrap().height();
                    if let Some(&(_, prev)) = self.writes.last() {
                        assert_eq!(first, prev + 1, "write batches follow each other");
                    }
                    self.writes.push((first, last));
                    self.store.append(&blocks);
                    let written = Input::Written { up_to: last };
                    if self.drop_notifications > 0 {
                        self.drop_notifications -= 1;
                    } else {
                        self.acks.push(written);
                    }
                }
                Action::CheckStore => {
                    self.actions.push(Action::CheckStore);
                    let height = self.store.head();
                    self.acks.push(Input::StoreHeight { height });
                }
                Action::ReportPeer { peer, fault } => {
                    self.gone(peer);
                    self.actions.push(Action::ReportPeer { peer, fault });
                }
                Action::GiveUpPeer { peer, reason } => {
                    self.gone(peer);
                    self.actions.push(Action::GiveUpPeer { peer, reason });
                }
                other => self.actions.push(other),
            }
        }
        let busy: BTreeSet<Peer> = self.outstanding.values().copied().collect();
        self.max_busy_peers = self.max_busy_peers.max(busy.len());
        self.max_blocks = self.max_blocks.max(self.sync.buffered_blocks());
        self.max_bytes = self.max_bytes.max(self.sync.buffered_bytes());
        let held = self.sync.buffered_bytes() + self.sync.reserved_bytes();
        self.max_reserved = self.max_reserved.max(self.sync.reserved_bytes());
        let o = self.sync.options();
        assert!(self.sync.buffered_blocks() <= o.max_ahead_blocks);
        assert!(held <= o.max_buffer_bytes, "{held} bytes held");
        assert!(self.sync.reserved_bytes() <= o.max_in_flight_bytes);
    }

    fn gone(&mut self, peer: Peer) {
        self.peers.remove(&peer);
        self.inbox.retain(|i| !from_peer(i, peer));
        self.outstanding.retain(|_, p| *p != peer);
        self.inbox.push(Input::PeerDisconnected { peer });
    }

    /// Runs until `stop` holds or nothing is left to happen; returns whether `stop` holds.
    fn run_until(&mut self, stop: impl Fn(&Net) -> bool) -> bool {
        for _ in 0..1_000_000 {
            self.drain();
            if stop(self) {
                return true;
            }
            if (!self.slow_store || self.inbox.is_empty()) && !self.acks.is_empty() {
                let ack = self.acks.remove(0);
                self.sync.feed(ack);
                continue;
            }
            if let Some(input) = self.inbox.pop() {
                if let Input::Response { request_id, .. } = &input {
                    self.outstanding.remove(request_id);
                    if self.step_ms > 0 {
                        self.now += self.step_ms;
                        self.sync.feed(Input::Tick { now_ms: self.now });
                    }
                }
                self.sync.feed(input);
                continue;
            }
            match self.sync.next_deadline_ms() {
                Some(t) => {
                    self.outstanding.clear(); // timed out by now, as far as peers go
                    self.now = self.now.max(t);
                    self.sync.feed(Input::Tick { now_ms: self.now });
                }
                None => return stop(self),
            }
        }
        panic!("the scripted network did not settle");
    }

    fn run(&mut self) {
        self.run_until(|_| false);
    }

    fn assert_store_is_the_chain(&self) {
        let tip = self.chain.tip();
        assert_eq!(self.store.head(), tip);
        assert_eq!(
            self.store.blocks.last().unwrap().block.header.hash(),
            self.chain.hash(tip)
        );
        assert_eq!(
            self.store.mmr.root(),
            self.chain.mmr.root(),
            "same MMR root"
        );
        assert_eq!(
            self.store.blocks, self.chain.blocks,
            "every block, byte for byte"
        );
        assert_eq!(self.sync.written_height(), tip);
        assert_eq!(self.sync.state(), SyncState::Synced);
    }

    fn block_requests(&self) -> impl Iterator<Item = (Peer, GetBlocks)> + '_ {
        self.sent.iter().filter_map(|(_, p, r)| match r {
            Request::GetBlocks(g) => Some((*p, *g)),
            _ => None,
        })
    }

    fn reports(&self) -> Vec<(Peer, Fault)> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::ReportPeer { peer, fault } => Some((*peer, fault.clone())),
                _ => None,
            })
            .collect()
    }

    fn records(&self) -> Vec<ProgressRecord> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::PersistProgress(r) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }
}

fn from_peer(input: &Input<Peer>, id: Peer) -> bool {
    matches!(input, Input::Response { peer, .. } if *peer == id)
}

fn header_first() -> SyncOptions {
    SyncOptions {
        mode: SyncMode::HeaderFirst,
        ..SyncOptions::default()
    }
}

// ---- sync --------------------------------------------------------------------------------------

#[test]
fn syncs_10000_blocks_from_two_peers_in_parallel_to_the_same_head_and_mmr_root() {
    let chain = long_chain();
    let mut net = Net::new(chain, SyncOptions::default());
    net.connect(1, ScriptedPeer::honest(chain));
    net.connect(2, ScriptedPeer::honest(chain));
    net.run();

    net.assert_store_is_the_chain();
    assert_eq!(net.max_busy_peers, 2, "both peers had requests at once");
    let mut per_peer: BTreeMap<Peer, u64> = BTreeMap::new();
    for (peer, g) in net.block_requests() {
        assert!(g.count <= 128 && g.start >= 1);
        *per_peer.entry(peer).or_default() += u64::from(g.count);
    }
    assert!(per_peer.values().all(|&n| n >= 2_000), "{per_peer:?}");
    // Written in order, in batches, each acknowledged.
    assert_eq!(net.writes.first().unwrap().0, 1);
    assert!(net.writes.len() < 100, "{} batches", net.writes.len());
    let m = net.sync.metrics();
    assert_eq!(
        (m.downloaded_bodies, m.validated_blocks, m.written_blocks),
        (LONG_TIP, LONG_TIP, LONG_TIP)
    );
    assert_eq!((m.validation_errors, m.reorgs, m.peers_reported), (0, 0, 0));
    assert!(net.max_blocks <= SyncOptions::default().max_ahead_blocks);
}

#[test]
fn header_first_syncs_across_a_hand_over_to_the_same_chain() {
    let chain = main_chain();
    let mut net = Net::new(chain, header_first());
    net.connect(1, ScriptedPeer::honest(chain));
    net.connect(2, ScriptedPeer::honest(chain));
    net.run();

    net.assert_store_is_the_chain();
    let m = net.sync.metrics();
    assert_eq!(m.downloaded_headers, TIP);
    assert_eq!(m.downloaded_bodies, TIP);
    assert_eq!(net.sync.verified_header_height(), TIP);
    // No body was asked for before its header was verified: the first request is headers.
    assert!(matches!(net.sent[0].2, Request::GetHeaders(_)));
}

#[test]
fn buffers_stay_within_their_limits_with_a_small_window() {
    let chain = main_chain();
    let options = SyncOptions {
        blocks_per_request: 32,
        max_ahead_blocks: 100,
        max_requests_total: 8,
        max_requests_per_peer: 4,
        write_batch_blocks: 16,
        ..SyncOptions::default()
    };
    let mut net = Net::new(chain, options.clone());
    net.slow_store = true;
    for id in 1..=3 {
        net.connect(id, ScriptedPeer::honest(chain));
    }
    net.run();

    net.assert_store_is_the_chain();
    // `drain` asserted the limits after every input; the run came close to them.
    assert!(
        net.max_blocks <= 100 && net.max_blocks >= 64,
        "{}",
        net.max_blocks
    );
    assert!(net.sync.high_water().0 <= 100);
    assert!(net.max_reserved <= options.max_in_flight_bytes);
    for (_, g) in net.block_requests() {
        assert!(g.count <= 32);
    }
}

#[test]
fn the_byte_budget_limits_requests_in_flight() {
    let chain = main_chain();
    let one = headway::protocol::limits::MAX_RESPONSE_BYTES as u64;
    let options = SyncOptions {
        max_in_flight_bytes: 2 * one,
        max_buffer_bytes: 2 * one + 200_000,
        ..SyncOptions::default()
    };
    let mut net = Net::new(chain, options);
    for id in 1..=3 {
        net.connect(id, ScriptedPeer::honest(chain));
    }
    net.run();
    net.assert_store_is_the_chain();
    assert_eq!(net.max_reserved, 2 * one, "two reservations at most");
}

#[test]
fn resumes_from_the_store_height_without_asking_below_it() {
    let chain = main_chain();
    // A first run stops (a crash) with part of the chain written.
    let mut first = Net::new(chain, SyncOptions::default());
    first.connect(1, ScriptedPeer::honest(chain));
    assert!(first.run_until(|n| n.store.head() >= 800));
    let written = first.store.head();
    let store = TestStore::holding(chain, written);

    let mut net = Net::from_store(chain, store, SyncOptions::default());
    assert_eq!(net.sync.written_height(), written);
    net.connect(2, ScriptedPeer::honest(chain));
    net.run();
    net.assert_store_is_the_chain();
    assert!(net.block_requests().all(|(_, g)| g.start > written));
    assert_eq!(net.sync.progress().start, written);
    assert_eq!(net.records().last().unwrap().blocks_synced, TIP - written);
}

#[test]
fn a_missed_store_notification_is_recovered_by_reading_the_store_height() {
    let chain = main_chain();
    let options = SyncOptions {
        max_ahead_blocks: 256,
        write_batch_blocks: 64,
        ..SyncOptions::default()
    };
    // A few dropped notifications: the next one covers them (they are cumulative).
    let mut net = Net::new(chain, options.clone());
    net.drop_notifications = 3;
    net.connect(1, ScriptedPeer::honest(chain));
    net.run();
    net.assert_store_is_the_chain();

    // None at all: the window past the written head fills, the machine asks for the store
    // height, and goes on from what the store says.
    let mut net = Net::new(chain, options);
    net.drop_notifications = usize::MAX;
    net.connect(1, ScriptedPeer::honest(chain));
    net.run();
    net.assert_store_is_the_chain();
    let checks = net
        .actions
        .iter()
        .filter(|a| matches!(a, Action::CheckStore))
        .count();
    assert!(
        checks >= 5,
        "the machine asked for the store height {checks} times"
    );
    assert_eq!(net.sync.metrics().written_blocks, TIP);
}

#[test]
fn the_first_request_goes_to_a_trusted_peer_and_only_to_peers_that_have_the_heights() {
    let chain = main_chain();
    let mut net = Net::new(chain, SyncOptions::default());
    let mut pruned = ScriptedPeer::honest(chain);
    pruned.lowest = 1000;
    net.connect(1, pruned);
    net.connect_as(2, ScriptedPeer::honest(chain), true);
    net.run();
    net.assert_store_is_the_chain();
    assert_eq!(net.sent[0].1, 2, "the trusted peer first");
    for (peer, g) in net.block_requests() {
        if peer == 1 {
            assert!(g.start >= 1000, "peer 1 has nothing below 1000: {g:?}");
        }
    }
}

// ---- faults ------------------------------------------------------------------------------------

fn sync_with_one_bad_peer(options: SyncOptions, behaviour: Behaviour) -> Net {
    let chain = main_chain();
    let mut net = Net::new(chain, options);
    net.connect(1, ScriptedPeer::new(chain, behaviour));
    net.connect(2, ScriptedPeer::honest(chain));
    net.run();
    net.assert_store_is_the_chain();
    net
}

#[test]
fn a_peer_serving_a_bad_signature_is_reported_and_sync_finishes_from_the_other() {
    let net = sync_with_one_bad_peer(SyncOptions::default(), Behaviour::BadSignatureFrom(1));
    let reports = net.reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(matches!(
        &reports[0],
        (
            1,
            Fault::InvalidHeader {
                error: VerifyError::InvalidSignature { .. },
                ..
            }
        )
    ));
    assert_eq!(net.sync.metrics().peers_reported, 1);
    assert!(net.sync.metrics().validation_errors >= 1);
}

#[test]
fn a_peer_serving_a_wrong_parent_is_reported() {
    let net = sync_with_one_bad_peer(SyncOptions::default(), Behaviour::WrongParentFrom(200));
    assert!(matches!(
        net.reports().as_slice(),
        [(
            1,
            Fault::InvalidHeader {
                error: VerifyError::ParentHashMismatch { .. },
                ..
            }
        )]
    ));
}

#[test]
fn a_block_whose_events_are_not_its_header_s_is_reported_in_fast_sync() {
    let net = sync_with_one_bad_peer(SyncOptions::default(), Behaviour::DropsEventsFrom(0));
    let reports = net.reports();
    assert!(
        matches!(reports.as_slice(), [(1, Fault::BodyMismatch { reason, .. })] if reason.contains("events")),
        "{reports:?}"
    );
}

#[test]
fn header_first_reports_a_body_that_does_not_match_its_verified_header() {
    // Alone, the peer serves every range, so it serves the fork's block at FORK_AT too.
    let chain = main_chain();
    let mut net = Net::new(chain, header_first());
    net.connect(1, ScriptedPeer::new(chain, Behaviour::ForkBodies));
    assert!(net.run_until(|n| !n.reports().is_empty()));
    net.run();
    assert!(
        net.sync.applied_height() < FORK_AT,
        "nothing of the fork applied"
    );
    net.connect(2, ScriptedPeer::honest(chain));
    net.run();
    net.assert_store_is_the_chain();
    let reports = net.reports();
    assert!(
        matches!(reports.as_slice(), [(1, Fault::BodyMismatch { height: FORK_AT, reason })] if reason.contains("verified header")),
        "{reports:?}"
    );
}

#[test]
fn header_first_reports_dropped_events() {
    let net = sync_with_one_bad_peer(header_first(), Behaviour::DropsEventsFrom(0));
    assert!(matches!(
        net.reports().as_slice(),
        [(1, Fault::BodyMismatch { .. })]
    ));
}

#[test]
fn header_first_reports_a_bad_header() {
    let chain = main_chain();
    // Ranges of 128 headers, so that peer 2 cannot hold every range in flight by itself.
    let options = SyncOptions {
        headers_per_request: 128,
        ..header_first()
    };
    let mut net = Net::new(chain, options);
    // Peer 1 is silent; the test answers its headers request with a forged range.
    net.connect(2, ScriptedPeer::honest(chain));
    net.connect(1, ScriptedPeer::new(chain, Behaviour::Silent));
    net.drain();
    let (id, start, count) = net
        .sent
        .iter()
        .zip(0..)
        .find_map(|((_, p, r), i)| match r {
            Request::GetHeaders(g) if *p == 1 => Some((i, g.start, g.count)),
            _ => None,
        })
        .map(|(i, s, c)| (RequestId(i), s, c))
        .expect("peer 1 got a headers request");
    let mut headers: Vec<_> = (start..start + u64::from(count))
        .map(|h| chain.blocks[h as usize].trusted_header())
        .collect();
    headers[0].commit.signatures.truncate(1);
    net.sync.feed(Input::Response {
        peer: 1,
        request_id: id,
        response: Response::Headers(HeadersResponse::Headers(headers)),
    });
    net.run();
    net.assert_store_is_the_chain();
    assert!(matches!(
        net.reports().as_slice(),
        [(
            1,
            Fault::InvalidHeader {
                error: VerifyError::InsufficientVotingPower { .. },
                ..
            }
        )]
    ));
}

#[test]
fn a_block_from_our_future_is_not_the_peer_s_fault() {
    // Our clock is behind: block 200 is stamped 100 s past it (the allowed drift is 15 s).
    let chain = main_chain();
    let now = chain.blocks[100].block.header.timestamp_ms;
    let mut net = Net::at(
        chain,
        TestStore::holding(chain, 0),
        SyncOptions::default(),
        now,
    );
    net.connect(1, ScriptedPeer::honest(chain));
    assert!(net.run_until(|n| n.sync.metrics().validation_errors > 0));
    let stuck = net.sync.applied_height();
    assert!((100..=116).contains(&stuck), "{stuck}");
    assert!(net.reports().is_empty(), "no report: more likely our clock");
    assert!(
        net.sync.metrics().request_failures >= 1,
        "the peer backs off"
    );
    // As our clock moves on, sync does too.
    assert!(net.run_until(|n| n.sync.applied_height() >= 300));
    assert!(net.reports().is_empty());
}

#[test]
fn malformed_responses_are_reported() {
    let net = sync_with_one_bad_peer(SyncOptions::default(), Behaviour::Shifted);
    assert!(matches!(
        net.reports().as_slice(),
        [(1, Fault::Malformed(m))] if m.contains("expected")
    ));
    let net = sync_with_one_bad_peer(SyncOptions::default(), Behaviour::WrongKind);
    assert!(matches!(
        net.reports().as_slice(),
        [(1, Fault::Malformed(m))] if m.contains("response to a Blocks")
    ));
}

#[test]
fn a_stalling_peer_is_timed_out_and_its_ranges_reassigned() {
    let net = sync_with_one_bad_peer(SyncOptions::default(), Behaviour::Silent);
    let m = net.sync.metrics();
    assert!(m.stalls >= 1, "{m:?}");
    // Ranges first sent to the silent peer were fetched from the other one.
    let silent: Vec<u64> = net
        .block_requests()
        .filter(|(p, _)| *p == 1)
        .map(|(_, g)| g.start)
        .collect();
    assert!(!silent.is_empty());
    for start in silent {
        assert!(net
            .block_requests()
            .any(|(p, g)| p == 2 && g.start <= start && start < g.start + u64::from(g.count)));
    }
    assert!(net.reports().is_empty(), "silence is not invalid data");
}

#[test]
fn a_lone_silent_peer_times_out_backs_off_exponentially_and_is_given_up() {
    let chain = main_chain();
    let options = SyncOptions {
        max_requests_per_peer: 1,
        ..SyncOptions::default()
    };
    let mut net = Net::new(chain, options.clone());
    net.connect(1, ScriptedPeer::new(chain, Behaviour::Silent));
    net.run();
    let m = net.sync.metrics();
    assert_eq!(
        (m.timeouts, m.stalls),
        (5, 0),
        "alone, it is not reassigned early"
    );
    // The same range each time, after the timeout plus a doubling back-off.
    let times: Vec<u64> = net.sent.iter().map(|(t, _, _)| *t).collect();
    assert_eq!(times.len(), 5);
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let timeout = options.request_timeout_ms;
    assert_eq!(
        gaps,
        [
            timeout + 500,
            timeout + 1000,
            timeout + 2000,
            timeout + 4000
        ]
    );
    assert!(net.sent.iter().all(|(_, _, r)| *r == net.sent[0].2));
    assert_eq!(net.sync.state(), SyncState::Determining, "no peer left");
    assert_eq!(net.sync.applied_height(), 0);
    // After five failures in a row the silent peer is given up.
    assert!(net.actions.iter().any(|a| matches!(
        a,
        Action::GiveUpPeer {
            peer: 1,
            reason: GiveUp::Unresponsive { failures: 5 }
        }
    )));
}

#[test]
fn a_peer_that_refuses_is_backed_off_once_per_round_and_never_given_up() {
    let chain = main_chain();
    let options = SyncOptions::default();
    let mut net = Net::new(chain, options.clone());
    net.connect(
        1,
        ScriptedPeer::new(chain, Behaviour::Error(ErrorCode::RateLimited)),
    );
    assert!(net.run_until(|net| net.sent.len() >= 4 * 10));
    // Each round sends the peer its fill of requests; all are refused, and the back-off
    // doubles once per round, not once per refusal, up to its maximum.
    let mut rounds: Vec<u64> = net.sent.iter().map(|(t, _, _)| *t).collect();
    rounds.dedup();
    let gaps: Vec<u64> = rounds.windows(2).map(|w| w[1] - w[0]).collect();
    let expected: Vec<u64> = (1..=gaps.len() as u32)
        .map(|n| options.backoff_ms(n))
        .collect();
    assert_eq!(gaps, expected);
    assert_eq!(gaps.last(), Some(&options.backoff_max_ms));
    assert!(
        !net.actions
            .iter()
            .any(|a| matches!(a, Action::GiveUpPeer { .. })),
        "a refusing peer answers: it is not given up"
    );
    assert!(net.reports().is_empty());
    // A peer that serves arrives: sync finishes.
    net.connect(2, ScriptedPeer::honest(chain));
    net.run();
    net.assert_store_is_the_chain();
}

#[test]
fn refusals_back_off_and_not_found_lowers_the_peer_s_head() {
    let net = sync_with_one_bad_peer(
        SyncOptions::default(),
        Behaviour::Error(ErrorCode::RateLimited),
    );
    assert!(net.sync.metrics().request_failures >= 1);
    assert!(net.reports().is_empty());
    let net = sync_with_one_bad_peer(
        SyncOptions::default(),
        Behaviour::Error(ErrorCode::NotFound),
    );
    // Told it lacks the heights, the peer is asked no more than what it was sent before its
    // first answer came back: at most once per start height it missed.
    let asked = net.block_requests().filter(|(p, _)| *p == 1).count();
    assert!(
        (1..=SyncOptions::default().max_requests_per_peer).contains(&asked),
        "{asked}"
    );
    assert_eq!(net.sync.metrics().request_failures, 0);
}

#[test]
fn a_reported_peer_is_refused_when_it_reconnects() {
    let chain = main_chain();
    let mut net = sync_with_one_bad_peer(SyncOptions::default(), Behaviour::BadSignatureFrom(1));
    net.connect(1, ScriptedPeer::honest(chain));
    net.drain();
    assert!(matches!(
        net.actions.last(),
        Some(Action::GiveUpPeer {
            peer: 1,
            reason: GiveUp::Avoided { .. }
        })
    ));
}

#[test]
fn a_failed_request_is_retried_on_another_peer_after_a_back_off() {
    let chain = main_chain();
    let options = SyncOptions {
        max_requests_per_peer: 1,
        ..SyncOptions::default()
    };
    let mut net = Net::new(chain, options);
    net.connect(1, ScriptedPeer::new(chain, Behaviour::Silent));
    net.connect(2, ScriptedPeer::new(chain, Behaviour::Silent));
    net.drain();
    let (_, p, r) = net.sent[0].clone();
    net.sync.feed(Input::RequestFailed {
        peer: p,
        request_id: RequestId(0),
        reason: RequestFailure::Disconnected,
    });
    net.connect(3, ScriptedPeer::new(chain, Behaviour::Silent));
    net.drain();
    let again = net
        .sent
        .iter()
        .skip(1)
        .find(|(_, _, req)| *req == r)
        .unwrap();
    assert_ne!(again.1, p, "the range went to another peer");
    assert_eq!(net.sync.metrics().request_failures, 1);
}

#[test]
fn sync_waits_while_peers_are_gone_and_goes_on_when_one_comes_back() {
    let chain = main_chain();
    let mut net = Net::new(chain, SyncOptions::default());
    net.connect(1, ScriptedPeer::honest(chain));
    assert!(net.run_until(|n| n.sync.applied_height() >= 400));
    net.disconnect(1);
    net.run();
    assert_eq!(
        net.sync.state(),
        SyncState::Determining,
        "no peer to compare with"
    );
    assert!(net.sync.applied_height() < TIP);
    let stuck_at = net.store.head();
    assert_eq!(
        stuck_at,
        net.sync.applied_height(),
        "what was applied is written"
    );

    net.connect(2, ScriptedPeer::honest(chain));
    assert!(net.run_until(|n| n.sync.applied_height() >= 1000));
    net.disconnect(2);
    net.connect(1, ScriptedPeer::honest(chain));
    net.run();
    net.assert_store_is_the_chain();
    let states: Vec<SyncState> = net
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::StateChanged { to, .. } => Some(*to),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        [
            SyncState::Syncing,
            SyncState::Determining,
            SyncState::Syncing,
            SyncState::Determining,
            SyncState::Syncing,
            SyncState::Synced
        ]
    );
}

// ---- progress ----------------------------------------------------------------------------------

#[test]
fn progress_reports_rate_and_eta_and_records_every_1000_blocks() {
    let chain = long_chain();
    let mut net = Net::new(chain, SyncOptions::default());
    net.step_ms = 10;
    net.connect(1, ScriptedPeer::honest(chain));
    net.connect(2, ScriptedPeer::honest(chain));
    assert!(net.run_until(|n| n.sync.applied_height() >= 5_000));
    let p = net.sync.progress();
    assert_eq!(p.state, SyncState::Syncing);
    assert_eq!((p.start, p.target), (0, LONG_TIP));
    assert!(p.blocks_per_second > 1_000.0, "{p:?}");
    let eta = p.eta_ms.unwrap();
    let expected = (LONG_TIP - p.current) as f64 * 1000.0 / p.blocks_per_second;
    assert!((eta as f64 - expected).abs() <= 1.0, "{eta} vs {expected}");
    assert!(p.percent >= 50.0 && p.percent < 100.0);
    net.run();
    net.assert_store_is_the_chain();

    let records = net.records();
    assert!(records.len() >= 10, "{}", records.len());
    let mut previous = 0;
    for r in &records {
        assert!(
            r.current_height >= previous + 1000 || r.at_ms >= 30_000,
            "{r:?}"
        );
        assert_eq!(r.current_hash, chain.hash(r.current_height));
        assert_eq!(r.reorgs, 0);
        previous = r.current_height;
    }
    let last = records.last().unwrap();
    assert_eq!(
        (last.current_height, last.blocks_synced, last.eta_ms),
        (LONG_TIP, LONG_TIP, Some(0))
    );
    let reports = net
        .actions
        .iter()
        .filter(|a| matches!(a, Action::Progress(_)))
        .count();
    assert!(reports >= 2);
}

#[test]
fn a_record_is_also_due_every_30_seconds_while_sync_moves() {
    let chain = main_chain();
    let options = SyncOptions {
        blocks_per_request: 16,
        max_requests_per_peer: 1,
        write_batch_blocks: 16,
        ..SyncOptions::default()
    };
    let mut net = Net::new(chain, options);
    net.step_ms = 1_000; // 16 blocks a second
    net.connect(1, ScriptedPeer::honest(chain));
    net.run();
    net.assert_store_is_the_chain();
    let records = net.records();
    let start = now_for(chain);
    assert!(records.len() >= 3);
    for pair in records.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(
            b.current_height - a.current_height < 1000,
            "time, not blocks"
        );
        assert!(
            b.at_ms - a.at_ms >= 30_000 || b.current_height == TIP,
            "{a:?} {b:?}"
        );
    }
    assert!(records[0].at_ms >= start + 30_000);
    let rate = records[1].blocks_per_second;
    assert!((15.0..=17.0).contains(&rate), "{rate}");
}

// ---- forks and gossip --------------------------------------------------------------------------

#[test]
fn a_conflicting_finalized_block_raises_evidence_and_stops_sync() {
    let chain = main_chain();
    let mut net = Net::new(chain, SyncOptions::default());
    net.connect(1, ScriptedPeer::honest(chain));
    net.connect(2, ScriptedPeer::new(fork_chain(), Behaviour::Honest));
    assert!(net.run_until(|n| n.sync.applied_height() >= FORK_AT + 10));
    let theirs = fork_chain().blocks[FORK_AT as usize].clone();
    net.sync.feed(Input::Gossip {
        peer: 2,
        block: Box::new(theirs.clone()),
    });
    net.drain();
    let evidence = net
        .actions
        .iter()
        .find_map(|a| match a {
            Action::ForkDetected { evidence } => Some(evidence.clone()),
            _ => None,
        })
        .expect("fork evidence");
    assert_eq!(evidence.height, FORK_AT);
    assert_eq!(evidence.peer, 2);
    assert_eq!(
        evidence.ours,
        chain.blocks[FORK_AT as usize].trusted_header()
    );
    assert_eq!(evidence.theirs, theirs.trusted_header());
    assert_eq!(net.sync.state(), SyncState::Stopped);
    assert_eq!(
        net.sync.stopped(),
        Some(StopReason::Fork {
            height: FORK_AT,
            ours: chain.hash(FORK_AT)
        })
    );
    // Stopped for good: nothing more is asked for, whatever comes in.
    let sent = net.sent.len();
    net.sync.feed(Input::Tick {
        now_ms: net.now + 60_000,
    });
    net.connect(3, ScriptedPeer::honest(chain));
    net.drain();
    assert_eq!(net.sent.len(), sent);
    assert_eq!(net.sync.next_deadline_ms(), None);
}

#[test]
fn a_conflicting_block_that_is_not_validly_signed_is_the_sender_s_fault() {
    let chain = main_chain();
    let mut net = Net::new(chain, SyncOptions::default());
    net.connect(1, ScriptedPeer::honest(chain));
    net.connect(2, ScriptedPeer::honest(chain));
    net.run();
    net.assert_store_is_the_chain();
    let mut theirs = fork_chain().blocks[FORK_AT as usize].clone();
    theirs.commit.signatures.truncate(2);
    net.sync.feed(Input::Gossip {
        peer: 2,
        block: Box::new(theirs),
    });
    net.drain();
    assert!(matches!(
        net.reports().as_slice(),
        [(
            2,
            Fault::InvalidConflict {
                height: FORK_AT,
                error: VerifyError::InsufficientVotingPower { .. }
            }
        )]
    ));
    assert_eq!(net.sync.state(), SyncState::Synced);
    // The same block as ours is nothing to report.
    net.sync.feed(Input::Gossip {
        peer: 1,
        block: Box::new(chain.blocks[FORK_AT as usize].clone()),
    });
    net.drain();
    assert_eq!(net.reports().len(), 1);
}

#[test]
fn when_synced_a_gossiped_next_block_is_applied() {
    let chain = main_chain();
    let mut net = Net::new(chain, SyncOptions::default());
    let mut behind = ScriptedPeer::honest(chain);
    behind.head = TIP - 1;
    net.connect(1, behind);
    net.run();
    assert_eq!(net.sync.written_height(), TIP - 1);
    assert_eq!(net.sync.state(), SyncState::Synced);
    let requests = net.sent.len();
    net.sync.feed(Input::Gossip {
        peer: 1,
        block: Box::new(chain.blocks[TIP as usize].clone()),
    });
    net.run();
    net.assert_store_is_the_chain();
    assert_eq!(net.sent.len(), requests, "no request needed");
}

// ---- construction ------------------------------------------------------------------------------

#[test]
fn rejects_unworkable_options_and_a_bad_anchor() {
    let chain = main_chain();
    let now = now_for(chain);
    let bad = [
        SyncOptions {
            blocks_per_request: 0,
            ..SyncOptions::default()
        },
        SyncOptions {
            blocks_per_request: 129,
            ..SyncOptions::default()
        },
        SyncOptions {
            max_ahead_blocks: 10,
            ..SyncOptions::default()
        },
        SyncOptions {
            max_in_flight_bytes: 1,
            ..SyncOptions::default()
        },
        SyncOptions {
            max_buffer_bytes: 1 << 20,
            ..SyncOptions::default()
        },
        SyncOptions {
            stall_timeout_ms: 0,
            ..SyncOptions::default()
        },
    ];
    for options in bad {
        assert!(matches!(
            BlockSync::<Peer>::new(chain.anchor(0), options, now),
            Err(SyncError::InvalidOptions(_))
        ));
    }
    let mut wrong_set = chain.anchor(10);
    wrong_set.next_validators = Arc::new(testkit::validator_set(&testkit::keys(100, 5)));
    assert!(matches!(
        BlockSync::<Peer>::new(wrong_set, SyncOptions::default(), now),
        Err(SyncError::Anchor(m)) if m.contains("next validator set")
    ));
    let mut wrong_hash = chain.anchor(10);
    wrong_hash.hash = chain.hash(11);
    assert!(matches!(
        BlockSync::<Peer>::new(wrong_hash, SyncOptions::default(), now),
        Err(SyncError::Anchor(_))
    ));
    let sync = BlockSync::<Peer>::new(chain.anchor(10), SyncOptions::default(), now).unwrap();
    assert_eq!(sync.state(), SyncState::Determining);
    assert_eq!(sync.written_height(), 10);
}
