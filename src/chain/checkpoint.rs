//! Checkpoints: the one thing a light client trusts without checking a signature.
//!
//! A checkpoint names a finalized block (chain id, height, block hash) and the validator set
//! that signs the *next* block (the set the header's `next_validators_hash` names), which is
//! what a client needs to verify the header after it.
//!
//! Text form, one line (fields separated by `:`):
//!
//! ```text
//! headway1:<chain id>:<height>:<block hash, 64 hex>:<validator set, hex of its canonical encoding>:<checksum, 8 hex>
//! ```
//!
//! The checksum is the first 4 bytes of unkeyed BLAKE3 over everything before the last `:`;
//! it catches a mangled paste before any network traffic. JSON form:
//! `{"chain_id", "height", "block_hash", "validators": [{"key", "power"}, ...]}`.
//! Both are parsed strictly: no unknown fields, no extra separators, canonical validator order;
//! the text must be exactly the canonical rendering (lowercase hex, no leading zeros).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::chain_id::{ChainId, ChainIdError};
use super::encoding::{Decode, Encode};
use super::hash::Hash;
use super::header::{BlockHash, BlockHeader};
use super::validator::ValidatorSet;

const TEXT_PREFIX: &str = "headway1";
const TEXT_FIELDS: usize = 6;

/// A trusted finalized block and the validator set that signs the block after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub chain_id: ChainId,
    pub height: u64,
    pub block_hash: BlockHash,
    /// The set that signs block `height + 1`.
    pub validators: ValidatorSet,
}

/// Why a checkpoint cannot be parsed or does not match a header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint text must start with '{TEXT_PREFIX}:'")]
    WrongPrefix,
    #[error("checkpoint text must have {TEXT_FIELDS} ':'-separated fields, found {0}")]
    FieldCount(usize),
    #[error("checkpoint chain id: {0}")]
    ChainId(#[from] ChainIdError),
    #[error("checkpoint height {0:?} is not a decimal u64")]
    Height(String),
    #[error("checkpoint block hash is not 64 hex digits")]
    BlockHash,
    #[error("checkpoint validator set: {0}")]
    Validators(String),
    #[error("checkpoint checksum does not match: the text was altered or mistyped")]
    Checksum,
    #[error("checkpoint text is not in canonical form (lowercase hex, no leading zeros)")]
    NotCanonical,
    #[error("checkpoint JSON: {0}")]
    Json(String),
    #[error("header is for chain {got}, checkpoint for {expected}")]
    ChainMismatch { expected: ChainId, got: ChainId },
    #[error("header is at height {got}, checkpoint at {expected}")]
    HeightMismatch { expected: u64, got: u64 },
    #[error("header hash {got} differs from the checkpoint's {expected}")]
    HashMismatch { expected: BlockHash, got: BlockHash },
    #[error("header names next validator set {got}, checkpoint carries {expected}")]
    ValidatorsMismatch { expected: Hash, got: Hash },
}

fn checksum(body: &str) -> String {
    hex::encode(&blake3::hash(body.as_bytes()).as_bytes()[..4])
}

impl Checkpoint {
    /// The one-line text form.
    pub fn to_text(&self) -> String {
        let body = format!(
            "{TEXT_PREFIX}:{}:{}:{}:{}",
            self.chain_id,
            self.height,
            self.block_hash,
            hex::encode(self.validators.encode())
        );
        let sum = checksum(&body);
        format!("{body}:{sum}")
    }

    /// Parses the one-line text form (surrounding whitespace is ignored).
    pub fn from_text(text: &str) -> Result<Checkpoint, CheckpointError> {
        let text = text.trim();
        let fields: Vec<&str> = text.split(':').collect();
        if fields.first() != Some(&TEXT_PREFIX) {
            return Err(CheckpointError::WrongPrefix);
        }
        let [_, chain_id, height, block_hash, validators, sum] = fields[..] else {
            return Err(CheckpointError::FieldCount(fields.len()));
        };
        let body_len = text.len() - sum.len() - 1;
        if checksum(&text[..body_len]) != sum {
            return Err(CheckpointError::Checksum);
        }
        let chain_id = ChainId::new(chain_id)?;
        // `u64::from_str` accepts a leading '+'; the canonical form does not.
        if height.is_empty() || !height.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CheckpointError::Height(height.into()));
        }
        let height = height
            .parse()
            .map_err(|_| CheckpointError::Height(height.into()))?;
        let block_hash = Hash::from_hex(block_hash).map_err(|_| CheckpointError::BlockHash)?;
        let bytes =
            hex::decode(validators).map_err(|e| CheckpointError::Validators(e.to_string()))?;
        let validators =
            ValidatorSet::decode(&bytes).map_err(|e| CheckpointError::Validators(e.to_string()))?;
        let checkpoint = Checkpoint {
            chain_id,
            height,
            block_hash,
            validators,
        };
        // One text per checkpoint: lowercase hex, no leading zeros.
        if checkpoint.to_text() != text {
            return Err(CheckpointError::NotCanonical);
        }
        Ok(checkpoint)
    }

    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn from_json(json: &str) -> Result<Checkpoint, CheckpointError> {
        serde_json::from_str(json).map_err(|e| CheckpointError::Json(e.to_string()))
    }

    /// Parses either form: JSON if it starts with `{`, text otherwise.
    pub fn parse(input: &str) -> Result<Checkpoint, CheckpointError> {
        if input.trim_start().starts_with('{') {
            Self::from_json(input)
        } else {
            Self::from_text(input)
        }
    }

    /// Builds the checkpoint for a finalized header and the set that signs its successor.
    pub fn for_header(
        header: &BlockHeader,
        next_validators: ValidatorSet,
    ) -> Result<Checkpoint, CheckpointError> {
        let checkpoint = Checkpoint {
            chain_id: header.chain_id.clone(),
            height: header.height,
            block_hash: header.hash(),
            validators: next_validators,
        };
        checkpoint.check_header(header)?;
        Ok(checkpoint)
    }

    /// Checks that `header` is the checkpointed block (chain, height, hash, next set).
    pub fn check_header(&self, header: &BlockHeader) -> Result<(), CheckpointError> {
        if header.chain_id != self.chain_id {
            return Err(CheckpointError::ChainMismatch {
                expected: self.chain_id.clone(),
                got: header.chain_id.clone(),
            });
        }
        if header.height != self.height {
            return Err(CheckpointError::HeightMismatch {
                expected: self.height,
                got: header.height,
            });
        }
        let got = header.hash();
        if got != self.block_hash {
            return Err(CheckpointError::HashMismatch {
                expected: self.block_hash,
                got,
            });
        }
        if header.next_validators_hash != self.validators.hash() {
            return Err(CheckpointError::ValidatorsMismatch {
                expected: self.validators.hash(),
                got: header.next_validators_hash,
            });
        }
        Ok(())
    }
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl FromStr for Checkpoint {
    type Err = CheckpointError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Checkpoint::parse(s)
    }
}
