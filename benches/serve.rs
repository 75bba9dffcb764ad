//! Serving headers over loopback WebSocket (issue 3), against a bound measured in the same run.
//!
//! A chain of `SERVE_BLOCKS` blocks signed by `SERVE_VALIDATORS` validators (every validator
//! signs every commit) is built with `testkit::ChainBuilder` and appended to a redb store. Its
//! block 0 has the header of `Genesis::block()` for the matching genesis (same chain id, time
//! and set, no schedule); only the commit differs (ChainBuilder signs it, the genesis block's is
//! empty), and `service::open_store` compares header hashes only, so the node opens the store as
//! this chain's.
//!
//! Then, with `SERVE_CLIENTS` (default 1, 10, 100) concurrent clients, each its own
//! `net::Network` that dials only the server's `/ws` address, every client sends sequential
//! `GetHeaders { start: random, count: SERVE_COUNT }` for `SERVE_SECS`:
//!
//! - **node, paced**: the real node (`service::start`, non-validator, `/ip4/127.0.0.1/tcp/0/ws`).
//!   Its peer book allows a burst of 16 header requests, then one per 100 ms per peer, and
//!   penalizes each request over that (ban at the 10th), so each client sends one request per
//!   100 ms: the served rate is the policy's, not the node's capacity.
//! - **probe**: one client back to back against the node, to show what the policy does.
//! - **serving path, unthrottled**: the same network driver and `serve()` function, answered
//!   by a loop in this file that does what `NodeLoop::on_net` does for a request (`serve`,
//!   `encoded_len` for the metrics, `respond`), with the per-peer rate and concurrency limits
//!   lifted; clients send back to back. This is the serving capacity.
//!
//! The bound: one `store.headers(start, count)` plus one `HeadersResponse::encode()` on the
//! same store, in a tight loop on one thread, and on two threads at once.
//!
//! Server and clients run in one process on separate tokio runtimes (threads named `hw-node`
//! and `hw-client`, 2 workers each); CPU time per runtime is read from `/proc/self/task`.
//!
//! `cargo bench --bench serve` (env: SERVE_BLOCKS, SERVE_VALIDATORS, SERVE_COUNT, SERVE_SECS,
//! SERVE_CLIENTS, SERVE_PACE_MS, SERVE_PROBE_SECS, SERVE_BOUND_SECS).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use headway::chain::{ChainId, Encode, FinalizedBlock, Genesis, Hash};
use headway::crypto::ed25519::PublicKey;
use headway::net::{keypair_from_seed, NetEvent, Network, NetworkConfig};
use headway::node::consensus::ConsensusConfig;
use headway::node::serve::serve;
use headway::node::service::{self, NodeParams};
use headway::protocol::limits::RateLimit;
use headway::protocol::{GetHeaders, HeadersResponse, Protocol, Request, Response, Status};
use headway::store::{ChainStore, RedbStore};
use headway::testkit::{self, ChainBuilder};
use libp2p::{Multiaddr, PeerId};
use tokio::runtime::Runtime;
use tokio::sync::watch;

mod support;
use support::env;

const CHAIN: &str = "bench-serve";
/// ChainBuilder's first block time.
const GENESIS_TIME_MS: u64 = 1_700_000_000_000;

struct Params {
    blocks: u64,
    validators: usize,
    count: u32,
    secs: f64,
    clients: Vec<usize>,
    pace: Duration,
    probe_secs: f64,
    bound_secs: f64,
}

fn params() -> Params {
    let clients = std::env::var("SERVE_CLIENTS")
        .unwrap_or_else(|_| "1,10,100".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    Params {
        blocks: env("SERVE_BLOCKS", 5_000),
        validators: env("SERVE_VALIDATORS", 100),
        count: env("SERVE_COUNT", 64),
        secs: env("SERVE_SECS", 10.0),
        clients,
        pace: Duration::from_millis(env("SERVE_PACE_MS", 100)),
        probe_secs: env("SERVE_PROBE_SECS", 5.0),
        bound_secs: env("SERVE_BOUND_SECS", 3.0),
    }
}

/// SplitMix64: a tiny deterministic generator for request starts.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// ---- CPU time per runtime ---------------------------------------------------------------

/// CPU seconds (user + system) of this process's threads whose name starts with `prefix`.
fn thread_cpu_secs(prefix: &str) -> f64 {
    let mut ticks = 0u64;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[open + 1..close].starts_with(prefix) {
            continue;
        }
        // After the comm: state is field 3; utime and stime are fields 14 and 15.
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let utime: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0);
        let stime: u64 = fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
        ticks += utime + stime;
    }
    // USER_HZ is 100 on Linux.
    ticks as f64 / 100.0
}

/// (this process's CPU seconds, every CPU's busy seconds) so far.
fn process_and_system_secs() -> (f64, f64) {
    let own = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let close = s.rfind(')')?;
            let f: Vec<&str> = s[close + 2..].split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    let busy = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let line = s.lines().next()?;
            let f: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal: all but idle and iowait.
            Some(f.iter().take(8).sum::<u64>() - f.get(3)? - f.get(4)?)
        })
        .unwrap_or(0);
    (own as f64 / 100.0, busy as f64 / 100.0)
}

#[derive(Clone, Copy)]
struct Cpu {
    node: f64,
    client: f64,
    own: f64,
    busy: f64,
}

fn cpu_now() -> Cpu {
    let (own, busy) = process_and_system_secs();
    Cpu {
        node: thread_cpu_secs("hw-node"),
        client: thread_cpu_secs("hw-client"),
        own,
        busy,
    }
}

impl Cpu {
    /// CPU seconds other processes used between `self` and `later`.
    fn other_until(&self, later: &Cpu) -> f64 {
        (later.busy - self.busy) - (later.own - self.own)
    }
}

// ---- The chain ------------------------------------------------------------------------------

fn build_store(p: &Params, dir: &std::path::Path) -> Result<(Genesis, Duration, usize)> {
    let genesis = Genesis::new(
        ChainId::new(CHAIN)?,
        GENESIS_TIME_MS,
        testkit::validator_set(&testkit::keys(0, p.validators)),
        BTreeMap::new(),
    )?;
    let started = Instant::now();
    let mut chain = ChainBuilder::new(CHAIN, p.validators);
    let store = RedbStore::open(dir.join("chain.redb"))?;
    let mut batch = Vec::new();
    let mut header_bytes = 0;
    for height in 0..p.blocks {
        let (block, trusted) = chain.next_block(Vec::new());
        if height == 0 {
            let ours = genesis.block();
            if block.header.hash() != ours.block.header.hash() {
                bail!("ChainBuilder's block 0 is not this genesis block");
            }
            // The signed commit differs from the genesis block's empty one; open_store
            // checks the header hash only.
            assert_ne!(trusted.commit, ours.commit);
        }
        header_bytes = trusted.encode().len();
        batch.push(FinalizedBlock {
            block,
            commit: trusted.commit,
            next_validators: trusted.next_validators,
        });
        if batch.len() == 256 {
            store.append(&batch)?;
            batch.clear();
        }
    }
    store.append(&batch)?;
    Ok((genesis, started.elapsed(), header_bytes))
}

// ---- The bound ------------------------------------------------------------------------------

/// Runs `op` with fresh random starts for `secs` on each of `threads` threads at once;
/// returns operations per second (all threads together).
fn tight_loop(threads: usize, secs: f64, blocks: u64, count: u32, op: impl Fn(u64) + Sync) -> f64 {
    let duration = Duration::from_secs_f64(secs);
    let counts: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let op = &op;
                s.spawn(move || {
                    let mut rng = Rng(0xb0_0000 + t as u64);
                    let started = Instant::now();
                    let mut n = 0u64;
                    while started.elapsed() < duration {
                        op(rng.below(blocks - u64::from(count) + 1));
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    counts.iter().sum::<u64>() as f64 / secs
}

struct Bound {
    /// Requests (read + encode) per second on one thread, and on two.
    one: f64,
    two: f64,
    read_us: f64,
    encode_us: f64,
    serve_us: f64,
    /// `PublicKey::from_bytes` (decompression + torsion check), once per decoded header.
    key_us: f64,
    response_bytes: usize,
    /// Other processes' load during the read+encode loops, in cores.
    other_load: f64,
}

fn measure_bound(store: &dyn ChainStore, genesis: &Genesis, p: &Params) -> Result<Bound> {
    let (blocks, count) = (p.blocks, p.count);
    let cpu0 = cpu_now();
    let read_encode = |start: u64| {
        let headers = store.headers(start, count).expect("store read");
        assert_eq!(headers.len(), count as usize);
        std::hint::black_box(HeadersResponse::Headers(headers).encode());
    };
    let one = tight_loop(1, p.bound_secs, blocks, count, read_encode);
    let two = tight_loop(2, p.bound_secs, blocks, count, read_encode);
    let other_load = cpu0.other_until(&cpu_now()) / (2.0 * p.bound_secs);

    // Breakdown, one thread, a second each.
    let read = tight_loop(1, 1.0, blocks, count, |start| {
        std::hint::black_box(store.headers(start, count).expect("store read"));
    });
    let response = HeadersResponse::Headers(store.headers(0, count)?);
    let response_bytes = response.encode().len();
    let encode = tight_loop(1, 1.0, blocks, count, |_| {
        std::hint::black_box(response.encode());
    });
    let serve_rate = tight_loop(1, 1.0, blocks, count, |start| {
        let r = serve(
            store,
            genesis,
            &Request::GetHeaders(GetHeaders { start, count }),
        );
        std::hint::black_box(r);
    });
    let proposer = *store
        .header(1)?
        .context("header 1")?
        .header
        .proposer
        .as_bytes();
    let keys = tight_loop(1, 1.0, blocks, count, |_| {
        std::hint::black_box(PublicKey::from_bytes(&proposer).expect("valid key"));
    });
    Ok(Bound {
        one,
        two,
        read_us: 1e6 / read,
        encode_us: 1e6 / encode,
        serve_us: 1e6 / serve_rate,
        key_us: 1e6 / keys,
        response_bytes,
        other_load,
    })
}

// ---- Clients --------------------------------------------------------------------------------

/// What the clients share.
#[derive(Clone)]
struct Target {
    addr: Multiaddr,
    peer: PeerId,
    chain_id: ChainId,
    genesis_hash: Hash,
    blocks: u64,
    count: u32,
}

#[derive(Default)]
struct ClientStats {
    ok: u64,
    headers: u64,
    latencies: Vec<Duration>,
    errors: HashMap<String, u64>,
    failures: u64,
    /// When the server dropped us, from the window's start.
    disconnected_after: Option<Duration>,
}

/// Connects a client and waits for its handshake with the target.
async fn connect(seed: u64, t: &Target) -> Result<Network> {
    let keypair = keypair_from_seed(testkit::key(seed).seed());
    let status = Status {
        head_height: 0,
        head_hash: t.genesis_hash,
        mmr_root: Hash::ZERO,
        lowest_height: 0,
        syncing: true,
    };
    let mut config = NetworkConfig::new(keypair, t.chain_id.clone(), t.genesis_hash, status);
    config.bootnodes = vec![t.addr.clone()];
    let (mut net, _) = Network::new(config).await?;
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match net.next_event().await {
                NetEvent::HandshakeDone { peer, .. } if peer == t.peer => return Ok(()),
                NetEvent::HandshakeFailed { reason, .. } => bail!("handshake failed: {reason}"),
                NetEvent::DialFailed { error, .. } => bail!("dial failed: {error}"),
                _ => {}
            }
        }
    })
    .await
    .context("handshake timed out")??;
    Ok(net)
}

/// Sends sequential requests from `start` until `end`, one per `pace` if given.
async fn run_client(
    mut net: Network,
    t: Target,
    seed: u64,
    pace: Option<Duration>,
    mut go: watch::Receiver<Option<(Instant, Instant)>>,
) -> ClientStats {
    // Keep the connection served while the other clients connect.
    let (start, end) = loop {
        if let Some(window) = *go.borrow() {
            break window;
        }
        tokio::select! {
            r = go.changed() => if r.is_err() { return ClientStats::default() },
            _ = net.next_event() => {}
        }
    };
    let to_tokio = |i: Instant| tokio::time::Instant::from_std(i);
    let mut rng = Rng(seed);
    let mut stats = ClientStats::default();
    let mut next_send = pace.map(|p| start + p.mul_f64(rng.below(1_000) as f64 / 1_000.0));
    let give_up = end + Duration::from_secs(15);
    'requests: loop {
        if let (Some(p), Some(at)) = (pace, next_send.as_mut()) {
            if *at >= end {
                break;
            }
            while Instant::now() < *at {
                tokio::select! {
                    _ = tokio::time::sleep_until(to_tokio(*at)) => {}
                    _ = net.next_event() => {}
                }
            }
            *at = (*at + p).max(Instant::now());
        }
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        let request = Request::GetHeaders(GetHeaders {
            start: rng.below(t.blocks - u64::from(t.count) + 1),
            count: t.count,
        });
        let Ok(id) = net.send_request(t.peer, request) else {
            stats.disconnected_after.get_or_insert(sent - start);
            break;
        };
        let result = loop {
            match tokio::time::timeout_at(to_tokio(give_up), net.next_event()).await {
                Ok(NetEvent::Response {
                    id: got, result, ..
                }) if got == id => break result,
                Ok(NetEvent::PeerDisconnected { peer } | NetEvent::PeerBanned { peer, .. })
                    if peer == t.peer =>
                {
                    stats.disconnected_after.get_or_insert(sent - start);
                    break 'requests;
                }
                Ok(_) => {}
                Err(_) => {
                    stats.failures += 1;
                    break 'requests;
                }
            }
        };
        let done = Instant::now();
        if done > end {
            break;
        }
        match result {
            Ok(Response::Headers(HeadersResponse::Headers(headers))) => {
                stats.ok += 1;
                stats.headers += headers.len() as u64;
                stats.latencies.push(done - sent);
            }
            Ok(other) => {
                let code = other
                    .as_error()
                    .map_or("unexpected".to_string(), |e| e.code.to_string());
                *stats.errors.entry(code).or_default() += 1;
            }
            Err(_) => stats.failures += 1,
        }
    }
    // Hold the connection until the window is over for everyone.
    while Instant::now() < end {
        tokio::select! {
            _ = tokio::time::sleep_until(to_tokio(end)) => {}
            _ = net.next_event() => {}
        }
    }
    stats
}

struct PhaseResult {
    name: &'static str,
    clients: usize,
    secs: f64,
    connect_secs: f64,
    ok: u64,
    headers: u64,
    p50: Duration,
    p99: Duration,
    errors: BTreeMap<String, u64>,
    failures: u64,
    disconnected: usize,
    first_disconnect: Option<Duration>,
    cpu_node: f64,
    cpu_client: f64,
    cpu_other: f64,
}

/// Connects `clients` clients, runs them for `secs` and gathers their numbers.
fn run_phase(
    rt: &Runtime,
    name: &'static str,
    target: &Target,
    clients: usize,
    secs: f64,
    pace: Option<Duration>,
    seed_base: u64,
) -> Result<PhaseResult> {
    let connect_started = Instant::now();
    let nets: Vec<Network> = rt.block_on(async {
        let mut nets = Vec::new();
        // Ten at a time, so a hundred handshakes do not all race the handshake timeout.
        for chunk in (0..clients as u64).collect::<Vec<_>>().chunks(10) {
            let joins: Vec<_> = chunk
                .iter()
                .map(|&i| {
                    let t = target.clone();
                    tokio::spawn(async move { connect(seed_base + i, &t).await })
                })
                .collect();
            for j in joins {
                nets.push(j.await??);
            }
        }
        Ok::<_, anyhow::Error>(nets)
    })?;
    let connect_secs = connect_started.elapsed().as_secs_f64();

    let (go_tx, go_rx) = watch::channel(None);
    let tasks: Vec<_> = nets
        .into_iter()
        .enumerate()
        .map(|(i, net)| {
            rt.spawn(run_client(
                net,
                target.clone(),
                seed_base * 7919 + i as u64,
                pace,
                go_rx.clone(),
            ))
        })
        .collect();
    // Let every client settle (status exchange, gossip subscriptions) before the window.
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now() + Duration::from_millis(50);
    let end = start + Duration::from_secs_f64(secs);
    go_tx.send(Some((start, end)))?;
    std::thread::sleep(start.saturating_duration_since(Instant::now()));
    let cpu0 = cpu_now();
    std::thread::sleep(end.saturating_duration_since(Instant::now()));
    let cpu1 = cpu_now();
    let stats: Vec<ClientStats> = rt.block_on(async {
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await?);
        }
        Ok::<_, anyhow::Error>(out)
    })?;

    let mut latencies: Vec<Duration> = stats.iter().flat_map(|s| s.latencies.clone()).collect();
    latencies.sort();
    let pct = |q: f64| {
        if latencies.is_empty() {
            Duration::ZERO
        } else {
            latencies[((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1]
        }
    };
    let mut errors = BTreeMap::new();
    for s in &stats {
        for (k, v) in &s.errors {
            *errors.entry(k.clone()).or_default() += v;
        }
    }
    Ok(PhaseResult {
        name,
        clients,
        secs,
        connect_secs,
        ok: stats.iter().map(|s| s.ok).sum(),
        headers: stats.iter().map(|s| s.headers).sum(),
        p50: pct(0.50),
        p99: pct(0.99),
        errors,
        failures: stats.iter().map(|s| s.failures).sum(),
        disconnected: stats
            .iter()
            .filter(|s| s.disconnected_after.is_some())
            .count(),
        first_disconnect: stats.iter().filter_map(|s| s.disconnected_after).min(),
        cpu_node: cpu1.node - cpu0.node,
        cpu_client: cpu1.client - cpu0.client,
        cpu_other: cpu0.other_until(&cpu1),
    })
}

// ---- The unthrottled serving loop ------------------------------------------------------------

/// A network driver answering requests with `serve()` exactly as `NodeLoop::on_net` does
/// (serve, `encoded_len` for the metrics, `respond`), without per-peer rate limits.
async fn unthrottled_server(
    store: Arc<dyn ChainStore>,
    genesis: Genesis,
    ready: tokio::sync::oneshot::Sender<(Multiaddr, PeerId)>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Result<()> {
    let head = store.head()?.context("empty store")?;
    let status = Status {
        head_height: head.height,
        head_hash: head.hash,
        mmr_root: head.peaks.root(),
        lowest_height: 0,
        syncing: false,
    };
    let keypair = keypair_from_seed(testkit::key(9_000).seed());
    let genesis_hash = genesis.block().block.header.hash();
    let mut config = NetworkConfig::new(keypair, genesis.chain_id.clone(), genesis_hash, status);
    config.listen = vec!["/ip4/127.0.0.1/tcp/0/ws".parse()?];
    config.peer_book.max_concurrent_inbound = 1_000;
    config.peer_book.rate_limits = Protocol::ALL.map(|_| RateLimit {
        burst: 1_000_000,
        refill_every: Duration::from_micros(1),
    });
    let (mut net, _) = Network::new(config).await?;
    let addr = net.listen_addrs()[0].clone();
    let _ = ready.send((addr, net.local_peer_id()));
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(()),
            event = net.next_event() => {
                if let NetEvent::InboundRequest { id, request, .. } = event {
                    let response = serve(&*store, &genesis, &request);
                    std::hint::black_box(response.encoded_len());
                    let _ = net.respond(id, response);
                }
            }
        }
    }
}

// ---- Report ---------------------------------------------------------------------------------

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; nothing to parse.
    let p = params();
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    println!("# serve bench: {} blocks, {} validators, GetHeaders count {}, {} s per phase, clients {:?}{}",
        p.blocks, p.validators, p.count, p.secs, p.clients,
        if host.is_empty() { String::new() } else { format!(", host {host}") });
    let dir = tempfile::tempdir()?;
    let (genesis, build_time, header_bytes) = build_store(&p, dir.path())?;
    println!(
        "chain built and stored in {:.1} s ({} bytes per trusted header)",
        build_time.as_secs_f64(),
        header_bytes
    );

    let runtime = |name: &str| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(name)
            .enable_all()
            .build()
    };
    let node_rt = runtime("hw-node")?;
    let client_rt = runtime("hw-client")?;

    let node = node_rt.block_on(node_rt.spawn(service::start(NodeParams {
        data_dir: dir.path().to_owned(),
        genesis: genesis.clone(),
        validator_key: None,
        listen: vec!["/ip4/127.0.0.1/tcp/0/ws".parse()?],
        bootnodes: Vec::new(),
        http: None,
        consensus: ConsensusConfig::default(),
        block_interval_ms: 1_000,
        www: None,
        dishonest: None,
        warp_from: None,
        trusted_peers: Vec::new(),
    })))??;
    anyhow::ensure!(
        node.head_height() == p.blocks - 1,
        "node head {}",
        node.head_height()
    );
    let ws = node.addr_with("/ws").context("no /ws address")?.clone();
    println!("node {} listening on {ws}", node.peer_id);

    // The bound, on the node's own store while it idles.
    let bound = measure_bound(&*node.store, &genesis, &p)?;
    let per_req = |rate: f64| 1e6 / rate;
    println!(
        "bound: read+encode {:.1} µs/request on one thread ({:.0} headers/s), {:.0} headers/s on two threads",
        per_req(bound.one),
        bound.one * p.count as f64,
        bound.two * p.count as f64
    );
    println!(
        "breakdown (one thread): store.headers {:.1} µs, encode {:.1} µs, serve() {:.1} µs, PublicKey::from_bytes {:.2} µs; response {} bytes; other load {:.2} cores",
        bound.read_us, bound.encode_us, bound.serve_us, bound.key_us, bound.response_bytes, bound.other_load
    );

    let genesis_hash = genesis.block().block.header.hash();
    let node_target = Target {
        addr: ws,
        peer: node.peer_id,
        chain_id: genesis.chain_id.clone(),
        genesis_hash,
        blocks: p.blocks,
        count: p.count,
    };
    let mut results = Vec::new();
    let mut seed = 10_000u64;
    for &n in &p.clients {
        let r = run_phase(
            &client_rt,
            "node, paced",
            &node_target,
            n,
            p.secs,
            Some(p.pace),
            seed,
        )?;
        seed += 1_000;
        report_line(&r, &bound, p.count);
        results.push(r);
    }
    if p.probe_secs > 0.0 {
        let r = run_phase(
            &client_rt,
            "node, back to back (probe)",
            &node_target,
            1,
            p.probe_secs,
            None,
            seed,
        )?;
        seed += 1_000;
        report_line(&r, &bound, p.count);
        results.push(r);
    }

    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let server = node_rt.spawn(unthrottled_server(
        node.store.clone(),
        genesis.clone(),
        ready_tx,
        stop_rx,
    ));
    let (addr, peer) = node_rt.block_on(ready_rx)?;
    let addr = addr
        .with_p2p(peer)
        .map_err(|a| anyhow::anyhow!("address {a}"))?;
    let fast_target = Target {
        addr,
        peer,
        ..node_target.clone()
    };
    for &n in &p.clients {
        let r = run_phase(
            &client_rt,
            "serving path, unthrottled",
            &fast_target,
            n,
            p.secs,
            None,
            seed,
        )?;
        seed += 1_000;
        report_line(&r, &bound, p.count);
        results.push(r);
    }
    let _ = stop_tx.send(());
    node_rt.block_on(server)??;
    node_rt.block_on(node.stop())?;

    println!();
    println!(
        "| server | clients | requests ok | headers/s served | p50 | p99 | refused / failed | node CPU (cores) | client CPU (cores) | other load (cores) | headers per node CPU-s | served / 1-core bound | served / 2-core bound |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &results {
        let rate = r.headers as f64 / r.secs;
        let refused: u64 = r.errors.values().sum();
        let mut refused_text = format!("{refused} / {}", r.failures);
        if let Some(d) = r.first_disconnect {
            refused_text.push_str(&format!(
                "; {} dropped, first after {:.2} s",
                r.disconnected,
                d.as_secs_f64()
            ));
        }
        println!(
            "| {} | {} | {} | {:.0} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.0} | {:.1}% | {:.1}% |",
            r.name,
            r.clients,
            r.ok,
            rate,
            ms(r.p50),
            ms(r.p99),
            refused_text,
            r.cpu_node / r.secs,
            r.cpu_client / r.secs,
            r.cpu_other / r.secs,
            r.headers as f64 / r.cpu_node,
            100.0 * rate / (bound.one * p.count as f64),
            100.0 * rate / (bound.two * p.count as f64),
        );
    }
    println!();
    println!("| bound (same store, same run) | per request | headers/s |");
    println!("|---|---|---|");
    println!(
        "| store.headers + encode, 1 thread | {:.1} µs | {:.0} |",
        per_req(bound.one),
        bound.one * p.count as f64
    );
    println!(
        "| store.headers + encode, 2 threads | {:.1} µs | {:.0} |",
        per_req(bound.two),
        bound.two * p.count as f64
    );
    println!(
        "| store.headers alone | {:.1} µs | {:.0} |",
        bound.read_us,
        1e6 / bound.read_us * p.count as f64
    );
    println!(
        "| HeadersResponse::encode alone | {:.1} µs | {:.0} |",
        bound.encode_us,
        1e6 / bound.encode_us * p.count as f64
    );
    println!(
        "| {} × PublicKey::from_bytes (the `proposer` of each decoded header) | {:.1} µs | – |",
        p.count,
        bound.key_us * p.count as f64
    );
    println!(
        "| serve() (read + fit_to_response) | {:.1} µs | {:.0} |",
        bound.serve_us,
        1e6 / bound.serve_us * p.count as f64
    );
    println!(
        "| node loop per request: serve() + 2 × encode (metrics, respond's cap check) | {:.1} µs | {:.0} |",
        bound.serve_us + 2.0 * bound.encode_us,
        1e6 / (bound.serve_us + 2.0 * bound.encode_us) * p.count as f64
    );
    for r in &results {
        if let Some(d) = r.first_disconnect {
            println!(
                "note: {}: first client dropped after {:.2} s",
                r.name,
                d.as_secs_f64()
            );
        }
        if !r.errors.is_empty() {
            println!(
                "note: {} ({} clients): refusals {:?}",
                r.name, r.clients, r.errors
            );
        }
        println!(
            "connect: {} ({} clients) connected in {:.2} s",
            r.name, r.clients, r.connect_secs
        );
    }
    Ok(())
}

fn report_line(r: &PhaseResult, bound: &Bound, count: u32) {
    let rate = r.headers as f64 / r.secs;
    eprintln!(
        "{} x{}: {} ok, {:.0} headers/s ({:.1}% of 1-core bound), p50 {} p99 {}, errors {:?}, failures {}, dropped {}, node CPU {:.2} cores, client CPU {:.2} cores",
        r.name,
        r.clients,
        r.ok,
        rate,
        100.0 * rate / (bound.one * count as f64),
        ms(r.p50),
        ms(r.p99),
        r.errors,
        r.failures,
        r.disconnected,
        r.cpu_node / r.secs,
        r.cpu_client / r.secs
    );
}
