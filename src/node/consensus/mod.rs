//! Block production: Tendermint consensus (Buchman, Kwon, Milosevic, "The latest gossip on BFT
//! consensus", 2018) as a sans-I/O state machine.
//!
//! [`Consensus`] never touches a socket, a disk or a clock. The node feeds it [`Input`]s with
//! the current time and carries out the [`Output`]s, in order:
//!
//! - [`Output::Persist`]: store the [`SignState`] durably (replacing the previous one, fsync)
//!   **before carrying out any later output**. It records a message this node just signed,
//!   which a later `Broadcast` of the same batch sends; if it cannot be stored, the node must
//!   broadcast nothing more (the machine already counts the message as signed and would
//!   re-send it). On start the node gives the stored record back to [`Consensus::new`].
//! - [`Output::Broadcast`]: gossip the message to the other nodes (the machine has already
//!   received its own copy). A message this node signs is always preceded by its `Persist`;
//!   messages sent again (rebroadcast, a restored record, a proof-of-lock's prevotes) were
//!   recorded when signed.
//! - [`Output::ScheduleTimeout`]: feed [`Input::Timeout`] back at `at_ms` (stale timeouts are
//!   ignored, so timers never need cancelling).
//! - [`Output::NeedEvents`]: this node proposes; answer with [`Input::Events`] (for example
//!   `Mempool::take`). The proposal is built and broadcast on the answer.
//! - [`Output::Finalized`]: store the block, remove its events from the mempool, then feed
//!   [`Input::Committed`]. **The machine moves to the next height only on `Committed`**, so
//!   it never votes on a block whose parent is not durable; messages for the next height are
//!   kept meanwhile.
//! - [`Output::Rejected`] (log it; `from` names a validator whose signature proves the fault)
//!   and [`Output::Evidence`] (two conflicting signed messages of one validator).
//!
//! # Protocol
//!
//! Per height, rounds of propose → prevote → precommit, with `locked` and `valid` value and
//! round exactly as in the paper's Algorithm 1 (see `rules.rs`, which cites its line numbers),
//! so two blocks can never both collect more than 2/3 of the precommits of a height while
//! less than 1/3 of the power is faulty. The proposer of (h, r) is
//! `genesis.validators_at(h).proposer(h, r)`. Timeouts grow linearly with the round
//! ([`TimeoutConfig`]). Quorums are weighted by voting power: "2f + 1" is more than 2/3 of the
//! set's power, "f + 1" more than 1/3.
//!
//! - Votes sign exactly `chain::Vote::digest()` (nil as `Hash::ZERO`), so a decided block's
//!   precommits form a [`Commit`](crate::chain::Commit) that the light verifier accepts.
//!   Proposals sign [`SignedProposal::digest`].
//! - Every signature is checked here. Votes and proposals of the current height are kept for
//!   rounds up to `round + max_future_rounds`; those of the next height (rounds up to
//!   `max_future_rounds`, authenticated against the next height's set) are kept until it
//!   starts; anything else is dropped.
//! - A validator's first vote per (height, round, kind) counts; a different later one is
//!   equivocation, reported once as [`Evidence::ConflictingVotes`]. It never counts towards
//!   "more than 2/3 voted anything", nor twice for one value, but it does count towards its own
//!   value if that is a block held here: the paper counts every message received, and a node
//!   that heard an equivocator's other vote first must still see the proof-of-lock the others
//!   saw, or the honest nodes can stay split forever (the randomized tests find this within a
//!   few seeds when only first votes count). This is as safe: two values with more than 2/3
//!   each still need more than 1/3 equivocating. A proposer's second, different proposal for a
//!   round is reported as [`Evidence::ConflictingProposals`] and its block kept (not voted
//!   on) so it can still be decided if others commit it.
//! - This node signs at most one proposal per (height, round) and one vote per (height,
//!   round, kind), whatever inputs it gets, also across restarts: it signs at strictly
//!   increasing (height, round, step) points, and every signature is recorded first
//!   ([`SignState`]: the messages signed in the last round, the last one being the highest
//!   point, and the lock with its block and prevotes). Given the record back at start, the
//!   machine refuses to sign anything at a point below the last one, or at that point anything
//!   but the recorded message. If the record is at the height being decided, the machine
//!   resumes there: at its round and step, with its messages of that round restored as signed
//!   (votes sent again, a proposal proposed again) and its lock restored (also as its valid
//!   value, with the prevotes that prove it, so it can propose the block again). A record of a
//!   lower height constrains nothing; one of a higher height (a store behind what its key
//!   signed) keeps the machine from signing until the chain reaches that height. What is not
//!   restored (votes of earlier rounds, other nodes' messages, a valid value newer than the
//!   lock) costs at most some rounds.
//! - A proposal is checked in full before being prevoted ([`proposal`]): header fields equal
//!   to those the tip and the genesis schedule dictate, events matching the root and count,
//!   each event valid, no event twice, timestamp not before the parent nor more than
//!   `max_clock_drift_ms` past now, signed by the round's proposer, and a new block (no
//!   proof-of-lock round) naming that proposer. An invalid proposal from the right proposer is
//!   prevoted nil at once and reported with its reason; a proposal not signed by the round's
//!   proposer is not a proposal at all: it is reported and otherwise ignored (a nil prevote
//!   there would let any validator spoil other proposers' rounds).
//! - Gossip may lose messages: every `rebroadcast_ms` the machine re-sends what it signed at
//!   the current height (its proposal of the current round and all its votes). A proposal
//!   with a proof-of-lock round goes out with the prevotes that prove it. Votes of finished
//!   heights are not re-sent: a node that missed a height's decision, or fell behind, catches
//!   up with [`Input::FinalizedFromPeer`] (the node's sync), one block at a time, each answered
//!   by `Finalized` and confirmed by `Committed` like a decided block.
//!
//! A node without a key, or whose key is not in a height's set, runs the same machine and
//! finalizes what it observes without signing anything.

mod error;
mod messages;
pub mod proposal;
mod rules;
mod sign_state;
mod state;
mod tip;
mod votes;

pub use error::ConsensusError;
pub use messages::{Evidence, Message, SignedProposal, SignedVote};
pub use proposal::BlockLimits;
pub use sign_state::{LockProof, SignPoint, SignState};
pub use state::Consensus;
pub use tip::{ChainTip, TipError};

use crate::chain::{FinalizedBlock, SignedEvent, MAX_BLOCK_EVENTS};
use crate::verify::DEFAULT_MAX_CLOCK_DRIFT_MS;

/// A timeout growing linearly with the round: `base_ms + round × delta_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeoutConfig {
    pub base_ms: u64,
    pub delta_ms: u64,
}

impl TimeoutConfig {
    pub fn duration_ms(&self, round: u32) -> u64 {
        self.base_ms
            .saturating_add(self.delta_ms.saturating_mul(u64::from(round)))
    }
}

/// Consensus settings. Every validator of a chain should use the same limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsensusConfig {
    /// How long to wait for the round's proposal before prevoting nil.
    pub propose: TimeoutConfig,
    /// How long to wait, after more than 2/3 prevotes for different values, before
    /// precommitting nil.
    pub prevote: TimeoutConfig,
    /// How long to wait, after more than 2/3 precommits for different values, before moving
    /// to the next round.
    pub precommit: TimeoutConfig,
    /// How far past now a proposed block's timestamp may be.
    pub max_clock_drift_ms: u64,
    /// Size limits of the blocks this node proposes and accepts.
    pub limits: BlockLimits,
    /// Re-send this node's messages of the current height this often; `None`: never.
    pub rebroadcast_ms: Option<u64>,
    /// How many rounds ahead of the current one messages are kept.
    pub max_future_rounds: u32,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        ConsensusConfig {
            propose: TimeoutConfig {
                base_ms: 3_000,
                delta_ms: 500,
            },
            prevote: TimeoutConfig {
                base_ms: 1_000,
                delta_ms: 500,
            },
            precommit: TimeoutConfig {
                base_ms: 1_000,
                delta_ms: 500,
            },
            max_clock_drift_ms: DEFAULT_MAX_CLOCK_DRIFT_MS,
            limits: BlockLimits {
                max_events: MAX_BLOCK_EVENTS,
                // Below the 4 MiB message and response caps with room for the proposal or
                // FinalizedBlock envelope (header, commit, next set): a block this size can
                // always be gossiped and served.
                max_bytes: (4 << 20) - (128 << 10),
            },
            rebroadcast_ms: Some(2_000),
            max_future_rounds: 10,
        }
    }
}

/// The step of a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    Propose,
    Prevote,
    Precommit,
}

/// What a timeout is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeoutKind {
    Propose,
    Prevote,
    Precommit,
    /// Re-send this node's messages (fires whatever the height and round).
    Rebroadcast,
}

/// A timer the machine asked for, fed back as [`Input::Timeout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timeout {
    pub height: u64,
    pub round: u32,
    pub kind: TimeoutKind,
}

/// What the node feeds the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A proposal from the network.
    Proposal(Box<SignedProposal>),
    /// A vote from the network.
    Vote(SignedVote),
    /// A timer scheduled by [`Output::ScheduleTimeout`] fired.
    Timeout(Timeout),
    /// The answer to [`Output::NeedEvents`] for that height and round.
    Events {
        height: u64,
        round: u32,
        events: Vec<SignedEvent>,
    },
    /// The next block, learned from a peer with a commit the caller verified (for example with
    /// `verify::Verifier` against the previous block). Blocks must come in height order.
    FinalizedFromPeer(Box<FinalizedBlock>),
    /// The block of that height, output as [`Output::Finalized`], is stored.
    Committed { height: u64 },
}

impl From<Message> for Input {
    fn from(m: Message) -> Input {
        match m {
            Message::Proposal(p) => Input::Proposal(p),
            Message::Vote(v) => Input::Vote(v),
        }
    }
}

/// What the machine asks the node to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Store this record of what this node signed durably, replacing the previous one,
    /// before carrying out the outputs after it (one of which broadcasts the message).
    Persist(Box<SignState>),
    /// Gossip this message to the other nodes.
    Broadcast(Message),
    /// Feed `Input::Timeout(timeout)` at `at_ms`.
    ScheduleTimeout { timeout: Timeout, at_ms: u64 },
    /// This node proposes at (height, round): feed `Input::Events` with at most `max_events`
    /// events and `max_bytes` bytes, oldest first.
    NeedEvents {
        height: u64,
        round: u32,
        max_events: usize,
        max_bytes: usize,
    },
    /// A block is final: store it, then feed `Input::Committed`.
    Finalized(Box<FinalizedBlock>),
    /// An input was not accepted. `from` is the validator whose signature proves it sent it.
    Rejected {
        from: Option<u32>,
        reason: ConsensusError,
    },
    /// Proof that a validator signed two conflicting messages.
    Evidence(Evidence),
}
