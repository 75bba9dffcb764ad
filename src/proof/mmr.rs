//! The chain MMR: a Merkle Mountain Range over block hashes.
//!
//! A node is addressed by `(level, index)`: level-0 nodes are leaves, node `(l, i)` covers leaves
//! `[i·2^l, (i+1)·2^l)` and exists in an MMR of `n` leaves iff `(i+1)·2^l <= n`. A node never
//! changes once it exists, so a store keyed by `(level, index)` answers proofs for every earlier
//! size from the same nodes. The peaks of size `n` are, for each set bit `b` of `n` from the most
//! significant down, the last node of level `b`: `(b, n/2^b - 1)`. The root commits to the leaf
//! count: `BLAKE3-keyed(K_MmrRoot, u64_le(n) ‖ peak_0 ‖ … ‖ peak_k)`, peaks left to right.

use crate::chain::{
    hash, hash_pair, Decode, DecodeError, Domain, Encode, Hash, Reader, Writer, HASH_LEN,
};

/// Most hashes in a decoded peak list or proof sibling list (a `u64` count has at most 64 peaks,
/// a mountain at most 63 levels).
pub const MAX_MMR_HASHES: usize = 64;

/// Why an MMR operation failed or a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MmrError {
    #[error("the MMR already holds u64::MAX leaves")]
    LeafCountTooLarge,
    #[error("leaf index {index} out of range for {leaf_count} leaves")]
    IndexOutOfRange { index: u64, leaf_count: u64 },
    #[error("proof is for {got} leaves, expected {expected}")]
    LeafCountMismatch { expected: u64, got: u64 },
    #[error("expected {expected} siblings, got {got}")]
    WrongSiblingCount { expected: usize, got: usize },
    #[error("expected {expected} peaks, got {got}")]
    WrongPeakCount { expected: usize, got: usize },
    #[error("node (level {level}, index {index}) is not in the store")]
    MissingNode { level: u8, index: u64 },
    #[error("root mismatch: expected {expected}, computed {got}")]
    RootMismatch { expected: Hash, got: Hash },
}

fn leaf_hash(block_hash: &Hash) -> Hash {
    hash(Domain::MmrLeaf, block_hash.as_bytes())
}

fn node_hash(left: &Hash, right: &Hash) -> Hash {
    hash_pair(Domain::MmrNode, left, right)
}

/// `BLAKE3-keyed(K_MmrRoot, u64_le(leaf_count) ‖ peaks…)`.
fn bag<'a>(leaf_count: u64, peaks: impl IntoIterator<Item = &'a Hash>) -> Hash {
    let mut h = Domain::MmrRoot.hasher();
    h.update(&leaf_count.to_le_bytes());
    for p in peaks {
        h.update(p.as_bytes());
    }
    Hash(*h.finalize().as_bytes())
}

/// The root of an MMR of `leaf_count` leaves with these peaks (left to right). Does not check
/// that `peaks.len()` fits `leaf_count`; [`MmrPeaks::from_parts`] does.
pub fn root_from_peaks(leaf_count: u64, peaks: &[Hash]) -> Hash {
    bag(leaf_count, peaks)
}

/// The `(level, index)` of each peak of size `leaf_count`, left to right.
fn peak_positions(leaf_count: u64) -> impl Iterator<Item = (u8, u64)> {
    (0..u64::BITS as u8)
        .rev()
        .filter(move |&b| (leaf_count >> b) & 1 == 1)
        // Bit b is set, so clearing the low bit of n >> b subtracts one: the last node of level b.
        .map(move |b| (b, (leaf_count >> b) & !1))
}

fn peak_count(leaf_count: u64) -> usize {
    leaf_count.count_ones() as usize
}

/// Where a leaf sits: its mountain's height (= its sibling count), that mountain's position
/// among the peaks, and how many other peaks there are.
struct Shape {
    height: u8,
    position: usize,
    other_peaks: usize,
}

fn shape(leaf_index: u64, leaf_count: u64) -> Result<Shape, MmrError> {
    let out_of_range = MmrError::IndexOutOfRange {
        index: leaf_index,
        leaf_count,
    };
    if leaf_index >= leaf_count {
        return Err(out_of_range);
    }
    // Peak (b, p) covers leaf k iff k >> b == p; exactly one peak does for k < n.
    peak_positions(leaf_count)
        .enumerate()
        .find(|&(_, (b, p))| leaf_index >> b == p)
        .map(|(position, (height, _))| Shape {
            height,
            position,
            // The other peaks are the set bits of n but the leaf's mountain's.
            other_peaks: (leaf_count ^ (1 << height)).count_ones() as usize,
        })
        .ok_or(out_of_range)
}

/// The O(log n) accumulator: leaf count and peaks. Enough to append and to compute the root.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MmrPeaks {
    leaf_count: u64,
    /// Invariant: `peaks.len() == leaf_count.count_ones()`.
    peaks: Vec<Hash>,
}

impl MmrPeaks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Fails unless there is exactly one peak per set bit of `leaf_count`.
    pub fn from_parts(leaf_count: u64, peaks: Vec<Hash>) -> Result<Self, MmrError> {
        let expected = peak_count(leaf_count);
        if peaks.len() != expected {
            return Err(MmrError::WrongPeakCount {
                expected,
                got: peaks.len(),
            });
        }
        Ok(MmrPeaks { leaf_count, peaks })
    }

    pub fn leaf_count(&self) -> u64 {
        self.leaf_count
    }

    /// The peaks, left to right.
    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    /// Each peak's `(level, index)` node address, left to right (as [`MmrPeaks::peaks`]).
    pub fn positions(&self) -> impl Iterator<Item = (u8, u64)> {
        peak_positions(self.leaf_count)
    }

    pub fn root(&self) -> Hash {
        bag(self.leaf_count, &self.peaks)
    }

    pub fn append(&mut self, block_hash: &Hash) -> Result<(), MmrError> {
        self.append_with(block_hash, |_, _, _| {})
    }

    /// Appends a leaf and reports each node it creates as `(level, index, hash)`, the leaf first,
    /// so a store can persist them. O(log n) hashes, amortized 2.
    pub fn append_with(
        &mut self,
        block_hash: &Hash,
        mut on_node: impl FnMut(u8, u64, &Hash),
    ) -> Result<(), MmrError> {
        let n = self.leaf_count;
        let new_count = n.checked_add(1).ok_or(MmrError::LeafCountTooLarge)?;
        let mut node = leaf_hash(block_hash);
        on_node(0, n, &node);
        // Leaf n completes one mountain per trailing one bit of n, each merging with the peak to
        // its left. n < u64::MAX, so there are at most 63 and `level` fits every shift.
        for level in 1..=n.trailing_ones() as u8 {
            // The popcount invariant guarantees a peak here.
            let Some(left) = self.peaks.pop() else { break };
            node = node_hash(&left, &node);
            on_node(level, n >> level, &node);
        }
        self.peaks.push(node);
        self.leaf_count = new_count;
        Ok(())
    }
}

impl Encode for MmrPeaks {
    fn encode_to(&self, w: &mut Writer) {
        w.u64(self.leaf_count).seq(&self.peaks);
    }
}

impl Decode for MmrPeaks {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let leaf_count = r.u64()?;
        let peaks = r.seq("mmr peaks", MAX_MMR_HASHES)?;
        MmrPeaks::from_parts(leaf_count, peaks).map_err(|e| DecodeError::Invalid {
            what: "mmr peaks",
            reason: e.to_string(),
        })
    }
}

/// Read access to stored MMR nodes by `(level, index)`.
pub trait MmrNodes {
    fn node(&self, level: u8, index: u64) -> Option<Hash>;
}

/// The proof for leaf `leaf_index` in the MMR of size `leaf_count`, read from `nodes`, which may
/// hold a larger MMR. Fails with [`MmrError::MissingNode`] if the store lacks a node of that size.
pub fn prove<N: MmrNodes + ?Sized>(
    nodes: &N,
    leaf_index: u64,
    leaf_count: u64,
) -> Result<MmrProof, MmrError> {
    let shape = shape(leaf_index, leaf_count)?;
    let get = |level, index| {
        nodes
            .node(level, index)
            .ok_or(MmrError::MissingNode { level, index })
    };
    // A proof may not touch the last leaf; require it so that a store asked for a size it has not
    // reached fails instead of answering.
    if let Some(last) = leaf_count.checked_sub(1) {
        get(0, last)?;
    }
    let siblings = (0..shape.height)
        .map(|level| get(level, (leaf_index >> level) ^ 1))
        .collect::<Result<_, _>>()?;
    let peaks = peak_positions(leaf_count)
        .enumerate()
        .filter(|&(position, _)| position != shape.position)
        .map(|(_, (level, index))| get(level, index))
        .collect::<Result<_, _>>()?;
    Ok(MmrProof {
        leaf_index,
        leaf_count,
        siblings,
        peaks,
    })
}

/// The peaks of the MMR of size `leaf_count`, read from `nodes` (which may hold a larger MMR).
pub fn peaks_at<N: MmrNodes + ?Sized>(nodes: &N, leaf_count: u64) -> Result<MmrPeaks, MmrError> {
    // The last peak covers the last leaf, so a store smaller than leaf_count fails here.
    let peaks = peak_positions(leaf_count)
        .map(|(level, index)| {
            nodes
                .node(level, index)
                .ok_or(MmrError::MissingNode { level, index })
        })
        .collect::<Result<_, _>>()?;
    Ok(MmrPeaks { leaf_count, peaks })
}

/// An in-memory MMR holding every node: `levels[l][i]` is node `(l, i)`.
#[derive(Clone, Debug, Default)]
pub struct Mmr {
    peaks: MmrPeaks,
    levels: Vec<Vec<Hash>>,
}

impl Mmr {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn append(&mut self, block_hash: &Hash) -> Result<(), MmrError> {
        let levels = &mut self.levels;
        // Nodes of each level are created left to right, so `index` is always the row's length.
        self.peaks.append_with(block_hash, |level, _index, node| {
            let level = usize::from(level);
            if levels.len() <= level {
                levels.resize_with(level + 1, Vec::new);
            }
            if let Some(row) = levels.get_mut(level) {
                row.push(*node);
            }
        })
    }

    pub fn leaf_count(&self) -> u64 {
        self.peaks.leaf_count()
    }

    pub fn root(&self) -> Hash {
        self.peaks.root()
    }

    pub fn peaks(&self) -> MmrPeaks {
        self.peaks.clone()
    }

    /// The proof for `leaf_index` against the current size.
    pub fn proof(&self, leaf_index: u64) -> Result<MmrProof, MmrError> {
        prove(self, leaf_index, self.leaf_count())
    }

    /// The proof for `leaf_index` against the root this MMR had at `leaf_count` leaves.
    pub fn proof_at(&self, leaf_index: u64, leaf_count: u64) -> Result<MmrProof, MmrError> {
        prove(self, leaf_index, leaf_count)
    }
}

impl MmrNodes for Mmr {
    fn node(&self, level: u8, index: u64) -> Option<Hash> {
        let row = self.levels.get(usize::from(level))?;
        row.get(usize::try_from(index).ok()?).copied()
    }
}

/// Proof that a block hash is leaf `leaf_index` of the MMR of size `leaf_count`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MmrProof {
    pub leaf_index: u64,
    pub leaf_count: u64,
    /// From the leaf up to its mountain's peak (as many as the mountain's height).
    pub siblings: Vec<Hash>,
    /// Every other peak of size `leaf_count`, left to right.
    pub peaks: Vec<Hash>,
}

/// Bytes of an encoded proof holding `siblings + peaks` hashes: two `u64`s, two `u32` counts
/// and the hashes.
fn encoded_proof_len(siblings: usize, peaks: usize) -> usize {
    siblings
        .saturating_add(peaks)
        .saturating_mul(HASH_LEN)
        .saturating_add(8 + 8 + 4 + 4)
}

/// Encoded size of the proof for `leaf_index` at size `leaf_count`, from the shape alone.
pub fn proof_len(leaf_index: u64, leaf_count: u64) -> Result<usize, MmrError> {
    let shape = shape(leaf_index, leaf_count)?;
    Ok(encoded_proof_len(
        usize::from(shape.height),
        shape.other_peaks,
    ))
}

impl MmrProof {
    /// The root implied by this proof for `block_hash`, after checking the proof's shape.
    pub fn compute_root(&self, block_hash: &Hash) -> Result<Hash, MmrError> {
        let shape = shape(self.leaf_index, self.leaf_count)?;
        let expected = usize::from(shape.height);
        if self.siblings.len() != expected {
            return Err(MmrError::WrongSiblingCount {
                expected,
                got: self.siblings.len(),
            });
        }
        let expected = shape.other_peaks;
        if self.peaks.len() != expected {
            return Err(MmrError::WrongPeakCount {
                expected,
                got: self.peaks.len(),
            });
        }
        let mut node = leaf_hash(block_hash);
        for (level, sibling) in self.siblings.iter().enumerate() {
            // level < height <= 63: the shift is in range. Even index = left child.
            node = if (self.leaf_index >> level) & 1 == 0 {
                node_hash(&node, sibling)
            } else {
                node_hash(sibling, &node)
            };
        }
        let (left, right) = (
            self.peaks.iter().take(shape.position),
            self.peaks.iter().skip(shape.position),
        );
        Ok(bag(
            self.leaf_count,
            left.chain(std::iter::once(&node)).chain(right),
        ))
    }

    /// Checks that `block_hash` is leaf `self.leaf_index` of the MMR of size `leaf_count` with
    /// root `root`. The size is the caller's (from a trusted header), never the proof's.
    pub fn verify(&self, block_hash: &Hash, root: &Hash, leaf_count: u64) -> Result<(), MmrError> {
        if self.leaf_count != leaf_count {
            return Err(MmrError::LeafCountMismatch {
                expected: leaf_count,
                got: self.leaf_count,
            });
        }
        let got = self.compute_root(block_hash)?;
        if got != *root {
            return Err(MmrError::RootMismatch {
                expected: *root,
                got,
            });
        }
        Ok(())
    }

    /// Bytes of `self.encode()`.
    pub fn encoded_len(&self) -> usize {
        encoded_proof_len(self.siblings.len(), self.peaks.len())
    }
}

impl Encode for MmrProof {
    fn encode_to(&self, w: &mut Writer) {
        w.u64(self.leaf_index)
            .u64(self.leaf_count)
            .seq(&self.siblings)
            .seq(&self.peaks);
    }
}

impl Decode for MmrProof {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(MmrProof {
            leaf_index: r.u64()?,
            leaf_count: r.u64()?,
            siblings: r.seq("mmr proof siblings", MAX_MMR_HASHES)?,
            peaks: r.seq("mmr proof peaks", MAX_MMR_HASHES)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn block(i: u64) -> Hash {
        hash(Domain::BlockHeader, &i.to_le_bytes())
    }

    fn build(n: u64) -> (Mmr, Vec<Hash>) {
        let mut mmr = Mmr::new();
        let mut roots = vec![mmr.root()];
        for i in 0..n {
            mmr.append(&block(i)).unwrap();
            roots.push(mmr.root());
        }
        (mmr, roots)
    }

    /// The root straight from the definition: perfect mountains over the binary decomposition.
    fn reference_root(blocks: &[Hash]) -> Hash {
        fn mountain(leaves: &[Hash]) -> Hash {
            if leaves.len() == 1 {
                return hash(Domain::MmrLeaf, leaves[0].as_bytes());
            }
            let (l, r) = leaves.split_at(leaves.len() / 2);
            hash_pair(Domain::MmrNode, &mountain(l), &mountain(r))
        }
        let n = blocks.len();
        let mut h = Domain::MmrRoot.hasher();
        h.update(&(n as u64).to_le_bytes());
        let mut offset = 0;
        for b in (0..usize::BITS).rev() {
            if (n >> b) & 1 == 1 {
                let size = 1 << b;
                h.update(mountain(&blocks[offset..offset + size]).as_bytes());
                offset += size;
            }
        }
        Hash(*h.finalize().as_bytes())
    }

    const SIZES: [u64; 21] = [
        1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 255, 256, 257,
    ];

    #[test]
    fn root_matches_reference_and_accumulator() {
        let mut mmr = Mmr::new();
        let mut acc = MmrPeaks::new();
        let mut blocks = Vec::new();
        assert_eq!(mmr.root(), reference_root(&[]));
        assert_eq!(mmr.root(), root_from_peaks(0, &[]));
        for i in 0..300 {
            mmr.append(&block(i)).unwrap();
            acc.append(&block(i)).unwrap();
            blocks.push(block(i));
            assert_eq!(mmr.peaks(), acc);
            assert_eq!(acc.root(), mmr.root());
            assert_eq!(mmr.root(), reference_root(&blocks));
            assert_eq!(peaks_at(&mmr, i + 1).unwrap(), acc);
        }
    }

    #[test]
    fn every_proof_verifies() {
        let (mmr, _) = build(257);
        for n in SIZES {
            let root = peaks_at(&mmr, n).unwrap().root();
            for k in 0..n {
                let p = mmr.proof_at(k, n).unwrap();
                assert_eq!(p.verify(&block(k), &root, n), Ok(()), "n = {n}, k = {k}");
                assert_eq!(p.encoded_len(), p.encode().len());
                assert_eq!(proof_len(k, n), Ok(p.encoded_len()));
            }
        }
        for n in SIZES {
            let (small, _) = build(n);
            for k in 0..n {
                let p = small.proof(k).unwrap();
                assert_eq!(p.verify(&block(k), &small.root(), n), Ok(()));
            }
        }
    }

    #[test]
    fn historical_proofs_verify_against_old_roots() {
        let (mmr, roots) = build(130);
        for n in 1..=130u64 {
            for k in 0..n {
                let p = mmr.proof_at(k, n).unwrap();
                assert_eq!(p.verify(&block(k), &roots[n as usize], n), Ok(()));
            }
        }
    }

    #[test]
    fn append_reports_every_node_once() {
        let mut acc = MmrPeaks::new();
        let mut mmr = Mmr::new();
        let mut seen = Vec::new();
        for i in 0..100 {
            acc.append_with(&block(i), |l, x, h| seen.push((l, x, *h)))
                .unwrap();
            mmr.append(&block(i)).unwrap();
        }
        assert_eq!(seen.len(), 2 * 100 - 100usize.count_ones() as usize);
        for (l, x, h) in seen {
            assert_eq!(mmr.node(l, x), Some(h));
        }
    }

    #[test]
    fn tampered_proofs_fail() {
        let (mmr, _) = build(45);
        let root = mmr.root();
        for k in 0..45 {
            let p = mmr.proof(k).unwrap();
            let hashes = p.siblings.len() + p.peaks.len();
            for h in 0..hashes {
                for bit in 0..256 {
                    let mut q = p.clone();
                    let target = if h < q.siblings.len() {
                        &mut q.siblings[h]
                    } else {
                        &mut q.peaks[h - p.siblings.len()]
                    };
                    target.0[bit / 8] ^= 1 << (bit % 8);
                    assert!(matches!(
                        q.verify(&block(k), &root, 45),
                        Err(MmrError::RootMismatch { .. })
                    ));
                }
            }
            // Another block hash, a flipped root.
            assert!(matches!(
                p.verify(&block(k + 1), &root, 45),
                Err(MmrError::RootMismatch { .. })
            ));
            let mut bad_root = root;
            bad_root.0[0] ^= 1;
            assert!(matches!(
                p.verify(&block(k), &bad_root, 45),
                Err(MmrError::RootMismatch { .. })
            ));
        }
    }

    #[test]
    fn wrong_leaf_count_or_index_fails() {
        let (mmr, roots) = build(40);
        let p = mmr.proof(5).unwrap();
        assert_eq!(
            p.verify(&block(5), &mmr.root(), 39),
            Err(MmrError::LeafCountMismatch {
                expected: 39,
                got: 40
            })
        );
        // Relabelling the proof's size does not help: the root commits to it.
        for n in 6..40u64 {
            let q = MmrProof {
                leaf_count: n,
                ..p.clone()
            };
            assert!(q.verify(&block(5), &roots[n as usize], n).is_err());
            assert!(q.verify(&block(5), &mmr.root(), n).is_err());
        }
        let q = MmrProof {
            leaf_index: 40,
            ..p.clone()
        };
        assert_eq!(
            q.verify(&block(5), &mmr.root(), 40),
            Err(MmrError::IndexOutOfRange {
                index: 40,
                leaf_count: 40
            })
        );
        assert_eq!(
            mmr.proof(40),
            Err(MmrError::IndexOutOfRange {
                index: 40,
                leaf_count: 40
            })
        );
        // Another leaf index with the same shape: the fold differs.
        let q = MmrProof {
            leaf_index: 4,
            ..p.clone()
        };
        assert!(matches!(
            q.verify(&block(5), &mmr.root(), 40),
            Err(MmrError::RootMismatch { .. })
        ));
    }

    #[test]
    fn wrong_counts_fail_with_named_error() {
        let (mmr, _) = build(45); // 45 = 32 + 8 + 4 + 1: four peaks
        let root = mmr.root();
        let p = mmr.proof(33).unwrap(); // in the 8-leaf mountain
        assert_eq!((p.siblings.len(), p.peaks.len()), (3, 3));
        let mut q = p.clone();
        q.siblings.pop();
        assert_eq!(
            q.verify(&block(33), &root, 45),
            Err(MmrError::WrongSiblingCount {
                expected: 3,
                got: 2
            })
        );
        let mut q = p.clone();
        q.siblings.push(root);
        assert_eq!(
            q.verify(&block(33), &root, 45),
            Err(MmrError::WrongSiblingCount {
                expected: 3,
                got: 4
            })
        );
        let mut q = p.clone();
        q.peaks.pop();
        assert_eq!(
            q.verify(&block(33), &root, 45),
            Err(MmrError::WrongPeakCount {
                expected: 3,
                got: 2
            })
        );
        let mut q = p.clone();
        q.peaks.push(root);
        assert_eq!(
            q.verify(&block(33), &root, 45),
            Err(MmrError::WrongPeakCount {
                expected: 3,
                got: 4
            })
        );
    }

    #[test]
    fn store_smaller_than_size_fails() {
        let (mmr, _) = build(4);
        // Leaf 4 of size 5 needs no node the 4-leaf store lacks, except the leaf itself.
        assert_eq!(
            mmr.proof_at(0, 5),
            Err(MmrError::MissingNode { level: 0, index: 4 })
        );
        assert_eq!(
            mmr.proof_at(4, 5),
            Err(MmrError::MissingNode { level: 0, index: 4 })
        );
        assert_eq!(
            peaks_at(&mmr, 6),
            Err(MmrError::MissingNode { level: 1, index: 2 })
        );
    }

    #[test]
    fn from_parts_and_decode_check_peak_count() {
        assert_eq!(
            MmrPeaks::from_parts(5, vec![Hash::ZERO]),
            Err(MmrError::WrongPeakCount {
                expected: 2,
                got: 1
            })
        );
        let bad = {
            let mut w = Writer::new();
            w.u64(5).seq(&[Hash::ZERO]);
            w.into_bytes()
        };
        assert!(matches!(
            MmrPeaks::decode(&bad),
            Err(DecodeError::Invalid { .. })
        ));
        let full = MmrPeaks::from_parts(u64::MAX, vec![Hash::ZERO; 64]).unwrap();
        assert_eq!(MmrPeaks::decode(&full.encode()), Ok(full.clone()));
        let mut full = full;
        assert_eq!(full.append(&block(0)), Err(MmrError::LeafCountTooLarge));
        assert_eq!(full.leaf_count(), u64::MAX);
    }

    #[test]
    fn encode_decode_round_trip() {
        let (mmr, _) = build(100);
        for k in 0..100 {
            let p = mmr.proof(k).unwrap();
            assert_eq!(MmrProof::decode(&p.encode()), Ok(p));
        }
        let peaks = mmr.peaks();
        assert_eq!(MmrPeaks::decode(&peaks.encode()), Ok(peaks));
    }

    #[test]
    fn proof_len_from_shape() {
        // One 2^32 mountain: 32 siblings, no other peaks.
        assert_eq!(proof_len(0, 1 << 32), Ok(24 + 32 * 32));
        assert_eq!(proof_len(u64::MAX - 1, u64::MAX), Ok(24 + 32 * 63));
        assert_eq!(proof_len(0, u64::MAX), Ok(24 + 32 * (63 + 63)));
        assert_eq!(
            proof_len(3, 3),
            Err(MmrError::IndexOutOfRange {
                index: 3,
                leaf_count: 3
            })
        );
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            #[test]
            fn random_proofs_verify(n in 1u64..2000, k in any::<u64>(), m in any::<u64>()) {
                let (mmr, roots) = build(n);
                let k = k % n;
                let p = mmr.proof(k).unwrap();
                prop_assert_eq!(p.verify(&block(k), &mmr.root(), n), Ok(()));
                prop_assert_eq!(proof_len(k, n), Ok(p.encode().len()));
                // A historical size m in k+1..=n.
                let m = k + 1 + m % (n - k);
                let p = mmr.proof_at(k, m).unwrap();
                prop_assert_eq!(p.verify(&block(k), &roots[m as usize], m), Ok(()));
                prop_assert_eq!(MmrProof::decode(&p.encode()), Ok(p));
            }
        }

        proptest! {
            #[test]
            fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2200)) {
                let _ = MmrProof::decode(&bytes);
                let _ = MmrPeaks::decode(&bytes);
            }

            #[test]
            fn decoding_plausible_bytes_never_panics(
                index in any::<u64>(),
                count in any::<u64>(),
                sibs in 0u32..70,
                body in proptest::collection::vec(any::<u8>(), 0..2200),
            ) {
                let mut w = Writer::new();
                w.u64(index).u64(count).u32(sibs).raw(&body);
                if let Ok(p) = MmrProof::decode(w.as_bytes()) {
                    // Whatever decodes re-encodes identically, and checking it cannot panic.
                    prop_assert_eq!(p.encode(), w.as_bytes());
                    let _ = p.verify(&block(0), &Hash::ZERO, count);
                    let _ = proof_len(index, count);
                }
                let mut w = Writer::new();
                w.u64(count).u32(sibs).raw(&body);
                if let Ok(p) = MmrPeaks::decode(w.as_bytes()) {
                    prop_assert_eq!(p.encode(), w.into_bytes());
                }
            }

            #[test]
            fn verify_arbitrary_proof_never_panics(
                leaf_index in any::<u64>(),
                leaf_count in any::<u64>(),
                sibs in proptest::collection::vec(any::<[u8; 32]>(), 0..66),
                peaks in proptest::collection::vec(any::<[u8; 32]>(), 0..66),
            ) {
                let p = MmrProof {
                    leaf_index,
                    leaf_count,
                    siblings: sibs.into_iter().map(Hash).collect(),
                    peaks: peaks.into_iter().map(Hash).collect(),
                };
                let _ = p.verify(&block(0), &Hash::ZERO, leaf_count);
            }
        }
    }
}
