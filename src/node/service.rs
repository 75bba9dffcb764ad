//! The node: one tokio task that owns consensus, the mempool and the network, and moves
//! inputs and outputs between them, the store and the HTTP API.
//!
//! Everything that decides lives in sans-I/O machines (`consensus`, `mempool`, `net::peers`,
//! `verify`); this file only carries out their outputs: gossip, timers, store writes,
//! responses. Catching up is the block-sync machine's (`crate::sync`, driven by
//! [`super::sync_driver`]): parallel ranges from several peers, verified and written in batches;
//! the consensus tip follows the store after each batch. Warp sync is not wired in yet.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::api::{self, ApiState, Command, NodeStatus, SubmitError};
use super::config::NodeConfig;
use super::consensus::{
    ChainTip, Consensus, ConsensusConfig, Input, Message, Output, SignState, Timeout, TimeoutConfig,
};
use super::dishonest::{self, Dishonest};
use super::keys;
use super::mempool::{Mempool, MempoolConfig, MempoolError};
use super::metrics::{KindLabel, Metrics, ProtocolLabel};
use super::now_ms;
use super::serve::serve;
use super::sync_driver::{append_new, status_after_handshake, Ctx, SyncDriver, Written};
use super::warp;
use crate::chain::{Checkpoint, Decode, Encode, EventId, FinalizedBlock, Genesis, SignedEvent};
use crate::crypto::ed25519::SigningKey;
use crate::net::{keypair_from_seed, NetEvent, Network, NetworkConfig, PublishError, RequestId};
use crate::protocol::gossip::GossipMessage;
use crate::protocol::status::Status;
use crate::protocol::Response;
use crate::store::{ChainStore, RedbStore};
use crate::sync::{SyncOptions, SyncState};
use crate::verify::{TrustedState, Verifier};

const META_NODE_KEY: &str = "node_key";
const META_WEBRTC_CERT: &str = "webrtc_certificate_pem";
/// The last message the validator key signed ([`SignState`]), written before it is sent.
pub const META_SIGN_STATE: &str = "sign_state";
const COMMAND_QUEUE: usize = 1024;

/// A running node.
pub struct NodeHandle {
    pub peer_id: PeerId,
    /// libp2p addresses, with `/p2p/<peer id>` appended.
    pub listen: Vec<Multiaddr>,
    pub http: Option<SocketAddr>,
    pub commands: mpsc::Sender<Command>,
    pub status: watch::Receiver<NodeStatus>,
    pub store: Arc<dyn ChainStore>,
    pub metrics: Metrics,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<()>>,
    http_task: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl NodeHandle {
    /// Stops the node and waits until its store is closed.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some((stop_http, http)) = self.http_task.take() {
            // Graceful: stop accepting, let in-flight requests finish (they hold the store),
            // but do not wait forever on a client that keeps its connection busy.
            let _ = stop_http.send(());
            let abort = http.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), http)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        self.task.await.context("node task panicked")?
    }

    /// Submits an event as the HTTP API does.
    pub async fn submit(&self, event: SignedEvent) -> Result<EventId, SubmitError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::SubmitEvent {
                event: Box::new(event),
                reply,
            })
            .await
            .map_err(|_| SubmitError::Unavailable)?;
        answer.await.map_err(|_| SubmitError::Unavailable)?
    }

    pub fn head_height(&self) -> u64 {
        self.status.borrow().head_height
    }

    /// The first listen address whose protocols contain `needle` (e.g. `"/ws"`, `"/webrtc-direct"`).
    pub fn addr_with(&self, needle: &str) -> Option<&Multiaddr> {
        self.listen.iter().find(|a| a.to_string().contains(needle))
    }
}

/// The consensus settings for a node's configured timeouts.
pub fn consensus_config(c: &super::config::ConsensusTimeouts) -> ConsensusConfig {
    ConsensusConfig {
        propose: TimeoutConfig {
            base_ms: c.propose_ms,
            delta_ms: c.propose_delta_ms,
        },
        prevote: TimeoutConfig {
            base_ms: c.vote_ms,
            delta_ms: c.vote_delta_ms,
        },
        precommit: TimeoutConfig {
            base_ms: c.vote_ms,
            delta_ms: c.vote_delta_ms,
        },
        ..ConsensusConfig::default()
    }
}

fn load_or_create_seed(store: &dyn ChainStore, key: &str) -> Result<[u8; 32]> {
    if let Some(bytes) = store.get_meta(key)? {
        return bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("stored {key} is not 32 bytes"));
    }
    let seed = rand::random::<[u8; 32]>();
    store.put_meta(key, &seed)?;
    Ok(seed)
}

/// The validator's stored [`SignState`], checked: a record that does not decode, or that this
/// key did not sign on this chain, stops the node (a validator that does not know what it
/// signed could sign something conflicting). Nothing is read for a node without a key.
pub fn load_sign_state(
    store: &dyn ChainStore,
    genesis: &Genesis,
    key: Option<&SigningKey>,
) -> Result<Option<SignState>> {
    let Some(key) = key else { return Ok(None) };
    let Some(bytes) = store.get_meta(META_SIGN_STATE)? else {
        return Ok(None);
    };
    let state = SignState::decode(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "the stored record of what this validator signed (store meta {META_SIGN_STATE:?}) \
             is corrupt: {e}; refusing to start a validator that could sign twice"
        )
    })?;
    if !state.is_signed_by(genesis, &key.public_key()) {
        let (height, round, step) = state.point();
        bail!(
            "the stored record of what this validator signed (store meta {META_SIGN_STATE:?}, \
             height {height}, round {round}, {step:?}) was not signed by this validator key on \
             chain {}; refusing to start: use this data directory with the key that signed it",
            genesis.chain_id
        );
    }
    Ok(Some(state))
}

/// The status a node with this store head announces.
fn status_at(head: &crate::store::Head, lowest_height: u64, syncing: bool) -> Status {
    Status {
        head_height: head.height,
        head_hash: head.hash,
        mmr_root: head.peaks.root(),
        lowest_height,
        syncing,
    }
}

/// The status of a store's head; `None` for an empty store.
fn store_status(store: &dyn ChainStore, syncing: bool) -> Result<Option<Status>> {
    Ok(match store.head()? {
        Some(head) => Some(status_at(&head, store.lowest_height()?, syncing)),
        None => None,
    })
}

/// Opens the store and checks it is this chain's. An empty store is initialized with the
/// genesis block, unless the node warp-syncs (`warp_from`): then it stays empty until the
/// snapshot is installed. A store that holds the warp checkpoint's height must hold the
/// checkpoint's block there.
pub fn open_store(
    data_dir: &std::path::Path,
    genesis: &Genesis,
    warp_from: Option<&Checkpoint>,
) -> Result<Arc<RedbStore>> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data dir {}", data_dir.display()))?;
    let store = RedbStore::open(data_dir.join("chain.redb"))
        .with_context(|| format!("opening the store in {}", data_dir.display()))?;
    let genesis_block = genesis.block();
    let Some(head) = store.head()? else {
        if warp_from.is_none() {
            store.append(std::slice::from_ref(&genesis_block))?;
        }
        return Ok(Arc::new(store));
    };
    // The lowest stored header: genesis, or the snapshot a warp sync started from.
    let base = store.lowest_height()?.min(head.height);
    let Some(first) = store.header(base)? else {
        bail!(
            "{}: corrupt store: no header at its lowest height {base}",
            data_dir.display()
        );
    };
    if first.header.chain_id != genesis.chain_id
        || (base == 0 && first.header.hash() != genesis_block.block.header.hash())
    {
        bail!(
            "{} holds chain {} from block {} at height {base}, not this genesis ({}, {})",
            data_dir.display(),
            first.header.chain_id,
            first.header.hash(),
            genesis.chain_id,
            genesis_block.block.header.hash()
        );
    }
    if let Some(cp) = warp_from {
        if let Some(stored) = store.header(cp.height)? {
            if stored.header.hash() != cp.block_hash {
                bail!(
                    "{} holds block {} at height {}, the warp checkpoint names {}",
                    data_dir.display(),
                    stored.header.hash(),
                    cp.height,
                    cp.block_hash
                );
            }
        }
        tracing::info!(
            head = head.height,
            "the store is not empty: warp checkpoint ignored, resuming from the store head"
        );
    }
    Ok(Arc::new(store))
}

/// Starts a node from its configuration; returns once it listens.
pub async fn start_node(config: NodeConfig) -> Result<NodeHandle> {
    let genesis_text = std::fs::read_to_string(&config.genesis)
        .with_context(|| format!("reading genesis {}", config.genesis.display()))?;
    let genesis = Genesis::from_json(&genesis_text)
        .with_context(|| format!("genesis {}", config.genesis.display()))?;
    let validator_key = match &config.validator_key {
        Some(path) => Some(keys::read_key_file(path)?),
        None => None,
    };
    let listen = config
        .listen
        .iter()
        .map(|a| a.parse().with_context(|| format!("listen address {a:?}")))
        .collect::<Result<Vec<Multiaddr>>>()?;
    let bootnodes = config
        .bootnodes
        .iter()
        .map(|a| a.parse().with_context(|| format!("bootnode {a:?}")))
        .collect::<Result<Vec<Multiaddr>>>()?;
    let websocket_tls = config.websocket_tls()?;
    let warp_from = config.warp_checkpoint()?;
    let trusted_peers = config
        .trusted_peers
        .iter()
        .map(|p| p.parse().with_context(|| format!("trusted peer id {p:?}")))
        .collect::<Result<Vec<PeerId>>>()?;
    let sync_options = SyncOptions {
        mode: config.sync_mode.into(),
        ..SyncOptions::default()
    };
    let params = NodeParams {
        data_dir: config.data_dir,
        genesis,
        validator_key,
        listen,
        bootnodes,
        http: config.http,
        consensus: consensus_config(&config.consensus),
        block_interval_ms: config.consensus.block_interval_ms,
        www: config.www,
        dishonest: config.dishonest,
        warp_from,
        trusted_peers,
    };
    start_with_sync(params, websocket_tls, sync_options).await
}

/// A node's parameters, already parsed (the devnet builds these directly).
pub struct NodeParams {
    pub data_dir: PathBuf,
    pub genesis: Genesis,
    pub validator_key: Option<SigningKey>,
    pub listen: Vec<Multiaddr>,
    pub bootnodes: Vec<Multiaddr>,
    pub http: Option<SocketAddr>,
    pub consensus: ConsensusConfig,
    /// Minimum time between a block and the next (empty blocks included).
    pub block_interval_ms: u64,
    pub www: Option<PathBuf>,
    /// Test only: lie in answers to peers this way (see [`super::dishonest`]). `None` for
    /// every real node.
    pub dishonest: Option<Dishonest>,
    /// Warp sync: with an empty data directory, start the chain at this checkpoint's snapshot
    /// (fetched from peers and checked against it) instead of at genesis. Ignored once the
    /// store holds blocks.
    pub warp_from: Option<Checkpoint>,
    /// Peers block sync prefers (see [`super::config::NodeConfig::trusted_peers`]).
    pub trusted_peers: Vec<PeerId>,
}

pub async fn start(params: NodeParams) -> Result<NodeHandle> {
    start_with_tls(params, None).await
}

/// [`start`], serving `websocket_tls`'s certificate on `/tls/ws` listen addresses.
pub async fn start_with_tls(
    params: NodeParams,
    websocket_tls: Option<crate::net::TlsConfig>,
) -> Result<NodeHandle> {
    start_with_sync(params, websocket_tls, SyncOptions::default()).await
}

/// [`start_with_tls`] with these block-sync settings (mode, batch sizes, timeouts).
pub async fn start_with_sync(
    params: NodeParams,
    websocket_tls: Option<crate::net::TlsConfig>,
    sync_options: SyncOptions,
) -> Result<NodeHandle> {
    let genesis = Arc::new(params.genesis);
    if let Some(cp) = &params.warp_from {
        warp::check_checkpoint(cp, &genesis)?;
    }
    let store = open_store(&params.data_dir, &genesis, params.warp_from.as_ref())?;
    let sign_state = load_sign_state(&*store, &genesis, params.validator_key.as_ref())?;
    let metrics = Metrics::new();

    let node_seed = load_or_create_seed(&*store, META_NODE_KEY)?;
    let keypair = keypair_from_seed(node_seed);
    let genesis_hash = genesis.block().block.header.hash();
    let status = match store_status(&*store, false)? {
        Some(status) => status,
        None => warp::empty_status(genesis_hash),
    };
    let mut net_config =
        NetworkConfig::new(keypair, genesis.chain_id.clone(), genesis_hash, status);
    net_config.listen = params.listen;
    let bootnodes: Vec<Bootnode> = params
        .bootnodes
        .iter()
        .filter_map(|addr| {
            let peer = crate::net::peer_of(addr)?;
            Some(Bootnode {
                addr: addr.clone(),
                peer,
                failures: 0,
                // The network dials every bootnode at start: give that dial time first.
                next_dial_ms: now_ms().saturating_add(2 * REDIAL_CHECK_MS),
            })
        })
        .collect();
    net_config.bootnodes = params.bootnodes;
    net_config.websocket_tls = websocket_tls;
    net_config.webrtc_certificate_pem = store
        .get_meta(META_WEBRTC_CERT)?
        .and_then(|b| String::from_utf8(b).ok());
    let (mut network, new_pem) = Network::new(net_config).await?;
    if let Some(pem) = new_pem {
        store.put_meta(META_WEBRTC_CERT, pem.as_bytes())?;
    }
    let warped = store.head()?.is_none();
    if warped {
        let checkpoint = params
            .warp_from
            .clone()
            .context("an empty store without a warp checkpoint")?;
        // Stopping during warp sync is the caller's: it drops this future (`run_node`).
        warp::warp_sync(&mut network, &*store, &genesis, checkpoint, &metrics).await?;
    }
    let head = store.head()?.context("store has no head after init")?;
    let head_header = store.header(head.height)?.context("head header missing")?;
    if warped {
        network.set_status(store_status(&*store, false)?.context("store head after warp")?);
    }
    let peer_id = network.local_peer_id();
    let listen: Vec<Multiaddr> = network
        .listen_addrs()
        .iter()
        .map(|a| a.clone().with_p2p(peer_id).unwrap_or_else(|a| a))
        .collect();

    let tip = ChainTip::new(head_header.header.clone(), head.peaks.clone())
        .map_err(|e| anyhow::anyhow!("store head: {e}"))?;
    let now = now_ms();
    let mut sync = SyncDriver::new(store.clone(), genesis.clone(), sync_options, now)?;
    sync.set_trusted(params.trusted_peers.iter().copied());
    if warped {
        // The peers met during warp sync: block sync starts with them at once.
        sync.reanchor(&*store, &network, now);
    }
    let consensus_config = params.consensus.clone();
    let (consensus, first) = Consensus::new(
        params.consensus,
        &genesis,
        params.validator_key.clone(),
        tip,
        sign_state,
        now,
    )
    .map_err(|e| anyhow::anyhow!("consensus: {e}"))?;

    let (commands_tx, commands_rx) = mpsc::channel(COMMAND_QUEUE);
    let (status_tx, status_rx) = watch::channel(NodeStatus {
        chain_id: genesis.chain_id.to_string(),
        peer_id: peer_id.to_string(),
        head_height: head.height,
        head_hash: head.hash.to_hex(),
        finalized_height: head.height,
        lowest_height: store.lowest_height()?,
        state: "connecting".into(),
        syncing: false,
        peers: 0,
        mempool: 0,
        validator: params.validator_key.is_some(),
        listen: listen.iter().map(ToString::to_string).collect(),
        sync: Some(sync.status()),
    });
    metrics.head_height.set(head.height as i64);
    metrics.finalized_height.set(head.height as i64);

    let store_dyn: Arc<dyn ChainStore> = store.clone();
    let (http, http_task) = match params.http {
        Some(addr) => {
            let state = ApiState {
                store: store_dyn.clone(),
                genesis: genesis.clone(),
                commands: commands_tx.clone(),
                status: status_rx.clone(),
                metrics: metrics.clone(),
            };
            let mut app = api::router(state);
            if let Some(www) = &params.www {
                app = app.fallback_service(tower_http::services::ServeDir::new(www));
            }
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the HTTP API on {addr}"))?;
            let bound = listener.local_addr()?;
            let (stop_http, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(async move {
                let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                    let _ = stopped.await;
                });
                if let Err(e) = serve.await {
                    tracing::error!(error = %e, "HTTP API stopped");
                }
            });
            tracing::info!(%bound, "HTTP API listening");
            (Some(bound), Some((stop_http, task)))
        }
        None => (None, None),
    };

    let (stop_tx, stop_rx) = oneshot::channel();
    let mut node = NodeLoop {
        store: store.clone(),
        genesis,
        network,
        consensus,
        mempool: Mempool::new(MempoolConfig::default()),
        metrics: metrics.clone(),
        status: status_tx,
        commands: commands_rx,
        timers: BinaryHeap::new(),
        timer_seq: 0,
        pending_events: None,
        ungossiped: Vec::new(),
        block_interval_ms: params.block_interval_ms,
        last_position: (0, 0),
        sync,
        sync_writing: false,
        consensus_config,
        validator_key: params.validator_key,
        state: "connecting",
        signing_failed: false,
        dishonest: params.dishonest,
        withheld: Vec::new(),
        bootnodes,
    };
    if !node.bootnodes.is_empty() {
        node.schedule(now.saturating_add(REDIAL_CHECK_MS), Timer::Redial);
    }
    if let Some(mode) = params.dishonest {
        tracing::warn!(
            ?mode,
            "TEST ONLY: this node tampers with the answers it serves"
        );
    }
    node.apply(first);
    let task = tokio::spawn(async move { node.run(stop_rx).await });
    tracing::info!(%peer_id, addrs = ?listen, "node started");
    Ok(NodeHandle {
        peer_id,
        listen,
        http,
        commands: commands_tx,
        status: status_rx,
        store: store_dyn,
        metrics,
        stop: Some(stop_tx),
        task,
        http_task,
    })
}

/// Runs a node until `shutdown` resolves.
pub async fn run_node(config: NodeConfig, shutdown: impl Future<Output = ()>) -> Result<()> {
    let addr_file = config.addr_file.clone();
    let mut shutdown = std::pin::pin!(shutdown);
    // Start can take long (a warp sync waits for a peer that serves its checkpoint): Ctrl-C
    // stops it too.
    let node = tokio::select! {
        node = start_node(config) => node?,
        _ = &mut shutdown => {
            tracing::info!("stopped before the node started");
            return Ok(());
        }
    };
    for addr in &node.listen {
        println!("listening on {addr}");
    }
    if let Some(path) = &addr_file {
        write_addr_file(path, &node.listen)?;
    }
    if let Some(http) = node.http {
        println!("HTTP API on http://{http}");
    }
    let bar = spawn_progress_bar(node.status.clone());
    shutdown.await;
    tracing::info!("shutting down");
    if let Some(bar) = bar {
        bar.abort();
    }
    node.stop().await
}

/// A progress bar on stdout while the node catches up (`headway node` in a terminal); nothing
/// when stdout is not a terminal (logs, scripts, services).
fn spawn_progress_bar(mut status: watch::Receiver<NodeStatus>) -> Option<JoinHandle<()>> {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let style = ProgressStyle::with_template(
        "{spinner} syncing [{bar:40}] {msg} ({percent}%) {per_sec} ETA {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    Some(tokio::spawn(async move {
        let mut bar: Option<ProgressBar> = None;
        loop {
            let sync = status.borrow_and_update().sync.clone();
            match sync {
                Some(p) if p.state == "syncing" => {
                    let b = bar.get_or_insert_with(|| {
                        let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
                        b.set_style(style.clone());
                        b.enable_steady_tick(Duration::from_millis(200));
                        b
                    });
                    b.set_length(p.target.saturating_sub(p.start).max(1));
                    b.set_position(p.current.saturating_sub(p.start));
                    b.set_message(format!("{}/{} blocks", p.current, p.target));
                }
                Some(p) => {
                    if let Some(b) = bar.take() {
                        b.finish_and_clear();
                        println!("synced at height {} ({})", p.current, p.state);
                    }
                }
                None => {}
            }
            if status.changed().await.is_err() {
                break;
            }
        }
    }))
}

/// Writes `addrs` one per line to `path` atomically (a temporary file in the same folder,
/// then a rename), so a script that waits for the file never reads half of it.
pub fn write_addr_file(path: &std::path::Path, addrs: &[Multiaddr]) -> Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("--addr-file {} has no file name", path.display()))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let text: String = addrs.iter().map(|a| format!("{a}\n")).collect();
    std::fs::write(&temp, text).with_context(|| format!("writing {}", temp.display()))?;
    std::fs::rename(&temp, path)
        .with_context(|| format!("renaming {} to {}", temp.display(), path.display()))
}

/// Builds a tokio runtime and runs `f` with a future that resolves on Ctrl-C (or SIGTERM).
pub fn block_on_until_ctrl_c<F, Fut>(f: F) -> Result<()>
where
    F: FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async move {
        let shutdown = Box::pin(async {
            #[cfg(unix)]
            {
                let mut term =
                    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    {
                        Ok(s) => s,
                        Err(_) => {
                            let _ = tokio::signal::ctrl_c().await;
                            return;
                        }
                    };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            #[cfg(not(unix))]
            {
                let _ = tokio::signal::ctrl_c().await;
            }
        });
        f(shutdown).await
    })
}

/// What a timer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Consensus(TimeoutKey),
    /// Answer consensus' `NeedEvents` (held back to keep the block interval).
    ProposeEvents,
    /// Dial the bootnodes that are not connected (see [`Bootnode`]).
    Redial,
}

/// How often the node checks its bootnode connections.
const REDIAL_CHECK_MS: u64 = 2_000;
/// Longest wait between two dials of one disconnected bootnode.
const REDIAL_MAX_MS: u64 = 60_000;

/// A configured bootnode. A node whose bootnodes restart or drop it would otherwise sit alone
/// (there is no peer discovery): it dials them again, backing off exponentially while they stay
/// unreachable, and never while one is banned.
struct Bootnode {
    addr: Multiaddr,
    peer: PeerId,
    failures: u32,
    next_dial_ms: u64,
}

/// `Timeout` made orderable for the heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct TimeoutKey {
    height: u64,
    round: u32,
    kind: u8,
}

fn timeout_key(t: &Timeout) -> TimeoutKey {
    use super::consensus::TimeoutKind::*;
    TimeoutKey {
        height: t.height,
        round: t.round,
        kind: match t.kind {
            Propose => 0,
            Prevote => 1,
            Precommit => 2,
            Rebroadcast => 3,
        },
    }
}

fn timeout_of(k: &TimeoutKey) -> Timeout {
    use super::consensus::TimeoutKind::*;
    Timeout {
        height: k.height,
        round: k.round,
        kind: match k.kind {
            0 => Propose,
            1 => Prevote,
            2 => Precommit,
            _ => Rebroadcast,
        },
    }
}

/// What the sync driver needs of the node loop, borrowed field by field.
macro_rules! sync_ctx {
    ($node:ident) => {
        Ctx {
            network: &mut $node.network,
            store: &*$node.store,
            metrics: &$node.metrics,
        }
    };
}

struct NodeLoop {
    store: Arc<RedbStore>,
    genesis: Arc<Genesis>,
    network: Network,
    consensus: Consensus,
    mempool: Mempool,
    metrics: Metrics,
    status: watch::Sender<NodeStatus>,
    commands: mpsc::Receiver<Command>,
    /// Min-heap of (due ms, sequence, timer).
    timers: BinaryHeap<Reverse<(u64, u64, Timer)>>,
    timer_seq: u64,
    /// `NeedEvents` waiting for the block interval: (height, round, max events, max bytes).
    pending_events: Option<(u64, u32, usize, usize)>,
    /// Events accepted by `submit` whose gossip failed (e.g. no peer subscribed yet, just
    /// after start): published again on the next finalized block or new peer, while pending.
    ungossiped: Vec<SignedEvent>,
    block_interval_ms: u64,
    /// Consensus (height, round) at the last status update, for the skipped-rounds metric.
    last_position: (u64, u32),
    /// Block sync: catching up from several peers (see [`super::sync_driver`]).
    sync: SyncDriver,
    /// Blocks the sync machine wrote are being handed to consensus: they are stored already
    /// and not gossiped.
    sync_writing: bool,
    /// To rebuild consensus on a new tip after a synced batch.
    consensus_config: ConsensusConfig,
    validator_key: Option<SigningKey>,
    state: &'static str,
    /// A record of what this node signed could not be stored: it sends no consensus message
    /// any more (it still follows the chain) until restarted.
    signing_failed: bool,
    /// Test only: how this node lies in its answers ([`dishonest::tamper`]).
    dishonest: Option<Dishonest>,
    /// Test only ([`Dishonest::Stall`]): requests held unanswered.
    withheld: Vec<crate::net::InboundId>,
    bootnodes: Vec<Bootnode>,
}

impl NodeLoop {
    async fn run(&mut self, mut stop: oneshot::Receiver<()>) -> Result<()> {
        loop {
            let next_due = self.timers.peek().map(|Reverse((at, _, _))| *at);
            let next_due = match (next_due, self.sync.next_deadline_ms()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let sleep = match next_due {
                Some(at) => Duration::from_millis(at.saturating_sub(now_ms())),
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = &mut stop => break,
                event = self.network.next_event() => self.on_net(event),
                finished = self.sync.next_finished() => {
                    let written = self.sync.finished(finished, sync_ctx!(self));
                    self.after_sync_written(written);
                    self.publish_status();
                }
                Some(command) = self.commands.recv() => self.on_command(command),
                _ = tokio::time::sleep(sleep) => {
                    self.fire_timers();
                    if self.sync.next_deadline_ms().is_some_and(|at| at <= now_ms()) {
                        self.sync.tick(sync_ctx!(self));
                        self.publish_status();
                    }
                }
            }
        }
        tracing::info!("node loop stopped");
        Ok(())
    }

    fn schedule(&mut self, at_ms: u64, timer: Timer) {
        self.timer_seq += 1;
        self.timers.push(Reverse((at_ms, self.timer_seq, timer)));
    }

    fn fire_timers(&mut self) {
        let now = now_ms();
        while let Some(Reverse((at, _, timer))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            match timer {
                Timer::Consensus(key) => {
                    let out = self.consensus.handle(Input::Timeout(timeout_of(&key)), now);
                    self.apply(out);
                }
                Timer::ProposeEvents => self.answer_events(),
                Timer::Redial => self.redial_bootnodes(now),
            }
        }
    }

    fn redial_bootnodes(&mut self, now: u64) {
        for b in &mut self.bootnodes {
            if self.network.is_connected(&b.peer) {
                b.failures = 0;
                b.next_dial_ms = now;
                continue;
            }
            if now < b.next_dial_ms
                || self
                    .network
                    .peer_book()
                    .is_banned(&b.peer, self.network.now())
            {
                continue;
            }
            b.failures = b.failures.saturating_add(1);
            let wait = REDIAL_CHECK_MS
                .saturating_mul(1 << b.failures.min(10))
                .min(REDIAL_MAX_MS);
            b.next_dial_ms = now.saturating_add(wait);
            tracing::debug!(addr = %b.addr, attempt = b.failures, "dialing a disconnected bootnode");
            if let Err(e) = self.network.dial(b.addr.clone()) {
                tracing::debug!(addr = %b.addr, error = %e, "bootnode not dialed");
            }
        }
        self.schedule(now.saturating_add(REDIAL_CHECK_MS), Timer::Redial);
    }

    fn answer_events(&mut self) {
        let Some((height, round, max_events, max_bytes)) = self.pending_events.take() else {
            return;
        };
        let events = self.mempool.take(max_events, max_bytes);
        let out = self.consensus.handle(
            Input::Events {
                height,
                round,
                events,
            },
            now_ms(),
        );
        self.apply(out);
    }

    /// Carries out consensus outputs (and the inputs they lead to) until none are left.
    fn apply(&mut self, outputs: Vec<Output>) {
        let mut queue: std::collections::VecDeque<Output> = outputs.into();
        while let Some(output) = queue.pop_front() {
            match output {
                Output::Persist(state) => {
                    if let Err(e) = self.store.put_meta(META_SIGN_STATE, &state.encode()) {
                        tracing::error!(
                            error = %e,
                            "cannot store what this validator signed: it stops sending consensus \
                             messages until restarted"
                        );
                        self.signing_failed = true;
                    }
                }
                Output::Broadcast(_) if self.signing_failed => {}
                Output::Broadcast(message) => {
                    if let Message::Vote(v) = &message {
                        if Some(v.validator_index) == self.consensus.validator_index() {
                            let kind = format!("{:?}", v.kind).to_lowercase();
                            self.metrics
                                .votes_signed
                                .get_or_create(&KindLabel { kind })
                                .inc();
                        }
                    }
                    let gossip = match &message {
                        Message::Proposal(_) => GossipMessage::Proposal(message.encode()),
                        Message::Vote(_) => GossipMessage::Vote(message.encode()),
                    };
                    if let Err(e) = self.network.publish(&gossip) {
                        tracing::trace!(error = %e, "consensus gossip not sent");
                    }
                }
                Output::ScheduleTimeout { timeout, at_ms } => {
                    self.schedule(at_ms, Timer::Consensus(timeout_key(&timeout)));
                }
                Output::NeedEvents {
                    height,
                    round,
                    max_events,
                    max_bytes,
                } => {
                    let parent = self.consensus.tip().header.timestamp_ms;
                    let due = parent.saturating_add(self.block_interval_ms).max(now_ms());
                    self.pending_events = Some((height, round, max_events, max_bytes));
                    self.schedule(due, Timer::ProposeEvents);
                }
                Output::Finalized(block) => match self.commit(&block) {
                    Ok(()) => {
                        let height = block.height();
                        self.return_abandoned_events();
                        queue.extend(self.consensus.handle(Input::Committed { height }, now_ms()));
                    }
                    Err(e) => {
                        // The block stays decided in consensus; the store refused it, which
                        // means a bug or a broken disk: stop making progress loudly.
                        tracing::error!(error = %e, height = block.height(), "cannot store a finalized block");
                    }
                },
                Output::Rejected { from, reason } => {
                    tracing::debug!(?from, %reason, "consensus rejected a message");
                    let kind = reason_kind(&reason.to_string());
                    self.metrics
                        .consensus_rejections
                        .get_or_create(&KindLabel { kind })
                        .inc();
                }
                Output::Evidence(evidence) => {
                    tracing::warn!(?evidence, "validator misbehaviour");
                }
            }
        }
        self.publish_status();
    }

    /// Stores a finalized block and updates everything that depends on the head.
    fn commit(&mut self, block: &FinalizedBlock) -> Result<()> {
        // Sync's writer thread may have stored this height already: then it must be this block.
        let started = Instant::now();
        if append_new(&*self.store, vec![block.clone()])?.is_some() {
            self.metrics
                .store_write_seconds
                .observe(started.elapsed().as_secs_f64());
        }
        let ids: Vec<EventId> = block.block.events.iter().map(SignedEvent::id).collect();
        self.mempool.remove_included(&ids);
        let height = block.height();
        self.metrics.head_height.set(height as i64);
        self.metrics.finalized_height.set(height as i64);
        self.metrics.mempool_size.set(self.mempool.len() as i64);
        if let Some(key) = &self.validator_key {
            if block.block.header.proposer == key.public_key() {
                self.metrics.blocks_produced.inc();
            }
        }
        let head = self.announce_head()?;
        if !self.sync_writing && !self.sync.is_catching_up() {
            // Tell peers at once (Soma's push): laggards learn the new height and sync.
            let _ = self
                .network
                .publish(&GossipMessage::Finalized(block.clone()));
        }
        if !self.sync_writing && self.sync.applied_height() < head.height {
            // The head moved without the sync machine (consensus decided, or a gossiped
            // block was accepted): it continues from the new head.
            self.sync.reanchor(&*self.store, &self.network, now_ms());
        }
        tracing::debug!(height, hash = %head.hash, events = ids.len(), "block finalized");
        self.retry_gossip();
        Ok(())
    }

    /// Tells the network our new head (what `Status` says to peers).
    fn announce_head(&mut self) -> Result<crate::store::Head> {
        let head = self.store.head()?.context("head after append")?;
        let syncing = self.sync.state() == SyncState::Syncing;
        self.network
            .set_status(status_at(&head, self.store.lowest_height()?, syncing));
        Ok(head)
    }

    /// Blocks the sync machine stored: consensus, the mempool and the announced head follow.
    /// One block right where consensus stands goes through consensus as a finalized block
    /// (keeping what it holds for the next height); a longer batch moves consensus to the new
    /// tip at once (rebuilt from the store head, with what this validator signed).
    fn after_sync_written(&mut self, written: Vec<Written>) {
        if written.is_empty() {
            return;
        }
        self.sync_writing = true;
        for Written { blocks } in written {
            let single = blocks.len() == 1 && blocks[0].height() == self.consensus.height();
            if single {
                let block = blocks.into_iter().next().expect("one block");
                let out = self
                    .consensus
                    .handle(Input::FinalizedFromPeer(Box::new(block)), now_ms());
                self.apply(out);
                continue;
            }
            for block in &blocks {
                let ids: Vec<EventId> = block.block.events.iter().map(SignedEvent::id).collect();
                self.mempool.remove_included(&ids);
            }
        }
        self.sync_writing = false;
        if let Err(e) = self.follow_store_head() {
            tracing::error!(error = %e, "cannot move consensus to the synced head");
        }
    }

    /// Moloch's "events return to the mempool": consensus is about to leave its height, which
    /// the store now holds. Every block proposed there that was not the one finalized is
    /// abandoned; its events that the chain did not include go back to the mempool, ahead of
    /// the rest, so they are proposed again. (Events this node already holds, or that are in
    /// the chain, are skipped by `reinsert`: the mempool only ever loses an event to a block.)
    /// Without this, an event that reached this node only inside a proposal (its proposer
    /// crashed, or gossip missed us) would be lost with the proposal.
    fn return_abandoned_events(&mut self) {
        let events: Vec<SignedEvent> = self
            .consensus
            .proposed_blocks()
            .flat_map(|b| b.events.iter().cloned())
            .collect();
        if events.is_empty() {
            return;
        }
        let store = &self.store;
        let returned = self.mempool.reinsert(events, |id| {
            store.event_location(id).ok().flatten().is_some()
        });
        if returned > 0 {
            tracing::info!(
                returned,
                height = self.consensus.height(),
                "events of proposals that were not finalized are back in the mempool"
            );
            self.metrics.mempool_returned_events.inc_by(returned as u64);
            self.metrics.mempool_size.set(self.mempool.len() as i64);
        }
    }

    /// Rebuilds consensus on the store head if it is behind it.
    fn follow_store_head(&mut self) -> Result<()> {
        let head = self.announce_head()?;
        let height = head.height as i64;
        self.metrics.head_height.set(height);
        self.metrics.finalized_height.set(height);
        self.metrics.mempool_size.set(self.mempool.len() as i64);
        if self.consensus.tip().height() >= head.height {
            return Ok(());
        }
        let header = self
            .store
            .header(head.height)?
            .context("head header missing")?
            .header;
        let tip = ChainTip::new(header, head.peaks).map_err(|e| anyhow::anyhow!("tip: {e}"))?;
        self.return_abandoned_events();
        let signed = self.consensus.sign_state().cloned();
        let (consensus, first) = Consensus::new(
            self.consensus_config.clone(),
            &self.genesis,
            self.validator_key.clone(),
            tip,
            signed,
            now_ms(),
        )
        .map_err(|e| anyhow::anyhow!("consensus: {e}"))?;
        self.consensus = consensus;
        self.pending_events = None;
        self.apply(first);
        self.retry_gossip();
        Ok(())
    }

    fn publish_status(&mut self) {
        // A round that ends without a decision moves consensus to the next round of the same
        // height: count those moves.
        let position = (self.consensus.height(), self.consensus.round());
        if position.0 == self.last_position.0 && position.1 > self.last_position.1 {
            self.metrics
                .rounds_skipped
                .inc_by(u64::from(position.1 - self.last_position.1));
        }
        self.last_position = position;
        let head = self.consensus.tip().height();
        let peers = self.network.handshaken_peers().len();
        self.metrics.peers.set(peers as i64);
        self.metrics.mempool_size.set(self.mempool.len() as i64);
        let sync_state = self.sync.state();
        self.state = if peers == 0 && sync_state != SyncState::Stopped {
            "connecting"
        } else {
            sync_state.as_str()
        };
        let sync_status = self.sync.status();
        self.status.send_modify(|s| {
            s.head_height = head;
            s.head_hash = self.consensus.tip().hash.to_hex();
            s.finalized_height = head;
            s.lowest_height = self.network.status().lowest_height;
            s.peers = peers;
            s.mempool = self.mempool.len();
            s.syncing = sync_state == SyncState::Syncing;
            s.state = self.state.into();
            s.sync = Some(sync_status);
        });
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::SubmitEvent { event, reply } => {
                let result = self.admit_event(*event.clone());
                if result.is_ok() {
                    self.gossip_event(*event);
                }
                let _ = reply.send(result);
                self.publish_status();
            }
        }
    }

    /// Publishes a submitted event; keeps it for [`Self::retry_gossip`] if that fails.
    fn gossip_event(&mut self, event: SignedEvent) {
        match self.network.publish(&GossipMessage::Event(event.clone())) {
            Ok(()) | Err(PublishError::Duplicate) => {}
            Err(e) => {
                tracing::debug!(error = %e, id = %event.id(), "event gossip not sent, will retry");
                self.ungossiped.push(event);
            }
        }
    }

    /// Publishes again the submitted events whose gossip failed, if still pending.
    fn retry_gossip(&mut self) {
        for event in std::mem::take(&mut self.ungossiped) {
            if self.mempool.contains(&event.id()) {
                self.gossip_event(event);
            }
        }
    }

    fn admit_event(&mut self, event: SignedEvent) -> Result<EventId, SubmitError> {
        let store = &self.store;
        let in_chain = |id: &EventId| matches!(store.event_location(id), Ok(Some(_)));
        self.mempool.insert(event, in_chain).map_err(|e| match e {
            MempoolError::Invalid(e) => SubmitError::Invalid(e.to_string()),
            MempoolError::Duplicate(id) => SubmitError::Duplicate(id),
            MempoolError::AlreadyInChain(id) => SubmitError::AlreadyInChain(id),
            MempoolError::Full { .. } => SubmitError::Full,
        })
    }

    fn on_net(&mut self, event: NetEvent) {
        match event {
            NetEvent::InboundRequest { peer, id, request } => {
                if self.dishonest.is_some_and(|mode| mode.withholds(&request)) {
                    // Test only: keep the request (and its stream) open, never answer it.
                    self.withheld.push(id);
                    return;
                }
                let started = Instant::now();
                let protocol = request.protocol();
                let mut response = serve(&*self.store, &self.genesis, &request);
                if let Some(mode) = self.dishonest {
                    response = dishonest::tamper(mode, response);
                }
                let outcome = response.as_error().map_or("served".to_string(), |e| {
                    format!("{:?}", e.code).to_lowercase()
                });
                let bytes = response.encoded_len();
                if let Err(e) = self.network.respond(id, response) {
                    tracing::debug!(%peer, error = %e, "response not sent");
                }
                let label = ProtocolLabel {
                    protocol: protocol.to_string(),
                };
                self.metrics.request(&label.protocol, &outcome);
                self.metrics
                    .bytes_served
                    .get_or_create(&label)
                    .inc_by(bytes as u64);
                self.metrics
                    .request_latency_seconds
                    .get_or_create(&label)
                    .observe(started.elapsed().as_secs_f64());
            }
            NetEvent::Gossip {
                message,
                source,
                propagated_by,
            } => self.on_gossip(message, source, propagated_by),
            NetEvent::HandshakeDone { peer, info } => {
                tracing::info!(%peer, height = info.head_height, "peer connected");
                self.retry_gossip();
                let status = status_after_handshake(&self.network, &peer, &info);
                self.sync.peer_connected(peer, status, sync_ctx!(self));
            }
            NetEvent::PeerStatus { peer, status } => {
                self.sync.peer_status(peer, status, sync_ctx!(self));
            }
            NetEvent::Response { peer, id, result } => self.on_response(peer, id, result),
            NetEvent::PeerDisconnected { peer } | NetEvent::PeerBanned { peer, .. } => {
                self.sync.peer_gone(peer, sync_ctx!(self));
            }
            NetEvent::HandshakeFailed { peer, reason } => {
                tracing::warn!(%peer, %reason, "handshake failed");
            }
            NetEvent::DialFailed { peer, error } => {
                tracing::debug!(?peer, %error, "dial failed");
            }
            NetEvent::ListenAddr { address } => tracing::info!(%address, "listening"),
        }
        self.publish_status();
    }

    /// `publisher` signed the gossip message (the one to blame for bad content); `relay`
    /// forwarded it to us (a connected peer, the one to sync from). Penalizing the relay would
    /// let an attacker make honest neighbours ban each other.
    fn on_gossip(&mut self, message: GossipMessage, publisher: Option<PeerId>, relay: PeerId) {
        match message {
            GossipMessage::Event(event) => {
                let _ = self.admit_event(event);
            }
            GossipMessage::Proposal(bytes) | GossipMessage::Vote(bytes) => {
                match Message::decode(&bytes) {
                    Ok(message) => {
                        let out = self.consensus.handle(message.into(), now_ms());
                        self.apply(out);
                    }
                    Err(e) => {
                        tracing::debug!(?publisher, error = %e, "undecodable consensus gossip");
                        if let Some(publisher) = publisher {
                            self.network
                                .report(publisher, crate::net::peers::Misbehaviour::Malformed);
                        }
                    }
                }
            }
            GossipMessage::Finalized(block) => {
                let head = self.consensus.tip().height();
                if block.height() <= head {
                    self.compare_with_stored(&block, publisher, relay);
                } else if block.height() == head + 1 && !self.sync.is_catching_up() {
                    // Following the head: consensus takes it (and the sync machine follows).
                    self.accept_finalized(block, publisher);
                } else {
                    // Catching up, or ahead of us: the sync machine learns the relay's head
                    // (and takes the block if it is next), or compares it with ours (a fork).
                    self.sync.gossip(relay, block, sync_ctx!(self));
                }
            }
        }
    }

    /// A finalized block at a height we store: the same block (gossip echoes, other nodes'
    /// commits), or a conflict. A conflicting block whose commit carries more than 2/3 of the
    /// set that signs that height is a fork between finalized chains (Moloch's fork case, for
    /// finalized blocks): sync stops with the evidence; nothing is rolled back. One that does
    /// not verify costs its publisher score. Heights below what we store (warp-synced) cannot
    /// be compared.
    fn compare_with_stored(
        &mut self,
        block: &FinalizedBlock,
        publisher: Option<PeerId>,
        relay: PeerId,
    ) {
        let height = block.height();
        let tip = self.consensus.tip();
        if height == tip.height() && block.block.header.hash() == tip.hash {
            // The common case, other nodes' copies of our head: no store read.
            return;
        }
        let ours = match self.store.header(height) {
            Ok(Some(ours)) => ours,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(height, error = %e, "cannot read a stored header to compare");
                return;
            }
        };
        let theirs = block.trusted_header();
        if theirs.header.hash() == ours.header.hash() || self.sync.is_stopped() {
            return;
        }
        let signers = Arc::new(self.genesis.validators_at(height).clone());
        match crate::sync::predicates::signed_without_parent(
            &Verifier::new(),
            &ours.header,
            &signers,
            &theirs,
            now_ms(),
        ) {
            Ok(()) => {
                let evidence = crate::sync::ForkEvidence {
                    height,
                    ours,
                    theirs,
                    peer: publisher.unwrap_or(relay),
                };
                self.sync
                    .fork_detected(&evidence, &*self.store, &self.metrics);
            }
            Err(e) => {
                tracing::warn!(height, ?publisher, error = %e, "a conflicting block that does not verify");
                if let Some(peer) = publisher {
                    self.network
                        .report(peer, crate::net::peers::Misbehaviour::Invalid);
                }
            }
        }
    }

    /// Verifies a block claimed finalized against our head and feeds it to consensus.
    /// Returns false if it was refused; then `blame`, if known, loses score.
    fn accept_finalized(&mut self, block: FinalizedBlock, blame: Option<PeerId>) -> bool {
        let tip = self.consensus.tip();
        let trusted = TrustedState {
            header: tip.header.clone(),
            hash: tip.hash,
            next_validators: Arc::new(self.genesis.validators_at(tip.height() + 1).clone()),
        };
        let invalid = |network: &mut Network, reason: &dyn std::fmt::Display| {
            tracing::warn!(?blame, %reason, "peer sent an invalid finalized block");
            if let Some(peer) = blame {
                network.report(peer, crate::net::peers::Misbehaviour::Invalid);
            }
        };
        if let Err(e) = Verifier::new().verify(&trusted, &block.trusted_header(), now_ms()) {
            invalid(&mut self.network, &e);
            return false;
        }
        let height = block.height();
        let out = self
            .consensus
            .handle(Input::FinalizedFromPeer(Box::new(block)), now_ms());
        self.apply(out);
        let accepted = self.consensus.tip().height() >= height;
        if !accepted {
            // Signed by the right validators but refused by consensus: the body does not
            // match the header (or it conflicts with our tip).
            invalid(&mut self.network, &"block body or tip mismatch");
        }
        accepted
    }

    fn on_response(
        &mut self,
        peer: PeerId,
        id: RequestId,
        result: Result<Response, crate::net::RequestFailure>,
    ) {
        self.sync.response(peer, id, result, sync_ctx!(self));
    }
}

/// A short, bounded label for a consensus rejection (the error's variant name).
fn reason_kind(reason: &str) -> String {
    reason
        .split(|c: char| !c.is_ascii_alphanumeric() && c != ' ')
        .next()
        .unwrap_or("other")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join("_")
        .to_lowercase()
}
