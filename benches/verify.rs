//! Header verification against the raw signature cost, measured in the same run.
//!
//! The bound for one header with N equal-power validators is `needed(N) × t_batch(needed)`,
//! where `needed(N)` is the fewest signatures holding > 2/3 of the power and `t_batch(k)` is
//! ed25519-dalek's own `verify_batch` time per signature for a batch of k. For a range of 64
//! headers the bound uses a dalek batch of `64 × needed(N)`. `scripts/bench-report.py` turns
//! criterion's estimates into headers/s and ratios for BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use headway::chain::TrustedHeader;
use headway::crypto::ed25519 as hw;
use headway::testkit::ChainBuilder;
use headway::verify::{SignatureMode, TrustedState, Verifier};
use std::time::Duration;

const NOW: u64 = u64::MAX / 2;
const RANGE: usize = 64;
const SETS: [usize; 3] = [4, 21, 100];

fn needed(n: usize) -> usize {
    // Equal power: the fewest k with 3k > 2n.
    2 * n / 3 + 1
}

fn chain(n: usize, len: usize) -> (TrustedState, Vec<TrustedHeader>) {
    let mut chain = ChainBuilder::new("bench-chain", n);
    let (genesis, _) = chain.next_block(Vec::new());
    let state =
        TrustedState::from_checkpoint(&chain.checkpoint().unwrap(), genesis.header).unwrap();
    (state, chain.headers(len))
}

struct DalekBatch {
    messages: Vec<[u8; 32]>,
    signatures: Vec<Signature>,
    keys: Vec<VerifyingKey>,
}

fn dalek_batch(k: usize) -> DalekBatch {
    let mut b = DalekBatch {
        messages: Vec::new(),
        signatures: Vec::new(),
        keys: Vec::new(),
    };
    for i in 0..k {
        let sk = SigningKey::from_bytes(&[(i % 251) as u8 + 1; 32]);
        let msg = *blake3::hash(&(i as u64 / 67).to_le_bytes()).as_bytes();
        b.signatures.push(sk.sign(&msg));
        b.keys.push(sk.verifying_key());
        b.messages.push(msg);
    }
    b
}

fn raw_signatures(c: &mut Criterion) {
    let mut g = c.benchmark_group("ed25519");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));

    let sk = SigningKey::from_bytes(&[1; 32]);
    let msg = [7u8; 32];
    let sig = sk.sign(&msg);
    let vk = sk.verifying_key();
    g.throughput(Throughput::Elements(1));
    g.bench_function("dalek_verify", |b| {
        b.iter(|| vk.verify_strict(&msg, &sig).unwrap())
    });

    let hk = hw::SigningKey::from_seed(&[1; 32]);
    let hpk = hk.public_key();
    let hsig = hk.sign(&msg);
    g.bench_function("headway_verify", |b| {
        b.iter(|| hw::verify(&hpk, &msg, &hsig).unwrap())
    });

    let mut sizes: Vec<usize> = SETS.iter().map(|&n| needed(n)).collect();
    sizes.extend(SETS.iter().map(|&n| RANGE * needed(n)));
    for k in sizes {
        let batch = dalek_batch(k);
        let msgs: Vec<&[u8]> = batch.messages.iter().map(|m| &m[..]).collect();
        g.throughput(Throughput::Elements(k as u64));
        g.bench_with_input(BenchmarkId::new("dalek_batch", k), &k, |b, _| {
            b.iter(|| ed25519_dalek::verify_batch(&msgs, &batch.signatures, &batch.keys).unwrap())
        });

        let keys: Vec<hw::PublicKey> = batch
            .keys
            .iter()
            .map(|k| hw::PublicKey::from_bytes(k.as_bytes()).unwrap())
            .collect();
        let sigs: Vec<hw::Signature> = batch
            .signatures
            .iter()
            .map(|s| hw::Signature(s.to_bytes()))
            .collect();
        let items: Vec<hw::BatchItem<'_>> = (0..k)
            .map(|i| hw::BatchItem {
                key: &keys[i],
                message: &batch.messages[i],
                signature: &sigs[i],
            })
            .collect();
        g.bench_with_input(BenchmarkId::new("headway_batch", k), &k, |b, _| {
            b.iter(|| hw::verify_batch(&items).unwrap())
        });
    }
    g.finish();
}

fn headers(c: &mut Criterion) {
    let mut g = c.benchmark_group("header");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(1));
    for n in SETS {
        let (state, headers) = chain(n, 1);
        for (name, mode) in [
            ("batch", SignatureMode::Batch),
            ("single", SignatureMode::Single),
        ] {
            let verifier = Verifier::new().with_signature_mode(mode);
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| verifier.verify(&state, &headers[0], NOW).unwrap())
            });
        }
    }
    g.finish();

    let mut g = c.benchmark_group("range64");
    g.measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20);
    g.throughput(Throughput::Elements(RANGE as u64));
    for n in SETS {
        let (state, headers) = chain(n, RANGE);
        let verifier = Verifier::new();
        g.bench_with_input(BenchmarkId::new("batch", n), &n, |b, _| {
            b.iter(|| verifier.verify_range(&state, &headers, NOW).unwrap())
        });
    }
    g.finish();
}

/// Decoding a trusted header (100 validators, every commit signature present) from its
/// canonical bytes: what a store read or a network response costs per header before any
/// verification.
fn decode(c: &mut Criterion) {
    use headway::chain::{Decode, Encode};
    let (_, headers) = chain(100, 1);
    let bytes = headers[0].encode();
    let mut g = c.benchmark_group("decode");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(1));
    g.bench_function("trusted_header/100", |b| {
        b.iter(|| TrustedHeader::decode(&bytes).unwrap())
    });
    g.finish();
}

criterion_group!(benches, raw_signatures, headers, decode);
criterion_main!(benches);
