//! [`Driver`]: the light-client machine, the network and a header store, driven together.
//!
//! One loop, the same on both targets: wait for a network event, a command from a
//! [`ClientHandle`] or the machine's next deadline; feed the machine; carry out its actions
//! (send requests, write headers and acknowledge them, drop peers, answer queries, publish
//! events). Only the waiting is raced, never the handling.
//!
//! Store writes run beside the loop: a write takes the store into its own future, which the
//! loop polls with the network, commands and timers, so verification goes on while IndexedDB
//! commits (one write at a time, in order; headers verified meanwhile wait for the next one).
//! A write is never dropped half-way: reading the store, stopping and handing the store back
//! first wait for it.
//!
//! Reconnects: every bootnode whose connection closed or whose dial failed is dialed again
//! after an exponential back-off ([`REDIAL_INITIAL`] doubling to [`REDIAL_MAX`]); with no
//! peer the machine waits and resumes by itself when one connects.
//!
//! Storage faults: a failed write (a full quota, say) is reported once as an error event, the
//! batch is kept and retried every [`STORE_RETRY`]; meanwhile the machine stops fetching once
//! its unstored-header budget is used, so sync pauses and nothing is lost or written twice.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::future::{self, Either, LocalBoxFuture};
use futures::StreamExt;
use libp2p::{Multiaddr, PeerId};
use serde::Serialize;

use super::error::{ClientError, ErrorCode};
use super::store::{open_client, HeaderStore, StoreFailure};
use crate::chain::{BlockHash, Checkpoint, Encode, EventId, Hash};
use crate::light::{
    Action, DropReason, Input, LightClient, LightError, LightOptions, LightStats, Phase, Progress,
    QueryId, RequestFailure as LightFailure, RequestId as LightRequestId, StoredHeader,
    VerifiedHeader,
};
use crate::net::{
    keypair_from_seed, peer_of, transport, NetEvent, Network, NetworkConfig,
    RequestFailure as NetFailure, RequestId as NetRequestId,
};
use crate::platform::{self, Instant};
use crate::proof::VerifiedEvent;
use crate::protocol::{ErrorCode as WireErrorCode, ErrorResponse, Response, Status};

/// The longest the driver waits without feeding the machine a tick.
const MAX_IDLE: Duration = Duration::from_millis(500);
/// First wait before dialing a lost bootnode again.
pub const REDIAL_INITIAL: Duration = Duration::from_secs(1);
/// Longest wait between dials of a lost bootnode.
pub const REDIAL_MAX: Duration = Duration::from_secs(30);
/// Events held for a subscriber that has not called [`Driver::events`] yet.
pub const EARLY_EVENTS: usize = 64;
/// Wait between retries of a failed store write.
pub const STORE_RETRY: Duration = Duration::from_secs(5);

/// What [`Driver::start`] needs.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub checkpoint: Checkpoint,
    /// The chain's genesis block hash, for the handshake; `None` only for a checkpoint at
    /// height 0 (whose block is the genesis).
    pub genesis_hash: Option<Hash>,
    /// Peers to dial, each ending in `/p2p/<peer id>`.
    pub bootnodes: Vec<Multiaddr>,
    /// Seed of the libp2p identity; `None` picks a random one.
    pub seed: Option<[u8; 32]>,
    pub options: LightOptions,
    /// Keep only this many recent headers in the store (`None`: keep all).
    pub keep_headers: Option<u64>,
}

impl ClientConfig {
    pub fn new(checkpoint: Checkpoint, bootnodes: Vec<Multiaddr>) -> Self {
        ClientConfig {
            checkpoint,
            genesis_hash: None,
            bootnodes,
            seed: None,
            options: LightOptions::default(),
            keep_headers: None,
        }
    }

    /// The genesis hash the handshake announces.
    pub fn genesis_hash(&self) -> Result<Hash, ClientError> {
        let invalid = |m: String| ClientError::new(ErrorCode::InvalidConfig, m);
        match (self.genesis_hash, self.checkpoint.height) {
            (Some(h), 0) if h != self.checkpoint.block_hash => Err(invalid(format!(
                "the checkpoint is the genesis block {}, not the given genesis hash {h}",
                self.checkpoint.block_hash
            ))),
            (Some(h), _) => Ok(h),
            (None, 0) => Ok(self.checkpoint.block_hash),
            (None, _) => Err(invalid(format!(
                "the handshake needs the chain's genesis block hash (--genesis-hash, or \
                 genesisHash in JS): the checkpoint is at height {}, not the genesis",
                self.checkpoint.height
            ))),
        }
    }

    /// Checks everything that can be checked before starting.
    pub fn validate(&self) -> Result<(), ClientError> {
        let invalid = |m: String| ClientError::new(ErrorCode::InvalidConfig, m);
        self.genesis_hash()?;
        self.options.validate().map_err(ClientError::from)?;
        if self.bootnodes.is_empty() {
            return Err(invalid("at least one bootnode is needed".into()));
        }
        for addr in &self.bootnodes {
            if peer_of(addr).is_none() {
                return Err(invalid(format!(
                    "bootnode {addr} must end in /p2p/<peer id>"
                )));
            }
            if !transport::can_dial(addr) {
                return Err(invalid(format!(
                    "this build cannot dial {addr} (a browser dials /ws, /tls/ws and, from a \
                     page but not a Worker, /webrtc-direct addresses)"
                )));
            }
        }
        if self.keep_headers == Some(0) {
            return Err(invalid("keepHeaders must be at least 1".into()));
        }
        Ok(())
    }
}

/// What users see of a running client.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientStatus {
    pub phase: Phase,
    /// The verified head, once the checkpoint's header arrived.
    pub verified_height: Option<u64>,
    pub verified_hash: Option<BlockHash>,
    /// The best head the peers claim.
    pub target_height: u64,
    pub peers: usize,
    /// Every verified header up to this height is in the store.
    pub stored_height: Option<u64>,
    pub headers_per_second: f64,
    /// A fork was detected at this height; the client has stopped.
    pub fork_height: Option<u64>,
    /// The trusted header is older than the trust period (its age in ms).
    pub checkpoint_stale_ms: Option<u64>,
    /// A store write failed and is being retried; sync is paused meanwhile.
    pub store_paused: bool,
    /// The last error reported.
    pub last_error: Option<ClientError>,
    /// Counters: requests, headers received and verified, failures.
    pub stats: LightStats,
    /// Successful store writes.
    pub store_writes: u64,
    /// False once stopped (by [`ClientHandle::stop`] or a fatal condition).
    pub running: bool,
}

/// A header as users see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeaderView {
    pub height: u64,
    pub hash: BlockHash,
    pub parent_hash: BlockHash,
    pub timestamp_ms: u64,
    pub event_count: u32,
    pub events_root: Hash,
    pub mmr_root: Hash,
    pub validators_hash: Hash,
    pub next_validators_hash: Hash,
}

impl From<&StoredHeader> for HeaderView {
    fn from(h: &StoredHeader) -> HeaderView {
        let header = &h.header;
        HeaderView {
            height: header.height,
            hash: h.hash,
            parent_hash: header.parent_hash,
            timestamp_ms: header.timestamp_ms,
            event_count: header.event_count,
            events_root: header.events_root,
            mmr_root: header.mmr_root,
            validators_hash: header.validators_hash,
            next_validators_hash: header.next_validators_hash,
        }
    }
}

/// One side of a fork, as evidence: the header and the canonical encoding of the header with
/// its commit (hex), which anyone can verify against the validator set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ForkSide {
    pub header: HeaderView,
    pub signed_header_hex: String,
}

/// Both validly signed headers at one height, and the peer that served the other one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ForkAlarm {
    pub height: u64,
    /// The header the client had verified in sequence.
    pub ours: ForkSide,
    pub theirs: ForkSide,
    pub peer: String,
}

/// The answer to [`ClientHandle::verify_event`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventVerification {
    pub event_id: EventId,
    pub height: u64,
    pub block_hash: BlockHash,
    pub index: u32,
}

/// What the client reports as it runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ClientEvent {
    Progress(Progress),
    #[serde(rename_all = "camelCase")]
    NewHead {
        height: u64,
        hash: BlockHash,
    },
    ForkDetected(Box<ForkAlarm>),
    #[serde(rename_all = "camelCase")]
    CheckpointStale {
        age_ms: u64,
        trust_period_ms: u64,
    },
    Error(ClientError),
}

impl ClientEvent {
    /// The JS event name.
    pub fn name(&self) -> &'static str {
        match self {
            ClientEvent::Progress(_) => "progress",
            ClientEvent::NewHead { .. } => "newHead",
            ClientEvent::ForkDetected(_) => "forkDetected",
            ClientEvent::CheckpointStale { .. } => "checkpointStale",
            ClientEvent::Error(_) => "error",
        }
    }
}

#[derive(Debug)]
enum Command {
    VerifyEvent {
        event_id: EventId,
        reply: oneshot::Sender<Result<EventVerification, ClientError>>,
    },
    Header {
        height: u64,
        reply: oneshot::Sender<Result<Option<HeaderView>, ClientError>>,
    },
    Stop,
}

/// A cheap, cloneable handle on a [`Driver`] running elsewhere (another task).
#[derive(Clone, Debug)]
pub struct ClientHandle {
    commands: mpsc::UnboundedSender<Command>,
    status: Arc<Mutex<ClientStatus>>,
}

fn stopped_error() -> ClientError {
    ClientError::new(ErrorCode::Stopped, "the client is not running")
}

impl ClientHandle {
    /// The latest status.
    pub fn status(&self) -> ClientStatus {
        lock(&self.status).clone()
    }

    /// Proves that `event_id` is in the chain (see [`Driver::verify_event`]).
    pub async fn verify_event(&self, event_id: EventId) -> Result<EventVerification, ClientError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .unbounded_send(Command::VerifyEvent { event_id, reply })
            .map_err(|_| stopped_error())?;
        answer.await.map_err(|_| stopped_error())?
    }

    /// The stored header at `height` (`None` if not stored: not synced yet, or pruned).
    pub async fn header(&self, height: u64) -> Result<Option<HeaderView>, ClientError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .unbounded_send(Command::Header { height, reply })
            .map_err(|_| stopped_error())?;
        answer.await.map_err(|_| stopped_error())?
    }

    /// Asks the driver to stop; [`Driver::run`] returns soon after.
    pub fn stop(&self) {
        let _ = self.commands.unbounded_send(Command::Stop);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a status half-written in a way that
    // matters: keep serving it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A bootnode and when to dial it again.
struct Bootnode {
    addr: Multiaddr,
    peer: PeerId,
    failures: u32,
    /// When to dial next (ms, platform clock); `None` while connected or dialing.
    redial_at_ms: Option<u64>,
}

/// A store write in flight: it holds the store and gives it back, with the batch.
type Write<S> = LocalBoxFuture<'static, WriteDone<S>>;

struct WriteDone<S: HeaderStore> {
    store: S,
    batch: Vec<VerifiedHeader>,
    result: Result<(), S::Error>,
}

/// What ended a wait of [`Driver::step`].
#[allow(clippy::large_enum_variant)] // one per step, moved once
enum Woke<S: HeaderStore> {
    Net(NetEvent),
    Command(Command),
    Written(WriteDone<S>),
}

/// The client: machine, network and store, driven together. See the module docs.
pub struct Driver<S: HeaderStore + 'static> {
    network: Network,
    client: LightClient<PeerId>,
    /// `None` while `write` holds the store.
    store: Option<S>,
    write: Option<Write<S>>,
    /// Our requests in flight: the network's id → the peer and the machine's id.
    requests: HashMap<NetRequestId, (PeerId, LightRequestId)>,
    /// Answers to queries made through [`Driver::verify_event`].
    answers: VecDeque<(QueryId, Result<VerifiedEvent, LightError>)>,
    /// Queries made through a [`ClientHandle`], by id.
    replies: HashMap<QueryId, oneshot::Sender<Result<EventVerification, ClientError>>>,
    next_query: u64,
    keep_headers: Option<u64>,
    bootnodes: Vec<Bootnode>,
    /// Verified headers not written yet: waiting for the write in flight, or for the retry
    /// at `store_retry_at_ms` after a failed one.
    unstored: Vec<VerifiedHeader>,
    store_retry_at_ms: Option<u64>,
    store_writes: u64,
    /// Headers in the store (read at start, then counted).
    stored_count: u64,
    status: ClientStatus,
    shared: Arc<Mutex<ClientStatus>>,
    events: Option<mpsc::UnboundedSender<ClientEvent>>,
    /// Events emitted before [`Driver::events`] was called (the newest [`EARLY_EVENTS`]).
    early_events: VecDeque<ClientEvent>,
    commands: mpsc::UnboundedReceiver<Command>,
    command_sender: mpsc::UnboundedSender<Command>,
    stop_requested: bool,
}

impl<S: HeaderStore + 'static> Driver<S> {
    /// Opens the client on `store` (resuming from its head if it holds headers of this
    /// checkpoint), starts the network and dials the bootnodes.
    pub async fn start(config: ClientConfig, mut store: S) -> Result<Driver<S>, ClientError> {
        config.validate()?;
        let genesis_hash = config.genesis_hash()?;
        let checkpoint = config.checkpoint.clone();
        let client = open_client(
            &mut store,
            checkpoint.clone(),
            config.options,
            platform::now_ms(),
        )
        .await
        .map_err(ClientError::from)?;
        let stored_count = store
            .header_count()
            .await
            .map_err(|e| store_error::<S>(&e))?;
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
        net_config.bootnodes = config.bootnodes.clone();
        // No gossip: full nodes push their Status to peers gossip does not reach, at each new
        // head, and we fetch the headers (a finalized block carries all its events).
        net_config.topics = Vec::new();
        let (network, _) = Network::new(net_config)
            .await
            .map_err(|e| ClientError::new(ErrorCode::Network, e.to_string()))?;
        let bootnodes = config
            .bootnodes
            .iter()
            .filter_map(|addr| {
                Some(Bootnode {
                    addr: addr.clone(),
                    peer: peer_of(addr)?,
                    failures: 0,
                    redial_at_ms: None,
                })
            })
            .collect();
        let status = ClientStatus {
            phase: client.phase(),
            verified_height: client.verified_height(),
            verified_hash: client.trusted().map(|t| t.hash),
            target_height: client.target_height(),
            peers: 0,
            stored_height: client.stored_height(),
            headers_per_second: 0.0,
            fork_height: None,
            checkpoint_stale_ms: None,
            store_paused: false,
            last_error: None,
            stats: client.stats().clone(),
            store_writes: 0,
            running: true,
        };
        let (command_sender, commands) = mpsc::unbounded();
        let mut driver = Driver {
            network,
            client,
            store: Some(store),
            write: None,
            requests: HashMap::new(),
            answers: VecDeque::new(),
            replies: HashMap::new(),
            next_query: 0,
            keep_headers: config.keep_headers,
            bootnodes,
            unstored: Vec::new(),
            store_retry_at_ms: None,
            store_writes: 0,
            stored_count,
            shared: Arc::new(Mutex::new(status.clone())),
            status,
            events: None,
            early_events: VecDeque::new(),
            commands,
            command_sender,
            stop_requested: false,
        };
        driver.client.feed(Input::Tick {
            now_ms: platform::now_ms(),
        });
        driver.drain().await;
        Ok(driver)
    }

    /// A handle for other tasks: status, queries, stop.
    pub fn handle(&self) -> ClientHandle {
        ClientHandle {
            commands: self.command_sender.clone(),
            status: self.shared.clone(),
        }
    }

    /// The stream of [`ClientEvent`]s, starting with those emitted since [`Driver::start`]
    /// (up to [`EARLY_EVENTS`] of them are held until this is called).
    pub fn events(&mut self) -> mpsc::UnboundedReceiver<ClientEvent> {
        let (sender, receiver) = mpsc::unbounded();
        for event in self.early_events.drain(..) {
            let _ = sender.unbounded_send(event);
        }
        self.events = Some(sender);
        receiver
    }

    pub fn status(&self) -> &ClientStatus {
        &self.status
    }

    pub fn client(&self) -> &LightClient<PeerId> {
        &self.client
    }

    /// The store, once the write in flight (if any) has ended.
    pub async fn store(&mut self) -> &S {
        self.settle_write().await;
        self.store
            .as_ref()
            .expect("no write in flight after settling")
    }

    pub fn local_peer_id(&self) -> PeerId {
        self.network.local_peer_id()
    }

    /// Stops the client (closing its connections) and hands back its store, once every
    /// header handed to the driver is written (or its write failed).
    pub async fn into_store(mut self) -> S {
        loop {
            self.settle_write().await;
            self.start_write();
            if self.write.is_none() {
                break;
            }
        }
        self.store
            .take()
            .expect("no write in flight after settling")
    }

    /// Runs until [`ClientHandle::stop`]. A fork or a refused checkpoint stops the machine
    /// but not this loop, so the status and stored headers stay readable.
    pub async fn run(mut self) -> S {
        while !self.stop_requested {
            self.step().await;
        }
        self.status.running = false;
        self.publish_status();
        for (_, reply) in self.replies.drain() {
            let _ = reply.send(Err(stopped_error()));
        }
        self.into_store().await
    }

    /// Waits for the next network event, command or deadline, and handles it.
    pub async fn step(&mut self) {
        let now = platform::now_ms();
        let mut wait = self
            .client
            .next_deadline_ms()
            .map_or(MAX_IDLE, |d| Duration::from_millis(d.saturating_sub(now)))
            .min(MAX_IDLE);
        for at in self
            .bootnodes
            .iter()
            .filter_map(|b| b.redial_at_ms)
            .chain(self.store_retry_at_ms)
        {
            wait = wait.min(Duration::from_millis(at.saturating_sub(now)));
        }
        let woke = {
            let net = self.network.next_event();
            let command = self.commands.next();
            let timer = platform::sleep(wait);
            let write = async {
                match self.write.as_mut() {
                    Some(write) => write.await,
                    None => future::pending().await,
                }
            };
            futures::pin_mut!(net, command, write);
            match future::select(future::select(net, command), future::select(write, timer)).await {
                Either::Left((Either::Left((event, _)), _)) => Some(Woke::Net(event)),
                Either::Left((Either::Right((command, _)), _)) => command.map(Woke::Command),
                Either::Right((Either::Left((done, _)), _)) => Some(Woke::Written(done)),
                Either::Right((Either::Right(_), _)) => None,
            }
        };
        self.client.feed(Input::Tick {
            now_ms: platform::now_ms(),
        });
        match woke {
            Some(Woke::Net(event)) => self.on_net(event),
            Some(Woke::Command(command)) => self.on_command(command).await,
            Some(Woke::Written(done)) => {
                self.write = None;
                self.finish_write(done).await;
            }
            None => {}
        }
        self.redial();
        self.end_store_retry_wait();
        self.drain().await;
    }

    /// Steps until `cond` holds on the status; fails after `timeout` or when the client
    /// stops or meets a wrong checkpoint.
    pub async fn run_until(
        &mut self,
        mut cond: impl FnMut(&ClientStatus) -> bool,
        timeout: Duration,
    ) -> Result<ClientStatus, ClientError> {
        let started = Instant::now();
        loop {
            if cond(&self.status) {
                return Ok(self.status.clone());
            }
            self.check_fatal()?;
            if started.elapsed() >= timeout {
                return Err(ClientError::new(
                    ErrorCode::Timeout,
                    format!("timed out after {timeout:?}; status {:?}", self.status),
                ));
            }
            self.step().await;
        }
    }

    /// Proves that `event_id` is in the chain, against the latest verified header.
    pub async fn verify_event(
        &mut self,
        event_id: EventId,
        timeout: Duration,
    ) -> Result<EventVerification, ClientError> {
        let query_id = self.query(event_id);
        self.drain().await;
        let started = Instant::now();
        loop {
            if let Some(pos) = self.answers.iter().position(|(q, _)| *q == query_id) {
                let (_, result) = self.answers.remove(pos).expect("present");
                return self.verification(result);
            }
            if started.elapsed() >= timeout {
                return Err(LightError::ProofTimeout {
                    event_id,
                    timeout_ms: timeout.as_millis() as u64,
                }
                .into());
            }
            self.step().await;
        }
    }

    /// An error if the client can make no progress: stopped (fork, refused stale checkpoint),
    /// or the checkpoint does not match the chain the peers serve.
    pub fn check_fatal(&self) -> Result<(), ClientError> {
        if let Some(reason) = self.client.stopped() {
            let code = match reason {
                crate::light::StopReason::Fork { .. } => ErrorCode::ForkDetected,
                crate::light::StopReason::StaleCheckpoint { .. } => ErrorCode::CheckpointStale,
            };
            return Err(ClientError::new(
                code,
                format!("the light client stopped: {reason}"),
            ));
        }
        match &self.status.last_error {
            Some(e) if e.code == ErrorCode::CheckpointMismatch => Err(e.clone()),
            _ => Ok(()),
        }
    }

    fn query(&mut self, event_id: EventId) -> QueryId {
        let query_id = QueryId(self.next_query);
        self.next_query += 1;
        self.client.feed(Input::VerifyEvent { query_id, event_id });
        query_id
    }

    fn verification(
        &self,
        result: Result<VerifiedEvent, LightError>,
    ) -> Result<EventVerification, ClientError> {
        let v = result?;
        Ok(EventVerification {
            event_id: v.event_id,
            height: v.height,
            block_hash: v.block_hash,
            index: v.index,
        })
    }

    async fn on_command(&mut self, command: Command) {
        match command {
            Command::VerifyEvent { event_id, reply } => {
                let query_id = self.query(event_id);
                self.replies.insert(query_id, reply);
            }
            Command::Header { height, reply } => {
                let result = self
                    .store()
                    .await
                    .header(height)
                    .await
                    .map(|h| h.as_ref().map(HeaderView::from))
                    .map_err(|e| store_error::<S>(&e));
                let _ = reply.send(result);
            }
            Command::Stop => self.stop_requested = true,
        }
    }

    fn emit(&mut self, event: ClientEvent) {
        if let ClientEvent::Error(e) = &event {
            self.status.last_error = Some(e.clone());
        }
        match &self.events {
            Some(sender) => {
                if sender.unbounded_send(event).is_err() {
                    self.events = None;
                }
            }
            None => {
                if self.early_events.len() == EARLY_EVENTS {
                    self.early_events.pop_front();
                }
                self.early_events.push_back(event);
            }
        }
    }

    fn on_net(&mut self, event: NetEvent) {
        match event {
            NetEvent::HandshakeDone { peer, info } => {
                tracing::info!(%peer, height = info.head_height, "peer connected");
                if let Some(b) = self.bootnodes.iter_mut().find(|b| b.peer == peer) {
                    b.failures = 0;
                    b.redial_at_ms = None;
                }
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
                self.schedule_redial(Some(peer));
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
            // Subscribed to no topic: nothing is gossiped to us.
            NetEvent::Gossip { .. } => {}
            NetEvent::InboundRequest { id, request, .. } => {
                let error =
                    ErrorResponse::new(WireErrorCode::Unsupported, "a light client serves nothing");
                if let Some(response) = Response::error(request.protocol(), error) {
                    let _ = self.network.respond(id, response);
                }
            }
            NetEvent::HandshakeFailed { peer, reason } => {
                tracing::warn!(%peer, %reason, "handshake failed");
                self.emit(ClientEvent::Error(ClientError::new(
                    ErrorCode::HandshakeFailed,
                    format!(
                        "handshake with {peer} failed: {reason} (check the checkpoint's chain \
                         and the genesis hash)"
                    ),
                )));
                self.schedule_redial(Some(peer));
            }
            NetEvent::DialFailed { peer, error } => {
                tracing::warn!(?peer, %error, "dial failed");
                self.schedule_redial(peer);
            }
            NetEvent::ListenAddr { .. } => {}
        }
    }

    /// Schedules the next dial of `peer` if it is a bootnode we are not connected to.
    fn schedule_redial(&mut self, peer: Option<PeerId>) {
        let Some(peer) = peer else { return };
        if self.network.is_connected(&peer) {
            return;
        }
        let now = platform::now_ms();
        if let Some(b) = self.bootnodes.iter_mut().find(|b| b.peer == peer) {
            if b.redial_at_ms.is_none() {
                b.redial_at_ms = Some(now + redial_delay(b.failures).as_millis() as u64);
                b.failures = b.failures.saturating_add(1);
            }
        }
    }

    /// Dials every bootnode whose back-off ran out.
    fn redial(&mut self) {
        let now = platform::now_ms();
        for i in 0..self.bootnodes.len() {
            let b = &self.bootnodes[i];
            if b.redial_at_ms.is_none_or(|at| at > now) {
                continue;
            }
            let (addr, peer) = (b.addr.clone(), b.peer);
            self.bootnodes[i].redial_at_ms = None;
            if self.network.is_connected(&peer) {
                continue;
            }
            tracing::debug!(%addr, "dialing bootnode again");
            if let Err(e) = self.network.dial(addr) {
                tracing::debug!(error = %e, "redial refused");
                self.schedule_redial(Some(peer));
            }
        }
    }

    /// Once the wait after a failed write is over, the next [`Driver::drain`] writes again.
    fn end_store_retry_wait(&mut self) {
        if self
            .store_retry_at_ms
            .is_some_and(|at| at <= platform::now_ms())
        {
            self.store_retry_at_ms = None;
        }
    }

    /// Starts writing the unstored headers, unless a write is in flight or waits for its
    /// retry (then they go with the next one).
    fn start_write(&mut self) {
        if self.unstored.is_empty() || self.store_retry_at_ms.is_some() || self.write.is_some() {
            return;
        }
        let mut store = self.store.take().expect("no write in flight");
        let batch = std::mem::take(&mut self.unstored);
        self.write = Some(Box::pin(async move {
            let result = store.append(&batch).await;
            WriteDone {
                store,
                batch,
                result,
            }
        }));
    }

    /// Waits for the write in flight, if any, and takes its outcome.
    async fn settle_write(&mut self) {
        if let Some(write) = self.write.take() {
            let done = write.await;
            self.finish_write(done).await;
        }
    }

    /// Takes the store back from a finished write; acknowledges the headers to the machine
    /// and prunes, or keeps the batch for a retry.
    async fn finish_write(&mut self, done: WriteDone<S>) {
        let WriteDone {
            store,
            mut batch,
            result,
        } = done;
        self.store = Some(store);
        match result {
            Ok(()) => {
                self.store_writes += 1;
                self.status.store_paused = false;
                let up_to_height = batch.last().expect("a write is never empty").height();
                self.client.feed(Input::Stored { up_to_height });
                self.stored_count += batch.len() as u64;
                // Prune in steps of a quarter of `keep`, not at every append.
                if let Some(keep) = self.keep_headers {
                    if self.stored_count > keep + keep / 4 {
                        let store = self.store.as_mut().expect("just given back");
                        match store.prune(keep).await {
                            Ok(()) => self.stored_count = keep,
                            Err(e) => {
                                let error = store_error::<S>(&e);
                                tracing::warn!(%error, "cannot prune the header store");
                            }
                        }
                    }
                }
            }
            Err(e) => {
                let error = store_error::<S>(&e);
                tracing::error!(%error, "cannot store headers; retrying");
                // The failed batch goes first again, before what was verified meanwhile.
                batch.append(&mut self.unstored);
                self.unstored = batch;
                self.store_retry_at_ms = Some(platform::now_ms() + STORE_RETRY.as_millis() as u64);
                if !self.status.store_paused {
                    self.status.store_paused = true;
                    self.emit(ClientEvent::Error(error));
                }
            }
        }
    }

    /// Carries out every pending action.
    async fn drain(&mut self) {
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
                Action::StoreHeaders { headers } => self.unstored.extend(headers),
                Action::Progress(p) => {
                    tracing::info!(
                        phase = ?p.phase,
                        verified = p.verified_height,
                        target = p.target_height,
                        peers = p.peers,
                        rate = format!("{:.0}/s", p.headers_per_second),
                        "light client progress"
                    );
                    self.emit(ClientEvent::Progress(p));
                }
                Action::NewHead { height, hash } => {
                    tracing::debug!(height, %hash, "new verified head");
                    self.emit(ClientEvent::NewHead { height, hash });
                }
                Action::EventVerified { query_id, result } => {
                    match self.replies.remove(&query_id) {
                        Some(reply) => {
                            let _ = reply.send(self.verification(result));
                        }
                        None => self.answers.push_back((query_id, result)),
                    }
                }
                Action::ForkDetected { evidence } => {
                    tracing::error!(
                        height = evidence.height,
                        peer = %evidence.peer,
                        ours = %evidence.ours.header.hash(),
                        theirs = %evidence.theirs.header.hash(),
                        "FORK DETECTED: two headers signed by the same validator set"
                    );
                    self.status.fork_height = Some(evidence.height);
                    let side = |t: &crate::chain::TrustedHeader| ForkSide {
                        header: HeaderView::from(&StoredHeader::new(t.header.clone())),
                        signed_header_hex: hex::encode(t.encode()),
                    };
                    self.emit(ClientEvent::ForkDetected(Box::new(ForkAlarm {
                        height: evidence.height,
                        ours: side(&evidence.ours),
                        theirs: side(&evidence.theirs),
                        peer: evidence.peer.to_string(),
                    })));
                }
                Action::CheckpointStale {
                    age_ms,
                    trust_period_ms,
                } => {
                    tracing::warn!(age_ms, trust_period_ms, "the trusted header is stale");
                    self.status.checkpoint_stale_ms = Some(age_ms);
                    self.emit(ClientEvent::CheckpointStale {
                        age_ms,
                        trust_period_ms,
                    });
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
                            self.emit(ClientEvent::Error(ClientError::new(
                                ErrorCode::CheckpointMismatch,
                                message,
                            )));
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
                    self.emit(ClientEvent::Error(error.into()));
                }
            }
        }
        // What the machine handed over, what a write that just ended left, or a batch whose
        // retry wait is over.
        self.start_write();
        self.refresh_status();
    }

    fn refresh_status(&mut self) {
        let c = &self.client;
        self.status.phase = c.phase();
        self.status.verified_height = c.verified_height();
        self.status.verified_hash = c.trusted().map(|t| t.hash);
        self.status.target_height = c.target_height();
        self.status.peers = c.peer_count();
        self.status.stored_height = c.stored_height();
        self.status.headers_per_second = c.progress().headers_per_second;
        self.status.stats = c.stats().clone();
        self.status.store_writes = self.store_writes;
        self.publish_status();
    }

    fn publish_status(&self) {
        *lock(&self.shared) = self.status.clone();
    }
}

/// The delay before dial number `failures + 1` of a lost bootnode.
pub fn redial_delay(failures: u32) -> Duration {
    REDIAL_INITIAL
        .saturating_mul(1u32 << failures.min(16))
        .min(REDIAL_MAX)
}

fn store_error<S: HeaderStore>(e: &S::Error) -> ClientError {
    let failure: StoreFailure = S::failure(e);
    ClientError::new(failure.into(), format!("store: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn redial_backs_off_exponentially_up_to_the_cap() {
        assert_eq!(redial_delay(0), REDIAL_INITIAL);
        assert_eq!(redial_delay(1), REDIAL_INITIAL * 2);
        assert_eq!(redial_delay(3), REDIAL_INITIAL * 8);
        assert_eq!(redial_delay(10), REDIAL_MAX);
        assert_eq!(redial_delay(u32::MAX), REDIAL_MAX);
    }

    #[test]
    fn events_serialize_with_their_js_names() {
        let e = ClientEvent::NewHead {
            height: 7,
            hash: BlockHash::ZERO,
        };
        assert_eq!(e.name(), "newHead");
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["type"], "newHead");
        assert_eq!(json["height"], 7);
        let e = ClientEvent::Error(ClientError::new(ErrorCode::StoreQuotaExceeded, "full"));
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["type"], "error");
        assert_eq!(json["code"], "STORE_QUOTA_EXCEEDED");
    }
}
