//! The native light client: the sans-I/O [`LightClient`] machine driven over the libp2p
//! [`Network`], with headers kept in a [`MemoryLightStore`].
//!
//! [`LightDriver`] owns both. Network events become machine inputs (a handshake or status
//! becomes `PeerConnected` / `PeerStatus`, a response is matched back to the machine's request
//! id, a gossiped finalized block becomes `NewHead`), and the machine's actions are carried
//! out (requests sent, headers stored and acknowledged, faulty peers banned); everything the
//! user should see is published on a [`watch`] channel of [`LightStatus`].
//!
//! The handshake needs the chain id (taken from the checkpoint) and the exact genesis block
//! hash: peers refuse a Hello with another genesis. A checkpoint at height 0 *is* the genesis
//! block; for any other checkpoint pass the genesis hash (`--genesis-hash`).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::watch;

use super::now_ms;
use crate::chain::{BlockHash, Checkpoint, EventId, Hash};
use crate::light::{
    Action, DropReason, Input, LightClient, LightError, LightOptions, LightStore, MemoryLightStore,
    Phase, QueryId, RequestFailure as LightFailure, RequestId as LightRequestId,
};
use crate::net::{
    keypair_from_seed, NetEvent, Network, NetworkConfig, RequestFailure as NetFailure,
    RequestId as NetRequestId,
};
use crate::proof::VerifiedEvent;
use crate::protocol::{ErrorCode, ErrorResponse, GossipMessage, Response, Status};

/// The longest the driver sleeps without feeding the machine a tick.
const MAX_IDLE: Duration = Duration::from_millis(500);

/// What the user should see of a running light client.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LightStatus {
    pub phase: Option<Phase>,
    /// The verified head, once the checkpoint's header arrived.
    pub verified_height: Option<u64>,
    pub verified_hash: Option<BlockHash>,
    /// The best head the peers claim.
    pub target_height: u64,
    pub peers: usize,
    /// Every verified header up to this height is in the store.
    pub stored_height: Option<u64>,
    /// A fork was detected at this height; the client has stopped.
    pub fork_height: Option<u64>,
    /// The trusted header is older than the trust period (age in ms).
    pub checkpoint_stale_ms: Option<u64>,
    /// A peer served a block at the checkpoint's height that is not the checkpoint's: the
    /// checkpoint is wrong (or the peer is on another chain / lying).
    pub checkpoint_mismatch: Option<String>,
    /// A peer refused our handshake (e.g. another genesis hash).
    pub handshake_error: Option<String>,
    /// The last error the machine reported.
    pub last_error: Option<String>,
}

/// Settings of [`LightDriver::start`].
#[derive(Clone, Debug)]
pub struct LightDriverConfig {
    pub checkpoint: Checkpoint,
    /// The chain's genesis block hash, for the handshake; `None` only for a checkpoint at
    /// height 0 (whose block is the genesis).
    pub genesis_hash: Option<Hash>,
    pub bootnodes: Vec<Multiaddr>,
    /// Seed of the libp2p identity; `None` picks a random one.
    pub seed: Option<[u8; 32]>,
    pub options: LightOptions,
    /// How many recent headers the in-memory store keeps (older ones are pruned).
    pub keep_headers: u64,
}

impl LightDriverConfig {
    pub fn new(checkpoint: Checkpoint, bootnodes: Vec<Multiaddr>) -> Self {
        LightDriverConfig {
            checkpoint,
            genesis_hash: None,
            bootnodes,
            seed: None,
            options: LightOptions::default(),
            keep_headers: 100_000,
        }
    }

    fn genesis_hash(&self) -> Result<Hash> {
        match (self.genesis_hash, self.checkpoint.height) {
            (Some(h), 0) if h != self.checkpoint.block_hash => bail!(
                "the checkpoint is the genesis block {}, not the given genesis hash {h}",
                self.checkpoint.block_hash
            ),
            (Some(h), _) => Ok(h),
            (None, 0) => Ok(self.checkpoint.block_hash),
            (None, _) => bail!(
                "the handshake needs the chain's genesis block hash: pass --genesis-hash HEX \
                 (the checkpoint is at height {}, not the genesis)",
                self.checkpoint.height
            ),
        }
    }
}

/// The light client machine, its store and the network, driven together.
pub struct LightDriver {
    network: Network,
    client: LightClient<PeerId>,
    store: MemoryLightStore,
    /// Our requests in flight: the network's id → the peer and the machine's id.
    requests: HashMap<NetRequestId, (PeerId, LightRequestId)>,
    answers: VecDeque<(QueryId, Result<VerifiedEvent, LightError>)>,
    next_query: u64,
    keep_headers: u64,
    status: watch::Sender<LightStatus>,
}

impl LightDriver {
    /// Starts the network (dialing the bootnodes) and the machine.
    pub async fn start(config: LightDriverConfig) -> Result<LightDriver> {
        let genesis_hash = config.genesis_hash()?;
        let checkpoint = config.checkpoint.clone();
        let mut store = MemoryLightStore::new();
        let client =
            LightClient::from_store(&mut store, checkpoint.clone(), config.options, now_ms())
                .context("starting the light client")?;
        let seed = config.seed.unwrap_or_else(rand::random);
        // The light client serves nothing: its status claims only the genesis.
        let status = Status {
            head_height: 0,
            head_hash: genesis_hash,
            mmr_root: Hash::ZERO,
            lowest_height: 0,
            syncing: true,
        };
        let mut net_config = NetworkConfig::new(
            keypair_from_seed(seed),
            checkpoint.chain_id.clone(),
            genesis_hash,
            status,
        );
        net_config.bootnodes = config.bootnodes;
        let (network, _) = Network::new(net_config)
            .await
            .context("starting the network")?;
        let (status, _) = watch::channel(LightStatus::default());
        let mut driver = LightDriver {
            network,
            client,
            store,
            requests: HashMap::new(),
            answers: VecDeque::new(),
            next_query: 0,
            keep_headers: config.keep_headers.max(2),
            status,
        };
        driver.client.feed(Input::Tick { now_ms: now_ms() });
        driver.drain();
        Ok(driver)
    }

    /// A receiver of the status, updated after every event.
    pub fn subscribe(&self) -> watch::Receiver<LightStatus> {
        self.status.subscribe()
    }

    /// The current status.
    pub fn status(&self) -> LightStatus {
        self.status.borrow().clone()
    }

    pub fn client(&self) -> &LightClient<PeerId> {
        &self.client
    }

    pub fn store(&self) -> &MemoryLightStore {
        &self.store
    }

    pub fn local_peer_id(&self) -> PeerId {
        self.network.local_peer_id()
    }

    /// Waits for the next network event or the machine's deadline, and handles it.
    pub async fn step(&mut self) {
        let now = now_ms();
        let wait = self
            .client
            .next_deadline_ms()
            .map_or(MAX_IDLE, |d| Duration::from_millis(d.saturating_sub(now)))
            .min(MAX_IDLE);
        tokio::select! {
            event = self.network.next_event() => {
                self.client.feed(Input::Tick { now_ms: now_ms() });
                self.on_net(event);
            }
            _ = tokio::time::sleep(wait) => {
                self.client.feed(Input::Tick { now_ms: now_ms() });
            }
        }
        self.drain();
    }

    /// Steps until `cond` holds on the status; fails after `timeout` or when the client
    /// stops or meets a wrong checkpoint.
    pub async fn run_until(
        &mut self,
        mut cond: impl FnMut(&LightStatus) -> bool,
        timeout: Duration,
    ) -> Result<LightStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let status = self.status();
            if cond(&status) {
                return Ok(status);
            }
            self.check_fatal()?;
            if tokio::time::Instant::now() >= deadline {
                bail!("timed out after {timeout:?}; status {status:?}");
            }
            let _ = tokio::time::timeout_at(deadline, self.step()).await;
        }
    }

    /// Proves that `event_id` is in the chain, against the latest verified header.
    pub async fn verify_event(
        &mut self,
        event_id: EventId,
        timeout: Duration,
    ) -> Result<VerifiedEvent, LightError> {
        let query_id = QueryId(self.next_query);
        self.next_query += 1;
        self.client.feed(Input::VerifyEvent { query_id, event_id });
        self.drain();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(pos) = self.answers.iter().position(|(q, _)| *q == query_id) {
                let (_, result) = self.answers.remove(pos).expect("present");
                return result;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(LightError::ProofTimeout {
                    event_id,
                    timeout_ms: timeout.as_millis() as u64,
                });
            }
            let _ = tokio::time::timeout_at(deadline, self.step()).await;
        }
    }

    /// Runs until `shutdown` resolves or the client hits a fatal condition.
    pub async fn run(&mut self, shutdown: impl Future<Output = ()>) -> Result<()> {
        tokio::pin!(shutdown);
        loop {
            self.check_fatal()?;
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                _ = self.step() => {}
            }
        }
    }

    /// An error if the client can make no progress: stopped (fork, refused stale checkpoint),
    /// or the checkpoint does not match the chain the peers serve.
    pub fn check_fatal(&self) -> Result<()> {
        let status = self.status.borrow();
        if let Some(m) = &status.checkpoint_mismatch {
            bail!("the checkpoint was refused: {m}");
        }
        if let Some(reason) = self.client.stopped() {
            bail!("the light client stopped: {reason}");
        }
        Ok(())
    }

    fn on_net(&mut self, event: NetEvent) {
        match event {
            NetEvent::HandshakeDone { peer, info } => {
                tracing::info!(%peer, height = info.head_height, "peer connected");
                let status = Status {
                    head_height: info.head_height,
                    head_hash: info.head_hash,
                    mmr_root: Hash::ZERO,
                    lowest_height: 0,
                    syncing: false,
                };
                self.client.feed(Input::PeerConnected { peer, status });
            }
            NetEvent::PeerStatus { peer, status } => {
                self.client.feed(Input::PeerStatus { peer, status });
            }
            NetEvent::PeerDisconnected { peer } | NetEvent::PeerBanned { peer, .. } => {
                tracing::info!(%peer, "peer disconnected");
                self.requests.retain(|_, (p, _)| *p != peer);
                self.client.feed(Input::PeerDisconnected { peer });
            }
            NetEvent::Response { peer, id, result } => {
                let Some((_, request_id)) = self.requests.remove(&id) else {
                    return;
                };
                let input = match result {
                    Ok(response) => Input::Response {
                        peer,
                        request_id,
                        response,
                    },
                    Err(e) => Input::RequestFailed {
                        peer,
                        request_id,
                        reason: match e {
                            NetFailure::Timeout => LightFailure::Timeout,
                            NetFailure::ConnectionClosed | NetFailure::DialFailure => {
                                LightFailure::Disconnected
                            }
                            other => LightFailure::Transport(other.to_string()),
                        },
                    },
                };
                self.client.feed(input);
            }
            NetEvent::Gossip {
                message: GossipMessage::Finalized(block),
                propagated_by,
                ..
            } => {
                self.client.feed(Input::NewHead {
                    peer: propagated_by,
                    header: Box::new(block.trusted_header()),
                });
            }
            NetEvent::Gossip { .. } => {}
            NetEvent::InboundRequest { id, request, .. } => {
                let error =
                    ErrorResponse::new(ErrorCode::Unsupported, "a light client serves nothing");
                if let Some(response) = Response::error(request.protocol(), error) {
                    let _ = self.network.respond(id, response);
                }
            }
            NetEvent::HandshakeFailed { peer, reason } => {
                tracing::warn!(%peer, %reason, "handshake failed");
                self.status.send_modify(|s| {
                    s.handshake_error = Some(format!(
                        "handshake with {peer} failed: {reason} (check the checkpoint's chain \
                         and --genesis-hash)"
                    ))
                });
            }
            NetEvent::DialFailed { peer, error } => {
                tracing::warn!(?peer, %error, "dial failed");
            }
            NetEvent::ListenAddr { .. } => {}
        }
    }

    /// Carries out every pending action.
    fn drain(&mut self) {
        while let Some(action) = self.client.next_action() {
            match action {
                Action::SendRequest {
                    peer,
                    request_id,
                    request,
                } => match self.network.send_request(peer, request) {
                    Ok(id) => {
                        self.requests.insert(id, (peer, request_id));
                    }
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "request not sent");
                        self.client.feed(Input::RequestFailed {
                            peer,
                            request_id,
                            reason: LightFailure::Disconnected,
                        });
                    }
                },
                Action::StoreHeaders { headers } => {
                    let Some(up_to_height) = headers.last().map(|h| h.height()) else {
                        continue;
                    };
                    match self.store.append(&headers) {
                        Ok(()) => {
                            self.client.feed(Input::Stored { up_to_height });
                            // Prune in steps of a quarter, not at every append.
                            let keep = self.keep_headers;
                            if self.store.len() as u64 > keep + keep / 4 {
                                if let Err(e) = self.store.prune(keep) {
                                    tracing::warn!(error = %e, "cannot prune the header store");
                                }
                            }
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "cannot store headers");
                            self.status
                                .send_modify(|s| s.last_error = Some(format!("store: {e}")));
                        }
                    }
                }
                Action::Progress(p) => {
                    tracing::info!(
                        phase = ?p.phase,
                        verified = p.verified_height,
                        target = p.target_height,
                        peers = p.peers,
                        rate = format!("{:.0}/s", p.headers_per_second),
                        "light client progress"
                    );
                }
                Action::NewHead { height, hash } => {
                    tracing::debug!(height, %hash, "new verified head");
                }
                Action::EventVerified { query_id, result } => {
                    self.answers.push_back((query_id, result));
                }
                Action::ForkDetected { evidence } => {
                    tracing::error!(
                        height = evidence.height,
                        peer = %evidence.peer,
                        ours = %evidence.ours.header.hash(),
                        theirs = %evidence.theirs.header.hash(),
                        "FORK DETECTED: two headers signed by the same validator set"
                    );
                    self.status
                        .send_modify(|s| s.fork_height = Some(evidence.height));
                }
                Action::CheckpointStale {
                    age_ms,
                    trust_period_ms,
                } => {
                    tracing::warn!(age_ms, trust_period_ms, "the trusted header is stale");
                    self.status
                        .send_modify(|s| s.checkpoint_stale_ms = Some(age_ms));
                }
                Action::DropPeer { peer, reason } => {
                    tracing::warn!(%peer, %reason, "dropping peer");
                    match &reason {
                        DropReason::CheckpointMismatch(e) => {
                            let message = format!(
                                "peer {peer} serves another block at the checkpoint's height {}: \
                                 {e}",
                                self.client.checkpoint().height
                            );
                            self.status
                                .send_modify(|s| s.checkpoint_mismatch = Some(message));
                        }
                        DropReason::InvalidHeader { .. }
                        | DropReason::ContradictsTrusted { .. }
                        | DropReason::Malformed(_)
                        | DropReason::InvalidProof(_) => self.network.ban(peer),
                        _ => {}
                    }
                }
                Action::Error { error } => {
                    tracing::warn!(%error, "light client error");
                    self.status
                        .send_modify(|s| s.last_error = Some(error.to_string()));
                }
            }
        }
        let client = &self.client;
        let stored = self.store.head().ok().flatten().map(|h| h.height());
        self.status.send_if_modified(|s| {
            let next = LightStatus {
                phase: Some(client.phase()),
                verified_height: client.verified_height(),
                verified_hash: client.trusted().map(|t| t.hash),
                target_height: client.target_height(),
                peers: client.peer_count(),
                stored_height: stored,
                ..s.clone()
            };
            let changed = next != *s;
            *s = next;
            changed
        });
    }
}

/// What `headway light` runs.
#[derive(Clone, Debug)]
pub struct LightRunOptions {
    pub driver: LightDriverConfig,
    /// Verify this event once caught up, print the result and exit.
    pub verify_event: Option<EventId>,
    /// How long to wait for the first peer and for catching up before giving up.
    pub sync_timeout: Duration,
}

/// Runs the light client: prints progress lines and each new verified head; with
/// `verify_event`, exits after verifying it.
pub async fn run_light(
    options: LightRunOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let mut driver = LightDriver::start(options.driver).await?;
    println!("light client {} started", driver.local_peer_id());
    tokio::pin!(shutdown);
    let mut printed: Option<u64> = None;
    let started = tokio::time::Instant::now();
    let mut caught_up = false;
    loop {
        driver.check_fatal()?;
        let status = driver.status();
        if status.peers == 0 && started.elapsed() > options.sync_timeout {
            if let Some(e) = &status.handshake_error {
                bail!("{e}");
            }
            if status.verified_height.is_none() {
                bail!(
                    "no peer answered within {:?} (check --bootnode)",
                    options.sync_timeout
                );
            }
        }
        if status.verified_height != printed {
            if let Some(h) = status.verified_height {
                println!(
                    "verified head {h} ({}), target {}, {} peer(s), {:?}",
                    status
                        .verified_hash
                        .map(|h| h.to_string())
                        .unwrap_or_default(),
                    status.target_height,
                    status.peers,
                    status.phase.unwrap_or(Phase::Bootstrapping),
                );
            }
            printed = status.verified_height;
        }
        if status.phase == Some(Phase::Following) && !caught_up {
            caught_up = true;
            if let Some(event_id) = options.verify_event {
                let v = driver
                    .verify_event(event_id, Duration::from_secs(60))
                    .await
                    .map_err(|e| anyhow!("event {event_id} not verified: {e}"))?;
                println!(
                    "event {} verified: block {} ({}), index {}",
                    v.event_id, v.height, v.block_hash, v.index
                );
                return Ok(());
            }
        }
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = driver.step() => {}
        }
    }
}
