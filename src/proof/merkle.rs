//! The per-block event Merkle tree: RFC 6962 shape over event ids.
//!
//! For `n > 1` leaves the root is `node(MTH(first k), MTH(rest))` with `k` the largest power of
//! two below `n`, so an odd last leaf is promoted, never duplicated: `[a, b, c]` and
//! `[a, b, c, c]` have different roots (the Bitcoin flaw). Leaves and inner nodes hash under
//! different domains, so a node can never be presented as a leaf. The empty list's root is
//! [`Hash::ZERO`]; the header also commits to the event count, so this is unambiguous.

use crate::chain::{hash, hash_pair, Decode, DecodeError, Domain, Encode, Hash, Reader, Writer};

/// Most siblings a proof can have: a tree of at most `u32::MAX` leaves is at most 32 deep.
pub const MAX_MERKLE_DEPTH: usize = 32;

/// Why a Merkle proof cannot be built or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    #[error("an empty tree has no leaves to prove")]
    EmptyTree,
    #[error("leaf index {index} out of range for {leaf_count} leaves")]
    IndexOutOfRange { index: u32, leaf_count: u32 },
    #[error("{got} leaves exceed the maximum of u32::MAX")]
    LeafCountTooLarge { got: usize },
    #[error("expected {expected} siblings, got {got}")]
    WrongSiblingCount { expected: usize, got: usize },
    #[error("root mismatch: expected {expected}, computed {got}")]
    RootMismatch { expected: Hash, got: Hash },
}

/// Inclusion proof of one event id in a block's event list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerkleProof {
    pub index: u32,
    /// Sibling hashes from the leaf upward.
    pub siblings: Vec<Hash>,
}

fn leaf_hash(id: &Hash) -> Hash {
    hash(Domain::MerkleLeaf, id.as_bytes())
}

fn node_hash(left: &Hash, right: &Hash) -> Hash {
    hash_pair(Domain::MerkleNode, left, right)
}

/// The largest power of two strictly below `n` (for `n >= 2`; 0 otherwise).
fn split(n: usize) -> usize {
    n.checked_sub(1)
        .and_then(usize::checked_ilog2)
        .map_or(0, |b| 1 << b)
}

/// The root of the tree over `ids`; `Hash::ZERO` if there are none.
pub fn merkle_root(ids: &[Hash]) -> Hash {
    // RFC 6962's tree is the perfect subtrees of the binary decomposition of n, largest first,
    // joined from the right. Build them with a stack of O(log n) subtree roots, no allocation
    // per leaf.
    let mut stack: Vec<Hash> = Vec::with_capacity(usize::BITS as usize);
    for (i, id) in ids.iter().enumerate() {
        let mut node = leaf_hash(id);
        // Leaf i completes one perfect subtree per trailing one bit of i.
        for _ in 0..i.trailing_ones() {
            let Some(left) = stack.pop() else { break };
            node = node_hash(&left, &node);
        }
        stack.push(node);
    }
    let mut subtrees = stack.into_iter().rev();
    let Some(mut root) = subtrees.next() else {
        return Hash::ZERO;
    };
    for left in subtrees {
        root = node_hash(&left, &root);
    }
    root
}

/// The proof that `ids[index]` is in the tree over `ids`. O(n) hashes.
pub fn merkle_proof(ids: &[Hash], index: u32) -> Result<MerkleProof, MerkleError> {
    let leaf_count =
        u32::try_from(ids.len()).map_err(|_| MerkleError::LeafCountTooLarge { got: ids.len() })?;
    check_index(index, leaf_count)?;
    let mut siblings = Vec::with_capacity(MAX_MERKLE_DEPTH);
    let mut range = ids;
    let mut i = index as usize;
    // Descend from the root: keep the half holding the leaf, record the other half's root.
    while range.len() > 1 {
        let k = split(range.len());
        let Some((left, right)) = range.split_at_checked(k) else {
            break;
        };
        match i.checked_sub(k) {
            None => {
                siblings.push(merkle_root(right));
                range = left;
            }
            Some(rest) => {
                siblings.push(merkle_root(left));
                range = right;
                i = rest;
            }
        }
    }
    siblings.reverse();
    Ok(MerkleProof { index, siblings })
}

fn check_index(index: u32, leaf_count: u32) -> Result<(), MerkleError> {
    if leaf_count == 0 {
        return Err(MerkleError::EmptyTree);
    }
    if index >= leaf_count {
        return Err(MerkleError::IndexOutOfRange { index, leaf_count });
    }
    Ok(())
}

/// The path of leaf `index` in a tree of `leaf_count` leaves: its length, and one bit per level
/// (bit 0 = the leaf's level) set where the path's node is a right child.
fn path_shape(index: u32, leaf_count: u32) -> (usize, u64) {
    let (mut i, mut n) = (index as usize, leaf_count as usize);
    let (mut len, mut right) = (0usize, 0u64);
    while n > 1 {
        let k = split(n);
        right <<= 1;
        match i.checked_sub(k) {
            None => n = k,
            Some(rest) => {
                right |= 1;
                i = rest;
                n = n.saturating_sub(k); // k < n: exact
            }
        }
        len = len.saturating_add(1); // at most 32 levels
    }
    (len, right)
}

impl MerkleProof {
    /// The root implied by this proof for leaf `id` in a tree of `leaf_count` leaves.
    pub fn compute_root(&self, id: &Hash, leaf_count: u32) -> Result<Hash, MerkleError> {
        check_index(self.index, leaf_count)?;
        let (expected, right) = path_shape(self.index, leaf_count);
        // The shape fixes the path length: a missing or extra sibling is an error, not padding.
        if self.siblings.len() != expected {
            return Err(MerkleError::WrongSiblingCount {
                expected,
                got: self.siblings.len(),
            });
        }
        let mut node = leaf_hash(id);
        for (level, sibling) in self.siblings.iter().enumerate() {
            // level < expected <= 32, so the shift is in range.
            node = if (right >> level) & 1 == 1 {
                node_hash(sibling, &node)
            } else {
                node_hash(&node, sibling)
            };
        }
        Ok(node)
    }

    /// Checks that `id` is leaf `self.index` of the `leaf_count`-leaf tree with root `root`.
    pub fn verify(&self, id: &Hash, leaf_count: u32, root: &Hash) -> Result<(), MerkleError> {
        let got = self.compute_root(id, leaf_count)?;
        if got != *root {
            return Err(MerkleError::RootMismatch {
                expected: *root,
                got,
            });
        }
        Ok(())
    }
}

impl Encode for MerkleProof {
    fn encode_to(&self, w: &mut Writer) {
        w.u32(self.index).seq(&self.siblings);
    }
}

impl Decode for MerkleProof {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(MerkleProof {
            index: r.u32()?,
            siblings: r.seq("merkle proof siblings", MAX_MERKLE_DEPTH)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn id(i: u32) -> Hash {
        hash(Domain::Event, &i.to_le_bytes())
    }

    fn ids(n: u32) -> Vec<Hash> {
        (0..n).map(id).collect()
    }

    /// RFC 6962 §2.1, written as directly as possible.
    fn reference_root(ids: &[Hash]) -> Hash {
        match ids.len() {
            0 => Hash::ZERO,
            1 => hash(Domain::MerkleLeaf, ids[0].as_bytes()),
            n => {
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                let (l, r) = (reference_root(&ids[..k]), reference_root(&ids[k..]));
                hash_pair(Domain::MerkleNode, &l, &r)
            }
        }
    }

    #[test]
    fn root_matches_reference() {
        for n in 0..=40 {
            let v = ids(n);
            assert_eq!(merkle_root(&v), reference_root(&v), "n = {n}");
        }
        assert_eq!(merkle_root(&[]), Hash::ZERO);
    }

    #[test]
    fn every_proof_verifies() {
        for n in 1..=70 {
            let v = ids(n);
            let root = merkle_root(&v);
            for i in 0..n {
                let p = merkle_proof(&v, i).unwrap();
                assert_eq!(p.siblings.len(), path_shape(i, n).0);
                assert_eq!(
                    p.verify(&v[i as usize], n, &root),
                    Ok(()),
                    "n = {n}, i = {i}"
                );
            }
        }
    }

    #[test]
    fn proof_requests_out_of_range_fail() {
        assert_eq!(merkle_proof(&[], 0), Err(MerkleError::EmptyTree));
        assert_eq!(
            merkle_proof(&ids(3), 3),
            Err(MerkleError::IndexOutOfRange {
                index: 3,
                leaf_count: 3
            })
        );
    }

    /// The error a proof for leaf `i` of `n` must give when checked as leaf `j` of `m`.
    fn expected_error(j: u32, m: u32, siblings: usize) -> Option<MerkleError> {
        if m == 0 {
            return Some(MerkleError::EmptyTree);
        }
        if j >= m {
            return Some(MerkleError::IndexOutOfRange {
                index: j,
                leaf_count: m,
            });
        }
        let expected = path_shape(j, m).0;
        (expected != siblings).then_some(MerkleError::WrongSiblingCount {
            expected,
            got: siblings,
        })
    }

    #[test]
    fn wrong_index_or_leaf_count_fails() {
        for n in 1..=33 {
            let v = ids(n);
            let root = merkle_root(&v);
            for i in 0..n {
                let p = merkle_proof(&v, i).unwrap();
                let len = p.siblings.len();
                for j in (0..=n + 1).filter(|&j| j != i) {
                    let q = MerkleProof {
                        index: j,
                        ..p.clone()
                    };
                    let err = q.verify(&v[i as usize], n, &root).unwrap_err();
                    match expected_error(j, n, len) {
                        Some(e) => assert_eq!(err, e),
                        None => assert!(matches!(err, MerkleError::RootMismatch { .. })),
                    }
                }
                for m in (0..=n + 2).filter(|&m| m != n) {
                    let got = p.verify(&v[i as usize], m, &root);
                    match expected_error(i, m, len) {
                        Some(e) => assert_eq!(got, Err(e)),
                        // The root does not commit to the leaf count (the header does): where
                        // leaf i has the very same path in both trees, the proof holds for both.
                        None if path_shape(i, m) == path_shape(i, n) => assert_eq!(got, Ok(())),
                        None => assert!(matches!(got, Err(MerkleError::RootMismatch { .. }))),
                    }
                }
            }
        }
    }

    #[test]
    fn missing_or_extra_sibling_fails() {
        for n in 1..=33 {
            let v = ids(n);
            let root = merkle_root(&v);
            for i in 0..n {
                let p = merkle_proof(&v, i).unwrap();
                let len = p.siblings.len();
                for at in 0..len {
                    let mut q = p.clone();
                    q.siblings.remove(at);
                    assert_eq!(
                        q.verify(&v[i as usize], n, &root),
                        Err(MerkleError::WrongSiblingCount {
                            expected: len,
                            got: len - 1
                        })
                    );
                }
                let mut q = p.clone();
                q.siblings.push(root);
                assert_eq!(
                    q.verify(&v[i as usize], n, &root),
                    Err(MerkleError::WrongSiblingCount {
                        expected: len,
                        got: len + 1
                    })
                );
            }
        }
    }

    #[test]
    fn flipped_bit_or_wrong_id_fails() {
        for n in [2, 3, 5, 7, 8, 13, 16, 17] {
            let v = ids(n);
            let root = merkle_root(&v);
            for i in 0..n {
                let p = merkle_proof(&v, i).unwrap();
                for s in 0..p.siblings.len() {
                    for bit in 0..256 {
                        let mut q = p.clone();
                        q.siblings[s].0[bit / 8] ^= 1 << (bit % 8);
                        assert!(matches!(
                            q.verify(&v[i as usize], n, &root),
                            Err(MerkleError::RootMismatch { .. })
                        ));
                    }
                }
                assert!(matches!(
                    p.verify(&id(1000), n, &root),
                    Err(MerkleError::RootMismatch { .. })
                ));
            }
        }
    }

    #[test]
    fn duplicated_last_leaf_changes_root() {
        let (a, b, c) = (id(0), id(1), id(2));
        assert_ne!(merkle_root(&[a, b, c]), merkle_root(&[a, b, c, c]));
        assert_ne!(merkle_root(&[a, b]), merkle_root(&[a, b, b]));
    }

    #[test]
    fn inner_node_cannot_pose_as_leaf() {
        // Tree over [a, b, c, d]: root = node(ab, cd). Claim `ab` is leaf 0 with sibling cd.
        let v = ids(4);
        let root = merkle_root(&v);
        let ab = merkle_root(&v[..2]);
        let cd = merkle_root(&v[2..]);
        let forged = MerkleProof {
            index: 0,
            siblings: vec![cd],
        };
        // As a 2-leaf tree the path length fits, but ab is hashed as a leaf first.
        assert!(matches!(
            forged.verify(&ab, 2, &root),
            Err(MerkleError::RootMismatch { .. })
        ));
        // In the real 4-leaf tree the short path is rejected by shape.
        assert_eq!(
            forged.verify(&ab, 4, &root),
            Err(MerkleError::WrongSiblingCount {
                expected: 2,
                got: 1
            })
        );
    }

    #[test]
    fn encode_decode_round_trip() {
        let v = ids(21);
        for i in 0..21 {
            let p = merkle_proof(&v, i).unwrap();
            let bytes = p.encode();
            assert_eq!(bytes.len(), 4 + 4 + 32 * p.siblings.len());
            assert_eq!(MerkleProof::decode(&bytes), Ok(p));
        }
    }

    #[test]
    fn decode_rejects_too_many_siblings() {
        let mut w = Writer::new();
        w.u32(0).u32(33);
        assert!(matches!(
            MerkleProof::decode(w.as_bytes()),
            Err(DecodeError::TooLong { len: 33, .. })
        ));
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1200)) {
                let _ = MerkleProof::decode(&bytes);
            }

            #[test]
            fn decoding_plausible_bytes_never_panics(
                index in any::<u32>(),
                count in 0u32..40,
                body in proptest::collection::vec(any::<u8>(), 0..1200),
            ) {
                let mut w = Writer::new();
                w.u32(index).u32(count).raw(&body);
                if let Ok(p) = MerkleProof::decode(w.as_bytes()) {
                    prop_assert_eq!(p.encode(), w.into_bytes());
                }
            }

            #[test]
            fn round_trip(index in any::<u32>(), sibs in proptest::collection::vec(any::<[u8; 32]>(), 0..=32)) {
                let p = MerkleProof { index, siblings: sibs.into_iter().map(Hash).collect() };
                prop_assert_eq!(MerkleProof::decode(&p.encode()), Ok(p));
            }

            #[test]
            fn random_tree_proofs_verify(n in 1u32..300, seed in any::<u32>()) {
                let v = ids(n);
                let i = seed % n;
                let p = merkle_proof(&v, i).unwrap();
                prop_assert_eq!(p.verify(&v[i as usize], n, &merkle_root(&v)), Ok(()));
            }
        }
    }
}
