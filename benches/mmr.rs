//! Chain MMR at 1,000,000 leaves: append, proof generation and verification, and proof sizes.

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
criterion::criterion_group!(benches, native::bench_mmr);
#[cfg(not(target_arch = "wasm32"))]
criterion::criterion_main!(benches);

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::hint::black_box;
    use std::time::{Duration, Instant};

    use criterion::Criterion;
    use headway::chain::{hash, Domain, Hash};
    use headway::proof::mmr::{proof_len, Mmr, MmrPeaks, MmrProof};

    const LEAVES: u64 = 1_000_000;

    fn block(i: u64) -> Hash {
        hash(Domain::BlockHeader, &i.to_le_bytes())
    }

    /// xorshift64: deterministic leaf picks without a rand dependency.
    fn random_leaves(count: usize, below: u64) -> Vec<u64> {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        (0..count)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % below
            })
            .collect()
    }

    /// The largest encoded proof over all leaf positions at `leaf_count`: within a mountain every
    /// leaf has the same size, so the first leaf of each mountain suffices.
    fn worst_proof_len(leaf_count: u64) -> usize {
        let mut offset = 0u64;
        let mut worst = 0;
        for b in (0..64).rev().filter(|b| (leaf_count >> b) & 1 == 1) {
            worst = worst.max(proof_len(offset, leaf_count).expect("leaf in range"));
            offset += 1 << b;
        }
        worst
    }

    fn report_proof_sizes(mmr: &Mmr) {
        let mut big = mmr.clone();
        for i in LEAVES..1 << 20 {
            big.append(&block(i)).expect("append");
        }
        let proof = big.proof(12_345).expect("proof");
        assert_eq!(
            proof.encoded_len(),
            proof_len(12_345, 1 << 20).expect("len")
        );
        eprintln!(
            "mmr proof size at 2^20 leaves: {} bytes (built; worst over positions {})",
            proof.encoded_len(),
            worst_proof_len(1 << 20),
        );
        eprintln!(
            "mmr proof size at 2^32 leaves: {} bytes worst over positions (from the shape); \
             at 2^32 - 1 leaves: {} bytes",
            worst_proof_len(1 << 32),
            worst_proof_len((1 << 32) - 1),
        );
    }

    pub fn bench_mmr(c: &mut Criterion) {
        let mut mmr = Mmr::new();
        let mut peaks = MmrPeaks::new();
        for i in 0..LEAVES {
            mmr.append(&block(i)).expect("append");
            peaks.append(&block(i)).expect("append");
        }
        report_proof_sizes(&mmr);

        let mut g = c.benchmark_group("mmr");
        g.sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));

        g.bench_function("append/1M", |b| {
            b.iter_custom(|iters| {
                // A fresh 1M-leaf copy per sample bounds memory. A clone has no spare capacity,
                // so pay the row reallocations with untimed appends first.
                // The leaf's content does not affect the cost: append one fixed hash.
                let leaf = block(LEAVES);
                let mut m = mmr.clone();
                for _ in 0..1024 {
                    m.append(&leaf).expect("append");
                }
                let start = Instant::now();
                for _ in 0..iters {
                    m.append(black_box(&leaf)).expect("append");
                }
                start.elapsed()
            })
        });

        g.bench_function("append_peaks/1M", |b| {
            let mut p = peaks.clone();
            let leaf = block(0);
            b.iter(|| p.append(black_box(&leaf)).expect("append"))
        });

        let picks = random_leaves(4096, LEAVES);
        g.bench_function("prove/1M", |b| {
            let mut next = picks.iter().cycle();
            b.iter(|| {
                let k = *next.next().expect("cycle never ends");
                mmr.proof(black_box(k)).expect("proof")
            })
        });

        let root = mmr.root();
        let proofs: Vec<(Hash, MmrProof)> = picks
            .iter()
            .map(|&k| (block(k), mmr.proof(k).expect("proof")))
            .collect();
        g.bench_function("verify/1M", |b| {
            let mut next = proofs.iter().cycle();
            b.iter(|| {
                let (leaf, proof) = next.next().expect("cycle never ends");
                proof
                    .verify(black_box(leaf), &root, LEAVES)
                    .expect("valid proof")
            })
        });
        g.finish();
    }
}
