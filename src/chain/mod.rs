//! The audit chain's data model, its canonical encoding and hashing.

pub mod block;
pub mod chain_id;
pub mod checkpoint;
pub mod encoding;
pub mod event;
pub mod genesis;
pub mod hash;
pub mod header;
pub mod validator;

pub use block::{
    Block, Commit, CommitSig, FinalizedBlock, TrustedHeader, Vote, VoteKind, MAX_BLOCK_EVENTS,
};
pub use chain_id::{ChainId, ChainIdError};
pub use checkpoint::{Checkpoint, CheckpointError};
pub use encoding::{Decode, DecodeError, Encode, Reader, Writer};
pub use event::{AuditEvent, EventError, EventId, Outcome, SignedEvent};
pub use genesis::{Genesis, GenesisError};
pub use hash::{hash, hash_pair, Domain, Hash, HASH_LEN};
pub use header::{BlockHash, BlockHeader, PROTOCOL_VERSION};
pub use validator::{Validator, ValidatorSet, ValidatorSetError, MAX_TOTAL_POWER, MAX_VALIDATORS};
