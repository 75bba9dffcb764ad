//! `/headway/1/snapshot`: `GetSnapshot { height, chunk }` → `SnapshotChunk`.
//!
//! A [`Snapshot`] is what a node needs to continue a chain from a height without its history:
//! the trusted header at that height, the MMR peaks over all earlier blocks, the validator set
//! that signs the next block and the lowest height the serving node still has blocks for.
//!
//! The encoded snapshot is split into chunks of exactly
//! [`SNAPSHOT_CHUNK_BYTES`] (the last holds the rest).
//! Every chunk carries the total number of chunks and the hash of the whole encoding, so the
//! receiver ([`SnapshotAssembler`]) can check each chunk belongs to the same snapshot and that
//! the reassembled bytes are the snapshot the first chunk announced. The snapshot's header still
//! has to be verified against a trusted checkpoint or header, and [`Snapshot::check`] ties the
//! peaks and the validator set to that header.

use super::limits::{MAX_SNAPSHOT_BYTES, MAX_SNAPSHOT_CHUNKS, SNAPSHOT_CHUNK_BYTES};
use super::{read_response_tag, ErrorResponse, Protocol, Rpc, RESPONSE_ERROR, RESPONSE_OK};
use crate::chain::{
    Decode, DecodeError, Encode, Hash, Reader, TrustedHeader, ValidatorSet, Writer,
};
use crate::proof::{MmrError, MmrPeaks};

/// BLAKE3 derive-key context of the snapshot hash; the key is derived like a [`crate::chain::Domain`]'s.
pub const SNAPSHOT_HASH_CONTEXT: &str = "headway v1 snapshot";

/// `BLAKE3-keyed(derive_key(SNAPSHOT_HASH_CONTEXT, ""), encoded snapshot)`.
pub fn snapshot_hash(encoded: &[u8]) -> Hash {
    static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(|| blake3::derive_key(SNAPSHOT_HASH_CONTEXT, b""));
    Hash(*blake3::keyed_hash(key, encoded).as_bytes())
}

/// The state to continue the chain after `header` without its history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub header: TrustedHeader,
    /// MMR peaks over the block hashes of heights `0..header.height` (so their root is the
    /// header's `mmr_root`). Append the header's hash to continue at `header.height + 1`.
    pub peaks: MmrPeaks,
    /// The set that signs block `header.height + 1` (hashes to `next_validators_hash`).
    pub next_validators: ValidatorSet,
    /// Lowest height whose block the serving node still has.
    pub lowest_height: u64,
}

/// Asks for chunk `chunk` of the snapshot at `height`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GetSnapshot {
    pub height: u64,
    /// Below [`MAX_SNAPSHOT_CHUNKS`].
    pub chunk: u32,
}

/// One chunk of an encoded snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotChunk {
    pub height: u64,
    /// Index of this chunk, below `total_chunks`.
    pub chunk: u32,
    /// 1 to [`MAX_SNAPSHOT_CHUNKS`].
    pub total_chunks: u32,
    /// [`snapshot_hash`] of the whole encoded snapshot.
    pub snapshot_hash: Hash,
    /// 1 to [`SNAPSHOT_CHUNK_BYTES`] bytes; exactly that many unless this is the last chunk.
    pub data: Vec<u8>,
}

/// The response on `/headway/1/snapshot`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotResponse {
    Chunk(SnapshotChunk),
    Error(ErrorResponse),
}

/// Marker for the snapshot protocol.
#[derive(Clone, Copy, Debug)]
pub struct SnapshotRpc;

impl Rpc for SnapshotRpc {
    const PROTOCOL: Protocol = Protocol::Snapshot;
    type Request = GetSnapshot;
    type Response = SnapshotResponse;

    fn error(error: ErrorResponse) -> SnapshotResponse {
        SnapshotResponse::Error(error)
    }
}

/// Why a snapshot, or a chunk of one, is rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot encodes to {0} bytes, more than the maximum {MAX_SNAPSHOT_BYTES}")]
    TooLarge(usize),
    #[error("chunk is for height {got}, expected {expected}")]
    WrongHeight { expected: u64, got: u64 },
    #[error("chunk announces {got_total} chunks and hash {got_hash}, earlier chunks {expected_total} and {expected_hash}")]
    Inconsistent {
        expected_total: u32,
        expected_hash: Hash,
        got_total: u32,
        got_hash: Hash,
    },
    #[error("chunk {chunk} has {len} bytes, expected {expected}")]
    WrongChunkLength {
        chunk: u32,
        len: usize,
        expected: String,
    },
    #[error("chunk {0} received twice")]
    Duplicate(u32),
    #[error("{missing} of {total} chunks still missing")]
    Incomplete { missing: u32, total: u32 },
    #[error("reassembled snapshot hashes to {got}, the chunks announced {expected}")]
    HashMismatch { expected: Hash, got: Hash },
    #[error("reassembled snapshot does not decode: {0}")]
    Decode(#[from] DecodeError),
    #[error("snapshot peaks cover {leaves} blocks, the header is at height {height}")]
    PeaksLeafCount { leaves: u64, height: u64 },
    #[error("snapshot peaks have root {got}, the header's MMR root is {expected}")]
    PeaksRoot { expected: Hash, got: Hash },
    #[error("snapshot's next validator set hashes to {got}, the header names {expected}")]
    NextValidators { expected: Hash, got: Hash },
    #[error("snapshot's lowest height {lowest} is above its height {height}")]
    LowestHeight { lowest: u64, height: u64 },
    #[error("snapshot peaks cannot be extended: {0}")]
    Mmr(#[from] MmrError),
}

impl Snapshot {
    pub fn height(&self) -> u64 {
        self.header.header.height
    }

    /// Checks that the parts agree with the header: the peaks cover heights `0..height` and bag
    /// to its MMR root, the next set is the one it names, and `lowest_height ≤ height`. (The
    /// header itself must be verified by the caller against what it trusts.)
    pub fn check(&self) -> Result<(), SnapshotError> {
        let h = &self.header.header;
        if self.peaks.leaf_count() != h.height {
            return Err(SnapshotError::PeaksLeafCount {
                leaves: self.peaks.leaf_count(),
                height: h.height,
            });
        }
        let root = self.peaks.root();
        if root != h.mmr_root {
            return Err(SnapshotError::PeaksRoot {
                expected: h.mmr_root,
                got: root,
            });
        }
        if self.next_validators.hash() != h.next_validators_hash {
            return Err(SnapshotError::NextValidators {
                expected: h.next_validators_hash,
                got: self.next_validators.hash(),
            });
        }
        if self.lowest_height > h.height {
            return Err(SnapshotError::LowestHeight {
                lowest: self.lowest_height,
                height: h.height,
            });
        }
        Ok(())
    }

    /// The peaks after appending the snapshot's own block: the MMR the next header commits to.
    pub fn peaks_after(&self) -> Result<MmrPeaks, SnapshotError> {
        let mut peaks = self.peaks.clone();
        peaks.append(&self.header.header.hash())?;
        Ok(peaks)
    }

    /// Encodes the snapshot once, ready to serve its chunks.
    pub fn to_encoded(&self) -> Result<EncodedSnapshot, SnapshotError> {
        EncodedSnapshot::new(self.height(), self.encode())
    }
}

/// An encoded snapshot with its hash: serves chunks without re-encoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedSnapshot {
    height: u64,
    bytes: Vec<u8>,
    hash: Hash,
}

impl EncodedSnapshot {
    /// Wraps the encoding of a snapshot at `height` (at most [`MAX_SNAPSHOT_BYTES`]).
    pub fn new(height: u64, bytes: Vec<u8>) -> Result<EncodedSnapshot, SnapshotError> {
        if bytes.is_empty() || bytes.len() > MAX_SNAPSHOT_BYTES {
            return Err(SnapshotError::TooLarge(bytes.len()));
        }
        let hash = snapshot_hash(&bytes);
        Ok(EncodedSnapshot {
            height,
            bytes,
            hash,
        })
    }

    pub fn hash(&self) -> Hash {
        self.hash
    }

    pub fn total_chunks(&self) -> u32 {
        self.bytes.len().div_ceil(SNAPSHOT_CHUNK_BYTES) as u32
    }

    /// Chunk `index`, or `None` past the last.
    pub fn chunk(&self, index: u32) -> Option<SnapshotChunk> {
        let data = self
            .bytes
            .chunks(SNAPSHOT_CHUNK_BYTES)
            .nth(index as usize)?;
        Some(SnapshotChunk {
            height: self.height,
            chunk: index,
            total_chunks: self.total_chunks(),
            snapshot_hash: self.hash,
            data: data.to_vec(),
        })
    }

    /// All chunks, in order.
    pub fn chunks(&self) -> Vec<SnapshotChunk> {
        (0..self.total_chunks())
            .filter_map(|i| self.chunk(i))
            .collect()
    }
}

/// Collects the chunks of one snapshot, in any order, and checks the result.
#[derive(Debug)]
pub struct SnapshotAssembler {
    height: u64,
    /// `(total_chunks, snapshot_hash)` fixed by the first chunk.
    announced: Option<(u32, Hash)>,
    chunks: Vec<Option<Vec<u8>>>,
    received: u32,
}

impl SnapshotAssembler {
    /// Expects the chunks of the snapshot at `height`.
    pub fn new(height: u64) -> SnapshotAssembler {
        SnapshotAssembler {
            height,
            announced: None,
            chunks: Vec::new(),
            received: 0,
        }
    }

    /// Adds a chunk. The first chunk fixes the number of chunks and the hash; every other must
    /// agree. Returns whether all chunks are now in.
    pub fn push(&mut self, chunk: SnapshotChunk) -> Result<bool, SnapshotError> {
        if chunk.height != self.height {
            return Err(SnapshotError::WrongHeight {
                expected: self.height,
                got: chunk.height,
            });
        }
        if let Some((total, hash)) = self.announced {
            if (total, hash) != (chunk.total_chunks, chunk.snapshot_hash) {
                return Err(SnapshotError::Inconsistent {
                    expected_total: total,
                    expected_hash: hash,
                    got_total: chunk.total_chunks,
                    got_hash: chunk.snapshot_hash,
                });
            }
        }
        // Decoding guarantees 1 ≤ total ≤ MAX_SNAPSHOT_CHUNKS, chunk < total and the length
        // rule; chunks built by hand are checked here too, before anything is allocated.
        check_chunk_shape(&chunk).map_err(|e| SnapshotError::WrongChunkLength {
            chunk: chunk.chunk,
            len: chunk.data.len(),
            expected: e.to_string(),
        })?;
        let (total, _) = *self
            .announced
            .get_or_insert((chunk.total_chunks, chunk.snapshot_hash));
        if self.chunks.is_empty() {
            self.chunks = vec![None; total as usize];
        }
        let slot = &mut self.chunks[chunk.chunk as usize];
        if slot.is_some() {
            return Err(SnapshotError::Duplicate(chunk.chunk));
        }
        *slot = Some(chunk.data);
        self.received += 1;
        Ok(self.is_complete())
    }

    pub fn is_complete(&self) -> bool {
        matches!(self.announced, Some((total, _)) if self.received == total)
    }

    /// Indices of the chunks still missing (all of `0..total` once the first chunk is in;
    /// `[0]` before).
    pub fn missing(&self) -> Vec<u32> {
        if self.announced.is_none() {
            return vec![0];
        }
        (0..self.chunks.len() as u32)
            .filter(|&i| self.chunks[i as usize].is_none())
            .collect()
    }

    /// Reassembles, checks the hash, decodes and [`Snapshot::check`]s the snapshot.
    pub fn finish(self) -> Result<Snapshot, SnapshotError> {
        let Some((total, expected)) = self.announced else {
            return Err(SnapshotError::Incomplete {
                missing: 1,
                total: 1,
            });
        };
        if self.received != total {
            return Err(SnapshotError::Incomplete {
                missing: total - self.received,
                total,
            });
        }
        let bytes: Vec<u8> = self.chunks.into_iter().flatten().flatten().collect();
        let got = snapshot_hash(&bytes);
        if got != expected {
            return Err(SnapshotError::HashMismatch { expected, got });
        }
        let snapshot = Snapshot::decode(&bytes)?;
        if snapshot.height() != self.height {
            return Err(SnapshotError::WrongHeight {
                expected: self.height,
                got: snapshot.height(),
            });
        }
        snapshot.check()?;
        Ok(snapshot)
    }
}

/// The structural rules of a chunk: index below total, total within the maximum, data 1 to
/// [`SNAPSHOT_CHUNK_BYTES`] bytes and exactly that many unless last.
fn check_chunk_shape(c: &SnapshotChunk) -> Result<(), DecodeError> {
    let invalid = |reason: String| DecodeError::Invalid {
        what: "snapshot chunk",
        reason,
    };
    if c.total_chunks == 0 || c.total_chunks > MAX_SNAPSHOT_CHUNKS {
        return Err(invalid(format!(
            "total of {} chunks is not within 1..={MAX_SNAPSHOT_CHUNKS}",
            c.total_chunks
        )));
    }
    if c.chunk >= c.total_chunks {
        return Err(invalid(format!(
            "chunk index {} is not below the total {}",
            c.chunk, c.total_chunks
        )));
    }
    let last = c.chunk + 1 == c.total_chunks;
    let ok = if last {
        (1..=SNAPSHOT_CHUNK_BYTES).contains(&c.data.len())
    } else {
        c.data.len() == SNAPSHOT_CHUNK_BYTES
    };
    if !ok {
        return Err(invalid(format!(
            "{} bytes in chunk {} of {}",
            c.data.len(),
            c.chunk,
            c.total_chunks
        )));
    }
    Ok(())
}

impl Encode for Snapshot {
    fn encode_to(&self, w: &mut Writer) {
        w.value(&self.header)
            .value(&self.peaks)
            .value(&self.next_validators)
            .u64(self.lowest_height);
    }
}

impl Decode for Snapshot {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Snapshot {
            header: TrustedHeader::decode_from(r)?,
            peaks: MmrPeaks::decode_from(r)?,
            next_validators: ValidatorSet::decode_from(r)?,
            lowest_height: r.u64()?,
        })
    }
}

impl Encode for GetSnapshot {
    fn encode_to(&self, w: &mut Writer) {
        w.u64(self.height).u32(self.chunk);
    }
}

impl Decode for GetSnapshot {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let req = GetSnapshot {
            height: r.u64()?,
            chunk: r.u32()?,
        };
        if req.chunk >= MAX_SNAPSHOT_CHUNKS {
            return Err(DecodeError::TooLong {
                what: "snapshot chunk index",
                len: req.chunk.into(),
                max: (MAX_SNAPSHOT_CHUNKS - 1).into(),
            });
        }
        Ok(req)
    }
}

impl Encode for SnapshotChunk {
    fn encode_to(&self, w: &mut Writer) {
        w.u64(self.height)
            .u32(self.chunk)
            .u32(self.total_chunks)
            .hash(&self.snapshot_hash)
            .bytes(&self.data);
    }
}

impl Decode for SnapshotChunk {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let chunk = SnapshotChunk {
            height: r.u64()?,
            chunk: r.u32()?,
            total_chunks: r.u32()?,
            snapshot_hash: r.hash()?,
            data: r
                .bytes("snapshot chunk data", SNAPSHOT_CHUNK_BYTES)?
                .to_vec(),
        };
        check_chunk_shape(&chunk)?;
        Ok(chunk)
    }
}

impl Encode for SnapshotResponse {
    fn encode_to(&self, w: &mut Writer) {
        match self {
            SnapshotResponse::Chunk(c) => w.u8(RESPONSE_OK).value(c),
            SnapshotResponse::Error(e) => w.u8(RESPONSE_ERROR).value(e),
        };
    }
}

impl Decode for SnapshotResponse {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(if read_response_tag(r, "snapshot response")? {
            SnapshotResponse::Chunk(SnapshotChunk::decode_from(r)?)
        } else {
            SnapshotResponse::Error(ErrorResponse::decode_from(r)?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::limits::MAX_RESPONSE_BYTES;
    use super::super::test_util::round_trip;
    use super::super::ErrorCode;
    use super::*;
    use crate::testkit::{self, ChainBuilder};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// A snapshot at height 5 of a chain that hands over to a new set at 6.
    fn snapshot() -> Snapshot {
        let mut chain = ChainBuilder::new("devnet", 4).hand_over_at(6, testkit::keys(20, 5));
        let headers = chain.headers(6);
        let header = headers[5].clone();
        let mut peaks = MmrPeaks::new();
        for h in &headers[..5] {
            peaks.append(&h.header.hash()).unwrap();
        }
        Snapshot {
            next_validators: chain.current_set().clone(),
            header,
            peaks,
            lowest_height: 2,
        }
    }

    /// A chunk of `len` bytes of a fake snapshot with `total` chunks.
    fn chunk(index: u32, total: u32, len: usize) -> SnapshotChunk {
        SnapshotChunk {
            height: 5,
            chunk: index,
            total_chunks: total,
            snapshot_hash: Hash([4; 32]),
            data: vec![index as u8; len],
        }
    }

    #[test]
    fn messages_round_trip() {
        let s = snapshot();
        assert_eq!(s.check(), Ok(()));
        round_trip(&s);
        round_trip(&GetSnapshot {
            height: 5,
            chunk: MAX_SNAPSHOT_CHUNKS - 1,
        });
        round_trip(&SnapshotResponse::Chunk(chunk(0, 1, 10)));
        round_trip(&SnapshotResponse::Error(ErrorResponse::new(
            ErrorCode::NotFound,
            "no snapshot at 5",
        )));
    }

    #[test]
    fn a_full_chunk_fits_the_response_cap() {
        let r = SnapshotResponse::Chunk(chunk(0, 2, SNAPSHOT_CHUNK_BYTES));
        assert!(r.encode().len() <= MAX_RESPONSE_BYTES);
        round_trip(&r);
    }

    #[test]
    fn chunks_reassemble_in_any_order() {
        let s = snapshot();
        // Pad the encoding to three chunks to exercise the split (the trailing bytes make it
        // undecodable, so reassemble the raw bytes and compare).
        let mut bytes = s.encode();
        bytes.resize(2 * SNAPSHOT_CHUNK_BYTES + 5, 0xab);
        let enc = EncodedSnapshot::new(5, bytes.clone()).unwrap();
        assert_eq!(enc.total_chunks(), 3);
        let chunks = enc.chunks();
        assert_eq!(chunks[2].data.len(), 5);
        assert!(enc.chunk(3).is_none());
        let mut asm = SnapshotAssembler::new(5);
        assert_eq!(asm.missing(), vec![0]);
        assert_eq!(asm.push(chunks[2].clone()), Ok(false));
        assert_eq!(asm.missing(), vec![0, 1]);
        assert_eq!(asm.push(chunks[0].clone()), Ok(false));
        assert_eq!(asm.push(chunks[1].clone()), Ok(true));
        // The hash checks out; decoding then fails on the padding.
        assert!(matches!(
            asm.finish(),
            Err(SnapshotError::Decode(DecodeError::TrailingBytes(_)))
        ));

        let enc = s.to_encoded().unwrap();
        assert_eq!(enc.total_chunks(), 1);
        let mut asm = SnapshotAssembler::new(5);
        for c in enc.chunks() {
            round_trip(&c);
            asm.push(c).unwrap();
        }
        let back = asm.finish().unwrap();
        assert_eq!(back, s);
        assert_eq!(back.peaks_after().unwrap().root(), {
            let mut p = s.peaks.clone();
            p.append(&s.header.header.hash()).unwrap();
            p.root()
        });
    }

    #[test]
    fn rejects_inconsistent_duplicate_and_foreign_chunks() {
        let mut asm = SnapshotAssembler::new(5);
        asm.push(chunk(0, 2, SNAPSHOT_CHUNK_BYTES)).unwrap();
        assert_eq!(
            asm.push(chunk(0, 2, SNAPSHOT_CHUNK_BYTES)),
            Err(SnapshotError::Duplicate(0))
        );
        assert!(matches!(
            asm.push(chunk(1, 3, 4)),
            Err(SnapshotError::Inconsistent { got_total: 3, .. })
        ));
        let mut other_hash = chunk(1, 2, 4);
        other_hash.snapshot_hash = Hash([5; 32]);
        assert!(matches!(
            asm.push(other_hash),
            Err(SnapshotError::Inconsistent { .. })
        ));
        let mut other_height = chunk(1, 2, 4);
        other_height.height = 6;
        assert_eq!(
            asm.push(other_height),
            Err(SnapshotError::WrongHeight {
                expected: 5,
                got: 6
            })
        );
        assert!(matches!(
            asm.push(chunk(1, 2, 0)),
            Err(SnapshotError::WrongChunkLength { .. })
        ));
        assert_eq!(
            SnapshotAssembler::new(5).finish(),
            Err(SnapshotError::Incomplete {
                missing: 1,
                total: 1
            })
        );
        assert_eq!(
            asm.finish(),
            Err(SnapshotError::Incomplete {
                missing: 1,
                total: 2
            })
        );
    }

    #[test]
    fn rejects_a_reassembly_that_does_not_match_the_hash() {
        let enc = snapshot().to_encoded().unwrap();
        let mut c = enc.chunk(0).unwrap();
        c.data[0] ^= 1;
        let mut asm = SnapshotAssembler::new(5);
        asm.push(c).unwrap();
        assert!(matches!(
            asm.finish(),
            Err(SnapshotError::HashMismatch { .. })
        ));
    }

    #[test]
    fn rejects_malformed_chunks_when_decoding() {
        for bad in [
            chunk(0, 0, 4),
            chunk(2, 2, 4),
            chunk(0, MAX_SNAPSHOT_CHUNKS + 1, SNAPSHOT_CHUNK_BYTES),
            chunk(0, 2, 4),
            chunk(1, 2, 0),
        ] {
            assert!(
                matches!(
                    SnapshotChunk::decode(&bad.encode()),
                    Err(DecodeError::Invalid { .. })
                ),
                "{:?}",
                (bad.chunk, bad.total_chunks, bad.data.len())
            );
        }
        let mut w = Writer::new();
        w.u64(5)
            .u32(0)
            .u32(1)
            .hash(&Hash::ZERO)
            .u32(SNAPSHOT_CHUNK_BYTES as u32 + 1);
        assert!(matches!(
            SnapshotChunk::decode(w.as_bytes()),
            Err(DecodeError::TooLong { .. })
        ));
        assert!(matches!(
            GetSnapshot::decode(
                &GetSnapshot {
                    height: 0,
                    chunk: MAX_SNAPSHOT_CHUNKS
                }
                .encode()
            ),
            Err(DecodeError::TooLong { .. })
        ));
    }

    #[test]
    fn check_rejects_parts_that_disagree_with_the_header() {
        let s = snapshot();
        let mut bad = s.clone();
        bad.peaks.append(&Hash([1; 32])).unwrap();
        assert!(matches!(
            bad.check(),
            Err(SnapshotError::PeaksLeafCount {
                leaves: 6,
                height: 5
            })
        ));
        let mut bad = s.clone();
        bad.peaks = MmrPeaks::from_parts(5, vec![Hash([1; 32]), Hash([2; 32])]).unwrap();
        assert!(matches!(bad.check(), Err(SnapshotError::PeaksRoot { .. })));
        let mut bad = s.clone();
        bad.next_validators = testkit::validator_set(&testkit::keys(0, 4));
        assert!(matches!(
            bad.check(),
            Err(SnapshotError::NextValidators { .. })
        ));
        let mut bad = s.clone();
        bad.lowest_height = 6;
        assert_eq!(
            bad.check(),
            Err(SnapshotError::LowestHeight {
                lowest: 6,
                height: 5
            })
        );
        assert!(matches!(
            EncodedSnapshot::new(5, vec![0; MAX_SNAPSHOT_BYTES + 1]),
            Err(SnapshotError::TooLarge(_))
        ));
    }
}
