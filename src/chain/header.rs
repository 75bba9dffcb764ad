//! Block headers and block hashes.

use serde::{Deserialize, Serialize};

use super::chain_id::ChainId;
use super::encoding::{Decode, DecodeError, Encode, Reader, Writer};
use super::hash::{hash, Domain, Hash};
use crate::crypto::ed25519::PublicKey;

/// The protocol version this code speaks; headers carry it.
pub const PROTOCOL_VERSION: u32 = 1;

/// The hash of a block: `hash(Domain::BlockHeader, encode(header))`.
pub type BlockHash = Hash;

/// A block header. Its hash identifies the block; a commit of the signing set's votes
/// finalizes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockHeader {
    /// Protocol version ([`PROTOCOL_VERSION`]).
    pub version: u32,
    pub chain_id: ChainId,
    /// 0 for genesis.
    pub height: u64,
    /// Hash of the block at `height − 1`; [`Hash::ZERO`] for genesis.
    pub parent_hash: BlockHash,
    /// Proposer's clock, milliseconds since the Unix epoch; never before the parent's.
    pub timestamp_ms: u64,
    /// Merkle root of the block's event ids (see `proof::merkle`); [`Hash::ZERO`] if empty.
    pub events_root: Hash,
    pub event_count: u32,
    /// Root of the MMR over the hashes of all earlier blocks, heights `0..height`.
    pub mmr_root: Hash,
    /// Number of MMR leaves: always equal to `height`.
    pub mmr_leaf_count: u64,
    /// Hash of the validator set that signs this block.
    pub validators_hash: Hash,
    /// Hash of the validator set that signs the next block (differs at a hand-over).
    pub next_validators_hash: Hash,
    /// The validator that proposed this block; a member of the signing set.
    pub proposer: PublicKey,
}

impl BlockHeader {
    /// The block hash.
    pub fn hash(&self) -> BlockHash {
        hash(Domain::BlockHeader, &self.encode())
    }

    /// Whether this header announces a different validator set for the next block.
    pub fn hands_over(&self) -> bool {
        self.validators_hash != self.next_validators_hash
    }
}

impl Encode for BlockHeader {
    fn encode_to(&self, w: &mut Writer) {
        w.u32(self.version)
            .value(&self.chain_id)
            .u64(self.height)
            .hash(&self.parent_hash)
            .u64(self.timestamp_ms)
            .hash(&self.events_root)
            .u32(self.event_count)
            .hash(&self.mmr_root)
            .u64(self.mmr_leaf_count)
            .hash(&self.validators_hash)
            .hash(&self.next_validators_hash)
            .value(&self.proposer);
    }
}

impl Decode for BlockHeader {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(BlockHeader {
            version: r.u32()?,
            chain_id: ChainId::decode_from(r)?,
            height: r.u64()?,
            parent_hash: r.hash()?,
            timestamp_ms: r.u64()?,
            events_root: r.hash()?,
            event_count: r.u32()?,
            mmr_root: r.hash()?,
            mmr_leaf_count: r.u64()?,
            validators_hash: r.hash()?,
            next_validators_hash: r.hash()?,
            proposer: PublicKey::decode_from(r)?,
        })
    }
}
