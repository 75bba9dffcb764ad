//! Why a header is rejected: one variant per check.

use crate::chain::{BlockHash, ChainId, CheckpointError, Hash};
use crate::crypto::ed25519::SignatureError;

/// The reason a candidate header is not accepted as the next trusted header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("unsupported protocol version {got} (this build speaks {supported})")]
    UnsupportedVersion { supported: u32, got: u32 },
    #[error("header is for chain {got}, expected {expected}")]
    ChainIdMismatch { expected: ChainId, got: ChainId },
    #[error("header height {got} does not follow trusted height {trusted}")]
    NonSequentialHeight { trusted: u64, got: u64 },
    #[error("parent hash {got} is not the trusted block hash {expected}")]
    ParentHashMismatch { expected: BlockHash, got: BlockHash },
    #[error("timestamp {got} ms is before the parent's {parent} ms")]
    TimestampBeforeParent { parent: u64, got: u64 },
    #[error(
        "timestamp {got} ms is more than the allowed drift past now ({now} ms + {max_drift} ms)"
    )]
    TimestampInFuture { now: u64, max_drift: u64, got: u64 },
    #[error("MMR leaf count {got} differs from the height {expected}")]
    MmrLeafCountMismatch { expected: u64, got: u64 },
    #[error("a header with no events must have the zero events root")]
    EmptyEventsRoot,
    #[error("header is signed by validator set {got}, the trusted next set is {expected}")]
    ValidatorSetMismatch { expected: Hash, got: Hash },
    #[error("proposer {proposer} is not in the signing validator set")]
    ProposerNotInSet { proposer: String },
    #[error("commit is for height {got}, header is at {expected}")]
    CommitHeightMismatch { expected: u64, got: u64 },
    #[error("commit is for block {got}, header hashes to {expected}")]
    CommitHashMismatch { expected: BlockHash, got: BlockHash },
    #[error("signature from validator index {index}, but the set has {set_len} validators")]
    UnknownValidator { index: u32, set_len: usize },
    #[error("validator {index} signed twice")]
    DuplicateSigner { index: u32 },
    #[error(
        "commit signatures are not in increasing validator order (index {index} after {previous})"
    )]
    UnsortedSignatures { previous: u32, index: u32 },
    #[error("signed voting power {signed} of {total} is not more than two thirds")]
    InsufficientVotingPower { signed: u64, total: u64 },
    #[error("signature of validator {index} is invalid: {error}")]
    InvalidSignature { index: u32, error: SignatureError },
    #[error("header hands over to set {announced}, but carries no new validator set")]
    MissingNextValidators { announced: Hash },
    #[error("the new validator set hashes to {got}, the header announces {expected}")]
    NextValidatorsHashMismatch { expected: Hash, got: Hash },
    #[error("header does not change the validator set but carries one")]
    UnexpectedNextValidators,
    #[error("header contradicts the checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
}

/// A failure inside a range of headers: which one, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("header {position} of the range (height {height}): {error}")]
pub struct RangeError {
    /// Position of the failing header in the range (0-based).
    pub position: usize,
    pub height: u64,
    pub error: VerifyError,
}
