//! The votes of one height: who voted what in each round, the power behind each value, and
//! who showed up in a round at all (for the round skip).
//!
//! A validator's *first* vote per (round, kind) is the one that counts towards "more than 2/3
//! voted anything" and towards its value. A different later vote of the same validator is
//! equivocation: it is reported once, and counted towards *its own* value only if the caller
//! admits it (consensus admits votes for blocks it holds). This never counts anyone twice for
//! one value, so it is as safe as counting first votes only (two values with more than 2/3 each
//! still need more than 1/3 equivocating), and it keeps Tendermint live: the paper counts every
//! message received, so a node that first heard an equivocator's other vote must still see the
//! proof-of-lock that other nodes saw (CometBFT does the same for blocks a peer claims have a
//! majority).
//!
//! Votes are added after their signature was checked; this module only counts.

use std::collections::{BTreeMap, BTreeSet};

use super::messages::SignedVote;
use crate::chain::{BlockHash, CommitSig, ValidatorSet, VoteKind};

/// What adding a vote did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Added {
    /// The validator's first vote of this (round, kind): counted.
    Counted,
    /// A vote already held: ignored.
    Duplicate,
    /// A vote different from the validator's first one of this (round, kind). `first` is that
    /// first vote the first time the validator is caught (report it), `None` afterwards.
    /// `counted`: it was admitted and counted towards its value.
    Conflict {
        first: Option<SignedVote>,
        counted: bool,
    },
}

/// The votes for one value in one (round, kind).
#[derive(Clone, Debug, Default)]
struct ValueVotes {
    power: u64,
    /// By validator index (so commits come out sorted).
    votes: BTreeMap<u32, SignedVote>,
}

/// One (round, kind) tally.
#[derive(Clone, Debug, Default)]
struct Tally {
    /// Each validator's first vote.
    first: BTreeMap<u32, SignedVote>,
    /// Power of every validator with a vote here.
    power: u64,
    /// Per value (None = nil).
    by_value: BTreeMap<Option<BlockHash>, ValueVotes>,
    /// Validators whose conflict was already reported.
    reported: BTreeSet<u32>,
}

impl Tally {
    fn count(&mut self, vote: SignedVote, power: u64) {
        let value = self.by_value.entry(vote.block_hash).or_default();
        value.power += power;
        value.votes.insert(vote.validator_index, vote);
    }

    fn holds(&self, vote: &SignedVote) -> bool {
        self.by_value
            .get(&vote.block_hash)
            .is_some_and(|v| v.votes.contains_key(&vote.validator_index))
    }
}

#[derive(Clone, Debug, Default)]
struct RoundVotes {
    prevotes: Tally,
    precommits: Tally,
    /// Validators that sent any message (a vote or, as proposer, a proposal) in this round.
    participants: BTreeSet<u32>,
    participant_power: u64,
}

impl RoundVotes {
    fn tally(&self, kind: VoteKind) -> &Tally {
        match kind {
            VoteKind::Prevote => &self.prevotes,
            VoteKind::Precommit => &self.precommits,
        }
    }

    fn tally_mut(&mut self, kind: VoteKind) -> &mut Tally {
        match kind {
            VoteKind::Prevote => &mut self.prevotes,
            VoteKind::Precommit => &mut self.precommits,
        }
    }
}

/// The votes of one height, counted against its validator set.
#[derive(Clone, Debug)]
pub struct VoteBook {
    height: u64,
    set: ValidatorSet,
    rounds: BTreeMap<u32, RoundVotes>,
}

/// Whether `power` is more than a third of `set`'s total (Tendermint's f + 1).
fn is_one_third(set: &ValidatorSet, power: u64) -> bool {
    u128::from(power) * 3 > u128::from(set.total_power())
}

impl VoteBook {
    pub fn new(height: u64, set: ValidatorSet) -> Self {
        VoteBook {
            height,
            set,
            rounds: BTreeMap::new(),
        }
    }

    pub fn height(&self) -> u64 {
        self.height
    }

    pub fn set(&self) -> &ValidatorSet {
        &self.set
    }

    /// Whether this very vote (validator and value) is already held.
    pub fn holds(&self, vote: &SignedVote) -> bool {
        self.rounds
            .get(&vote.round)
            .is_some_and(|r| r.tally(vote.kind).holds(vote))
    }

    /// Adds a vote whose height, validator index and signature the caller checked. A
    /// conflicting vote is counted towards its value only if `admit_conflict`.
    pub fn add(&mut self, vote: SignedVote, admit_conflict: bool) -> Added {
        let Some(power) = self.set.get(vote.validator_index as usize).map(|v| v.power) else {
            return Added::Duplicate;
        };
        let index = vote.validator_index;
        let round = self.rounds.entry(vote.round).or_default();
        let tally = round.tally_mut(vote.kind);
        if tally.holds(&vote) {
            return Added::Duplicate;
        }
        let Some(first) = tally.first.get(&index) else {
            tally.power += power;
            tally.first.insert(index, vote.clone());
            tally.count(vote, power);
            Self::participate(round, index, power);
            return Added::Counted;
        };
        let first = tally.reported.insert(index).then(|| first.clone());
        if admit_conflict {
            tally.count(vote, power);
        }
        Added::Conflict {
            first,
            counted: admit_conflict,
        }
    }

    /// Records that `index` proposed in `round` (it counts for the round skip).
    pub fn note_proposer(&mut self, round: u32, index: u32) {
        if let Some(v) = self.set.get(index as usize) {
            let power = v.power;
            Self::participate(self.rounds.entry(round).or_default(), index, power);
        }
    }

    fn participate(round: &mut RoundVotes, index: u32, power: u64) {
        if round.participants.insert(index) {
            round.participant_power += power;
        }
    }

    /// More than 2/3 of the power voted (anything) in (round, kind).
    pub fn has_quorum_any(&self, round: u32, kind: VoteKind) -> bool {
        self.rounds
            .get(&round)
            .is_some_and(|r| self.set.is_supermajority(r.tally(kind).power))
    }

    /// More than 2/3 of the power voted `value` in (round, kind).
    pub fn has_quorum_for(&self, round: u32, kind: VoteKind, value: Option<BlockHash>) -> bool {
        self.rounds.get(&round).is_some_and(|r| {
            let power = r.tally(kind).by_value.get(&value).map_or(0, |v| v.power);
            self.set.is_supermajority(power)
        })
    }

    /// Every (round, block) with more than 2/3 of the precommits, lowest round first.
    pub fn precommit_quorums(&self) -> Vec<(u32, BlockHash)> {
        self.rounds
            .iter()
            .flat_map(|(round, r)| {
                r.precommits
                    .by_value
                    .iter()
                    .filter_map(move |(value, votes)| match value {
                        Some(hash) if self.set.is_supermajority(votes.power) => {
                            Some((*round, *hash))
                        }
                        _ => None,
                    })
            })
            .collect()
    }

    /// The highest round above `above` in which validators with more than 1/3 of the power
    /// sent a message (Tendermint's round skip).
    pub fn skip_target(&self, above: u32) -> Option<u32> {
        self.rounds
            .range(above.saturating_add(1)..)
            .rev()
            .find(|(_, r)| is_one_third(&self.set, r.participant_power))
            .map(|(round, _)| *round)
    }

    /// The votes of (round, kind) for `value`, by increasing validator index.
    pub fn votes_for(
        &self,
        round: u32,
        kind: VoteKind,
        value: Option<BlockHash>,
    ) -> impl Iterator<Item = &SignedVote> {
        self.rounds
            .get(&round)
            .and_then(|r| r.tally(kind).by_value.get(&value))
            .into_iter()
            .flat_map(|v| v.votes.values())
    }

    /// The precommits for `block_hash` in `round`, as commit signatures sorted by validator.
    pub fn commit_signatures(&self, round: u32, block_hash: &BlockHash) -> Vec<CommitSig> {
        self.votes_for(round, VoteKind::Precommit, Some(*block_hash))
            .map(SignedVote::commit_sig)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{ChainId, Hash};
    use crate::testkit;

    fn book() -> (VoteBook, Vec<crate::crypto::ed25519::SigningKey>) {
        let keys = testkit::keys(0, 4);
        let set = testkit::validator_set(&keys);
        let mut ordered = keys.clone();
        ordered.sort_by_key(|k| set.index_of(&k.public_key()));
        (VoteBook::new(1, set), ordered)
    }

    fn vote(
        keys: &[crate::crypto::ed25519::SigningKey],
        kind: VoteKind,
        round: u32,
        value: Option<BlockHash>,
        index: u32,
    ) -> SignedVote {
        let chain = ChainId::new("votes").unwrap();
        SignedVote::sign(kind, &chain, 1, round, value, index, &keys[index as usize])
    }

    #[test]
    fn quorum_needs_more_than_two_thirds() {
        let (mut book, keys) = book();
        let b = Some(Hash([1; 32]));
        for i in 0..2 {
            assert_eq!(
                book.add(vote(&keys, VoteKind::Prevote, 0, b, i), false),
                Added::Counted
            );
        }
        assert!(!book.has_quorum_any(0, VoteKind::Prevote));
        book.add(vote(&keys, VoteKind::Prevote, 0, None, 2), false);
        assert!(book.has_quorum_any(0, VoteKind::Prevote));
        assert!(!book.has_quorum_for(0, VoteKind::Prevote, b));
        book.add(vote(&keys, VoteKind::Prevote, 0, b, 3), false);
        assert!(book.has_quorum_for(0, VoteKind::Prevote, b));
        assert!(!book.has_quorum_any(0, VoteKind::Precommit));
    }

    #[test]
    fn second_different_vote_is_reported_once_and_counts_only_if_admitted() {
        let (mut book, keys) = book();
        let (x, y, z) = (Hash([1; 32]), Hash([2; 32]), Hash([3; 32]));
        let a = vote(&keys, VoteKind::Precommit, 2, Some(x), 1);
        let b = vote(&keys, VoteKind::Precommit, 2, Some(y), 1);
        let c = vote(&keys, VoteKind::Precommit, 2, Some(z), 1);
        assert_eq!(book.add(a.clone(), false), Added::Counted);
        assert_eq!(book.add(a.clone(), true), Added::Duplicate);
        assert_eq!(
            book.add(b.clone(), false),
            Added::Conflict {
                first: Some(a.clone()),
                counted: false
            }
        );
        assert!(!book.holds(&b));
        assert_eq!(book.commit_signatures(2, &y), vec![]);
        assert_eq!(
            book.add(c.clone(), true),
            Added::Conflict {
                first: None,
                counted: true
            }
        );
        assert_eq!(book.add(c.clone(), true), Added::Duplicate);
        assert_eq!(book.commit_signatures(2, &x), vec![a.commit_sig()]);
        assert_eq!(book.commit_signatures(2, &z), vec![c.commit_sig()]);
        // The "anything" tally counts the validator once.
        for i in [0, 2] {
            book.add(vote(&keys, VoteKind::Precommit, 2, Some(z), i), false);
        }
        assert!(book.has_quorum_for(2, VoteKind::Precommit, Some(z)));
        let (mut book2, _) = self::book();
        for i in [0, 1] {
            book2.add(vote(&keys, VoteKind::Precommit, 0, None, i), false);
        }
        book2.add(vote(&keys, VoteKind::Precommit, 0, Some(x), 1), true);
        assert!(!book2.has_quorum_any(0, VoteKind::Precommit));
    }

    #[test]
    fn skip_target_needs_more_than_a_third() {
        let (mut book, keys) = book();
        book.add(vote(&keys, VoteKind::Prevote, 5, None, 0), false);
        assert_eq!(book.skip_target(0), None);
        book.note_proposer(5, 1);
        assert_eq!(book.skip_target(0), Some(5));
        assert_eq!(book.skip_target(5), None);
        book.add(vote(&keys, VoteKind::Precommit, 7, None, 2), false);
        book.add(vote(&keys, VoteKind::Prevote, 7, None, 3), false);
        assert_eq!(book.skip_target(0), Some(7));
    }

    #[test]
    fn precommit_quorums_and_sorted_commit_signatures() {
        let (mut book, keys) = book();
        let h = Hash([9; 32]);
        for i in [3, 0, 2] {
            book.add(vote(&keys, VoteKind::Precommit, 1, Some(h), i), false);
        }
        assert_eq!(book.precommit_quorums(), vec![(1, h)]);
        let sigs = book.commit_signatures(1, &h);
        let indices: Vec<u32> = sigs.iter().map(|s| s.validator_index).collect();
        assert_eq!(indices, vec![0, 2, 3]);
    }
}
