//! What goes wrong in the light client: errors for callers, why a peer is dropped, and why a
//! request failed (as the driver reports it).

use std::fmt;

use crate::chain::{BlockHash, CheckpointError, EventId};
use crate::proof::EventProofError;
use crate::verify::VerifyError;

/// An error the light client reports to its user (in [`Action::Error`](super::Action) and
/// [`Action::EventVerified`](super::Action)), or returns from a constructor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LightError {
    #[error("invalid light client options: {0}")]
    InvalidOptions(String),
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error(
        "the trusted header at height {height} is {age_ms} ms old, older than the trust period \
         of {trust_period_ms} ms"
    )]
    StaleCheckpoint {
        height: u64,
        age_ms: u64,
        trust_period_ms: u64,
    },
    #[error(
        "header {height} is stamped {timestamp_ms} ms, past this clock ({now_ms} ms) plus the \
         allowed drift: is the clock behind?"
    )]
    HeaderInFuture {
        height: u64,
        timestamp_ms: u64,
        now_ms: u64,
    },
    #[error("cannot resume from the stored head: {0}")]
    Resume(String),
    #[error("the store holds checkpoint {stored}, the client was given {given}")]
    StoreCheckpointMismatch { stored: BlockHash, given: BlockHash },
    #[error("store: {0}")]
    Store(String),
    #[error("no peer asked knows event {event_id}")]
    NotFound { event_id: EventId },
    #[error("event proof rejected: {0}")]
    InvalidProof(EventProofError),
    #[error("the proof is for event {got}, not the requested {expected}")]
    WrongEvent { expected: EventId, got: EventId },
    #[error("no proof of event {event_id} could be fetched: {reason}")]
    ProofUnavailable { event_id: EventId, reason: String },
    #[error("no proof of event {event_id} within {timeout_ms} ms")]
    ProofTimeout { event_id: EventId, timeout_ms: u64 },
    #[error(
        "fork at height {height}: {ours} and {theirs} are both signed by more than two thirds of \
         the validator set"
    )]
    Fork {
        height: u64,
        ours: BlockHash,
        theirs: BlockHash,
    },
    #[error("the light client has stopped: {0}")]
    Stopped(StopReason),
}

impl LightError {
    /// How telling a failed proof attempt is, to report the most telling one when every peer
    /// failed: a bad proof beats "not found", which beats a transport failure.
    pub(crate) fn proof_rank(&self) -> u8 {
        match self {
            LightError::InvalidProof(_) | LightError::WrongEvent { .. } => 3,
            LightError::NotFound { .. } => 2,
            _ => 1,
        }
    }
}

/// Why the machine stopped for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Two validly signed headers at one height: see [`Action::ForkDetected`](super::Action).
    Fork { height: u64 },
    /// The trusted header is older than the trust period and the options say to refuse it.
    StaleCheckpoint { age_ms: u64 },
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Fork { height } => write!(f, "fork detected at height {height}"),
            StopReason::StaleCheckpoint { age_ms } => {
                write!(f, "refused a checkpoint {age_ms} ms old")
            }
        }
    }
}

/// Why the machine asks the driver to disconnect a peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DropReason {
    /// The peer served a header that fails verification.
    #[error("invalid header at height {height}: {error}")]
    InvalidHeader { height: u64, error: VerifyError },
    /// The peer served a checkpoint header that is not the checkpoint's block.
    #[error("checkpoint header: {0}")]
    CheckpointMismatch(CheckpointError),
    /// The peer served a header at a height whose header the client trusts without a commit (the
    /// checkpoint's block, or the stored head it resumed from), and it differs.
    #[error("header at height {height} contradicts the trusted header {trusted}")]
    ContradictsTrusted { height: u64, trusted: BlockHash },
    /// A response of the wrong kind or shape (heights out of order, too many headers, ...).
    #[error("malformed response: {0}")]
    Malformed(String),
    /// The peer served an event proof that does not verify.
    #[error("invalid event proof: {0}")]
    InvalidProof(EventProofError),
    /// Too many requests in a row failed or timed out.
    #[error("{failures} requests in a row failed")]
    Unresponsive { failures: u32 },
    /// The peer was dropped earlier for a fault and is avoided until `until_ms`.
    #[error("avoided until {until_ms} ms after an earlier fault")]
    Avoided { until_ms: u64 },
}

/// Why a request got no response, as the driver reports it in
/// [`Input::RequestFailed`](super::Input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestFailure {
    /// The driver's own timer ran out (the machine also times requests out itself).
    Timeout,
    /// The connection closed before the response.
    Disconnected,
    /// The stream could not be opened or the response could not be read or decoded.
    Transport(String),
}

impl fmt::Display for RequestFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestFailure::Timeout => f.write_str("timed out"),
            RequestFailure::Disconnected => f.write_str("disconnected"),
            RequestFailure::Transport(e) => write!(f, "transport: {e}"),
        }
    }
}
