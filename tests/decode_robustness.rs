//! Decoding arbitrary or mutated bytes never panics, and whatever decodes re-encodes to the
//! same bytes (one encoding per value), whose length `encoded_len` counts exactly.

#![cfg(not(target_arch = "wasm32"))]

use headway::chain::{
    Block, BlockHeader, Checkpoint, Commit, Decode, Encode, SignedEvent, TrustedHeader,
    ValidatorSet,
};
use headway::proof::{EventProof, MerkleProof, MmrPeaks, MmrProof};
use headway::testkit::{self, ChainBuilder};
use proptest::prelude::*;

/// Decodes `bytes` as `T`; if it decodes, it must re-encode to exactly `bytes`.
fn canonical<T: Decode + Encode>(bytes: &[u8]) {
    if let Ok(v) = T::decode(bytes) {
        assert_eq!(v.encode(), bytes, "a decoded value re-encodes differently");
        assert_eq!(v.encoded_len(), bytes.len(), "encoded_len counts otherwise");
    }
}

fn all_types(bytes: &[u8]) {
    canonical::<BlockHeader>(bytes);
    canonical::<TrustedHeader>(bytes);
    canonical::<Commit>(bytes);
    canonical::<ValidatorSet>(bytes);
    canonical::<SignedEvent>(bytes);
    canonical::<Block>(bytes);
    canonical::<MerkleProof>(bytes);
    canonical::<MmrProof>(bytes);
    canonical::<MmrPeaks>(bytes);
    canonical::<EventProof>(bytes);
}

/// Real encodings to mutate: a hand-over header, a block with events, an event proof.
fn samples() -> &'static [Vec<u8>] {
    static SAMPLES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    SAMPLES.get_or_init(build_samples)
}

fn build_samples() -> Vec<Vec<u8>> {
    let source = testkit::key(3);
    let mut chain = ChainBuilder::new("fuzz", 4).hand_over_at(2, testkit::keys(10, 3));
    chain.next_block(Vec::new());
    let (_, handover) = chain.next_block(Vec::new());
    let events = (0..3).map(|n| testkit::event(&source, n, n)).collect();
    let (block, _) = chain.next_block(events);
    chain.next_block(Vec::new());
    let proof = EventProof::build(&block, 1, chain.mmr(), 3).unwrap();
    vec![handover.encode(), block.encode(), proof.encode()]
}

#[test]
fn encoded_len_counts_real_encodings() {
    let samples = samples();
    assert_eq!(
        TrustedHeader::decode(&samples[0]).unwrap().encoded_len(),
        samples[0].len()
    );
    assert_eq!(
        Block::decode(&samples[1]).unwrap().encoded_len(),
        samples[1].len()
    );
    assert_eq!(
        EventProof::decode(&samples[2]).unwrap().encoded_len(),
        samples[2].len()
    );
    let mut chain = ChainBuilder::new("len", 100);
    let finalized = chain.next_finalized(vec![testkit::event(&testkit::key(5), 1, 1)]);
    assert_eq!(finalized.encoded_len(), finalized.encode().len());
    assert!(
        finalized.encoded_len() > 100 * 64,
        "a commit of 100 signatures"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        all_types(&bytes);
        let text = String::from_utf8_lossy(&bytes);
        let _ = Checkpoint::parse(&text);
    }

    #[test]
    fn mutated_encodings_never_panic(
        which in 0usize..3,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = samples()[which].clone();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        all_types(&bytes);
        let len = cut.index(bytes.len() + 1);
        all_types(&bytes[..len]);
    }
}
