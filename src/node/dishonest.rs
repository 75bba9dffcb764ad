//! **Test only.** A node that lies in its answers, so light-client tests can check that a
//! dishonest peer is caught and dropped while the honest ones still get the client to the head.
//!
//! The node serves from its store as usual ([`super::serve::serve`]); with a [`Dishonest`] mode
//! set (`headway node --dishonest MODE`, a hidden flag), [`tamper`] alters the response just
//! before it is sent. It is applied in that one place, and an honest node (mode `None`) never
//! calls it. Nothing in a production setup should set it.

use serde::{Deserialize, Serialize};

use crate::chain::{BlockHeader, Commit, Decode, Hash};
use crate::proof::MmrPeaks;
use crate::protocol::blocks::BlocksResponse;
use crate::protocol::headers::HeadersResponse;
use crate::protocol::proof::ProofResponse;
use crate::protocol::snapshot::{Snapshot, SnapshotChunk, SnapshotResponse};
use crate::protocol::Response;

/// How a dishonest node lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Dishonest {
    /// Every served header and block has a byte of its first commit signature flipped: the
    /// header hash is unchanged (so the checkpoint's header still matches) but the commit no
    /// longer verifies. The first signature, because a verifier checks only as many
    /// signatures as reach the quorum, in order.
    BadSignature,
    /// In every answer of two or more headers (or blocks), the last one names another parent:
    /// a client verifying in height order finds it does not link to the header before it,
    /// from the same answer. Single-header answers (the checkpoint's header, fork probes) are
    /// left honest, so the fault shows as a broken link and not as a checkpoint mismatch.
    WrongParent,
    /// Every event proof has a byte flipped in its MMR path (a sibling, else a peak), else in
    /// its Merkle path; a proof with neither (the only event of the trusted block) gets its
    /// block's events root flipped instead, so every served proof is wrong.
    ForgedProof,
    /// Every warp-sync snapshot is forged: a one-chunk snapshot is decoded, its first MMR peak
    /// flipped, and encoded again with a matching snapshot hash, so only the check against
    /// the trusted header can catch it; a chunk of a larger snapshot gets a data byte flipped.
    ForgedSnapshot,
    /// Block requests are accepted and never answered (the stream stays open), so the
    /// requester's timeout and stall detection must move the range to another peer.
    Stall,
}

impl Dishonest {
    /// Whether a node in this mode leaves `request` unanswered.
    pub fn withholds(self, request: &crate::protocol::Request) -> bool {
        self == Dishonest::Stall && matches!(request, crate::protocol::Request::GetBlocks(_))
    }
}

/// `response` as a node in `mode` sends it.
pub fn tamper(mode: Dishonest, response: Response) -> Response {
    match (mode, response) {
        (Dishonest::BadSignature, Response::Headers(HeadersResponse::Headers(mut headers))) => {
            for h in &mut headers {
                flip_signature(&mut h.commit);
            }
            Response::Headers(HeadersResponse::Headers(headers))
        }
        (Dishonest::BadSignature, Response::Blocks(BlocksResponse::Blocks(mut blocks))) => {
            for b in &mut blocks {
                flip_signature(&mut b.commit);
            }
            Response::Blocks(BlocksResponse::Blocks(blocks))
        }
        (Dishonest::WrongParent, Response::Headers(HeadersResponse::Headers(mut headers))) => {
            if headers.len() >= 2 {
                if let Some(last) = headers.last_mut() {
                    flip_parent(&mut last.header);
                }
            }
            Response::Headers(HeadersResponse::Headers(headers))
        }
        (Dishonest::WrongParent, Response::Blocks(BlocksResponse::Blocks(mut blocks))) => {
            if blocks.len() >= 2 {
                if let Some(last) = blocks.last_mut() {
                    flip_parent(&mut last.block.header);
                }
            }
            Response::Blocks(BlocksResponse::Blocks(blocks))
        }
        (Dishonest::ForgedProof, Response::Proof(ProofResponse::Proof(Some(mut proof)))) => {
            let mmr_hash = proof
                .mmr
                .as_mut()
                .and_then(|m| m.siblings.first_mut().or(m.peaks.first_mut()));
            let target = match mmr_hash {
                Some(hash) => hash,
                None => match proof.merkle.siblings.first_mut() {
                    Some(hash) => hash,
                    None => &mut proof.header.events_root,
                },
            };
            flip(target);
            Response::Proof(ProofResponse::Proof(Some(proof)))
        }
        (Dishonest::ForgedSnapshot, Response::Snapshot(SnapshotResponse::Chunk(chunk))) => {
            Response::Snapshot(SnapshotResponse::Chunk(forge_snapshot_chunk(chunk)))
        }
        (_, response) => response,
    }
}

fn forge_snapshot_chunk(mut chunk: SnapshotChunk) -> SnapshotChunk {
    if chunk.total_chunks == 1 {
        if let Ok(mut snapshot) = Snapshot::decode(&chunk.data) {
            let mut peaks = snapshot.peaks.peaks().to_vec();
            if let Some(first) = peaks.first_mut() {
                flip(first);
                if let Ok(forged) = MmrPeaks::from_parts(snapshot.peaks.leaf_count(), peaks) {
                    snapshot.peaks = forged;
                    if let Some(forged) = snapshot.to_encoded().ok().and_then(|e| e.chunk(0)) {
                        return forged;
                    }
                }
            }
        }
    }
    if let Some(byte) = chunk.data.first_mut() {
        *byte ^= 0x01;
    }
    chunk
}

fn flip(hash: &mut Hash) {
    hash.0[0] ^= 0x01;
}

fn flip_signature(commit: &mut Commit) {
    if let Some(sig) = commit.signatures.first_mut() {
        sig.signature.0[0] ^= 0x01;
    }
}

fn flip_parent(header: &mut BlockHeader) {
    flip(&mut header.parent_hash);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{FinalizedBlock, TrustedHeader};
    use crate::proof::mmr::Mmr;
    use crate::proof::EventProof;
    use crate::testkit::{self, ChainBuilder};
    use crate::verify::{TrustedState, Verifier, VerifyError};

    /// Blocks 0..n (3 events each), the genesis-trusted state, and the MMR over them.
    fn chain(n: usize) -> (TrustedState, Vec<FinalizedBlock>, Mmr) {
        let mut chain = ChainBuilder::new("dishonest", 4);
        let source = testkit::key(77);
        let mut blocks = Vec::new();
        let mut state = None;
        for i in 0..n {
            let events = (0..3)
                .map(|e| testkit::event(&source, i as u64 * 3 + e, 1))
                .collect();
            let (block, trusted) = chain.next_block(events);
            if i == 0 {
                state = Some(TrustedState {
                    hash: trusted.header.hash(),
                    header: trusted.header.clone(),
                    next_validators: std::sync::Arc::new(chain.current_set().clone()),
                });
            }
            blocks.push(FinalizedBlock {
                block,
                commit: trusted.commit,
                next_validators: trusted.next_validators,
            });
        }
        (state.unwrap(), blocks, chain.mmr().clone())
    }

    fn headers(blocks: &[FinalizedBlock]) -> Vec<TrustedHeader> {
        blocks.iter().map(FinalizedBlock::trusted_header).collect()
    }

    fn served_headers(mode: Dishonest, headers: Vec<TrustedHeader>) -> Vec<TrustedHeader> {
        match tamper(mode, Response::Headers(HeadersResponse::Headers(headers))) {
            Response::Headers(HeadersResponse::Headers(h)) => h,
            other => panic!("unexpected {other:?}"),
        }
    }

    const NOW: u64 = u64::MAX / 2;

    #[test]
    fn bad_signature_keeps_the_hash_and_breaks_the_commit() {
        let (trusted, blocks, _) = chain(4);
        let honest = headers(&blocks[1..]);
        Verifier::new()
            .verify_range(&trusted, &honest, NOW)
            .unwrap();
        let served = served_headers(Dishonest::BadSignature, honest.clone());
        for (h, s) in honest.iter().zip(&served) {
            assert_eq!(h.header.hash(), s.header.hash());
            assert_ne!(h.commit, s.commit);
        }
        let err = Verifier::new()
            .verify(&trusted, &served[0], NOW)
            .unwrap_err();
        assert!(
            matches!(err, VerifyError::InvalidSignature { .. }),
            "{err:?}"
        );
        let blocks = match tamper(
            Dishonest::BadSignature,
            Response::Blocks(BlocksResponse::Blocks(blocks[1..2].to_vec())),
        ) {
            Response::Blocks(BlocksResponse::Blocks(b)) => b,
            other => panic!("unexpected {other:?}"),
        };
        assert!(Verifier::new()
            .verify(&trusted, &blocks[0].trusted_header(), NOW)
            .is_err());
    }

    #[test]
    fn wrong_parent_breaks_the_link_of_the_last_header_only() {
        let (trusted, blocks, _) = chain(5);
        let honest = headers(&blocks[1..]);
        let served = served_headers(Dishonest::WrongParent, honest.clone());
        assert_eq!(served[..3], honest[..3]);
        let failure = Verifier::new()
            .verify_range(&trusted, &served, NOW)
            .unwrap_err();
        assert!(
            format!("{failure:?}").contains("ParentHashMismatch"),
            "{failure:?}"
        );
        // A single header is served as stored.
        let one = honest[..1].to_vec();
        assert_eq!(served_headers(Dishonest::WrongParent, one.clone()), one);
    }

    #[test]
    fn forged_proof_never_verifies() {
        let (_, blocks, mmr) = chain(6);
        let head = &blocks[5].block.header;
        for (height, at) in [(2usize, 5u64), (5, 5)] {
            let proof = EventProof::build(&blocks[height].block, 1, &mmr, at).unwrap();
            proof.verify(head).unwrap();
            let forged = match tamper(
                Dishonest::ForgedProof,
                Response::Proof(ProofResponse::Proof(Some(Box::new(proof.clone())))),
            ) {
                Response::Proof(ProofResponse::Proof(Some(p))) => p,
                other => panic!("unexpected {other:?}"),
            };
            assert_eq!(forged.event, proof.event);
            assert!(forged.verify(head).is_err(), "forged proof at {height}");
        }
    }

    #[test]
    fn forged_snapshot_assembles_but_fails_its_check() {
        let (_, blocks, mmr) = chain(6);
        let trusted = blocks[5].trusted_header();
        let snapshot = Snapshot {
            peaks: crate::proof::mmr::peaks_at(&mmr, 5).unwrap(),
            next_validators: testkit::validator_set(&testkit::keys(0, 4)),
            header: trusted,
            lowest_height: 0,
        };
        snapshot.check().unwrap();
        let chunk = snapshot.to_encoded().unwrap().chunk(0).unwrap();
        let forged = match tamper(
            Dishonest::ForgedSnapshot,
            Response::Snapshot(SnapshotResponse::Chunk(chunk.clone())),
        ) {
            Response::Snapshot(SnapshotResponse::Chunk(c)) => c,
            other => panic!("unexpected {other:?}"),
        };
        assert_ne!(forged, chunk);
        let mut assembler = crate::protocol::snapshot::SnapshotAssembler::new(5);
        assert!(assembler.push(forged).unwrap());
        let err = assembler.finish().unwrap_err();
        assert!(
            matches!(
                err,
                crate::protocol::snapshot::SnapshotError::PeaksRoot { .. }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn other_answers_pass_unchanged() {
        let (_, blocks, _) = chain(3);
        let response = Response::Headers(HeadersResponse::Headers(headers(&blocks)));
        assert_eq!(tamper(Dishonest::ForgedProof, response.clone()), response);
        let none = Response::Proof(ProofResponse::Proof(None));
        assert_eq!(tamper(Dishonest::ForgedProof, none.clone()), none);
    }
}
