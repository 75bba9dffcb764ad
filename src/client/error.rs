//! Errors users of the client see, each with a stable code (JS `Error.code`).

use serde::Serialize;

use super::store::StoreFailure;
use crate::light::LightError;

/// A stable, machine-readable error code. The text form (`as_str`) is part of the public JS
/// API: never rename one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// The configuration is invalid (bad field, bad bootnode address, bad option).
    InvalidConfig,
    /// The checkpoint does not parse or fails its checksum.
    InvalidCheckpoint,
    /// Peers serve another block at the checkpoint's height, or the store holds another
    /// checkpoint.
    CheckpointMismatch,
    /// The checkpoint is older than the trust period (and the client refuses it).
    CheckpointStale,
    /// A peer refused the handshake (another chain or genesis, another protocol version).
    HandshakeFailed,
    /// The network could not start or dial.
    Network,
    /// No peer was reachable in time.
    NoPeers,
    /// The operation did not finish in time.
    Timeout,
    /// Two validly signed headers at one height: the client stopped.
    ForkDetected,
    /// An event proof failed verification.
    InvalidProof,
    /// No peer knows the event.
    EventNotFound,
    /// No proof could be fetched (peers failed or left).
    ProofUnavailable,
    /// The browser's storage quota is exhausted; sync is paused.
    StoreQuotaExceeded,
    /// The store cannot be opened (blocked, or storage disabled).
    StoreUnavailable,
    /// Another client (another tab) holds the store.
    StoreLocked,
    /// Stored data is unreadable.
    StoreCorrupt,
    /// Any other store error.
    Store,
    /// The client was stopped, or stopped itself (fork, refused checkpoint).
    Stopped,
    /// A bug: please report it.
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidConfig => "INVALID_CONFIG",
            ErrorCode::InvalidCheckpoint => "INVALID_CHECKPOINT",
            ErrorCode::CheckpointMismatch => "CHECKPOINT_MISMATCH",
            ErrorCode::CheckpointStale => "CHECKPOINT_STALE",
            ErrorCode::HandshakeFailed => "HANDSHAKE_FAILED",
            ErrorCode::Network => "NETWORK",
            ErrorCode::NoPeers => "NO_PEERS",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::ForkDetected => "FORK_DETECTED",
            ErrorCode::InvalidProof => "INVALID_PROOF",
            ErrorCode::EventNotFound => "EVENT_NOT_FOUND",
            ErrorCode::ProofUnavailable => "PROOF_UNAVAILABLE",
            ErrorCode::StoreQuotaExceeded => "STORE_QUOTA_EXCEEDED",
            ErrorCode::StoreUnavailable => "STORE_UNAVAILABLE",
            ErrorCode::StoreLocked => "STORE_LOCKED",
            ErrorCode::StoreCorrupt => "STORE_CORRUPT",
            ErrorCode::Store => "STORE",
            ErrorCode::Stopped => "STOPPED",
            ErrorCode::Internal => "INTERNAL",
        }
    }

    /// Every code, for documentation and tests.
    pub const ALL: [ErrorCode; 19] = [
        ErrorCode::InvalidConfig,
        ErrorCode::InvalidCheckpoint,
        ErrorCode::CheckpointMismatch,
        ErrorCode::CheckpointStale,
        ErrorCode::HandshakeFailed,
        ErrorCode::Network,
        ErrorCode::NoPeers,
        ErrorCode::Timeout,
        ErrorCode::ForkDetected,
        ErrorCode::InvalidProof,
        ErrorCode::EventNotFound,
        ErrorCode::ProofUnavailable,
        ErrorCode::StoreQuotaExceeded,
        ErrorCode::StoreUnavailable,
        ErrorCode::StoreLocked,
        ErrorCode::StoreCorrupt,
        ErrorCode::Store,
        ErrorCode::Stopped,
        ErrorCode::Internal,
    ];
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<StoreFailure> for ErrorCode {
    fn from(failure: StoreFailure) -> ErrorCode {
        match failure {
            StoreFailure::QuotaExceeded => ErrorCode::StoreQuotaExceeded,
            StoreFailure::Unavailable => ErrorCode::StoreUnavailable,
            StoreFailure::Locked => ErrorCode::StoreLocked,
            StoreFailure::Corrupt => ErrorCode::StoreCorrupt,
            StoreFailure::Rejected | StoreFailure::Other => ErrorCode::Store,
        }
    }
}

/// An error with its code and a message for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ClientError {
    pub code: ErrorCode,
    pub message: String,
}

impl ClientError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ClientError {
        ClientError {
            code,
            message: message.into(),
        }
    }
}

impl From<LightError> for ClientError {
    fn from(e: LightError) -> ClientError {
        let code = match &e {
            LightError::InvalidOptions(_) => ErrorCode::InvalidConfig,
            LightError::Checkpoint(_) => ErrorCode::InvalidCheckpoint,
            LightError::StaleCheckpoint { .. } => ErrorCode::CheckpointStale,
            LightError::HeaderInFuture { .. } => ErrorCode::Network,
            LightError::Resume(_) => ErrorCode::StoreCorrupt,
            LightError::StoreCheckpointMismatch { .. } => ErrorCode::CheckpointMismatch,
            LightError::Store(_) => ErrorCode::Store,
            LightError::NotFound { .. } => ErrorCode::EventNotFound,
            LightError::InvalidProof(_) | LightError::WrongEvent { .. } => ErrorCode::InvalidProof,
            LightError::ProofUnavailable { .. } => ErrorCode::ProofUnavailable,
            LightError::ProofTimeout { .. } => ErrorCode::Timeout,
            LightError::Fork { .. } => ErrorCode::ForkDetected,
            LightError::Stopped(_) => ErrorCode::Stopped,
        };
        ClientError::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn codes_are_distinct_and_serialize_as_their_text() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{code:?}");
            assert_eq!(
                serde_json::to_string(&code).unwrap(),
                format!("\"{}\"", code.as_str())
            );
        }
    }

    #[test]
    fn store_failures_keep_their_kind() {
        assert_eq!(
            ErrorCode::from(StoreFailure::QuotaExceeded),
            ErrorCode::StoreQuotaExceeded
        );
        assert_eq!(
            ErrorCode::from(StoreFailure::Locked),
            ErrorCode::StoreLocked
        );
    }
}
