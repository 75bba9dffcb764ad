//! End-to-end event proof verification (criterion reports the median: the p50).
//!
//! The proof is for an event in a block of 1,000 events, checked against a header 1,000
//! blocks later. Verification = the event's own signature + Merkle path + block hash + MMR
//! path; the raw ed25519 verify is measured alongside as the dominant fixed cost.

use criterion::{criterion_group, criterion_main, Criterion};
use headway::chain::{Encode, SignedEvent};
use headway::crypto::ed25519 as hw;
use headway::proof::EventProof;
use headway::testkit::{self, ChainBuilder};
use std::time::Duration;

fn event_proof(c: &mut Criterion) {
    let source = testkit::key(9);
    let mut chain = ChainBuilder::new("bench-chain", 4);
    chain.headers(10);
    let events: Vec<SignedEvent> = (0..1000)
        .map(|n| testkit::event(&source, n, 1_700_000_000_000 + n))
        .collect();
    let (block, _) = chain.next_block(events);
    let headers = chain.headers(1000);
    let trusted = &headers.last().unwrap().header;
    let proof = EventProof::build(&block, 617, chain.mmr(), trusted.height).unwrap();
    assert!(proof.verify(trusted).is_ok());
    eprintln!("event proof: {} bytes encoded", proof.encode().len());

    let mut g = c.benchmark_group("event_proof");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    g.bench_function("verify", |b| b.iter(|| proof.verify(trusted).unwrap()));
    let digest = proof.event.event.signing_digest();
    g.bench_function("ed25519_verify_alone", |b| {
        b.iter(|| {
            hw::verify(
                &proof.event.event.source,
                digest.as_bytes(),
                &proof.event.signature,
            )
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, event_proof);
criterion_main!(benches);
