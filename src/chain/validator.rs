//! Validator sets: who signs blocks, with what voting power.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::encoding::{Decode, DecodeError, Encode, Reader, Writer};
use super::hash::{hash, Domain, Hash};
use crate::crypto::ed25519::PublicKey;

/// Most validators a set may hold.
pub const MAX_VALIDATORS: usize = 1024;
/// Largest total voting power: 2^53 − 1, so every power is exact as a JSON number in
/// JavaScript (`Number.MAX_SAFE_INTEGER`), and `3 × power` is far from overflowing a u64.
pub const MAX_TOTAL_POWER: u64 = (1 << 53) - 1;

/// One validator: an ed25519 key (validated and decoded once) and its voting power.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validator {
    pub key: PublicKey,
    pub power: u64,
}

/// A canonical validator set: 1..=1024 validators sorted by key bytes (so keys are distinct),
/// each with power ≥ 1, total ≤ 2^53 − 1. Its hash and total power are computed once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    total_power: u64,
    hash: Hash,
}

/// Why a list of validators is not a valid set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    #[error("a validator set needs at least one validator")]
    Empty,
    #[error("{0} validators, more than the maximum {MAX_VALIDATORS}")]
    TooMany(usize),
    #[error("validator {index} has zero voting power")]
    ZeroPower { index: usize },
    #[error("validator key {key} appears twice")]
    DuplicateKey { key: String },
    #[error("validators are not sorted by key (at index {index})")]
    NotSorted { index: usize },
    #[error("total voting power exceeds {MAX_TOTAL_POWER}")]
    PowerOverflow,
}

impl ValidatorSet {
    /// Builds a set from validators in any order (they are sorted by key).
    pub fn new(mut validators: Vec<Validator>) -> Result<Self, ValidatorSetError> {
        validators.sort_by(|a, b| a.key.as_bytes().cmp(b.key.as_bytes()));
        Self::from_sorted(validators)
    }

    /// Builds a set from validators that must already be in canonical (sorted) order.
    pub fn from_sorted(validators: Vec<Validator>) -> Result<Self, ValidatorSetError> {
        if validators.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        if validators.len() > MAX_VALIDATORS {
            return Err(ValidatorSetError::TooMany(validators.len()));
        }
        let mut total: u64 = 0;
        for (index, v) in validators.iter().enumerate() {
            if v.power == 0 {
                return Err(ValidatorSetError::ZeroPower { index });
            }
            if index > 0 {
                match validators[index - 1].key.as_bytes().cmp(v.key.as_bytes()) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Equal => {
                        return Err(ValidatorSetError::DuplicateKey {
                            key: v.key.to_hex(),
                        })
                    }
                    std::cmp::Ordering::Greater => {
                        return Err(ValidatorSetError::NotSorted { index })
                    }
                }
            }
            total = total
                .checked_add(v.power)
                .filter(|t| *t <= MAX_TOTAL_POWER)
                .ok_or(ValidatorSetError::PowerOverflow)?;
        }
        let mut set = ValidatorSet {
            validators,
            total_power: total,
            hash: Hash::ZERO,
        };
        set.hash = hash(Domain::ValidatorSet, &set.encode());
        Ok(set)
    }

    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    pub fn len(&self) -> usize {
        self.validators.len()
    }

    /// Never true: a set has at least one validator.
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<&Validator> {
        self.validators.get(index)
    }

    pub fn total_power(&self) -> u64 {
        self.total_power
    }

    /// `hash(Domain::ValidatorSet, encode(set))`.
    pub fn hash(&self) -> Hash {
        self.hash
    }

    /// Position of `key` in the set.
    pub fn index_of(&self, key: &PublicKey) -> Option<usize> {
        self.validators
            .binary_search_by(|v| v.key.as_bytes().cmp(key.as_bytes()))
            .ok()
    }

    /// Round-robin proposer for a height and round: validator `(height + round) mod n`.
    pub fn proposer(&self, height: u64, round: u32) -> &Validator {
        let n = self.validators.len() as u64;
        let slot = (height % n + u64::from(round) % n) % n;
        &self.validators[slot as usize]
    }

    /// Whether `power` is strictly more than two thirds of the total (exact integer test).
    pub fn is_supermajority(&self, power: u64) -> bool {
        u128::from(power) * 3 > u128::from(self.total_power) * 2
    }
}

impl Encode for ValidatorSet {
    fn encode_to(&self, w: &mut Writer) {
        w.len(self.validators.len());
        for v in &self.validators {
            w.value(&v.key).u64(v.power);
        }
    }
}

impl Decode for ValidatorSet {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = r.len("validator set", MAX_VALIDATORS)?;
        let mut validators = Vec::with_capacity(n.min(r.remaining() / 40));
        for _ in 0..n {
            let key = PublicKey::decode_from(r)?;
            let power = r.u64()?;
            validators.push(Validator { key, power });
        }
        ValidatorSet::from_sorted(validators).map_err(|e| DecodeError::Invalid {
            what: "validator set",
            reason: e.to_string(),
        })
    }
}

impl Serialize for ValidatorSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.validators.serialize(s)
    }
}

impl<'de> Deserialize<'de> for ValidatorSet {
    /// Strict: the JSON list must already be in canonical order.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let validators = Vec::<Validator>::deserialize(d)?;
        ValidatorSet::from_sorted(validators).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::ed25519::SigningKey;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn key(i: u8) -> PublicKey {
        SigningKey::from_seed(&[i; 32]).public_key()
    }

    fn set(n: u8) -> ValidatorSet {
        ValidatorSet::new(
            (1..=n)
                .map(|i| Validator {
                    key: key(i),
                    power: 10,
                })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn new_sorts_and_round_trips() {
        let s = set(5);
        assert!(s
            .validators()
            .windows(2)
            .all(|w| w[0].key.as_bytes() < w[1].key.as_bytes()));
        assert_eq!(ValidatorSet::decode(&s.encode()), Ok(s.clone()));
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<ValidatorSet>(&json).unwrap(), s);
        assert_eq!(s.total_power(), 50);
    }

    #[test]
    fn rejects_invalid_sets() {
        assert_eq!(ValidatorSet::new(vec![]), Err(ValidatorSetError::Empty));
        let v = |i, power| Validator { key: key(i), power };
        let mut zero = set(2).validators().to_vec();
        zero[1].power = 0;
        assert_eq!(
            ValidatorSet::from_sorted(zero),
            Err(ValidatorSetError::ZeroPower { index: 1 })
        );
        assert!(matches!(
            ValidatorSet::new(vec![v(1, 1), v(1, 1)]),
            Err(ValidatorSetError::DuplicateKey { .. })
        ));
        assert_eq!(
            ValidatorSet::new(vec![v(1, MAX_TOTAL_POWER), v(2, 1)]),
            Err(ValidatorSetError::PowerOverflow)
        );
        let mut sorted = set(3).validators().to_vec();
        sorted.swap(0, 1);
        assert_eq!(
            ValidatorSet::from_sorted(sorted),
            Err(ValidatorSetError::NotSorted { index: 1 })
        );
        let many: Vec<_> = (0..=MAX_VALIDATORS)
            .map(|i| {
                let mut seed = [0u8; 32];
                seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
                Validator {
                    key: SigningKey::from_seed(&seed).public_key(),
                    power: 1,
                }
            })
            .collect();
        assert_eq!(
            ValidatorSet::new(many),
            Err(ValidatorSetError::TooMany(MAX_VALIDATORS + 1))
        );
    }

    #[test]
    fn supermajority_is_strictly_more_than_two_thirds() {
        let s = set(3); // total 30
        assert!(!s.is_supermajority(20));
        assert!(s.is_supermajority(21));
    }

    #[test]
    fn proposer_rotates() {
        let s = set(4);
        assert_eq!(s.proposer(0, 0), &s.validators()[0]);
        assert_eq!(s.proposer(1, 0), &s.validators()[1]);
        assert_eq!(s.proposer(3, 2), &s.validators()[1]);
        assert_eq!(
            s.proposer(u64::MAX, u32::MAX),
            s.proposer(u64::MAX, u32::MAX)
        );
    }
}
