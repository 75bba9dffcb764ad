//! What the light client hands to its store and how every store encodes it: per height the
//! header without its commit ([`StoredHeader`]); where the set hands over, the new validator
//! set and the commit ([`VerifiedHeader`]).
//!
//! A stored header is the header's canonical encoding (§ header encoding in
//! `docs/PROTOCOL.md`): its hash is recomputed on decode, so a store cannot serve a header
//! under a wrong hash. With a 10-byte chain id it is 238 bytes.
//!
//! A hand-over commit is kept as its verified quorum prefix only ([`quorum_commit`]). A
//! validator set is kept as a [`StoredValidators`]: in full, or as the change against the
//! previous stored set when that is smaller (at most [`MAX_DELTAS`] in a row). A store
//! rebuilds a set from the last full set and the deltas after it ([`SetWalk`]) and checks it
//! against the `next_validators_hash` of a stored header ([`check_set`]), so a corrupt store
//! cannot hand out a wrong set. The in-memory store and the IndexedDB store share this code
//! and so store the same bytes (see "Light-client store layout" in `docs/PROTOCOL.md`).

use crate::chain::{
    BlockHash, BlockHeader, Commit, Decode, DecodeError, Encode, Reader, Validator, ValidatorSet,
    Writer, MAX_VALIDATORS,
};
use crate::crypto::ed25519::PublicKey;

/// One verified header as a store keeps it: the header (no commit) and its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredHeader {
    pub header: BlockHeader,
    /// `header.hash()`, computed once.
    pub hash: BlockHash,
}

impl StoredHeader {
    pub fn new(header: BlockHeader) -> StoredHeader {
        StoredHeader {
            hash: header.hash(),
            header,
        }
    }

    pub fn height(&self) -> u64 {
        self.header.height
    }
}

/// The header's canonical encoding; the hash is not stored.
impl Encode for StoredHeader {
    fn encode_to(&self, w: &mut Writer) {
        self.header.encode_to(w);
    }
}

impl Decode for StoredHeader {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(StoredHeader::new(BlockHeader::decode_from(r)?))
    }
}

/// One height the client verified, as it hands it to the driver in
/// [`Action::StoreHeaders`](super::Action).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedHeader {
    pub header: StoredHeader,
    /// The set that signs `height + 1`: present at the anchor (the checkpoint's block) and
    /// where the header hands over to a new set; `None` where the set stays the same.
    pub next_validators: Option<ValidatorSet>,
    /// The commit that finalized the header, kept only at a hand-over (where it is the
    /// evidence that the old set approved the new one), trimmed to its verified quorum
    /// prefix ([`quorum_commit`]).
    pub commit: Option<Commit>,
}

impl VerifiedHeader {
    pub fn height(&self) -> u64 {
        self.header.height()
    }
}

impl Encode for VerifiedHeader {
    fn encode_to(&self, w: &mut Writer) {
        w.value(&self.header)
            .option(self.next_validators.as_ref())
            .option(self.commit.as_ref());
    }
}

impl Decode for VerifiedHeader {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(VerifiedHeader {
            header: StoredHeader::decode_from(r)?,
            next_validators: r.option("stored next validator set")?,
            commit: r.option("stored hand-over commit")?,
        })
    }
}

// ---- hand-over commits: the verified quorum prefix only ----------------------------------

/// The shortest prefix of `commit`'s signatures holding more than 2/3 of `signers`' power:
/// exactly the signatures the verifier checks cryptographically
/// ([`sufficient_distinct_signers`](crate::verify::predicates::sufficient_distinct_signers)).
/// The signatures after it were never checked, so they add nothing as evidence; the prefix
/// alone still passes the same light rule. A commit that does not reach the threshold (never
/// the case for a verified one) is returned whole.
pub fn quorum_commit(signers: &ValidatorSet, commit: &Commit) -> Commit {
    let needed = crate::verify::predicates::sufficient_distinct_signers(signers, commit)
        .unwrap_or(commit.signatures.len());
    Commit {
        height: commit.height,
        round: commit.round,
        block_hash: commit.block_hash,
        signatures: commit.signatures[..needed].to_vec(),
    }
}

// ---- validator sets: full, or a change against the previous stored set -------------------

/// Most deltas in a row: a full set is stored at least every `MAX_DELTAS + 1` sets, so
/// rebuilding a set reads at most `MAX_DELTAS + 1` stored entries.
pub const MAX_DELTAS: usize = 16;

/// A validator set as a store keeps it, under the height that announces it.
///
/// ```text
/// enc(StoredValidators) = 0x00 ‖ enc(ValidatorSet)
///                       | 0x01 ‖ enc(ValidatorDelta)
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredValidators {
    Full(ValidatorSet),
    Delta(ValidatorDelta),
}

/// The change from the set stored at `base_height` (the previous stored set) to this one.
///
/// ```text
/// enc(ValidatorDelta) = u64_le(base_height)
///                     ‖ u32_le(r) ‖ u32_le(index)^r             removed, strictly increasing
///                     ‖ u32_le(p) ‖ (u32_le(index) ‖ u64_le(power))^p   strictly increasing
///                     ‖ u32_le(a) ‖ (key (32 bytes) ‖ u64_le(power))^a  strictly increasing keys
/// ```
///
/// Indices are positions in the base set. Canonical: a power change names a kept validator
/// and a different non-zero power; an added key is not in the base set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorDelta {
    pub base_height: u64,
    /// Base-set indices of the validators that leave.
    pub removed: Vec<u32>,
    /// Base-set indices of the validators that stay with another power, and that power.
    pub powers: Vec<(u32, u64)>,
    /// The validators that join, sorted by key.
    pub added: Vec<Validator>,
}

impl ValidatorDelta {
    /// The change from `base` (stored at `base_height`) to `next`.
    pub fn between(base_height: u64, base: &ValidatorSet, next: &ValidatorSet) -> ValidatorDelta {
        let (old, new) = (base.validators(), next.validators());
        let mut delta = ValidatorDelta {
            base_height,
            removed: Vec::new(),
            powers: Vec::new(),
            added: Vec::new(),
        };
        let (mut i, mut j) = (0, 0);
        while i < old.len() || j < new.len() {
            let order = match (old.get(i), new.get(j)) {
                (Some(o), Some(n)) => o.key.as_bytes().cmp(n.key.as_bytes()),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            match order {
                std::cmp::Ordering::Less => {
                    delta.removed.push(i as u32);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    delta.added.push(new[j].clone());
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    if old[i].power != new[j].power {
                        delta.powers.push((i as u32, new[j].power));
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
        delta
    }

    /// Applies the change to `base`; `Err` names what makes it invalid or non-canonical.
    pub fn apply(&self, base: &ValidatorSet) -> Result<ValidatorSet, String> {
        let old = base.validators();
        let in_base = |i: u32| -> Result<usize, String> {
            let i = i as usize;
            if i < old.len() {
                Ok(i)
            } else {
                Err(format!("index {i} outside the base set of {}", old.len()))
            }
        };
        let mut power: Vec<Option<u64>> = old.iter().map(|v| Some(v.power)).collect();
        for &r in &self.removed {
            power[in_base(r)?] = None;
        }
        for &(i, p) in &self.powers {
            let slot = &mut power[in_base(i)?];
            match *slot {
                None => return Err(format!("power change for removed validator {i}")),
                Some(current) if current == p => {
                    return Err(format!("power change to the same power at {i}"))
                }
                Some(_) => *slot = Some(p),
            }
        }
        let mut validators: Vec<Validator> = old
            .iter()
            .zip(power)
            .filter_map(|(v, p)| {
                p.map(|power| Validator {
                    key: v.key.clone(),
                    power,
                })
            })
            .collect();
        for a in &self.added {
            if base.index_of(&a.key).is_some() {
                return Err(format!("added key {} is in the base set", a.key.to_hex()));
            }
        }
        validators.extend(self.added.iter().cloned());
        ValidatorSet::new(validators).map_err(|e| e.to_string())
    }
}

fn strictly_increasing<T: PartialOrd>(items: impl Iterator<Item = T>) -> bool {
    let mut previous: Option<T> = None;
    for item in items {
        if previous.as_ref().is_some_and(|p| *p >= item) {
            return false;
        }
        previous = Some(item);
    }
    true
}

impl Encode for ValidatorDelta {
    fn encode_to(&self, w: &mut Writer) {
        w.u64(self.base_height).len(self.removed.len());
        for r in &self.removed {
            w.u32(*r);
        }
        w.len(self.powers.len());
        for (i, p) in &self.powers {
            w.u32(*i).u64(*p);
        }
        w.len(self.added.len());
        for v in &self.added {
            w.value(&v.key).u64(v.power);
        }
    }
}

impl Decode for ValidatorDelta {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let invalid = |reason: &str| DecodeError::Invalid {
            what: "validator set delta",
            reason: reason.to_owned(),
        };
        let base_height = r.u64()?;
        let n = r.len("removed validators", MAX_VALIDATORS)?;
        let removed = (0..n).map(|_| r.u32()).collect::<Result<Vec<_>, _>>()?;
        let n = r.len("power changes", MAX_VALIDATORS)?;
        let mut powers = Vec::with_capacity(n.min(r.remaining() / 12));
        for _ in 0..n {
            powers.push((r.u32()?, r.u64()?));
        }
        let n = r.len("added validators", MAX_VALIDATORS)?;
        let mut added = Vec::with_capacity(n.min(r.remaining() / 40));
        for _ in 0..n {
            let key = PublicKey::decode_from(r)?;
            added.push(Validator {
                key,
                power: r.u64()?,
            });
        }
        if !strictly_increasing(removed.iter()) {
            return Err(invalid("removed indices are not strictly increasing"));
        }
        if !strictly_increasing(powers.iter().map(|(i, _)| i)) {
            return Err(invalid("power changes are not strictly increasing"));
        }
        if !strictly_increasing(added.iter().map(|v| v.key.as_bytes())) {
            return Err(invalid("added keys are not strictly increasing"));
        }
        if powers.iter().any(|(_, p)| *p == 0) || added.iter().any(|v| v.power == 0) {
            return Err(invalid("zero voting power"));
        }
        Ok(ValidatorDelta {
            base_height,
            removed,
            powers,
            added,
        })
    }
}

impl StoredValidators {
    /// How `next` is stored after `previous` (the height, set and delta depth of the last
    /// stored set): as a delta when that is smaller and fewer than [`MAX_DELTAS`] deltas
    /// precede it, in full otherwise (always in full without a previous set).
    pub fn choose(previous: Option<&RebuiltSet>, next: &ValidatorSet) -> (StoredValidators, usize) {
        let full = StoredValidators::Full(next.clone());
        let Some(prev) = previous.filter(|p| p.depth < MAX_DELTAS) else {
            return (full, 0);
        };
        let delta = StoredValidators::Delta(ValidatorDelta::between(prev.height, &prev.set, next));
        if delta.encoded_len() < full.encoded_len() {
            (delta, prev.depth + 1)
        } else {
            (full, 0)
        }
    }

    fn encoded_len(&self) -> usize {
        match self {
            // Tag, count, 40 bytes per validator.
            StoredValidators::Full(set) => 1 + 4 + 40 * set.len(),
            StoredValidators::Delta(d) => {
                1 + 8 + 12 + 4 * d.removed.len() + 12 * d.powers.len() + 40 * d.added.len()
            }
        }
    }
}

impl Encode for StoredValidators {
    fn encode_to(&self, w: &mut Writer) {
        match self {
            StoredValidators::Full(set) => w.u8(0).value(set),
            StoredValidators::Delta(delta) => w.u8(1).value(delta),
        };
    }
}

impl Decode for StoredValidators {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(StoredValidators::Full(ValidatorSet::decode_from(r)?)),
            1 => Ok(StoredValidators::Delta(ValidatorDelta::decode_from(r)?)),
            tag => Err(DecodeError::InvalidTag {
                what: "stored validator set",
                tag,
            }),
        }
    }
}

/// A stored value that does not decode or does not fit the rest of the store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt {what} at height {height}: {reason}")]
pub struct CorruptEntry {
    pub what: &'static str,
    pub height: u64,
    pub reason: String,
}

impl CorruptEntry {
    pub(crate) fn new(what: &'static str, height: u64, reason: impl ToString) -> CorruptEntry {
        CorruptEntry {
            what,
            height,
            reason: reason.to_string(),
        }
    }
}

/// A set rebuilt from the store: announced at `height`, `depth` deltas after a full set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RebuiltSet {
    pub height: u64,
    pub set: ValidatorSet,
    pub depth: usize,
}

/// Rebuilds the set stored at a height, reading entries backwards (through each delta's
/// base) until a full set, then applying the deltas forwards. Driven by the store, which
/// reads what [`SetWalk::feed`] asks for (synchronously or not).
#[derive(Debug)]
pub(crate) struct SetWalk {
    height: u64,
    deltas: Vec<(u64, ValidatorDelta)>,
}

/// What a [`SetWalk`] needs next.
#[derive(Debug)]
pub(crate) enum Walk {
    /// The entry stored at this height.
    Read(u64),
    Done(RebuiltSet),
}

impl SetWalk {
    /// Starts at the entry stored at `height`.
    pub fn new(height: u64) -> SetWalk {
        SetWalk {
            height,
            deltas: Vec::new(),
        }
    }

    /// Feeds the entry stored at `at` (the height asked for; `None`: nothing stored there).
    pub fn feed(&mut self, at: u64, bytes: Option<&[u8]>) -> Result<Walk, CorruptEntry> {
        const WHAT: &str = "validator set";
        let bytes = bytes
            .ok_or_else(|| CorruptEntry::new(WHAT, at, "missing: the base of a stored delta"))?;
        match StoredValidators::decode(bytes).map_err(|e| CorruptEntry::new(WHAT, at, e))? {
            StoredValidators::Delta(delta) => {
                if delta.base_height >= at {
                    return Err(CorruptEntry::new(WHAT, at, "delta base is not below it"));
                }
                if self.deltas.len() >= MAX_DELTAS {
                    return Err(CorruptEntry::new(WHAT, at, "too many deltas in a row"));
                }
                let base = delta.base_height;
                self.deltas.push((at, delta));
                Ok(Walk::Read(base))
            }
            StoredValidators::Full(mut set) => {
                let depth = self.deltas.len();
                for (height, delta) in self.deltas.drain(..).rev() {
                    set = delta
                        .apply(&set)
                        .map_err(|e| CorruptEntry::new(WHAT, height, e))?;
                }
                Ok(Walk::Done(RebuiltSet {
                    height: self.height,
                    set,
                    depth,
                }))
            }
        }
    }
}

/// A rebuilt set must be the one `header` names as next: a store cannot hand out a set its
/// own headers do not announce.
pub(crate) fn check_set(set: &RebuiltSet, header: &StoredHeader) -> Result<(), CorruptEntry> {
    let named = header.header.next_validators_hash;
    if set.set.hash() != named {
        return Err(CorruptEntry::new(
            "validator set",
            set.height,
            format!(
                "rebuilt set hashes to {}, header {} names {named}",
                set.set.hash(),
                header.height()
            ),
        ));
    }
    Ok(())
}

/// The values an append writes besides the headers, in the shared stored encoding: per
/// height an encoded [`StoredValidators`] and an encoded hand-over commit (trimmed to its
/// quorum prefix). `previous`: the last stored set (rebuilt), `None` for an empty store.
pub(crate) struct Encoded {
    pub validators: Vec<(u64, Vec<u8>)>,
    pub commits: Vec<(u64, Vec<u8>)>,
}

pub(crate) fn encode_append(previous: Option<RebuiltSet>, headers: &[VerifiedHeader]) -> Encoded {
    let mut out = Encoded {
        validators: Vec::new(),
        commits: Vec::new(),
    };
    let mut previous = previous;
    for h in headers {
        if let Some(commit) = &h.commit {
            // The set in force below `h` signed it.
            let commit = match &previous {
                Some(p) => quorum_commit(&p.set, commit),
                None => commit.clone(),
            };
            out.commits.push((h.height(), commit.encode()));
        }
        if let Some(set) = &h.next_validators {
            let (stored, depth) = StoredValidators::choose(previous.as_ref(), set);
            out.validators.push((h.height(), stored.encode()));
            previous = Some(RebuiltSet {
                height: h.height(),
                set: set.clone(),
                depth,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::TrustedHeader;
    use crate::testkit::{self, ChainBuilder};
    use crate::verify::{TrustedState, Verifier, VerifyError};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Block 1 of a 10-validator chain, every validator signing, with the state before it.
    fn signed_by_all() -> (TrustedState, TrustedHeader, ValidatorSet) {
        let mut builder = ChainBuilder::new("quorum-test", 10);
        let genesis = builder.next_block(Vec::new()).1;
        let checkpoint = builder.checkpoint().unwrap();
        let state = TrustedState::from_checkpoint(&checkpoint, genesis.header).unwrap();
        let block = builder.next_block(Vec::new()).1;
        assert_eq!(block.commit.signatures.len(), 10);
        (state, block, checkpoint.validators)
    }

    fn now(th: &TrustedHeader) -> u64 {
        th.header.timestamp_ms + 1_000
    }

    #[test]
    fn a_trimmed_commit_is_the_quorum_prefix_and_still_verifies() {
        let (state, mut block, set) = signed_by_all();
        let trimmed = quorum_commit(&set, &block.commit);
        // 10 × 10 power: 70 > 2/3 of 100, 60 is not.
        assert_eq!(trimmed.signatures.len(), 7);
        assert_eq!(trimmed.signatures[..], block.commit.signatures[..7]);
        assert_eq!(quorum_commit(&set, &trimmed), trimmed, "idempotent");
        assert!(trimmed.encode().len() < block.commit.encode().len());
        block.commit = trimmed;
        let verifier = Verifier::new();
        let next = verifier.verify(&state, &block, now(&block)).unwrap();
        assert_eq!(next.hash, block.header.hash());
        let single = Verifier::new().with_signature_mode(crate::verify::SignatureMode::Single);
        assert!(single.verify(&state, &block, now(&block)).is_ok());
    }

    #[test]
    fn a_commit_trimmed_below_the_quorum_does_not_verify() {
        let (state, mut block, set) = signed_by_all();
        let mut short = quorum_commit(&set, &block.commit);
        short.signatures.pop();
        assert_eq!(short.signatures.len(), 6);
        block.commit = short.clone();
        assert_eq!(
            Verifier::new().verify(&state, &block, now(&block)),
            Err(VerifyError::InsufficientVotingPower {
                signed: 60,
                total: 100
            })
        );
        // Not trimmed further: a commit below the quorum is kept whole.
        assert_eq!(quorum_commit(&set, &short), short);
    }

    fn powered(keys: &[u64], power: impl Fn(u64) -> u64) -> ValidatorSet {
        ValidatorSet::new(
            keys.iter()
                .map(|&k| Validator {
                    key: testkit::key(k).public_key(),
                    power: power(k),
                })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn deltas_rebuild_sets_exactly_and_encode_canonically() {
        let base = powered(&(0..100).collect::<Vec<_>>(), |_| 10);
        let swapped = powered(&(1..101).collect::<Vec<_>>(), |_| 10);
        let reweighed = powered(&(1..101).collect::<Vec<_>>(), |k| 10 + k % 3);
        let shrunk = powered(&[5, 7, 200], |k| k);
        for (from, to) in [
            (&base, &swapped),
            (&swapped, &reweighed),
            (&reweighed, &shrunk),
            (&shrunk, &base),
            (&base, &base),
        ] {
            let delta = ValidatorDelta::between(4, from, to);
            assert_eq!(delta.apply(from).as_ref(), Ok(to));
            let stored = StoredValidators::Delta(delta.clone());
            let bytes = stored.encode();
            assert_eq!(bytes.len(), stored.encoded_len());
            assert_eq!(StoredValidators::decode(&bytes), Ok(stored));
        }
        let one_key = ValidatorDelta::between(4, &base, &swapped);
        assert_eq!((one_key.removed.len(), one_key.added.len()), (1, 1));
        assert!(one_key.powers.is_empty());
        let full = StoredValidators::Full(base.clone());
        assert_eq!(full.encode().len(), full.encoded_len());
        assert_eq!(StoredValidators::decode(&full.encode()), Ok(full));

        // Each thing a canonical delta never holds is refused.
        let bad = |d: &ValidatorDelta| d.apply(&base).is_err();
        let mut d = one_key.clone();
        d.powers.push((d.removed[0], 20));
        assert!(bad(&d), "power change of a removed validator");
        let mut d = one_key.clone();
        d.powers.push((50, 10));
        assert!(bad(&d), "power change to the same power");
        let mut d = one_key.clone();
        d.removed.push(100);
        assert!(bad(&d), "index outside the base");
        let mut d = one_key.clone();
        d.added.push(base.validators()[3].clone());
        assert!(bad(&d), "added key already in the base");
        let mut unsorted = ValidatorDelta::between(4, &base, &shrunk);
        unsorted.removed.swap(0, 1);
        assert!(ValidatorDelta::decode(&unsorted.encode()).is_err());
        assert!(StoredValidators::decode(&[2]).is_err());
    }

    #[test]
    fn the_stored_form_is_the_smaller_one_with_a_full_set_every_max_deltas() {
        let a = powered(&(0..100).collect::<Vec<_>>(), |_| 10);
        let b = powered(&(1..101).collect::<Vec<_>>(), |_| 10);
        let other = powered(&(500..600).collect::<Vec<_>>(), |_| 10);
        let previous = |depth| RebuiltSet {
            height: 9,
            set: a.clone(),
            depth,
        };
        let (stored, depth) = StoredValidators::choose(None, &b);
        assert_eq!((stored, depth), (StoredValidators::Full(b.clone()), 0));
        let (stored, depth) = StoredValidators::choose(Some(&previous(0)), &b);
        assert!(matches!(stored, StoredValidators::Delta(ref d) if d.base_height == 9));
        assert_eq!(depth, 1);
        let (stored, _) = StoredValidators::choose(Some(&previous(MAX_DELTAS - 1)), &b);
        assert!(matches!(stored, StoredValidators::Delta(_)));
        let (stored, depth) = StoredValidators::choose(Some(&previous(MAX_DELTAS)), &b);
        assert_eq!((stored, depth), (StoredValidators::Full(b.clone()), 0));
        // Nothing in common: the full set is smaller.
        let (stored, depth) = StoredValidators::choose(Some(&previous(0)), &other);
        assert_eq!((stored, depth), (StoredValidators::Full(other.clone()), 0));
    }

    #[test]
    fn a_walk_refuses_missing_bases_and_loops() {
        let a = powered(&[1, 2, 3], |_| 10);
        let b = powered(&[1, 2, 4], |_| 10);
        let delta = StoredValidators::Delta(ValidatorDelta::between(3, &a, &b)).encode();
        let mut walk = SetWalk::new(7);
        assert!(matches!(walk.feed(7, Some(&delta)), Ok(Walk::Read(3))));
        let e = walk.feed(3, None).unwrap_err();
        assert_eq!(e.height, 3);
        // A delta whose base is not below it.
        let mut walk = SetWalk::new(2);
        assert!(walk.feed(2, Some(&delta)).is_err());
        let mut walk = SetWalk::new(7);
        walk.feed(7, Some(&delta)).unwrap();
        match walk.feed(3, Some(&StoredValidators::Full(a).encode())) {
            Ok(Walk::Done(rebuilt)) => {
                assert_eq!((rebuilt.height, rebuilt.depth), (7, 1));
                assert_eq!(rebuilt.set, b);
            }
            _ => panic!("rebuilt"),
        }
    }
}
