#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

// Known-answer vectors of protocol v1 (`tests/vectors/protocol.json`, specified by
// `docs/PROTOCOL.md`, printed by `cargo run --example gen_vectors`).
//
// Every entry is recomputed here, wherever possible twice: once through headway's API and once
// from the specification alone (a hand-written encoder, BLAKE3 keyed hashing, RFC 6962 and MMR
// reference folds, ed25519-dalek for RFC 8032 signing), then decoded back and verified. The
// whole document must also re-serialize to the exact bytes of the file, and every field is
// parsed strictly, so changing any byte of the file, or drifting in the implementation, fails a
// test. The file is read with `include_str!`, so the same tests run on wasm32 in a browser.

use std::collections::BTreeMap;
use std::fmt::Debug;

use headway::chain::{
    hash, AuditEvent, Block, BlockHeader, ChainId, Checkpoint, Commit, Decode, DecodeError, Domain,
    Encode, Hash, Outcome, Reader, SignedEvent, TrustedHeader, Validator, ValidatorSet, Vote,
    VoteKind, Writer, PROTOCOL_VERSION,
};
use headway::crypto::ed25519::{self, BatchItem, PublicKey, Signature};
use headway::proof::{merkle_proof, merkle_root, EventProof, MerkleProof, Mmr, MmrPeaks, MmrProof};
use headway::testkit::{self, ChainBuilder};
use headway::verify::{SignatureMode, TrustedState, Verifier, VerifyError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

const TEXT: &str = include_str!("vectors/protocol.json");
/// BLAKE3 of `protocol.json`. The vectors are frozen: the recomputations below catch any change
/// that alters a value, and this digest catches the rest (descriptions, a rejected encoding
/// corrupted into another rejected encoding). An intended protocol change regenerates the file
/// and updates this digest in the same commit.
const FILE_BLAKE3: &str = "c054aee225a8b07d7b4139bd2146a5d1c3a715a9a0215f8dd2d3bb779de931bb";
const REGENERATE: &str = "regenerate with `cargo run --example gen_vectors > tests/vectors/protocol.json` only if the protocol change is intended";

/// The domains of protocol v1, as the specification lists them.
const CONTEXTS: [(&str, &str); 12] = [
    ("BlockHeader", "headway v1 block-header"),
    ("Event", "headway v1 event"),
    ("EventSignature", "headway v1 event-signature"),
    ("ValidatorSet", "headway v1 validator-set"),
    ("MerkleLeaf", "headway v1 merkle-leaf"),
    ("MerkleNode", "headway v1 merkle-node"),
    ("MmrLeaf", "headway v1 mmr-leaf"),
    ("MmrNode", "headway v1 mmr-node"),
    ("MmrRoot", "headway v1 mmr-root"),
    ("Vote", "headway v1 vote"),
    ("Handshake", "headway v1 handshake"),
    ("BatchCoefficients", "headway v1 batch-coefficients"),
];

// ---------------------------------------------------------------------------------------------
// The document, parsed strictly.

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    about: About,
    protocol_version: u32,
    primitives: Vec<PrimitiveV>,
    domains: Vec<DomainV>,
    hashes: Vec<HashV>,
    keys: Vec<KeyV>,
    chain_id: ChainIdV,
    audit_event: AuditEventV,
    validator_set: ValidatorSetV,
    chain: ChainV,
    block_header: BlockHeaderV,
    votes: Vec<VoteV>,
    commit: CommitV,
    trusted_header: TrustedHeaderV,
    batch_coefficients: BatchV,
    merkle: MerkleV,
    mmr: MmrV,
    event_proofs: Vec<EventProofV>,
    checkpoint: CheckpointV,
    verification_cases: Vec<CaseV>,
    rejected_encodings: Vec<RejectedV>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct About {
    title: String,
    spec: String,
    generator: String,
    check: String,
    conventions: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrimitiveV {
    #[serde(rename = "type")]
    ty: String,
    value: Value,
    encoding: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DomainV {
    name: String,
    context: String,
    key: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HashV {
    domain: String,
    input_utf8: Option<String>,
    input: String,
    hash: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyV {
    index: u64,
    seed: String,
    public_key: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChainIdV {
    value: String,
    encoding: String,
    rejected: Vec<RejectedIdV>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RejectedIdV {
    value: String,
    error: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditEventV {
    source_key_index: u64,
    event: AuditEvent,
    outcome_tags: BTreeMap<String, u8>,
    encoding: String,
    signing_digest: String,
    signature: String,
    signed_event_encoding: String,
    event_id: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberV {
    key_index: u64,
    key: String,
    power: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidatorSetV {
    members: Vec<MemberV>,
    canonical: ValidatorSet,
    total_power: u64,
    encoding: String,
    hash: String,
    largest_insufficient_power: u64,
    smallest_supermajority_power: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRangeV {
    first: u64,
    count: usize,
    power: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HandOverV {
    height: u64,
    first: u64,
    count: usize,
    power: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockV {
    height: u64,
    block_hash: String,
    header_encoding: String,
    events: Vec<String>,
    event_ids: Vec<String>,
    block_encoding: String,
    trusted_header_encoding: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChainV {
    chain_id: String,
    initial_validator_keys: KeyRangeV,
    hand_over: HandOverV,
    event_source_key_index: u64,
    verify_now_ms: u64,
    blocks: Vec<BlockV>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockHeaderV {
    header: BlockHeader,
    encoding: String,
    block_hash: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VoteV {
    kind: VoteKind,
    kind_tag: u8,
    chain_id: String,
    height: u64,
    round: u32,
    block_hash: Hash,
    preimage: String,
    digest: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignerV {
    validator_index: u32,
    key_index: u64,
    key: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitV {
    commit: Commit,
    signing_set: ValidatorSet,
    signers: Vec<SignerV>,
    encoding: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustedHeaderV {
    height: u64,
    hands_over: bool,
    header_encoding: String,
    commit_encoding: String,
    next_validators: ValidatorSet,
    next_validators_encoding: String,
    next_validators_hash: String,
    encoding: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchItemV {
    key: PublicKey,
    signature: Signature,
    message: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchV {
    items: Vec<BatchItemV>,
    seed_preimage: String,
    xof: String,
    z: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RootV {
    leaf_count: u32,
    root: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MerkleProofV {
    leaf_count: u32,
    index: u32,
    siblings: Vec<Hash>,
    encoding: String,
    root: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MerkleV {
    ids: Vec<Hash>,
    roots: Vec<RootV>,
    proofs: Vec<MerkleProofV>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MmrRootV {
    leaf_count: u64,
    peaks: Vec<Hash>,
    root: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PeaksEncodingV {
    leaf_count: u64,
    encoding: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MmrProofV {
    leaf_index: u64,
    leaf_count: u64,
    siblings: Vec<Hash>,
    peaks: Vec<Hash>,
    encoding: String,
    root: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MmrV {
    leaves: Vec<Hash>,
    roots: Vec<MmrRootV>,
    peaks_encoding: PeaksEncodingV,
    proofs: Vec<MmrProofV>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MmrPathV {
    leaf_index: u64,
    leaf_count: u64,
    siblings: Vec<Hash>,
    peaks: Vec<Hash>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifiedV {
    event_id: Hash,
    height: u64,
    block_hash: Hash,
    index: u32,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventProofV {
    block_height: u64,
    event_index: u32,
    trusted_height: u64,
    trusted_block_hash: String,
    merkle_siblings: Vec<Hash>,
    mmr: Option<MmrPathV>,
    encoding: String,
    verified: VerifiedV,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointV {
    height: u64,
    text: String,
    body: String,
    checksum: String,
    json: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseV {
    name: String,
    trusted_height: u64,
    candidate: String,
    expected: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RejectedV {
    #[serde(rename = "type")]
    ty: String,
    encoding: String,
    error: String,
    why: String,
}

fn doc() -> Doc {
    serde_json::from_str(TEXT).expect("protocol.json parses into the expected structure")
}

// ---------------------------------------------------------------------------------------------
// The specification, re-implemented without headway.

/// `K_d = BLAKE3-derive-key(context, "")`, then `BLAKE3-keyed(K_d, data)`.
fn kh(context: &str, data: &[u8]) -> Hash {
    Hash(*blake3::keyed_hash(&blake3::derive_key(context, b""), data).as_bytes())
}

fn ctx(name: &str) -> &'static str {
    CONTEXTS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| *c)
        .unwrap_or_else(|| panic!("unknown domain {name}"))
}

fn domain(name: &str) -> Domain {
    *Domain::ALL
        .iter()
        .find(|d| format!("{d:?}") == name)
        .unwrap_or_else(|| panic!("unknown domain {name}"))
}

/// The canonical encoding rules, by hand.
#[derive(Default)]
struct Enc(Vec<u8>);

impl Enc {
    fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn raw(mut self, v: &[u8]) -> Self {
        self.0.extend_from_slice(v);
        self
    }
    fn bytes(self, v: &[u8]) -> Self {
        self.u32(v.len() as u32).raw(v)
    }
    fn hashes(self, v: &[Hash]) -> Self {
        v.iter().fold(self.u32(v.len() as u32), |e, h| e.raw(&h.0))
    }
}

fn spec_chain_id(id: &str) -> Vec<u8> {
    Enc::default().bytes(id.as_bytes()).0
}

fn spec_outcome_tag(o: Outcome) -> u8 {
    match o {
        Outcome::Success => 0,
        Outcome::Failure => 1,
        Outcome::Denied => 2,
        Outcome::Error => 3,
    }
}

fn spec_event(e: &AuditEvent) -> Vec<u8> {
    Enc::default()
        .bytes(e.kind.as_bytes())
        .bytes(e.actor.as_bytes())
        .bytes(e.resource.as_bytes())
        .u8(spec_outcome_tag(e.outcome))
        .bytes(&e.metadata)
        .u64(e.time_ms)
        .raw(e.source.as_bytes())
        .0
}

fn spec_signed_event(e: &SignedEvent) -> Vec<u8> {
    Enc(spec_event(&e.event)).raw(&e.signature.0).0
}

fn spec_set(set: &[Validator]) -> Vec<u8> {
    set.iter()
        .fold(Enc::default().u32(set.len() as u32), |e, v| {
            e.raw(v.key.as_bytes()).u64(v.power)
        })
        .0
}

fn spec_header(h: &BlockHeader) -> Vec<u8> {
    Enc::default()
        .u32(h.version)
        .raw(&spec_chain_id(h.chain_id.as_str()))
        .u64(h.height)
        .raw(&h.parent_hash.0)
        .u64(h.timestamp_ms)
        .raw(&h.events_root.0)
        .u32(h.event_count)
        .raw(&h.mmr_root.0)
        .u64(h.mmr_leaf_count)
        .raw(&h.validators_hash.0)
        .raw(&h.next_validators_hash.0)
        .raw(h.proposer.as_bytes())
        .0
}

fn spec_vote_preimage(tag: u8, chain_id: &str, height: u64, round: u32, block: &Hash) -> Vec<u8> {
    Enc::default()
        .u8(tag)
        .raw(&spec_chain_id(chain_id))
        .u64(height)
        .u32(round)
        .raw(&block.0)
        .0
}

fn spec_commit(c: &Commit) -> Vec<u8> {
    c.signatures
        .iter()
        .fold(
            Enc::default()
                .u64(c.height)
                .u32(c.round)
                .raw(&c.block_hash.0)
                .u32(c.signatures.len() as u32),
            |e, s| e.u32(s.validator_index).raw(&s.signature.0),
        )
        .0
}

fn spec_trusted_header(t: &TrustedHeader) -> Vec<u8> {
    let e = Enc(spec_header(&t.header)).raw(&spec_commit(&t.commit));
    match &t.next_validators {
        None => e.u8(0).0,
        Some(set) => e.u8(1).raw(&spec_set(set.validators())).0,
    }
}

fn spec_block(b: &Block) -> Vec<u8> {
    b.events
        .iter()
        .fold(
            Enc(spec_header(&b.header)).u32(b.events.len() as u32),
            |e, ev| e.raw(&spec_signed_event(ev)),
        )
        .0
}

fn spec_merkle_proof(p: &MerkleProof) -> Vec<u8> {
    Enc::default().u32(p.index).hashes(&p.siblings).0
}

fn spec_mmr_proof(p: &MmrProof) -> Vec<u8> {
    Enc::default()
        .u64(p.leaf_index)
        .u64(p.leaf_count)
        .hashes(&p.siblings)
        .hashes(&p.peaks)
        .0
}

fn spec_event_proof(p: &EventProof) -> Vec<u8> {
    let e = Enc(spec_signed_event(&p.event))
        .raw(&spec_header(&p.header))
        .raw(&spec_merkle_proof(&p.merkle));
    match &p.mmr {
        None => e.u8(0).0,
        Some(m) => e.u8(1).raw(&spec_mmr_proof(m)).0,
    }
}

fn node(context: &str, l: &Hash, r: &Hash) -> Hash {
    kh(context, &[l.0, r.0].concat())
}

/// The largest power of two strictly below `n` (n >= 2).
fn split(n: u64) -> u64 {
    let mut k = 1;
    while 2 * k < n {
        k *= 2;
    }
    k
}

/// RFC 6962 §2.1 over event ids, with the zero hash for the empty list.
fn spec_merkle_root(ids: &[Hash]) -> Hash {
    match ids.len() {
        0 => Hash::ZERO,
        1 => kh(ctx("MerkleLeaf"), &ids[0].0),
        n => {
            let k = split(n as u64) as usize;
            node(
                ctx("MerkleNode"),
                &spec_merkle_root(&ids[..k]),
                &spec_merkle_root(&ids[k..]),
            )
        }
    }
}

/// Folds a Merkle proof as the specification describes; `None` if the sibling count is wrong.
fn spec_merkle_fold(id: &Hash, index: u32, leaf_count: u32, siblings: &[Hash]) -> Option<Hash> {
    if index >= leaf_count {
        return None;
    }
    let (mut i, mut n) = (u64::from(index), u64::from(leaf_count));
    let mut right_child = Vec::new(); // root to leaf
    while n > 1 {
        let k = split(n);
        if i < k {
            right_child.push(false);
            n = k;
        } else {
            right_child.push(true);
            i -= k;
            n -= k;
        }
    }
    if right_child.len() != siblings.len() {
        return None;
    }
    let mut acc = kh(ctx("MerkleLeaf"), &id.0);
    for (is_right, sibling) in right_child.iter().rev().zip(siblings) {
        acc = if *is_right {
            node(ctx("MerkleNode"), sibling, &acc)
        } else {
            node(ctx("MerkleNode"), &acc, sibling)
        };
    }
    Some(acc)
}

fn spec_mountain(leaves: &[Hash]) -> Hash {
    if leaves.len() == 1 {
        return kh(ctx("MmrLeaf"), &leaves[0].0);
    }
    let (l, r) = leaves.split_at(leaves.len() / 2);
    node(ctx("MmrNode"), &spec_mountain(l), &spec_mountain(r))
}

/// Peaks of an MMR: one perfect mountain per set bit of the leaf count, largest first.
fn spec_mmr_peaks(leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    let mut offset = 0;
    let mut peaks = Vec::new();
    for b in (0..usize::BITS).rev() {
        if (n >> b) & 1 == 1 {
            peaks.push(spec_mountain(&leaves[offset..offset + (1 << b)]));
            offset += 1 << b;
        }
    }
    peaks
}

fn spec_mmr_bag(leaf_count: u64, peaks: &[Hash]) -> Hash {
    let mut data = leaf_count.to_le_bytes().to_vec();
    for p in peaks {
        data.extend_from_slice(&p.0);
    }
    kh(ctx("MmrRoot"), &data)
}

fn spec_mmr_root(leaves: &[Hash]) -> Hash {
    spec_mmr_bag(leaves.len() as u64, &spec_mmr_peaks(leaves))
}

/// Folds an MMR proof as the specification describes; `None` if its shape is wrong.
fn spec_mmr_fold(
    block_hash: &Hash,
    leaf_index: u64,
    leaf_count: u64,
    siblings: &[Hash],
    other_peaks: &[Hash],
) -> Option<Hash> {
    if leaf_index >= leaf_count {
        return None;
    }
    // Find the mountain holding the leaf, scanning the set bits of the count from the top.
    let (mut start, mut position, mut height) = (0u64, 0usize, None);
    for b in (0..64).rev() {
        if (leaf_count >> b) & 1 == 1 {
            if leaf_index < start + (1 << b) {
                height = Some(b);
                break;
            }
            start += 1 << b;
            position += 1;
        }
    }
    let height = height?;
    if siblings.len() != height || other_peaks.len() != leaf_count.count_ones() as usize - 1 {
        return None;
    }
    let mut acc = kh(ctx("MmrLeaf"), &block_hash.0);
    for (level, sibling) in siblings.iter().enumerate() {
        acc = if (leaf_index >> level) & 1 == 0 {
            node(ctx("MmrNode"), &acc, sibling)
        } else {
            node(ctx("MmrNode"), sibling, &acc)
        };
    }
    let mut peaks = other_peaks.to_vec();
    peaks.insert(position, acc);
    Some(spec_mmr_bag(leaf_count, &peaks))
}

/// RFC 8032 signing with ed25519-dalek (not headway's wrapper).
fn dalek_sign(seed: &[u8; 32], message: &[u8]) -> [u8; 64] {
    use ed25519_dalek::Signer;
    ed25519_dalek::SigningKey::from_bytes(seed)
        .sign(message)
        .to_bytes()
}

fn dalek_verify_strict(key: &PublicKey, message: &[u8], signature: &Signature) -> bool {
    let vk = ed25519_dalek::VerifyingKey::from_bytes(key.as_bytes()).expect("a valid key");
    vk.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&signature.0))
        .is_ok()
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap_or_else(|e| panic!("{s:?} is not hex: {e}"))
}

fn hash_hex(s: &str) -> Hash {
    Hash::from_hex(s).unwrap_or_else(|e| panic!("{s:?} is not a hash: {e}"))
}

/// The variant name of an error, from its Debug form.
fn variant<E: Debug>(e: &E) -> String {
    let s = format!("{e:?}");
    let end = s
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(s.len());
    s[..end].to_string()
}

/// Decodes `hex`, checks that it re-encodes to the same bytes and that the hand encoder agrees.
fn decode_exact<T: Decode + Encode + Debug>(hex: &str, spec: impl Fn(&T) -> Vec<u8>) -> T {
    let bytes = unhex(hex);
    let v = T::decode(&bytes).unwrap_or_else(|e| panic!("{hex}: {e}"));
    assert_eq!(v.encode(), bytes, "re-encoding {v:?}");
    assert_eq!(spec(&v), bytes, "spec encoding of {v:?}");
    v
}

// ---------------------------------------------------------------------------------------------
// The chain of the vectors, decoded and checked once per test that needs it.

struct Chain {
    headers: Vec<BlockHeader>,
    blocks: Vec<Block>,
    trusted: Vec<TrustedHeader>,
    /// States after verifying each header from the genesis checkpoint.
    states: Vec<TrustedState>,
    now_ms: u64,
}

fn set_of(first: u64, count: usize, power: u64) -> ValidatorSet {
    ValidatorSet::new(
        (first..first + count as u64)
            .map(|n| Validator {
                key: testkit::key(n).public_key(),
                power,
            })
            .collect(),
    )
    .expect("a valid set")
}

fn chain(d: &Doc) -> Chain {
    let c = &d.chain;
    let initial = set_of(
        c.initial_validator_keys.first,
        c.initial_validator_keys.count,
        c.initial_validator_keys.power,
    );
    let next = set_of(c.hand_over.first, c.hand_over.count, c.hand_over.power);
    let mut headers: Vec<BlockHeader> = Vec::new();
    let mut blocks = Vec::new();
    let mut trusted = Vec::new();
    let mut block_hashes: Vec<Hash> = Vec::new();
    for (i, b) in c.blocks.iter().enumerate() {
        let height = i as u64;
        assert_eq!(b.height, height);
        let header: BlockHeader = decode_exact(&b.header_encoding, spec_header);
        let block_hash = kh(ctx("BlockHeader"), &unhex(&b.header_encoding));
        assert_eq!(b.block_hash, block_hash.to_hex());
        assert_eq!(header.hash(), block_hash);
        // Header fields, from the rules alone.
        assert_eq!(header.version, PROTOCOL_VERSION);
        assert_eq!(header.chain_id.as_str(), c.chain_id);
        assert_eq!(header.height, height);
        let parent = block_hashes.last().copied().unwrap_or(Hash::ZERO);
        assert_eq!(header.parent_hash, parent);
        assert_eq!(header.mmr_leaf_count, height);
        assert_eq!(header.mmr_root, spec_mmr_root(&block_hashes));
        let signing = if height < c.hand_over.height {
            &initial
        } else {
            &next
        };
        let next_signing = if height + 1 < c.hand_over.height {
            &initial
        } else {
            &next
        };
        assert_eq!(header.validators_hash, signing.hash());
        assert_eq!(
            header.validators_hash,
            kh(ctx("ValidatorSet"), &spec_set(signing.validators()))
        );
        assert_eq!(header.next_validators_hash, next_signing.hash());
        // Events: each decodes, validates, and hashes to its listed id; the root commits to them.
        let events: Vec<SignedEvent> = b
            .events
            .iter()
            .map(|e| decode_exact(e, spec_signed_event))
            .collect();
        let ids: Vec<Hash> = b
            .events
            .iter()
            .map(|e| kh(ctx("Event"), &unhex(e)))
            .collect();
        assert_eq!(
            b.event_ids,
            ids.iter().map(Hash::to_hex).collect::<Vec<_>>()
        );
        for (e, id) in events.iter().zip(&ids) {
            assert_eq!(e.validate(), Ok(()));
            assert_eq!(
                e.event.source,
                testkit::key(c.event_source_key_index).public_key()
            );
            assert_eq!(e.id(), *id);
        }
        assert_eq!(header.event_count as usize, events.len());
        assert_eq!(header.events_root, spec_merkle_root(&ids));
        let block: Block = decode_exact(&b.block_encoding, spec_block);
        assert_eq!(block.header, header);
        assert_eq!(block.events, events);
        let th: TrustedHeader = decode_exact(&b.trusted_header_encoding, spec_trusted_header);
        assert_eq!(th.header, header);
        assert_eq!(th.commit.block_hash, block_hash);
        assert_eq!(
            th.next_validators.as_ref(),
            header.hands_over().then_some(next_signing)
        );
        block_hashes.push(block_hash);
        headers.push(header);
        blocks.push(block);
        trusted.push(th);
    }

    // The testkit still builds exactly this chain from these events.
    let mut builder = ChainBuilder::new(&c.chain_id, c.initial_validator_keys.count).hand_over_at(
        c.hand_over.height,
        testkit::keys(c.hand_over.first, c.hand_over.count),
    );
    for (b, th) in blocks.iter().zip(&trusted) {
        let (built, built_th) = builder.next_block(b.events.clone());
        assert_eq!(&built, b, "testkit drifted: {REGENERATE}");
        assert_eq!(&built_th, th, "testkit drifted: {REGENERATE}");
    }

    // Every header verifies from the genesis checkpoint, one at a time, in both modes.
    let checkpoint = Checkpoint::for_header(&headers[0], initial.clone()).expect("genesis");
    let genesis = TrustedState::from_checkpoint(&checkpoint, headers[0].clone()).expect("genesis");
    let mut states = vec![genesis.clone()];
    for th in &trusted[1..] {
        let prev = states.last().expect("non-empty");
        let batch = Verifier::new().verify(prev, th, c.verify_now_ms);
        let single = Verifier::new()
            .with_signature_mode(SignatureMode::Single)
            .verify(prev, th, c.verify_now_ms);
        assert_eq!(batch, single);
        states.push(batch.unwrap_or_else(|e| panic!("height {}: {e}", th.header.height)));
    }
    // And as one range.
    // The verifier's clock reads the last block's timestamp.
    assert_eq!(
        Some(c.verify_now_ms),
        headers.last().map(|h| h.timestamp_ms)
    );
    let range = Verifier::new()
        .verify_range(&genesis, &trusted[1..], c.verify_now_ms)
        .expect("the range verifies");
    assert_eq!(&range, states.last().expect("non-empty"));
    Chain {
        headers,
        blocks,
        trusted,
        states,
        now_ms: c.verify_now_ms,
    }
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn file_is_exactly_the_canonical_rendering_of_its_content() {
    let value: Value = serde_json::from_str(TEXT).expect("valid JSON");
    let rendered = serde_json::to_string_pretty(&value).expect("renders") + "\n";
    assert!(
        rendered == TEXT,
        "protocol.json is not in the generator's exact form (whitespace, key order, escapes)"
    );
    // Every field is known, none is missing, and each parses back to the same value.
    let d = doc();
    assert_eq!(serde_json::to_value(&d).expect("serializes"), value);
    assert_eq!(
        d.about,
        About {
            title: "headway protocol v1 known-answer vectors".into(),
            spec: "docs/PROTOCOL.md".into(),
            generator: "cargo run --example gen_vectors > tests/vectors/protocol.json".into(),
            check: "cargo test --test vectors".into(),
            conventions: "hex is lowercase without a prefix; u64 values in primitives are decimal \
                          strings, every other integer is below 2^53"
                .into(),
        }
    );
    assert_eq!(d.protocol_version, PROTOCOL_VERSION);
    assert_eq!(d.protocol_version, 1);
}

#[test]
fn file_digest_is_pinned() {
    assert_eq!(
        blake3::hash(TEXT.as_bytes()).to_hex().as_str(),
        FILE_BLAKE3,
        "tests/vectors/protocol.json changed: {REGENERATE}, then update FILE_BLAKE3"
    );
}

#[test]
fn primitives() {
    let d = doc();
    assert_eq!(d.primitives.len(), 15);
    let u64_of = |v: &Value| -> u64 {
        v.as_str()
            .expect("u64 as a decimal string")
            .parse()
            .expect("decimal")
    };
    for p in &d.primitives {
        let bytes = unhex(&p.encoding);
        let mut w = Writer::new();
        let mut r = Reader::new(&bytes);
        let spec: Vec<u8> = match p.ty.as_str() {
            "u8" => {
                let v = u8::try_from(p.value.as_u64().expect("number")).expect("u8");
                w.u8(v);
                assert_eq!(r.u8(), Ok(v));
                vec![v]
            }
            "u16" => {
                let v = u16::try_from(p.value.as_u64().expect("number")).expect("u16");
                w.u16(v);
                assert_eq!(r.u16(), Ok(v));
                v.to_le_bytes().to_vec()
            }
            "u32" => {
                let v = u32::try_from(p.value.as_u64().expect("number")).expect("u32");
                w.u32(v);
                assert_eq!(r.u32(), Ok(v));
                Enc::default().u32(v).0
            }
            "u64" => {
                let v = u64_of(&p.value);
                w.u64(v);
                assert_eq!(r.u64(), Ok(v));
                Enc::default().u64(v).0
            }
            "bool" => {
                let v = p.value.as_bool().expect("bool");
                w.bool(v);
                assert_eq!(r.bool(), Ok(v));
                vec![u8::from(v)]
            }
            "bytes" => {
                let v = unhex(p.value.as_str().expect("hex"));
                w.bytes(&v);
                assert_eq!(r.bytes("bytes", 16), Ok(&v[..]));
                Enc::default().bytes(&v).0
            }
            "string" => {
                let v = p.value.as_str().expect("string");
                w.str(v);
                assert_eq!(r.str("string", 64), Ok(v));
                Enc::default().bytes(v.as_bytes()).0
            }
            "hash" => {
                let v = hash_hex(p.value.as_str().expect("hex"));
                w.hash(&v);
                assert_eq!(r.hash(), Ok(v));
                v.0.to_vec()
            }
            "option<u64>" => {
                let v = (!p.value.is_null()).then(|| u64_of(&p.value));
                w.option(v.as_ref());
                assert_eq!(r.option::<u64>("option"), Ok(v));
                match v {
                    None => vec![0],
                    Some(v) => Enc::default().u8(1).u64(v).0,
                }
            }
            "seq<u64>" => {
                let v: Vec<u64> = p
                    .value
                    .as_array()
                    .expect("array")
                    .iter()
                    .map(u64_of)
                    .collect();
                w.seq(&v);
                assert_eq!(r.seq::<u64>("seq", 8), Ok(v.clone()));
                v.iter()
                    .fold(Enc::default().u32(v.len() as u32), |e, x| e.u64(*x))
                    .0
            }
            other => panic!("unknown primitive type {other}"),
        };
        assert_eq!(w.as_bytes(), &bytes[..], "{p:?}");
        assert_eq!(spec, bytes, "{p:?}");
        assert_eq!(r.finish(), Ok(()), "{p:?}");
    }
    // Strictness of the primitives.
    assert_eq!(Reader::new(&[2]).bool(), Err(DecodeError::InvalidBool(2)));
    assert!(matches!(
        Reader::new(&[2]).option::<u64>("option"),
        Err(DecodeError::InvalidTag { tag: 2, .. })
    ));
    assert!(matches!(
        Reader::new(&[17, 0, 0, 0]).bytes("bytes", 16),
        Err(DecodeError::TooLong {
            len: 17,
            max: 16,
            ..
        })
    ));
}

#[test]
fn domains_and_keys() {
    let d = doc();
    assert_eq!(d.domains.len(), CONTEXTS.len());
    assert_eq!(Domain::ALL.len(), CONTEXTS.len());
    for ((v, (name, context)), dom) in d.domains.iter().zip(CONTEXTS).zip(Domain::ALL) {
        assert_eq!(v.name, name);
        assert_eq!(format!("{dom:?}"), name);
        assert_eq!(v.context, context);
        assert_eq!(dom.context(), context);
        let key = blake3::derive_key(context, b"");
        assert_eq!(v.key, hex::encode(key), "{name}");
        assert_eq!(dom.key(), &key, "{name}");
    }
}

#[test]
fn hashes() {
    let d = doc();
    assert_eq!(d.hashes.len(), 3 * CONTEXTS.len() + 1);
    for (name, _) in CONTEXTS {
        assert!(d.hashes.iter().filter(|h| h.domain == name).count() >= 3);
    }
    for h in &d.hashes {
        let input = unhex(&h.input);
        if let Some(text) = &h.input_utf8 {
            assert_eq!(text.as_bytes(), &input[..]);
        }
        assert_eq!(h.hash, kh(ctx(&h.domain), &input).to_hex(), "{h:?}");
        assert_eq!(h.hash, hash(domain(&h.domain), &input).to_hex(), "{h:?}");
    }
}

#[test]
fn testkit_keys() {
    let d = doc();
    assert!(!d.keys.is_empty());
    for k in &d.keys {
        let mut seed = blake3::Hasher::new();
        seed.update(b"headway testkit key");
        seed.update(&k.index.to_le_bytes());
        let seed = *seed.finalize().as_bytes();
        assert_eq!(k.seed, hex::encode(seed));
        assert_eq!(testkit::key(k.index).seed(), seed);
        let dalek = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
        assert_eq!(k.public_key, hex::encode(dalek.as_bytes()));
        assert_eq!(k.public_key, testkit::key(k.index).public_key().to_hex());
        assert!(PublicKey::from_hex(&k.public_key).is_ok());
    }
}

#[test]
fn chain_id() {
    let d = doc();
    let v = &d.chain_id;
    let id = ChainId::new(v.value.clone()).expect("valid");
    assert_eq!(v.encoding, hex::encode(spec_chain_id(&v.value)));
    assert_eq!(
        decode_exact::<ChainId>(&v.encoding, |c| spec_chain_id(c.as_str())),
        id
    );
    assert!(!v.rejected.is_empty());
    for bad in &v.rejected {
        let err = ChainId::new(bad.value.clone()).expect_err("rejected");
        assert_eq!(variant(&err), bad.error, "{bad:?}");
        // The alphabet and length rule of the specification.
        let valid_by_spec = (1..=64).contains(&bad.value.len())
            && bad
                .value
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.'));
        assert!(!valid_by_spec, "{bad:?}");
    }
}

#[test]
fn audit_event() {
    let d = doc();
    let v = &d.audit_event;
    let key = testkit::key(v.source_key_index);
    assert_eq!(v.event.source, key.public_key());
    assert_eq!(v.event.validate(), Ok(()));
    // The outcome tags, applied to the event's outcome byte.
    assert_eq!(v.outcome_tags.len(), 4);
    for (name, tag) in &v.outcome_tags {
        let outcome: Outcome = serde_json::from_value(Value::String(name.clone())).expect("name");
        assert_eq!(spec_outcome_tag(outcome), *tag);
        let e = AuditEvent {
            outcome,
            ..v.event.clone()
        };
        let at = 12 + e.kind.len() + e.actor.len() + e.resource.len();
        assert_eq!(e.encode()[at], *tag, "{name}");
    }
    // Encoding, signing digest, signature, signed event, id.
    let encoding = unhex(&v.encoding);
    assert_eq!(spec_event(&v.event), encoding);
    assert_eq!(v.event.encode(), encoding);
    assert_eq!(AuditEvent::decode(&encoding), Ok(v.event.clone()));
    let digest = kh(ctx("EventSignature"), &encoding);
    assert_eq!(v.signing_digest, digest.to_hex());
    assert_eq!(v.event.signing_digest(), digest);
    let sig = Signature(dalek_sign(&key.seed(), digest.as_bytes()));
    assert_eq!(v.signature, sig.to_hex());
    let signed = v.event.clone().sign(&key);
    assert_eq!(signed.signature, sig);
    assert_eq!(
        ed25519::verify(&v.event.source, digest.as_bytes(), &sig),
        Ok(())
    );
    assert!(dalek_verify_strict(
        &v.event.source,
        digest.as_bytes(),
        &sig
    ));
    let signed_encoding = [encoding.clone(), sig.0.to_vec()].concat();
    assert_eq!(v.signed_event_encoding, hex::encode(&signed_encoding));
    assert_eq!(
        decode_exact::<SignedEvent>(&v.signed_event_encoding, spec_signed_event),
        signed
    );
    assert_eq!(signed.validate(), Ok(()));
    let id = kh(ctx("Event"), &signed_encoding);
    assert_eq!(v.event_id, id.to_hex());
    assert_eq!(signed.id(), id);
}

#[test]
fn validator_set() {
    let d = doc();
    let v = &d.validator_set;
    let members: Vec<Validator> = v
        .members
        .iter()
        .map(|m| {
            let key = testkit::key(m.key_index).public_key();
            assert_eq!(m.key, key.to_hex());
            Validator {
                key,
                power: m.power,
            }
        })
        .collect();
    // Canonical order: strictly increasing key bytes.
    let mut sorted = members.clone();
    sorted.sort_by(|a, b| a.key.as_bytes().cmp(b.key.as_bytes()));
    assert_ne!(sorted, members, "the vector exercises sorting");
    assert_eq!(v.canonical.validators(), &sorted[..]);
    let set = ValidatorSet::new(members.clone()).expect("valid");
    assert_eq!(set, v.canonical);
    assert!(ValidatorSet::from_sorted(members).is_err());
    assert_eq!(v.total_power, sorted.iter().map(|m| m.power).sum::<u64>());
    assert_eq!(set.total_power(), v.total_power);
    let encoding = spec_set(&sorted);
    assert_eq!(v.encoding, hex::encode(&encoding));
    assert_eq!(
        decode_exact::<ValidatorSet>(&v.encoding, |s| spec_set(s.validators())),
        set
    );
    let h = kh(ctx("ValidatorSet"), &encoding);
    assert_eq!(v.hash, h.to_hex());
    assert_eq!(set.hash(), h);
    // Strictly more than two thirds, in exact integer arithmetic.
    let (low, high) = (v.largest_insufficient_power, v.smallest_supermajority_power);
    assert_eq!(high, low + 1);
    assert!(3 * low <= 2 * v.total_power && 3 * high > 2 * v.total_power);
    assert!(!set.is_supermajority(low));
    assert!(set.is_supermajority(high));
}

#[test]
fn chain_of_blocks_with_a_hand_over() {
    let d = doc();
    let c = chain(&d);
    assert_eq!(c.headers.len(), 6);
    assert!(c.headers.iter().any(BlockHeader::hands_over));
    assert_eq!(
        c.headers.iter().map(|h| h.event_count).collect::<Vec<_>>(),
        vec![0, 3, 0, 5, 1, 0]
    );
    assert_eq!(c.states.len(), c.headers.len());
}

#[test]
fn block_header() {
    let d = doc();
    let c = chain(&d);
    let v = &d.block_header;
    let encoding = unhex(&v.encoding);
    assert_eq!(spec_header(&v.header), encoding);
    assert_eq!(v.header.encode(), encoding);
    assert_eq!(
        decode_exact::<BlockHeader>(&v.encoding, spec_header),
        v.header
    );
    let h = kh(ctx("BlockHeader"), &encoding);
    assert_eq!(v.block_hash, h.to_hex());
    assert_eq!(v.header.hash(), h);
    assert_eq!(c.headers[v.header.height as usize], v.header);
}

#[test]
fn votes() {
    let d = doc();
    let c = chain(&d);
    assert_eq!(d.votes.len(), 3);
    for v in &d.votes {
        let tag = match v.kind {
            VoteKind::Prevote => 1,
            VoteKind::Precommit => 2,
        };
        assert_eq!(v.kind_tag, tag);
        let preimage = spec_vote_preimage(tag, &v.chain_id, v.height, v.round, &v.block_hash);
        assert_eq!(v.preimage, hex::encode(&preimage));
        let digest = kh(ctx("Vote"), &preimage);
        assert_eq!(v.digest, digest.to_hex());
        let chain_id = ChainId::new(v.chain_id.clone()).expect("valid");
        let vote = Vote {
            kind: v.kind,
            chain_id: &chain_id,
            height: v.height,
            round: v.round,
            block_hash: v.block_hash,
        };
        assert_eq!(vote.digest(), digest);
        assert_eq!(c.headers[v.height as usize].hash(), v.block_hash);
    }
    // The first is the precommit that block 1's commit signs.
    let th = &c.trusted[1];
    assert_eq!(
        d.votes[0].digest,
        th.commit.vote(&th.header.chain_id).digest().to_hex()
    );
    assert_eq!(d.votes[0].kind, VoteKind::Precommit);
}

#[test]
fn commit() {
    let d = doc();
    let c = chain(&d);
    let v = &d.commit;
    let commit: Commit = decode_exact(&v.encoding, spec_commit);
    assert_eq!(commit, v.commit);
    let th = &c.trusted[commit.height as usize];
    assert_eq!(th.commit, commit);
    assert_eq!(v.signing_set.hash(), th.header.validators_hash);
    let digest = commit.vote(&th.header.chain_id).digest();
    assert_eq!(
        digest,
        kh(
            ctx("Vote"),
            &spec_vote_preimage(
                2,
                th.header.chain_id.as_str(),
                commit.height,
                commit.round,
                &commit.block_hash
            )
        )
    );
    assert_eq!(v.signers.len(), commit.signatures.len());
    let mut previous = None;
    for (s, signer) in commit.signatures.iter().zip(&v.signers) {
        assert!(
            previous < Some(s.validator_index),
            "strictly increasing indices"
        );
        previous = Some(s.validator_index);
        assert_eq!(signer.validator_index, s.validator_index);
        let key = testkit::key(signer.key_index);
        let member = &v.signing_set.validators()[s.validator_index as usize];
        assert_eq!(member.key, key.public_key());
        assert_eq!(signer.key, member.key.to_hex());
        assert_eq!(s.signature.0, dalek_sign(&key.seed(), digest.as_bytes()));
        assert_eq!(
            ed25519::verify(&member.key, digest.as_bytes(), &s.signature),
            Ok(())
        );
    }
}

#[test]
fn trusted_header_at_a_hand_over() {
    let d = doc();
    let c = chain(&d);
    let v = &d.trusted_header;
    let th: TrustedHeader = decode_exact(&v.encoding, spec_trusted_header);
    assert_eq!(th, c.trusted[v.height as usize]);
    assert_eq!(th.header.height, v.height);
    assert!(v.hands_over);
    assert!(th.header.hands_over());
    assert_ne!(th.header.validators_hash, th.header.next_validators_hash);
    assert_eq!(v.header_encoding, hex::encode(spec_header(&th.header)));
    assert_eq!(v.commit_encoding, hex::encode(spec_commit(&th.commit)));
    assert_eq!(
        v.next_validators_encoding,
        hex::encode(spec_set(v.next_validators.validators()))
    );
    let expected = [
        unhex(&v.header_encoding),
        unhex(&v.commit_encoding),
        vec![1],
        unhex(&v.next_validators_encoding),
    ]
    .concat();
    assert_eq!(unhex(&v.encoding), expected);
    let h = kh(ctx("ValidatorSet"), &unhex(&v.next_validators_encoding));
    assert_eq!(v.next_validators_hash, h.to_hex());
    assert_eq!(th.header.next_validators_hash, h);
    assert_eq!(th.next_validators.as_ref(), Some(&v.next_validators));
    // The verified state after it carries the new set.
    assert_eq!(
        *c.states[v.height as usize].next_validators,
        v.next_validators
    );
}

#[test]
fn batch_coefficients() {
    let d = doc();
    let v = &d.batch_coefficients;
    assert!(!v.items.is_empty());
    let mut preimage = Vec::new();
    let messages: Vec<Vec<u8>> = v.items.iter().map(|i| unhex(&i.message)).collect();
    for (item, m) in v.items.iter().zip(&messages) {
        preimage.extend_from_slice(item.key.as_bytes());
        preimage.extend_from_slice(&item.signature.0);
        preimage.extend_from_slice(&(m.len() as u64).to_le_bytes());
        preimage.extend_from_slice(m);
    }
    assert_eq!(v.seed_preimage, hex::encode(&preimage));
    let mut xof = vec![0u8; 16 * v.items.len()];
    blake3::Hasher::new_keyed(&blake3::derive_key(ctx("BatchCoefficients"), b""))
        .update(&preimage)
        .finalize_xof()
        .fill(&mut xof);
    assert_eq!(v.xof, hex::encode(&xof));
    let z: Vec<String> = xof
        .chunks(16)
        .map(|c| u128::from_le_bytes(c.try_into().expect("16 bytes")).to_string())
        .collect();
    assert_eq!(v.z, z);
    let items: Vec<BatchItem<'_>> = v
        .items
        .iter()
        .zip(&messages)
        .map(|(i, m)| BatchItem {
            key: &i.key,
            message: m,
            signature: &i.signature,
        })
        .collect();
    assert_eq!(ed25519::verify_batch(&items), Ok(()));
    for i in &items {
        assert_eq!(ed25519::verify(i.key, i.message, i.signature), Ok(()));
    }
}

#[test]
fn merkle_trees_and_proofs() {
    let d = doc();
    let v = &d.merkle;
    for (i, id) in v.ids.iter().enumerate() {
        assert_eq!(*id, kh(ctx("Event"), &(i as u64).to_le_bytes()));
    }
    assert_eq!(v.roots.len(), v.ids.len() + 1);
    for (n, r) in v.roots.iter().enumerate() {
        assert_eq!(r.leaf_count as usize, n);
        let ids = &v.ids[..n];
        assert_eq!(r.root, spec_merkle_root(ids).to_hex(), "{n} leaves");
        assert_eq!(r.root, merkle_root(ids).to_hex(), "{n} leaves");
    }
    assert_eq!(v.roots[0].root, Hash::ZERO.to_hex());
    assert!(!v.proofs.is_empty());
    for p in &v.proofs {
        let ids = &v.ids[..p.leaf_count as usize];
        let root = hash_hex(&p.root);
        assert_eq!(p.root, v.roots[p.leaf_count as usize].root);
        let proof: MerkleProof = decode_exact(&p.encoding, spec_merkle_proof);
        assert_eq!(proof.index, p.index);
        assert_eq!(proof.siblings, p.siblings);
        assert_eq!(merkle_proof(ids, p.index), Ok(proof.clone()));
        let id = &ids[p.index as usize];
        assert_eq!(
            spec_merkle_fold(id, p.index, p.leaf_count, &p.siblings),
            Some(root)
        );
        assert_eq!(proof.verify(id, p.leaf_count, &root), Ok(()));
        // One sibling fewer, or another leaf, does not verify.
        let mut short = proof.clone();
        if short.siblings.pop().is_some() {
            assert!(short.verify(id, p.leaf_count, &root).is_err());
        }
        let other = kh(ctx("Event"), b"another id");
        assert!(proof.verify(&other, p.leaf_count, &root).is_err());
    }
}

#[test]
fn mmr_roots_and_proofs() {
    let d = doc();
    let v = &d.mmr;
    for (i, leaf) in v.leaves.iter().enumerate() {
        assert_eq!(*leaf, kh(ctx("BlockHeader"), &(i as u64).to_le_bytes()));
    }
    assert_eq!(v.roots.len(), v.leaves.len() + 1);
    let mut mmr = Mmr::new();
    for (n, r) in v.roots.iter().enumerate() {
        if n > 0 {
            mmr.append(&v.leaves[n - 1]).expect("small");
        }
        let leaves = &v.leaves[..n];
        assert_eq!(r.leaf_count as usize, n);
        assert_eq!(r.peaks, spec_mmr_peaks(leaves), "{n} leaves");
        assert_eq!(mmr.peaks().peaks(), &r.peaks[..], "{n} leaves");
        assert_eq!(r.root, spec_mmr_root(leaves).to_hex(), "{n} leaves");
        assert_eq!(r.root, mmr.root().to_hex(), "{n} leaves");
    }
    // The empty MMR's root is the keyed hash of eight zero bytes, not the zero hash.
    assert_eq!(v.roots[0].root, kh(ctx("MmrRoot"), &[0; 8]).to_hex());

    let pe = &v.peaks_encoding;
    let peaks = &v.roots[pe.leaf_count as usize].peaks;
    let expected = Enc::default().u64(pe.leaf_count).hashes(peaks).0;
    assert_eq!(pe.encoding, hex::encode(&expected));
    let decoded: MmrPeaks = decode_exact(&pe.encoding, |p: &MmrPeaks| {
        Enc::default().u64(p.leaf_count()).hashes(p.peaks()).0
    });
    assert_eq!(decoded.leaf_count(), pe.leaf_count);
    assert_eq!(decoded.peaks(), &peaks[..]);
    assert_eq!(
        decoded.root().to_hex(),
        v.roots[pe.leaf_count as usize].root
    );

    assert!(!v.proofs.is_empty());
    for p in &v.proofs {
        let root = hash_hex(&p.root);
        assert_eq!(p.root, v.roots[p.leaf_count as usize].root);
        let proof: MmrProof = decode_exact(&p.encoding, spec_mmr_proof);
        assert_eq!(
            (proof.leaf_index, proof.leaf_count),
            (p.leaf_index, p.leaf_count)
        );
        assert_eq!(proof.siblings, p.siblings);
        assert_eq!(proof.peaks, p.peaks);
        // Built from the full 9-leaf MMR, also for an earlier size (a historical proof).
        assert_eq!(mmr.proof_at(p.leaf_index, p.leaf_count), Ok(proof.clone()));
        let leaf = &v.leaves[p.leaf_index as usize];
        assert_eq!(
            spec_mmr_fold(leaf, p.leaf_index, p.leaf_count, &p.siblings, &p.peaks),
            Some(root)
        );
        assert_eq!(proof.verify(leaf, &root, p.leaf_count), Ok(()));
        assert!(proof.verify(leaf, &root, p.leaf_count + 1).is_err());
        let other = kh(ctx("BlockHeader"), b"another block");
        assert!(proof.verify(&other, &root, p.leaf_count).is_err());
    }
}

#[test]
fn event_proofs() {
    let d = doc();
    let c = chain(&d);
    assert!(d.event_proofs.iter().any(|p| p.mmr.is_none()));
    assert!(d.event_proofs.iter().any(|p| p.mmr.is_some()));
    // The chain MMR over every block hash, for rebuilding the proofs.
    let mut mmr = Mmr::new();
    for h in &c.headers {
        mmr.append(&h.hash()).expect("small");
    }
    for p in &d.event_proofs {
        let block = &c.blocks[p.block_height as usize];
        let trusted = &c.headers[p.trusted_height as usize];
        assert_eq!(p.trusted_block_hash, trusted.hash().to_hex());
        let proof: EventProof = decode_exact(&p.encoding, spec_event_proof);
        assert_eq!(proof.event, block.events[p.event_index as usize]);
        assert_eq!(proof.header, block.header);
        assert_eq!(proof.merkle.index, p.event_index);
        assert_eq!(proof.merkle.siblings, p.merkle_siblings);
        // Rebuilt from its parts.
        let ids: Vec<Hash> = block.events.iter().map(SignedEvent::id).collect();
        let rebuilt = EventProof {
            event: block.events[p.event_index as usize].clone(),
            header: block.header.clone(),
            merkle: merkle_proof(&ids, p.event_index).expect("in range"),
            mmr: (p.block_height != p.trusted_height).then(|| {
                mmr.proof_at(p.block_height, p.trusted_height)
                    .expect("stored")
            }),
        };
        assert_eq!(rebuilt, proof);
        // The steps of the specification, by hand.
        let event_id = kh(ctx("Event"), &spec_signed_event(&proof.event));
        assert_eq!(
            spec_merkle_fold(
                &event_id,
                p.event_index,
                block.header.event_count,
                &p.merkle_siblings
            ),
            Some(block.header.events_root)
        );
        let block_hash = kh(ctx("BlockHeader"), &spec_header(&block.header));
        match (&p.mmr, &proof.mmr) {
            (None, None) => {
                assert_eq!(p.block_height, p.trusted_height);
                assert_eq!(block_hash, trusted.hash());
            }
            (Some(m), Some(pm)) => {
                assert!(p.block_height < p.trusted_height);
                assert_eq!(
                    (m.leaf_index, m.leaf_count),
                    (p.block_height, trusted.mmr_leaf_count)
                );
                assert_eq!((pm.leaf_index, pm.leaf_count), (m.leaf_index, m.leaf_count));
                assert_eq!((&pm.siblings, &pm.peaks), (&m.siblings, &m.peaks));
                assert_eq!(
                    spec_mmr_fold(
                        &block_hash,
                        m.leaf_index,
                        m.leaf_count,
                        &m.siblings,
                        &m.peaks
                    ),
                    Some(trusted.mmr_root)
                );
            }
            _ => panic!("the mmr field does not match the encoding"),
        }
        // headway's verification.
        let verified = proof.verify(trusted).expect("verifies");
        let verified_json = serde_json::to_value(&verified).expect("serializes");
        assert_eq!(
            serde_json::from_value::<VerifiedV>(verified_json).expect("same fields"),
            p.verified
        );
        assert_eq!(
            p.verified,
            VerifiedV {
                event_id,
                height: p.block_height,
                block_hash,
                index: p.event_index,
            }
        );
        // Against another header it fails.
        let other = &c.headers[(p.trusted_height as usize + 1) % c.headers.len()];
        assert!(proof.verify(other).is_err());
    }
}

#[test]
fn checkpoint_text_and_json() {
    let d = doc();
    let c = chain(&d);
    let v = &d.checkpoint;
    let header = &c.headers[v.height as usize];
    let next = &c.states[v.height as usize].next_validators;
    assert_eq!(
        v.body,
        format!(
            "headway1:{}:{}:{}:{}",
            header.chain_id,
            header.height,
            header.hash(),
            hex::encode(spec_set(next.validators()))
        )
    );
    assert_eq!(
        v.checksum,
        hex::encode(&blake3::hash(v.body.as_bytes()).as_bytes()[..4])
    );
    assert_eq!(v.text, format!("{}:{}", v.body, v.checksum));
    let cp = Checkpoint::from_text(&v.text).expect("parses");
    assert_eq!(cp.chain_id, header.chain_id);
    assert_eq!(cp.height, header.height);
    assert_eq!(cp.block_hash, header.hash());
    assert_eq!(&cp.validators, &**next);
    assert_eq!(cp.to_text(), v.text);
    assert_eq!(Checkpoint::from_json(&v.json), Ok(cp.clone()));
    assert_eq!(cp.to_json(), v.json);
    assert_eq!(Checkpoint::parse(&v.json), Ok(cp.clone()));
    assert_eq!(Checkpoint::parse(&v.text), Ok(cp.clone()));
    let json: Value = serde_json::from_str(&v.json).expect("JSON");
    let keys: Vec<&String> = json.as_object().expect("object").keys().collect();
    assert_eq!(keys.len(), 4);
    // It is the checkpointed block, and the set it carries signs the block after it.
    assert_eq!(cp.check_header(header), Ok(()));
    let state = TrustedState::from_checkpoint(&cp, header.clone()).expect("trusted");
    let after = &c.trusted[v.height as usize + 1];
    assert!(Verifier::new().verify(&state, after, c.now_ms).is_ok());
    // One altered character fails the checksum.
    let mut altered = v.text.clone().into_bytes();
    let at = "headway1:".len();
    altered[at] = if altered[at] == b'a' { b'b' } else { b'a' };
    let altered = String::from_utf8(altered).expect("ASCII");
    assert!(Checkpoint::from_text(&altered).is_err());
}

#[test]
fn verification_cases() {
    let d = doc();
    let c = chain(&d);
    assert!(d.verification_cases.iter().any(|v| v.expected == "accept"));
    assert!(d.verification_cases.iter().any(|v| v.expected != "accept"));
    for v in &d.verification_cases {
        let candidate: TrustedHeader = decode_exact(&v.candidate, spec_trusted_header);
        let state = &c.states[v.trusted_height as usize];
        let name = |r: Result<TrustedState, VerifyError>| match r {
            Ok(_) => "accept".to_string(),
            Err(e) => variant(&e),
        };
        let batch = name(Verifier::new().verify(state, &candidate, c.now_ms));
        let single = name(
            Verifier::new()
                .with_signature_mode(SignatureMode::Single)
                .verify(state, &candidate, c.now_ms),
        );
        assert_eq!(batch, v.expected, "{}", v.name);
        assert_eq!(single, v.expected, "{} (single mode)", v.name);
    }
}

#[test]
fn rejected_encodings() {
    let d = doc();
    assert!(d.rejected_encodings.len() >= 10);
    for v in &d.rejected_encodings {
        let bytes = unhex(&v.encoding);
        let err = match v.ty.as_str() {
            "ChainId" => ChainId::decode(&bytes).err(),
            "AuditEvent" => AuditEvent::decode(&bytes).err(),
            "SignedEvent" => SignedEvent::decode(&bytes).err(),
            "ValidatorSet" => ValidatorSet::decode(&bytes).err(),
            "BlockHeader" => BlockHeader::decode(&bytes).err(),
            "TrustedHeader" => TrustedHeader::decode(&bytes).err(),
            "Commit" => Commit::decode(&bytes).err(),
            "Block" => Block::decode(&bytes).err(),
            "MerkleProof" => MerkleProof::decode(&bytes).err(),
            "MmrPeaks" => MmrPeaks::decode(&bytes).err(),
            "MmrProof" => MmrProof::decode(&bytes).err(),
            "EventProof" => EventProof::decode(&bytes).err(),
            other => panic!("unknown type {other}"),
        };
        let err = err.unwrap_or_else(|| panic!("{} must not decode: {}", v.ty, v.why));
        assert_eq!(variant(&err), v.error, "{}: {} ({err})", v.ty, v.why);
        assert!(!v.why.is_empty());
    }
}
