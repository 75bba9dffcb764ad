//! Algorithm 1 of Buchman, Kwon and Milosevic, "The latest gossip on BFT consensus" (2018):
//! the `upon` rules, the timeouts and the actions they take. Line numbers (L11, L22, ...) are
//! the paper's.
//!
//! After every input, [`Consensus::run_rules`] applies the rules until none fires. A rule that
//! fires "for the first time" is remembered per round in `HeightState::fired`.

use std::cmp::Ordering;

use super::messages::{Evidence, Message, SignedProposal, SignedVote};
use super::proposal;
use super::sign_state::{LockProof, SignPoint, SignState};
use super::state::{Candidate, Consensus, RULE_LOCK, RULE_PRECOMMIT_TIMEOUT, RULE_PREVOTE_TIMEOUT};
use super::votes::Added;
use super::{Output, Step, Timeout, TimeoutKind};
use crate::chain::{Block, BlockHash, Commit, FinalizedBlock, VoteKind, MAX_BLOCK_EVENTS};

fn kind_slot(kind: VoteKind) -> u8 {
    match kind {
        VoteKind::Prevote => 0,
        VoteKind::Precommit => 1,
    }
}

impl Consensus {
    pub(super) fn on_timeout(&mut self, t: Timeout, now_ms: u64, out: &mut Vec<Output>) {
        if t.kind == TimeoutKind::Rebroadcast {
            self.rebroadcast(out);
            if let Some(interval) = self.config.rebroadcast_ms {
                self.schedule(
                    TimeoutKind::Rebroadcast,
                    now_ms.saturating_add(interval),
                    out,
                );
            }
            return;
        }
        if self.decided.is_some() || t.height != self.cur.height || t.round != self.cur.round {
            return;
        }
        match (t.kind, self.cur.step) {
            // L57
            (TimeoutKind::Propose, Step::Propose) => {
                self.sign_vote(VoteKind::Prevote, None, out);
                self.cur.step = Step::Prevote;
            }
            // L61
            (TimeoutKind::Prevote, Step::Prevote) => {
                self.sign_vote(VoteKind::Precommit, None, out);
                self.cur.step = Step::Precommit;
            }
            // L65
            (TimeoutKind::Precommit, _) => {
                let next = self.cur.round.saturating_add(1);
                self.start_round(next, now_ms, out);
            }
            _ => {}
        }
    }

    // --- Actions ---------------------------------------------------------------------------

    pub(super) fn schedule(&self, kind: TimeoutKind, at_ms: u64, out: &mut Vec<Output>) {
        out.push(Output::ScheduleTimeout {
            timeout: Timeout {
                height: self.cur.height,
                round: self.cur.round,
                kind,
            },
            at_ms,
        });
    }

    /// Starts the current height: at round 0 or, if this node signed at this height before it
    /// restarted (its record is here), where it was: its lock restored with the block and the
    /// prevotes that prove it (also as its valid value, so it can propose it again), at the
    /// record's round and step, with the messages it signed there restored as signed (its votes
    /// sent again; `start_round` proposes its proposal again).
    pub(super) fn start_height(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        let Some(record) = self
            .signed
            .clone()
            .filter(|s| s.height() == self.cur.height && self.own_record(s))
        else {
            self.start_round(0, now_ms, out);
            return;
        };
        let (_, round, step) = record.point();
        if let Some(lock) = record.lock {
            let hash = lock.block.header.hash();
            let verdict = proposal::check_block(
                &self.tip,
                &self.genesis,
                &lock.block,
                self.config.limits,
                true,
            );
            // The block is kept whatever its verdict: the lock names a block held here.
            self.cur.locked = Some((lock.round, hash));
            if verdict.is_ok() {
                self.cur.valid = Some((lock.round, hash));
            }
            self.cur.blocks.entry(hash).or_insert(Candidate {
                block: lock.block,
                verdict,
            });
            // Votes are kept for rounds up to `max_future_rounds` past the current one.
            self.cur.round = round;
            for vote in lock.prevotes {
                self.on_vote(vote, out);
            }
        }
        let mut votes = Vec::new();
        for message in record.signed {
            match message {
                Message::Proposal(p) => {
                    self.cur.signed_proposals.insert(round, *p);
                }
                Message::Vote(vote) => votes.push(vote),
            }
        }
        // Proposes the restored proposal again, and nothing if the record is past it.
        self.start_round(round, now_ms, out);
        self.cur.step = step;
        for vote in votes {
            self.cur
                .signed_votes
                .insert((round, kind_slot(vote.kind)), vote.clone());
            out.push(Output::Broadcast(Message::Vote(vote.clone())));
            self.count_own_vote(vote, out);
        }
    }

    /// Whether `record` is one this node can resume from at the current height: its votes name
    /// this node's index, its proposal is for a round this node proposes. (Any record still
    /// bounds what the machine signs.)
    fn own_record(&self, record: &SignState) -> bool {
        let Some(index) = self.cur.own_index else {
            return false;
        };
        record.signed.iter().all(|m| match m {
            Message::Vote(v) => v.validator_index == index,
            Message::Proposal(p) => self.cur.proposer_index(p.round) == index,
        })
    }

    /// Whether this key signed at a point after `point`: then it may sign nothing at `point`.
    fn signed_after(&self, point: SignPoint) -> bool {
        self.signed.as_ref().is_some_and(|s| s.point() > point)
    }

    /// The check every signature passes before it leaves the machine. Returns the message to
    /// send: `msg` itself when it is past the last one signed (recorded first, with
    /// [`Output::Persist`]), the recorded message when `msg` is that message again; `None`
    /// (refused) when `msg` is at or below the last point signed and is not the recorded one.
    fn record_signature(&mut self, msg: Message, out: &mut Vec<Output>) -> Option<Message> {
        let point = msg.sign_point();
        let mut signed = Vec::new();
        if let Some(last) = &self.signed {
            match point.cmp(&last.point()) {
                Ordering::Less => return None,
                // Signatures are deterministic: the same statement signs to the same message.
                Ordering::Equal => return (*last.last() == msg).then_some(msg),
                Ordering::Greater => {}
            }
            let (height, round, _) = last.point();
            if (height, round) == (point.0, point.1) {
                signed = last.signed.clone();
            }
        }
        signed.push(msg.clone());
        // `locked` always names a block held here (a proposal's, or a restored lock's).
        let lock = self.cur.locked.map(|(round, hash)| LockProof {
            round,
            block: self.cur.blocks[&hash].block.clone(),
            prevotes: self
                .cur
                .votes
                .votes_for(round, VoteKind::Prevote, Some(hash))
                .cloned()
                .collect(),
        });
        let record = SignState { signed, lock };
        self.signed = Some(record.clone());
        out.push(Output::Persist(Box::new(record)));
        Some(msg)
    }

    /// `StartRound(round)` (L11).
    pub(super) fn start_round(&mut self, round: u32, now_ms: u64, out: &mut Vec<Output>) {
        self.cur.round = round;
        self.cur.step = Step::Propose;
        self.cur.awaiting_events = None;
        let at = now_ms.saturating_add(self.config.propose.duration_ms(round));
        self.schedule(TimeoutKind::Propose, at, out);
        if self.cur.own_index != Some(self.cur.proposer_index(round)) {
            return;
        }
        // Restored after a restart: the proposal this node signed for this round, again.
        if let Some(p) = self.cur.signed_proposals.get(&round).cloned() {
            self.broadcast_proposal(&p, out);
            self.on_proposal(p, out);
            return;
        }
        if self.signed_after((self.cur.height, round, Step::Propose)) {
            return;
        }
        match self.cur.valid {
            Some((valid_round, hash)) => {
                if let Some(c) = self.cur.blocks.get(&hash) {
                    let block = c.block.clone();
                    self.propose(block, Some(valid_round), out);
                }
            }
            None => {
                self.cur.awaiting_events = Some(round);
                out.push(Output::NeedEvents {
                    height: self.cur.height,
                    round,
                    max_events: self.config.limits.max_events.min(MAX_BLOCK_EVENTS),
                    max_bytes: self.config.limits.max_bytes,
                });
            }
        }
    }

    /// Signs and broadcasts the proposal of the current round, once, and receives it.
    pub(super) fn propose(&mut self, block: Block, pol_round: Option<u32>, out: &mut Vec<Output>) {
        let round = self.cur.round;
        let Some(key) = &self.key else { return };
        if self.cur.signed_proposals.contains_key(&round) {
            return;
        }
        let p = SignedProposal::sign(block, round, pol_round, key);
        let Some(Message::Proposal(p)) = self.record_signature(p.into(), out) else {
            return;
        };
        let p = *p;
        self.cur.signed_proposals.insert(round, p.clone());
        self.broadcast_proposal(&p, out);
        self.on_proposal(p, out);
    }

    /// Broadcasts a proposal and, if it has a proof-of-lock round, the prevotes that make it:
    /// every validator must be able to see the proof (L28) even if some voter equivocated or
    /// its votes were lost.
    fn broadcast_proposal(&self, p: &SignedProposal, out: &mut Vec<Output>) {
        out.push(Output::Broadcast(Message::Proposal(Box::new(p.clone()))));
        if let Some(vr) = p.pol_round {
            let hash = p.block_hash();
            for vote in self.cur.votes.votes_for(vr, VoteKind::Prevote, Some(hash)) {
                out.push(Output::Broadcast(Message::Vote(vote.clone())));
            }
        }
    }

    /// Signs, broadcasts and counts this node's vote of `kind` in the current round, unless it
    /// already signed one there (whatever drives the machine, it never signs two).
    fn sign_vote(&mut self, kind: VoteKind, value: Option<BlockHash>, out: &mut Vec<Output>) {
        let (Some(index), Some(key)) = (self.cur.own_index, &self.key) else {
            return;
        };
        let slot = (self.cur.round, kind_slot(kind));
        if self.decided.is_some() || self.cur.signed_votes.contains_key(&slot) {
            return;
        }
        let vote = SignedVote::sign(
            kind,
            &self.genesis.chain_id,
            self.cur.height,
            self.cur.round,
            value,
            index,
            key,
        );
        let Some(Message::Vote(vote)) = self.record_signature(vote.into(), out) else {
            return;
        };
        self.cur.signed_votes.insert(slot, vote.clone());
        out.push(Output::Broadcast(Message::Vote(vote.clone())));
        self.count_own_vote(vote, out);
    }

    fn count_own_vote(&mut self, vote: SignedVote, out: &mut Vec<Output>) {
        if let Added::Conflict {
            first: Some(first), ..
        } = self.cur.votes.add(vote.clone(), true)
        {
            // Only if another instance signed with this key at this height.
            out.push(Output::Evidence(Evidence::ConflictingVotes {
                first: Box::new(first),
                second: Box::new(vote),
            }));
        }
    }

    /// Sends again what this node signed at the current height (gossip may have lost it): the
    /// proposal of the current round (with its proof-of-lock) and every vote.
    fn rebroadcast(&self, out: &mut Vec<Output>) {
        if let Some(p) = self.cur.signed_proposals.get(&self.cur.round) {
            self.broadcast_proposal(p, out);
        }
        for vote in self.cur.signed_votes.values() {
            out.push(Output::Broadcast(Message::Vote(vote.clone())));
        }
    }

    fn decide(&mut self, round: u32, hash: BlockHash, out: &mut Vec<Output>) {
        let Some(candidate) = self.cur.blocks.get(&hash) else {
            return;
        };
        let block = candidate.block.clone();
        let next = self.cur.height.saturating_add(1);
        let next_validators = block
            .header
            .hands_over()
            .then(|| self.genesis.validators_at(next).clone());
        let finalized = FinalizedBlock {
            commit: Commit {
                height: self.cur.height,
                round,
                block_hash: hash,
                signatures: self.cur.votes.commit_signatures(round, &hash),
            },
            block,
            next_validators,
        };
        self.decided = Some(finalized.clone());
        out.push(Output::Finalized(Box::new(finalized)));
    }

    // --- Rules -----------------------------------------------------------------------------

    /// Applies the `upon` rules until none fires.
    pub(super) fn run_rules(&mut self, now_ms: u64, out: &mut Vec<Output>) {
        loop {
            if self.decided.is_some() {
                return;
            }
            // L49: more than 2/3 precommits for a block we hold and find valid, any round.
            let decision = self
                .cur
                .votes
                .precommit_quorums()
                .into_iter()
                .find(|(_, hash)| self.cur.blocks.get(hash).is_some_and(|c| c.verdict.is_ok()));
            if let Some((round, hash)) = decision {
                self.decide(round, hash, out);
                return;
            }
            // L55: more than 1/3 of the power is in a later round.
            if let Some(round) = self.cur.votes.skip_target(self.cur.round) {
                self.start_round(round, now_ms, out);
                continue;
            }
            if !self.round_rules(now_ms, out) {
                return;
            }
        }
    }

    /// The rules about the current round; true if the state changed.
    fn round_rules(&mut self, now_ms: u64, out: &mut Vec<Output>) -> bool {
        let round = self.cur.round;
        if self.cur.step == Step::Propose && self.on_proposal_in_propose_step(now_ms, out) {
            return true;
        }
        if self.cur.step != Step::Propose && !self.cur.fired.contains(&(round, RULE_LOCK)) {
            // L36: a valid proposal of this round with more than 2/3 prevotes.
            let polka = self
                .cur
                .proposals
                .get(&round)
                .into_iter()
                .flatten()
                .find(|r| {
                    r.verdict.is_ok()
                        && self
                            .cur
                            .votes
                            .has_quorum_for(round, VoteKind::Prevote, Some(r.hash))
                })
                .map(|r| r.hash);
            if let Some(hash) = polka {
                self.cur.fired.insert((round, RULE_LOCK));
                if self.cur.step == Step::Prevote {
                    self.cur.locked = Some((round, hash));
                    self.sign_vote(VoteKind::Precommit, Some(hash), out);
                    self.cur.step = Step::Precommit;
                }
                self.cur.valid = Some((round, hash));
                return true;
            }
        }
        if self.cur.step == Step::Prevote {
            // L44: more than 2/3 prevotes for nil.
            if self
                .cur
                .votes
                .has_quorum_for(round, VoteKind::Prevote, None)
            {
                self.sign_vote(VoteKind::Precommit, None, out);
                self.cur.step = Step::Precommit;
                return true;
            }
            // L34: more than 2/3 prevotes for anything, first time.
            if self.cur.votes.has_quorum_any(round, VoteKind::Prevote)
                && self.cur.fired.insert((round, RULE_PREVOTE_TIMEOUT))
            {
                let at = now_ms.saturating_add(self.config.prevote.duration_ms(round));
                self.schedule(TimeoutKind::Prevote, at, out);
            }
        }
        // L47: more than 2/3 precommits for anything, first time.
        if self.cur.votes.has_quorum_any(round, VoteKind::Precommit)
            && self.cur.fired.insert((round, RULE_PRECOMMIT_TIMEOUT))
        {
            let at = now_ms.saturating_add(self.config.precommit.duration_ms(round));
            self.schedule(TimeoutKind::Precommit, at, out);
        }
        false
    }

    /// L22 and L28: prevote on the round's (first) proposal. True if this node prevoted.
    fn on_proposal_in_propose_step(&mut self, now_ms: u64, out: &mut Vec<Output>) -> bool {
        let round = self.cur.round;
        let Some(record) = self.cur.proposals.get(&round).and_then(|r| r.first()) else {
            return false;
        };
        let record = record.clone();
        let vote = match (&record.verdict, record.pol_round) {
            // An invalid proposal gets a nil prevote at once (the reason was reported).
            (Err(_), _) => None,
            // L22: a new block.
            (Ok(()), None) => {
                let header = &self.cur.blocks[&record.hash].block.header;
                let fresh = proposal::timestamp_not_in_future(
                    header,
                    now_ms,
                    self.config.max_clock_drift_ms,
                );
                if let Err(reason) = fresh {
                    out.push(Output::Rejected {
                        from: Some(record.proposer),
                        reason,
                    });
                    None
                } else {
                    let free = self
                        .cur
                        .locked
                        .is_none_or(|(_, locked)| locked == record.hash);
                    free.then_some(record.hash)
                }
            }
            // L28: a block proposed again, once its proof-of-lock is here.
            (Ok(()), Some(vr)) => {
                if !self
                    .cur
                    .votes
                    .has_quorum_for(vr, VoteKind::Prevote, Some(record.hash))
                {
                    return false;
                }
                let free = self.cur.locked.is_none_or(|(locked_round, locked)| {
                    locked_round <= vr || locked == record.hash
                });
                free.then_some(record.hash)
            }
        };
        self.sign_vote(VoteKind::Prevote, vote, out);
        self.cur.step = Step::Prevote;
        true
    }
}
