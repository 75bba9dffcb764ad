//! What this node's key signed last, kept durably so that a validator restarted in the middle
//! of a height never signs a message that conflicts with one it signed before (CometBFT's
//! `LastSignState` in `priv_validator_state.json`).
//!
//! A key signs at strictly increasing *points* (height, round, step), steps ordered proposal <
//! prevote < precommit: the machine never signs at a point below or equal to one it already
//! signed at, except the very same message again. So the last message signed is all a
//! restarted machine needs to refuse every conflicting signature: anything below its point is
//! refused, and at that point only the recorded message itself may go out (again).
//!
//! The record holds a little more, so that the restart costs no liveness (the randomized
//! simulator in `tests/consensus.rs` deadlocks without each of these):
//!
//! - every message signed in the last round (proposal, prevote, precommit), not only the last:
//!   the machine re-sends its votes of the height until the height ends, and other nodes may
//!   be waiting for the prevote that a crash lost before it was re-sent;
//! - the lock at that height (Tendermint's `lockedRound`, `lockedValue`) with its proof, the
//!   block and the prevotes that locked it. The lock only changes when the node signs a
//!   precommit for a block, so the record written with each signature always holds the current
//!   lock. A restarted node that forgot its lock could prevote another block: not a double
//!   signature, but it breaks the locking rule Tendermint's safety rests on ("amnesia"). One
//!   that kept the lock without the block and its prevotes could deadlock the height: locked
//!   nodes prevote nil for every new block, and nobody can propose the locked block again
//!   with the proof-of-lock that unlocks the others.

use super::messages::{Message, SignedVote};
use super::Step;
use crate::chain::{
    Block, BlockHash, Decode, DecodeError, Encode, Genesis, Reader, VoteKind, Writer,
    MAX_VALIDATORS,
};
use crate::crypto::ed25519::PublicKey;

/// Where a signed message sits in its signer's order: (height, round, step).
pub type SignPoint = (u64, u32, Step);

/// Encoding version of [`SignState`].
const VERSION: u8 = 1;

/// What this node's key signed in the last round it signed in, and its lock at that height.
/// The node stores it (replacing the previous one) before the last message leaves the node,
/// and gives it back to [`Consensus::new`](super::Consensus::new) on start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignState {
    /// The messages signed in that round, in signing order (one to three, of one height and
    /// round, at increasing steps). The last is the highest [`point`](SignState::point)
    /// signed.
    pub signed: Vec<Message>,
    /// The block this node is locked on at that height, if any.
    pub lock: Option<LockProof>,
}

/// A lock: the node precommitted `block` in `round` because more than 2/3 prevoted it there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockProof {
    pub round: u32,
    pub block: Block,
    /// The prevotes for `block` in `round` the node held when it locked (its proof-of-lock).
    pub prevotes: Vec<SignedVote>,
}

impl Message {
    /// Where this message sits in its signer's order.
    pub fn sign_point(&self) -> SignPoint {
        match self {
            Message::Proposal(p) => (p.height(), p.round, Step::Propose),
            Message::Vote(v) => (
                v.height,
                v.round,
                match v.kind {
                    VoteKind::Prevote => Step::Prevote,
                    VoteKind::Precommit => Step::Precommit,
                },
            ),
        }
    }
}

impl SignState {
    /// The last message signed.
    pub fn last(&self) -> &Message {
        self.signed.last().expect("a sign state holds a message")
    }

    /// The highest point signed.
    pub fn point(&self) -> SignPoint {
        self.last().sign_point()
    }

    pub fn height(&self) -> u64 {
        self.point().0
    }

    /// `(round, block hash)` of the lock.
    pub fn locked(&self) -> Option<(u32, BlockHash)> {
        self.lock.as_ref().map(|l| (l.round, l.block.header.hash()))
    }

    /// Whether `key` signed every message of [`signed`](SignState::signed) as a validator of
    /// `genesis`'s chain: votes under the key their validator index names at their height,
    /// proposals under `key`. A record that fails this is not this key's: it must be neither
    /// trusted nor ignored (the node refuses to start).
    pub fn is_signed_by(&self, genesis: &Genesis, key: &PublicKey) -> bool {
        self.signed.iter().all(|m| match m {
            Message::Vote(v) => {
                let named = genesis
                    .validators_at(v.height)
                    .get(v.validator_index as usize)
                    .map(|val| &val.key);
                named == Some(key) && v.verify(&genesis.chain_id, key).is_ok()
            }
            Message::Proposal(p) => p.verify(key, &p.block_hash()).is_ok(),
        })
    }
}

impl Encode for LockProof {
    fn encode_to(&self, w: &mut Writer) {
        w.u32(self.round).value(&self.block).seq(&self.prevotes);
    }
}

impl Decode for LockProof {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(LockProof {
            round: r.u32()?,
            block: Block::decode_from(r)?,
            prevotes: r.seq("lock prevotes", MAX_VALIDATORS)?,
        })
    }
}

/// `u8 version (1) ‖ seq(message, as gossiped) ‖ option(u32 round ‖ block ‖ seq(prevote))`.
impl Encode for SignState {
    fn encode_to(&self, w: &mut Writer) {
        w.u8(VERSION).seq(&self.signed).option(self.lock.as_ref());
    }
}

/// Also checks that the parts fit together: one to three messages of one height and round at
/// increasing steps; a lock at that height, not after that round, whose prevotes are for its
/// block in its round; and a precommit for a block comes with the lock it sets.
impl Decode for SignState {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            VERSION => {}
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "sign state version",
                    tag,
                })
            }
        }
        let signed: Vec<Message> = r.seq("sign state messages", 3)?;
        let lock: Option<LockProof> = r.option("sign state lock")?;
        let invalid = |reason: &str| DecodeError::Invalid {
            what: "sign state",
            reason: reason.into(),
        };
        let Some(last) = signed.last() else {
            return Err(invalid("no message"));
        };
        let (height, round, _) = last.sign_point();
        let points: Vec<SignPoint> = signed.iter().map(Message::sign_point).collect();
        if points
            .windows(2)
            .any(|w| w[0] >= w[1] || (w[0].0, w[0].1) != (height, round))
        {
            return Err(invalid("messages not of one round at increasing steps"));
        }
        if let Some(lock) = &lock {
            let hash = lock.block.header.hash();
            if lock.block.header.height != height || lock.round > round {
                return Err(invalid("a lock of another height or a later round"));
            }
            if lock.prevotes.iter().any(|v| {
                (v.kind, v.height, v.round, v.block_hash)
                    != (VoteKind::Prevote, height, lock.round, Some(hash))
            }) {
                return Err(invalid("a lock proven by other votes than its prevotes"));
            }
        }
        if let Message::Vote(SignedVote {
            kind: VoteKind::Precommit,
            block_hash: Some(hash),
            ..
        }) = last
        {
            let locked = lock.as_ref().map(|l| (l.round, l.block.header.hash()));
            if locked != Some((round, *hash)) {
                return Err(invalid("a precommit for a block without the lock it sets"));
            }
        }
        Ok(SignState { signed, lock })
    }
}

impl From<SignedVote> for Message {
    fn from(v: SignedVote) -> Message {
        Message::Vote(v)
    }
}

impl From<super::messages::SignedProposal> for Message {
    fn from(p: super::messages::SignedProposal) -> Message {
        Message::Proposal(Box::new(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{ChainId, Hash};
    use crate::node::consensus::{ChainTip, SignedProposal};
    use crate::testkit;

    fn genesis() -> Genesis {
        let keys = testkit::keys(0, 4);
        Genesis::new(
            ChainId::new("sign-state").unwrap(),
            1_000,
            testkit::validator_set(&keys),
            Default::default(),
        )
        .unwrap()
    }

    /// Validator `key`'s vote at height 1.
    fn vote(g: &Genesis, kind: VoteKind, round: u32, value: Option<Hash>, key: u64) -> SignedVote {
        let key = testkit::key(key);
        let index = g.validators.index_of(&key.public_key()).unwrap() as u32;
        SignedVote::sign(kind, &g.chain_id, 1, round, value, index, &key)
    }

    fn block(g: &Genesis) -> Block {
        let tip = ChainTip::genesis(g);
        let header = tip.next_header(g, testkit::key(1).public_key(), &[], 2_000);
        Block {
            header,
            events: Vec::new(),
        }
    }

    fn lock(g: &Genesis, round: u32) -> LockProof {
        let block = block(g);
        let hash = block.header.hash();
        LockProof {
            round,
            prevotes: (0..3)
                .map(|k| vote(g, VoteKind::Prevote, round, Some(hash), k))
                .collect(),
            block,
        }
    }

    #[test]
    fn points_order_heights_then_rounds_then_steps() {
        let g = genesis();
        let p = SignedProposal::sign(block(&g), 2, None, &testkit::key(0));
        let prevote = vote(&g, VoteKind::Prevote, 1, None, 0);
        let precommit = vote(&g, VoteKind::Precommit, 1, None, 0);
        assert_eq!(Message::from(p).sign_point(), (1, 2, Step::Propose));
        assert_eq!(
            Message::from(prevote.clone()).sign_point(),
            (1, 1, Step::Prevote)
        );
        assert!(Message::from(prevote).sign_point() < Message::from(precommit).sign_point());
        assert!((3, 1, Step::Precommit) < (3, 2, Step::Propose));
        assert!((3, 9, Step::Precommit) < (4, 0, Step::Propose));
    }

    #[test]
    fn round_trips_and_rejects_what_does_not_fit_together() {
        let g = genesis();
        let lock2 = lock(&g, 2);
        let hash = lock2.block.header.hash();
        let proposal = SignedProposal::sign(lock2.block.clone(), 3, Some(2), &testkit::key(1));
        let states = [
            SignState {
                signed: vec![vote(&g, VoteKind::Prevote, 2, None, 1).into()],
                lock: None,
            },
            SignState {
                signed: vec![
                    vote(&g, VoteKind::Prevote, 2, Some(hash), 1).into(),
                    vote(&g, VoteKind::Precommit, 2, Some(hash), 1).into(),
                ],
                lock: Some(lock2.clone()),
            },
            SignState {
                signed: vec![
                    proposal.clone().into(),
                    vote(&g, VoteKind::Prevote, 3, Some(hash), 1).into(),
                    vote(&g, VoteKind::Precommit, 3, None, 1).into(),
                ],
                lock: Some(lock2.clone()),
            },
        ];
        for s in &states {
            assert_eq!(SignState::decode(&s.encode()).as_ref(), Ok(s));
        }
        assert_eq!(states[1].locked(), Some((2, hash)));
        assert_eq!(states[2].point(), (1, 3, Step::Precommit));
        let mut bytes = states[0].encode();
        bytes[0] = 2;
        assert!(matches!(
            SignState::decode(&bytes),
            Err(DecodeError::InvalidTag {
                what: "sign state version",
                tag: 2
            })
        ));
        let mut trailing = states[0].encode();
        trailing.push(0);
        assert!(SignState::decode(&trailing).is_err());
        let whole = states[2].encode();
        for cut in [0, 1, 40, whole.len() / 2, whole.len() - 1] {
            assert!(SignState::decode(&whole[..cut]).is_err(), "cut at {cut}");
        }
        let precommit2 = states[1].signed[1].clone();
        let other_lock = LockProof {
            prevotes: vec![vote(&g, VoteKind::Prevote, 1, Some(hash), 0)],
            ..lock2.clone()
        };
        for bad in [
            SignState {
                signed: Vec::new(),
                lock: None,
            },
            // Steps out of order, or of two rounds.
            SignState {
                signed: vec![precommit2.clone(), states[1].signed[0].clone()],
                lock: Some(lock2.clone()),
            },
            SignState {
                signed: vec![states[0].signed[0].clone(), states[2].signed[1].clone()],
                lock: None,
            },
            // A lock after the round, proven by a vote of another round, or missing.
            SignState {
                lock: Some(lock(&g, 3)),
                ..states[0].clone()
            },
            SignState {
                lock: Some(other_lock),
                ..states[0].clone()
            },
            SignState {
                lock: None,
                ..states[1].clone()
            },
            SignState {
                signed: vec![vote(&g, VoteKind::Precommit, 3, Some(hash), 1).into()],
                lock: Some(lock2.clone()),
            },
        ] {
            assert!(
                matches!(
                    SignState::decode(&bad.encode()),
                    Err(DecodeError::Invalid {
                        what: "sign state",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn is_signed_by_only_the_key_that_signed_it_on_this_chain() {
        let g = genesis();
        let mine = testkit::key(1).public_key();
        let other = testkit::key(2).public_key();
        let v = SignState {
            signed: vec![vote(&g, VoteKind::Prevote, 0, None, 1).into()],
            lock: None,
        };
        assert!(v.is_signed_by(&g, &mine));
        assert!(!v.is_signed_by(&g, &other));
        let foreign = Genesis::new(
            ChainId::new("another-chain").unwrap(),
            1_000,
            g.validators.clone(),
            Default::default(),
        )
        .unwrap();
        assert!(!v.is_signed_by(&foreign, &mine));
        let p = SignState {
            signed: vec![SignedProposal::sign(block(&g), 0, None, &testkit::key(1)).into()],
            lock: None,
        };
        assert!(p.is_signed_by(&g, &mine));
        assert!(!p.is_signed_by(&g, &other));
        // One message of another key spoils the record.
        let mixed = SignState {
            signed: vec![
                p.signed[0].clone(),
                vote(&g, VoteKind::Prevote, 0, None, 2).into(),
            ],
            lock: None,
        };
        assert!(!mixed.is_signed_by(&g, &mine));
    }
}
