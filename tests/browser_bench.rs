//! Browser light-client benchmarks (issue 4), measured in ONE headless-Chromium run against
//! the live native nodes of scripts/browser-fixture.sh (started by scripts/bench-browser.sh,
//! which passes them in `HEADWAY_BROWSER_FIXTURE` at compile time). Clock: `performance.now()`.
//!
//! 1. End to end: a fresh [`Driver`] on a fresh [`IdbStore`] syncs every header from the
//!    checkpoint to the head from the honest node over WebSocket; headers/s = headers
//!    verified / wall time from `Driver::start` to the stored head. Median of `RUNS`.
//! 2. The bound, in the same page: the batch verification (`crypto::ed25519::verify_batch`,
//!    the call the verifier makes) of the quorum prefix of every header's commit, in the same
//!    ranges the client verifies (`LightOptions::batch_size` headers per batch, from the first
//!    height after the checkpoint), and nothing else: no network, decoding, structural checks
//!    or storage. As in benches/verify.rs, batch items are built outside the timed part. The
//!    signatures come from an identical-size chain built here with `testkit::ChainBuilder`
//!    (100 validators, all signing); each header's prefix length is the one the verifier uses
//!    on the fixture chain at that height (read from the synced store's validator sets), so
//!    the bound verifies exactly as many signatures per header, in the same batches.
//! 3. Resume: after a full sync the store is closed; `IdbStore::open` + `Driver::start` until
//!    the client has its verified head (median of `RESUMES`).
//! 4. Bytes per stored header: `IdbStore::bytes()` after the full sync.
//!
//! Where the time goes, for the same headers (all in this page): `Verifier::verify_range` on
//! the built chain (structure + hashing + signatures), decoding the `HeadersResponse`s, and
//! appending the verified headers to a fresh IdbStore in the client's store batches.
//!
//! Results are printed as `BENCH key=value` lines. Not part of `cargo test` (`test = false` in
//! Cargo.toml): scripts/bench-browser.sh runs it explicitly, in release, against a
//! 100-validator fixture.
#![cfg(target_arch = "wasm32")]

mod support;

use headway::chain::{Decode, Encode, Hash, TrustedHeader, ValidatorSet};
use headway::client::indexeddb::IdbStore;
use headway::client::{Driver, HeaderStore};
use headway::crypto::ed25519::{verify_batch, BatchItem};
use headway::light::{LightOptions, StoredHeader, VerifiedHeader};
use headway::net::{keypair_from_seed, NetEvent, Network, NetworkConfig};
use headway::protocol::{GetHeaders, HeadersResponse, Request, Response, Status, Topic};
use headway::testkit::ChainBuilder;
use headway::verify::{TrustedState, Verifier};
use support::browser::{fixture, sync_to_head, LIMIT};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::{console_log, wasm_bindgen_test as test};

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// End-to-end syncs (each on a fresh database), interleaved with bound measurements.
const RUNS: usize = 3;
/// Resumes timed after the last full sync.
const RESUMES: usize = 5;

/// `performance.now()` from the global scope (page or worker), in ms.
fn now() -> f64 {
    let global = js_sys::global();
    let performance = js_sys::Reflect::get(&global, &"performance".into()).expect("performance");
    let f: js_sys::Function = js_sys::Reflect::get(&performance, &"now".into())
        .expect("performance.now")
        .unchecked_into();
    f.call0(&performance)
        .expect("performance.now()")
        .as_f64()
        .expect("a number")
}

fn unique(name: &str) -> String {
    format!("headway-bench-{name}-{}", js_sys::Date::now() as u64)
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn list(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.1}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The verifier's prefix: the fewest signatures, in validator-index order, holding a
/// supermajority of `set` (commits are signed by every validator, sorted by index).
fn needed(set: &ValidatorSet) -> usize {
    let mut power = 0;
    for i in 0..set.len() {
        power += set.get(i).expect("in the set").power;
        if set.is_supermajority(power) {
            return i + 1;
        }
    }
    panic!("no supermajority")
}

/// One end-to-end sync. Times (ms, from just before `Driver::start`).
struct Sync {
    started: f64,
    connected: f64,
    verified: f64,
    stored: f64,
    headers_verified: u64,
    headers_received: u64,
    requests: u64,
    failures: u64,
    store_writes: u64,
}

async fn sync(f: &support::browser::Fixture, name: &str) -> (Sync, Driver<IdbStore>) {
    let store = IdbStore::open(name).await.expect("IndexedDB opens");
    let t0 = now();
    let mut driver = Driver::start(f.config(&[&f.honest_ws]), store)
        .await
        .expect("the client starts");
    let started = now() - t0;
    driver
        .run_until(|s| s.peers >= 1, LIMIT)
        .await
        .expect("connects");
    let connected = now() - t0;
    let head = f.head_height;
    driver
        .run_until(|s| s.verified_height >= Some(head), LIMIT)
        .await
        .expect("verifies to the head");
    let verified = now() - t0;
    let status = sync_to_head(&mut driver, head).await;
    let stored = now() - t0;
    assert!(status.fork_height.is_none(), "{status:?}");
    (
        Sync {
            started,
            connected,
            verified,
            stored,
            headers_verified: status.stats.headers_verified,
            headers_received: status.stats.headers_received,
            requests: status.stats.header_requests,
            failures: status.stats.request_failures,
            store_writes: status.store_writes,
        },
        driver,
    )
}

/// Network only: a bare [`Network`] (configured as `Driver::start` configures it) fetches the
/// same requests the client sends (the checkpoint's header, then ranges of `batch` headers
/// from the next height, at most `in_flight` at once) and does nothing with them (the codec
/// decodes them). Returns (ms to the handshake, ms from the handshake to the last response,
/// response sizes are not visible here).
async fn fetch_only(
    f: &support::browser::Fixture,
    batch: u64,
    in_flight: usize,
) -> (f64, f64, u64) {
    let cp = f.checkpoint();
    let genesis_hash = Hash::from_hex(&f.genesis_hash).unwrap();
    let status = Status {
        head_height: 0,
        head_hash: genesis_hash,
        mmr_root: Hash::ZERO,
        lowest_height: 0,
        syncing: true,
    };
    let mut config = NetworkConfig::new(
        keypair_from_seed(rand::random()),
        cp.chain_id.clone(),
        genesis_hash,
        status,
    );
    config.bootnodes = vec![f.honest_ws.parse().unwrap()];
    config.topics = Vec::new(); // as Driver::start: light clients run no gossip
    let t0 = now();
    let (mut net, _) = Network::new(config).await.expect("network");
    let peer = loop {
        if let NetEvent::HandshakeDone { peer, .. } = net.next_event().await {
            break peer;
        }
    };
    let connected = now() - t0;
    let t1 = now();
    let mut requests = vec![(cp.height, 1u32)];
    let mut start = cp.height + 1;
    while start <= f.head_height {
        let count = batch.min(f.head_height - start + 1);
        requests.push((start, count as u32));
        start += count;
    }
    let mut next = 0;
    let mut outstanding = 0;
    let mut headers = 0u64;
    // The anchor first, alone (as the client does), then `in_flight` at a time.
    loop {
        let limit = if next <= 1 { 1 } else { in_flight };
        while next < requests.len() && outstanding < limit {
            let (start, count) = requests[next];
            net.send_request(peer, Request::GetHeaders(GetHeaders { start, count }))
                .expect("sent");
            next += 1;
            outstanding += 1;
        }
        if outstanding == 0 {
            break;
        }
        if let NetEvent::Response { result, .. } = net.next_event().await {
            outstanding -= 1;
            match result.expect("answered") {
                Response::Headers(HeadersResponse::Headers(h)) => headers += h.len() as u64,
                other => panic!("unexpected response {other:?}"),
            }
        }
    }
    (connected, now() - t1, headers)
}

/// Time (ms) for a bare browser `WebSocket` to the node's `/ws` address to open (then closed):
/// the transport's share of the connect time, before noise, yamux and the Hello handshake.
async fn websocket_open_ms(addr: &str) -> f64 {
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsValue;
    let mut parts = addr.split('/');
    let (ip, port) = (parts.nth(2).unwrap(), parts.nth(1).unwrap());
    let url = format!("ws://{ip}:{port}");
    let ctor: js_sys::Function = js_sys::Reflect::get(&js_sys::global(), &"WebSocket".into())
        .unwrap()
        .unchecked_into();
    let t0 = now();
    let ws = js_sys::Reflect::construct(&ctor, &js_sys::Array::of1(&url.into())).unwrap();
    let opened = js_sys::Promise::new(&mut |resolve, reject| {
        let ok = Closure::once_into_js(move || resolve.call0(&JsValue::NULL));
        let err = Closure::once_into_js(move || reject.call0(&JsValue::NULL));
        js_sys::Reflect::set(&ws, &"onopen".into(), &ok).unwrap();
        js_sys::Reflect::set(&ws, &"onerror".into(), &err).unwrap();
    });
    wasm_bindgen_futures::JsFuture::from(opened)
        .await
        .expect("the WebSocket opens");
    let ms = now() - t0;
    let close: js_sys::Function = js_sys::Reflect::get(&ws, &"close".into())
        .unwrap()
        .unchecked_into();
    close.call0(&ws).unwrap();
    ms
}

/// The bound's chain: heights 0..=head with `validators` signing every commit; the checkpoint
/// is at `checkpoint_height` as in the fixture.
struct Built {
    anchor: TrustedHeader,
    checkpoint: headway::chain::Checkpoint,
    /// Heights checkpoint + 1 ..= head.
    headers: Vec<TrustedHeader>,
    now_ms: u64,
}

fn build(validators: usize, checkpoint_height: u64, head: u64) -> Built {
    let mut chain = ChainBuilder::new("bench-browser", validators);
    let mut anchor = None;
    for _ in 0..=checkpoint_height {
        anchor = Some(chain.next_block(Vec::new()).1);
    }
    let checkpoint = chain.checkpoint().expect("checkpoint");
    let headers = chain.headers((head - checkpoint_height) as usize);
    Built {
        anchor: anchor.expect("built"),
        checkpoint,
        headers,
        now_ms: chain.last_time_ms() + 1_000,
    }
}

/// Per header, its vote digest (what each signature signs).
fn digests(b: &Built) -> Vec<Hash> {
    b.headers
        .iter()
        .map(|h| h.commit.vote(&h.header.chain_id).digest())
        .collect()
}

/// Batches of items: per range of `batch` headers, the first `prefix[i]` signatures of each.
fn batches<'a>(
    b: &'a Built,
    digests: &'a [Hash],
    prefix: &[usize],
    batch: usize,
) -> Vec<Vec<BatchItem<'a>>> {
    let set = &b.checkpoint.validators;
    b.headers
        .chunks(batch)
        .enumerate()
        .map(|(c, chunk)| {
            let mut items = Vec::new();
            for (j, h) in chunk.iter().enumerate() {
                let i = c * batch + j;
                for sig in h.commit.signatures.iter().take(prefix[i]) {
                    items.push(BatchItem {
                        key: &set.get(sig.validator_index as usize).expect("in set").key,
                        message: digests[i].as_bytes(),
                        signature: &sig.signature,
                    });
                }
            }
            items
        })
        .collect()
}

/// Time (ms) to batch-verify every batch once.
fn time_batches(batches: &[Vec<BatchItem<'_>>]) -> f64 {
    let t0 = now();
    for items in batches {
        verify_batch(items).expect("valid batch");
    }
    now() - t0
}

#[test]
async fn browser_light_client_bench() {
    assert!(
        option_env!("HEADWAY_BROWSER_BENCH").is_some(),
        "run this through scripts/bench-browser.sh (release build, 100-validator fixture)"
    );
    let f = fixture();
    let head = f.head_height;
    let checkpoint_height = f.checkpoint().height;
    let validators = f.checkpoint().validators.len();
    let batch = LightOptions::default().batch_size as usize;
    let store_batch = LightOptions::default().store_batch_size;
    let ua = js_sys::Reflect::get(&js_sys::global(), &"navigator".into())
        .and_then(|n| js_sys::Reflect::get(&n, &"userAgent".into()))
        .ok()
        .and_then(|u| u.as_string())
        .unwrap_or_default();
    console_log!("BENCH user_agent={ua}");
    console_log!(
        "BENCH fixture validators={validators} checkpoint={checkpoint_height} head={head} \
         hand_overs={} batch_size={batch} store_batch_size={store_batch}",
        f.hand_overs.len()
    );

    // --- End to end #1, then read the fixture chain's signer sets from the store.
    let mut syncs = Vec::new();
    let name = unique("e2e-0");
    let (s, driver) = sync(&f, &name).await;
    let store = driver.into_store().await;
    let bytes = store.bytes().await.expect("bytes");
    let mut prefix_real = Vec::new();
    for h in checkpoint_height + 1..=head {
        let set = store
            .next_validators(h - 1)
            .await
            .expect("read")
            .expect("the set signing h is stored");
        prefix_real.push(needed(&set));
    }
    store.close().await;
    IdbStore::delete(&name).await.expect("deleted");
    syncs.push(s);

    // --- The bound's chain (not timed).
    let t0 = now();
    let built = build(validators, checkpoint_height, head);
    let build_ms = now() - t0;
    let digests = digests(&built);
    let prefix_built: Vec<usize> = vec![needed(&built.checkpoint.validators); built.headers.len()];
    let bound_batches = batches(&built, &digests, &prefix_real, batch);
    let eq_batches = batches(&built, &digests, &prefix_built, batch);
    let sigs_real: usize = prefix_real.iter().sum();
    let sigs_eq: usize = prefix_built.iter().sum();
    console_log!(
        "BENCH bound_chain built_ms={build_ms:.0} headers={} sigs_real_prefix={sigs_real} \
         (min {} max {}) sigs_equal_power={sigs_eq}",
        built.headers.len(),
        prefix_real.iter().min().unwrap(),
        prefix_real.iter().max().unwrap()
    );
    // Warm up (JIT tiers, allocator) once, untimed.
    time_batches(&bound_batches[..1]);

    // --- Bound and end to end, interleaved.
    let mut bound_ms = Vec::new();
    for run in 1..RUNS {
        bound_ms.push(time_batches(&bound_batches));
        let name = unique(&format!("e2e-{run}"));
        let (s, driver) = sync(&f, &name).await;
        let store = driver.into_store().await;
        store.close().await;
        IdbStore::delete(&name).await.expect("deleted");
        syncs.push(s);
    }
    bound_ms.push(time_batches(&bound_batches));
    let eq_ms: Vec<f64> = (0..RUNS).map(|_| time_batches(&eq_batches)).collect();

    for (i, s) in syncs.iter().enumerate() {
        console_log!(
            "BENCH e2e_run={i} headers_verified={} total_ms={:.1} start_ms={:.1} \
             connected_ms={:.1} verified_ms={:.1} stored_ms={:.1} headers_per_s={:.1} \
             headers_received={} header_requests={} request_failures={} store_writes={}",
            s.headers_verified,
            s.stored,
            s.started,
            s.connected,
            s.verified,
            s.stored,
            s.headers_verified as f64 / (s.stored / 1e3),
            s.headers_received,
            s.requests,
            s.failures,
            s.store_writes
        );
    }
    let headers = syncs[0].headers_verified;
    assert_eq!(headers, head - checkpoint_height, "every header verified");
    let e2e_rates: Vec<f64> = syncs
        .iter()
        .map(|s| s.headers_verified as f64 / (s.stored / 1e3))
        .collect();
    let e2e = median(&e2e_rates);
    let bound_rates: Vec<f64> = bound_ms
        .iter()
        .map(|ms| headers as f64 / (ms / 1e3))
        .collect();
    let bound = median(&bound_rates);
    console_log!(
        "BENCH bound_ms_runs={} bound_headers_per_s_runs={} us_per_sig={:.2}",
        list(&bound_ms),
        list(&bound_rates),
        median(&bound_ms) * 1e3 / sigs_real as f64
    );
    console_log!(
        "BENCH e2e_headers_per_s_runs={} e2e_total_ms_runs={}",
        list(&e2e_rates),
        list(&syncs.iter().map(|s| s.stored).collect::<Vec<_>>())
    );
    console_log!("BENCH e2e_headers_per_s={e2e:.1}");
    console_log!("BENCH bound_headers_per_s={bound:.1}");
    console_log!("BENCH ratio_e2e_to_bound={:.3}", e2e / bound);

    // --- Where the time goes (same headers, in this page).
    let eq_rate = headers as f64 / (median(&eq_ms) / 1e3);
    let verifier = Verifier::new().with_checkpoint(built.checkpoint.clone());
    let anchor = TrustedState::from_checkpoint(&built.checkpoint, built.anchor.header.clone())
        .expect("checkpoint matches");
    let mut verify_ms = Vec::new();
    for _ in 0..RUNS {
        let t0 = now();
        let mut state = anchor.clone();
        for chunk in built.headers.chunks(batch) {
            state = verifier
                .verify_range(&state, chunk, built.now_ms)
                .expect("valid chain");
        }
        verify_ms.push(now() - t0);
        assert_eq!(state.height(), head);
    }
    let responses: Vec<Vec<u8>> = built
        .headers
        .chunks(batch)
        .map(|c| HeadersResponse::Headers(c.to_vec()).encode())
        .collect();
    let response_bytes: usize = responses.iter().map(Vec::len).sum();
    let mut decode_ms = Vec::new();
    for _ in 0..RUNS {
        let t0 = now();
        for r in &responses {
            let HeadersResponse::Headers(h) = HeadersResponse::decode(r).expect("decodes") else {
                panic!("headers")
            };
            assert!(!h.is_empty());
        }
        decode_ms.push(now() - t0);
    }
    let verified: Vec<VerifiedHeader> = std::iter::once(VerifiedHeader {
        header: StoredHeader::new(built.anchor.header.clone()),
        next_validators: Some(built.checkpoint.validators.clone()),
        commit: None,
    })
    .chain(built.headers.iter().map(|th| {
        let hands_over = th.header.hands_over();
        VerifiedHeader {
            header: StoredHeader::new(th.header.clone()),
            next_validators: if hands_over {
                th.next_validators.clone()
            } else {
                None
            },
            commit: hands_over.then(|| th.commit.clone()),
        }
    }))
    .collect();
    let mut store_ms = Vec::new();
    for run in 0..RUNS {
        let name = unique(&format!("append-{run}"));
        let mut store = IdbStore::open(&name).await.expect("opens");
        store
            .set_checkpoint(&built.checkpoint)
            .await
            .expect("checkpoint");
        let t0 = now();
        for chunk in verified.chunks(store_batch) {
            store.append(chunk).await.expect("appends");
        }
        store_ms.push(now() - t0);
        store.close().await;
        IdbStore::delete(&name).await.expect("deleted");
    }
    let per = |ms: &[f64]| median(ms) * 1e3 / headers as f64;
    console_log!(
        "BENCH breakdown bound_equal_power_us_per_header={:.1} verify_range_us_per_header={:.1} \
         verify_range_headers_per_s={:.1} verify_range_over_equal_power_bound={:.3} \
         decode_us_per_header={:.1} ({} response bytes) idb_append_us_per_header={:.1} \
         e2e_us_per_header={:.1} bound_us_per_header={:.1}",
        per(&eq_ms),
        per(&verify_ms),
        headers as f64 / (median(&verify_ms) / 1e3),
        (headers as f64 / (median(&verify_ms) / 1e3)) / eq_rate,
        per(&decode_ms),
        response_bytes,
        per(&store_ms),
        1e6 / e2e,
        1e6 / bound
    );
    console_log!(
        "BENCH breakdown_runs_ms equal_power_bound={} verify_range={} decode={} idb_append={}",
        list(&eq_ms),
        list(&verify_ms),
        list(&decode_ms),
        list(&store_ms)
    );

    // --- Network only (same requests, no verification or storage).
    for in_flight in [1, 2] {
        let mut connect = Vec::new();
        let mut fetch = Vec::new();
        for _ in 0..RUNS {
            let (c, ms, n) = fetch_only(&f, batch as u64, in_flight).await;
            assert_eq!(n, headers + 1, "every header fetched");
            connect.push(c);
            fetch.push(ms);
        }
        console_log!(
            "BENCH network_only in_flight={in_flight} connect_ms_runs={} fetch_ms_runs={} \
             fetch_us_per_header={:.1}",
            list(&connect),
            list(&fetch),
            median(&fetch) * 1e3 / headers as f64
        );
    }

    let mut ws_open = Vec::new();
    for _ in 0..RUNS {
        ws_open.push(websocket_open_ms(&f.honest_ws).await);
    }
    console_log!("BENCH websocket_open_ms_runs={}", list(&ws_open));

    // --- Resume and bytes, on a synced store.
    let name = unique("resume");
    let (_, driver) = sync(&f, &name).await;
    let store = driver.into_store().await;
    let bytes_last = store.bytes().await.expect("bytes");
    store.close().await;
    let mut resume_ms = Vec::new();
    let mut open_ms = Vec::new();
    for _ in 0..RESUMES {
        let t0 = now();
        let store = IdbStore::open(&name).await.expect("reopens");
        let opened = now() - t0;
        let driver = Driver::start(f.config(&[&f.honest_ws]), store)
            .await
            .expect("resumes");
        let ms = now() - t0;
        assert_eq!(driver.status().verified_height, Some(head));
        resume_ms.push(ms);
        open_ms.push(opened);
        let store = driver.into_store().await;
        store.close().await;
    }
    IdbStore::delete(&name).await.expect("deleted");
    console_log!(
        "BENCH resume_ms_runs={} idb_open_ms_runs={}",
        list(&resume_ms),
        list(&open_ms)
    );
    console_log!("BENCH resume_to_verified_head_ms={:.1}", median(&resume_ms));

    for (label, b) in [("first", &bytes), ("last", &bytes_last)] {
        console_log!(
            "BENCH store_{label} headers_bytes={} validator_sets_bytes={} commits_bytes={} \
             header_count={} total={}",
            b.headers,
            b.validator_sets,
            b.commits,
            b.header_count,
            b.total()
        );
    }
    console_log!("BENCH bytes_per_stored_header={:.1}", bytes.per_header());
}
