//! Full-node block sync end to end (issue 6), against the signature bound measured in the
//! same run.
//!
//! A chain of `SYNC_BLOCKS` blocks signed by `SYNC_VALIDATORS` validators (every validator
//! signs every commit; 2 events per block) is generated with `node::gen_chain` and served by
//! one or two nodes (`service::start`, in this process, on a tokio runtime of 2 workers). A
//! fresh `headway node` process (the release binary) syncs it from them over loopback TCP; the
//! time from spawning it until its `/status` shows the head is the sync time.
//!
//! The bound: the same headers verified with `Verifier::verify_range` in ranges of 128 (the
//! sync machine's request size), on 1 thread and on 2 threads (the machine's setting on this
//! 2-core machine; each range's batch split in two), and the needed signatures of each range
//! batch-verified as the sync's checker threads do, 2 threads each taking whole ranges (no
//! barrier between ranges), in this process, idle otherwise. The ratio is blocks/s synced over
//! headers/s verified by the faster 2-thread bound: what network, decoding, body checks and
//! redb writes leave of the signature bound. The servers share the same 2 cores, so the ratio
//! counts their work too.
//!
//! With `SYNC_RSS_BLOCKS` set (e.g. 100000), it also syncs that many blocks of a
//! `SYNC_RSS_VALIDATORS`-validator chain (default 4: memory is about the pipeline, not
//! signatures) from one node and samples the syncing process's RSS (`/proc/<pid>/status`)
//! against its height: peak RSS over the first tenth of the chain and over all of it.
//!
//! The machine's speed drifts by more than 10% within one invocation, so the 2-thread bound is
//! also measured again just before every sync run, and each run's ratio to that bound is
//! printed too (with the median per setting): the figure least moved by the drift.
//!
//! Two rates are shown: over the whole time from spawning the process, and from the first
//! synced block seen stored (polled every 20 ms) to the last, which leaves out the node's
//! start (~15 ms) and the pipeline filling (the first ranges and the first write batch): the
//! first is the figure that counts, the second shows the steady state.
//!
//! With `SYNC_SYNCER_ENV=NAME=VALUE` (e.g. `MALLOC_ARENA_MAX=16`) and/or `SYNC_SYNCER_BIN=PATH`
//! (another `headway` binary, e.g. one built from an earlier commit), every run is repeated with
//! that variable set / that binary syncing, interleaved with the plain runs, and both are
//! reported: an A/B under the same machine conditions.
//!
//! `cargo bench --bench sync` (env: SYNC_BLOCKS, SYNC_VALIDATORS, SYNC_RUNS, SYNC_RSS_BLOCKS,
//! SYNC_RSS_VALIDATORS, SYNC_SYNCER_ENV, SYNC_SYNCER_BIN).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use headway::chain::{Genesis, TrustedHeader};
use headway::node::consensus::ConsensusConfig;
use headway::node::gen_chain::{self, ChainSpec, GENESIS_FILE};
use headway::node::service::{self, NodeHandle, NodeParams};
use headway::store::{ChainStore, RedbStore};
use headway::verify::{SignatureCache, TrustedState, Verifier};
use libp2p::Multiaddr;
use tokio::runtime::Runtime;

const RANGE: u32 = 128;

struct Chain {
    dir: tempfile::TempDir,
    genesis: Genesis,
    blocks: u64,
}

fn generate(validators: usize, blocks: u64) -> Result<Chain> {
    let dir = tempfile::tempdir()?;
    let spec = ChainSpec::ending_now("bench-sync", validators, blocks, 0);
    let started = Instant::now();
    gen_chain::generate(&spec, dir.path())?;
    eprintln!(
        "generated {blocks} blocks, {validators} validators, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let genesis = Genesis::from_json(&std::fs::read_to_string(dir.path().join(GENESIS_FILE))?)?;
    Ok(Chain {
        dir,
        genesis,
        blocks,
    })
}

impl Chain {
    /// A copy of the store in a new folder (its own node identity).
    fn copy(&self) -> Result<tempfile::TempDir> {
        let dir = tempfile::tempdir()?;
        std::fs::copy(
            self.dir.path().join("chain.redb"),
            dir.path().join("chain.redb"),
        )?;
        std::fs::copy(
            self.dir.path().join(GENESIS_FILE),
            dir.path().join(GENESIS_FILE),
        )?;
        Ok(dir)
    }
}

async fn serve(genesis: &Genesis, dir: &Path) -> Result<NodeHandle> {
    service::start(NodeParams {
        data_dir: dir.to_path_buf(),
        genesis: genesis.clone(),
        validator_key: None,
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
        bootnodes: Vec::new(),
        http: None,
        consensus: ConsensusConfig::default(),
        block_interval_ms: 1_000,
        www: None,
        dishonest: None,
        warp_from: None,
        trusted_peers: Vec::new(),
    })
    .await
}

// ---- the bound --------------------------------------------------------------------------

/// Seconds to verify every header after genesis in ranges of [`RANGE`] on `threads` threads.
fn verify_all(genesis: &TrustedState, headers: &[TrustedHeader], threads: usize) -> f64 {
    let verifier = Verifier::new().with_threads(threads);
    let now = u64::MAX / 2;
    let started = Instant::now();
    let mut state = genesis.clone();
    for range in headers.chunks(RANGE as usize) {
        state = verifier
            .verify_range(&state, range, now)
            .unwrap_or_else(|e| panic!("the generated chain verifies: {e:?}"));
    }
    started.elapsed().as_secs_f64()
}

/// Seconds to batch-verify the needed commit signatures of every range of [`RANGE`] headers on
/// `threads` threads, each taking the next range as soon as it is done (no barrier between
/// ranges): what the sync's checker threads do (`SignatureCache::check_ahead`), without the
/// network or anything else. Each range's first signer set is worked out beforehand, untimed.
fn check_all(genesis: &TrustedState, headers: &[TrustedHeader], threads: usize) -> f64 {
    let ranges: Vec<&[TrustedHeader]> = headers.chunks(RANGE as usize).collect();
    let mut signers = Arc::clone(&genesis.next_validators);
    let mut firsts = Vec::with_capacity(ranges.len());
    for range in &ranges {
        firsts.push(Arc::clone(&signers));
        for h in range.iter() {
            if let (true, Some(next)) = (h.header.hands_over(), &h.next_validators) {
                signers = Arc::new(next.clone());
            }
        }
    }
    // The syncer's capacity: the oldest triples are dropped as they would be there.
    let cache = SignatureCache::new(128 * 1024);
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(range) = ranges.get(i) else { break };
                let views = range
                    .iter()
                    .map(|h| (&h.header, &h.commit, h.next_validators.as_ref()));
                // A range's triples are added only if its whole batch verified.
                assert!(cache.check_ahead(&firsts[i], views) > 0, "range {i} failed");
            });
        }
    });
    started.elapsed().as_secs_f64()
}

fn load_headers(chain: &Chain) -> Result<(TrustedState, Vec<TrustedHeader>)> {
    let store = RedbStore::open(chain.dir.path().join("chain.redb"))?;
    let genesis_header = store.header(0)?.context("genesis header")?.header;
    let trusted = TrustedState {
        hash: genesis_header.hash(),
        header: genesis_header,
        next_validators: Arc::new(chain.genesis.validators_at(1).clone()),
    };
    let mut headers = Vec::new();
    let mut next = 1;
    while next <= chain.blocks {
        let got = store.headers(next, 1024)?;
        if got.is_empty() {
            bail!("missing header {next}");
        }
        next += got.len() as u64;
        headers.extend(got);
    }
    Ok((trusted, headers))
}

// ---- the syncing process ------------------------------------------------------------------

#[path = "../tests/support/http.rs"]
mod http;
use http::{free_port, http_get, node_command};

mod support;
use support::env;

fn head_height(http: SocketAddr) -> Option<u64> {
    let status: serde_json::Value = serde_json::from_str(&http_get(http, "/status")?).ok()?;
    status["head_height"].as_u64()
}

struct Syncer {
    child: Child,
    http: SocketAddr,
    _data: tempfile::TempDir,
}

impl Drop for Syncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How a variant run differs from a plain one: an environment variable for the syncing
/// process, another `headway` binary, or both.
#[derive(Default)]
struct Variant {
    env: Option<(String, String)>,
    bin: Option<std::path::PathBuf>,
}

impl Variant {
    fn from_env() -> Option<Variant> {
        let env = std::env::var("SYNC_SYNCER_ENV").ok().and_then(|v| {
            let (name, value) = v.split_once('=')?;
            Some((name.to_string(), value.to_string()))
        });
        let bin = std::env::var_os("SYNC_SYNCER_BIN").map(std::path::PathBuf::from);
        (env.is_some() || bin.is_some()).then_some(Variant { env, bin })
    }

    fn label(&self) -> String {
        let mut label = String::new();
        if let Some((name, value)) = &self.env {
            label += &format!(", {name}={value}");
        }
        if let Some(bin) = &self.bin {
            label += &format!(", binary {}", bin.display());
        }
        label
    }
}

fn spawn_syncer(
    genesis_file: &Path,
    bootnodes: &[Multiaddr],
    variant: Option<&Variant>,
) -> Result<Syncer> {
    let data = tempfile::tempdir()?;
    let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut command = node_command(genesis_file, data.path(), bootnodes, http, "warn");
    if let Some(variant) = variant {
        if let Some(bin) = &variant.bin {
            let mut other = std::process::Command::new(bin);
            other.args(command.get_args());
            for (name, value) in command.get_envs() {
                if let Some(value) = value {
                    other.env(name, value);
                }
            }
            command = other;
        }
        if let Some((name, value)) = &variant.env {
            command.env(name, value);
        }
    }
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("spawning headway node")?;
    Ok(Syncer {
        child,
        http,
        _data: data,
    })
}

/// CPU seconds (user + system) from a `/proc/.../stat` file.
fn stat_cpu_secs(path: impl AsRef<Path>) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    let close = stat.rfind(')')?;
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// `(RSS kB, CPU seconds)` of a process, from /proc.
fn proc_usage(pid: u32) -> (u64, f64) {
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0);
    let cpu = stat_cpu_secs(format!("/proc/{pid}/stat")).unwrap_or(f64::NAN);
    (rss, cpu)
}

/// CPU seconds of each live thread of a process, summed by thread name (threads that have
/// exited, like `verify_range`'s scoped workers, are only in the process total).
fn thread_usage(pid: u32) -> Vec<(String, f64)> {
    let mut by_name: Vec<(String, f64)> = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by_name;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let Some(secs) = stat_cpu_secs(path.join("stat")) else {
            continue;
        };
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let name = name.trim().to_string();
        match by_name.iter_mut().find(|(n, _)| *n == name) {
            Some((_, cpu)) => *cpu += secs,
            None => by_name.push((name, secs)),
        }
    }
    by_name.sort_by(|a, b| b.1.total_cmp(&a.1));
    by_name
}

struct Run {
    secs: f64,
    /// When the first synced block was seen stored, and the height then: the node has started
    /// and the pipeline has filled.
    first: Option<(f64, u64)>,
    cpu_secs: f64,
    /// CPU seconds of this process meanwhile: the serving nodes (the bench's own polling is
    /// a request every 20 ms).
    server_cpu_secs: f64,
    /// `(height, RSS kB)` samples.
    rss: Vec<(u64, u64)>,
}

/// Syncs a fresh node from `bootnodes` up to `blocks`; polls its height and RSS.
fn sync_once(
    genesis_file: &Path,
    bootnodes: &[Multiaddr],
    blocks: u64,
    variant: Option<&Variant>,
) -> Result<Run> {
    let started = Instant::now();
    let (_, server_cpu_before) = proc_usage(std::process::id());
    let mut syncer = spawn_syncer(genesis_file, bootnodes, variant)?;
    let pid = syncer.child.id();
    let deadline = started + Duration::from_secs(1_800);
    let mut rss = Vec::new();
    let mut height = 0;
    let mut first = None;
    loop {
        if let Some(h) = head_height(syncer.http) {
            height = h;
            if h > 0 && first.is_none() {
                first = Some((started.elapsed().as_secs_f64(), h));
            }
        }
        let (kb, _) = proc_usage(pid);
        rss.push((height, kb));
        if height >= blocks {
            break;
        }
        if let Some(status) = syncer.child.try_wait()? {
            bail!("the syncing node exited: {status}");
        }
        if Instant::now() > deadline {
            bail!("not synced after 30 minutes (at {height})");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let secs = started.elapsed().as_secs_f64();
    let (_, cpu_secs) = proc_usage(pid);
    let threads = thread_usage(pid);
    let live: f64 = threads.iter().map(|(_, cpu)| cpu).sum();
    let threads: Vec<String> = threads
        .iter()
        .map(|(name, cpu)| format!("{name} {cpu:.2}"))
        .collect();
    eprintln!(
        "  syncer threads (CPU s): {}, exited threads {:.2}",
        threads.join(", "),
        cpu_secs - live
    );
    let (_, server_cpu_after) = proc_usage(std::process::id());
    Ok(Run {
        secs,
        first,
        cpu_secs,
        server_cpu_secs: server_cpu_after - server_cpu_before,
        rss,
    })
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and expects no work.
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let blocks: u64 = env("SYNC_BLOCKS", 10_000);
    let validators: usize = env("SYNC_VALIDATORS", 100);
    let runs: usize = env("SYNC_RUNS", 3);
    let rss_blocks: u64 = env("SYNC_RSS_BLOCKS", 0);
    let rss_validators: usize = env("SYNC_RSS_VALIDATORS", 4);

    let chain = generate(validators, blocks)?;
    let (genesis_state, headers) = load_headers(&chain)?;
    // bound[0], bound[1]: verify_range on 1 and 2 threads; bound[2]: the checker's batches on
    // 2 threads. The sync is compared with the faster 2-thread one.
    let mut bound = [f64::MAX; 3];
    for _ in 0..runs {
        for (i, threads) in [1, 2, 2].into_iter().enumerate() {
            let (_, cpu_before) = proc_usage(std::process::id());
            let secs = if i < 2 {
                verify_all(&genesis_state, &headers, threads)
            } else {
                check_all(&genesis_state, &headers, threads)
            };
            let (_, cpu_after) = proc_usage(std::process::id());
            let what = if i < 2 {
                "verify_range"
            } else {
                "checker batches"
            };
            eprintln!(
                "bound, {what}, {threads} thread(s): {secs:.2} s, CPU {:.2} s",
                cpu_after - cpu_before
            );
            bound[i] = bound[i].min(secs);
        }
    }
    let best2 = bound[1].min(bound[2]);

    let runtime: Runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("hw-serve")
        .enable_all()
        .build()?;
    let copy = chain.copy()?;
    let a = runtime.block_on(serve(&chain.genesis, chain.dir.path()))?;
    let b = runtime.block_on(serve(&chain.genesis, copy.path()))?;
    let genesis_file = chain.dir.path().join(GENESIS_FILE);

    let variant = Variant::from_env();
    let variants: Vec<Option<&Variant>> = match &variant {
        Some(v) => vec![None, Some(v)],
        None => vec![None],
    };
    let label = |v: Option<&Variant>| v.map(Variant::label).unwrap_or_default();

    // results[(peers, variant)] = best run; paired[(peers, variant)] = for every run, the
    // 2-thread bound measured just before it over the run's time: the machine's speed drifts
    // by more than 10% within one invocation, and a bound taken next to each run follows it.
    let mut results: Vec<(usize, usize, Run)> = Vec::new();
    let mut paired: Vec<(usize, usize, Vec<f64>)> = Vec::new();
    for peers in [1usize, 2] {
        let bootnodes: Vec<Multiaddr> = [&a, &b][..peers]
            .iter()
            .map(|n| n.listen[0].clone())
            .collect();
        let mut best: Vec<Option<Run>> = variants.iter().map(|_| None).collect();
        let mut ratios: Vec<Vec<f64>> = variants.iter().map(|_| Vec::new()).collect();
        for _ in 0..runs {
            for (v, variant) in variants.iter().enumerate() {
                let next_bound = verify_all(&genesis_state, &headers, 2).min(check_all(
                    &genesis_state,
                    &headers,
                    2,
                ));
                let run = sync_once(&genesis_file, &bootnodes, blocks, *variant)?;
                ratios[v].push(next_bound / run.secs);
                eprintln!("  bound just before: {next_bound:.2} s");
                eprintln!(
                    "{peers} peer(s){}: {blocks} blocks in {:.2} s (first block at {:.2} s), syncer CPU {:.2} s, servers' CPU {:.2} s",
                    label(*variant),
                    run.secs,
                    run.first.map_or(f64::NAN, |(t, _)| t),
                    run.cpu_secs,
                    run.server_cpu_secs
                );
                if best[v].as_ref().is_none_or(|b| run.secs < b.secs) {
                    best[v] = Some(run);
                }
            }
        }
        for (v, run) in best.into_iter().enumerate() {
            results.push((peers, v, run.context("at least one run")?));
        }
        for (v, r) in ratios.into_iter().enumerate() {
            paired.push((peers, v, r));
        }
    }
    drop(headers);

    let rate = |secs: f64| blocks as f64 / secs;
    println!("\nblocks: {blocks}, validators: {validators}, best of {runs} runs\n");
    println!("| what | time | blocks/s | ratio to the faster 2-thread bound | from the first block stored: blocks/s, ratio |");
    println!("|---|---|---|---|---|");
    println!(
        "| bound: verify_range, ranges of {RANGE}, 1 thread | {:.2} s | {:.0} | {:.0}% | |",
        bound[0],
        rate(bound[0]),
        100.0 * best2 / bound[0]
    );
    println!(
        "| bound: verify_range, ranges of {RANGE}, 2 threads (each range split in two) | {:.2} s | {:.0} | {:.0}% | |",
        bound[1],
        rate(bound[1]),
        100.0 * best2 / bound[1]
    );
    println!(
        "| bound: the checker's batches, 2 threads taking whole ranges | {:.2} s | {:.0} | {:.0}% | |",
        bound[2],
        rate(bound[2]),
        100.0 * best2 / bound[2]
    );
    for (peers, v, run) in &results {
        let setting = label(variants[*v]);
        let steady = run.first.map_or("n/a".to_string(), |(t, h)| {
            let r = (blocks - h) as f64 / (run.secs - t);
            format!("{r:.0}, {:.0}%", 100.0 * r / rate(best2))
        });
        println!(
            "| `headway node` synced from {peers} peer(s){setting} | {:.2} s | {:.0} | {:.0}% (syncer CPU {:.2} s = {:.2} cores; servers {:.2} s) | {steady} |",
            run.secs,
            rate(run.secs),
            100.0 * best2 / run.secs,
            run.cpu_secs,
            run.cpu_secs / run.secs,
            run.server_cpu_secs
        );
    }

    println!("\nEach run against the faster 2-thread bound measured just before it:\n");
    println!("| what | ratio per run | median |");
    println!("|---|---|---|");
    for (peers, v, mut r) in paired {
        let list: Vec<String> = r.iter().map(|x| format!("{:.0}%", 100.0 * x)).collect();
        r.sort_by(f64::total_cmp);
        println!(
            "| synced from {peers} peer(s){} | {} | {:.0}% |",
            label(variants[v]),
            list.join(", "),
            100.0 * r[r.len() / 2]
        );
    }

    if rss_blocks > 0 {
        let big = generate(rss_validators, rss_blocks)?;
        let server = runtime.block_on(serve(&big.genesis, big.dir.path()))?;
        for variant in &variants {
            let run = sync_once(
                &big.dir.path().join(GENESIS_FILE),
                &[server.listen[0].clone()],
                rss_blocks,
                *variant,
            )?;
            let peak_until = |h: u64| {
                run.rss
                    .iter()
                    .filter(|(height, _)| *height <= h)
                    .map(|(_, kb)| *kb)
                    .max()
                    .unwrap_or(0)
            };
            println!(
                "\nRSS while syncing {rss_blocks} blocks ({rss_validators} validators, 1 peer{}, {:.1} s, {:.0} blocks/s):\n",
                label(*variant),
                run.secs,
                rss_blocks as f64 / run.secs
            );
            println!("| blocks synced up to | peak RSS of the syncing process |");
            println!("|---|---|");
            for tenth in [1u64, 2, 5, 10] {
                let h = rss_blocks * tenth / 10;
                println!("| {h} | {:.1} MiB |", peak_until(h) as f64 / 1024.0);
            }
        }
        runtime.block_on(server.stop())?;
    }
    runtime.block_on(async {
        a.stop().await?;
        b.stop().await
    })?;
    Ok(())
}
