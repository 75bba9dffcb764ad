//! Votes, commits, trusted headers and blocks.

use serde::{Deserialize, Serialize};

use super::chain_id::ChainId;
use super::encoding::{Decode, DecodeError, Encode, Reader, Writer};
use super::event::SignedEvent;
use super::hash::{hash, Domain, Hash};
use super::header::{BlockHash, BlockHeader};
use super::validator::{ValidatorSet, MAX_VALIDATORS};
use crate::crypto::ed25519::{Signature, SigningKey};

/// Most events one block may carry.
pub const MAX_BLOCK_EVENTS: usize = 10_000;

/// The two vote steps of a round (prevote, then precommit). Commits hold precommits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VoteKind {
    Prevote,
    Precommit,
}

impl VoteKind {
    fn tag(self) -> u8 {
        match self {
            VoteKind::Prevote => 1,
            VoteKind::Precommit => 2,
        }
    }
}

/// What a validator signs: the digest `hash(Domain::Vote, encode(vote))`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vote<'a> {
    pub kind: VoteKind,
    pub chain_id: &'a ChainId,
    pub height: u64,
    pub round: u32,
    pub block_hash: BlockHash,
}

impl Vote<'_> {
    pub fn digest(&self) -> Hash {
        let mut w = Writer::with_capacity(128);
        w.u8(self.kind.tag())
            .value(self.chain_id)
            .u64(self.height)
            .u32(self.round)
            .hash(&self.block_hash);
        hash(Domain::Vote, w.as_bytes())
    }

    pub fn sign(&self, key: &SigningKey) -> Signature {
        key.sign(self.digest().as_bytes())
    }
}

/// One validator's precommit signature, naming the validator by its index in the set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitSig {
    pub validator_index: u32,
    pub signature: Signature,
}

/// The precommits that finalize a block: signatures sorted by strictly increasing validator
/// index, from the set named by the header's `validators_hash`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Commit {
    pub height: u64,
    pub round: u32,
    pub block_hash: BlockHash,
    pub signatures: Vec<CommitSig>,
}

impl Commit {
    /// The precommit every signature of this commit signs.
    pub fn vote<'a>(&self, chain_id: &'a ChainId) -> Vote<'a> {
        Vote {
            kind: VoteKind::Precommit,
            chain_id,
            height: self.height,
            round: self.round,
            block_hash: self.block_hash,
        }
    }

    /// Builds a commit signed by the given validators of `set` (helper for producers and tests).
    pub fn sign(
        header: &BlockHeader,
        round: u32,
        set: &ValidatorSet,
        keys: &[&SigningKey],
    ) -> Commit {
        let block_hash = header.hash();
        let vote = Vote {
            kind: VoteKind::Precommit,
            chain_id: &header.chain_id,
            height: header.height,
            round,
            block_hash,
        };
        let digest = vote.digest();
        let mut signatures: Vec<CommitSig> = keys
            .iter()
            .filter_map(|k| {
                let index = set.index_of(&k.public_key())?;
                Some(CommitSig {
                    validator_index: index as u32,
                    signature: k.sign(digest.as_bytes()),
                })
            })
            .collect();
        signatures.sort_by_key(|s| s.validator_index);
        Commit {
            height: header.height,
            round,
            block_hash,
            signatures,
        }
    }
}

/// A header with the commit that finalizes it and, when the header hands over to a new
/// validator set, that new set (which must hash to `next_validators_hash`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedHeader {
    pub header: BlockHeader,
    pub commit: Commit,
    pub next_validators: Option<ValidatorSet>,
}

/// A block: its header and its signed events, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    pub header: BlockHeader,
    pub events: Vec<SignedEvent>,
}

/// A block with the commit that finalizes it and, at a hand-over, the set that signs the next
/// block: everything a full node stores and serves for one height.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinalizedBlock {
    pub block: Block,
    pub commit: Commit,
    pub next_validators: Option<ValidatorSet>,
}

impl FinalizedBlock {
    pub fn height(&self) -> u64 {
        self.block.header.height
    }

    /// The canonical encoding of [`FinalizedBlock::trusted_header`], written without building
    /// it (which would copy the commit).
    pub fn encode_trusted_header_to(&self, w: &mut Writer) {
        encode_trusted_header(
            w,
            &self.block.header,
            &self.commit,
            self.next_validators.as_ref(),
        );
    }

    /// The header part, as served to light clients.
    pub fn trusted_header(&self) -> TrustedHeader {
        TrustedHeader {
            header: self.block.header.clone(),
            commit: self.commit.clone(),
            next_validators: self.next_validators.clone(),
        }
    }
}

impl Encode for FinalizedBlock {
    fn encode_to(&self, w: &mut Writer) {
        w.value(&self.block)
            .value(&self.commit)
            .option(self.next_validators.as_ref());
    }
}

impl Decode for FinalizedBlock {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(FinalizedBlock {
            block: Block::decode_from(r)?,
            commit: Commit::decode_from(r)?,
            next_validators: r.option("next validator set")?,
        })
    }
}

impl Encode for CommitSig {
    fn encode_to(&self, w: &mut Writer) {
        w.u32(self.validator_index).value(&self.signature);
    }
}

impl Decode for CommitSig {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(CommitSig {
            validator_index: r.u32()?,
            signature: Signature::decode_from(r)?,
        })
    }
}

impl Encode for Commit {
    fn encode_to(&self, w: &mut Writer) {
        w.u64(self.height)
            .u32(self.round)
            .hash(&self.block_hash)
            .seq(&self.signatures);
    }
}

impl Decode for Commit {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Commit {
            height: r.u64()?,
            round: r.u32()?,
            block_hash: r.hash()?,
            signatures: r.seq("commit signatures", MAX_VALIDATORS)?,
        })
    }
}

fn encode_trusted_header(
    w: &mut Writer,
    header: &BlockHeader,
    commit: &Commit,
    next_validators: Option<&ValidatorSet>,
) {
    w.value(header).value(commit).option(next_validators);
}

impl Encode for TrustedHeader {
    fn encode_to(&self, w: &mut Writer) {
        encode_trusted_header(w, &self.header, &self.commit, self.next_validators.as_ref());
    }
}

impl Decode for TrustedHeader {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(TrustedHeader {
            header: BlockHeader::decode_from(r)?,
            commit: Commit::decode_from(r)?,
            next_validators: r.option("next validator set")?,
        })
    }
}

impl Encode for Block {
    fn encode_to(&self, w: &mut Writer) {
        w.value(&self.header).seq(&self.events);
    }
}

impl Decode for Block {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Block {
            header: BlockHeader::decode_from(r)?,
            events: r.seq("block events", MAX_BLOCK_EVENTS)?,
        })
    }
}
