//! Header sync through the light-client machine against the raw verifier, in the same run.
//!
//! A chain of 512 headers signed by 100 equal-power validators (67 signatures needed per
//! header) is synced from a genesis checkpoint by a `LightClient` fed by two in-process peers
//! (`machine`), and verified with `Verifier::verify_range` in the same 128-header chunks the
//! machine requests (`verify_range`). Both report headers/s; the ratio machine / verify_range
//! is the share of the signature-bound cost the machine keeps (scheduling, buffering, the fork
//! window, store batches). Responses are prepared outside the timed part: what is timed is the
//! machine, not a network.

use std::collections::VecDeque;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use headway::chain::{Checkpoint, TrustedHeader};
use headway::light::{Action, Input, LightClient, LightOptions};
use headway::protocol::{GetHeaders, HeadersResponse, Request, Response, Status};
use headway::testkit::ChainBuilder;
use headway::verify::{TrustedState, Verifier};

const VALIDATORS: usize = 100;
const HEADERS: usize = 512;
const BATCH: u32 = 128;

struct Fixture {
    checkpoint: Checkpoint,
    genesis: TrustedHeader,
    headers: Vec<TrustedHeader>,
    now_ms: u64,
}

fn fixture() -> Fixture {
    let mut chain = ChainBuilder::new("bench-light", VALIDATORS);
    let (_, genesis) = chain.next_block(Vec::new());
    let checkpoint = chain.checkpoint().unwrap();
    let headers = chain.headers(HEADERS);
    Fixture {
        checkpoint,
        genesis,
        now_ms: chain.last_time_ms() + 1_000,
        headers,
    }
}

/// Every header by height (genesis at 0), each taken out once when served.
type Pool = Vec<Option<TrustedHeader>>;

fn pool(f: &Fixture) -> Pool {
    std::iter::once(&f.genesis)
        .chain(&f.headers)
        .cloned()
        .map(Some)
        .collect()
}

/// Syncs the whole chain through the machine from two peers; returns the verified height.
fn sync(f: &Fixture, mut pool: Pool) -> u64 {
    let options = LightOptions {
        batch_size: BATCH,
        ..LightOptions::default()
    };
    let mut client: LightClient<u8> =
        LightClient::new(f.checkpoint.clone(), options, f.now_ms).expect("valid options");
    let status = Status {
        head_height: HEADERS as u64,
        head_hash: f.headers[HEADERS - 1].header.hash(),
        mmr_root: f.headers[HEADERS - 1].header.mmr_root,
        lowest_height: 0,
        syncing: false,
    };
    for peer in [1, 2] {
        client.feed(Input::PeerConnected {
            peer,
            status: status.clone(),
        });
    }
    let mut inbox = VecDeque::new();
    loop {
        while let Some(action) = client.next_action() {
            match action {
                Action::SendRequest {
                    peer,
                    request_id,
                    request: Request::GetHeaders(GetHeaders { start, count }),
                } => {
                    let headers = (start..start + u64::from(count))
                        .map(|h| pool[h as usize].take().expect("each height served once"))
                        .collect();
                    inbox.push_back(Input::Response {
                        peer,
                        request_id,
                        response: Response::Headers(HeadersResponse::Headers(headers)),
                    });
                }
                Action::StoreHeaders { headers } => {
                    let up_to_height = headers.last().map_or(0, |h| h.height());
                    inbox.push_back(Input::Stored { up_to_height });
                }
                _ => {}
            }
        }
        match inbox.pop_front() {
            Some(input) => client.feed(input),
            None => break,
        }
    }
    client.verified_height().unwrap_or(0)
}

fn verify_chunks(f: &Fixture, verifier: &Verifier) -> u64 {
    let mut state = TrustedState::from_checkpoint(&f.checkpoint, f.genesis.header.clone())
        .expect("checkpoint matches");
    for chunk in f.headers.chunks(BATCH as usize) {
        state = verifier
            .verify_range(&state, chunk, f.now_ms)
            .expect("valid chain");
    }
    state.height()
}

fn light(c: &mut Criterion) {
    let f = fixture();
    assert_eq!(sync(&f, pool(&f)), HEADERS as u64);
    let verifier = Verifier::new().with_checkpoint(f.checkpoint.clone());
    assert_eq!(verify_chunks(&f, &verifier), HEADERS as u64);

    let mut g = c.benchmark_group("light");
    g.sample_size(10);
    g.throughput(Throughput::Elements(HEADERS as u64));
    g.bench_function(format!("machine/{VALIDATORS}"), |b| {
        b.iter_batched(|| pool(&f), |p| sync(&f, p), BatchSize::PerIteration)
    });
    g.bench_function(format!("verify_range/{VALIDATORS}"), |b| {
        b.iter(|| verify_chunks(&f, &verifier))
    });
    g.finish();
}

criterion_group!(benches, light);
criterion_main!(benches);
