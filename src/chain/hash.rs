//! BLAKE3 hashing with domain separation.
//!
//! Every hash in the protocol is `BLAKE3-keyed(K_d, data)` where the key of domain `d` is
//! `K_d = BLAKE3-derive-key(context_d, "")` and `context_d` is the domain's context string
//! (see [`Domain::context`]). Distinct keys make a hash from one domain useless in any other
//! (a Merkle leaf can never be read as an inner node, a block hash never as an event id) at no
//! per-hash cost: the key only replaces BLAKE3's IV. `docs/PROTOCOL.md` lists the contexts.

use std::sync::OnceLock;

/// Implements `Debug` (`Type(hex)`), `Display` (hex) and serde (a hex string, parsed strictly by
/// the type's `from_hex`) for a byte-string type with `to_hex` and `from_hex`.
macro_rules! impl_hex_text {
    ($ty:ident) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($ty), "({})"), self.to_hex())
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                $ty::from_hex(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use impl_hex_text;

/// Length of every protocol hash in bytes.
pub const HASH_LEN: usize = 32;

/// A 32-byte BLAKE3 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash(pub [u8; HASH_LEN]);

impl Hash {
    /// The all-zero hash: the parent of the genesis block and the root of an empty event list.
    pub const ZERO: Hash = Hash([0; HASH_LEN]);

    pub const fn as_bytes(&self) -> &[u8; HASH_LEN] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses exactly 64 lowercase or uppercase hex digits.
    pub fn from_hex(s: &str) -> Result<Hash, HashParseError> {
        if s.len() != 2 * HASH_LEN {
            return Err(HashParseError::Length(s.len()));
        }
        let mut out = [0u8; HASH_LEN];
        hex::decode_to_slice(s, &mut out).map_err(|_| HashParseError::NotHex)?;
        Ok(Hash(out))
    }
}

/// Why a hex string is not a hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashParseError {
    #[error("expected 64 hex digits, got {0} characters")]
    Length(usize),
    #[error("not a hex string")]
    NotHex,
}

impl_hex_text!(Hash);

/// The hashing and signing domains of protocol version 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Domain {
    /// Block hash: hash of the canonical header encoding.
    BlockHeader,
    /// Event id: hash of the canonical signed-event encoding.
    Event,
    /// Digest an event's source signs.
    EventSignature,
    /// Hash of a canonical validator set.
    ValidatorSet,
    /// Leaf of the per-block event Merkle tree (input: an event id).
    MerkleLeaf,
    /// Inner node of the event Merkle tree (input: left ‖ right).
    MerkleNode,
    /// Leaf of the chain MMR (input: a block hash).
    MmrLeaf,
    /// Inner node of the chain MMR (input: left ‖ right).
    MmrNode,
    /// Bagged MMR root (input: leaf count ‖ peaks).
    MmrRoot,
    /// Digest a validator signs for a vote.
    Vote,
    /// Digest a node signs in the connection handshake.
    Handshake,
    /// Seed of the deterministic batch-verification coefficients.
    BatchCoefficients,
}

impl Domain {
    /// All domains, in a fixed order (used for key caching and for the vectors).
    pub const ALL: [Domain; 12] = [
        Domain::BlockHeader,
        Domain::Event,
        Domain::EventSignature,
        Domain::ValidatorSet,
        Domain::MerkleLeaf,
        Domain::MerkleNode,
        Domain::MmrLeaf,
        Domain::MmrNode,
        Domain::MmrRoot,
        Domain::Vote,
        Domain::Handshake,
        Domain::BatchCoefficients,
    ];

    /// The BLAKE3 derive-key context string of this domain.
    pub const fn context(self) -> &'static str {
        match self {
            Domain::BlockHeader => "headway v1 block-header",
            Domain::Event => "headway v1 event",
            Domain::EventSignature => "headway v1 event-signature",
            Domain::ValidatorSet => "headway v1 validator-set",
            Domain::MerkleLeaf => "headway v1 merkle-leaf",
            Domain::MerkleNode => "headway v1 merkle-node",
            Domain::MmrLeaf => "headway v1 mmr-leaf",
            Domain::MmrNode => "headway v1 mmr-node",
            Domain::MmrRoot => "headway v1 mmr-root",
            Domain::Vote => "headway v1 vote",
            Domain::Handshake => "headway v1 handshake",
            Domain::BatchCoefficients => "headway v1 batch-coefficients",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }

    /// The 32-byte BLAKE3 key of this domain, derived once per process.
    pub fn key(self) -> &'static [u8; 32] {
        static KEYS: OnceLock<[[u8; 32]; Domain::ALL.len()]> = OnceLock::new();
        &KEYS.get_or_init(|| Domain::ALL.map(|d| blake3::derive_key(d.context(), b"")))
            [self.index()]
    }

    /// A streaming hasher for this domain.
    pub fn hasher(self) -> blake3::Hasher {
        blake3::Hasher::new_keyed(self.key())
    }
}

/// `BLAKE3-keyed(K_domain, data)`.
pub fn hash(domain: Domain, data: &[u8]) -> Hash {
    Hash(*blake3::keyed_hash(domain.key(), data).as_bytes())
}

/// `BLAKE3-keyed(K_domain, left ‖ right)`: the inner node of a binary tree.
pub fn hash_pair(domain: Domain, left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 2 * HASH_LEN];
    buf[..HASH_LEN].copy_from_slice(&left.0);
    buf[HASH_LEN..].copy_from_slice(&right.0);
    hash(domain, &buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn domains_have_distinct_keys() {
        let mut keys: Vec<_> = Domain::ALL.iter().map(|d| *d.key()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), Domain::ALL.len());
    }

    #[test]
    fn domain_index_matches_all_order() {
        for (i, d) in Domain::ALL.iter().enumerate() {
            assert_eq!(d.index(), i);
        }
    }

    #[test]
    fn same_input_differs_across_domains() {
        let a = hash(Domain::MerkleLeaf, b"x");
        let b = hash(Domain::MerkleNode, b"x");
        assert_ne!(a, b);
    }

    #[test]
    fn hash_pair_equals_hash_of_concatenation() {
        let l = Hash([1; 32]);
        let r = Hash([2; 32]);
        let mut cat = Vec::new();
        cat.extend_from_slice(&l.0);
        cat.extend_from_slice(&r.0);
        assert_eq!(
            hash_pair(Domain::MmrNode, &l, &r),
            hash(Domain::MmrNode, &cat)
        );
    }

    #[test]
    fn hex_round_trip_and_rejections() {
        let h = hash(Domain::Event, b"e");
        assert_eq!(Hash::from_hex(&h.to_hex()), Ok(h));
        assert_eq!(Hash::from_hex("00"), Err(HashParseError::Length(2)));
        assert_eq!(
            Hash::from_hex(&"zz".repeat(32)),
            Err(HashParseError::NotHex)
        );
    }
}
