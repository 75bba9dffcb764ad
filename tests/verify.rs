//! Header verification: every rejection, triggered alone, and range verification.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use headway::chain::{
    BlockHeader, Checkpoint, CheckpointError, Hash, TrustedHeader, PROTOCOL_VERSION,
};
use headway::crypto::ed25519::SignatureError;
use headway::testkit::{self, ChainBuilder};
use headway::verify::{
    HeaderView, SignatureCache, SignatureMode, TrustedState, Verifier, VerifyError,
};
use std::sync::Arc;

const NOW: u64 = 1_800_000_000_000;

/// A chain with a genesis block and the state trusting it.
fn start(validators: usize) -> (ChainBuilder, TrustedState) {
    let mut chain = ChainBuilder::new("test-chain", validators);
    let (genesis, _) = chain.next_block(Vec::new());
    let checkpoint = chain.checkpoint().unwrap();
    let state = TrustedState::from_checkpoint(&checkpoint, genesis.header).unwrap();
    (chain, state)
}

/// The next header after tampering with it, re-signed by the right validators, so only the
/// tampered property is wrong.
fn tampered(chain: &ChainBuilder, edit: impl FnOnce(&mut BlockHeader)) -> TrustedHeader {
    let mut header = chain.next_header(&[]);
    edit(&mut header);
    TrustedHeader {
        commit: chain.commit_for(&header),
        header,
        next_validators: None,
    }
}

fn both_modes() -> [Verifier; 2] {
    [
        Verifier::new(),
        Verifier::new().with_signature_mode(SignatureMode::Single),
    ]
}

fn assert_rejects(state: &TrustedState, candidate: &TrustedHeader, expected: VerifyError) {
    for verifier in both_modes() {
        assert_eq!(
            verifier.verify(state, candidate, NOW),
            Err(expected.clone())
        );
        let range = verifier.verify_range(state, std::slice::from_ref(candidate), NOW);
        let failure = range.unwrap_err();
        assert_eq!(failure.error.error, expected);
        assert_eq!(failure.error.position, 0);
        assert_eq!(failure.last_good, None);
    }
}

#[test]
fn accepts_a_valid_chain_in_both_modes() {
    let (mut chain, genesis) = start(4);
    let headers = chain.headers(10);
    for verifier in both_modes() {
        let mut state = genesis.clone();
        for h in &headers {
            state = verifier.verify(&state, h, NOW).unwrap();
        }
        assert_eq!(state.height(), 10);
        assert_eq!(verifier.verify_range(&genesis, &headers, NOW), Ok(state));
    }
}

#[test]
fn rejects_unsupported_version() {
    let (chain, state) = start(4);
    let c = tampered(&chain, |h| h.version = PROTOCOL_VERSION + 1);
    let expected = VerifyError::UnsupportedVersion {
        supported: PROTOCOL_VERSION,
        got: PROTOCOL_VERSION + 1,
    };
    assert_rejects(&state, &c, expected);
}

#[test]
fn rejects_other_chain_id() {
    let (chain, state) = start(4);
    let other = headway::chain::ChainId::new("other-chain").unwrap();
    let c = tampered(&chain, |h| h.chain_id = other.clone());
    let expected = VerifyError::ChainIdMismatch {
        expected: chain.chain_id().clone(),
        got: other,
    };
    assert_rejects(&state, &c, expected);
}

#[test]
fn rejects_a_height_gap() {
    let (mut chain, state) = start(4);
    chain.next_block(Vec::new());
    let (_, second) = chain.next_block(Vec::new());
    assert_rejects(
        &state,
        &second,
        VerifyError::NonSequentialHeight { trusted: 0, got: 2 },
    );
}

#[test]
fn rejects_wrong_parent_hash() {
    let (chain, state) = start(4);
    let c = tampered(&chain, |h| h.parent_hash = Hash([9; 32]));
    let expected = VerifyError::ParentHashMismatch {
        expected: state.hash,
        got: Hash([9; 32]),
    };
    assert_rejects(&state, &c, expected);
}

#[test]
fn rejects_timestamp_before_parent() {
    let (chain, state) = start(4);
    let parent = state.header.timestamp_ms;
    let c = tampered(&chain, |h| h.timestamp_ms = parent - 1);
    let expected = VerifyError::TimestampBeforeParent {
        parent,
        got: parent - 1,
    };
    assert_rejects(&state, &c, expected);
}

#[test]
fn accepts_timestamp_equal_to_parent() {
    let (chain, state) = start(4);
    let parent = state.header.timestamp_ms;
    let c = tampered(&chain, |h| h.timestamp_ms = parent);
    assert!(Verifier::new().verify(&state, &c, NOW).is_ok());
}

#[test]
fn rejects_timestamp_too_far_in_future() {
    let (chain, state) = start(4);
    let c = chain.next_header(&[]);
    let now = c.timestamp_ms - 15_001;
    let candidate = tampered(&chain, |_| {});
    let expected = VerifyError::TimestampInFuture {
        now,
        max_drift: 15_000,
        got: c.timestamp_ms,
    };
    assert_eq!(
        Verifier::new().verify(&state, &candidate, now),
        Err(expected)
    );
    // Exactly at the drift bound is accepted.
    assert!(Verifier::new().verify(&state, &candidate, now + 1).is_ok());
}

#[test]
fn rejects_mmr_leaf_count_other_than_height() {
    let (chain, state) = start(4);
    let c = tampered(&chain, |h| h.mmr_leaf_count += 1);
    assert_rejects(
        &state,
        &c,
        VerifyError::MmrLeafCountMismatch {
            expected: 1,
            got: 2,
        },
    );
}

#[test]
fn rejects_nonzero_events_root_without_events() {
    let (chain, state) = start(4);
    let c = tampered(&chain, |h| h.events_root = Hash([1; 32]));
    assert_rejects(&state, &c, VerifyError::EmptyEventsRoot);
}

#[test]
fn rejects_header_signed_by_another_set() {
    let (chain, state) = start(4);
    let c = tampered(&chain, |h| h.validators_hash = Hash([3; 32]));
    let expected = VerifyError::ValidatorSetMismatch {
        expected: state.next_validators.hash(),
        got: Hash([3; 32]),
    };
    assert_rejects(&state, &c, expected);
}

#[test]
fn rejects_proposer_outside_the_set() {
    let (chain, state) = start(4);
    let outsider = testkit::key(999).public_key();
    let c = tampered(&chain, |h| h.proposer = outsider.clone());
    let expected = VerifyError::ProposerNotInSet {
        proposer: outsider.to_hex(),
    };
    assert_rejects(&state, &c, expected);
}

#[test]
fn rejects_commit_for_another_height() {
    let (chain, state) = start(4);
    let mut c = tampered(&chain, |_| {});
    c.commit.height = 7;
    assert_rejects(
        &state,
        &c,
        VerifyError::CommitHeightMismatch {
            expected: 1,
            got: 7,
        },
    );
}

#[test]
fn rejects_commit_for_another_block() {
    let (chain, state) = start(4);
    let mut c = tampered(&chain, |_| {});
    let signed_hash = c.header.hash();
    c.header.timestamp_ms += 1; // header changed after signing
    let expected = VerifyError::CommitHashMismatch {
        expected: c.header.hash(),
        got: signed_hash,
    };
    assert_rejects(&state, &c, expected);
}

#[test]
fn rejects_signer_index_outside_the_set() {
    let (chain, state) = start(4);
    let mut c = tampered(&chain, |_| {});
    c.commit.signatures[3].validator_index = 4;
    assert_rejects(
        &state,
        &c,
        VerifyError::UnknownValidator {
            index: 4,
            set_len: 4,
        },
    );
}

#[test]
fn rejects_a_repeated_signer() {
    let (chain, state) = start(4);
    let mut c = tampered(&chain, |_| {});
    let first = c.commit.signatures[0].clone();
    c.commit.signatures.insert(1, first);
    assert_rejects(&state, &c, VerifyError::DuplicateSigner { index: 0 });
}

#[test]
fn rejects_a_repeated_signer_even_after_the_threshold() {
    let (chain, state) = start(4);
    let mut c = tampered(&chain, |_| {});
    let last = c.commit.signatures[3].clone();
    c.commit.signatures.push(last);
    assert_rejects(&state, &c, VerifyError::DuplicateSigner { index: 3 });
}

#[test]
fn rejects_unsorted_signers() {
    let (chain, state) = start(4);
    let mut c = tampered(&chain, |_| {});
    c.commit.signatures.swap(1, 2);
    assert_rejects(
        &state,
        &c,
        VerifyError::UnsortedSignatures {
            previous: 2,
            index: 1,
        },
    );
}

#[test]
fn rejects_exactly_two_thirds() {
    let mut chain = ChainBuilder::new("test-chain", 3);
    let (genesis, _) = chain.next_block(Vec::new());
    let state =
        TrustedState::from_checkpoint(&chain.checkpoint().unwrap(), genesis.header).unwrap();
    let mut chain = chain.signing(2);
    let (_, c) = chain.next_block(Vec::new());
    assert_rejects(
        &state,
        &c,
        VerifyError::InsufficientVotingPower {
            signed: 20,
            total: 30,
        },
    );
}

#[test]
fn accepts_just_over_two_thirds_and_ignores_signatures_past_it() {
    let (chain, state) = start(4);
    let mut c = tampered(&chain, |_| {});
    // Three of four (30 of 40) suffice; a broken fourth signature is not needed.
    c.commit.signatures[3].signature.0[0] ^= 1;
    for verifier in both_modes() {
        assert!(verifier.verify(&state, &c, NOW).is_ok());
    }
}

#[test]
fn rejects_a_bad_needed_signature_and_names_it() {
    let (chain, state) = start(4);
    let mut c = tampered(&chain, |_| {});
    c.commit.signatures[1].signature.0[40] ^= 1;
    for verifier in both_modes() {
        let err = verifier.verify(&state, &c, NOW).unwrap_err();
        assert!(
            matches!(err, VerifyError::InvalidSignature { index: 1, .. }),
            "{err:?}"
        );
    }
}

#[test]
fn rejects_a_non_canonical_signature_scalar() {
    let (chain, state) = start(4);
    let mut c = tampered(&chain, |_| {});
    c.commit.signatures[0].signature.0[32..].copy_from_slice(&[0xff; 32]);
    assert_rejects(
        &state,
        &c,
        VerifyError::InvalidSignature {
            index: 0,
            error: SignatureError::NonCanonicalS,
        },
    );
}

#[test]
fn rejects_empty_commit() {
    let (chain, state) = start(4);
    let mut c = tampered(&chain, |_| {});
    c.commit.signatures.clear();
    assert_rejects(
        &state,
        &c,
        VerifyError::InsufficientVotingPower {
            signed: 0,
            total: 40,
        },
    );
}

fn handover_chain() -> (ChainBuilder, TrustedState) {
    let (chain, state) = start(4);
    let chain = chain.hand_over_at(3, testkit::keys(100, 5));
    (chain, state)
}

#[test]
fn follows_a_validator_set_hand_over() {
    let (mut chain, state) = handover_chain();
    let headers = chain.headers(5);
    assert!(headers[1].header.hands_over());
    assert!(headers[1].next_validators.is_some());
    let end = Verifier::new().verify_range(&state, &headers, NOW).unwrap();
    assert_eq!(end.next_validators.len(), 5);
}

#[test]
fn rejects_hand_over_without_the_new_set() {
    let (mut chain, state) = handover_chain();
    let mut headers = chain.headers(2);
    let state = Verifier::new().verify(&state, &headers[0], NOW).unwrap();
    let announced = headers[1].header.next_validators_hash;
    headers[1].next_validators = None;
    assert_rejects(
        &state,
        &headers[1],
        VerifyError::MissingNextValidators { announced },
    );
}

#[test]
fn rejects_hand_over_to_a_set_with_another_hash() {
    let (mut chain, state) = handover_chain();
    let mut headers = chain.headers(2);
    let state = Verifier::new().verify(&state, &headers[0], NOW).unwrap();
    let wrong = testkit::validator_set(&testkit::keys(200, 5));
    let expected = VerifyError::NextValidatorsHashMismatch {
        expected: headers[1].header.next_validators_hash,
        got: wrong.hash(),
    };
    headers[1].next_validators = Some(wrong);
    assert_rejects(&state, &headers[1], expected);
}

#[test]
fn rejects_a_new_set_without_a_hand_over() {
    let (chain, state) = start(4);
    let mut c = tampered(&chain, |_| {});
    c.next_validators = Some(chain.current_set().clone());
    assert_rejects(&state, &c, VerifyError::UnexpectedNextValidators);
}

#[test]
fn rejects_the_old_set_signing_after_a_hand_over() {
    let (mut chain, state) = handover_chain();
    let headers = chain.headers(2);
    let state = Verifier::new().verify_range(&state, &headers, NOW).unwrap();
    // Block 3 must be signed by the new set; a header naming the old set is refused.
    let old_set_hash = headers[0].header.validators_hash;
    let c = tampered(&chain, |h| h.validators_hash = old_set_hash);
    let expected = VerifyError::ValidatorSetMismatch {
        expected: state.next_validators.hash(),
        got: old_set_hash,
    };
    assert_rejects(&state, &c, expected);
}

#[test]
fn rejects_a_header_contradicting_a_pinned_checkpoint() {
    let (mut chain, state) = start(4);
    let (_, good) = chain.next_block(Vec::new());
    let mut pinned = chain.checkpoint().unwrap();
    pinned.block_hash = Hash([5; 32]);
    let verifier = Verifier::new().with_checkpoint(pinned);
    assert_eq!(
        verifier.verify(&state, &good, NOW),
        Err(VerifyError::Checkpoint(CheckpointError::HashMismatch {
            expected: Hash([5; 32]),
            got: good.header.hash(),
        }))
    );
    let pinned = chain.checkpoint().unwrap();
    assert!(Verifier::new()
        .with_checkpoint(pinned)
        .verify(&state, &good, NOW)
        .is_ok());
}

#[test]
fn range_names_the_first_bad_header_and_keeps_the_good_prefix() {
    let (mut chain, state) = start(4);
    let mut headers = chain.headers(8);
    headers[5].commit.signatures[0].signature.0[10] ^= 1;
    for verifier in both_modes() {
        let failure = verifier.verify_range(&state, &headers, NOW).unwrap_err();
        assert_eq!(failure.error.position, 5);
        assert_eq!(failure.error.height, 6);
        assert!(matches!(
            failure.error.error,
            VerifyError::InvalidSignature { index: 0, .. }
        ));
        assert_eq!(failure.last_good.unwrap().height(), 5);
    }
}

#[test]
fn range_reports_an_earlier_bad_signature_before_a_later_structural_error() {
    let (mut chain, state) = start(4);
    let mut headers = chain.headers(6);
    headers[1].commit.signatures[2].signature.0[3] ^= 1;
    headers[4].header.parent_hash = Hash::ZERO;
    let failure = Verifier::new()
        .verify_range(&state, &headers, NOW)
        .unwrap_err();
    assert_eq!(failure.error.position, 1);
    assert_eq!(failure.last_good.unwrap().height(), 1);
}

#[test]
fn range_reports_a_structural_error_after_a_good_prefix() {
    let (mut chain, state) = start(4);
    let mut headers = chain.headers(6);
    headers[4].commit.signatures.clear();
    let failure = Verifier::new()
        .verify_range(&state, &headers, NOW)
        .unwrap_err();
    assert_eq!(failure.error.position, 4);
    assert_eq!(failure.last_good.unwrap().height(), 4);
}

#[test]
fn empty_range_keeps_the_trusted_state() {
    let (_, state) = start(4);
    assert_eq!(Verifier::new().verify_range(&state, &[], NOW), Ok(state));
}

#[test]
fn checkpoint_must_match_its_header() {
    let (mut chain, _) = start(4);
    let (block, _) = chain.next_block(Vec::new());
    let checkpoint = chain.checkpoint().unwrap();
    let mut other = block.header.clone();
    other.timestamp_ms += 1;
    assert!(matches!(
        TrustedState::from_checkpoint(&checkpoint, other),
        Err(CheckpointError::HashMismatch { .. })
    ));
    let mut wrong_set = checkpoint.clone();
    wrong_set.validators = testkit::validator_set(&testkit::keys(50, 2));
    assert!(matches!(
        TrustedState::from_checkpoint(&wrong_set, block.header),
        Err(CheckpointError::ValidatorsMismatch { .. })
    ));
}

#[test]
fn checkpoint_text_and_json_round_trip_strictly() {
    let (mut chain, _) = start(4);
    chain.next_block(Vec::new());
    let cp: Checkpoint = chain.checkpoint().unwrap();
    let text = cp.to_text();
    assert!(!text.contains('\n'));
    assert_eq!(Checkpoint::from_text(&text), Ok(cp.clone()));
    assert_eq!(Checkpoint::parse(&format!("  {text}\n")), Ok(cp.clone()));
    assert_eq!(Checkpoint::parse(&cp.to_json()), Ok(cp.clone()));

    // A changed character anywhere is caught.
    let mut mangled = text.clone().into_bytes();
    let i = text.len() / 2;
    mangled[i] = if mangled[i] == b'0' { b'1' } else { b'0' };
    assert_eq!(
        Checkpoint::from_text(std::str::from_utf8(&mangled).unwrap()),
        Err(CheckpointError::Checksum)
    );
    assert_eq!(
        Checkpoint::from_text(&text.replacen("headway1", "headway2", 1)),
        Err(CheckpointError::WrongPrefix)
    );
    assert_eq!(
        Checkpoint::from_text("headway1:a:1"),
        Err(CheckpointError::FieldCount(3))
    );
    let json = cp.to_json().replacen('{', "{\"extra\": 1,", 1);
    assert!(matches!(
        Checkpoint::from_json(&json),
        Err(CheckpointError::Json(_))
    ));
}

#[test]
fn checkpoint_text_rejects_bad_fields_with_valid_checksum() {
    let (mut chain, _) = start(4);
    chain.next_block(Vec::new());
    let cp = chain.checkpoint().unwrap();
    let text = cp.to_text();
    let fields: Vec<&str> = text.split(':').collect();
    let with = |i: usize, v: &str| {
        let mut f: Vec<String> = fields[..5].iter().map(|s| s.to_string()).collect();
        f[i] = v.to_string();
        let body = f.join(":");
        let sum = hex::encode(&blake3::hash(body.as_bytes()).as_bytes()[..4]);
        Checkpoint::from_text(&format!("{body}:{sum}"))
    };
    assert!(matches!(with(1, "Bad"), Err(CheckpointError::ChainId(_))));
    assert_eq!(with(2, "+1"), Err(CheckpointError::Height("+1".into())));
    assert_eq!(with(2, ""), Err(CheckpointError::Height("".into())));
    assert_eq!(with(3, "abc"), Err(CheckpointError::BlockHash));
    assert!(matches!(with(4, "zz"), Err(CheckpointError::Validators(_))));
    assert!(matches!(
        with(4, "00000000"),
        Err(CheckpointError::Validators(_))
    ));
}

#[test]
fn commit_signature_list_is_strictly_validated_on_the_wire() {
    use headway::chain::{Decode, Encode};
    let (chain, _) = start(4);
    let c = tampered(&chain, |_| {});
    assert_eq!(TrustedHeader::decode(&c.encode()), Ok(c.clone()));
    let mut bytes = c.encode();
    bytes.push(0);
    assert!(TrustedHeader::decode(&bytes).is_err());
}

#[test]
fn checkpoint_text_must_be_canonical() {
    let (mut chain, _) = start(4);
    chain.next_block(Vec::new());
    let cp = chain.checkpoint().unwrap();
    let text = cp.to_text();
    let fields: Vec<&str> = text.split(':').collect();
    let resum = |f: Vec<String>| {
        let body = f.join(":");
        let sum = hex::encode(&blake3::hash(body.as_bytes()).as_bytes()[..4]);
        Checkpoint::from_text(&format!("{body}:{sum}"))
    };
    let mut upper: Vec<String> = fields[..5].iter().map(|s| s.to_string()).collect();
    upper[3] = upper[3].to_uppercase();
    assert_eq!(resum(upper), Err(CheckpointError::NotCanonical));
    let mut zeros: Vec<String> = fields[..5].iter().map(|s| s.to_string()).collect();
    zeros[2] = format!("0{}", zeros[2]);
    assert_eq!(resum(zeros), Err(CheckpointError::NotCanonical));
    let upper_sum = format!("{}:{}", fields[..5].join(":"), fields[5].to_uppercase());
    assert_eq!(
        Checkpoint::from_text(&upper_sum),
        Err(CheckpointError::Checksum)
    );
}

// ---- signatures checked ahead (`SignatureCache`) ------------------------------------------

fn views(headers: &[TrustedHeader]) -> impl Iterator<Item = HeaderView<'_>> {
    headers
        .iter()
        .map(|h| (&h.header, &h.commit, h.next_validators.as_ref()))
}

/// Needed signatures of 4 equal validators: 3 of 4.
const NEEDED_OF_4: usize = 3;

#[test]
fn signatures_checked_ahead_are_used_once_and_the_range_verifies_the_same() {
    let (mut chain, state) = start(4);
    let headers = chain.headers(6);
    let cache = SignatureCache::new(1_000);
    assert_eq!(
        cache.check_ahead(&state.next_validators, views(&headers)),
        6 * NEEDED_OF_4
    );
    let verifier = Verifier::new().with_cache(Arc::clone(&cache));
    let plain = Verifier::new().verify_range(&state, &headers, NOW);
    assert_eq!(verifier.verify_range(&state, &headers, NOW), plain);
    assert!(cache.is_empty(), "every triple is taken when used");
    assert_eq!(cache.used(), (6 * NEEDED_OF_4) as u64);
}

#[test]
fn a_cached_signature_covers_only_its_own_triple() {
    let (mut chain, state) = start(4);
    let headers = chain.headers(6);
    let cache = SignatureCache::new(1_000);
    cache.check_ahead(&state.next_validators, views(&headers));
    // Another signature where a cached one was: not covered, checked, and refused.
    let mut forged = headers.clone();
    forged[3].commit.signatures[1].signature.0[40] ^= 1;
    let verifier = Verifier::new().with_cache(cache);
    let failure = verifier.verify_range(&state, &forged, NOW).unwrap_err();
    assert_eq!(failure.error.position, 3);
    assert!(matches!(
        failure.error.error,
        VerifyError::InvalidSignature { index: 1, .. }
    ));
    assert_eq!(failure.last_good.unwrap().height(), 3);
}

#[test]
fn nothing_is_cached_from_a_range_with_a_bad_signature_or_the_wrong_set() {
    let (mut chain, state) = start(4);
    let mut headers = chain.headers(4);
    let cache = SignatureCache::new(1_000);
    let other_set = Arc::new(testkit::validator_set(&testkit::keys(50, 4)));
    assert_eq!(cache.check_ahead(&other_set, views(&headers)), 0);
    headers[2].commit.signatures[0].signature.0[5] ^= 1;
    assert_eq!(
        cache.check_ahead(&state.next_validators, views(&headers)),
        0
    );
    assert!(cache.is_empty());
    // The verifier still finds the bad one.
    let failure = Verifier::new()
        .with_cache(cache)
        .verify_range(&state, &headers, NOW)
        .unwrap_err();
    assert_eq!(failure.error.position, 2);
}

#[test]
fn checking_ahead_follows_hand_overs() {
    let (mut chain, state) = handover_chain();
    let headers = chain.headers(5);
    let cache = SignatureCache::new(1_000);
    // Height 2 hands over: 1–2 are signed by the 4 (3 needed each), 3–5 by the 5 new ones
    // (4 needed).
    assert!(headers[1].header.hands_over());
    assert_eq!(
        cache.check_ahead(&state.next_validators, views(&headers)),
        2 * NEEDED_OF_4 + 3 * 4
    );
    let verifier = Verifier::new().with_cache(Arc::clone(&cache));
    assert!(verifier.verify_range(&state, &headers, NOW).is_ok());
    assert!(cache.is_empty());
}

#[test]
fn the_cache_drops_its_oldest_triples_beyond_its_capacity() {
    let (mut chain, state) = start(4);
    let headers = chain.headers(6);
    let cache = SignatureCache::new(2 * NEEDED_OF_4);
    cache.check_ahead(&state.next_validators, views(&headers[..3]));
    cache.check_ahead(&state.next_validators, views(&headers[3..]));
    assert_eq!(cache.len(), 2 * NEEDED_OF_4);
    // What is left are the last two headers' triples: the range still verifies, those two
    // from the cache and the rest checked again.
    let verifier = Verifier::new().with_cache(Arc::clone(&cache));
    assert!(verifier.verify_range(&state, &headers, NOW).is_ok());
    assert!(cache.is_empty());
}
