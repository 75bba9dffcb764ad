//! Finalization throughput of an in-process devnet (issue 3), against a bound measured in the
//! same run.
//!
//! `node::devnet::start` runs 4 validators and 1 full node on loopback in this process (one
//! tokio runtime, 2 worker threads on this machine). Synthetic signed events
//! (`testkit::event`, distinct `n`, signed before the devnet starts) are submitted to the full
//! node with `NodeHandle::submit` at rising offered rates, each for `FINALITY_SECS`. For each
//! window: blocks/s and events/s finalized (counted from the full node's store: the events of
//! the blocks it finalized during the window), the mempool backlog at the end, and, after a
//! drain of up to `FINALITY_DRAIN_SECS`, the submit → finalized-at-the-full-node latency of the
//! window's events.
//!
//! The bound, measured first on the idle process: the rate at which one node validates events
//! (`SignedEvent::validate`: fields + one ed25519 verify) and appends blocks of such events to
//! redb (`RedbStore::append`, one fsync'd transaction per block), both on one thread.
//!
//! `cargo bench --bench finality` (env: FINALITY_RATES, FINALITY_SECS, FINALITY_DRAIN_SECS,
//! FINALITY_BLOCK_MS, FINALITY_BASE_PORT, FINALITY_INFLIGHT).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::stream::{FuturesUnordered, StreamExt};
use headway::chain::{Decode, Encode, EventId, FinalizedBlock, SignedEvent};
use headway::node::api::SubmitError;
use headway::node::devnet::{self, Devnet, DevnetOptions};
use headway::node::now_ms;
use headway::store::{ChainStore, RedbStore};
use headway::testkit::{self, ChainBuilder};

mod support;
use support::env;

struct Params {
    rates: Vec<f64>,
    secs: f64,
    drain_secs: f64,
    block_ms: u64,
    base_port: u16,
    inflight: usize,
}

fn params() -> Params {
    let rates = std::env::var("FINALITY_RATES")
        .unwrap_or_else(|_| "10,100,300,1000,5000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    Params {
        rates,
        secs: env("FINALITY_SECS", 15.0),
        drain_secs: env("FINALITY_DRAIN_SECS", 10.0),
        block_ms: env("FINALITY_BLOCK_MS", 1_000),
        base_port: env("FINALITY_BASE_PORT", 39_400),
        inflight: env("FINALITY_INFLIGHT", 256),
    }
}

// ---- CPU accounting -------------------------------------------------------------------------

/// (this process's CPU seconds, every CPU's busy seconds) so far.
fn cpu_now() -> (f64, f64) {
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
    // USER_HZ is 100 on Linux.
    (own as f64 / 100.0, busy as f64 / 100.0)
}

// ---- The bound ------------------------------------------------------------------------------

struct Bound {
    validate_us: f64,
    /// `SignedEvent::decode` (which checks the source key: decompression + torsion check).
    decode_us: f64,
    /// Block size → median time to append one block of that many events.
    append: Vec<(usize, Duration)>,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn measure_bound() -> Result<Bound> {
    let source = testkit::key(4_242);
    let t0 = now_ms();
    // Validation: one thread, 3,000 distinct events, three passes.
    let events: Vec<SignedEvent> = (0..3_000)
        .map(|n| testkit::event(&source, 1_000_000_000 + n, t0))
        .collect();
    let started = Instant::now();
    for _ in 0..3 {
        for e in &events {
            e.validate().expect("valid event");
        }
    }
    let validate_us = started.elapsed().as_secs_f64() * 1e6 / (3 * events.len()) as f64;
    let encoded: Vec<Vec<u8>> = events.iter().map(Encode::encode).collect();
    let started = Instant::now();
    for _ in 0..3 {
        for bytes in &encoded {
            std::hint::black_box(SignedEvent::decode(bytes).expect("decodes"));
        }
    }
    let decode_us = started.elapsed().as_secs_f64() * 1e6 / (3 * encoded.len()) as f64;

    // Appends: blocks of 0, 100, 1,000 and 10,000 distinct events, 3 of each, to a fresh redb.
    let dir = tempfile::tempdir()?;
    let store = RedbStore::open(dir.path().join("chain.redb"))?;
    let mut chain = ChainBuilder::new("bench-finality", 4);
    let mut next = 2_000_000_000u64;
    let mut append = Vec::new();
    for size in [0usize, 100, 1_000, 10_000] {
        let mut times = Vec::new();
        for _ in 0..3 {
            let block_events: Vec<SignedEvent> = (0..size as u64)
                .map(|i| testkit::event(&source, next + i, t0))
                .collect();
            next += size as u64;
            let (block, trusted) = chain.next_block(block_events);
            let finalized = FinalizedBlock {
                block,
                commit: trusted.commit,
                next_validators: trusted.next_validators,
            };
            let started = Instant::now();
            store.append(std::slice::from_ref(&finalized))?;
            times.push(started.elapsed());
        }
        append.push((size, median(times)));
    }
    Ok(Bound {
        validate_us,
        decode_us,
        append,
    })
}

// ---- One window -----------------------------------------------------------------------------

struct Window {
    rate: f64,
    offered: usize,
    sent: usize,
    accepted: usize,
    refused: BTreeMap<String, usize>,
    submit_secs: f64,
    blocks: u64,
    events: u64,
    max_block_events: u32,
    mempool_full_node: usize,
    mempool_validators: Vec<usize>,
    drain: Option<Duration>,
    latencies: Vec<Duration>,
    not_finalized: usize,
    cpu_own: f64,
    cpu_other: f64,
    /// Consensus counters of all five nodes during the window.
    counters: BTreeMap<String, f64>,
}

fn refusal(e: &SubmitError) -> String {
    match e {
        SubmitError::Invalid(_) => "invalid",
        SubmitError::Duplicate(_) => "duplicate",
        SubmitError::AlreadyInChain(_) => "in chain",
        SubmitError::Full => "mempool full",
        SubmitError::Unavailable => "unavailable",
    }
    .into()
}

/// Counters of every node's metrics summed, by series (`name{labels}`).
fn counters(devnet: &Devnet) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for node in devnet.validators.iter().chain(&devnet.full_nodes) {
        for line in node.metrics.encode().lines() {
            if line.starts_with('#') {
                continue;
            }
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let interesting = [
                "rounds_skipped",
                "consensus_rejections",
                "store_write_seconds",
            ];
            if !interesting.iter().any(|n| series.contains(n)) || series.contains("bucket") {
                continue;
            }
            if let Ok(v) = value.parse::<f64>() {
                *out.entry(series.to_string()).or_default() += v;
            }
        }
    }
    out
}

/// `after − before`, non-zero series only.
fn delta(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v != 0.0)
        .collect()
}

/// Heights the full node finalized and when its status first showed them.
type Seen = Arc<Mutex<BTreeMap<u64, Instant>>>;

async fn run_window(
    devnet: &Devnet,
    p: &Params,
    rate: f64,
    events: Vec<SignedEvent>,
    seen: &Seen,
) -> Result<Window> {
    let gateway = devnet.gateway();
    let store = gateway.store.clone();
    let duration = Duration::from_secs_f64(p.secs);
    let h0 = gateway.head_height();
    let cpu0 = cpu_now();
    let counters0 = counters(devnet);
    let ids: Vec<EventId> = events.iter().map(SignedEvent::id).collect();
    let mut submitted_at: HashMap<EventId, Instant> = HashMap::new();
    let mut refused = BTreeMap::new();
    let mut accepted = 0usize;
    let offered = events.len();

    let started = Instant::now();
    let mut pending = events.into_iter().zip(ids).peekable();
    let mut sent = 0usize;
    let mut inflight = FuturesUnordered::new();
    loop {
        let elapsed = started.elapsed();
        let due = ((rate * elapsed.as_secs_f64()) as usize).min(offered);
        while elapsed < duration && sent < due && inflight.len() < p.inflight {
            let Some((event, id)) = pending.next() else {
                break;
            };
            submitted_at.insert(id, Instant::now());
            inflight.push(async move { (id, gateway.submit(event).await) });
            sent += 1;
        }
        if (sent >= offered || elapsed >= duration) && inflight.is_empty() {
            break;
        }
        tokio::select! {
            Some((id, result)) = inflight.next(), if !inflight.is_empty() => match result {
                Ok(_) => accepted += 1,
                Err(e) => {
                    submitted_at.remove(&id);
                    *refused.entry(refusal(&e)).or_default() += 1;
                }
            },
            _ = tokio::time::sleep(Duration::from_millis(1)) => {}
        }
    }
    let submit_secs = started.elapsed().as_secs_f64();
    // The window lasts `duration` whatever the submissions did.
    tokio::time::sleep(duration.saturating_sub(started.elapsed())).await;
    let h1 = gateway.head_height();
    let cpu1 = cpu_now();
    let counters1 = counters(devnet);
    let mempool_full_node = gateway.status.borrow().mempool;
    let mempool_validators: Vec<usize> = devnet
        .validators
        .iter()
        .map(|v| v.status.borrow().mempool)
        .collect();

    let mut events_in_window = 0u64;
    let mut max_block_events = 0u32;
    for h in (h0 + 1)..=h1 {
        let header = store.header(h)?.context("finalized header missing")?;
        events_in_window += u64::from(header.header.event_count);
        max_block_events = max_block_events.max(header.header.event_count);
    }

    // Drain: wait until every mempool is empty.
    let drain_started = Instant::now();
    let drain_limit = Duration::from_secs_f64(p.drain_secs);
    let mut drain = None;
    while drain_started.elapsed() < drain_limit {
        let empty = gateway.status.borrow().mempool == 0
            && devnet
                .validators
                .iter()
                .all(|v| v.status.borrow().mempool == 0);
        if empty {
            drain = Some(drain_started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let h2 = gateway.head_height();

    // Latency of this window's events: submitted → the full node's status showed their block.
    let mut latencies = Vec::new();
    let seen_at = seen.lock().unwrap().clone();
    let mut h = h0 + 1;
    while h <= h2 {
        let blocks = store.blocks(h, 64)?;
        if blocks.is_empty() {
            break;
        }
        for block in &blocks {
            let Some(at) = seen_at.get(&block.height()) else {
                continue;
            };
            for e in &block.block.events {
                if let Some(sent) = submitted_at.remove(&e.id()) {
                    latencies.push(at.saturating_duration_since(sent));
                }
            }
        }
        h += blocks.len() as u64;
    }
    latencies.sort();
    let not_finalized = submitted_at.len();

    Ok(Window {
        rate,
        offered,
        sent,
        accepted,
        refused,
        submit_secs,
        blocks: h1 - h0,
        events: events_in_window,
        max_block_events,
        mempool_full_node,
        mempool_validators,
        drain,
        latencies,
        not_finalized,
        cpu_own: cpu1.0 - cpu0.0,
        cpu_other: (cpu1.1 - cpu0.1) - (cpu1.0 - cpu0.0),
        counters: delta(&counters0, &counters1),
    })
}

fn pct(v: &[Duration], q: f64) -> String {
    if v.is_empty() {
        return "–".into();
    }
    let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    format!("{:.2} s", v[i].as_secs_f64())
}

fn main() -> Result<()> {
    let p = params();
    if let Ok(filter) = std::env::var("FINALITY_LOG") {
        headway::node::init_logging(&filter);
    }
    println!(
        "# finality bench: 4 validators + 1 full node, block interval {} ms, rates {:?} events/s, {} s each",
        p.block_ms, p.rates, p.secs
    );

    let bound = measure_bound()?;
    println!(
        "bound: SignedEvent::validate {:.1} µs/event ({:.0} events/s on one core), decode {:.1} µs/event",
        bound.validate_us,
        1e6 / bound.validate_us,
        bound.decode_us
    );
    for (size, t) in &bound.append {
        println!(
            "bound: RedbStore::append of a block of {size} events: {:.2} ms",
            t.as_secs_f64() * 1e3
        );
    }

    // Every event of every window, signed up front so signing costs nothing in the windows.
    let source = testkit::key(777);
    let t_sign = Instant::now();
    let mut n = 0u64;
    let mut batches = Vec::new();
    for &rate in &p.rates {
        let count = (rate * p.secs).round() as usize;
        let now = now_ms();
        batches.push(
            (0..count)
                .map(|_| {
                    n += 1;
                    testkit::event(&source, n, now)
                })
                .collect::<Vec<_>>(),
        );
    }
    println!(
        "signed {n} events in {:.1} s",
        t_sign.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir()?;
    let options = DevnetOptions {
        dir: dir.path().to_owned(),
        validators: 4,
        full_nodes: 1,
        events_per_second: 0.0,
        block_interval_ms: p.block_ms,
        hand_over_every: 100,
        http: SocketAddr::from(([127, 0, 0, 1], 0)),
        base_port: p.base_port,
        www: None,
        chain_id: "headway-bench".into(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let windows = runtime.block_on(async {
        let devnet = devnet::start(&options).await?;
        let gateway = devnet.gateway();
        // Record when the full node's status shows each height.
        let seen: Seen = Arc::default();
        let mut status = gateway.status.clone();
        let seen_task = {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut last = status.borrow().head_height;
                while status.changed().await.is_ok() {
                    let head = status.borrow().head_height;
                    let now = Instant::now();
                    let mut s = seen.lock().unwrap();
                    for h in (last + 1)..=head {
                        s.insert(h, now);
                    }
                    last = last.max(head);
                }
            })
        };
        let warm = Instant::now();
        while gateway.head_height() < 3 {
            anyhow::ensure!(
                warm.elapsed() < Duration::from_secs(60),
                "the devnet finalized nothing in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!(
            "devnet up: head {} after {:.1} s",
            gateway.head_height(),
            warm.elapsed().as_secs_f64()
        );
        let mut windows = Vec::new();
        for (&rate, events) in p.rates.iter().zip(batches) {
            let w = run_window(&devnet, &p, rate, events, &seen).await?;
            eprintln!(
                "{} events/s offered: {} accepted in {:.1} s, {} blocks, {} events finalized, backlog {} / {:?}, drain {:?}, p50 {} p99 {}",
                w.rate,
                w.accepted,
                w.submit_secs,
                w.blocks,
                w.events,
                w.mempool_full_node,
                w.mempool_validators,
                w.drain,
                pct(&w.latencies, 0.5),
                pct(&w.latencies, 0.99)
            );
            windows.push(w);
        }
        seen_task.abort();
        devnet.stop().await?;
        Ok::<_, anyhow::Error>(windows)
    })?;

    println!();
    println!(
        "| offered events/s | submitted / offered | accepted events/s | blocks/s | events/s finalized | largest block | backlog at end (full node / validators max) | drained in | submit→final p50 | p99 | not final after drain | refused | process CPU (cores) | process CPU-ms per finalized event | other load (cores) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for w in &windows {
        let refused: Vec<String> = w.refused.iter().map(|(k, v)| format!("{v} {k}")).collect();
        println!(
            "| {:.0} | {} / {} | {:.0} | {:.2} | {:.0} | {} | {} / {} | {} | {} | {} | {} | {} | {:.2} | {} | {:.2} |",
            w.rate,
            w.sent,
            w.offered,
            w.accepted as f64 / p.secs,
            w.blocks as f64 / p.secs,
            w.events as f64 / p.secs,
            w.max_block_events,
            w.mempool_full_node,
            w.mempool_validators.iter().max().copied().unwrap_or(0),
            w.drain
                .map_or(format!("> {} s", p.drain_secs), |d| format!(
                    "{:.1} s",
                    d.as_secs_f64()
                )),
            pct(&w.latencies, 0.5),
            pct(&w.latencies, 0.99),
            w.not_finalized,
            if refused.is_empty() {
                "0".into()
            } else {
                refused.join(", ")
            },
            w.cpu_own / p.secs,
            if w.events > 0 {
                format!("{:.2}", w.cpu_own * 1e3 / w.events as f64)
            } else {
                "–".into()
            },
            w.cpu_other / p.secs,
        );
    }
    println!();
    println!("Consensus counters during each window, summed over the five nodes:");
    for w in &windows {
        let text: Vec<String> = w
            .counters
            .iter()
            .map(|(k, v)| format!("{} = {}", k.trim_start_matches("headway_"), round3(*v)))
            .collect();
        println!("- {} events/s: {}", w.rate, text.join(", "));
    }
    println!();
    println!("| bound (one thread, same run) | time | events/s |");
    println!("|---|---|---|");
    println!(
        "| SignedEvent::validate (fields + ed25519 verify) | {:.1} µs/event | {:.0} |",
        bound.validate_us,
        1e6 / bound.validate_us
    );
    println!(
        "| SignedEvent::decode (source key decompression + torsion check) | {:.1} µs/event | {:.0} |",
        bound.decode_us,
        1e6 / bound.decode_us
    );
    for (size, t) in &bound.append {
        let per_block = t.as_secs_f64();
        if *size == 0 {
            println!(
                "| RedbStore::append, empty block | {:.2} ms/block | – |",
                per_block * 1e3
            );
            continue;
        }
        let append_rate = *size as f64 / per_block;
        let both = 1.0 / (bound.validate_us * 1e-6 + per_block / *size as f64);
        println!(
            "| RedbStore::append, block of {size} events | {:.2} ms/block ({:.2} µs/event) | {:.0} append only; {:.0} validate + append |",
            per_block * 1e3,
            per_block * 1e6 / *size as f64,
            append_rate,
            both
        );
    }
    Ok(())
}

fn round3(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}
