//! Generates headway's protocol known-answer vectors:
//!
//! ```text
//! cargo run --example gen_vectors > tests/vectors/protocol.json
//! ```
//!
//! Everything is deterministic (testkit keys, fixed timestamps, RFC 8032 signatures), so two
//! runs print the same bytes. `tests/vectors.rs` recomputes every entry; `docs/PROTOCOL.md`
//! specifies what each one means. The output is a `serde_json::Value` printed pretty with a
//! trailing newline: the test checks the file is in exactly that form.

use headway::chain::{
    hash, AuditEvent, Block, ChainId, Checkpoint, Commit, CommitSig, Domain, Encode, Hash, Outcome,
    SignedEvent, TrustedHeader, Validator, ValidatorSet, Vote, VoteKind, Writer,
};
use headway::crypto::ed25519::{BatchItem, Signature};
use headway::proof::{merkle_proof, merkle_root, EventProof, Mmr};
use headway::testkit::{self, ChainBuilder};
use headway::verify::{SignatureMode, TrustedState, Verifier, VerifyError};
use serde_json::{json, Value};

const CHAIN_ID: &str = "headway-vectors";
/// Validators 0..4 (testkit keys) sign blocks 0..HAND_OVER_HEIGHT; keys 2..7 sign from then on.
const INITIAL_KEYS: (u64, usize) = (0, 4);
const HAND_OVER_HEIGHT: u64 = 3;
const NEXT_KEYS: (u64, usize) = (2, 5);
/// Events per block, heights 0..=5.
const EVENTS_PER_BLOCK: [usize; 6] = [0, 3, 0, 5, 1, 0];
const EVENT_SOURCE_KEY: u64 = 100;

fn hx(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(bytes)
}

fn enc<T: Encode + ?Sized>(v: &T) -> String {
    hex::encode(v.encode())
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("plain data serializes")
}

fn domain_name(d: Domain) -> String {
    format!("{d:?}")
}

/// The name of a `VerifyError` variant (or "accept").
fn outcome(r: Result<TrustedState, VerifyError>) -> (String, Option<TrustedState>) {
    match r {
        Ok(s) => ("accept".into(), Some(s)),
        Err(e) => {
            let name = format!("{e:?}");
            let end = name
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(name.len());
            (name[..end].to_string(), None)
        }
    }
}

fn primitives() -> Value {
    fn one(ty: &str, value: Value, f: impl FnOnce(&mut Writer)) -> Value {
        let mut w = Writer::new();
        f(&mut w);
        json!({ "type": ty, "value": value, "encoding": hx(w.as_bytes()) })
    }
    let big: u64 = 0x0708_090a_0b0c_0d0e;
    json!([
        one("u8", json!(7), |w| {
            w.u8(7);
        }),
        one("u16", json!(0x0102), |w| {
            w.u16(0x0102);
        }),
        one("u32", json!(0x0304_0506), |w| {
            w.u32(0x0304_0506);
        }),
        one("u64", json!(big.to_string()), |w| {
            w.u64(big);
        }),
        one("u64", json!(u64::MAX.to_string()), |w| {
            w.u64(u64::MAX);
        }),
        one("bool", json!(false), |w| {
            w.bool(false);
        }),
        one("bool", json!(true), |w| {
            w.bool(true);
        }),
        one("bytes", json!(""), |w| {
            w.bytes(b"");
        }),
        one("bytes", json!("00ff10"), |w| {
            w.bytes(&[0x00, 0xff, 0x10]);
        }),
        one("string", json!("héadway"), |w| {
            w.str("héadway");
        }),
        one("hash", json!(Hash([0xab; 32]).to_hex()), |w| {
            w.hash(&Hash([0xab; 32]));
        }),
        one("option<u64>", Value::Null, |w| {
            w.option::<u64>(None);
        }),
        one("option<u64>", json!("1"), |w| {
            w.option(Some(&1u64));
        }),
        one("seq<u64>", json!([]), |w| {
            w.seq::<u64>(&[]);
        }),
        one("seq<u64>", json!(["1", "2"]), |w| {
            w.seq(&[1u64, 2]);
        }),
    ])
}

fn domains() -> Value {
    Domain::ALL
        .iter()
        .map(|&d| json!({ "name": domain_name(d), "context": d.context(), "key": hx(d.key()) }))
        .collect()
}

fn hashes() -> Value {
    let hundred: Vec<u8> = (0..100u8).collect();
    let long: Vec<u8> = (0..1025u32).map(|i| (i % 251) as u8).collect();
    let mut out = Vec::new();
    for &d in &Domain::ALL {
        let mut inputs: Vec<(Option<&str>, Vec<u8>)> = vec![
            (Some(""), Vec::new()),
            (Some("headway"), b"headway".to_vec()),
            (None, hundred.clone()),
        ];
        if d == Domain::Event {
            inputs.push((None, long.clone()));
        }
        for (utf8, input) in inputs {
            out.push(json!({
                "domain": domain_name(d),
                "input_utf8": utf8,
                "input": hx(&input),
                "hash": hash(d, &input).to_hex(),
            }));
        }
    }
    Value::Array(out)
}

fn keys() -> Value {
    [0u64, 1, 2, 3, 4, 5, 6, EVENT_SOURCE_KEY]
        .iter()
        .map(|&n| {
            let k = testkit::key(n);
            json!({ "index": n, "seed": hx(k.seed()), "public_key": k.public_key().to_hex() })
        })
        .collect()
}

fn chain_id() -> Value {
    let id = ChainId::new(CHAIN_ID).expect("valid");
    let rejected: Vec<Value> = ["", "Headway", "a:b", "a b", "é", &"a".repeat(65)]
        .iter()
        .map(|s| {
            let e = ChainId::new(*s).expect_err("rejected");
            json!({ "value": s, "error": format!("{e:?}").split('(').next() })
        })
        .collect();
    json!({
        "value": id.as_str(),
        "encoding": enc(&id),
        "rejected": rejected,
    })
}

fn sample_event() -> AuditEvent {
    AuditEvent {
        kind: "user.login".into(),
        actor: "alice@example.com".into(),
        resource: "console/prod".into(),
        outcome: Outcome::Denied,
        metadata: br#"{"ip":"192.0.2.7"}"#.to_vec(),
        time_ms: 1_700_000_000_123,
        source: testkit::key(EVENT_SOURCE_KEY).public_key(),
    }
}

fn audit_event() -> Value {
    let source = testkit::key(EVENT_SOURCE_KEY);
    let event = sample_event();
    let digest = event.signing_digest();
    let signed = event.clone().sign(&source);
    json!({
        "source_key_index": EVENT_SOURCE_KEY,
        "event": to_json(&event),
        "outcome_tags": { "success": 0, "failure": 1, "denied": 2, "error": 3 },
        "encoding": enc(&event),
        "signing_digest": digest.to_hex(),
        "signature": signed.signature.to_hex(),
        "signed_event_encoding": enc(&signed),
        "event_id": signed.id().to_hex(),
    })
}

fn validator_set() -> Value {
    let members: Vec<(u64, u64)> = vec![(0, 10), (1, 20), (2, 30), (3, 40)];
    let set = ValidatorSet::new(
        members
            .iter()
            .map(|&(n, power)| Validator {
                key: testkit::key(n).public_key(),
                power,
            })
            .collect(),
    )
    .expect("valid set");
    json!({
        "members": members.iter().map(|&(n, power)| json!({
            "key_index": n,
            "key": testkit::key(n).public_key().to_hex(),
            "power": power,
        })).collect::<Vec<_>>(),
        "canonical": to_json(&set),
        "total_power": set.total_power(),
        "encoding": enc(&set),
        "hash": set.hash().to_hex(),
        "largest_insufficient_power": 66,
        "smallest_supermajority_power": 67,
    })
}

/// The vector chain: blocks, trusted headers, and the builder (for its MMR and sets).
struct Chain {
    builder: ChainBuilder,
    blocks: Vec<Block>,
    trusted: Vec<TrustedHeader>,
    /// The verifier's clock for the chain and the cases: the last block's timestamp.
    now_ms: u64,
}

fn build_chain() -> Chain {
    let source = testkit::key(EVENT_SOURCE_KEY);
    let mut builder = ChainBuilder::new(CHAIN_ID, INITIAL_KEYS.1)
        .hand_over_at(HAND_OVER_HEIGHT, testkit::keys(NEXT_KEYS.0, NEXT_KEYS.1));
    let mut blocks = Vec::new();
    let mut trusted = Vec::new();
    let mut n = 0u64;
    for count in EVENTS_PER_BLOCK {
        let block_time = builder.last_time_ms() + 1_000;
        let events = (0..count)
            .map(|i| {
                n += 1;
                testkit::event(&source, n, block_time - 500 + 10 * i as u64)
            })
            .collect();
        let (block, th) = builder.next_block(events);
        blocks.push(block);
        trusted.push(th);
    }
    let now_ms = builder.last_time_ms();
    Chain {
        builder,
        blocks,
        trusted,
        now_ms,
    }
}

fn genesis_state(chain: &Chain) -> TrustedState {
    let genesis = &chain.trusted[0];
    let set0 = testkit::validator_set(&testkit::keys(INITIAL_KEYS.0, INITIAL_KEYS.1));
    let checkpoint = Checkpoint::for_header(&genesis.header, set0).expect("genesis checkpoint");
    TrustedState::from_checkpoint(&checkpoint, genesis.header.clone()).expect("genesis state")
}

fn chain_section(chain: &Chain) -> Value {
    let blocks: Vec<Value> = chain
        .blocks
        .iter()
        .zip(&chain.trusted)
        .map(|(b, th)| {
            json!({
                "height": b.header.height,
                "block_hash": b.header.hash().to_hex(),
                "header_encoding": enc(&b.header),
                "events": b.events.iter().map(enc).collect::<Vec<_>>(),
                "event_ids": b.events.iter().map(|e| e.id().to_hex()).collect::<Vec<_>>(),
                "block_encoding": enc(b),
                "trusted_header_encoding": enc(th),
            })
        })
        .collect();
    // Sanity: the whole chain verifies from the genesis checkpoint.
    let state = genesis_state(chain);
    let last = Verifier::new()
        .verify_range(&state, &chain.trusted[1..], chain.now_ms)
        .expect("the vector chain verifies");
    assert_eq!(last.height(), (EVENTS_PER_BLOCK.len() - 1) as u64);
    json!({
        "chain_id": CHAIN_ID,
        "initial_validator_keys": { "first": INITIAL_KEYS.0, "count": INITIAL_KEYS.1, "power": 10 },
        "hand_over": {
            "height": HAND_OVER_HEIGHT,
            "first": NEXT_KEYS.0,
            "count": NEXT_KEYS.1,
            "power": 10,
        },
        "event_source_key_index": EVENT_SOURCE_KEY,
        "verify_now_ms": chain.now_ms,
        "blocks": blocks,
    })
}

fn block_header(chain: &Chain) -> Value {
    let header = &chain.blocks[1].header;
    json!({
        "header": to_json(header),
        "encoding": enc(header),
        "block_hash": header.hash().to_hex(),
    })
}

fn vote_json(vote: &Vote<'_>, tag: u8) -> Value {
    let mut w = Writer::new();
    w.u8(tag)
        .value(vote.chain_id)
        .u64(vote.height)
        .u32(vote.round)
        .hash(&vote.block_hash);
    json!({
        "kind": vote.kind,
        "kind_tag": tag,
        "chain_id": vote.chain_id.as_str(),
        "height": vote.height,
        "round": vote.round,
        "block_hash": vote.block_hash.to_hex(),
        "preimage": hx(w.as_bytes()),
        "digest": vote.digest().to_hex(),
    })
}

fn votes(chain: &Chain) -> Value {
    let th = &chain.trusted[1];
    let precommit = th.commit.vote(&th.header.chain_id);
    let prevote = Vote {
        kind: VoteKind::Prevote,
        ..precommit.clone()
    };
    let later_round = Vote {
        round: 7,
        ..precommit.clone()
    };
    json!([
        vote_json(&precommit, 2),
        vote_json(&prevote, 1),
        vote_json(&later_round, 2)
    ])
}

fn commit(chain: &Chain) -> Value {
    let th = &chain.trusted[1];
    let set = testkit::validator_set(&testkit::keys(INITIAL_KEYS.0, INITIAL_KEYS.1));
    let signers: Vec<Value> = th
        .commit
        .signatures
        .iter()
        .map(|s| {
            let key = &set.validators()[s.validator_index as usize].key;
            let n = (0..100)
                .find(|&n| testkit::key(n).public_key() == *key)
                .expect("a testkit key");
            json!({ "validator_index": s.validator_index, "key_index": n, "key": key.to_hex() })
        })
        .collect();
    json!({
        "commit": to_json(&th.commit),
        "signing_set": to_json(&set),
        "signers": signers,
        "encoding": enc(&th.commit),
    })
}

fn trusted_header(chain: &Chain) -> Value {
    let th = &chain.trusted[(HAND_OVER_HEIGHT - 1) as usize];
    let next = th
        .next_validators
        .as_ref()
        .expect("a hand-over carries the new set");
    json!({
        "height": th.header.height,
        "hands_over": th.header.hands_over(),
        "header_encoding": enc(&th.header),
        "commit_encoding": enc(&th.commit),
        "next_validators": to_json(next),
        "next_validators_encoding": enc(next),
        "next_validators_hash": next.hash().to_hex(),
        "encoding": enc(th),
    })
}

fn batch_coefficients(chain: &Chain) -> Value {
    let th = &chain.trusted[1];
    let set = testkit::validator_set(&testkit::keys(INITIAL_KEYS.0, INITIAL_KEYS.1));
    let digest = th.commit.vote(&th.header.chain_id).digest();
    let sigs = &th.commit.signatures[..3];
    let mut preimage = Vec::new();
    for s in sigs {
        let key = &set.validators()[s.validator_index as usize].key;
        preimage.extend_from_slice(key.as_bytes());
        preimage.extend_from_slice(&s.signature.0);
        preimage.extend_from_slice(&(digest.as_bytes().len() as u64).to_le_bytes());
        preimage.extend_from_slice(digest.as_bytes());
    }
    let mut hasher = blake3::Hasher::new_keyed(Domain::BatchCoefficients.key());
    hasher.update(&preimage);
    let mut xof = vec![0u8; 16 * sigs.len()];
    hasher.finalize_xof().fill(&mut xof);
    let z: Vec<String> = xof
        .chunks(16)
        .map(|c| u128::from_le_bytes(c.try_into().expect("16 bytes")).to_string())
        .collect();
    let items: Vec<BatchItem<'_>> = sigs
        .iter()
        .map(|s| BatchItem {
            key: &set.validators()[s.validator_index as usize].key,
            message: digest.as_bytes(),
            signature: &s.signature,
        })
        .collect();
    headway::crypto::ed25519::verify_batch(&items).expect("the batch verifies");
    json!({
        "items": sigs.iter().map(|s| json!({
            "key": set.validators()[s.validator_index as usize].key.to_hex(),
            "signature": s.signature.to_hex(),
            "message": digest.to_hex(),
        })).collect::<Vec<_>>(),
        "seed_preimage": hx(&preimage),
        "xof": hx(&xof),
        "z": z,
    })
}

fn merkle() -> Value {
    let ids: Vec<Hash> = (0..7u64)
        .map(|i| hash(Domain::Event, &i.to_le_bytes()))
        .collect();
    let roots: Vec<Value> = (0..=ids.len())
        .map(|n| json!({ "leaf_count": n, "root": merkle_root(&ids[..n]).to_hex() }))
        .collect();
    let proofs: Vec<Value> = [(7usize, 2u32), (7, 6), (5, 4), (1, 0)]
        .iter()
        .map(|&(n, i)| {
            let p = merkle_proof(&ids[..n], i).expect("in range");
            json!({
                "leaf_count": n,
                "index": i,
                "siblings": to_json(&p.siblings),
                "encoding": enc(&p),
                "root": merkle_root(&ids[..n]).to_hex(),
            })
        })
        .collect();
    json!({ "ids": to_json(&ids), "roots": roots, "proofs": proofs })
}

fn mmr() -> Value {
    let leaves: Vec<Hash> = (0..9u64)
        .map(|i| hash(Domain::BlockHeader, &i.to_le_bytes()))
        .collect();
    let mut m = Mmr::new();
    let mut roots = vec![json!({ "leaf_count": 0, "peaks": [], "root": m.root().to_hex() })];
    for leaf in &leaves {
        m.append(leaf).expect("small");
        roots.push(json!({
            "leaf_count": m.leaf_count(),
            "peaks": to_json(&m.peaks().peaks()),
            "root": m.root().to_hex(),
        }));
    }
    let peaks7 = headway::proof::mmr::peaks_at(&m, 7).expect("stored");
    let proofs: Vec<Value> = [(5u64, 9u64), (8, 9), (2, 7), (6, 7), (0, 1)]
        .iter()
        .map(|&(k, n)| {
            let p = m.proof_at(k, n).expect("stored");
            json!({
                "leaf_index": k,
                "leaf_count": n,
                "siblings": to_json(&p.siblings),
                "peaks": to_json(&p.peaks),
                "encoding": enc(&p),
                "root": headway::proof::mmr::peaks_at(&m, n).expect("stored").root().to_hex(),
            })
        })
        .collect();
    json!({
        "leaves": to_json(&leaves),
        "roots": roots,
        "peaks_encoding": { "leaf_count": 7, "encoding": enc(&peaks7) },
        "proofs": proofs,
    })
}

fn event_proofs(chain: &Chain) -> Value {
    [(1u64, 2u32, 5u64), (3, 4, 3), (4, 0, 5)]
        .iter()
        .map(|&(height, index, trusted_height)| {
            let block = &chain.blocks[height as usize];
            let ids: Vec<Hash> = block.events.iter().map(SignedEvent::id).collect();
            let merkle = merkle_proof(&ids, index).expect("in range");
            let mmr = (height != trusted_height).then(|| {
                chain
                    .builder
                    .mmr()
                    .proof_at(height, trusted_height)
                    .expect("stored")
            });
            let proof = EventProof {
                event: block.events[index as usize].clone(),
                header: block.header.clone(),
                merkle,
                mmr,
            };
            let trusted = &chain.blocks[trusted_height as usize].header;
            let verified = proof.verify(trusted).expect("the proof verifies");
            json!({
                "block_height": height,
                "event_index": index,
                "trusted_height": trusted_height,
                "trusted_block_hash": trusted.hash().to_hex(),
                "merkle_siblings": to_json(&proof.merkle.siblings),
                "mmr": proof.mmr.as_ref().map(|p| json!({
                    "leaf_index": p.leaf_index,
                    "leaf_count": p.leaf_count,
                    "siblings": to_json(&p.siblings),
                    "peaks": to_json(&p.peaks),
                })),
                "encoding": enc(&proof),
                "verified": to_json(&verified),
            })
        })
        .collect()
}

fn checkpoint(chain: &Chain) -> Value {
    let header = &chain.blocks[(HAND_OVER_HEIGHT - 1) as usize].header;
    let next = testkit::validator_set(&testkit::keys(NEXT_KEYS.0, NEXT_KEYS.1));
    let cp = Checkpoint::for_header(header, next).expect("matches");
    let text = cp.to_text();
    let (body, sum) = text.rsplit_once(':').expect("has a checksum");
    json!({
        "height": cp.height,
        "text": text,
        "body": body,
        "checksum": sum,
        "json": cp.to_json(),
    })
}

/// Candidates that the verifier accepts or rejects, each with the expected outcome.
fn verification_cases(chain: &Chain) -> Value {
    let th1 = &chain.trusted[1];
    let old_keys = testkit::keys(INITIAL_KEYS.0, INITIAL_KEYS.1);
    let old_set = testkit::validator_set(&old_keys);
    let by_index = |i: u32| {
        let key = &old_set.validators()[i as usize].key;
        old_keys
            .iter()
            .find(|k| k.public_key() == *key)
            .expect("member")
    };
    let wrong = |i: u32| by_index(i).sign(b"not the vote");
    let with_sigs = |sigs: Vec<CommitSig>| {
        let mut th = th1.clone();
        th.commit.signatures = sigs;
        th
    };
    let sig = |i: usize| th1.commit.signatures[i].clone();
    let bad = |i: usize| CommitSig {
        validator_index: i as u32,
        signature: wrong(i as u32),
    };
    let garbage = |i: u32| CommitSig {
        validator_index: i,
        signature: Signature([0xff; 64]),
    };

    let mut cases: Vec<(&str, u64, TrustedHeader)> = vec![
        ("all four signatures", 0, th1.clone()),
        (
            "first three signatures (30 of 40 > 2/3)",
            0,
            with_sigs(vec![sig(0), sig(1), sig(2)]),
        ),
        (
            "last three signatures",
            0,
            with_sigs(vec![sig(1), sig(2), sig(3)]),
        ),
        (
            "fourth signature invalid: past the >2/3 prefix, not cryptographically checked",
            0,
            with_sigs(vec![sig(0), sig(1), sig(2), bad(3)]),
        ),
        (
            "fourth signature malformed (S >= l): past the prefix, not checked",
            0,
            with_sigs(vec![sig(0), sig(1), sig(2), garbage(3)]),
        ),
        (
            "third signature invalid: inside the prefix",
            0,
            with_sigs(vec![sig(0), sig(1), bad(2), sig(3)]),
        ),
        (
            "two signatures (20 of 40)",
            0,
            with_sigs(vec![sig(0), sig(1)]),
        ),
        (
            "duplicate signer",
            0,
            with_sigs(vec![sig(0), sig(1), sig(1), sig(2)]),
        ),
        (
            "signatures not sorted by index",
            0,
            with_sigs(vec![sig(0), sig(2), sig(1), sig(3)]),
        ),
        (
            "validator index out of range, after the prefix",
            0,
            with_sigs(vec![sig(0), sig(1), sig(2), sig(3), garbage(4)]),
        ),
    ];
    let mut round1 = th1.clone();
    round1.commit.round = 1;
    cases.push(("commit round changed, signatures over round 0", 0, round1));

    let th2 = &chain.trusted[2];
    cases.push(("hand-over carrying the announced set", 1, th2.clone()));
    let mut missing = th2.clone();
    missing.next_validators = None;
    cases.push(("hand-over without the new set", 1, missing));
    let mut wrong_set = th2.clone();
    wrong_set.next_validators = Some(old_set.clone());
    cases.push(("hand-over carrying another set", 1, wrong_set));
    let mut unexpected = th1.clone();
    unexpected.next_validators = Some(old_set.clone());
    cases.push(("no hand-over but a set is carried", 0, unexpected));

    let th3 = &chain.trusted[3];
    let refs: Vec<_> = old_keys.iter().collect();
    let mut by_old_set = th3.clone();
    by_old_set.commit = Commit::sign(&th3.header, 0, &old_set, &refs);
    cases.push((
        "block after the hand-over signed by the outgoing set",
        2,
        by_old_set,
    ));

    let mut states = vec![genesis_state(chain)];
    for th in &chain.trusted[1..] {
        let next = Verifier::new()
            .verify(states.last().expect("non-empty"), th, chain.now_ms)
            .expect("chain verifies");
        states.push(next);
    }
    cases
        .into_iter()
        .map(|(name, trusted_height, candidate)| {
            let state = &states[trusted_height as usize];
            let (batch, _) = outcome(Verifier::new().verify(state, &candidate, chain.now_ms));
            let (single, _) = outcome(
                Verifier::new()
                    .with_signature_mode(SignatureMode::Single)
                    .verify(state, &candidate, chain.now_ms),
            );
            assert_eq!(batch, single, "{name}: batch and single modes agree");
            json!({
                "name": name,
                "trusted_height": trusted_height,
                "candidate": enc(&candidate),
                "expected": batch,
            })
        })
        .collect()
}

/// Byte strings that must not decode, each with the `DecodeError` variant expected.
fn rejected_encodings(chain: &Chain) -> Value {
    let mut out: Vec<Value> = Vec::new();
    let mut push = |ty: &str, bytes: Vec<u8>, error: &str, why: &str| {
        out.push(json!({ "type": ty, "encoding": hx(&bytes), "error": error, "why": why }));
    };
    let id = ChainId::new(CHAIN_ID).expect("valid");
    let mut b = id.encode();
    b.push(0);
    push("ChainId", b, "TrailingBytes", "one byte after the value");
    let mut w = Writer::new();
    w.str("Headway");
    push(
        "ChainId",
        w.into_bytes(),
        "Invalid",
        "upper-case letter in a chain id",
    );
    let mut w = Writer::new();
    w.str(&"a".repeat(65));
    push("ChainId", w.into_bytes(), "TooLong", "65-byte chain id");
    let mut w = Writer::new();
    w.u32(3).raw(&[0x61, 0xff, 0x62]);
    push("ChainId", w.into_bytes(), "InvalidUtf8", "not UTF-8");

    let event = sample_event();
    let e = event.encode();
    let outcome_at = 4 + event.kind.len() + 4 + event.actor.len() + 4 + event.resource.len();
    let mut b = e.clone();
    b[outcome_at] = 4;
    push("AuditEvent", b, "InvalidTag", "outcome tag 4");
    let mut bad_kind = event.clone();
    bad_kind.kind = "User.Login".into();
    push(
        "AuditEvent",
        bad_kind.encode(),
        "Invalid",
        "upper-case letter in the kind",
    );
    let mut b = e.clone();
    b.extend_from_slice(&[0; 63]);
    push(
        "SignedEvent",
        b,
        "UnexpectedEnd",
        "signature one byte short",
    );

    let set = testkit::validator_set(&testkit::keys(0, 3));
    let s = set.encode();
    let mut b = s.clone();
    // Swap the first two validators (40 bytes each after the count).
    let (first, second) = (b[4..44].to_vec(), b[44..84].to_vec());
    b[4..44].copy_from_slice(&second);
    b[44..84].copy_from_slice(&first);
    push("ValidatorSet", b, "Invalid", "validators not sorted by key");
    let mut b = s.clone();
    b[36..44].copy_from_slice(&0u64.to_le_bytes());
    push("ValidatorSet", b, "Invalid", "zero voting power");
    push("ValidatorSet", vec![0; 4], "Invalid", "empty set");
    let mut b = s.clone();
    b[..4].copy_from_slice(&1025u32.to_le_bytes());
    push("ValidatorSet", b, "TooLong", "1025 validators");
    let first = &set.validators()[0];
    let mut w = Writer::new();
    w.u32(2).value(&first.key).u64(10).value(&first.key).u64(5);
    push(
        "ValidatorSet",
        w.into_bytes(),
        "Invalid",
        "the same key twice",
    );

    let header = &chain.blocks[1].header;
    // The proposer is the header's last field: replace its 32 bytes.
    let with_proposer = |key: [u8; 32]| {
        let mut b = header.encode();
        let n = b.len();
        b[n - 32..].copy_from_slice(&key);
        b
    };
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let b = with_proposer(identity);
    push(
        "BlockHeader",
        b,
        "Invalid",
        "proposer is the identity point (small order)",
    );
    let mut p_plus_1 = [0xff; 32];
    p_plus_1[0] = 0xee;
    p_plus_1[31] = 0x7f;
    let b = with_proposer(p_plus_1);
    push(
        "BlockHeader",
        b,
        "Invalid",
        "proposer encoding not canonical (y = p + 1)",
    );

    let th = &chain.trusted[1];
    let mut b = th.encode();
    let n = b.len();
    b[n - 1] = 2;
    push("TrustedHeader", b, "InvalidTag", "option tag 2");
    let mut b = th.encode();
    b.push(0);
    push(
        "TrustedHeader",
        b,
        "TrailingBytes",
        "one byte after the value",
    );
    let mut w = Writer::new();
    w.u64(1).u32(0).hash(&Hash::ZERO).u32(1025);
    push("Commit", w.into_bytes(), "TooLong", "1025 signatures");
    let mut b = th.commit.encode();
    b.pop();
    push(
        "Commit",
        b,
        "UnexpectedEnd",
        "last signature one byte short",
    );
    let mut w = Writer::new();
    w.value(header).u32(10_001);
    push("Block", w.into_bytes(), "TooLong", "10001 events");

    let mut w = Writer::new();
    w.u32(0).u32(33);
    push("MerkleProof", w.into_bytes(), "TooLong", "33 siblings");
    let mut w = Writer::new();
    w.u64(5).seq(&[Hash::ZERO]);
    push(
        "MmrPeaks",
        w.into_bytes(),
        "Invalid",
        "5 leaves need 2 peaks, not 1",
    );
    let mut w = Writer::new();
    w.u64(0).u64(1).u32(65);
    push("MmrProof", w.into_bytes(), "TooLong", "65 siblings");
    let mut w = Writer::new();
    w.u64(0).u64(1).u32(0).u32(65);
    push("MmrProof", w.into_bytes(), "TooLong", "65 peaks");

    let block = &chain.blocks[1];
    let ids: Vec<Hash> = block.events.iter().map(SignedEvent::id).collect();
    let proof = EventProof {
        event: block.events[0].clone(),
        header: block.header.clone(),
        merkle: merkle_proof(&ids, 0).expect("in range"),
        mmr: None,
    };
    let mut b = proof.encode();
    let n = b.len();
    b[n - 1] = 2;
    push("EventProof", b, "InvalidTag", "option tag 2");
    Value::Array(out)
}

fn main() {
    let chain = build_chain();
    let doc = json!({
        "about": {
            "title": "headway protocol v1 known-answer vectors",
            "spec": "docs/PROTOCOL.md",
            "generator": "cargo run --example gen_vectors > tests/vectors/protocol.json",
            "check": "cargo test --test vectors",
            "conventions": "hex is lowercase without a prefix; u64 values in primitives are decimal strings, every other integer is below 2^53",
        },
        "protocol_version": headway::chain::PROTOCOL_VERSION,
        "primitives": primitives(),
        "domains": domains(),
        "hashes": hashes(),
        "keys": keys(),
        "chain_id": chain_id(),
        "audit_event": audit_event(),
        "validator_set": validator_set(),
        "chain": chain_section(&chain),
        "block_header": block_header(&chain),
        "votes": votes(&chain),
        "commit": commit(&chain),
        "trusted_header": trusted_header(&chain),
        "batch_coefficients": batch_coefficients(&chain),
        "merkle": merkle(),
        "mmr": mmr(),
        "event_proofs": event_proofs(&chain),
        "checkpoint": checkpoint(&chain),
        "verification_cases": verification_cases(&chain),
        "rejected_encodings": rejected_encodings(&chain),
    });
    let text = serde_json::to_string_pretty(&doc).expect("a Value serializes");
    println!("{text}");
}
