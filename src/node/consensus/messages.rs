//! What validators gossip during consensus: signed proposals and signed votes, with their
//! canonical encoding (`chain::encoding`), and the evidence of a validator that equivocates.

use crate::chain::{
    hash, Block, BlockHash, ChainId, CommitSig, Decode, DecodeError, Domain, Encode, Hash, Reader,
    Vote, VoteKind, Writer,
};
use crate::crypto::ed25519::{self, PublicKey, Signature, SignatureError, SigningKey};

/// A block proposed for one round by that round's proposer.
///
/// `pol_round` is the proof-of-lock round (Tendermint's `validRound`): `Some(vr)` when the
/// block is one that more than 2/3 prevoted in round `vr < round` and is proposed again.
/// The signer is not named: the signature must verify under the key of the round's proposer,
/// `validators_at(height).proposer(height, round)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedProposal {
    pub block: Block,
    pub round: u32,
    pub pol_round: Option<u32>,
    pub signature: Signature,
}

impl SignedProposal {
    /// The digest a proposer signs:
    ///
    /// `hash(Domain::Vote, b"proposal" ‖ u64_le(height) ‖ u32_le(round) ‖ option(pol_round) ‖
    /// block_hash)`
    ///
    /// where `option(pol_round)` is the canonical `Option` encoding (byte 0, or byte 1 then
    /// `u32_le(pol_round)`) and `block_hash` the 32-byte header hash. It shares the vote domain
    /// but never a vote's input: a vote digest's input starts with its kind tag (1 or 2), a
    /// proposal digest's with `b'p'` (0x70). The chain id is covered by the block hash.
    pub fn digest(height: u64, round: u32, pol_round: Option<u32>, block_hash: &BlockHash) -> Hash {
        let mut w = Writer::with_capacity(64);
        w.raw(b"proposal").u64(height).u32(round);
        write_opt_u32(&mut w, pol_round);
        w.hash(block_hash);
        hash(Domain::Vote, w.as_bytes())
    }

    /// Signs `block` as the proposal of `round`.
    pub fn sign(block: Block, round: u32, pol_round: Option<u32>, key: &SigningKey) -> Self {
        let digest = Self::digest(block.header.height, round, pol_round, &block.header.hash());
        SignedProposal {
            signature: key.sign(digest.as_bytes()),
            block,
            round,
            pol_round,
        }
    }

    /// The height of the proposed block.
    pub fn height(&self) -> u64 {
        self.block.header.height
    }

    /// The hash of the proposed block.
    pub fn block_hash(&self) -> BlockHash {
        self.block.header.hash()
    }

    /// Checks the signature against `proposer`, given the block hash (computed by the caller,
    /// who needs it anyway).
    pub fn verify(
        &self,
        proposer: &PublicKey,
        block_hash: &BlockHash,
    ) -> Result<(), SignatureError> {
        let digest = Self::digest(self.height(), self.round, self.pol_round, block_hash);
        ed25519::verify(proposer, digest.as_bytes(), &self.signature)
    }
}

/// One validator's prevote or precommit. `block_hash: None` is a vote for nil.
///
/// A vote for a block signs exactly `chain::Vote { kind, chain_id, height, round, block_hash }
/// .digest()`, so precommits collected into a [`Commit`](crate::chain::Commit) verify with the
/// light verifier; a nil vote signs the same digest with `block_hash = Hash::ZERO` (which is
/// why `Some(Hash::ZERO)` is not a valid vote).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedVote {
    pub kind: VoteKind,
    pub height: u64,
    pub round: u32,
    pub block_hash: Option<BlockHash>,
    /// Index of the signer in `validators_at(height)`.
    pub validator_index: u32,
    pub signature: Signature,
}

impl SignedVote {
    /// The statement signed (nil is `Hash::ZERO`).
    pub fn vote<'a>(&self, chain_id: &'a ChainId) -> Vote<'a> {
        Vote {
            kind: self.kind,
            chain_id,
            height: self.height,
            round: self.round,
            block_hash: self.block_hash.unwrap_or(Hash::ZERO),
        }
    }

    /// Signs a vote as validator `validator_index`.
    pub fn sign(
        kind: VoteKind,
        chain_id: &ChainId,
        height: u64,
        round: u32,
        block_hash: Option<BlockHash>,
        validator_index: u32,
        key: &SigningKey,
    ) -> Self {
        let mut vote = SignedVote {
            kind,
            height,
            round,
            block_hash,
            validator_index,
            signature: Signature([0; 64]),
        };
        vote.signature = vote.vote(chain_id).sign(key);
        vote
    }

    pub fn verify(&self, chain_id: &ChainId, key: &PublicKey) -> Result<(), SignatureError> {
        let digest = self.vote(chain_id).digest();
        ed25519::verify(key, digest.as_bytes(), &self.signature)
    }

    /// The commit entry of a precommit.
    pub fn commit_sig(&self) -> CommitSig {
        CommitSig {
            validator_index: self.validator_index,
            signature: self.signature,
        }
    }

    /// Whether `other` is a different vote by the same validator for the same
    /// (height, round, kind): the two together prove equivocation.
    pub fn conflicts_with(&self, other: &SignedVote) -> bool {
        self.kind == other.kind
            && self.height == other.height
            && self.round == other.round
            && self.validator_index == other.validator_index
            && self.block_hash != other.block_hash
    }
}

/// A consensus message as gossiped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Proposal(Box<SignedProposal>),
    Vote(SignedVote),
}

impl Message {
    /// The height the message is about.
    pub fn height(&self) -> u64 {
        match self {
            Message::Proposal(p) => p.height(),
            Message::Vote(v) => v.height,
        }
    }
}

/// Proof that a validator misbehaved; both halves carry valid signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// Two different votes of one validator for one (height, round, kind). `first` is the one
    /// that counted (see the module `votes`).
    ConflictingVotes {
        first: Box<SignedVote>,
        second: Box<SignedVote>,
    },
    /// Two different blocks proposed by the proposer of one (height, round).
    ConflictingProposals {
        first: Box<SignedProposal>,
        second: Box<SignedProposal>,
    },
}

fn kind_tag(kind: VoteKind) -> u8 {
    // The same tags as in the vote digest (`chain::Vote`).
    match kind {
        VoteKind::Prevote => 1,
        VoteKind::Precommit => 2,
    }
}

fn kind_from_tag(tag: u8) -> Result<VoteKind, DecodeError> {
    match tag {
        1 => Ok(VoteKind::Prevote),
        2 => Ok(VoteKind::Precommit),
        tag => Err(DecodeError::InvalidTag {
            what: "vote kind",
            tag,
        }),
    }
}

fn write_opt_u32(w: &mut Writer, v: Option<u32>) {
    match v {
        None => w.u8(0),
        Some(v) => w.u8(1).u32(v),
    };
}

fn read_opt_u32(r: &mut Reader<'_>, what: &'static str) -> Result<Option<u32>, DecodeError> {
    match r.u8()? {
        0 => Ok(None),
        1 => Ok(Some(r.u32()?)),
        tag => Err(DecodeError::InvalidTag { what, tag }),
    }
}

/// `block ‖ u32 round ‖ option(u32 pol_round) ‖ signature`.
impl Encode for SignedProposal {
    fn encode_to(&self, w: &mut Writer) {
        w.value(&self.block).u32(self.round);
        write_opt_u32(w, self.pol_round);
        w.value(&self.signature);
    }
}

impl Decode for SignedProposal {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SignedProposal {
            block: Block::decode_from(r)?,
            round: r.u32()?,
            pol_round: read_opt_u32(r, "proof-of-lock round")?,
            signature: Signature::decode_from(r)?,
        })
    }
}

/// `u8 kind (1 prevote, 2 precommit) ‖ u64 height ‖ u32 round ‖ option(block hash) ‖
/// u32 validator index ‖ signature`. `Some(Hash::ZERO)` is rejected: it signs like nil.
impl Encode for SignedVote {
    fn encode_to(&self, w: &mut Writer) {
        w.u8(kind_tag(self.kind))
            .u64(self.height)
            .u32(self.round)
            .option(self.block_hash.as_ref())
            .u32(self.validator_index)
            .value(&self.signature);
    }
}

impl Decode for SignedVote {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let kind = kind_from_tag(r.u8()?)?;
        let height = r.u64()?;
        let round = r.u32()?;
        let block_hash: Option<Hash> = r.option("vote block hash")?;
        if block_hash == Some(Hash::ZERO) {
            return Err(DecodeError::Invalid {
                what: "vote",
                reason: "a vote for the zero block hash (nil is encoded as none)".into(),
            });
        }
        Ok(SignedVote {
            kind,
            height,
            round,
            block_hash,
            validator_index: r.u32()?,
            signature: Signature::decode_from(r)?,
        })
    }
}

/// `u8 tag (0 proposal, 1 vote) ‖ the message`.
impl Encode for Message {
    fn encode_to(&self, w: &mut Writer) {
        match self {
            Message::Proposal(p) => w.u8(0).value(p.as_ref()),
            Message::Vote(v) => w.u8(1).value(v),
        };
    }
}

impl Decode for Message {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(Message::Proposal(Box::new(SignedProposal::decode_from(r)?))),
            1 => Ok(Message::Vote(SignedVote::decode_from(r)?)),
            tag => Err(DecodeError::InvalidTag {
                what: "consensus message",
                tag,
            }),
        }
    }
}

/// `u8 tag (0 votes, 1 proposals) ‖ first ‖ second`.
impl Encode for Evidence {
    fn encode_to(&self, w: &mut Writer) {
        match self {
            Evidence::ConflictingVotes { first, second } => {
                w.u8(0).value(first.as_ref()).value(second.as_ref())
            }
            Evidence::ConflictingProposals { first, second } => {
                w.u8(1).value(first.as_ref()).value(second.as_ref())
            }
        };
    }
}

impl Decode for Evidence {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(Evidence::ConflictingVotes {
                first: Box::new(SignedVote::decode_from(r)?),
                second: Box::new(SignedVote::decode_from(r)?),
            }),
            1 => Ok(Evidence::ConflictingProposals {
                first: Box::new(SignedProposal::decode_from(r)?),
                second: Box::new(SignedProposal::decode_from(r)?),
            }),
            tag => Err(DecodeError::InvalidTag {
                what: "evidence",
                tag,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{Commit, Genesis};
    use crate::testkit;

    fn genesis() -> Genesis {
        let keys = testkit::keys(0, 4);
        Genesis::new(
            ChainId::new("messages").unwrap(),
            1_000,
            testkit::validator_set(&keys),
            Default::default(),
        )
        .unwrap()
    }

    #[test]
    fn proposal_round_trips_and_verifies() {
        let g = genesis();
        let key = testkit::key(0);
        let block = g.block().block;
        let p = SignedProposal::sign(block, 3, Some(1), &key);
        assert_eq!(SignedProposal::decode(&p.encode()), Ok(p.clone()));
        let msg = Message::Proposal(Box::new(p.clone()));
        assert_eq!(Message::decode(&msg.encode()), Ok(msg));
        assert_eq!(p.verify(&key.public_key(), &p.block_hash()), Ok(()));
        let mut other = p.clone();
        other.pol_round = None;
        assert!(other.verify(&key.public_key(), &p.block_hash()).is_err());
        assert!(p
            .verify(&testkit::key(1).public_key(), &p.block_hash())
            .is_err());
    }

    #[test]
    fn precommit_signature_is_a_commit_signature() {
        let g = genesis();
        let header = g.block().block.header;
        let key = testkit::key(2);
        let index = g.validators.index_of(&key.public_key()).unwrap() as u32;
        let v = SignedVote::sign(
            VoteKind::Precommit,
            &g.chain_id,
            header.height,
            0,
            Some(header.hash()),
            index,
            &key,
        );
        let commit = Commit::sign(&header, 0, &g.validators, &[&key]);
        assert_eq!(commit.signatures, vec![v.commit_sig()]);
        assert_eq!(v.verify(&g.chain_id, &key.public_key()), Ok(()));
    }

    #[test]
    fn nil_vote_signs_the_zero_hash_and_round_trips() {
        let g = genesis();
        let key = testkit::key(1);
        let v = SignedVote::sign(VoteKind::Prevote, &g.chain_id, 5, 2, None, 1, &key);
        let as_zero = Vote {
            kind: VoteKind::Prevote,
            chain_id: &g.chain_id,
            height: 5,
            round: 2,
            block_hash: Hash::ZERO,
        };
        assert_eq!(v.signature, as_zero.sign(&key));
        assert_eq!(SignedVote::decode(&v.encode()), Ok(v.clone()));
        let msg = Message::Vote(v);
        assert_eq!(Message::decode(&msg.encode()), Ok(msg));
    }

    #[test]
    fn decode_rejects_a_vote_for_the_zero_hash_and_bad_tags() {
        let g = genesis();
        let key = testkit::key(1);
        let mut v = SignedVote::sign(VoteKind::Prevote, &g.chain_id, 5, 2, None, 1, &key);
        v.block_hash = Some(Hash::ZERO);
        assert!(matches!(
            SignedVote::decode(&v.encode()),
            Err(DecodeError::Invalid { what: "vote", .. })
        ));
        let mut bytes = v.encode();
        bytes[0] = 3;
        assert_eq!(
            SignedVote::decode(&bytes),
            Err(DecodeError::InvalidTag {
                what: "vote kind",
                tag: 3
            })
        );
        assert_eq!(
            Message::decode(&[9]),
            Err(DecodeError::InvalidTag {
                what: "consensus message",
                tag: 9
            })
        );
    }

    #[test]
    fn proposal_digest_differs_from_every_vote_digest_input() {
        let d = SignedProposal::digest(1, 0, None, &Hash([7; 32]));
        let chain = ChainId::new("messages").unwrap();
        for kind in [VoteKind::Prevote, VoteKind::Precommit] {
            let v = Vote {
                kind,
                chain_id: &chain,
                height: 1,
                round: 0,
                block_hash: Hash([7; 32]),
            };
            assert_ne!(v.digest(), d);
        }
    }

    #[test]
    fn evidence_round_trips() {
        let g = genesis();
        let key = testkit::key(1);
        let a = SignedVote::sign(VoteKind::Prevote, &g.chain_id, 5, 2, None, 1, &key);
        let b = SignedVote::sign(
            VoteKind::Prevote,
            &g.chain_id,
            5,
            2,
            Some(Hash([1; 32])),
            1,
            &key,
        );
        assert!(a.conflicts_with(&b));
        let e = Evidence::ConflictingVotes {
            first: Box::new(a),
            second: Box::new(b),
        };
        assert_eq!(Evidence::decode(&e.encode()), Ok(e));
    }
}
