//! End-to-end event proofs: build from a chain, verify against the event's block or any later
//! header, and reject every kind of tampering.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use headway::chain::{Block, ChainId, Decode, Encode, EventError};
use headway::proof::{EventProof, EventProofError, MerkleError, MmrError};
use headway::testkit::{self, ChainBuilder};

/// Twelve blocks with 0..=5 events each (block h has h % 6 events).
fn chain() -> (ChainBuilder, Vec<Block>) {
    let source = testkit::key(7);
    let mut chain = ChainBuilder::new("proof-chain", 4);
    let mut blocks = Vec::new();
    let mut n = 0;
    for h in 0..12u64 {
        let events = (0..h % 6)
            .map(|_| {
                n += 1;
                testkit::event(&source, n, 1_700_000_000_000 + n)
            })
            .collect();
        blocks.push(chain.next_block(events).0);
    }
    (chain, blocks)
}

fn proof(chain: &ChainBuilder, blocks: &[Block], h: usize, i: u32, t: usize) -> EventProof {
    EventProof::build(&blocks[h], i, chain.mmr(), t as u64).unwrap()
}

#[test]
fn every_event_verifies_against_its_block_and_every_later_header() {
    let (chain, blocks) = chain();
    for (h, block) in blocks.iter().enumerate() {
        for i in 0..block.events.len() as u32 {
            for t in h..blocks.len() {
                let p = proof(&chain, &blocks, h, i, t);
                assert_eq!(p.mmr.is_some(), t > h);
                let v = p.verify(&blocks[t].header).unwrap();
                assert_eq!(v.event_id, block.events[i as usize].id());
                assert_eq!(v.height, h as u64);
                assert_eq!(v.block_hash, block.header.hash());
                assert_eq!(v.index, i);
                assert_eq!(EventProof::decode(&p.encode()), Ok(p));
            }
        }
    }
}

#[test]
fn rejects_an_altered_event() {
    let (chain, blocks) = chain();
    let mut p = proof(&chain, &blocks, 5, 2, 9);
    p.event.event.actor.push('x');
    assert!(matches!(
        p.verify(&blocks[9].header),
        Err(EventProofError::Event(EventError::Signature(_)))
    ));
}

#[test]
fn rejects_a_valid_event_from_another_block() {
    let (chain, blocks) = chain();
    let mut p = proof(&chain, &blocks, 5, 2, 9);
    p.event = blocks[4].events[2].clone();
    assert!(matches!(
        p.verify(&blocks[9].header),
        Err(EventProofError::Merkle(MerkleError::RootMismatch { .. }))
    ));
}

#[test]
fn rejects_a_wrong_position() {
    let (chain, blocks) = chain();
    let mut p = proof(&chain, &blocks, 5, 2, 9);
    p.merkle.index = 3;
    assert!(matches!(
        p.verify(&blocks[9].header),
        Err(EventProofError::Merkle(_))
    ));
}

#[test]
fn rejects_an_altered_header_against_its_own_block() {
    let (chain, blocks) = chain();
    let mut p = proof(&chain, &blocks, 5, 0, 5);
    p.header.timestamp_ms += 1;
    assert_eq!(
        p.verify(&blocks[5].header),
        Err(EventProofError::BlockHashMismatch {
            expected: blocks[5].header.hash(),
            got: p.header.hash(),
        })
    );
}

#[test]
fn rejects_an_altered_header_against_a_later_header() {
    let (chain, blocks) = chain();
    let mut p = proof(&chain, &blocks, 5, 0, 11);
    p.header.timestamp_ms += 1;
    assert!(matches!(
        p.verify(&blocks[11].header),
        Err(EventProofError::Mmr(MmrError::RootMismatch { .. }))
    ));
}

#[test]
fn rejects_missing_or_unexpected_mmr_path() {
    let (chain, blocks) = chain();
    let mut p = proof(&chain, &blocks, 5, 0, 8);
    p.mmr = None;
    assert_eq!(
        p.verify(&blocks[8].header),
        Err(EventProofError::MissingMmrProof)
    );
    let later = proof(&chain, &blocks, 5, 0, 8);
    let mut p = proof(&chain, &blocks, 5, 0, 5);
    p.mmr = later.mmr;
    assert_eq!(
        p.verify(&blocks[5].header),
        Err(EventProofError::UnexpectedMmrProof)
    );
}

#[test]
fn rejects_an_mmr_path_for_another_block() {
    let (chain, blocks) = chain();
    let mut p = proof(&chain, &blocks, 5, 0, 8);
    p.mmr = proof(&chain, &blocks, 4, 0, 8).mmr;
    assert_eq!(
        p.verify(&blocks[8].header),
        Err(EventProofError::MmrLeafMismatch {
            expected: 5,
            got: 4
        })
    );
}

#[test]
fn rejects_an_mmr_path_for_another_size() {
    let (chain, blocks) = chain();
    let p = proof(&chain, &blocks, 5, 0, 8);
    assert!(matches!(
        p.verify(&blocks[9].header),
        Err(EventProofError::Mmr(_))
    ));
}

#[test]
fn rejects_a_trusted_header_before_the_block() {
    let (chain, blocks) = chain();
    let p = proof(&chain, &blocks, 5, 0, 5);
    assert_eq!(
        p.verify(&blocks[4].header),
        Err(EventProofError::BlockAfterTrustedHeader {
            event_height: 5,
            trusted_height: 4
        })
    );
    assert!(matches!(
        EventProof::build(&blocks[5], 0, chain.mmr(), 4),
        Err(EventProofError::BlockAfterTrustedHeader { .. })
    ));
}

#[test]
fn rejects_a_proof_from_another_chain() {
    let (chain, blocks) = chain();
    let p = proof(&chain, &blocks, 5, 0, 7);
    let mut other = blocks[7].header.clone();
    other.chain_id = ChainId::new("other").unwrap();
    assert!(matches!(
        p.verify(&other),
        Err(EventProofError::ChainMismatch { .. })
    ));
}

#[test]
fn cannot_build_a_proof_for_a_missing_event() {
    let (chain, blocks) = chain();
    assert!(matches!(
        EventProof::build(&blocks[5], 5, chain.mmr(), 6),
        Err(EventProofError::Merkle(MerkleError::IndexOutOfRange { .. }))
    ));
}

#[test]
fn every_flipped_bit_of_an_encoded_proof_is_rejected() {
    let (chain, blocks) = chain();
    let trusted = &blocks[11].header;
    let good = proof(&chain, &blocks, 5, 3, 11).encode();
    let mut accepted = 0;
    for bit in 0..good.len() * 8 {
        let mut bytes = good.clone();
        bytes[bit / 8] ^= 1 << (bit % 8);
        if let Ok(p) = EventProof::decode(&bytes) {
            if p.verify(trusted).is_ok() {
                accepted += 1;
            }
        }
    }
    assert_eq!(accepted, 0);
    assert!(EventProof::decode(&good).unwrap().verify(trusted).is_ok());
}

#[test]
fn decoding_truncated_proofs_fails_cleanly() {
    let (chain, blocks) = chain();
    let good = proof(&chain, &blocks, 5, 3, 11).encode();
    for len in 0..good.len() {
        assert!(EventProof::decode(&good[..len]).is_err());
    }
    let mut long = good.clone();
    long.push(0);
    assert!(EventProof::decode(&long).is_err());
}
