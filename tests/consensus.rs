//! Consensus: machines driven directly (one rule at a time) and many machines on a
//! deterministic simulated network (delays, reordering, drops, silent, equivocating and
//! crashing validators, a simulated clock that fires timeouts).

#![cfg(not(target_arch = "wasm32"))]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use headway::chain::{
    Block, BlockHash, Checkpoint, Commit, EventId, FinalizedBlock, Genesis, Hash, SignedEvent,
    ValidatorSet, VoteKind,
};
use headway::crypto::ed25519::SigningKey;
use headway::node::consensus::{
    BlockLimits, ChainTip, Consensus, ConsensusConfig, ConsensusError, Evidence, Input, Message,
    Output, SignState, SignedProposal, SignedVote, Step, Timeout, TimeoutConfig, TimeoutKind,
};
use headway::node::mempool::{Mempool, MempoolConfig, MempoolError};
use headway::testkit;
use headway::verify::{TrustedState, Verifier};

const GENESIS_MS: u64 = 1_700_000_000_000;

/// Random networks per randomized test: 64, or `CONSENSUS_SEEDS`.
fn seeds() -> u64 {
    std::env::var("CONSENSUS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64)
}
const START_MS: u64 = GENESIS_MS + 1_000;

fn config() -> ConsensusConfig {
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
        max_clock_drift_ms: 15_000,
        limits: BlockLimits {
            max_events: 10,
            max_bytes: 1 << 20,
        },
        rebroadcast_ms: Some(1_000),
        max_future_rounds: 10,
    }
}

fn genesis(keys: &[SigningKey], schedule: BTreeMap<u64, ValidatorSet>) -> Genesis {
    Genesis::new(
        "consensus-test".parse().unwrap(),
        GENESIS_MS,
        testkit::validator_set(keys),
        schedule,
    )
    .unwrap()
}

/// `keys` reordered so that position `i` holds the validator with index `i` in `set`.
fn by_index(keys: &[SigningKey], set: &ValidatorSet) -> Vec<SigningKey> {
    let mut keys = keys.to_vec();
    keys.sort_by_key(|k| set.index_of(&k.public_key()));
    keys
}

/// Verifies `blocks` (heights 1, 2, ...) one after the other with the light verifier, from
/// the genesis checkpoint.
fn verify_chain(genesis: &Genesis, blocks: &[FinalizedBlock], now_ms: u64) {
    let g = genesis.block();
    let checkpoint =
        Checkpoint::for_header(&g.block.header, genesis.validators_at(1).clone()).unwrap();
    let mut state = TrustedState::from_checkpoint(&checkpoint, g.block.header.clone()).unwrap();
    for block in blocks {
        state = Verifier::new()
            .verify(&state, &block.trusted_header(), now_ms)
            .unwrap_or_else(|e| panic!("block {} does not verify: {e}", block.height()));
    }
}

// ------------------------------------------------------------------------------------------
// The simulated network.
// ------------------------------------------------------------------------------------------

/// xorshift64*: deterministic and good enough to shuffle a network.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Copy)]
struct Net {
    min_delay_ms: u64,
    max_delay_ms: u64,
    drop_permille: u64,
    /// How long a node takes to store a finalized block.
    commit_delay_ms: u64,
    /// Every so often, a node that has not decided its height is handed the block of that
    /// height if a peer finalized it (what a sync protocol does). `None`: never.
    sync_ms: Option<u64>,
}

impl Net {
    fn reliable() -> Self {
        Net {
            min_delay_ms: 1,
            max_delay_ms: 30,
            drop_permille: 0,
            commit_delay_ms: 2,
            sync_ms: None,
        }
    }
}

/// Validators that crash and restart. A crash loses the machine, its timers and every output
/// it had not carried out yet; the restarted machine is built from what the node stored: its
/// finalized blocks (the tip) and the last record of what it signed.
#[derive(Clone, Copy)]
struct Crashes {
    /// Chance, per mille, that a node crashes right after storing a record, before sending the
    /// message it records (the worst moment).
    after_persist_permille: u64,
    /// One random online validator crashes every so often (ms, uniform in the range).
    every_ms: (u64, u64),
    /// How long a crashed node stays down (ms, uniform in the range).
    down_ms: (u64, u64),
    /// Restart with the stored record; false: without (a node that does not keep one).
    keep_record: bool,
}

enum Event {
    Deliver {
        to: usize,
        msg: Message,
    },
    Feed {
        node: usize,
        input: Input,
    },
    Sync,
    /// A random online validator crashes.
    Crash,
    Restart {
        node: usize,
    },
}

struct Node {
    machine: Consensus,
    mempool: Mempool,
    key: Option<SigningKey>,
    finalized: Vec<FinalizedBlock>,
    rejected: Vec<(Option<u32>, ConsensusError)>,
    evidence: Vec<Evidence>,
    /// Every vote and proposal this node's machine broadcast.
    votes_sent: Vec<SignedVote>,
    proposals_sent: Vec<SignedProposal>,
    online: bool,
    byzantine: bool,
    /// The last record its machine asked to store (`Output::Persist`): its durable state.
    persisted: Option<SignState>,
}

struct Sim {
    genesis: Genesis,
    nodes: Vec<Node>,
    queue: BTreeMap<(u64, u64), Event>,
    now: u64,
    seq: u64,
    rng: Rng,
    net: Net,
    /// The byzantine proposer's second block per (height, round).
    byz_alt: BTreeMap<(u64, u32), BlockHash>,
    config: ConsensusConfig,
    crashes: Option<Crashes>,
    /// Restarts so far, and those that resumed a height the node had signed at.
    restarts: u64,
    mid_height_restarts: u64,
}

impl Sim {
    fn new(
        genesis: Genesis,
        keys: Vec<Option<SigningKey>>,
        config: ConsensusConfig,
        net: Net,
        seed: u64,
    ) -> Sim {
        let mut sim = Sim {
            genesis,
            nodes: Vec::new(),
            queue: BTreeMap::new(),
            now: START_MS,
            seq: 0,
            rng: Rng::new(seed),
            net,
            byz_alt: BTreeMap::new(),
            config: config.clone(),
            crashes: None,
            restarts: 0,
            mid_height_restarts: 0,
        };
        let mut first_outputs = Vec::new();
        for key in keys {
            let (machine, out) = Consensus::new(
                config.clone(),
                &sim.genesis,
                key.clone(),
                ChainTip::genesis(&sim.genesis),
                None,
                sim.now,
            )
            .unwrap();
            first_outputs.push(out);
            sim.nodes.push(Node {
                machine,
                mempool: Mempool::new(MempoolConfig::default()),
                key,
                finalized: Vec::new(),
                rejected: Vec::new(),
                evidence: Vec::new(),
                votes_sent: Vec::new(),
                proposals_sent: Vec::new(),
                online: true,
                byzantine: false,
                persisted: None,
            });
        }
        for (i, out) in first_outputs.into_iter().enumerate() {
            sim.apply(i, out);
        }
        if let Some(ms) = net.sync_ms {
            sim.push(sim.now + ms, Event::Sync);
        }
        sim
    }

    fn push(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.insert((at, self.seq), event);
    }

    fn feed(&mut self, node: usize, input: Input) {
        let out = self.nodes[node].machine.handle(input, self.now);
        self.apply(node, out);
    }

    fn apply(&mut self, i: usize, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Persist(state) => {
                    self.nodes[i].persisted = Some(*state);
                    if let Some(c) = self.crashes {
                        if self.rng.below(1000) < c.after_persist_permille {
                            self.crash(i);
                            return;
                        }
                    }
                }
                Output::Broadcast(msg) => {
                    // What a node signs is stored before it is sent (a proposer's
                    // proof-of-lock relays others' prevotes).
                    let own = match &msg {
                        Message::Vote(v) => self.signer_of(v) == Some(i),
                        Message::Proposal(_) => true,
                    };
                    if own {
                        let stored = self.nodes[i].persisted.as_ref().map(SignState::point);
                        assert!(
                            stored >= Some(msg.sign_point()),
                            "node {i} sent {:?} with only {stored:?} stored",
                            msg.sign_point()
                        );
                    }
                    match &msg {
                        // Only its own votes (a proposer also relays its proof-of-lock).
                        Message::Vote(v) if self.signer_of(v) == Some(i) => {
                            self.nodes[i].votes_sent.push(v.clone())
                        }
                        Message::Vote(_) => {}
                        Message::Proposal(p) => self.nodes[i].proposals_sent.push((**p).clone()),
                    }
                    if self.nodes[i].byzantine {
                        self.byzantine_send(i, msg);
                    } else {
                        for to in 0..self.nodes.len() {
                            if to != i {
                                self.send(i, to, msg.clone());
                            }
                        }
                    }
                }
                Output::ScheduleTimeout { timeout, at_ms } => {
                    assert!(at_ms >= self.now, "timeout scheduled in the past");
                    self.push(
                        at_ms,
                        Event::Feed {
                            node: i,
                            input: Input::Timeout(timeout),
                        },
                    );
                }
                Output::NeedEvents {
                    height,
                    round,
                    max_events,
                    max_bytes,
                } => {
                    let events = self.nodes[i].mempool.take(max_events, max_bytes);
                    self.push(
                        self.now,
                        Event::Feed {
                            node: i,
                            input: Input::Events {
                                height,
                                round,
                                events,
                            },
                        },
                    );
                }
                Output::Finalized(block) => {
                    let node = &mut self.nodes[i];
                    assert_eq!(
                        block.height(),
                        node.finalized.len() as u64 + 1,
                        "node {i} finalized out of order"
                    );
                    let ids: Vec<Hash> = block.block.events.iter().map(SignedEvent::id).collect();
                    node.mempool.remove_included(&ids);
                    let height = block.height();
                    node.finalized.push(*block);
                    self.push(
                        self.now + self.net.commit_delay_ms,
                        Event::Feed {
                            node: i,
                            input: Input::Committed { height },
                        },
                    );
                }
                Output::Rejected { from, reason } => self.nodes[i].rejected.push((from, reason)),
                Output::Evidence(e) => self.nodes[i].evidence.push(e),
            }
        }
    }

    /// The node whose key signs as `v.validator_index` at `v.height`.
    fn signer_of(&self, v: &SignedVote) -> Option<usize> {
        let key = &self
            .genesis
            .validators_at(v.height)
            .get(v.validator_index as usize)?
            .key;
        self.nodes
            .iter()
            .position(|n| n.key.as_ref().is_some_and(|k| k.public_key() == *key))
    }

    fn send(&mut self, from: usize, to: usize, msg: Message) {
        if !self.nodes[from].online || !self.nodes[to].online {
            return;
        }
        if self.rng.below(1000) < self.net.drop_permille {
            return;
        }
        let spread = self.net.max_delay_ms - self.net.min_delay_ms + 1;
        let at = self.now + self.net.min_delay_ms + self.rng.below(spread);
        self.push(at, Event::Deliver { to, msg });
    }

    /// A byzantine validator: its machine decides honestly, but every vote it signs goes out
    /// together with a conflicting one (for its other block or another hash), and as
    /// proposer it sends one of two different blocks to each peer.
    fn byzantine_send(&mut self, i: usize, msg: Message) {
        let key = self.nodes[i].key.clone().unwrap();
        let peers: Vec<usize> = (0..self.nodes.len()).filter(|&j| j != i).collect();
        match msg {
            Message::Proposal(p) => {
                let mut block = p.block.clone();
                block.header.timestamp_ms += 1;
                let alt = SignedProposal::sign(block, p.round, p.pol_round, &key);
                self.byz_alt.insert((p.height(), p.round), alt.block_hash());
                for to in peers {
                    let m = if self.rng.below(2) == 0 { &*p } else { &alt };
                    self.send(i, to, Message::Proposal(Box::new(m.clone())));
                }
            }
            Message::Vote(v) => {
                let other = self.byz_alt.get(&(v.height, v.round)).copied();
                let alt_value = match v.block_hash {
                    None => Some(other.unwrap_or(Hash([0xab; 32]))),
                    Some(h) => other.filter(|a| *a != h),
                };
                let alt = SignedVote::sign(
                    v.kind,
                    &self.genesis.chain_id,
                    v.height,
                    v.round,
                    alt_value,
                    v.validator_index,
                    &key,
                );
                for to in peers {
                    self.send(i, to, Message::Vote(v.clone()));
                    self.send(i, to, Message::Vote(alt.clone()));
                }
            }
        }
    }

    /// Starts random crashes of validators.
    fn enable_crashes(&mut self, crashes: Crashes) {
        self.crashes = Some(crashes);
        let at = self.now + self.uniform(crashes.every_ms);
        self.push(at, Event::Crash);
    }

    fn uniform(&mut self, (min, max): (u64, u64)) -> u64 {
        min + self.rng.below(max - min + 1)
    }

    /// Node `i` crashes: its pending timers and inputs are lost; it restarts later.
    fn crash(&mut self, i: usize) {
        self.nodes[i].online = false;
        self.queue
            .retain(|_, e| !matches!(e, Event::Feed { node, .. } if *node == i));
        let down = self.uniform(self.crashes.unwrap().down_ms);
        self.push(self.now + down, Event::Restart { node: i });
    }

    /// Node `i` restarts from what it stored: its blocks and its last record.
    fn restart(&mut self, i: usize) {
        let mut tip = ChainTip::genesis(&self.genesis);
        for block in &self.nodes[i].finalized {
            tip = tip.advance(block).unwrap();
        }
        let record = self.nodes[i]
            .persisted
            .clone()
            .filter(|_| self.crashes.unwrap().keep_record);
        self.restarts += 1;
        if record
            .as_ref()
            .is_some_and(|r| r.height() == tip.next_height())
        {
            self.mid_height_restarts += 1;
        }
        let (machine, out) = Consensus::new(
            self.config.clone(),
            &self.genesis,
            self.nodes[i].key.clone(),
            tip,
            record,
            self.now,
        )
        .unwrap();
        self.nodes[i].machine = machine;
        self.nodes[i].online = true;
        self.apply(i, out);
    }

    /// Hands each undecided node its next block if a peer finalized it, verified first with
    /// the light verifier against the node's tip (the caller's duty).
    fn sync(&mut self) {
        for i in 0..self.nodes.len() {
            if !self.nodes[i].online || self.nodes[i].machine.decided().is_some() {
                continue;
            }
            let height = self.nodes[i].machine.height();
            let block = (0..self.nodes.len())
                .filter(|&j| j != i && self.nodes[j].online)
                .find_map(|j| self.nodes[j].finalized.get(height as usize - 1).cloned());
            let Some(block) = block else { continue };
            let tip = self.nodes[i].machine.tip();
            let trusted = TrustedState {
                header: tip.header.clone(),
                hash: tip.hash,
                next_validators: Arc::new(self.genesis.validators_at(height).clone()),
            };
            Verifier::new()
                .verify(&trusted, &block.trusted_header(), self.now)
                .expect("a finalized block verifies");
            self.feed(i, Input::FinalizedFromPeer(Box::new(block)));
        }
    }

    /// Runs until `done` holds (true) or the simulated clock passes `deadline` (false).
    fn run_until(&mut self, deadline: u64, done: impl Fn(&Sim) -> bool) -> bool {
        loop {
            if done(self) {
                return true;
            }
            let Some((&(at, _), _)) = self.queue.first_key_value() else {
                return false;
            };
            if at > deadline {
                self.now = deadline;
                return false;
            }
            let ((at, _), event) = self.queue.pop_first().unwrap();
            self.now = at;
            match event {
                Event::Deliver { to, msg } => {
                    if self.nodes[to].online {
                        self.feed(to, msg.into());
                    }
                }
                Event::Feed { node, input } => self.feed(node, input),
                Event::Sync => {
                    self.sync();
                    if let Some(ms) = self.net.sync_ms {
                        self.push(self.now + ms, Event::Sync);
                    }
                }
                Event::Crash => {
                    let up: Vec<usize> = (0..self.nodes.len())
                        .filter(|&i| self.nodes[i].online && self.nodes[i].key.is_some())
                        .collect();
                    if !up.is_empty() {
                        let i = up[self.rng.below(up.len() as u64) as usize];
                        self.crash(i);
                    }
                    let every = self.crashes.unwrap().every_ms;
                    let at = self.now + self.uniform(every);
                    self.push(at, Event::Crash);
                }
                Event::Restart { node } => self.restart(node),
            }
        }
    }

    fn run_for(&mut self, ms: u64) {
        let deadline = self.now + ms;
        self.run_until(deadline, |_| false);
    }

    /// Every node's state, for failure messages.
    fn describe(&self) -> String {
        let mut text = String::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let m = &n.machine;
            text += &format!(
                "\n  node {i}: byzantine {}, online {}, finalized {}, at ({}, {}, {:?}), \
                 locked {:?}, valid {:?}, deciding {:?}, {} rejected",
                n.byzantine,
                n.online,
                n.finalized.len(),
                m.height(),
                m.round(),
                m.step(),
                m.locked(),
                m.valid(),
                m.decided().map(FinalizedBlock::height),
                n.rejected.len(),
            );
        }
        text
    }

    fn min_height(&self, nodes: &[usize]) -> usize {
        nodes
            .iter()
            .map(|&i| self.nodes[i].finalized.len())
            .min()
            .unwrap_or(0)
    }

    /// The heights at which two of `nodes` finalized different blocks.
    fn disagreements(&self, nodes: &[usize]) -> Vec<u64> {
        let top = nodes
            .iter()
            .map(|&i| self.nodes[i].finalized.len())
            .max()
            .unwrap_or(0);
        (0..top)
            .filter(|&h| {
                let hashes: BTreeSet<BlockHash> = nodes
                    .iter()
                    .filter_map(|&i| self.nodes[i].finalized.get(h))
                    .map(|b| b.block.header.hash())
                    .collect();
                hashes.len() > 1
            })
            .map(|h| h as u64 + 1)
            .collect()
    }

    /// No two of `nodes` finalized different blocks at any height.
    fn assert_agreement(&self, nodes: &[usize]) {
        let split = self.disagreements(nodes);
        assert!(
            split.is_empty(),
            "different blocks finalized at heights {split:?}"
        );
    }

    /// None of `nodes` signed two different votes for one (height, round, kind).
    fn assert_no_double_votes(&self, nodes: &[usize]) {
        let double = self.double_signatures(nodes);
        assert!(double.is_empty(), "{double:?}");
    }

    /// Where one of `nodes` signed two different votes for one (height, round, kind) or two
    /// different proposals for one (height, round).
    fn double_signatures(&self, nodes: &[usize]) -> Vec<String> {
        let mut found = Vec::new();
        for &i in nodes {
            let mut seen: BTreeMap<(u64, u32, bool), Option<BlockHash>> = BTreeMap::new();
            for v in &self.nodes[i].votes_sent {
                let slot = (v.height, v.round, v.kind == VoteKind::Precommit);
                let first = *seen.entry(slot).or_insert(v.block_hash);
                if first != v.block_hash {
                    found.push(format!("node {i} signed twice for {slot:?}"));
                }
            }
            let mut proposals: BTreeMap<(u64, u32), BlockHash> = BTreeMap::new();
            for p in &self.nodes[i].proposals_sent {
                let slot = (p.height(), p.round);
                let first = *proposals.entry(slot).or_insert(p.block_hash());
                if first != p.block_hash() {
                    found.push(format!("node {i} proposed twice for {slot:?}"));
                }
            }
        }
        found
    }
}

fn four_validators() -> (Genesis, Vec<SigningKey>) {
    let keys = testkit::keys(0, 4);
    let g = genesis(&keys, BTreeMap::new());
    let keys = by_index(&keys, &g.validators);
    (g, keys)
}

// ------------------------------------------------------------------------------------------
// Simulated networks.
// ------------------------------------------------------------------------------------------

#[test]
fn four_validators_and_an_observer_finalize_twenty_identical_verifiable_blocks() {
    let (g, keys) = four_validators();
    let mut nodes: Vec<Option<SigningKey>> = keys.into_iter().map(Some).collect();
    nodes.push(None);
    let mut sim = Sim::new(g.clone(), nodes, config(), Net::reliable(), 1);
    let all = [0, 1, 2, 3, 4];
    assert!(sim.run_until(START_MS + 60_000, |s| s.min_height(&all) >= 20));
    sim.assert_agreement(&all);
    sim.assert_no_double_votes(&all);
    for node in &sim.nodes {
        verify_chain(&g, &node.finalized, sim.now);
        assert!(node.rejected.is_empty(), "{:?}", node.rejected);
        assert!(node.evidence.is_empty());
    }
    let observer = &sim.nodes[4];
    assert!(observer.votes_sent.is_empty() && observer.proposals_sent.is_empty());
    assert_eq!(observer.machine.validator_index(), None);
    // Every validator proposed in turn.
    for i in 0..4 {
        assert!(!sim.nodes[i].proposals_sent.is_empty());
    }
}

#[test]
fn one_silent_validator_is_skipped_by_timeout() {
    let (g, keys) = four_validators();
    let silent = 3;
    let silent_key = keys[silent].public_key();
    let mut sim = Sim::new(
        g.clone(),
        keys.into_iter().map(Some).collect(),
        config(),
        Net::reliable(),
        2,
    );
    sim.nodes[silent].online = false;
    let live = [0, 1, 2];
    assert!(sim.run_until(START_MS + 120_000, |s| s.min_height(&live) >= 12));
    sim.assert_agreement(&live);
    assert!(sim.nodes[silent].finalized.is_empty());
    let blocks = &sim.nodes[0].finalized;
    verify_chain(&g, blocks, sim.now);
    // The silent validator's turns (heights 3, 7, 11) were skipped by timeout.
    assert!(blocks.iter().any(|b| b.commit.round > 0));
    for b in blocks {
        assert_ne!(b.block.header.proposer, silent_key);
        assert_eq!(b.commit.round > 0, b.height() % 4 == 3);
    }
}

#[test]
fn two_silent_validators_halt_progress_until_one_returns() {
    let (g, keys) = four_validators();
    let mut sim = Sim::new(
        g.clone(),
        keys.into_iter().map(Some).collect(),
        config(),
        Net::reliable(),
        3,
    );
    sim.nodes[2].online = false;
    sim.nodes[3].online = false;
    sim.run_for(30_000);
    for node in &sim.nodes {
        assert!(node.finalized.is_empty());
    }
    sim.nodes[2].online = true;
    let live = [0, 1, 2];
    assert!(sim.run_until(sim.now + 60_000, |s| s.min_height(&live) >= 5));
    sim.assert_agreement(&live);
    sim.assert_no_double_votes(&live);
    verify_chain(&g, &sim.nodes[0].finalized, sim.now);
}

#[test]
fn a_lagging_validator_catches_up_from_finalized_blocks() {
    let (g, keys) = four_validators();
    let net = Net {
        sync_ms: Some(50),
        ..Net::reliable()
    };
    let mut sim = Sim::new(
        g.clone(),
        keys.into_iter().map(Some).collect(),
        config(),
        net,
        4,
    );
    sim.nodes[3].online = false;
    assert!(sim.run_until(START_MS + 60_000, |s| s.min_height(&[0, 1, 2]) >= 8));
    assert!(sim.nodes[3].finalized.is_empty());
    sim.nodes[3].online = true;
    let all = [0, 1, 2, 3];
    let target = sim.nodes[0].finalized.len() + 6;
    assert!(sim.run_until(sim.now + 120_000, |s| s.min_height(&all) >= target));
    sim.assert_agreement(&all);
    sim.assert_no_double_votes(&all);
    verify_chain(&g, &sim.nodes[3].finalized, sim.now);
    // Once caught up it votes again: it signed precommits that made it into commits.
    let index = sim.nodes[3].machine.validator_index().unwrap();
    let blocks = &sim.nodes[0].finalized;
    assert!(blocks[blocks.len() - 3..].iter().any(|b| b
        .commit
        .signatures
        .iter()
        .any(|s| s.validator_index == index)));
}

#[test]
fn hand_over_at_height_five_to_a_new_set_of_five() {
    let old = testkit::keys(0, 4);
    let new = testkit::keys(100, 5);
    let new_set = testkit::validator_set(&new);
    let g = genesis(&old, BTreeMap::from([(5, new_set.clone())]));
    let mut nodes: Vec<Option<SigningKey>> = old.iter().cloned().map(Some).collect();
    nodes.extend(new.iter().cloned().map(Some));
    let mut sim = Sim::new(g.clone(), nodes, config(), Net::reliable(), 5);
    let all: Vec<usize> = (0..9).collect();
    assert!(sim.run_until(START_MS + 60_000, |s| s.min_height(&all) >= 12));
    sim.assert_agreement(&all);
    sim.assert_no_double_votes(&all);
    let blocks = &sim.nodes[0].finalized;
    verify_chain(&g, blocks, sim.now);
    assert_eq!(blocks[3].next_validators.as_ref(), Some(&new_set));
    for b in blocks {
        let set = if b.height() < 5 {
            &g.validators
        } else {
            &new_set
        };
        assert_eq!(b.block.header.validators_hash, set.hash());
        assert!(set.index_of(&b.block.header.proposer).is_some());
        assert_eq!(b.next_validators.is_some(), b.height() == 4);
    }
    // The old set signs only below 5, the new one only from 5.
    for (i, node) in sim.nodes.iter().enumerate() {
        for v in &node.votes_sent {
            assert_eq!(v.height >= 5, i >= 4, "node {i} voted at {}", v.height);
        }
    }
    assert_eq!(sim.nodes[0].machine.validator_index(), None);
    assert!(sim.nodes[4].machine.validator_index().is_some());
}

#[test]
fn an_equivocating_validator_never_splits_honest_nodes() {
    let mut evidence_seen = 0;
    for seed in 0..seeds() {
        let (g, keys) = four_validators();
        let byz = (seed % 4) as usize;
        let net = Net {
            min_delay_ms: 1,
            max_delay_ms: 80,
            drop_permille: 100,
            commit_delay_ms: 5,
            sync_ms: Some(500),
        };
        let mut sim = Sim::new(
            g.clone(),
            keys.into_iter().map(Some).collect(),
            config(),
            net,
            1_000 + seed,
        );
        sim.nodes[byz].byzantine = true;
        let honest: Vec<usize> = (0..4).filter(|&i| i != byz).collect();
        sim.run_until(START_MS + 60_000, |s| s.min_height(&honest) >= 6);
        assert!(
            sim.min_height(&honest) >= 6,
            "seed {seed}: honest nodes stalled:{}",
            sim.describe()
        );
        sim.assert_agreement(&honest);
        sim.assert_no_double_votes(&honest);
        for &i in &honest {
            verify_chain(&g, &sim.nodes[i].finalized, sim.now);
            for e in &sim.nodes[i].evidence {
                evidence_seen += 1;
                match e {
                    Evidence::ConflictingVotes { first, second } => {
                        assert_eq!(first.validator_index, byz as u32);
                        assert!(first.conflicts_with(second));
                        let key = &g.validators.get(byz).unwrap().key;
                        assert!(first.verify(&g.chain_id, key).is_ok());
                        assert!(second.verify(&g.chain_id, key).is_ok());
                    }
                    Evidence::ConflictingProposals { first, second } => {
                        assert_eq!(first.round, second.round);
                        assert_ne!(first.block_hash(), second.block_hash());
                    }
                }
            }
        }
        assert!(
            honest.iter().any(|&i| !sim.nodes[i].evidence.is_empty()),
            "seed {seed}: no evidence"
        );
    }
    assert!(evidence_seen > 0);
}

/// The agreement check is not vacuous: with half the power equivocating (beyond what
/// Tendermint tolerates), the same simulated attack does split honest nodes.
#[test]
fn two_equivocators_of_four_can_split_the_chain_and_the_check_sees_it() {
    let split = (0..seeds()).any(|seed| {
        let (g, keys) = four_validators();
        let net = Net {
            min_delay_ms: 1,
            max_delay_ms: 80,
            drop_permille: 0,
            commit_delay_ms: 5,
            sync_ms: None,
        };
        let mut sim = Sim::new(g, keys.into_iter().map(Some).collect(), config(), net, seed);
        sim.nodes[0].byzantine = true;
        sim.nodes[1].byzantine = true;
        sim.run_until(START_MS + 20_000, |s| !s.disagreements(&[2, 3]).is_empty());
        !sim.disagreements(&[2, 3]).is_empty()
    });
    assert!(split);
}

#[test]
fn honest_nodes_agree_under_random_delays_and_drops() {
    for seed in 0..seeds() {
        let (g, keys) = four_validators();
        let net = Net {
            min_delay_ms: 0,
            max_delay_ms: 150,
            drop_permille: 200,
            commit_delay_ms: 20,
            sync_ms: Some(700),
        };
        let mut sim = Sim::new(
            g.clone(),
            keys.into_iter().map(Some).collect(),
            config(),
            net,
            7_000 + seed,
        );
        let all = [0, 1, 2, 3];
        assert!(
            sim.run_until(START_MS + 300_000, |s| s.min_height(&all) >= 8),
            "seed {seed}: stalled:{}",
            sim.describe()
        );
        sim.assert_agreement(&all);
        sim.assert_no_double_votes(&all);
        verify_chain(&g, &sim.nodes[0].finalized, sim.now);
    }
}

fn crashing_validators(seed: u64, keep_record: bool) -> Sim {
    let (g, keys) = four_validators();
    let net = Net {
        min_delay_ms: 1,
        max_delay_ms: 60,
        drop_permille: 150,
        commit_delay_ms: 5,
        sync_ms: Some(300),
    };
    let mut sim = Sim::new(g, keys.into_iter().map(Some).collect(), config(), net, seed);
    sim.enable_crashes(Crashes {
        after_persist_permille: 150,
        every_ms: (100, 800),
        down_ms: (5, 1_000),
        keep_record,
    });
    sim
}

/// Validators crash at random, often right after storing what they signed and before sending
/// it, and restart from their stored blocks and record, mostly in the middle of a height: none
/// ever signs two different messages for one point, nobody sees evidence, all agree.
#[test]
fn validators_restarted_mid_height_never_equivocate_and_all_agree() {
    let (mut restarts, mut mid_height) = (0, 0);
    for seed in 0..seeds() {
        let mut sim = crashing_validators(30_000 + seed, true);
        let all = [0, 1, 2, 3];
        assert!(
            sim.run_until(START_MS + 300_000, |s| s.min_height(&all) >= 8),
            "seed {seed}: stalled:{}",
            sim.describe()
        );
        sim.assert_agreement(&all);
        sim.assert_no_double_votes(&all);
        for (i, node) in sim.nodes.iter().enumerate() {
            assert!(
                node.evidence.is_empty(),
                "seed {seed}: node {i}: {:?}",
                node.evidence
            );
            verify_chain(&sim.genesis, &node.finalized, sim.now);
        }
        restarts += sim.restarts;
        mid_height += sim.mid_height_restarts;
    }
    // The scenario is exercised: most restarts resume a height the node had signed at.
    assert!(mid_height >= 2 * seeds(), "{mid_height} of {restarts}");
}

/// The check above is not vacuous: the same crashes, restarted without the record, make
/// honest validators sign twice.
#[test]
fn validators_restarted_without_their_record_equivocate_and_the_check_sees_it() {
    let equivocated = (0..seeds()).any(|seed| {
        let mut sim = crashing_validators(30_000 + seed, false);
        let all = [0, 1, 2, 3];
        sim.run_until(START_MS + 30_000, |s| !s.double_signatures(&all).is_empty());
        // Long enough for the other validators to receive both messages.
        sim.run_for(2_000);
        !sim.double_signatures(&all).is_empty() && sim.nodes.iter().any(|n| !n.evidence.is_empty())
    });
    assert!(equivocated);
}

#[test]
fn events_submitted_to_one_mempool_are_included_and_finalized() {
    let (g, keys) = four_validators();
    let mut sim = Sim::new(
        g.clone(),
        keys.into_iter().map(Some).collect(),
        config(),
        Net::reliable(),
        6,
    );
    let source = testkit::key(500);
    let events: Vec<SignedEvent> = (0..25)
        .map(|n| testkit::event(&source, n, GENESIS_MS))
        .collect();
    for e in &events {
        sim.nodes[2].mempool.insert(e.clone(), |_| false).unwrap();
    }
    let mut forged = events[0].clone();
    forged.event.actor = "mallory".into();
    assert!(matches!(
        sim.nodes[2].mempool.insert(forged, |_| false),
        Err(MempoolError::Invalid(_))
    ));
    let all = [0, 1, 2, 3];
    assert!(
        sim.run_until(START_MS + 60_000, |s| s.nodes[2].mempool.is_empty()
            && s.min_height(&all) >= s.nodes[2].finalized.len())
    );
    sim.assert_agreement(&all);
    let blocks = &sim.nodes[0].finalized;
    verify_chain(&g, blocks, sim.now);
    let included: Vec<SignedEvent> = blocks.iter().flat_map(|b| b.block.events.clone()).collect();
    assert_eq!(included, events, "every event once, in submission order");
    // At most 10 per block (the configured limit), all from node 2's proposals.
    let proposer = sim.nodes[2].key.as_ref().unwrap().public_key();
    for b in blocks.iter().filter(|b| !b.block.events.is_empty()) {
        assert!(b.block.events.len() <= 10);
        assert_eq!(b.block.header.proposer, proposer);
    }
}

// ------------------------------------------------------------------------------------------
// One machine, driven directly.
// ------------------------------------------------------------------------------------------

/// Four validators at height 1; the machine under test is validator `me`.
struct Direct {
    genesis: Genesis,
    keys: Vec<SigningKey>,
    tip: ChainTip,
}

const NOW: u64 = START_MS;

impl Direct {
    fn new() -> Self {
        let (genesis, keys) = four_validators();
        let tip = ChainTip::genesis(&genesis);
        Direct { genesis, keys, tip }
    }

    fn config() -> ConsensusConfig {
        ConsensusConfig {
            rebroadcast_ms: None,
            ..config()
        }
    }

    fn machine(&self, me: usize) -> (Consensus, Vec<Output>) {
        Consensus::new(
            Self::config(),
            &self.genesis,
            Some(self.keys[me].clone()),
            self.tip.clone(),
            None,
            NOW,
        )
        .unwrap()
    }

    /// The proposer index of (height, round) in a 4-validator set.
    fn proposer(height: u64, round: u32) -> usize {
        ((height + u64::from(round)) % 4) as usize
    }

    /// A valid block after `tip`, built by validator `by`.
    fn block_on(&self, tip: &ChainTip, by: usize, events: &[SignedEvent]) -> Block {
        let header = tip.next_header(
            &self.genesis,
            self.keys[by].public_key(),
            events,
            GENESIS_MS + 10,
        );
        Block {
            header,
            events: events.to_vec(),
        }
    }

    fn block(&self, by: usize, events: &[SignedEvent]) -> Block {
        self.block_on(&self.tip, by, events)
    }

    /// The proposal of `round`, signed by that round's proposer.
    fn proposal(&self, block: Block, round: u32, pol_round: Option<u32>) -> Input {
        let by = Self::proposer(block.header.height, round);
        Input::Proposal(Box::new(SignedProposal::sign(
            block,
            round,
            pol_round,
            &self.keys[by],
        )))
    }

    fn signed_vote(
        &self,
        kind: VoteKind,
        height: u64,
        round: u32,
        value: Option<BlockHash>,
        by: usize,
    ) -> SignedVote {
        SignedVote::sign(
            kind,
            &self.genesis.chain_id,
            height,
            round,
            value,
            by as u32,
            &self.keys[by],
        )
    }

    fn vote(
        &self,
        kind: VoteKind,
        height: u64,
        round: u32,
        value: Option<BlockHash>,
        by: usize,
    ) -> Input {
        Input::Vote(self.signed_vote(kind, height, round, value, by))
    }

    fn timeout(height: u64, round: u32, kind: TimeoutKind) -> Input {
        Input::Timeout(Timeout {
            height,
            round,
            kind,
        })
    }

    fn events(n: u64) -> Vec<SignedEvent> {
        let source = testkit::key(600);
        (0..n)
            .map(|i| testkit::event(&source, i, GENESIS_MS))
            .collect()
    }

    /// The finalized block `block` signed by validators 0..3 in round 0.
    fn finalized(&self, block: Block) -> FinalizedBlock {
        let keys: Vec<&SigningKey> = self.keys.iter().take(3).collect();
        FinalizedBlock {
            commit: Commit::sign(&block.header, 0, &self.genesis.validators, &keys),
            block,
            next_validators: None,
        }
    }
}

fn votes_in(out: &[Output]) -> Vec<SignedVote> {
    out.iter()
        .filter_map(|o| match o {
            Output::Broadcast(Message::Vote(v)) => Some(v.clone()),
            _ => None,
        })
        .collect()
}

fn rejections(out: &[Output]) -> Vec<(Option<u32>, ConsensusError)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Rejected { from, reason } => Some((*from, reason.clone())),
            _ => None,
        })
        .collect()
}

fn finalized_in(out: &[Output]) -> Vec<FinalizedBlock> {
    out.iter()
        .filter_map(|o| match o {
            Output::Finalized(b) => Some((**b).clone()),
            _ => None,
        })
        .collect()
}

fn records(out: &[Output]) -> Vec<SignState> {
    out.iter()
        .filter_map(|o| match o {
            Output::Persist(s) => Some((**s).clone()),
            _ => None,
        })
        .collect()
}

fn broadcasts(out: &[Output]) -> Vec<Message> {
    out.iter()
        .filter_map(|o| match o {
            Output::Broadcast(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

impl Direct {
    /// Validator `me` started again on `tip` with its stored record.
    fn restart(
        &self,
        me: usize,
        tip: &ChainTip,
        record: &SignState,
        now: u64,
    ) -> (Consensus, Vec<Output>) {
        Consensus::new(
            Self::config(),
            &self.genesis,
            Some(self.keys[me].clone()),
            tip.clone(),
            Some(record.clone()),
            now,
        )
        .unwrap()
    }
}

#[test]
fn first_proposer_asks_for_events_then_proposes_and_prevotes() {
    let d = Direct::new();
    let me = Direct::proposer(1, 0);
    let (mut m, out) = d.machine(me);
    assert!(out.contains(&Output::NeedEvents {
        height: 1,
        round: 0,
        max_events: 10,
        max_bytes: 1 << 20,
    }));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::ScheduleTimeout {
            timeout: Timeout { height: 1, round: 0, kind: TimeoutKind::Propose },
            at_ms,
        } if *at_ms == NOW + 400
    )));
    let events = Direct::events(3);
    let out = m.handle(
        Input::Events {
            height: 1,
            round: 0,
            events: events.clone(),
        },
        NOW,
    );
    // Each signature is recorded before it goes out, and the record keeps the round's.
    let [Output::Persist(first), Output::Broadcast(Message::Proposal(p)), Output::Persist(second), Output::Broadcast(Message::Vote(prevote))] =
        out.as_slice()
    else {
        panic!("not a recorded proposal and prevote: {out:?}");
    };
    assert_eq!(first.signed, vec![Message::Proposal(p.clone())]);
    assert_eq!(
        second.signed,
        vec![Message::Proposal(p.clone()), Message::Vote(prevote.clone())]
    );
    assert_eq!(m.sign_state(), Some(&**second));
    assert_eq!(p.block.events, events);
    assert_eq!(p.block.header.timestamp_ms, NOW);
    assert_eq!(p.pol_round, None);
    let prevotes = votes_in(&out);
    assert_eq!(prevotes.len(), 1);
    assert_eq!(prevotes[0].block_hash, Some(p.block_hash()));
    assert_eq!(m.step(), Step::Prevote);
    // A late or repeated answer does nothing.
    let again = m.handle(
        Input::Events {
            height: 1,
            round: 0,
            events,
        },
        NOW,
    );
    assert!(again.is_empty(), "{again:?}");
}

#[test]
fn a_valid_proposal_is_prevoted_and_decided_with_a_verifiable_commit() {
    let d = Direct::new();
    let (mut m, _) = d.machine(0);
    let block = d.block(1, &Direct::events(2));
    let hash = block.header.hash();
    let out = m.handle(d.proposal(block.clone(), 0, None), NOW);
    assert_eq!(
        votes_in(&out),
        vec![d.signed_vote(VoteKind::Prevote, 1, 0, Some(hash), 0)]
    );
    m.handle(d.vote(VoteKind::Prevote, 1, 0, Some(hash), 1), NOW);
    let out = m.handle(d.vote(VoteKind::Prevote, 1, 0, Some(hash), 3), NOW);
    assert_eq!(
        votes_in(&out),
        vec![d.signed_vote(VoteKind::Precommit, 1, 0, Some(hash), 0)]
    );
    assert_eq!(m.locked(), Some((0, hash)));
    m.handle(d.vote(VoteKind::Precommit, 1, 0, Some(hash), 3), NOW);
    m.handle(d.vote(VoteKind::Precommit, 1, 0, None, 1), NOW);
    m.handle(d.vote(VoteKind::Precommit, 1, 1, Some(hash), 1), NOW);
    let out = m.handle(d.vote(VoteKind::Precommit, 1, 0, Some(hash), 2), NOW);
    let decided = finalized_in(&out);
    assert_eq!(decided.len(), 1);
    let fb = &decided[0];
    assert_eq!(fb.block, block);
    let indices: Vec<u32> = fb
        .commit
        .signatures
        .iter()
        .map(|s| s.validator_index)
        .collect();
    assert_eq!(indices, vec![0, 2, 3]);
    verify_chain(&d.genesis, decided.as_slice(), NOW);
    // Nothing more at this height; the next starts on `Committed`.
    assert!(m
        .handle(d.vote(VoteKind::Precommit, 1, 0, Some(hash), 1), NOW)
        .is_empty());
    assert_eq!(m.height(), 1);
    let out = m.handle(Input::Committed { height: 1 }, NOW);
    assert_eq!((m.height(), m.round(), m.step()), (2, 0, Step::Propose));
    assert_eq!(m.tip().hash, hash);
    assert_eq!(m.locked(), None);
    assert!(out.iter().any(|o| matches!(
        o,
        Output::ScheduleTimeout {
            timeout: Timeout {
                height: 2,
                round: 0,
                kind: TimeoutKind::Propose
            },
            ..
        }
    )));
}

/// Moloch's "events return to the mempool": the node asks consensus for the blocks proposed
/// at the height it leaves and puts their events that the chain did not include back into
/// its mempool. Here: a valid proposal is kept as a candidate, an invalid one is not, and the
/// mempool takes back exactly the events another finalized block left out.
#[test]
fn proposals_of_a_height_decided_otherwise_give_their_events_back() {
    let d = Direct::new();
    let (mut m, _) = d.machine(2);
    let events = Direct::events(4);
    let proposed = d.block(1, &events);
    m.handle(d.proposal(proposed.clone(), 0, None), NOW);
    let mut invalid = d.block(1, &Direct::events(6)[4..]);
    invalid.header.events_root = Hash([9; 32]);
    m.handle(d.proposal(invalid, 1, None), NOW);
    let held: Vec<&Block> = m.proposed_blocks().collect();
    assert_eq!(held, vec![&proposed], "only the valid candidate");

    // Another block of this height, holding only events 0 and 1, is finalized (by sync).
    let finalized = d.block(1, &events[..2]);
    let included: Vec<EventId> = finalized.events.iter().map(SignedEvent::id).collect();
    let mut pool = Mempool::new(MempoolConfig::default());
    // This node already held event 3 (by gossip): it is not added twice.
    pool.insert(events[3].clone(), |_| false).unwrap();
    let back: Vec<SignedEvent> = m
        .proposed_blocks()
        .flat_map(|b| b.events.iter().cloned())
        .collect();
    assert_eq!(pool.reinsert(back, |id| included.contains(id)), 1);
    assert_eq!(pool.len(), 2);
    let taken: Vec<EventId> = pool
        .take(10, usize::MAX)
        .iter()
        .map(SignedEvent::id)
        .collect();
    assert_eq!(
        taken,
        vec![events[2].id(), events[3].id()],
        "returned events go first"
    );
}

/// Each tampering, in a proposal signed by the right proposer, gets a nil prevote and the
/// reason.
#[test]
fn invalid_proposals_are_prevoted_nil_with_the_reason() {
    let d = Direct::new();
    let proposer = Direct::proposer(1, 0) as u32;
    let events = Direct::events(3);
    let check = |block: Block, expected: &dyn Fn(&ConsensusError) -> bool| {
        let (mut m, _) = d.machine(2);
        let out = m.handle(d.proposal(block, 0, None), NOW);
        let rejected = rejections(&out);
        assert_eq!(rejected.len(), 1, "{out:?}");
        assert_eq!(rejected[0].0, Some(proposer));
        assert!(
            expected(&rejected[0].1),
            "unexpected reason {:?}",
            rejected[0].1
        );
        assert_eq!(
            votes_in(&out),
            vec![d.signed_vote(VoteKind::Prevote, 1, 0, None, 2)]
        );
    };

    let mut b = d.block(1, &events);
    b.header.events_root = Hash([1; 32]);
    check(b, &|e| {
        matches!(e, ConsensusError::EventsRootMismatch { .. })
    });

    let mut b = d.block(1, &events);
    b.header.parent_hash = Hash([2; 32]);
    check(b, &|e| matches!(e, ConsensusError::ParentMismatch { .. }));

    let b = d.block(3, &events);
    check(b, &|e| matches!(e, ConsensusError::WrongProposer { .. }));

    let mut bad = events.clone();
    bad[1].event.resource = "doc/forged".into();
    let b = d.block(1, &bad);
    check(b, &|e| {
        matches!(e, ConsensusError::InvalidEvent { index: 1, .. })
    });

    let mut dup = events.clone();
    dup.push(events[0].clone());
    let b = d.block(1, &dup);
    check(b, &|e| {
        matches!(
            e,
            ConsensusError::DuplicateEvent {
                first: 0,
                second: 3,
                ..
            }
        )
    });

    let mut b = d.block(1, &events);
    b.header.timestamp_ms = NOW + 15_001;
    check(b, &|e| {
        matches!(e, ConsensusError::TimestampInFuture { .. })
    });

    let mut b = d.block(1, &events);
    b.header.next_validators_hash = Hash([3; 32]);
    check(b, &|e| {
        matches!(e, ConsensusError::NextValidatorsHashMismatch { .. })
    });

    let b = d.block(1, &events);
    let (mut m, _) = d.machine(2);
    let out = m.handle(d.proposal(b.clone(), 0, Some(0)), NOW);
    assert_eq!(
        rejections(&out),
        vec![(
            Some(proposer),
            ConsensusError::PolRoundNotBefore {
                round: 0,
                pol_round: 0
            }
        )]
    );
    assert_eq!(
        votes_in(&out),
        vec![d.signed_vote(VoteKind::Prevote, 1, 0, None, 2)]
    );
}

/// A proposal not signed by the round's proposer is not a proposal: reported, no vote.
#[test]
fn a_proposal_signed_out_of_turn_is_reported_and_ignored() {
    let d = Direct::new();
    let (mut m, _) = d.machine(2);
    let impostor = 3;
    let block = d.block(impostor, &[]);
    let p = SignedProposal::sign(block, 0, None, &d.keys[impostor]);
    let out = m.handle(Input::Proposal(Box::new(p)), NOW);
    assert_eq!(
        rejections(&out),
        vec![(
            Some(impostor as u32),
            ConsensusError::NotProposer {
                round: 0,
                expected: 1,
                signer: 3
            }
        )]
    );
    assert!(votes_in(&out).is_empty());
    // A signature by nobody in particular.
    let mut p = SignedProposal::sign(d.block(1, &[]), 0, None, &d.keys[1]);
    p.signature.0[0] ^= 1;
    let out = m.handle(Input::Proposal(Box::new(p)), NOW);
    assert!(matches!(
        rejections(&out).as_slice(),
        [(
            None,
            ConsensusError::InvalidProposalSignature {
                round: 0,
                expected: 1,
                ..
            }
        )]
    ));
    assert_eq!(m.step(), Step::Propose);
    // The real proposal still gets its prevote.
    let block = d.block(1, &[]);
    let hash = block.header.hash();
    let out = m.handle(d.proposal(block, 0, None), NOW);
    assert_eq!(
        votes_in(&out),
        vec![d.signed_vote(VoteKind::Prevote, 1, 0, Some(hash), 2)]
    );
}

#[test]
fn never_signs_two_votes_for_one_round_and_kind_even_if_driven_twice() {
    let d = Direct::new();
    let (mut m, _) = d.machine(0);
    let mut signed = Vec::new();
    let out = m.handle(Direct::timeout(1, 0, TimeoutKind::Propose), NOW + 400);
    signed.extend(votes_in(&out));
    signed.extend(votes_in(
        &m.handle(Direct::timeout(1, 0, TimeoutKind::Propose), NOW + 400),
    ));
    assert_eq!(
        signed,
        vec![d.signed_vote(VoteKind::Prevote, 1, 0, None, 0)]
    );
    // The proposal arrives late: no second prevote.
    let block = d.block(1, &[]);
    let hash = block.header.hash();
    signed.extend(votes_in(&m.handle(d.proposal(block.clone(), 0, None), NOW)));
    signed.extend(votes_in(&m.handle(d.proposal(block, 0, None), NOW)));
    assert_eq!(signed.len(), 1);
    // A polka for the block: one precommit, and no nil precommit after the prevote timeout.
    for by in [1, 2, 3] {
        signed.extend(votes_in(
            &m.handle(d.vote(VoteKind::Prevote, 1, 0, Some(hash), by), NOW),
        ));
    }
    for _ in 0..2 {
        signed.extend(votes_in(
            &m.handle(Direct::timeout(1, 0, TimeoutKind::Prevote), NOW + 900),
        ));
        signed.extend(votes_in(
            &m.handle(Direct::timeout(1, 0, TimeoutKind::Propose), NOW + 900),
        ));
    }
    assert_eq!(
        signed,
        vec![
            d.signed_vote(VoteKind::Prevote, 1, 0, None, 0),
            d.signed_vote(VoteKind::Precommit, 1, 0, Some(hash), 0),
        ]
    );
}

/// Restarted after prevoting A, a validator resumes at that prevote (sent again, the same
/// message) and prevotes nothing else there, whatever it receives; it goes on from there.
#[test]
fn a_restarted_validator_resumes_at_its_prevote_and_signs_no_other() {
    let d = Direct::new();
    let (mut m, _) = d.machine(0);
    let a = d.block(1, &[]);
    let a_hash = a.header.hash();
    let out = m.handle(d.proposal(a, 0, None), NOW);
    let prevote = d.signed_vote(VoteKind::Prevote, 1, 0, Some(a_hash), 0);
    let record = m.sign_state().unwrap().clone();
    assert_eq!(records(&out), vec![record.clone()]);
    assert_eq!(record.signed, vec![Message::Vote(prevote.clone())]);

    let (mut m, out) = d.restart(0, &d.tip, &record, NOW + 100);
    assert_eq!((m.height(), m.round(), m.step()), (1, 0, Step::Prevote));
    assert_eq!(broadcasts(&out), vec![Message::Vote(prevote.clone())]);
    assert!(records(&out).is_empty(), "nothing new signed: {out:?}");
    // Another block for round 0, and the propose timeout: no prevote.
    let b = d.block(1, &Direct::events(1));
    let mut later = m.handle(d.proposal(b, 0, None), NOW + 110);
    later.extend(m.handle(Direct::timeout(1, 0, TimeoutKind::Propose), NOW + 500));
    assert!(broadcasts(&later).is_empty(), "{later:?}");
    // It re-sends only that prevote.
    let (mut with_timer, _) = Consensus::new(
        config(),
        &d.genesis,
        Some(d.keys[0].clone()),
        d.tip.clone(),
        Some(record.clone()),
        NOW + 100,
    )
    .unwrap();
    let again = with_timer.handle(Direct::timeout(1, 0, TimeoutKind::Rebroadcast), NOW + 1_100);
    assert_eq!(broadcasts(&again), vec![Message::Vote(prevote.clone())]);
    // Past its record it signs again, recorded first: a nil polka gets a nil precommit.
    for by in [1, 2] {
        m.handle(d.vote(VoteKind::Prevote, 1, 0, None, by), NOW + 600);
    }
    let out = m.handle(d.vote(VoteKind::Prevote, 1, 0, None, 3), NOW + 600);
    let precommit = d.signed_vote(VoteKind::Precommit, 1, 0, None, 0);
    let [Output::Persist(stored), Output::Broadcast(sent)] = out.as_slice() else {
        panic!("{out:?}");
    };
    assert_eq!(*sent, Message::Vote(precommit.clone()));
    assert_eq!(
        stored.signed,
        vec![Message::Vote(prevote), Message::Vote(precommit)]
    );
}

/// Restarted after precommitting A (locked on A in round 0), a validator keeps its lock: in
/// round 1 it prevotes nil for a new block B, and precommits nothing but what it may.
#[test]
fn a_restarted_validator_keeps_its_lock() {
    let d = Direct::new();
    let (mut m, _) = d.machine(0);
    let a = d.block(1, &[]);
    let a_hash = a.header.hash();
    m.handle(d.proposal(a, 0, None), NOW);
    m.handle(d.vote(VoteKind::Prevote, 1, 0, Some(a_hash), 1), NOW);
    let out = m.handle(d.vote(VoteKind::Prevote, 1, 0, Some(a_hash), 2), NOW);
    assert_eq!(
        votes_in(&out),
        vec![d.signed_vote(VoteKind::Precommit, 1, 0, Some(a_hash), 0)]
    );
    let record = m.sign_state().unwrap().clone();
    assert_eq!(record.locked(), Some((0, a_hash)));
    assert_eq!(record.lock.as_ref().unwrap().prevotes.len(), 3);

    let (mut m, out) = d.restart(0, &d.tip, &record, NOW + 100);
    assert_eq!((m.round(), m.step()), (0, Step::Precommit));
    assert_eq!(
        (m.locked(), m.valid()),
        (Some((0, a_hash)), Some((0, a_hash)))
    );
    assert_eq!(broadcasts(&out), record.signed);
    assert!(records(&out).is_empty());
    // Round 0 ends without a decision; round 1 proposes a new block B.
    for by in [1, 2, 3] {
        m.handle(d.vote(VoteKind::Precommit, 1, 0, None, by), NOW + 110);
    }
    m.handle(Direct::timeout(1, 0, TimeoutKind::Precommit), NOW + 310);
    assert_eq!(m.round(), 1);
    let b = d.block(2, &Direct::events(1));
    let out = m.handle(d.proposal(b, 1, None), NOW + 320);
    assert_eq!(
        votes_in(&out),
        vec![d.signed_vote(VoteKind::Prevote, 1, 1, None, 0)]
    );
    // A new round: the record holds only that round's message, and still the lock.
    let record = m.sign_state().unwrap();
    assert_eq!(record.signed.len(), 1);
    assert_eq!(record.locked(), Some((0, a_hash)));
}

/// Restarted when locked, the proposer of a later round proposes the locked block again with
/// its proof-of-lock (the prevotes kept in the record), which unlocks the others.
#[test]
fn a_restarted_locked_proposer_proposes_its_locked_block_with_the_proof() {
    let d = Direct::new();
    let me = Direct::proposer(1, 1);
    let (mut m, _) = d.machine(me);
    let a = d.block(1, &[]);
    let a_hash = a.header.hash();
    m.handle(d.proposal(a.clone(), 0, None), NOW);
    for by in [0, 1] {
        m.handle(d.vote(VoteKind::Prevote, 1, 0, Some(a_hash), by), NOW);
    }
    assert_eq!(m.locked(), Some((0, a_hash)));
    let record = m.sign_state().unwrap().clone();

    let (mut m, _) = d.restart(me, &d.tip, &record, NOW + 100);
    for by in [0, 1, 3] {
        m.handle(d.vote(VoteKind::Precommit, 1, 0, None, by), NOW + 110);
    }
    let out = m.handle(Direct::timeout(1, 0, TimeoutKind::Precommit), NOW + 310);
    assert!(!out.iter().any(|o| matches!(o, Output::NeedEvents { .. })));
    let sent = broadcasts(&out);
    let Some(Message::Proposal(p)) = sent.first() else {
        panic!("no proposal: {out:?}");
    };
    assert_eq!((p.round, p.pol_round, &p.block), (1, Some(0), &a));
    let mut expected: Vec<Message> = [0, 1, me]
        .iter()
        .map(|&by| Message::Vote(d.signed_vote(VoteKind::Prevote, 1, 0, Some(a_hash), by)))
        .collect();
    expected.sort_by_key(|m| match m {
        Message::Vote(v) => v.validator_index,
        Message::Proposal(_) => u32::MAX,
    });
    assert_eq!(&sent[1..4], expected.as_slice());
    assert_eq!(
        votes_in(&out[out.len() - 1..]),
        vec![d.signed_vote(VoteKind::Prevote, 1, 1, Some(a_hash), me)]
    );
}

/// A proposer restarted after recording its proposal (perhaps before sending it) proposes
/// the same block again, never a new one for that round, and does not ask for events.
#[test]
fn a_restarted_proposer_proposes_its_recorded_block_not_a_new_one() {
    let d = Direct::new();
    let me = Direct::proposer(1, 0);
    let (mut m, _) = d.machine(me);
    let out = m.handle(
        Input::Events {
            height: 1,
            round: 0,
            events: Direct::events(2),
        },
        NOW,
    );
    let recorded = records(&out);
    let Some(Message::Proposal(p)) = recorded[0].signed.first().cloned() else {
        panic!("{out:?}");
    };
    let prevote = d.signed_vote(VoteKind::Prevote, 1, 0, Some(p.block_hash()), me);

    // Crashed after storing the proposal, before sending it.
    let (mut m, out) = d.restart(me, &d.tip, &recorded[0], NOW + 100);
    assert!(!out.iter().any(|o| matches!(o, Output::NeedEvents { .. })));
    assert_eq!(
        broadcasts(&out),
        vec![Message::Proposal(p.clone()), Message::Vote(prevote.clone())]
    );
    assert_eq!(records(&out), vec![recorded[1].clone()]);
    let late = m.handle(
        Input::Events {
            height: 1,
            round: 0,
            events: Direct::events(1),
        },
        NOW + 100,
    );
    assert!(late.is_empty(), "{late:?}");

    // Crashed after its prevote: both are sent again, nothing new is signed.
    let (m, out) = d.restart(me, &d.tip, &recorded[1], NOW + 100);
    assert_eq!(m.step(), Step::Prevote);
    assert!(!out.iter().any(|o| matches!(o, Output::NeedEvents { .. })));
    assert_eq!(
        broadcasts(&out),
        vec![Message::Proposal(p), Message::Vote(prevote)]
    );
    assert!(records(&out).is_empty());
}

/// The record of a finished height does not hold the next one back.
#[test]
fn a_record_of_a_lower_height_does_not_hold_the_machine_back() {
    let d = Direct::new();
    let b1 = d.block(1, &[]);
    let tip1 = d.tip.advance(&d.finalized(b1.clone())).unwrap();
    let old = SignState {
        signed: vec![Message::Vote(d.signed_vote(
            VoteKind::Precommit,
            1,
            3,
            None,
            0,
        ))],
        lock: None,
    };
    let (mut m, out) = d.restart(0, &tip1, &old, NOW);
    assert_eq!((m.height(), m.round(), m.step()), (2, 0, Step::Propose));
    assert!(broadcasts(&out).is_empty());
    let b2 = d.block_on(&tip1, Direct::proposer(2, 0), &[]);
    let hash = b2.header.hash();
    let out = m.handle(d.proposal(b2, 0, None), NOW);
    let prevote = d.signed_vote(VoteKind::Prevote, 2, 0, Some(hash), 0);
    assert_eq!(votes_in(&out), vec![prevote.clone()]);
    assert_eq!(records(&out)[0].signed, vec![Message::Vote(prevote)]);
}

/// A record of a later height than the store's (the store lost blocks its key had signed
/// after): the machine follows and finalizes but signs nothing until it reaches that height,
/// where it resumes.
#[test]
fn a_record_of_a_higher_height_keeps_the_machine_from_signing_until_there() {
    let d = Direct::new();
    let ahead = d.signed_vote(VoteKind::Prevote, 2, 0, None, 0);
    let record = SignState {
        signed: vec![Message::Vote(ahead.clone())],
        lock: None,
    };
    let (mut m, mut all) = d.restart(0, &d.tip, &record, NOW);
    let a = d.block(1, &[]);
    let hash = a.header.hash();
    all.extend(m.handle(d.proposal(a, 0, None), NOW));
    all.extend(m.handle(Direct::timeout(1, 0, TimeoutKind::Propose), NOW + 400));
    for by in [1, 2, 3] {
        all.extend(m.handle(d.vote(VoteKind::Prevote, 1, 0, Some(hash), by), NOW + 400));
    }
    for by in [1, 2, 3] {
        all.extend(m.handle(d.vote(VoteKind::Precommit, 1, 0, Some(hash), by), NOW + 400));
    }
    assert!(
        broadcasts(&all).is_empty() && records(&all).is_empty(),
        "{all:?}"
    );
    assert_eq!(finalized_in(&all).len(), 1);
    let out = m.handle(Input::Committed { height: 1 }, NOW + 400);
    assert_eq!((m.height(), m.round(), m.step()), (2, 0, Step::Prevote));
    assert_eq!(broadcasts(&out), vec![Message::Vote(ahead)]);
    assert!(records(&out).is_empty());
}

#[test]
fn a_silent_proposer_is_skipped_through_nil_votes_and_timeouts() {
    let d = Direct::new();
    let (mut m, _) = d.machine(0);
    let out = m.handle(Direct::timeout(1, 0, TimeoutKind::Propose), NOW + 400);
    assert_eq!(
        votes_in(&out),
        vec![d.signed_vote(VoteKind::Prevote, 1, 0, None, 0)]
    );
    m.handle(d.vote(VoteKind::Prevote, 1, 0, None, 2), NOW + 410);
    let out = m.handle(d.vote(VoteKind::Prevote, 1, 0, None, 3), NOW + 410);
    // L44: a nil polka: precommit nil at once.
    assert_eq!(
        votes_in(&out),
        vec![d.signed_vote(VoteKind::Precommit, 1, 0, None, 0)]
    );
    m.handle(d.vote(VoteKind::Precommit, 1, 0, None, 2), NOW + 420);
    let out = m.handle(d.vote(VoteKind::Precommit, 1, 0, None, 3), NOW + 420);
    assert!(out.contains(&Output::ScheduleTimeout {
        timeout: Timeout {
            height: 1,
            round: 0,
            kind: TimeoutKind::Precommit
        },
        at_ms: NOW + 620,
    }));
    let out = m.handle(Direct::timeout(1, 0, TimeoutKind::Precommit), NOW + 620);
    assert_eq!((m.round(), m.step()), (1, Step::Propose));
    // Round 1's propose timeout is longer (base + delta).
    assert!(out.contains(&Output::ScheduleTimeout {
        timeout: Timeout {
            height: 1,
            round: 1,
            kind: TimeoutKind::Propose
        },
        at_ms: NOW + 620 + 500,
    }));
    // Stale timeouts of round 0 do nothing.
    assert!(votes_in(&m.handle(Direct::timeout(1, 0, TimeoutKind::Propose), NOW + 700)).is_empty());
}

#[test]
fn skips_to_a_round_where_more_than_a_third_of_the_power_is() {
    let d = Direct::new();
    let (mut m, _) = d.machine(0);
    m.handle(d.vote(VoteKind::Prevote, 1, 3, None, 1), NOW);
    assert_eq!(m.round(), 0);
    let out = m.handle(d.vote(VoteKind::Precommit, 1, 3, None, 2), NOW);
    assert_eq!(m.round(), 3);
    assert!(out.iter().any(|o| matches!(
        o,
        Output::ScheduleTimeout {
            timeout: Timeout {
                round: 3,
                kind: TimeoutKind::Propose,
                ..
            },
            ..
        }
    )));
    // Too far ahead (beyond max_future_rounds): dropped.
    m.handle(d.vote(VoteKind::Prevote, 1, 14, None, 1), NOW);
    m.handle(d.vote(VoteKind::Prevote, 1, 14, None, 2), NOW);
    assert_eq!(m.round(), 3);
}

/// Locked on A in round 0, a node prevotes nil for B in round 1, and prevotes B in round 2
/// once B's proof-of-lock from round 1 (newer than its lock) is there.
#[test]
fn a_locked_node_prevotes_only_its_value_until_a_newer_proof_of_lock() {
    let d = Direct::new();
    let (mut m, _) = d.machine(0);
    let a = d.block(1, &[]);
    let a_hash = a.header.hash();
    m.handle(d.proposal(a, 0, None), NOW);
    m.handle(d.vote(VoteKind::Prevote, 1, 0, Some(a_hash), 1), NOW);
    let out = m.handle(d.vote(VoteKind::Prevote, 1, 0, Some(a_hash), 2), NOW);
    assert_eq!(
        votes_in(&out),
        vec![d.signed_vote(VoteKind::Precommit, 1, 0, Some(a_hash), 0)]
    );
    assert_eq!(m.locked(), Some((0, a_hash)));
    for by in [1, 2, 3] {
        m.handle(d.vote(VoteKind::Precommit, 1, 0, None, by), NOW);
    }
    m.handle(Direct::timeout(1, 0, TimeoutKind::Precommit), NOW + 200);
    assert_eq!(m.round(), 1);

    // Round 1: a different block B, new (no proof-of-lock): nil.
    let b = d.block(2, &Direct::events(1));
    let b_hash = b.header.hash();
    let out = m.handle(d.proposal(b.clone(), 1, None), NOW + 210);
    assert_eq!(
        votes_in(&out),
        vec![d.signed_vote(VoteKind::Prevote, 1, 1, None, 0)]
    );
    for by in [1, 2, 3] {
        m.handle(d.vote(VoteKind::Precommit, 1, 1, None, by), NOW + 220);
    }
    m.handle(Direct::timeout(1, 1, TimeoutKind::Precommit), NOW + 520);
    assert_eq!(m.round(), 2);
    assert_eq!(m.locked(), Some((0, a_hash)));

    // Round 2: B again with proof-of-lock round 1. No vote until the polka of round 1 shows.
    let out = m.handle(d.proposal(b, 2, Some(1)), NOW + 530);
    assert!(votes_in(&out).is_empty(), "{out:?}");
    m.handle(d.vote(VoteKind::Prevote, 1, 1, Some(b_hash), 1), NOW + 540);
    m.handle(d.vote(VoteKind::Prevote, 1, 1, Some(b_hash), 2), NOW + 540);
    let out = m.handle(d.vote(VoteKind::Prevote, 1, 1, Some(b_hash), 3), NOW + 540);
    assert_eq!(
        votes_in(&out),
        vec![d.signed_vote(VoteKind::Prevote, 1, 2, Some(b_hash), 0)]
    );
    // The polka of round 0 made A the valid value; B's of round 1 came after round 1 ended.
    assert_eq!(m.valid(), Some((0, a_hash)));
}

/// As proposer of a later round, a node that saw a polka proposes that block again with its
/// proof-of-lock round instead of asking for events.
#[test]
fn a_proposer_with_a_valid_value_proposes_it_again() {
    let d = Direct::new();
    let me = Direct::proposer(1, 1);
    let (mut m, _) = d.machine(me);
    let a = d.block(1, &Direct::events(2));
    let a_hash = a.header.hash();
    m.handle(d.proposal(a.clone(), 0, None), NOW);
    for by in [0, 1] {
        m.handle(d.vote(VoteKind::Prevote, 1, 0, Some(a_hash), by), NOW);
    }
    assert_eq!(m.valid(), Some((0, a_hash)));
    for by in [0, 1, 3] {
        m.handle(d.vote(VoteKind::Precommit, 1, 0, None, by), NOW);
    }
    let out = m.handle(Direct::timeout(1, 0, TimeoutKind::Precommit), NOW + 200);
    assert!(!out.iter().any(|o| matches!(o, Output::NeedEvents { .. })));
    let Some(Output::Broadcast(Message::Proposal(p))) = out
        .iter()
        .find(|o| matches!(o, Output::Broadcast(Message::Proposal(_))))
    else {
        panic!("no proposal: {out:?}");
    };
    assert_eq!((p.round, p.pol_round), (1, Some(0)));
    assert_eq!(p.block, a);
    // It relays the proof-of-lock (the prevotes of round 0), then prevotes A.
    let pol: Vec<SignedVote> = [0, 1, me]
        .iter()
        .map(|&by| d.signed_vote(VoteKind::Prevote, 1, 0, Some(a_hash), by))
        .collect();
    let mut expected = pol.clone();
    expected.sort_by_key(|v| v.validator_index);
    expected.push(d.signed_vote(VoteKind::Prevote, 1, 1, Some(a_hash), me));
    assert_eq!(votes_in(&out), expected);
}

#[test]
fn conflicting_votes_yield_evidence_once_and_one_for_an_unknown_block_does_not_count() {
    let d = Direct::new();
    let (mut m, _) = d.machine(0);
    let a = d.block(1, &[]);
    let a_hash = a.header.hash();
    let other = Some(Hash([7; 32]));
    m.handle(d.proposal(a, 0, None), NOW);
    let first = d.signed_vote(VoteKind::Prevote, 1, 0, Some(a_hash), 3);
    let second = d.signed_vote(VoteKind::Prevote, 1, 0, other, 3);
    assert!(m.handle(Input::Vote(first.clone()), NOW).is_empty());
    let out = m.handle(Input::Vote(second.clone()), NOW);
    assert_eq!(
        out,
        vec![Output::Evidence(Evidence::ConflictingVotes {
            first: Box::new(first.clone()),
            second: Box::new(second.clone())
        })]
    );
    assert!(m.handle(Input::Vote(second), NOW).is_empty());
    // Validator 3's first vote counts: with 2's it completes a polka for A.
    let out = m.handle(d.vote(VoteKind::Prevote, 1, 0, Some(a_hash), 2), NOW);
    assert_eq!(
        votes_in(&out),
        vec![d.signed_vote(VoteKind::Precommit, 1, 0, Some(a_hash), 0)]
    );
}

/// An equivocator's later vote for a block held here counts towards that block (never towards
/// "anything" twice): else nodes that heard its other vote first could never see the polka.
#[test]
fn a_conflicting_vote_for_a_held_block_counts_towards_it() {
    let d = Direct::new();
    let (mut m, _) = d.machine(0);
    let a = d.block(1, &[]);
    let a_hash = a.header.hash();
    m.handle(d.proposal(a, 0, None), NOW);
    m.handle(d.vote(VoteKind::Prevote, 1, 0, None, 3), NOW);
    let out = m.handle(d.vote(VoteKind::Prevote, 1, 0, Some(a_hash), 3), NOW);
    assert!(matches!(
        out.as_slice(),
        [Output::Evidence(Evidence::ConflictingVotes { first, second })]
            if first.block_hash.is_none() && second.block_hash == Some(a_hash)
    ));
    let out = m.handle(d.vote(VoteKind::Prevote, 1, 0, Some(a_hash), 2), NOW);
    assert_eq!(
        votes_in(&out),
        vec![d.signed_vote(VoteKind::Precommit, 1, 0, Some(a_hash), 0)]
    );
}

#[test]
fn conflicting_proposals_yield_evidence() {
    let d = Direct::new();
    let (mut m, _) = d.machine(0);
    let a = d.block(1, &[]);
    let b = d.block(1, &Direct::events(1));
    m.handle(d.proposal(a, 0, None), NOW);
    let out = m.handle(d.proposal(b, 0, None), NOW);
    assert!(matches!(
        out.as_slice(),
        [Output::Evidence(Evidence::ConflictingProposals { first, second })]
            if first.round == 0 && first.block_hash() != second.block_hash()
    ));
}

#[test]
fn forged_votes_are_rejected() {
    let d = Direct::new();
    let (mut m, _) = d.machine(0);
    let mut v = d.signed_vote(VoteKind::Prevote, 1, 0, None, 2);
    v.validator_index = 1;
    assert!(matches!(
        rejections(&m.handle(Input::Vote(v), NOW)).as_slice(),
        [(None, ConsensusError::InvalidVoteSignature { index: 1, .. })]
    ));
    let mut v = d.signed_vote(VoteKind::Prevote, 1, 0, None, 2);
    v.validator_index = 9;
    assert_eq!(
        rejections(&m.handle(Input::Vote(v), NOW)),
        vec![(
            None,
            ConsensusError::UnknownValidator {
                height: 1,
                index: 9,
                set_len: 4
            }
        )]
    );
    let v = d.signed_vote(VoteKind::Prevote, 1, 0, Some(Hash::ZERO), 2);
    assert_eq!(
        rejections(&m.handle(Input::Vote(v), NOW)),
        vec![(None, ConsensusError::ZeroBlockHash { index: 2 })]
    );
}

/// Messages for the next height are kept (and used once it starts); older and later ones
/// are dropped.
#[test]
fn next_height_messages_are_buffered_others_dropped() {
    let d = Direct::new();
    let (mut m, _) = d.machine(0);
    let b1 = d.block(1, &[]);
    let h1 = b1.header.hash();
    let tip1 = d.tip.advance(&d.finalized(b1.clone())).unwrap();
    let b2 = d.block_on(&tip1, Direct::proposer(2, 0), &[]);
    let h2 = b2.header.hash();
    let tip2 = tip1.advance(&d.finalized(b2.clone())).unwrap();
    let b3 = d.block_on(&tip2, Direct::proposer(3, 0), &[]);
    let h3 = b3.header.hash();

    // Height 2's proposal and precommits, height 3's precommits, all early.
    assert!(m.handle(d.proposal(b2, 0, None), NOW).is_empty());
    for by in [1, 2, 3] {
        assert!(m
            .handle(d.vote(VoteKind::Precommit, 2, 0, Some(h2), by), NOW)
            .is_empty());
        assert!(m
            .handle(d.vote(VoteKind::Precommit, 3, 0, Some(h3), by), NOW)
            .is_empty());
    }
    // Height 1 decides; on `Committed`, height 2 decides at once from what was kept.
    m.handle(d.proposal(b1, 0, None), NOW);
    for by in [1, 2, 3] {
        m.handle(d.vote(VoteKind::Precommit, 1, 0, Some(h1), by), NOW);
    }
    assert_eq!(m.decided().map(|b| b.height()), Some(1));
    let out = m.handle(Input::Committed { height: 1 }, NOW);
    let decided = finalized_in(&out);
    assert_eq!(decided.len(), 1);
    assert_eq!(decided[0].block.header.hash(), h2);
    // Height 3's early precommits were dropped: the proposal alone does not decide.
    m.handle(Input::Committed { height: 2 }, NOW);
    assert!(finalized_in(&m.handle(d.proposal(b3, 0, None), NOW)).is_empty());
    for by in [1, 2] {
        m.handle(d.vote(VoteKind::Precommit, 3, 0, Some(h3), by), NOW);
    }
    let out = m.handle(d.vote(VoteKind::Precommit, 3, 0, Some(h3), 3), NOW);
    assert_eq!(finalized_in(&out).len(), 1);
    // Votes for a finished height are dropped silently.
    assert!(m
        .handle(d.vote(VoteKind::Precommit, 1, 0, Some(h1), 0), NOW)
        .is_empty());
}

#[test]
fn a_finalized_block_from_a_peer_is_adopted_in_height_order() {
    let d = Direct::new();
    let (mut m, _) = d.machine(0);
    let b1 = d.block(1, &Direct::events(2));
    let f1 = d.finalized(b1.clone());
    let tip1 = d.tip.advance(&f1).unwrap();
    let f2 = d.finalized(d.block_on(&tip1, 2, &[]));

    let out = m.handle(Input::FinalizedFromPeer(Box::new(f2.clone())), NOW);
    assert_eq!(
        rejections(&out),
        vec![(
            None,
            ConsensusError::NotNextHeight {
                expected: 1,
                got: 2
            }
        )]
    );
    let mut wrong = f1.clone();
    wrong.commit.block_hash = Hash([5; 32]);
    assert!(matches!(
        rejections(&m.handle(Input::FinalizedFromPeer(Box::new(wrong)), NOW)).as_slice(),
        [(None, ConsensusError::CommitMismatch { .. })]
    ));
    let mut tampered = f1.clone();
    tampered.block.events.pop();
    tampered.commit.block_hash = tampered.block.header.hash();
    assert!(matches!(
        rejections(&m.handle(Input::FinalizedFromPeer(Box::new(tampered)), NOW)).as_slice(),
        [(
            None,
            ConsensusError::EventCountMismatch {
                header: 2,
                events: 1
            }
        )]
    ));

    let out = m.handle(Input::FinalizedFromPeer(Box::new(f1.clone())), NOW);
    assert_eq!(finalized_in(&out), vec![f1.clone()]);
    m.handle(Input::Committed { height: 1 }, NOW);
    assert_eq!(m.height(), 2);
    // The same block again is ignored; a different one at that height is a red flag.
    assert!(m
        .handle(Input::FinalizedFromPeer(Box::new(f1)), NOW)
        .is_empty());
    let other = d.finalized(d.block(1, &[]));
    assert!(matches!(
        rejections(&m.handle(Input::FinalizedFromPeer(Box::new(other)), NOW)).as_slice(),
        [(None, ConsensusError::ConflictingFinalized { height: 1, .. })]
    ));
    let out = m.handle(Input::FinalizedFromPeer(Box::new(f2.clone())), NOW);
    assert_eq!(finalized_in(&out), vec![f2]);
}

#[test]
fn an_observer_follows_without_signing() {
    let d = Direct::new();
    let (mut m, out) =
        Consensus::new(Direct::config(), &d.genesis, None, d.tip.clone(), None, NOW).unwrap();
    assert!(!out.iter().any(|o| matches!(o, Output::NeedEvents { .. })));
    let block = d.block(1, &[]);
    let hash = block.header.hash();
    let mut all = m.handle(d.proposal(block, 0, None), NOW);
    for by in [0, 1, 2] {
        all.extend(m.handle(d.vote(VoteKind::Prevote, 1, 0, Some(hash), by), NOW));
    }
    for by in [0, 1, 2] {
        all.extend(m.handle(d.vote(VoteKind::Precommit, 1, 0, Some(hash), by), NOW));
    }
    all.extend(m.handle(Direct::timeout(1, 0, TimeoutKind::Propose), NOW + 400));
    assert!(!all.iter().any(|o| matches!(o, Output::Broadcast(_))));
    assert_eq!(finalized_in(&all).len(), 1);
}

#[test]
fn rebroadcasts_what_it_signed_at_the_current_height() {
    let d = Direct::new();
    let me = Direct::proposer(1, 0);
    let (mut m, out) = Consensus::new(
        config(),
        &d.genesis,
        Some(d.keys[me].clone()),
        d.tip.clone(),
        None,
        NOW,
    )
    .unwrap();
    assert!(out.contains(&Output::ScheduleTimeout {
        timeout: Timeout {
            height: 1,
            round: 0,
            kind: TimeoutKind::Rebroadcast
        },
        at_ms: NOW + 1_000,
    }));
    let sent = m.handle(
        Input::Events {
            height: 1,
            round: 0,
            events: Vec::new(),
        },
        NOW,
    );
    let out = m.handle(Direct::timeout(1, 0, TimeoutKind::Rebroadcast), NOW + 1_000);
    let again: Vec<&Output> = out
        .iter()
        .filter(|o| matches!(o, Output::Broadcast(_)))
        .collect();
    let first: Vec<&Output> = sent
        .iter()
        .filter(|o| matches!(o, Output::Broadcast(_)))
        .collect();
    assert_eq!(again, first);
    assert!(out.contains(&Output::ScheduleTimeout {
        timeout: Timeout {
            height: 1,
            round: 0,
            kind: TimeoutKind::Rebroadcast
        },
        at_ms: NOW + 2_000,
    }));
}

#[test]
fn new_rejects_a_tip_from_another_chain() {
    let d = Direct::new();
    let other = genesis(&testkit::keys(10, 4), BTreeMap::new());
    assert!(Consensus::new(config(), &other, None, d.tip.clone(), None, NOW).is_err());
}
