//! The light-client machine against scripted peers serving testkit chains: parallel sync across
//! a validator-set hand-over, dishonest, silent and vanishing peers, forks, event proofs,
//! resume from a store, stale checkpoints. Pure, so it also runs in headless Chromium.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use std::time::Duration;

use headway::chain::{
    Block, CheckpointError, Commit, Encode, EventId, Hash, TrustedHeader, ValidatorSet,
};
use headway::crypto::ed25519::SigningKey;
use headway::light::{
    quorum_commit, Action, DropReason, Input, LightClient, LightError, LightOptions, LightStore,
    LightStoreError, MemoryLightStore, Phase, QueryId, RequestFailure, RequestId, StopReason,
    StoredHeader, StoredValidators, VerifiedHeader,
};
use headway::net::{PeerBook, PeerBookConfig};
use headway::proof::{EventProof, EventProofError, Mmr, VerifiedEvent};
use headway::protocol::limits::RateLimit;
use headway::protocol::{
    GetHeaders, HeadersResponse, ProofResponse, Protocol, Request, Response, Status,
};
use headway::testkit::{self, ChainBuilder};
use headway::verify::VerifyError;

type Peer = u32;

/// Heights 0..=TIP; the set hands over at HAND_OVER; blocks in EVENT_BLOCKS carry 3 events.
const TIP: u64 = 1100;
const HAND_OVER: u64 = 600;
const EVENT_BLOCKS: [u64; 3] = [5, 300, 900];
/// Where the fork chain's block differs (an extra event), same keys and history before it.
const FORK_AT: u64 = 1000;
const CHAIN_ID: &str = "light-test";
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

struct Chain {
    headers: Vec<TrustedHeader>,
    /// Blocks with events, by height.
    blocks: BTreeMap<u64, Block>,
    /// Event id → (height, index).
    events: BTreeMap<EventId, (u64, u32)>,
    mmr: Mmr,
}

fn keys_before_hand_over() -> Vec<SigningKey> {
    testkit::keys(0, 4)
}

fn keys_after_hand_over() -> Vec<SigningKey> {
    testkit::keys(100, 5)
}

fn build(chain_id: &str, tip: u64, fork_at: Option<u64>) -> Chain {
    let mut builder =
        ChainBuilder::new(chain_id, 4).hand_over_at(HAND_OVER, keys_after_hand_over());
    let source = testkit::key(77);
    let mut chain = Chain {
        headers: Vec::new(),
        blocks: BTreeMap::new(),
        events: BTreeMap::new(),
        mmr: Mmr::new(),
    };
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
        for (i, e) in block.events.iter().enumerate() {
            chain.events.insert(e.id(), (h, i as u32));
        }
        if !block.events.is_empty() {
            chain.blocks.insert(h, block);
        }
        chain.headers.push(trusted);
    }
    chain.mmr = builder.mmr().clone();
    chain
}

fn main_chain() -> &'static Chain {
    static CHAIN: OnceLock<Chain> = OnceLock::new();
    CHAIN.get_or_init(|| build(CHAIN_ID, TIP, None))
}

fn fork_chain() -> &'static Chain {
    static CHAIN: OnceLock<Chain> = OnceLock::new();
    CHAIN.get_or_init(|| build(CHAIN_ID, TIP, Some(FORK_AT)))
}

fn other_chain() -> &'static Chain {
    static CHAIN: OnceLock<Chain> = OnceLock::new();
    CHAIN.get_or_init(|| build("other-chain", 20, None))
}

/// The checkpoint at genesis: the set that signs block 1.
fn checkpoint() -> headway::chain::Checkpoint {
    let genesis = &main_chain().headers[0].header;
    headway::chain::Checkpoint::for_header(
        genesis,
        testkit::validator_set(&keys_before_hand_over()),
    )
    .unwrap()
}

/// A minute after the tip was built.
fn now() -> u64 {
    main_chain().headers[TIP as usize].header.timestamp_ms + 60_000
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    Honest,
    /// Swaps the first two commit signatures of every header from this height on.
    BadSignatureFrom(u64),
    /// Serves every header from this height on with another parent, re-signed by the
    /// validators (so only the link is wrong).
    WrongParentFrom(u64),
    /// Never answers.
    Silent,
    /// Serves event proofs with a tampered header.
    ForgedProof,
}

struct ScriptedPeer {
    chain: &'static Chain,
    head: u64,
    behaviour: Behaviour,
}

impl ScriptedPeer {
    fn new(chain: &'static Chain, head: u64, behaviour: Behaviour) -> Self {
        ScriptedPeer {
            chain,
            head,
            behaviour,
        }
    }

    fn honest(head: u64) -> Self {
        Self::new(main_chain(), head, Behaviour::Honest)
    }

    fn status(&self) -> Status {
        let header = &self.chain.headers[self.head as usize].header;
        Status {
            head_height: self.head,
            head_hash: header.hash(),
            mmr_root: header.mmr_root,
            lowest_height: 0,
            syncing: false,
        }
    }

    fn header(&self, height: u64) -> TrustedHeader {
        let mut th = self.chain.headers[height as usize].clone();
        match self.behaviour {
            Behaviour::BadSignatureFrom(from) if height >= from => {
                let s = &mut th.commit.signatures;
                let first = s[0].signature;
                s[0].signature = s[1].signature;
                s[1].signature = first;
            }
            Behaviour::WrongParentFrom(from) if height >= from => {
                th.header.parent_hash = Hash([9; 32]);
                let keys = if height >= HAND_OVER {
                    keys_after_hand_over()
                } else {
                    keys_before_hand_over()
                };
                let set = testkit::validator_set(&keys);
                let refs: Vec<&SigningKey> = keys.iter().collect();
                th.commit = Commit::sign(&th.header, 0, &set, &refs);
            }
            _ => {}
        }
        th
    }

    fn answer(&self, request: &Request) -> Option<Response> {
        if self.behaviour == Behaviour::Silent {
            return None;
        }
        Some(match request {
            Request::GetHeaders(GetHeaders { start, count }) => {
                let end = (start + u64::from(*count)).min(self.head + 1);
                let headers = (*start..end).map(|h| self.header(h)).collect();
                Response::Headers(HeadersResponse::Headers(headers))
            }
            Request::GetProof(get) => {
                let at = get.at_height.unwrap_or(self.head);
                let proof = self.chain.events.get(&get.event_id).and_then(|&(h, i)| {
                    let block = &self.chain.blocks[&h];
                    let mut proof = EventProof::build(block, i, &self.chain.mmr, at).ok()?;
                    if self.behaviour == Behaviour::ForgedProof {
                        proof.header.timestamp_ms += 1;
                    }
                    Some(Box::new(proof))
                });
                Response::Proof(ProofResponse::Proof(proof))
            }
            other => panic!("unexpected request {other:?}"),
        })
    }
}

/// A driver over scripted peers: responses are delivered last-in first-out (so ranges arrive
/// out of order); time moves only when nothing is left to deliver, to the machine's deadline.
struct Net {
    client: LightClient<Peer>,
    peers: BTreeMap<Peer, ScriptedPeer>,
    now: u64,
    inbox: Vec<Input<Peer>>,
    store: MemoryLightStore,
    /// Every action but requests and stores, in order.
    actions: Vec<Action<Peer>>,
    /// Every request: (time, peer, request).
    sent: Vec<(u64, Peer, Request)>,
    outstanding: BTreeMap<RequestId, Peer>,
    /// Most distinct peers with requests outstanding at once.
    max_busy_peers: usize,
    max_buffered: usize,
    store_batches: Vec<(u64, u64)>,
    /// The hand-over commits the machine handed to the store, as it handed them.
    handed_commits: Vec<Commit>,
}

impl Net {
    fn new(options: LightOptions) -> Net {
        Self::at(options, now())
    }

    fn at(options: LightOptions, now: u64) -> Net {
        let client = LightClient::new(checkpoint(), options, now).unwrap();
        Self::with_client(client, MemoryLightStore::new(), now)
    }

    fn with_client(client: LightClient<Peer>, store: MemoryLightStore, now: u64) -> Net {
        Net {
            client,
            peers: BTreeMap::new(),
            now,
            inbox: Vec::new(),
            store,
            actions: Vec::new(),
            sent: Vec::new(),
            outstanding: BTreeMap::new(),
            max_busy_peers: 0,
            max_buffered: 0,
            store_batches: Vec::new(),
            handed_commits: Vec::new(),
        }
    }

    fn connect(&mut self, id: Peer, peer: ScriptedPeer) {
        let status = peer.status();
        self.peers.insert(id, peer);
        self.client.feed(Input::PeerConnected { peer: id, status });
    }

    fn disconnect(&mut self, id: Peer) {
        self.peers.remove(&id);
        self.inbox.retain(|i| !from_peer(i, id));
        self.client.feed(Input::PeerDisconnected { peer: id });
    }

    fn drain(&mut self) {
        while let Some(action) = self.client.next_action() {
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
                Action::StoreHeaders { headers } => {
                    self.handed_commits
                        .extend(headers.iter().filter_map(|h| h.commit.clone()));
                    self.store.append(&headers).unwrap();
                    let (first, last) = (headers[0].height(), headers.last().unwrap().height());
                    self.store_batches.push((first, last));
                    self.inbox.push(Input::Stored { up_to_height: last });
                }
                Action::DropPeer { peer, reason } => {
                    self.peers.remove(&peer);
                    self.inbox.retain(|i| !from_peer(i, peer));
                    self.inbox.push(Input::PeerDisconnected { peer });
                    self.actions.push(Action::DropPeer { peer, reason });
                }
                other => self.actions.push(other),
            }
        }
        let busy: BTreeSet<Peer> = self.outstanding.values().copied().collect();
        self.max_busy_peers = self.max_busy_peers.max(busy.len());
        self.max_buffered = self.max_buffered.max(self.client.buffered_headers());
    }

    /// Runs until `stop` holds or nothing is left to happen; returns whether `stop` holds.
    fn run_until(&mut self, stop: impl Fn(&Net) -> bool) -> bool {
        for _ in 0..200_000 {
            self.drain();
            if stop(self) {
                return true;
            }
            if let Some(input) = self.inbox.pop() {
                if let Input::Response { request_id, .. } = &input {
                    self.outstanding.remove(request_id);
                }
                self.client.feed(input);
                continue;
            }
            match self.client.next_deadline_ms() {
                Some(t) => {
                    self.now = self.now.max(t);
                    self.client.feed(Input::Tick { now_ms: self.now });
                }
                None => return stop(self),
            }
        }
        panic!("the scripted network did not settle");
    }

    fn run(&mut self) {
        self.run_until(|_| false);
    }

    fn verified(&self) -> u64 {
        self.client.verified_height().unwrap()
    }

    fn header_requests(&self) -> impl Iterator<Item = (Peer, GetHeaders)> + '_ {
        self.sent.iter().filter_map(|(_, p, r)| match r {
            Request::GetHeaders(g) => Some((*p, *g)),
            _ => None,
        })
    }

    fn drops(&self) -> Vec<(Peer, DropReason)> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::DropPeer { peer, reason } => Some((*peer, reason.clone())),
                _ => None,
            })
            .collect()
    }

    fn event_result(&self, query: QueryId) -> Option<Result<VerifiedEvent, LightError>> {
        self.actions.iter().find_map(|a| match a {
            Action::EventVerified { query_id, result } if *query_id == query => {
                Some(result.clone())
            }
            _ => None,
        })
    }

    fn assert_store_holds_main_chain_to(&self, tip: u64) {
        let head = self.store.head().unwrap().unwrap();
        assert_eq!(head.height(), tip);
        assert_eq!(head.hash, main_chain().headers[tip as usize].header.hash());
    }
}

fn from_peer(input: &Input<Peer>, id: Peer) -> bool {
    matches!(input, Input::Response { peer, .. } if *peer == id)
}

fn synced(net: &Net) -> bool {
    net.client.verified_height() == Some(TIP)
}

// ---- sync --------------------------------------------------------------------------------------

#[test]
fn syncs_across_a_hand_over_from_three_peers_in_parallel() {
    let mut net = Net::new(LightOptions::default());
    for id in 1..=3 {
        net.connect(id, ScriptedPeer::honest(TIP));
    }
    net.run();

    assert_eq!(net.verified(), TIP);
    assert_eq!(net.client.phase(), Phase::Following);
    assert_eq!(
        net.client.trusted().unwrap().hash,
        main_chain().headers[TIP as usize].header.hash()
    );
    net.assert_store_holds_main_chain_to(TIP);
    assert_eq!(
        net.store.len() as u64,
        TIP + 1,
        "every height, the checkpoint's included"
    );

    // The first request fetches the checkpoint's header; then ranges of at most a batch.
    let requests: Vec<(Peer, GetHeaders)> = net.header_requests().collect();
    assert_eq!(requests[0].1, GetHeaders { start: 0, count: 1 });
    let mut per_peer: BTreeMap<Peer, u64> = BTreeMap::new();
    for (peer, g) in &requests[1..] {
        assert!(g.count <= 128 && g.start >= 1);
        *per_peer.entry(*peer).or_default() += u64::from(g.count);
    }
    assert_eq!(
        per_peer.len(),
        3,
        "requests spread over every peer: {per_peer:?}"
    );
    assert!(per_peer.values().all(|&n| n >= 128), "{per_peer:?}");
    assert_eq!(
        per_peer.values().sum::<u64>(),
        TIP,
        "no height fetched twice"
    );
    assert_eq!(net.max_busy_peers, 3);
    assert!(
        net.max_buffered > 0,
        "later ranges arrived first and waited"
    );
    assert!(net.max_buffered as u64 <= LightOptions::default().max_ahead_headers);

    // Batched writes, in order; every new head announced, the last one the tip.
    assert!(net.store_batches.len() < 10, "{:?}", net.store_batches);
    let heads: Vec<u64> = net
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::NewHead { height, .. } => Some(*height),
            _ => None,
        })
        .collect();
    assert!(heads.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(heads.last(), Some(&TIP));
    let phases: Vec<Phase> = net
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Progress(p) => Some(p.phase),
            _ => None,
        })
        .collect();
    assert_eq!(phases.first(), Some(&Phase::Bootstrapping));
    assert!(phases.contains(&Phase::Syncing));
    assert_eq!(phases.last(), Some(&Phase::Following));
    assert!(net.drops().is_empty());
}

#[test]
fn buffers_out_of_order_ranges_within_the_bound() {
    let options = LightOptions {
        batch_size: 32,
        max_ahead_headers: 96,
        max_requests_per_peer: 4,
        max_requests_total: 12,
        ..LightOptions::default()
    };
    let mut net = Net::new(options);
    for id in 1..=3 {
        net.connect(id, ScriptedPeer::honest(TIP));
    }
    net.run();
    assert_eq!(net.verified(), TIP);
    assert!(net.max_buffered > 0);
    assert!(net.max_buffered <= 96, "buffered {}", net.max_buffered);
    for (_, g) in net.header_requests().skip(1) {
        assert!(g.count <= 32);
    }
}

#[test]
fn header_requests_stay_within_the_full_nodes_rate_limit() {
    // Small ranges from one peer: far more requests than the limit's burst.
    let options = LightOptions {
        batch_size: 8,
        max_requests_per_peer: 4,
        ..LightOptions::default()
    };
    let mut net = Net::new(options);
    net.connect(1, ScriptedPeer::honest(TIP));
    net.run();
    assert_eq!(net.verified(), TIP);
    // The node's own rule (`net::PeerBook`, default limits) admits every one of them.
    let mut book = PeerBook::new(PeerBookConfig::default());
    let requests: Vec<u64> = net
        .sent
        .iter()
        .filter(|(_, _, r)| matches!(r, Request::GetHeaders(_)))
        .map(|(t, _, _)| *t)
        .collect();
    let limit = RateLimit::default_for(Protocol::Headers);
    assert!(
        requests.len() > 4 * limit.burst as usize,
        "{}",
        requests.len()
    );
    for (i, &t) in requests.iter().enumerate() {
        assert!(
            book.allow_request(&1u8, Protocol::Headers, Duration::from_millis(t)),
            "request {i} at {t} ms would be refused"
        );
    }
    // Paced, not stalled: the requests took about the limit's time, no more.
    let span = Duration::from_millis(requests.last().unwrap() - requests[0]);
    let at_the_limit = limit.refill_every * (requests.len() as u32 - limit.burst);
    assert!(span >= at_the_limit, "{span:?}");
    assert!(
        span <= at_the_limit * 13 / 10,
        "{span:?} for {}",
        requests.len()
    );
    assert!(net.drops().is_empty());
}

#[test]
fn stored_headers_are_compact() {
    let mut net = Net::new(LightOptions::default());
    net.connect(1, ScriptedPeer::honest(TIP));
    net.run();
    let bytes = net.store.bytes();
    let per_header = bytes.headers as f64 / bytes.header_count as f64;
    // Checkpoint set and the hand-over set (all keys change: stored in full, a delta would be
    // larger), and the hand-over commit.
    let sets = [
        testkit::validator_set(&keys_before_hand_over()),
        testkit::validator_set(&keys_after_hand_over()),
    ];
    assert_eq!(
        bytes.validator_sets,
        sets.iter()
            .map(|s| StoredValidators::Full(s.clone()).encode().len())
            .sum::<usize>()
    );
    // The machine hands over the verified quorum prefix of the hand-over commit only: 3 of
    // the 4 equal-power signers (30 > 2/3 of 40); the peer served all 4.
    let served = &main_chain().headers[(HAND_OVER - 1) as usize].commit;
    assert_eq!(served.signatures.len(), 4);
    assert_eq!(net.handed_commits.len(), 1);
    assert_eq!(net.handed_commits[0], quorum_commit(&sets[0], served));
    assert_eq!(net.handed_commits[0].signatures[..], served.signatures[..3]);
    assert_eq!(bytes.commits, net.handed_commits[0].encode().len());
    println!(
        "stored: {} headers, {:.1} bytes per header alone, {:.1} with sets and hand-over commits",
        bytes.header_count,
        per_header,
        bytes.per_header()
    );
    assert!(per_header <= 300.0, "{per_header} bytes per stored header");
    assert!(bytes.per_header() <= 300.0);

    let stored = net.store.header(HAND_OVER - 1).unwrap().unwrap();
    assert_eq!(
        stored.header,
        main_chain().headers[(HAND_OVER - 1) as usize].header
    );
    assert_eq!(
        net.store.next_validators(HAND_OVER - 1).unwrap(),
        Some(sets[1].clone())
    );
    assert_eq!(
        net.store.next_validators(HAND_OVER - 2).unwrap(),
        Some(sets[0].clone())
    );
}

#[test]
fn follows_gossiped_heads_and_new_statuses_after_catch_up() {
    let mut net = Net::new(LightOptions::default());
    net.connect(1, ScriptedPeer::honest(1000));
    net.run();
    assert_eq!(net.verified(), 1000);
    assert_eq!(net.client.phase(), Phase::Following);

    let sent = net.sent.len();
    let header = Box::new(main_chain().headers[1001].clone());
    net.client.feed(Input::NewHead { peer: 1, header });
    net.run();
    assert_eq!(net.verified(), 1001);
    assert_eq!(
        net.sent.len(),
        sent,
        "a gossiped next header needs no request"
    );
    assert!(net.actions.contains(&Action::NewHead {
        height: 1001,
        hash: main_chain().headers[1001].header.hash()
    }));
    net.assert_store_holds_main_chain_to(1001);

    net.peers.get_mut(&1).unwrap().head = TIP;
    let status = net.peers[&1].status();
    net.client.feed(Input::PeerStatus { peer: 1, status });
    net.run();
    assert_eq!(net.verified(), TIP);
    net.assert_store_holds_main_chain_to(TIP);
}

#[test]
fn a_following_client_stays_following_for_heads_within_one_batch() {
    let mut net = Net::new(LightOptions::default());
    net.connect(1, ScriptedPeer::honest(900));
    net.run();
    assert_eq!(net.client.phase(), Phase::Following);

    // A pushed status a few heads on (a fast chain, one push a second): one request away.
    let before = net.actions.len();
    net.peers.get_mut(&1).unwrap().head = 904;
    let status = net.peers[&1].status();
    net.client.feed(Input::PeerStatus { peer: 1, status });
    assert_eq!(net.client.phase(), Phase::Following);
    net.run();
    assert_eq!(net.verified(), 904);
    assert!(
        !net.actions[before..]
            .iter()
            .any(|a| matches!(a, Action::Progress(p) if p.phase == Phase::Syncing)),
        "no progress event said syncing"
    );

    // More than a batch behind (back after a while): syncing until caught up again.
    net.peers.get_mut(&1).unwrap().head = TIP;
    let status = net.peers[&1].status();
    net.client.feed(Input::PeerStatus { peer: 1, status });
    assert_eq!(net.client.phase(), Phase::Syncing);
    net.run();
    assert_eq!(net.verified(), TIP);
    assert_eq!(net.client.phase(), Phase::Following);
}

// ---- faults ------------------------------------------------------------------------------------

#[test]
fn drops_a_peer_serving_a_bad_signature_and_refetches_its_range() {
    let mut net = Net::new(LightOptions::default());
    net.connect(1, ScriptedPeer::honest(TIP));
    net.connect(
        2,
        ScriptedPeer::new(main_chain(), TIP, Behaviour::BadSignatureFrom(200)),
    );
    net.run();

    assert_eq!(net.verified(), TIP);
    net.assert_store_holds_main_chain_to(TIP);
    let drops = net.drops();
    assert_eq!(drops.len(), 1, "{drops:?}");
    let (peer, reason) = &drops[0];
    assert_eq!(*peer, 2);
    assert!(
        matches!(
            reason,
            DropReason::InvalidHeader {
                error: VerifyError::InvalidSignature { .. },
                height
            } if *height >= 200
        ),
        "{reason:?}"
    );
    // Nothing more is asked of it, and it is refused when it reconnects.
    let dropped_at = net.sent.iter().rposition(|(_, p, _)| *p == 2).unwrap();
    assert!(net.sent[dropped_at..]
        .iter()
        .skip(1)
        .all(|(_, p, _)| *p == 1));
    let status = ScriptedPeer::honest(TIP).status();
    net.client.feed(Input::PeerConnected { peer: 2, status });
    assert!(matches!(
        net.client.next_action(),
        Some(Action::DropPeer {
            peer: 2,
            reason: DropReason::Avoided { .. }
        })
    ));
    assert_eq!(net.client.stats().peers_dropped, 1);
}

#[test]
fn drops_a_peer_serving_a_validly_signed_header_with_a_wrong_parent() {
    // Ranges start at 1, 129, 257, ... (checkpoint 0, batches of 128). When the bad header
    // starts a range (257), the client first fetches the peer's header below it (was it a
    // fork?), finds it equal to its own, and blames the peer; inside a range (300), at once.
    for (at, probed) in [(257, true), (300, false)] {
        let mut net = Net::new(LightOptions::default());
        net.connect(
            1,
            ScriptedPeer::new(main_chain(), TIP, Behaviour::WrongParentFrom(at)),
        );
        net.run();
        assert_eq!(net.verified(), at - 1);
        let drops = net.drops();
        assert!(
            matches!(
                &drops[..],
                [(1, DropReason::InvalidHeader { height, error: VerifyError::ParentHashMismatch { .. } })]
                    if *height == at
            ),
            "{drops:?}"
        );
        let probe = GetHeaders {
            start: at - 1,
            count: 1,
        };
        assert_eq!(net.header_requests().any(|(_, g)| g == probe), probed);
        assert_eq!(net.client.phase(), Phase::WaitingForPeers);

        net.connect(2, ScriptedPeer::honest(TIP));
        net.run();
        assert_eq!(net.verified(), TIP, "wrong parent at {at}");
        net.assert_store_holds_main_chain_to(TIP);
        assert!(fork_evidence(&net).is_none());
    }
}

#[test]
fn rejects_a_checkpoint_header_from_another_chain() {
    let mut net = Net::new(LightOptions::default());
    net.connect(1, ScriptedPeer::new(other_chain(), 20, Behaviour::Honest));
    net.connect(2, ScriptedPeer::honest(TIP));
    net.run();
    assert_eq!(net.verified(), TIP);
    assert!(matches!(
        &net.drops()[..],
        [(
            1,
            DropReason::CheckpointMismatch(CheckpointError::ChainMismatch { .. })
        )]
    ));
}

#[test]
fn times_out_a_silent_peer_and_fetches_from_another() {
    let mut net = Net::new(LightOptions::default());
    net.connect(1, ScriptedPeer::new(main_chain(), TIP, Behaviour::Silent));
    net.connect(2, ScriptedPeer::honest(TIP));
    let start = net.now;
    net.run();
    assert_eq!(net.verified(), TIP);
    assert!(net.client.stats().request_failures >= 1);
    assert!(net.now >= start + LightOptions::default().request_timeout_ms);
    net.assert_store_holds_main_chain_to(TIP);
}

#[test]
fn backs_off_exponentially_then_drops_an_unresponsive_peer_and_waits() {
    let options = LightOptions::default();
    let mut net = Net::new(options.clone());
    net.connect(1, ScriptedPeer::new(main_chain(), TIP, Behaviour::Silent));
    net.run();
    assert_eq!(
        net.drops(),
        vec![(
            1,
            DropReason::Unresponsive {
                failures: options.max_consecutive_failures
            }
        )]
    );
    // The checkpoint's header was asked for again and again, each time after a longer wait.
    let times: Vec<u64> = net.sent.iter().map(|(t, _, _)| *t).collect();
    assert_eq!(times.len(), options.max_consecutive_failures as usize);
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    for (i, gap) in gaps.iter().enumerate() {
        let expected = options.request_timeout_ms + options.backoff_ms(i as u32 + 1);
        assert_eq!(*gap, expected, "gaps {gaps:?}");
    }
    assert_eq!(net.client.phase(), Phase::WaitingForPeers);
    assert_eq!(net.client.next_deadline_ms(), None);
}

#[test]
fn waits_when_every_peer_is_gone_and_resumes_when_one_connects() {
    let mut net = Net::new(LightOptions {
        batch_size: 64,
        max_ahead_headers: 256,
        ..LightOptions::default()
    });
    net.connect(1, ScriptedPeer::honest(TIP));
    net.connect(2, ScriptedPeer::honest(TIP));
    assert!(net.run_until(|n| n.client.verified_height() >= Some(300)));
    net.disconnect(1);
    net.disconnect(2);
    net.run();
    let stalled = net.verified();
    assert!((300..TIP).contains(&stalled), "{stalled}");
    assert_eq!(net.client.phase(), Phase::WaitingForPeers);
    assert_eq!(net.client.requests_in_flight(), 0);
    assert_eq!(
        net.client.next_deadline_ms(),
        None,
        "nothing to wait for but a peer"
    );

    let sent = net.sent.len();
    net.connect(3, ScriptedPeer::honest(TIP));
    net.run();
    assert_eq!(net.verified(), TIP);
    assert!(net.sent[sent..].iter().all(|(_, p, _)| *p == 3));
    net.assert_store_holds_main_chain_to(TIP);
}

// ---- forks -------------------------------------------------------------------------------------

fn fork_evidence(net: &Net) -> Option<&headway::light::ForkEvidence<Peer>> {
    net.actions.iter().find_map(|a| match a {
        Action::ForkDetected { evidence } => Some(&**evidence),
        _ => None,
    })
}

fn assert_fork_between_main_and_fork_chain(net: &Net) -> u64 {
    let evidence = fork_evidence(net).expect("a fork alarm");
    let height = evidence.height;
    assert!(
        height >= FORK_AT,
        "the chains agree below {FORK_AT}, got {height}"
    );
    assert_eq!(evidence.ours.header.height, height);
    assert_eq!(evidence.theirs.header.height, height);
    let both: BTreeSet<Hash> = [evidence.ours.header.hash(), evidence.theirs.header.hash()].into();
    let expected: BTreeSet<Hash> = [
        main_chain().headers[height as usize].header.hash(),
        fork_chain().headers[height as usize].header.hash(),
    ]
    .into();
    assert_eq!(both, expected);
    // Each side carries the commit its chain was finalized with.
    for side in [&evidence.ours, &evidence.theirs] {
        assert!(
            side == &main_chain().headers[height as usize]
                || side == &fork_chain().headers[height as usize]
        );
    }
    assert_eq!(net.client.phase(), Phase::Stopped);
    assert_eq!(net.client.stopped(), Some(StopReason::Fork { height }));
    assert_eq!(net.client.requests_in_flight(), 0);
    assert_eq!(net.client.next_deadline_ms(), None);
    height
}

#[test]
fn raises_a_fork_alarm_when_two_peers_serve_validly_signed_branches() {
    let mut net = Net::new(LightOptions::default());
    net.connect(1, ScriptedPeer::honest(TIP));
    net.connect(2, ScriptedPeer::new(fork_chain(), TIP, Behaviour::Honest));
    net.run();
    assert_fork_between_main_and_fork_chain(&net);
    assert!(
        net.drops().is_empty(),
        "no side is blamed: {:?}",
        net.drops()
    );

    // Stopped for good: no request for a new peer, a query fails.
    let sent = net.sent.len();
    net.connect(3, ScriptedPeer::honest(TIP));
    net.client.feed(Input::VerifyEvent {
        query_id: QueryId(9),
        event_id: Hash([1; 32]),
    });
    net.run();
    assert_eq!(net.sent.len(), sent);
    assert!(matches!(
        net.event_result(QueryId(9)),
        Some(Err(LightError::Stopped(StopReason::Fork { .. })))
    ));
}

#[test]
fn raises_a_fork_alarm_when_a_new_peer_claims_another_head_at_a_held_height() {
    let mut net = Net::new(LightOptions::default());
    net.connect(1, ScriptedPeer::honest(TIP));
    net.run();
    assert_eq!(net.verified(), TIP);
    net.connect(2, ScriptedPeer::new(fork_chain(), TIP, Behaviour::Honest));
    net.run();
    assert_eq!(assert_fork_between_main_and_fork_chain(&net), TIP);
    let evidence = fork_evidence(&net).unwrap();
    assert_eq!(evidence.peer, 2);
    assert_eq!(evidence.ours, main_chain().headers[TIP as usize]);
    assert_eq!(evidence.theirs, fork_chain().headers[TIP as usize]);
}

#[test]
fn raises_a_fork_alarm_when_a_validly_signed_range_does_not_link() {
    let mut net = Net::new(LightOptions::default());
    net.connect(1, ScriptedPeer::honest(1050));
    net.run();
    assert_eq!(net.verified(), 1050);
    // Only peer 2 has what follows; its first header links to its own 1050, not ours. The
    // client fetches peer 2's 1050, finds it validly signed: a fork.
    net.connect(2, ScriptedPeer::new(fork_chain(), TIP, Behaviour::Honest));
    net.run();
    assert_eq!(assert_fork_between_main_and_fork_chain(&net), 1050);
    let evidence = fork_evidence(&net).unwrap();
    assert_eq!(evidence.peer, 2);
    assert_eq!(evidence.theirs, fork_chain().headers[1050]);
    assert!(net.drops().is_empty());
    net.assert_store_holds_main_chain_to(1050);
}

#[test]
fn raises_a_fork_alarm_on_a_gossiped_header_at_a_held_height() {
    let mut net = Net::new(LightOptions::default());
    net.connect(1, ScriptedPeer::honest(TIP));
    net.run();
    // Peer 2 is on the other branch but claims a head both branches share.
    net.connect(
        2,
        ScriptedPeer::new(fork_chain(), FORK_AT - 1, Behaviour::Honest),
    );
    net.run();
    assert!(fork_evidence(&net).is_none());
    let header = Box::new(fork_chain().headers[1050].clone());
    net.client.feed(Input::NewHead { peer: 2, header });
    net.run();
    assert_eq!(assert_fork_between_main_and_fork_chain(&net), 1050);
}

#[test]
fn drops_a_gossiping_peer_whose_conflicting_header_is_not_validly_signed() {
    let mut net = Net::new(LightOptions::default());
    net.connect(1, ScriptedPeer::honest(TIP));
    net.connect(2, ScriptedPeer::honest(TIP));
    net.run();
    let mut header = fork_chain().headers[1050].clone();
    header.commit.signatures.truncate(2); // 2 of 5: not more than two thirds
    net.client.feed(Input::NewHead {
        peer: 2,
        header: Box::new(header),
    });
    net.run();
    assert!(fork_evidence(&net).is_none());
    assert!(matches!(
        &net.drops()[..],
        [(
            2,
            DropReason::InvalidHeader {
                height: 1050,
                error: VerifyError::InsufficientVotingPower { .. }
            }
        )]
    ));
    assert_eq!(net.client.phase(), Phase::Following);
}

// ---- event proofs ------------------------------------------------------------------------------

fn event_at(height: u64, index: u32) -> EventId {
    let chain = main_chain();
    *chain
        .events
        .iter()
        .find(|(_, &(h, i))| h == height && i == index)
        .unwrap()
        .0
}

fn synced_net(peers: Vec<(Peer, ScriptedPeer)>) -> Net {
    let mut net = Net::new(LightOptions::default());
    for (id, peer) in peers {
        net.connect(id, peer);
    }
    assert!(net.run_until(synced));
    net.run();
    net
}

#[test]
fn verifies_an_event_with_a_real_proof() {
    let mut net = synced_net(vec![(1, ScriptedPeer::honest(TIP))]);
    for (query, height) in [(1, 300), (2, 900), (3, 5)] {
        let event_id = event_at(height, 1);
        net.client.verify_event(QueryId(query), event_id);
        net.run();
        let verified = net.event_result(QueryId(query)).unwrap().unwrap();
        assert_eq!(verified.event_id, event_id);
        assert_eq!(verified.height, height);
        assert_eq!(verified.index, 1);
        assert_eq!(
            verified.block_hash,
            main_chain().headers[height as usize].header.hash()
        );
    }
    // Proved against the latest verified header.
    assert!(net.sent.iter().any(|(_, _, r)| matches!(
        r,
        Request::GetProof(g) if g.at_height == Some(TIP)
    )));
}

#[test]
fn rejects_a_tampered_proof_with_a_typed_error() {
    let mut net = synced_net(vec![(
        1,
        ScriptedPeer::new(main_chain(), TIP, Behaviour::ForgedProof),
    )]);
    net.client.feed(Input::VerifyEvent {
        query_id: QueryId(1),
        event_id: event_at(300, 0),
    });
    net.run();
    let result = net.event_result(QueryId(1)).unwrap();
    assert!(
        matches!(
            result,
            Err(LightError::InvalidProof(EventProofError::Mmr(_)))
        ),
        "{result:?}"
    );
    assert!(matches!(
        &net.drops()[..],
        [(1, DropReason::InvalidProof(EventProofError::Mmr(_)))]
    ));
}

#[test]
fn tries_another_peer_after_a_tampered_proof() {
    let mut net = synced_net(vec![(1, ScriptedPeer::honest(TIP))]);
    // The idlest peer is asked first: the newcomer, which forges.
    net.connect(
        2,
        ScriptedPeer::new(main_chain(), TIP, Behaviour::ForgedProof),
    );
    net.run();
    let event_id = event_at(900, 2);
    net.client.feed(Input::VerifyEvent {
        query_id: QueryId(7),
        event_id,
    });
    net.run();
    let verified = net.event_result(QueryId(7)).unwrap().unwrap();
    assert_eq!((verified.event_id, verified.height), (event_id, 900));
    let proof_peers: Vec<Peer> = net
        .sent
        .iter()
        .filter(|(_, _, r)| matches!(r, Request::GetProof(_)))
        .map(|(_, p, _)| *p)
        .collect();
    assert_eq!(proof_peers, vec![2, 1]);
    assert!(matches!(
        &net.drops()[..],
        [(2, DropReason::InvalidProof(_))]
    ));
}

#[test]
fn an_unknown_event_is_not_found() {
    let mut net = synced_net(vec![
        (1, ScriptedPeer::honest(TIP)),
        (2, ScriptedPeer::honest(TIP)),
    ]);
    let event_id = Hash([0xab; 32]);
    net.client.feed(Input::VerifyEvent {
        query_id: QueryId(3),
        event_id,
    });
    net.run();
    assert_eq!(
        net.event_result(QueryId(3)),
        Some(Err(LightError::NotFound { event_id }))
    );
    assert!(net.drops().is_empty(), "not knowing an event is no fault");
}

#[test]
fn a_query_for_an_event_past_the_verified_head_is_asked_again_after_catch_up() {
    let mut net = Net::new(LightOptions {
        batch_size: 64,
        max_ahead_headers: 128,
        ..LightOptions::default()
    });
    net.connect(1, ScriptedPeer::honest(TIP));
    assert!(net.run_until(|n| n.client.verified_height() >= Some(100)));
    let event_id = event_at(900, 0);
    net.client.feed(Input::VerifyEvent {
        query_id: QueryId(5),
        event_id,
    });
    net.run();
    let verified = net.event_result(QueryId(5)).unwrap().unwrap();
    assert_eq!((verified.event_id, verified.height), (event_id, 900));
    let heights: Vec<Option<u64>> = net
        .sent
        .iter()
        .filter_map(|(_, _, r)| match r {
            Request::GetProof(g) => Some(g.at_height),
            _ => None,
        })
        .collect();
    assert_eq!(heights.len(), 2, "{heights:?}");
    assert!(
        heights[0] < Some(900),
        "first asked during sync: {heights:?}"
    );
    assert_eq!(heights[1], Some(TIP));
}

#[test]
fn a_proof_query_waits_for_a_peer_then_times_out() {
    let options = LightOptions::default();
    let mut net = synced_net(vec![(1, ScriptedPeer::honest(TIP))]);
    net.disconnect(1);
    let event_id = event_at(300, 0);
    net.client.feed(Input::VerifyEvent {
        query_id: QueryId(4),
        event_id,
    });
    net.run();
    assert_eq!(
        net.event_result(QueryId(4)),
        Some(Err(LightError::ProofTimeout {
            event_id,
            timeout_ms: options.proof_timeout_ms
        }))
    );
}

// ---- resume and trust --------------------------------------------------------------------------

#[test]
fn resumes_from_the_stored_head_without_downloading_it_again() {
    let mut first = Net::new(LightOptions::default());
    first.connect(1, ScriptedPeer::honest(700));
    first.run();
    assert_eq!(first.verified(), 700);
    let store = first.store;
    assert_eq!(store.head().unwrap().unwrap().height(), 700);

    let mut store = store;
    let client =
        LightClient::from_store(&mut store, checkpoint(), LightOptions::default(), now()).unwrap();
    assert_eq!(client.verified_height(), Some(700));
    let mut net = Net::with_client(client, store, now());
    net.connect(1, ScriptedPeer::honest(TIP));
    net.connect(2, ScriptedPeer::honest(TIP));
    net.run();
    assert_eq!(net.verified(), TIP);
    net.assert_store_holds_main_chain_to(TIP);
    let requests: Vec<GetHeaders> = net.header_requests().map(|(_, g)| g).collect();
    assert!(!requests.is_empty());
    assert!(requests.iter().all(|g| g.start > 700), "{requests:?}");
    assert_eq!(
        requests.iter().map(|g| u64::from(g.count)).sum::<u64>(),
        TIP - 700
    );
}

#[test]
fn resume_checks_the_stored_head() {
    let chain = main_chain();
    let head = StoredHeader::new(chain.headers[700].header.clone());
    let set = testkit::validator_set(&keys_after_hand_over());
    let wrong_set = testkit::validator_set(&keys_before_hand_over());
    let resume = |head: StoredHeader, set: ValidatorSet| {
        LightClient::<Peer>::resume(checkpoint(), head, set, LightOptions::default(), now())
    };
    assert!(resume(head.clone(), set.clone()).is_ok());
    assert!(matches!(
        resume(head.clone(), wrong_set),
        Err(LightError::Resume(_))
    ));
    let mut tampered = head.clone();
    tampered.header.timestamp_ms += 1;
    assert!(matches!(
        resume(tampered, set.clone()),
        Err(LightError::Resume(_))
    ));
    let other = StoredHeader::new(other_chain().headers[10].header.clone());
    assert!(matches!(resume(other, set), Err(LightError::Resume(_))));

    // A store of another checkpoint is refused.
    let mut store = MemoryLightStore::new();
    let other_cp = headway::chain::Checkpoint::for_header(
        &other_chain().headers[0].header,
        testkit::validator_set(&keys_before_hand_over()),
    )
    .unwrap();
    store.set_checkpoint(&other_cp).unwrap();
    assert!(matches!(
        LightClient::<Peer>::from_store(&mut store, checkpoint(), LightOptions::default(), now()),
        Err(LightError::StoreCheckpointMismatch { .. })
    ));
}

#[test]
fn reports_a_stale_checkpoint_and_syncs_on() {
    let genesis_ms = main_chain().headers[0].header.timestamp_ms;
    let now = genesis_ms + 15 * DAY_MS;
    let mut net = Net::at(LightOptions::default(), now);
    net.connect(1, ScriptedPeer::honest(TIP));
    net.run();
    assert!(net.actions.contains(&Action::CheckpointStale {
        age_ms: 15 * DAY_MS,
        trust_period_ms: 14 * DAY_MS
    }));
    assert_eq!(net.verified(), TIP);
}

#[test]
fn refuses_a_stale_checkpoint_when_told_to() {
    let genesis_ms = main_chain().headers[0].header.timestamp_ms;
    let options = LightOptions {
        refuse_stale_checkpoint: true,
        ..LightOptions::default()
    };
    let mut net = Net::at(options, genesis_ms + 15 * DAY_MS);
    net.connect(1, ScriptedPeer::honest(TIP));
    net.run();
    assert!(net.actions.iter().any(|a| matches!(
        a,
        Action::Error {
            error: LightError::StaleCheckpoint { height: 0, .. }
        }
    )));
    assert_eq!(net.client.phase(), Phase::Stopped);
    assert_eq!(
        net.sent.len(),
        1,
        "only the checkpoint's header was fetched"
    );
    assert!(net.store.is_empty());
}

#[test]
fn a_fresh_checkpoint_is_not_stale() {
    let mut net = Net::new(LightOptions::default());
    net.connect(1, ScriptedPeer::honest(10));
    net.run();
    assert!(!net
        .actions
        .iter()
        .any(|a| matches!(a, Action::CheckpointStale { .. })));
}

// ---- pieces ------------------------------------------------------------------------------------

#[test]
fn ignores_responses_it_did_not_ask_for() {
    let mut net = Net::new(LightOptions::default());
    net.connect(1, ScriptedPeer::honest(TIP));
    net.client.feed(Input::Response {
        peer: 1,
        request_id: RequestId(999),
        response: Response::Headers(HeadersResponse::Headers(Vec::new())),
    });
    net.client.feed(Input::RequestFailed {
        peer: 1,
        request_id: RequestId(998),
        reason: RequestFailure::Disconnected,
    });
    net.run();
    assert_eq!(net.verified(), TIP);
    assert!(net.drops().is_empty());
}

#[test]
fn options_are_validated() {
    let bad = [
        LightOptions {
            batch_size: 0,
            ..LightOptions::default()
        },
        LightOptions {
            batch_size: 513,
            ..LightOptions::default()
        },
        LightOptions {
            max_ahead_headers: 10,
            ..LightOptions::default()
        },
        LightOptions {
            fork_window: 1,
            ..LightOptions::default()
        },
        LightOptions {
            backoff_max_ms: 1,
            ..LightOptions::default()
        },
    ];
    for options in bad {
        assert!(matches!(
            LightClient::<Peer>::new(checkpoint(), options, now()),
            Err(LightError::InvalidOptions(_))
        ));
    }
    let o = LightOptions::default();
    assert_eq!(o.backoff_ms(1), 500);
    assert_eq!(o.backoff_ms(3), 2_000);
    assert_eq!(o.backoff_ms(40), 30_000);
}

#[test]
fn memory_store_keeps_headers_contiguous_and_prunes() {
    let chain = main_chain();
    let verified = |h: u64| VerifiedHeader {
        header: StoredHeader::new(chain.headers[h as usize].header.clone()),
        next_validators: (h == 0 || h == HAND_OVER - 1).then(|| {
            testkit::validator_set(&if h == 0 {
                keys_before_hand_over()
            } else {
                keys_after_hand_over()
            })
        }),
        commit: None,
    };
    let mut store = MemoryLightStore::new();
    assert_eq!(
        store.append(&[verified(1)]),
        Err(LightStoreError::MissingValidators)
    );
    let batch: Vec<VerifiedHeader> = (0..=700).map(verified).collect();
    store.append(&batch).unwrap();
    assert_eq!(
        store.append(&[verified(702)]),
        Err(LightStoreError::NotContiguous {
            expected: 701,
            got: 702
        })
    );
    let mut wrong = verified(701);
    wrong.header = StoredHeader::new(fork_chain().headers[1001].header.clone());
    wrong.header.header.height = 701;
    wrong.header = StoredHeader::new(wrong.header.header);
    assert_eq!(
        store.append(&[wrong]),
        Err(LightStoreError::ParentMismatch { height: 701 })
    );
    assert_eq!(store.writes(), 1);

    store.prune(50).unwrap();
    assert_eq!(store.len(), 50);
    assert_eq!(store.header(650).unwrap(), None);
    assert_eq!(store.header(651).unwrap().unwrap().height(), 651);
    // The set in force after the hand-over survives; the checkpoint's set is no longer needed.
    assert_eq!(
        store.next_validators(700).unwrap(),
        Some(testkit::validator_set(&keys_after_hand_over()))
    );
    assert_eq!(store.next_validators(0).unwrap(), None);

    // Encoded and decoded, a stored header recomputes its hash.
    let stored = StoredHeader::new(chain.headers[5].header.clone());
    let bytes = stored.encode();
    use headway::chain::Decode;
    assert_eq!(StoredHeader::decode(&bytes).unwrap(), stored);
    let v = verified(HAND_OVER - 1);
    assert_eq!(VerifiedHeader::decode(&v.encode()).unwrap(), v);
}
