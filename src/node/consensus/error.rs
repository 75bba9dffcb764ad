//! Why consensus rejects a message, a proposed block or a block learned from a peer: one
//! variant per check.

use crate::chain::{BlockHash, ChainId, EventError, EventId, Hash};
use crate::crypto::ed25519::SignatureError;

/// The reason a consensus input is not accepted. Carried by
/// [`Output::Rejected`](super::Output::Rejected) so the node can log it and score the sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsensusError {
    // --- Message authentication -------------------------------------------------------------
    #[error(
        "validator index {index} is not in the set of {set_len} validators of height {height}"
    )]
    UnknownValidator {
        height: u64,
        index: u32,
        set_len: usize,
    },
    #[error("vote of validator {index} does not verify: {error}")]
    InvalidVoteSignature { index: u32, error: SignatureError },
    #[error("vote of validator {index} names the zero block hash (nil must be None)")]
    ZeroBlockHash { index: u32 },
    #[error("proposal for round {round} does not verify under its proposer (validator {expected}): {error}")]
    InvalidProposalSignature {
        round: u32,
        expected: u32,
        error: SignatureError,
    },
    #[error("validator {signer} signed a proposal for round {round}, whose proposer is validator {expected}")]
    NotProposer {
        round: u32,
        expected: u32,
        signer: u32,
    },

    // --- The proposal in its round -----------------------------------------------------------
    #[error("proof-of-lock round {pol_round} is not before the proposal's round {round}")]
    PolRoundNotBefore { round: u32, pol_round: u32 },
    #[error("a new block (no proof-of-lock round) must name the round's proposer {expected}, it names {got}")]
    WrongProposer { expected: String, got: String },
    #[error("block proposer {proposer} is not in the validator set")]
    ProposerNotInSet { proposer: String },

    // --- The block against the chain tip ---------------------------------------------------
    #[error("unsupported protocol version {got} (this build speaks {supported})")]
    UnsupportedVersion { supported: u32, got: u32 },
    #[error("block is for chain {got}, expected {expected}")]
    ChainIdMismatch { expected: ChainId, got: ChainId },
    #[error("block height {got}, expected {expected}")]
    WrongHeight { expected: u64, got: u64 },
    #[error("parent hash {got} is not the last finalized block {expected}")]
    ParentMismatch { expected: BlockHash, got: BlockHash },
    #[error("timestamp {got} ms is before the parent's {parent} ms")]
    TimestampBeforeParent { parent: u64, got: u64 },
    #[error("timestamp {got} ms is more than {max_drift} ms past now ({now} ms)")]
    TimestampInFuture { now: u64, max_drift: u64, got: u64 },
    #[error("MMR root {got} differs from the chain's {expected}")]
    MmrRootMismatch { expected: Hash, got: Hash },
    #[error("MMR leaf count {got}, expected {expected}")]
    MmrLeafCountMismatch { expected: u64, got: u64 },
    #[error("validators hash {got}, the set of this height hashes to {expected}")]
    ValidatorsHashMismatch { expected: Hash, got: Hash },
    #[error("next validators hash {got}, the set of the next height hashes to {expected}")]
    NextValidatorsHashMismatch { expected: Hash, got: Hash },
    #[error("header counts {header} events, the block carries {events}")]
    EventCountMismatch { header: u32, events: usize },
    #[error("{count} events, more than the maximum {max}")]
    TooManyEvents { count: usize, max: usize },
    #[error("block encodes to {bytes} bytes, more than the maximum {max}")]
    BlockTooLarge { bytes: usize, max: usize },
    #[error("events root {got} differs from the root of the events, {expected}")]
    EventsRootMismatch { expected: Hash, got: Hash },
    #[error("event {id} appears at positions {first} and {second}")]
    DuplicateEvent {
        id: EventId,
        first: usize,
        second: usize,
    },
    #[error("event {index} is invalid: {error}")]
    InvalidEvent { index: usize, error: EventError },

    // --- Finalized blocks learned from peers -----------------------------------------------
    #[error("finalized block at height {got}, the next height to finalize is {expected}")]
    NotNextHeight { expected: u64, got: u64 },
    #[error("the commit is for height {height}, block {block_hash}, not this block")]
    CommitMismatch { height: u64, block_hash: BlockHash },
    #[error(
        "block {theirs} is finalized at height {height} by a peer, this node finalized {ours}"
    )]
    ConflictingFinalized {
        height: u64,
        ours: BlockHash,
        theirs: BlockHash,
    },
    #[error("the chain tip cannot advance: {0}")]
    Tip(#[from] super::tip::TipError),
}
