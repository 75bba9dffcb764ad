//! The consensus state machine: its state per height, and the inputs: authenticating and
//! keeping proposals and votes, events for a proposal, blocks learned from peers, commits.
//! The rules that act on this state are in `rules.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::error::ConsensusError;
use super::messages::{Evidence, SignedProposal, SignedVote};
use super::proposal::{self, BlockLimits};
use super::sign_state::SignState;
use super::tip::{ChainTip, TipError};
use super::votes::{Added, VoteBook};
use super::{ConsensusConfig, Input, Output, Step, TimeoutKind};
use crate::chain::{
    Block, BlockHash, FinalizedBlock, Genesis, Hash, SignedEvent, ValidatorSet, MAX_BLOCK_EVENTS,
};
use crate::crypto::ed25519::{Signature, SigningKey};

/// At most this many different proposals are kept per round: the first (the one this node
/// votes on) and one conflicting one (so a block that others finalize can still be decided).
const MAX_PROPOSALS_PER_ROUND: usize = 2;

/// `upon ... for the first time` rules, remembered per round.
pub(super) const RULE_PREVOTE_TIMEOUT: u8 = 0; // L34
pub(super) const RULE_LOCK: u8 = 1; // L36
pub(super) const RULE_PRECOMMIT_TIMEOUT: u8 = 2; // L47

/// A proposal received for a round, its block kept in [`HeightState::blocks`].
#[derive(Clone, Debug)]
pub(super) struct ProposalRecord {
    pub(super) hash: BlockHash,
    pub(super) pol_round: Option<u32>,
    pub(super) signature: Signature,
    pub(super) proposer: u32,
    /// The block's checks and the proposal's checks in its round (not the clock).
    pub(super) verdict: Result<(), ConsensusError>,
}

/// A proposed block and the verdict of [`proposal::check_block`] on it.
#[derive(Clone, Debug)]
pub(super) struct Candidate {
    pub(super) block: Block,
    pub(super) verdict: Result<(), ConsensusError>,
}

/// Everything about the height being decided.
#[derive(Debug)]
pub(super) struct HeightState {
    pub(super) height: u64,
    /// This node's index in the height's set, if it has a key there.
    pub(super) own_index: Option<u32>,
    pub(super) round: u32,
    pub(super) step: Step,
    pub(super) locked: Option<(u32, BlockHash)>,
    pub(super) valid: Option<(u32, BlockHash)>,
    pub(super) proposals: BTreeMap<u32, Vec<ProposalRecord>>,
    pub(super) blocks: HashMap<BlockHash, Candidate>,
    pub(super) votes: VoteBook,
    /// The votes this node signed, by (round, kind): never a second one for a slot.
    pub(super) signed_votes: BTreeMap<(u32, u8), SignedVote>,
    /// The proposals this node signed, by round: never a second one for a round.
    pub(super) signed_proposals: BTreeMap<u32, SignedProposal>,
    pub(super) fired: BTreeSet<(u32, u8)>,
    /// The round whose `NeedEvents` is unanswered.
    pub(super) awaiting_events: Option<u32>,
}

impl HeightState {
    fn new(votes: VoteBook, key: Option<&SigningKey>) -> Self {
        let own_index = key
            .and_then(|k| votes.set().index_of(&k.public_key()))
            .map(|i| i as u32);
        HeightState {
            height: votes.height(),
            own_index,
            round: 0,
            step: Step::Propose,
            locked: None,
            valid: None,
            proposals: BTreeMap::new(),
            blocks: HashMap::new(),
            votes,
            signed_votes: BTreeMap::new(),
            signed_proposals: BTreeMap::new(),
            fired: BTreeSet::new(),
            awaiting_events: None,
        }
    }

    pub(super) fn proposer_index(&self, round: u32) -> u32 {
        proposer_index(self.votes.set(), self.height, round)
    }
}

fn proposer_index(set: &ValidatorSet, height: u64, round: u32) -> u32 {
    let key = &set.proposer(height, round).key;
    // The proposer is a member of its own set.
    set.index_of(key).unwrap_or(0) as u32
}

/// Messages for the height after the current one, kept until it starts. Bounded: one vote per
/// (round, kind, validator) and one proposal per round, rounds `0..=max_future_rounds`, all
/// authenticated before they are kept.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) votes: VoteBook,
    pub(super) proposals: BTreeMap<u32, SignedProposal>,
}

impl Pending {
    pub(super) fn new(height: u64, genesis: &Genesis) -> Self {
        Pending {
            votes: VoteBook::new(height, genesis.validators_at(height).clone()),
            proposals: BTreeMap::new(),
        }
    }
}

/// Checks a vote's validator index and signature against its height's set.
fn authenticate_vote(
    genesis: &Genesis,
    set: &ValidatorSet,
    vote: &SignedVote,
) -> Result<(), ConsensusError> {
    let index = vote.validator_index;
    let validator = set
        .get(index as usize)
        .ok_or(ConsensusError::UnknownValidator {
            height: vote.height,
            index,
            set_len: set.len(),
        })?;
    if vote.block_hash == Some(Hash::ZERO) {
        return Err(ConsensusError::ZeroBlockHash { index });
    }
    vote.verify(&genesis.chain_id, &validator.key)
        .map_err(|error| ConsensusError::InvalidVoteSignature { index, error })
}

/// Checks that the round's proposer signed `p`; returns its index. On failure, names the
/// validator proven responsible, if any (one that signed a proposal out of turn).
fn authenticate_proposal(
    set: &ValidatorSet,
    p: &SignedProposal,
    hash: &BlockHash,
) -> Result<u32, (Option<u32>, ConsensusError)> {
    let height = p.height();
    let expected = proposer_index(set, height, p.round);
    let Err(error) = p.verify(&set.proposer(height, p.round).key, hash) else {
        return Ok(expected);
    };
    let named = &p.block.header.proposer;
    if let Some(signer) = set.index_of(named).map(|i| i as u32) {
        if signer != expected && p.verify(named, hash).is_ok() {
            return Err((
                Some(signer),
                ConsensusError::NotProposer {
                    round: p.round,
                    expected,
                    signer,
                },
            ));
        }
    }
    Err((
        None,
        ConsensusError::InvalidProposalSignature {
            round: p.round,
            expected,
            error,
        },
    ))
}

/// Tendermint consensus for one node, as a sans-I/O state machine: inputs in, outputs out,
/// time as an argument. See the [module documentation](super) for the contract.
#[derive(Debug)]
pub struct Consensus {
    pub(super) config: ConsensusConfig,
    pub(super) genesis: Genesis,
    pub(super) key: Option<SigningKey>,
    pub(super) tip: ChainTip,
    pub(super) cur: HeightState,
    pub(super) next: Pending,
    /// The block decided at `cur.height`, until the node confirms it stored it.
    pub(super) decided: Option<FinalizedBlock>,
    /// What this key signed in the last round it signed in, and its lock then: the last
    /// [`Output::Persist`], or the record given back at start. Nothing conflicting with it is
    /// ever signed.
    pub(super) signed: Option<SignState>,
}

impl Consensus {
    /// A machine that decides the block after `tip`, signing with `key` at the heights where
    /// its public key is in the set (never, for `None`). `signed` is the last [`SignState`]
    /// the node stored for this key (`None` only if the key never signed with this node's
    /// data): the machine never signs anything conflicting with it, and if it is at the height
    /// after `tip`, resumes at its round and step (see the [module documentation](super)).
    /// Returns the machine and its first outputs (the first timeouts, `NeedEvents` if it
    /// proposes first, what it sends again after a restart).
    pub fn new(
        config: ConsensusConfig,
        genesis: &Genesis,
        key: Option<SigningKey>,
        tip: ChainTip,
        signed: Option<SignState>,
        now_ms: u64,
    ) -> Result<(Consensus, Vec<Output>), TipError> {
        tip.check_against(genesis)?;
        let height = tip.next_height();
        let votes = VoteBook::new(height, genesis.validators_at(height).clone());
        let mut machine = Consensus {
            cur: HeightState::new(votes, key.as_ref()),
            next: Pending::new(height.saturating_add(1), genesis),
            config,
            genesis: genesis.clone(),
            key,
            tip,
            decided: None,
            signed,
        };
        let mut out = Vec::new();
        if let Some(interval) = machine.config.rebroadcast_ms {
            machine.schedule(
                TimeoutKind::Rebroadcast,
                now_ms.saturating_add(interval),
                &mut out,
            );
        }
        machine.start_height(now_ms, &mut out);
        machine.run_rules(now_ms, &mut out);
        Ok((machine, out))
    }

    /// Feeds one input at time `now_ms`; returns what to do, in order.
    pub fn handle(&mut self, input: Input, now_ms: u64) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Proposal(p) => self.on_proposal(*p, &mut out),
            Input::Vote(v) => self.on_vote(v, &mut out),
            Input::Timeout(t) => self.on_timeout(t, now_ms, &mut out),
            Input::Events {
                height,
                round,
                events,
            } => self.on_events(height, round, events, now_ms, &mut out),
            Input::FinalizedFromPeer(block) => self.on_finalized_from_peer(*block, &mut out),
            Input::Committed { height } => self.on_committed(height, now_ms, &mut out),
        }
        self.run_rules(now_ms, &mut out);
        out
    }

    /// The height being decided (or, after a decision, awaiting `Committed`).
    pub fn height(&self) -> u64 {
        self.cur.height
    }

    pub fn round(&self) -> u32 {
        self.cur.round
    }

    pub fn step(&self) -> Step {
        self.cur.step
    }

    /// The last finalized block this machine builds on.
    pub fn tip(&self) -> &ChainTip {
        &self.tip
    }

    /// The block decided at the current height, while waiting for `Committed`.
    pub fn decided(&self) -> Option<&FinalizedBlock> {
        self.decided.as_ref()
    }

    /// The blocks proposed at the current height that passed the block checks (events
    /// valid, within limits), whatever their fate: when another block is finalized here, the
    /// node returns their events that the chain did not include to its mempool.
    pub fn proposed_blocks(&self) -> impl Iterator<Item = &Block> + '_ {
        self.cur
            .blocks
            .values()
            .filter(|c| c.verdict.is_ok())
            .map(|c| &c.block)
    }

    /// `(round, block)` this node is locked on, if any.
    pub fn locked(&self) -> Option<(u32, BlockHash)> {
        self.cur.locked
    }

    /// `(round, block)` of the last block seen with a prevote quorum, if any.
    pub fn valid(&self) -> Option<(u32, BlockHash)> {
        self.cur.valid
    }

    /// This node's index in the current height's set; `None` if it only follows.
    pub fn validator_index(&self) -> Option<u32> {
        self.cur.own_index
    }

    /// What this node signed in the last round it signed in, and its lock then: what the last
    /// [`Output::Persist`] carried, or the record given to [`Consensus::new`].
    pub fn sign_state(&self) -> Option<&SignState> {
        self.signed.as_ref()
    }

    // --- Inputs ----------------------------------------------------------------------------

    pub(super) fn on_vote(&mut self, vote: SignedVote, out: &mut Vec<Output>) {
        // A conflicting vote counts towards its value only for a block held here (bounded,
        // and what liveness needs: see `votes`).
        let (book, max_round, admit_conflict) =
            if vote.height == self.cur.height && self.decided.is_none() {
                let max = self.cur.round.saturating_add(self.config.max_future_rounds);
                let known = vote
                    .block_hash
                    .is_some_and(|h| self.cur.blocks.contains_key(&h));
                (&mut self.cur.votes, max, known)
            } else if Some(vote.height) == self.cur.height.checked_add(1) {
                (&mut self.next.votes, self.config.max_future_rounds, false)
            } else {
                return;
            };
        if vote.round > max_round || book.holds(&vote) {
            return;
        }
        if let Err(reason) = authenticate_vote(&self.genesis, book.set(), &vote) {
            out.push(Output::Rejected { from: None, reason });
            return;
        }
        if let Added::Conflict {
            first: Some(first), ..
        } = book.add(vote.clone(), admit_conflict)
        {
            out.push(Output::Evidence(Evidence::ConflictingVotes {
                first: Box::new(first),
                second: Box::new(vote),
            }));
        }
    }

    pub(super) fn on_proposal(&mut self, p: SignedProposal, out: &mut Vec<Output>) {
        let height = p.height();
        if Some(height) == self.cur.height.checked_add(1) {
            self.buffer_proposal(p, out);
            return;
        }
        let max_round = self.cur.round.saturating_add(self.config.max_future_rounds);
        if height != self.cur.height || self.decided.is_some() || p.round > max_round {
            return;
        }
        let hash = p.block_hash();
        let records = self
            .cur
            .proposals
            .get(&p.round)
            .map_or(&[][..], Vec::as_slice);
        if records
            .iter()
            .any(|r| r.hash == hash && r.pol_round == p.pol_round)
            || records.len() >= MAX_PROPOSALS_PER_ROUND
        {
            return;
        }
        let proposer = match authenticate_proposal(self.cur.votes.set(), &p, &hash) {
            Ok(index) => index,
            Err((from, reason)) => {
                out.push(Output::Rejected { from, reason });
                return;
            }
        };
        if let Some(first) = records.first() {
            let first = SignedProposal {
                block: self.cur.blocks[&first.hash].block.clone(),
                round: p.round,
                pol_round: first.pol_round,
                signature: first.signature,
            };
            out.push(Output::Evidence(Evidence::ConflictingProposals {
                first: Box::new(first),
                second: Box::new(p.clone()),
            }));
        }
        self.cur.votes.note_proposer(p.round, proposer);
        let context =
            proposal::check_proposal(self.cur.votes.set(), p.round, p.pol_round, &p.block.header);
        let (tip, genesis, limits) = (&self.tip, &self.genesis, self.config.limits);
        let candidate = self.cur.blocks.entry(hash).or_insert_with(|| Candidate {
            verdict: proposal::check_block(tip, genesis, &p.block, limits, true),
            block: p.block,
        });
        let verdict = context.and_then(|()| candidate.verdict.clone());
        if let Err(reason) = &verdict {
            out.push(Output::Rejected {
                from: Some(proposer),
                reason: reason.clone(),
            });
        }
        self.cur
            .proposals
            .entry(p.round)
            .or_default()
            .push(ProposalRecord {
                hash,
                pol_round: p.pol_round,
                signature: p.signature,
                proposer,
                verdict,
            });
    }

    fn buffer_proposal(&mut self, p: SignedProposal, out: &mut Vec<Output>) {
        if p.round > self.config.max_future_rounds || self.next.proposals.contains_key(&p.round) {
            return;
        }
        let hash = p.block_hash();
        match authenticate_proposal(self.next.votes.set(), &p, &hash) {
            Ok(index) => {
                self.next.votes.note_proposer(p.round, index);
                self.next.proposals.insert(p.round, p);
            }
            Err((from, reason)) => out.push(Output::Rejected { from, reason }),
        }
    }

    fn on_events(
        &mut self,
        height: u64,
        round: u32,
        events: Vec<SignedEvent>,
        now_ms: u64,
        out: &mut Vec<Output>,
    ) {
        if self.decided.is_some()
            || height != self.cur.height
            || round != self.cur.round
            || self.cur.step != Step::Propose
            || self.cur.awaiting_events != Some(round)
        {
            return;
        }
        self.cur.awaiting_events = None;
        let Some(key) = &self.key else { return };
        let timestamp = now_ms.max(self.tip.header.timestamp_ms);
        let block = proposal::build_block(
            &self.tip,
            &self.genesis,
            key.public_key(),
            events,
            timestamp,
            self.config.limits,
        );
        // Built from validated events only: valid by construction.
        let hash = block.header.hash();
        self.cur.blocks.entry(hash).or_insert_with(|| Candidate {
            block: block.clone(),
            verdict: Ok(()),
        });
        self.propose(block, None, out);
    }

    fn on_finalized_from_peer(&mut self, block: FinalizedBlock, out: &mut Vec<Output>) {
        let height = block.height();
        if height < self.tip.height() {
            return;
        }
        let hash = block.block.header.hash();
        let known = match &self.decided {
            Some(ours) => Some((ours.height(), ours.block.header.hash())),
            None => Some((self.tip.height(), self.tip.hash)),
        };
        if let Some((ours_height, ours)) = known.filter(|(h, _)| *h == height) {
            if ours != hash {
                out.push(Output::Rejected {
                    from: None,
                    reason: ConsensusError::ConflictingFinalized {
                        height: ours_height,
                        ours,
                        theirs: hash,
                    },
                });
            }
            return;
        }
        if self.decided.is_some() || height != self.cur.height {
            out.push(Output::Rejected {
                from: None,
                reason: ConsensusError::NotNextHeight {
                    expected: self.tip.next_height(),
                    got: height,
                },
            });
            return;
        }
        if block.commit.height != height || block.commit.block_hash != hash {
            out.push(Output::Rejected {
                from: None,
                reason: ConsensusError::CommitMismatch {
                    height: block.commit.height,
                    block_hash: block.commit.block_hash,
                },
            });
            return;
        }
        // Its commit was verified by the caller: check what the commit does not cover (that
        // the events match the header) and that it extends our tip, at protocol limits.
        let limits = BlockLimits {
            max_events: MAX_BLOCK_EVENTS,
            max_bytes: usize::MAX,
        };
        if let Err(reason) =
            proposal::check_block(&self.tip, &self.genesis, &block.block, limits, false)
        {
            out.push(Output::Rejected { from: None, reason });
            return;
        }
        self.decided = Some(block.clone());
        out.push(Output::Finalized(Box::new(block)));
    }

    fn on_committed(&mut self, height: u64, now_ms: u64, out: &mut Vec<Output>) {
        let Some(block) = self.decided.as_ref().filter(|b| b.height() == height) else {
            return;
        };
        match self.tip.advance(block) {
            Ok(tip) => self.tip = tip,
            Err(e) => {
                out.push(Output::Rejected {
                    from: None,
                    reason: e.into(),
                });
                return;
            }
        }
        self.decided = None;
        let height = self.tip.next_height();
        let pending = std::mem::replace(
            &mut self.next,
            Pending::new(height.saturating_add(1), &self.genesis),
        );
        self.cur = HeightState::new(pending.votes, self.key.as_ref());
        self.start_height(now_ms, out);
        for (_, p) in pending.proposals {
            self.on_proposal(p, out);
        }
    }
}
