//! What goes wrong in block sync: why a peer is reported, why a request failed, why the
//! machine stopped, and errors for callers.

use std::fmt;

use crate::chain::BlockHash;
use crate::verify::VerifyError;

/// An error returned to the caller of a constructor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error("invalid sync options: {0}")]
    InvalidOptions(String),
    #[error("cannot start from the store head: {0}")]
    Anchor(String),
}

/// Why a peer is reported (for a ban) and its work reassigned. Each is the peer's fault: the
/// data it sent is provably wrong, whatever the rest of the network says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    /// A header (alone, or inside a block) fails verification: bad signature, wrong parent,
    /// wrong set, ...
    #[error("invalid header at height {height}: {error}")]
    InvalidHeader { height: u64, error: VerifyError },
    /// A block whose body (or header) does not match the verified header at its height: its
    /// hash differs, or its events are not the ones the header commits to.
    #[error("block {height} does not match its verified header: {reason}")]
    BodyMismatch { height: u64, reason: String },
    /// A response of the wrong kind or shape (heights out of order, more than asked, ...).
    #[error("malformed response: {0}")]
    Malformed(String),
    /// A finalized block at a held height that differs from ours and is not validly signed.
    #[error("conflicting block at height {height} that does not verify: {error}")]
    InvalidConflict { height: u64, error: VerifyError },
}

/// Why a peer stops getting requests without being reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GiveUp {
    /// Too many failures or timeouts in a row.
    Unresponsive { failures: u32 },
    /// It was reported or given up earlier and is refused until `until_ms`.
    Avoided { until_ms: u64 },
}

/// Why a request got no usable response, as the driver reports it in
/// [`Input::RequestFailed`](super::Input), or as the machine decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestFailure {
    /// No response within the request timeout.
    Timeout,
    /// The request held the next height to apply for longer than the stall timeout.
    Stalled,
    /// The connection closed before the response.
    Disconnected,
    /// The peer answered with an error (rate limited, internal, ...).
    Refused(String),
    /// The stream could not be opened or the response could not be read or decoded.
    Transport(String),
}

impl fmt::Display for RequestFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestFailure::Timeout => f.write_str("timed out"),
            RequestFailure::Stalled => f.write_str("stalled"),
            RequestFailure::Disconnected => f.write_str("disconnected"),
            RequestFailure::Refused(e) => write!(f, "refused: {e}"),
            RequestFailure::Transport(e) => write!(f, "transport: {e}"),
        }
    }
}

/// Why the machine stopped for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Two validly finalized blocks at one height: see
    /// [`Action::ForkDetected`](super::Action). Finalized blocks are never rolled back, and
    /// the machine never chooses between them: an operator must.
    Fork { height: u64, ours: BlockHash },
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Fork { height, ours } => {
                write!(
                    f,
                    "conflicting finalized block at height {height} (ours {ours})"
                )
            }
        }
    }
}
