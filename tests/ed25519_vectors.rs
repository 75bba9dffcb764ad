//! Pins headway's signature rule against the CCTV ed25519 edge-case vectors
//! (`tests/vectors/ed25519/`, from C2SP/CCTV, BSD-3-Clause, see the LICENSE beside them).
//!
//! The rule (see `src/crypto/ed25519.rs`): a vector is rejected iff its flags contain
//! `low_order_A`, `low_order_component_A` or `non_canonical_A` (the key is rejected by
//! `PublicKey::from_bytes`) or `low_order_R` or `non_canonical_R` (the signature is rejected by
//! its pre-checks); every other vector satisfies the cofactored equation and is accepted, in the
//! single path and in every batch. [`check_all`] takes the JSON text so that a wasm32 test can
//! run the same body on an `include_str!` of the file.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use headway::crypto::ed25519::{
    verify, verify_batch, BatchError, BatchItem, KeyError, PublicKey, Signature, SignatureError,
    SigningKey,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Vector {
    number: u32,
    key: String,
    sig: String,
    msg: String,
    flags: Option<Vec<String>>,
}

const KEY_REJECT_FLAGS: [&str; 3] = ["low_order_A", "low_order_component_A", "non_canonical_A"];
const SIG_REJECT_FLAGS: [&str; 2] = ["low_order_R", "non_canonical_R"];

/// Vectors in the file.
pub const TOTAL: usize = 914;
/// Accepted: no rejecting flag (7 of them have a mixed-order R, which the cofactored equation
/// accepts; the eighth has no flag at all).
pub const ACCEPTED: usize = 8;
/// Rejected because the key is rejected at parse time.
pub const KEY_REJECTED: usize = 886;
/// Rejected because the signature fails its pre-checks (the key is valid).
pub const SIG_REJECTED: usize = 20;

fn has(flags: &[String], name: &str) -> bool {
    flags.iter().any(|f| f == name)
}

fn honest(n: u8) -> (Vec<PublicKey>, Vec<Vec<u8>>, Vec<Signature>) {
    let mut keys = Vec::new();
    let mut msgs = Vec::new();
    let mut sigs = Vec::new();
    for i in 0..n {
        let sk = SigningKey::from_seed(&[i.wrapping_add(1); 32]);
        let msg = format!("honest vote {i}").into_bytes();
        sigs.push(sk.sign(&msg));
        keys.push(sk.public_key());
        msgs.push(msg);
    }
    (keys, msgs, sigs)
}

/// Checks every vector against the rule in the single and the batch path, then the counts.
pub fn check_all(json: &str) {
    let vectors: Vec<Vector> = serde_json::from_str(json).expect("vector file parses");
    assert_eq!(vectors.len(), TOTAL);

    let (h_keys, h_msgs, h_sigs) = honest(24);
    let honest_items: Vec<BatchItem<'_>> = (0..h_keys.len())
        .map(|i| BatchItem {
            key: &h_keys[i],
            message: &h_msgs[i],
            signature: &h_sigs[i],
        })
        .collect();
    assert_eq!(verify_batch(&honest_items), Ok(()));

    // (key, message, signature) of the accepted vectors, for the big batch.
    let mut accepted: Vec<(PublicKey, Vec<u8>, Signature)> = Vec::new();
    let (mut key_rejected, mut sig_rejected) = (0usize, 0usize);

    for v in &vectors {
        let n = v.number;
        let flags: &[String] = v.flags.as_deref().unwrap_or(&[]);
        let mut key_bytes = [0u8; 32];
        hex::decode_to_slice(&v.key, &mut key_bytes).expect("key hex");
        let mut sig_bytes = [0u8; 64];
        hex::decode_to_slice(&v.sig, &mut sig_bytes).expect("sig hex");
        let sig = Signature(sig_bytes);
        let msg = v.msg.as_bytes();

        let reject_key = KEY_REJECT_FLAGS.iter().any(|f| has(flags, f));
        let reject_sig = SIG_REJECT_FLAGS.iter().any(|f| has(flags, f));

        let key = PublicKey::from_bytes(&key_bytes);
        assert_eq!(
            PublicKey::from_hex(&v.key),
            key,
            "#{n}: hex and bytes agree"
        );
        if reject_key {
            let err = key.expect_err(&format!("#{n}: key must be rejected ({flags:?})"));
            // A non-canonical key is either y >= p or an x = 0 point with the sign bit set
            // (small order); every other rejected key is of small order or mixed order.
            if has(flags, "non_canonical_A") {
                assert!(
                    matches!(
                        err,
                        KeyError::NonCanonicalEncoding | KeyError::NotTorsionFree
                    ),
                    "#{n}: {err:?}"
                );
            } else {
                assert_eq!(err, KeyError::NotTorsionFree, "#{n}");
            }
            key_rejected += 1;
            continue;
        }
        let key = key.unwrap_or_else(|e| panic!("#{n}: key must be accepted, got {e:?}"));

        let single = verify(&key, msg, &sig);
        let item = BatchItem {
            key: &key,
            message: msg,
            signature: &sig,
        };
        let batch_of_one = verify_batch(&[item]);

        if reject_sig {
            let err = single
                .clone()
                .expect_err(&format!("#{n}: signature must be rejected ({flags:?})"));
            // Rejected by the R pre-checks, never by the equation: the verdict does not
            // depend on how the equation is written.
            if has(flags, "non_canonical_R") {
                assert!(
                    matches!(
                        err,
                        SignatureError::NonCanonicalR | SignatureError::SmallOrderR
                    ),
                    "#{n}: {err:?}"
                );
            } else {
                assert_eq!(err, SignatureError::SmallOrderR, "#{n}");
            }
            assert_eq!(
                batch_of_one,
                Err(BatchError::Item {
                    index: 0,
                    error: err.clone()
                }),
                "#{n}: batch of one agrees with single"
            );
            // Hidden among honest signatures, it is still found and reported by index.
            let at = (n as usize) % (honest_items.len() + 1);
            let mut items = honest_items.clone();
            items.insert(at, item);
            assert_eq!(
                verify_batch(&items),
                Err(BatchError::Item {
                    index: at,
                    error: err
                }),
                "#{n}: in a batch at {at}"
            );
            sig_rejected += 1;
        } else {
            assert_eq!(single, Ok(()), "#{n}: must be accepted ({flags:?})");
            assert_eq!(
                batch_of_one,
                Ok(()),
                "#{n}: batch of one agrees with single"
            );
            accepted.push((key.clone(), msg.to_vec(), sig));
        }
    }

    // One big batch: every accepted vector interleaved with the honest signatures.
    let mut big: Vec<BatchItem<'_>> = Vec::new();
    for (i, (key, msg, sig)) in accepted.iter().enumerate() {
        big.extend_from_slice(&honest_items[(3 * i) % honest_items.len()..][..1]);
        big.push(BatchItem {
            key,
            message: msg,
            signature: sig,
        });
    }
    big.extend_from_slice(&honest_items);
    assert_eq!(verify_batch(&big), Ok(()), "big batch of accepted + honest");
    // ... and one altered message in it is caught by the equation.
    let altered = b"not the signed message".to_vec();
    for at in [0, big.len() / 2, big.len() - 1] {
        let mut bad = big.clone();
        bad[at].message = &altered;
        assert_eq!(
            verify_batch(&bad),
            Err(BatchError::Equation),
            "altered at {at}"
        );
    }

    assert!(!accepted.is_empty() && key_rejected + sig_rejected > 0);
    assert_eq!(
        (accepted.len(), key_rejected, sig_rejected),
        (ACCEPTED, KEY_REJECTED, SIG_REJECTED),
        "(accepted, key rejected, signature rejected)"
    );
    assert_eq!(ACCEPTED + KEY_REJECTED + SIG_REJECTED, TOTAL);
}

#[test]
fn cctv_vectors_follow_the_rule() {
    check_all(include_str!("vectors/ed25519/cctv-ed25519vectors.json"));
}
