//! The node's side of block sync: drives the sans-I/O [`BlockSync`] machine over the real
//! network and store.
//!
//! The node loop feeds it every event that matters to sync (peers handshaken, their statuses,
//! disconnects and bans, responses and failures to its requests, gossiped finalized blocks,
//! the time) and [`SyncDriver`] carries out what the machine asks: requests go out through the
//! [`Network`] (their ids mapped both ways), received ranges have their signatures checked
//! ahead on threads of their own before the machine gets them (`AheadChecker`), verified
//! blocks are appended to the store in one transaction per batch, on a writer thread of their
//! own so that download and verification go on while a batch is written (the node loop hands
//! both threads' results back with [`SyncDriver::next_finished`]), and acknowledged
//! ([`Input::Written`], or [`Input::StoreHeight`] on [`Action::CheckStore`]), peers that sent
//! invalid data are reported and banned, progress records are persisted under
//! [`PROGRESS_META_KEY`], and the state and progress are kept for `/status`, the metrics and
//! the CLI progress bar.
//!
//! The store head is the only resume point: the machine is built from it at start (and asks
//! the peers met at once, so a node restarted in a quiet period catches up without new
//! traffic), and built again from it whenever the head moves without the machine (consensus
//! decided a block, or one came by gossip while synced) or a write failed.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use libp2p::PeerId;

use super::api::{ForkReport, SyncStatus};
use super::metrics::Metrics;
use crate::chain::{Encode, FinalizedBlock, Genesis, ValidatorSet};
use crate::net::peers::Misbehaviour;
use crate::net::{self, Network};
use crate::protocol::blocks::BlocksResponse;
use crate::protocol::headers::HeadersResponse;
use crate::protocol::limits::RateLimit;
use crate::protocol::{Protocol, Request, Response, Status};
use crate::store::ChainStore;
use crate::sync::{
    Action, BlockSync, Fault, ForkEvidence, Input, RequestFailure, RequestId, SyncMetrics,
    SyncOptions, SyncState,
};
use crate::verify::{HeaderView, SignatureCache, TrustedState};

/// The store meta key of the last [`crate::sync::ProgressRecord`] (JSON), for operators.
pub const PROGRESS_META_KEY: &str = "sync:progress";

/// The store meta key of the last [`ForkReport`] (JSON): evidence for operators.
pub const FORK_META_KEY: &str = "sync:fork";

/// What the node must do after the driver wrote blocks: the consensus tip, the mempool and the
/// announced status follow the store.
pub struct Written {
    pub blocks: Vec<FinalizedBlock>,
}

/// The machine, the request-id map, and what is exported of it.
pub struct SyncDriver {
    machine: BlockSync<PeerId>,
    /// Writes the machine's batches, in order, off the node loop.
    writer: Writer,
    /// Bumped whenever the machine is rebuilt: a write the previous machine asked for is not
    /// acknowledged to the new one.
    generation: u64,
    options: SyncOptions,
    genesis: Arc<Genesis>,
    /// Our requests in flight: the machine's id and when it was sent.
    requests: HashMap<net::RequestId, (RequestId, Instant)>,
    /// Peers fed as connected to the current machine.
    peers: BTreeMap<PeerId, ()>,
    /// Peers the operator trusts: preferred when several can serve a range (Soma).
    trusted: std::collections::HashSet<PeerId>,
    /// The machine's counters already added to the Prometheus counters.
    exported: SyncMetrics,
    /// The fork between finalized chains that stopped sync (it is not restarted).
    fork: Option<ForkReport>,
    /// Requests held back so as not to exceed the peer's inbound rate limit, in order.
    delayed: VecDeque<Delayed>,
    pacer: Pacer,
    /// Checks the signatures of received ranges before the machine gets them.
    ahead: AheadChecker,
    /// Validator sets announced by hand-overs in ranges received but not yet verified, by the
    /// height that announced them: the guess of who signs a range further ahead.
    announced: BTreeMap<u64, Arc<ValidatorSet>>,
}

/// A request waiting for the peer's rate limit.
struct Delayed {
    at: Instant,
    peer: PeerId,
    request_id: RequestId,
    request: Request,
}

/// Our side of the peers' inbound rate limits (`protocol::limits::RateLimit`, GCRA): requests
/// to one peer are spaced so it never refuses them as abusive (which costs score, and in the
/// end a ban). A little slower than the limit, with a smaller burst, since requests can
/// arrive closer together than they were sent.
#[derive(Default)]
struct Pacer {
    /// The theoretical arrival time per (peer, protocol).
    tat: HashMap<(PeerId, Protocol), Instant>,
}

impl Pacer {
    fn limit(protocol: Protocol) -> (Duration, u32) {
        let limit = RateLimit::default_for(protocol).requester_side();
        (limit.refill_every, limit.burst)
    }

    /// When a request to `peer` may go: now, or later.
    fn when(&self, peer: PeerId, protocol: Protocol, now: Instant) -> Instant {
        let (interval, burst) = Self::limit(protocol);
        let tat = self
            .tat
            .get(&(peer, protocol))
            .copied()
            .unwrap_or(now)
            .max(now);
        let tolerance = interval * burst;
        (tat.checked_sub(tolerance).unwrap_or(now)).max(now)
    }

    fn sent(&mut self, peer: PeerId, protocol: Protocol, now: Instant) {
        let (interval, _) = Self::limit(protocol);
        let tat = self.tat.entry((peer, protocol)).or_insert(now);
        *tat = (*tat).max(now) + interval;
    }

    fn forget(&mut self, peer: &PeerId) {
        self.tat.retain(|(p, _), _| p != peer);
    }
}

impl SyncDriver {
    /// A driver continuing from the store's head.
    pub fn new(
        store: Arc<dyn ChainStore>,
        genesis: Arc<Genesis>,
        options: SyncOptions,
        now_ms: u64,
    ) -> Result<SyncDriver> {
        let ahead = AheadChecker::start(options.verify_threads)?;
        let machine = build_machine(&*store, &genesis, &options, &ahead.cache, now_ms)?;
        if let Ok(Some(bytes)) = store.get_meta(FORK_META_KEY) {
            tracing::warn!(
                evidence = %String::from_utf8_lossy(&bytes),
                "a conflict between finalized chains was recorded before this start (store \
                 meta {FORK_META_KEY}); syncing again"
            );
        }
        if let Ok(Some(bytes)) = store.get_meta(PROGRESS_META_KEY) {
            if let Ok(record) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                tracing::info!(%record, "last sync progress record");
            }
        }
        Ok(SyncDriver {
            machine,
            writer: Writer::start(store)?,
            generation: 0,
            options,
            genesis,
            requests: HashMap::new(),
            peers: BTreeMap::new(),
            trusted: Default::default(),
            exported: SyncMetrics::default(),
            fork: None,
            delayed: VecDeque::new(),
            pacer: Pacer::default(),
            ahead,
            announced: BTreeMap::new(),
        })
    }

    /// Marks these peers as trusted (preferred by the balancer; everything they send is still
    /// verified).
    pub fn set_trusted(&mut self, peers: impl IntoIterator<Item = PeerId>) {
        self.trusted = peers.into_iter().collect();
    }

    pub fn state(&self) -> SyncState {
        if self.is_stopped() {
            SyncState::Stopped
        } else {
            self.machine.state()
        }
    }

    /// Downloading, or holding blocks not yet written: blocks come through the machine only.
    pub fn is_catching_up(&self) -> bool {
        self.machine.state() == SyncState::Syncing
            || self.machine.requests_in_flight() > 0
            || self.machine.buffered_blocks() > 0
            || self.writer.pending > 0
    }

    /// The next thing the driver's threads finished: a batch written, or a range whose
    /// signatures were checked ahead (for the node loop's `select!`; pending forever while
    /// neither is under way). Hand it back with [`SyncDriver::finished`].
    pub async fn next_finished(&mut self) -> Finished {
        let (writer, ahead) = (&mut self.writer.done, &mut self.ahead.done);
        // A channel whose threads ended (they panicked) yields nothing more.
        let written = async {
            match writer.recv().await {
                Some(done) => Finished::Written(done),
                None => std::future::pending().await,
            }
        };
        let checked = async {
            match ahead.recv().await {
                Some(job) => Finished::Checked(job),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            finished = written => finished,
            finished = checked => finished,
        }
    }

    /// Takes what [`SyncDriver::next_finished`] returned; returns the blocks written, for the
    /// node to follow.
    pub fn finished(&mut self, finished: Finished, ctx: Ctx<'_>) -> Vec<Written> {
        match finished {
            Finished::Written(done) => self.written(done, ctx),
            Finished::Checked(job) => {
                self.checked_ahead(job, ctx);
                Vec::new()
            }
        }
    }

    /// A batch the writer finished: acknowledged to the machine (if it asked for it) and handed
    /// to the node like any write.
    fn written(&mut self, done: WriteDone, ctx: Ctx<'_>) -> Vec<Written> {
        self.writer.pending = self.writer.pending.saturating_sub(1);
        ctx.metrics.sync_write_seconds.observe(done.seconds);
        ctx.metrics.store_write_seconds.observe(done.seconds);
        let current = done.generation == self.generation;
        match done.outcome {
            Ok(Some((up_to, blocks))) => {
                if current {
                    self.feed(Input::Written { up_to }, ctx);
                } else if self.machine.applied_height() < up_to {
                    // Asked by a machine since rebuilt: the store moved past the new one's
                    // anchor, which starts again from the store head.
                    self.reanchor(ctx.store, ctx.network, super::now_ms());
                }
                vec![Written { blocks }]
            }
            Ok(None) => {
                if current {
                    let height = ctx.store.head().ok().flatten().map_or(0, |h| h.height);
                    self.feed(Input::StoreHeight { height }, ctx);
                }
                Vec::new()
            }
            Err(e) => {
                // Not acknowledged: the machine asks for the store's height later, and
                // the node starts it again from the store head meanwhile.
                ctx.metrics.sync_errors.inc();
                tracing::error!(error = %e, "cannot store synced blocks");
                Vec::new()
            }
        }
    }

    /// The last block the machine verified (and handed to the store or batched).
    pub fn applied_height(&self) -> u64 {
        self.machine.applied_height()
    }

    pub fn next_deadline_ms(&self) -> Option<u64> {
        let delayed = self.delayed.iter().map(|d| d.at).min().map(|at| {
            let wait = at.saturating_duration_since(Instant::now());
            super::now_ms() + wait.as_millis() as u64 + 1
        });
        match (self.machine.next_deadline_ms(), delayed) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn machine(&self) -> &BlockSync<PeerId> {
        &self.machine
    }

    /// What `/status` shows of sync.
    pub fn status(&self) -> SyncStatus {
        let p = self.machine.progress();
        SyncStatus {
            state: self.state().as_str().into(),
            mode: format!("{:?}", self.options.mode).to_lowercase(),
            start: p.start,
            current: p.current,
            written: p.written,
            target: p.target,
            blocks_per_second: p.blocks_per_second,
            eta_ms: p.eta_ms,
            percent: p.percent,
            peers: p.peers,
            requests_in_flight: self.machine.requests_in_flight(),
            fork: self.fork.clone(),
        }
    }

    /// Whether a conflict between finalized chains stopped sync.
    pub fn is_stopped(&self) -> bool {
        self.fork.is_some()
    }

    /// Two finalized blocks at one height: sync stops for good (nothing is rolled back, no side
    /// is chosen), the evidence is logged, counted and stored for the operator.
    pub fn fork_detected(
        &mut self,
        evidence: &ForkEvidence<PeerId>,
        store: &dyn ChainStore,
        metrics: &Metrics,
    ) {
        let report = ForkReport {
            height: evidence.height,
            ours: evidence.ours.header.hash().to_hex(),
            theirs: evidence.theirs.header.hash().to_hex(),
            peer: evidence.peer.to_string(),
            ours_header: hex::encode(evidence.ours.encode()),
            theirs_header: hex::encode(evidence.theirs.encode()),
        };
        tracing::error!(
            height = report.height,
            ours = %report.ours,
            theirs = %report.theirs,
            peer = %report.peer,
            "two finalized blocks at one height: sync stopped, an operator must decide"
        );
        metrics.sync_forks.inc();
        metrics.set_sync_state(SyncState::Stopped.as_str());
        match serde_json::to_vec(&report) {
            Ok(json) => {
                if let Err(e) = store.put_meta(FORK_META_KEY, &json) {
                    tracing::error!(error = %e, "fork evidence not stored");
                }
            }
            Err(e) => tracing::error!(error = %e, "fork evidence not encoded"),
        }
        self.fork = Some(report);
        self.requests.clear();
        self.delayed.clear();
    }

    /// Starts again from the store head (the head moved without the machine, or a write
    /// failed): requests in flight are forgotten (their late answers ignored), connected
    /// peers are fed again with their last status.
    pub fn reanchor(&mut self, store: &dyn ChainStore, network: &Network, now_ms: u64) {
        match build_machine(
            store,
            &self.genesis,
            &self.options,
            &self.ahead.cache,
            now_ms,
        ) {
            Ok(machine) => {
                self.machine = machine;
                self.generation += 1;
                self.announced.clear();
                self.requests.clear();
                self.delayed.clear();
                self.peers.clear();
                self.exported = SyncMetrics::default();
                if self.is_stopped() {
                    return;
                }
                for (peer, status) in known_statuses(network) {
                    self.peers.insert(peer, ());
                    self.machine.feed(Input::PeerConnected {
                        peer,
                        status,
                        trusted: self.trusted.contains(&peer),
                    });
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot restart sync from the store head"),
        }
    }

    /// A handshaken peer: `status` is its last known (or the head its handshake named).
    pub fn peer_connected(&mut self, peer: PeerId, status: Status, ctx: Ctx<'_>) {
        if self.peers.insert(peer, ()).is_some() {
            return self.feed(Input::PeerStatus { peer, status }, ctx);
        }
        let trusted = self.trusted.contains(&peer);
        self.feed(
            Input::PeerConnected {
                peer,
                status,
                trusted,
            },
            ctx,
        )
    }

    pub fn peer_status(&mut self, peer: PeerId, status: Status, ctx: Ctx<'_>) {
        self.peer_connected(peer, status, ctx)
    }

    pub fn peer_gone(&mut self, peer: PeerId, ctx: Ctx<'_>) {
        self.pacer.forget(&peer);
        if self.peers.remove(&peer).is_none() {
            return;
        }
        self.feed(Input::PeerDisconnected { peer }, ctx)
    }

    pub fn gossip(&mut self, relay: PeerId, block: FinalizedBlock, ctx: Ctx<'_>) {
        self.feed(
            Input::Gossip {
                peer: relay,
                block: Box::new(block),
            },
            ctx,
        )
    }

    /// The outcome of a network request: fed to the machine if it was ours, else ignored.
    pub fn response(
        &mut self,
        peer: PeerId,
        id: net::RequestId,
        result: Result<crate::protocol::Response, net::RequestFailure>,
        ctx: Ctx<'_>,
    ) {
        let Some((request_id, sent)) = self.requests.remove(&id) else {
            return;
        };
        ctx.metrics
            .sync_download_seconds
            .observe(sent.elapsed().as_secs_f64());
        let input = match result {
            Ok(response) => match self.check_ahead(peer, request_id, response) {
                Some(response) => Input::Response {
                    peer,
                    request_id,
                    response,
                },
                // On a checker thread; back through `checked_ahead`.
                None => return,
            },
            Err(failure) => Input::RequestFailed {
                peer,
                request_id,
                reason: request_failure(failure),
            },
        };
        self.feed(input, ctx)
    }

    /// Hands a range of blocks or headers to the checker threads, with the set expected to
    /// sign its first header; gives back any other response.
    fn check_ahead(
        &mut self,
        peer: PeerId,
        request_id: RequestId,
        response: Response,
    ) -> Option<Response> {
        let Some(headers) = range_headers(&response) else {
            return Some(response);
        };
        let Some(first) = headers.first().map(|(header, _, _)| header.height) else {
            return Some(response);
        };
        self.note_hand_overs(&headers);
        let signers = match self.announced.range(..first).next_back() {
            Some((_, set)) => Arc::clone(set),
            None => Arc::clone(self.machine.next_signers()),
        };
        let job = AheadJob {
            generation: self.generation,
            peer,
            request_id,
            signers,
            response,
            seconds: 0.0,
        };
        self.ahead.submit(job)
    }

    /// Remembers the sets that headers of a received range announce. Unverified: only a guess
    /// of who signs the ranges after it; a peer announcing a false one makes the guesses wrong
    /// until the machine verifies past it, which costs time (the machine checks what the cache
    /// lacks), never correctness.
    /// Sets announced below the machine's verified height are its own business now.
    fn note_hand_overs(&mut self, headers: &[HeaderView<'_>]) {
        let verified = self.machine.verified_header_height();
        self.announced.retain(|height, _| *height >= verified);
        for &(header, _, next) in headers.iter().filter(|(h, _, _)| h.height >= verified) {
            if let (true, Some(set)) = (header.hands_over(), next) {
                self.announced.insert(header.height, Arc::new(set.clone()));
            }
        }
    }

    /// A range whose signatures were checked ahead: now the machine's, unless it was asked for
    /// by a machine since rebuilt (whose request ids mean nothing to this one).
    fn checked_ahead(&mut self, job: AheadJob, ctx: Ctx<'_>) {
        ctx.metrics.sync_check_ahead_seconds.observe(job.seconds);
        if job.generation != self.generation {
            return;
        }
        self.feed(
            Input::Response {
                peer: job.peer,
                request_id: job.request_id,
                response: job.response,
            },
            ctx,
        )
    }

    /// The clock: due at [`SyncDriver::next_deadline_ms`], harmless at any time.
    pub fn tick(&mut self, ctx: Ctx<'_>) {
        let now_ms = super::now_ms();
        self.feed(Input::Tick { now_ms }, ctx)
    }

    /// Feeds `input` (after the time) and carries out every action, including those that
    /// follow from the driver's own answers (a failed send, a write acknowledgement).
    fn feed(&mut self, input: Input<PeerId>, ctx: Ctx<'_>) {
        if self.is_stopped() {
            return;
        }
        // Requests whose turn came.
        let now = Instant::now();
        let mut failed = Vec::new();
        while let Some(i) = self.delayed.iter().position(|d| d.at <= now) {
            let Some(d) = self.delayed.remove(i) else {
                break;
            };
            failed.extend(self.send(d.peer, d.request_id, d.request, ctx.network));
        }
        let mut inputs = VecDeque::from([
            Input::Tick {
                now_ms: super::now_ms(),
            },
            input,
        ]);
        inputs.extend(failed);
        while let Some(input) = inputs.pop_front() {
            let verifying = matches!(input, Input::Response { .. } | Input::Gossip { .. });
            let started = Instant::now();
            self.machine.feed(input);
            if verifying {
                ctx.metrics
                    .sync_validation_seconds
                    .observe(started.elapsed().as_secs_f64());
            }
            while let Some(action) = self.machine.next_action() {
                self.carry_out(action, &mut inputs, ctx.network, ctx.store, ctx.metrics);
            }
        }
        self.export(ctx.metrics);
    }

    fn carry_out(
        &mut self,
        action: Action<PeerId>,
        inputs: &mut VecDeque<Input<PeerId>>,
        network: &mut Network,
        store: &dyn ChainStore,
        metrics: &Metrics,
    ) {
        match action {
            Action::SendRequest {
                peer,
                request_id,
                request,
            } => {
                let now = Instant::now();
                let at = self.pacer.when(peer, request.protocol(), now);
                if at > now {
                    self.pacer.sent(peer, request.protocol(), at);
                    self.delayed.push_back(Delayed {
                        at,
                        peer,
                        request_id,
                        request,
                    });
                } else {
                    self.pacer.sent(peer, request.protocol(), now);
                    if let Some(failed) = self.send(peer, request_id, request, network) {
                        inputs.push_back(failed);
                    }
                }
            }
            Action::Write { blocks } => {
                if let Err(e) = self.writer.write(self.generation, blocks) {
                    // Not acknowledged: the machine asks for the store's height later.
                    metrics.sync_errors.inc();
                    tracing::error!(error = %e, "cannot store synced blocks");
                }
            }
            Action::CheckStore => {
                if let Ok(Some(head)) = store.head() {
                    inputs.push_back(Input::StoreHeight {
                        height: head.height,
                    });
                }
            }
            Action::ReportPeer { peer, fault } => {
                tracing::warn!(%peer, %fault, "peer sent invalid blocks: banned");
                let misbehaviour = match fault {
                    Fault::Malformed(_) => Misbehaviour::Malformed,
                    _ => Misbehaviour::Invalid,
                };
                report_and_ban(network, peer, misbehaviour);
            }
            Action::GiveUpPeer { peer, reason } => {
                tracing::info!(%peer, ?reason, "sync gives up on a peer for now");
                network.report(peer, Misbehaviour::Timeout);
            }
            Action::StateChanged { from, to } => {
                // The machine is rebuilt from the store head whenever consensus or gossip
                // moves it (every block on a following node), passing through `determining`:
                // those hops are routine, the rest is news for the operator.
                if from == SyncState::Determining || to == SyncState::Determining {
                    tracing::debug!(from = from.as_str(), to = to.as_str(), "sync state");
                } else {
                    tracing::info!(from = from.as_str(), to = to.as_str(), "sync state");
                }
            }
            Action::Progress(progress) => {
                if progress.state == SyncState::Syncing {
                    tracing::info!(
                        current = progress.current,
                        target = progress.target,
                        rate = format_args!("{:.0}/s", progress.blocks_per_second),
                        percent = format_args!("{:.1}", progress.percent),
                        peers = progress.peers,
                        "syncing"
                    );
                }
            }
            Action::PersistProgress(record) => {
                let stored = serde_json::to_vec(&record)
                    .context("encoding the progress record")
                    .and_then(|bytes| Ok(store.put_meta(PROGRESS_META_KEY, &bytes)?));
                if let Err(e) = stored {
                    tracing::warn!(error = %e, "sync progress record not stored");
                }
            }
            Action::ForkDetected { evidence } => self.fork_detected(&evidence, store, metrics),
        }
    }

    /// Sends a request now; the failure to feed if it cannot be sent.
    fn send(
        &mut self,
        peer: PeerId,
        request_id: RequestId,
        request: Request,
        network: &mut Network,
    ) -> Option<Input<PeerId>> {
        match network.send_request(peer, request) {
            Ok(id) => {
                self.requests.insert(id, (request_id, Instant::now()));
                None
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, "sync request not sent");
                Some(Input::RequestFailed {
                    peer,
                    request_id,
                    reason: RequestFailure::Transport(e.to_string()),
                })
            }
        }
    }

    /// Adds what the machine counted since the last call to the Prometheus metrics.
    fn export(&mut self, metrics: &Metrics) {
        let now = self.machine.metrics().clone();
        let d = |new: u64, old: u64| new.saturating_sub(old);
        let e = &self.exported;
        metrics
            .sync_downloaded_headers
            .inc_by(d(now.downloaded_headers, e.downloaded_headers));
        metrics
            .sync_downloaded_bodies
            .inc_by(d(now.downloaded_bodies, e.downloaded_bodies));
        metrics
            .sync_downloaded_bytes
            .inc_by(d(now.downloaded_bytes, e.downloaded_bytes));
        metrics
            .sync_validated_blocks
            .inc_by(d(now.validated_blocks, e.validated_blocks));
        metrics
            .sync_validation_errors
            .inc_by(d(now.validation_errors, e.validation_errors));
        metrics
            .sync_written_blocks
            .inc_by(d(now.written_blocks, e.written_blocks));
        metrics.sync_reorgs.inc_by(d(now.reorgs, e.reorgs));
        metrics
            .sync_requests
            .inc_by(d(now.requests_sent, e.requests_sent));
        metrics
            .sync_errors
            .inc_by(d(now.request_failures, e.request_failures));
        metrics.sync_timeouts.inc_by(d(now.timeouts, e.timeouts));
        metrics
            .sync_peers_reported
            .inc_by(d(now.peers_reported, e.peers_reported));
        self.exported = now;
        let used = self.ahead.cache.used();
        metrics
            .sync_signatures_checked_ahead
            .inc_by(used.saturating_sub(self.ahead.exported_used));
        self.ahead.exported_used = used;
        let p = self.machine.progress();
        metrics.sync_current_block.set(p.current as i64);
        metrics.sync_target_block.set(p.target as i64);
        metrics.sync_progress_percent.set(p.percent);
        metrics.sync_blocks_per_second.set(p.blocks_per_second);
        metrics.set_sync_state(self.state().as_str());
    }
}

/// What the driver needs to carry out actions.
pub struct Ctx<'a> {
    pub network: &'a mut Network,
    pub store: &'a dyn ChainStore,
    pub metrics: &'a Metrics,
}

fn build_machine(
    store: &dyn ChainStore,
    genesis: &Genesis,
    options: &SyncOptions,
    cache: &Arc<SignatureCache>,
    now_ms: u64,
) -> Result<BlockSync<PeerId>> {
    let head = store.head()?.context("the store has no head")?;
    let header = store
        .header(head.height)?
        .context("the store head's header is missing")?
        .header;
    let next_validators = Arc::new(genesis.validators_at(head.height + 1).clone());
    let trusted = TrustedState {
        hash: head.hash,
        header,
        next_validators,
    };
    let machine = BlockSync::new(trusted, options.clone(), now_ms)
        .map_err(|e| anyhow::anyhow!("sync: {e}"))?;
    Ok(machine.with_signature_cache(Arc::clone(cache)))
}

/// Triples the cache holds at most: about fifteen 128-block ranges of 100 validators (~10 MB).
const AHEAD_CACHE_CAPACITY: usize = 128 * 1024;

/// Threads that batch-verify the commit signatures of each received range as soon as it
/// arrives, against the set expected to sign it, into the machine's [`SignatureCache`]
/// (`verify::cache` says why that is sound). The machine still verifies ranges in height order
/// on the node loop, every check included, but finds their signatures done: the expensive
/// part runs on all cores, one range per thread, while the loop goes on with the network.
struct AheadChecker {
    cache: Arc<SignatureCache>,
    /// `cache.used()` already added to the Prometheus counter.
    exported_used: u64,
    jobs: Option<std::sync::mpsc::Sender<AheadJob>>,
    done: tokio::sync::mpsc::UnboundedReceiver<AheadJob>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// The headers of a range of blocks or headers, as the checker takes them.
fn range_headers(response: &Response) -> Option<Vec<HeaderView<'_>>> {
    match response {
        Response::Blocks(BlocksResponse::Blocks(blocks)) => Some(
            blocks
                .iter()
                .map(|b| (&b.block.header, &b.commit, b.next_validators.as_ref()))
                .collect(),
        ),
        Response::Headers(HeadersResponse::Headers(headers)) => Some(
            headers
                .iter()
                .map(|h| (&h.header, &h.commit, h.next_validators.as_ref()))
                .collect(),
        ),
        _ => None,
    }
}

/// What one of the driver's threads finished.
pub enum Finished {
    Written(WriteDone),
    Checked(AheadJob),
}

/// A received range on its way through the checker threads.
pub struct AheadJob {
    generation: u64,
    peer: PeerId,
    request_id: RequestId,
    /// The set expected to sign the first header (later hand-overs are followed).
    signers: Arc<ValidatorSet>,
    response: Response,
    /// Spent checking it.
    seconds: f64,
}

impl AheadChecker {
    fn start(threads: usize) -> Result<AheadChecker> {
        let cache = SignatureCache::new(AHEAD_CACHE_CAPACITY);
        let (jobs, inbox) = std::sync::mpsc::channel::<AheadJob>();
        let inbox = Arc::new(std::sync::Mutex::new(inbox));
        let (outbox, done) = tokio::sync::mpsc::unbounded_channel();
        let threads = (0..threads.max(1))
            .map(|i| {
                let (inbox, outbox, cache) =
                    (Arc::clone(&inbox), outbox.clone(), Arc::clone(&cache));
                std::thread::Builder::new()
                    .name(format!("sync-check-{i}"))
                    .spawn(move || loop {
                        let job = match inbox.lock() {
                            Ok(inbox) => inbox.recv(),
                            Err(_) => return,
                        };
                        let Ok(mut job) = job else { return };
                        let started = Instant::now();
                        if let Some(headers) = range_headers(&job.response) {
                            cache.check_ahead(&job.signers, headers);
                        }
                        job.seconds = started.elapsed().as_secs_f64();
                        if outbox.send(job).is_err() {
                            return;
                        }
                    })
                    .context("starting a sync checker thread")
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AheadChecker {
            cache,
            exported_used: 0,
            jobs: Some(jobs),
            done,
            threads,
        })
    }

    /// Queues `job`; gives its response back if the threads are gone.
    fn submit(&mut self, job: AheadJob) -> Option<Response> {
        match &self.jobs {
            Some(jobs) => jobs.send(job).err().map(|e| e.0.response),
            None => Some(job.response),
        }
    }
}

impl Drop for AheadChecker {
    fn drop(&mut self) {
        self.jobs.take();
        self.done.close();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The sync writer: one thread appending the machine's batches in the order asked, so that a
/// batch's transaction (and its fsync) overlaps the download and verification of the next
/// ones instead of stalling the node loop. The machine bounds what is handed over unwritten
/// (`SyncOptions::max_unwritten_blocks`). Appends are atomic and checked against the store
/// head inside their transaction, so a block consensus stored meanwhile is never written
/// twice ([`append_new`] skips it).
struct Writer {
    jobs: Option<std::sync::mpsc::Sender<WriteJob>>,
    done: tokio::sync::mpsc::UnboundedReceiver<WriteDone>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Batches handed over whose outcome the node loop has not taken yet.
    pending: usize,
}

struct WriteJob {
    generation: u64,
    blocks: Vec<FinalizedBlock>,
}

/// What became of a batch handed to the writer thread.
pub struct WriteDone {
    generation: u64,
    /// The new head and the blocks written; `None` if the store held them all already.
    outcome: Result<Option<(u64, Vec<FinalizedBlock>)>>,
    seconds: f64,
}

impl Writer {
    fn start(store: Arc<dyn ChainStore>) -> Result<Writer> {
        let (jobs, inbox) = std::sync::mpsc::channel::<WriteJob>();
        let (outbox, done) = tokio::sync::mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("sync-writer".into())
            .spawn(move || {
                for job in inbox {
                    let started = Instant::now();
                    let outcome = append_new(&*store, job.blocks);
                    let done = WriteDone {
                        generation: job.generation,
                        outcome,
                        seconds: started.elapsed().as_secs_f64(),
                    };
                    // Nobody to tell once the driver is gone; the batches still handed over
                    // are written all the same (see `Drop`).
                    let _ = outbox.send(done);
                }
            })
            .context("starting the sync writer thread")?;
        Ok(Writer {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
            pending: 0,
        })
    }

    fn write(&mut self, generation: u64, blocks: Vec<FinalizedBlock>) -> Result<()> {
        let jobs = self.jobs.as_ref().context("the sync writer is stopped")?;
        jobs.send(WriteJob { generation, blocks })
            .map_err(|_| anyhow::anyhow!("the sync writer thread is gone"))?;
        self.pending += 1;
        Ok(())
    }
}

impl Drop for Writer {
    /// Finishes the batches handed over (each is one atomic append) and lets go of the store,
    /// so that a node stopped and started again in one process can reopen it.
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Appends `blocks` in one transaction, without those the store already holds; those must be
/// the same blocks. Both writers use it: the sync writer thread for its batches, and the node
/// loop for the blocks consensus finalizes, so either may have stored a height the other is
/// about to write. When the head moves between the check and the append (the other writer
/// committed meanwhile), the append is refused whole and the check runs once more. Returns
/// the new head and what was written; `None` if nothing was new.
pub(super) fn append_new(
    store: &dyn ChainStore,
    mut blocks: Vec<FinalizedBlock>,
) -> Result<Option<(u64, Vec<FinalizedBlock>)>> {
    let mut retried = false;
    loop {
        let head = store.head()?.context("the store has no head")?;
        if let Some(first) = blocks.first() {
            if first.height() <= head.height {
                let held = (head.height - first.height() + 1).min(blocks.len() as u64) as usize;
                for b in &blocks[..held] {
                    let stored = store.header(b.height())?.map(|h| h.header.hash());
                    anyhow::ensure!(
                        stored == Some(b.block.header.hash()),
                        "block {} differs from the stored one",
                        b.height()
                    );
                }
                blocks.drain(..held);
            }
        }
        let Some(last) = blocks.last().map(FinalizedBlock::height) else {
            return Ok(None);
        };
        match store.append(&blocks) {
            Ok(()) => return Ok(Some((last, blocks))),
            Err(e) => {
                let moved = store.head()?.is_some_and(|h| h.height > head.height);
                if retried || !moved {
                    return Err(e.into());
                }
                retried = true;
            }
        }
    }
}

/// A peer that sent provably invalid data: penalized for it and banned (if the penalty alone
/// did not ban it), which disconnects it. Sync and warp sync both report this way.
pub(super) fn report_and_ban(network: &mut Network, peer: PeerId, misbehaviour: Misbehaviour) {
    network.report(peer, misbehaviour);
    if !network.peer_book().is_banned(&peer, network.now()) {
        network.ban(peer);
    }
}

/// Every handshaken peer whose status is known, with that status.
pub(super) fn known_statuses(network: &Network) -> Vec<(PeerId, Status)> {
    network
        .handshaken_peers()
        .into_iter()
        .filter_map(|peer| Some((peer, network.peer_book().status(&peer)?.status.clone())))
        .collect()
}

/// A peer's status just after its handshake: its last known one, else the head its handshake
/// named (the lowest height it serves is not known yet: 0, so asking it costs at most a
/// NotFound).
pub(super) fn status_after_handshake(
    network: &Network,
    peer: &PeerId,
    info: &crate::protocol::HandshakeInfo,
) -> Status {
    match network.peer_book().status(peer) {
        Some(known) => known.status.clone(),
        None => Status {
            head_height: info.head_height,
            head_hash: info.head_hash,
            mmr_root: crate::chain::Hash::ZERO,
            lowest_height: 0,
            syncing: false,
        },
    }
}

/// The sync machine's name for a network request failure.
pub(super) fn request_failure(failure: net::RequestFailure) -> RequestFailure {
    match failure {
        net::RequestFailure::Timeout => RequestFailure::Timeout,
        net::RequestFailure::ConnectionClosed => RequestFailure::Disconnected,
        other => RequestFailure::Transport(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use crate::testkit::ChainBuilder;

    fn chain(len: usize) -> Vec<FinalizedBlock> {
        let mut builder = ChainBuilder::new("writer-chain", 4);
        (0..len)
            .map(|_| builder.next_finalized(Vec::new()))
            .collect()
    }

    fn next_done(writer: &mut Writer) -> WriteDone {
        writer.pending -= 1;
        writer
            .done
            .blocking_recv()
            .expect("the writer thread answers")
    }

    fn head(store: &dyn ChainStore) -> u64 {
        store.head().unwrap().unwrap().height
    }

    /// A memory store holding `stored`, and a writer over it.
    fn writer_over(stored: &[FinalizedBlock]) -> (Arc<MemoryStore>, Writer) {
        let store = store_holding(stored);
        let writer = Writer::start(store.clone()).unwrap();
        (store, writer)
    }

    fn store_holding(stored: &[FinalizedBlock]) -> Arc<MemoryStore> {
        let store = Arc::new(MemoryStore::new());
        store.append(stored).unwrap();
        store
    }

    /// A job for the checker: blocks `range` of `blocks`, signed by `signers`.
    fn job(id: u64, signers: &ValidatorSet, blocks: &[FinalizedBlock]) -> AheadJob {
        AheadJob {
            generation: 0,
            peer: PeerId::random(),
            request_id: RequestId(id),
            signers: Arc::new(signers.clone()),
            response: Response::Blocks(BlocksResponse::Blocks(blocks.to_vec())),
            seconds: 0.0,
        }
    }

    #[test]
    fn the_checker_checks_every_range_and_hands_each_back() {
        let mut builder = ChainBuilder::new("checker-chain", 4);
        let genesis = builder.next_finalized(Vec::new());
        let signers = builder.current_set().clone();
        let blocks: Vec<FinalizedBlock> = (0..12)
            .map(|_| builder.next_finalized(Vec::new()))
            .collect();
        let mut checker = AheadChecker::start(2).unwrap();
        for (i, range) in blocks.chunks(4).enumerate() {
            assert!(checker.submit(job(i as u64, &signers, range)).is_none());
        }
        let mut back: Vec<u64> = (0..3)
            .map(|_| {
                checker
                    .done
                    .blocking_recv()
                    .expect("a checked range")
                    .request_id
                    .0
            })
            .collect();
        back.sort();
        assert_eq!(back, vec![0, 1, 2]);
        // 3 of 4 equal validators are needed per block.
        assert_eq!(checker.cache.len(), 12 * 3);
        let trusted = TrustedState {
            hash: genesis.block.header.hash(),
            header: genesis.block.header.clone(),
            next_validators: Arc::new(signers),
        };
        let headers: Vec<_> = blocks.iter().map(FinalizedBlock::trusted_header).collect();
        let verifier = crate::verify::Verifier::new().with_cache(Arc::clone(&checker.cache));
        assert!(verifier
            .verify_range(&trusted, &headers, u64::MAX / 2)
            .is_ok());
        assert_eq!(checker.cache.used(), 12 * 3);
    }

    #[test]
    fn dropping_the_checker_ends_its_threads() {
        let mut builder = ChainBuilder::new("checker-chain", 4);
        let signers = builder.current_set().clone();
        let blocks: Vec<FinalizedBlock> =
            (0..4).map(|_| builder.next_finalized(Vec::new())).collect();
        let mut checker = AheadChecker::start(2).unwrap();
        assert!(checker.submit(job(0, &signers, &blocks)).is_none());
        // Joins the threads: returns only if they all end.
        drop(checker);
    }

    #[test]
    fn writes_batches_in_order_and_reports_each() {
        let blocks = chain(9);
        let (store, mut writer) = writer_over(&blocks[..1]);
        writer.write(7, blocks[1..5].to_vec()).unwrap();
        writer.write(8, blocks[5..].to_vec()).unwrap();
        assert_eq!(writer.pending, 2);
        let first = next_done(&mut writer);
        let (up_to, written) = first.outcome.unwrap().unwrap();
        assert_eq!((first.generation, up_to, written.len()), (7, 4, 4));
        let second = next_done(&mut writer);
        let (up_to, written) = second.outcome.unwrap().unwrap();
        assert_eq!((second.generation, up_to, written.len()), (8, 8, 4));
        assert_eq!(head(&*store), 8);
    }

    #[test]
    fn skips_blocks_stored_meanwhile_and_refuses_different_ones() {
        let blocks = chain(6);
        // Consensus stored up to 3 while the batch 1..=5 was on its way.
        let (store, mut writer) = writer_over(&blocks[..4]);
        writer.write(0, blocks[1..].to_vec()).unwrap();
        let (up_to, written) = next_done(&mut writer).outcome.unwrap().unwrap();
        assert_eq!(up_to, 5);
        assert_eq!(
            written
                .iter()
                .map(FinalizedBlock::height)
                .collect::<Vec<_>>(),
            [4, 5],
            "only the blocks the store did not hold are reported written"
        );
        // All held already: nothing new.
        writer.write(0, blocks[2..].to_vec()).unwrap();
        assert!(next_done(&mut writer).outcome.unwrap().is_none());
        // A stored height with another block: refused, nothing written.
        let mut other = blocks[5].clone();
        other.block.header.timestamp_ms += 1;
        writer.write(0, vec![other]).unwrap();
        let refused = next_done(&mut writer).outcome.unwrap_err();
        assert!(refused.to_string().contains("differs"), "{refused}");
        assert_eq!(head(&*store), 5);
        // A gap (block 7 with 6 missing) is refused by the store's own append rules.
        let more = chain(8);
        writer.write(0, vec![more[7].clone()]).unwrap();
        assert!(next_done(&mut writer).outcome.is_err());
        assert_eq!(head(&*store), 5);
    }

    /// Two networks on loopback, handshaken, each knowing the other's status; the second
    /// announces `head` (and serves nothing: nobody polls it, so requests to it stay open).
    async fn handshaken_pair(head: &FinalizedBlock) -> (Network, Network) {
        use crate::net::{keypair_from_seed, NetEvent, NetworkConfig};
        let config = |seed: u8, status: Status| {
            let mut c = NetworkConfig::new(
                keypair_from_seed([seed; 32]),
                head.block.header.chain_id.clone(),
                crate::chain::Hash([7; 32]),
                status,
            );
            c.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
            c
        };
        let status = |b: &FinalizedBlock| Status {
            head_height: b.height(),
            head_hash: b.block.header.hash(),
            mmr_root: crate::chain::Hash::ZERO,
            lowest_height: 0,
            syncing: false,
        };
        let (mut ours, _) = Network::new(config(1, status(head))).await.unwrap();
        let (mut theirs, _) = Network::new(config(2, status(head))).await.unwrap();
        let addr = theirs.listen_addrs()[0]
            .clone()
            .with(libp2p::multiaddr::Protocol::P2p(theirs.local_peer_id()));
        ours.dial(addr).unwrap();
        let peer = theirs.local_peer_id();
        tokio::time::timeout(Duration::from_secs(10), async {
            while ours.peer_book().status(&peer).is_none() {
                tokio::select! {
                    e = ours.next_event() => {
                        assert!(!matches!(e, NetEvent::HandshakeFailed { .. }), "{e:?}");
                    }
                    _ = theirs.next_event() => {}
                }
            }
        })
        .await
        .expect("handshake and status in time");
        (ours, theirs)
    }

    /// A store holding `blocks[..=2]`, the genesis of their chain (one set, no hand-over) and
    /// that set.
    fn synced_to_2(blocks: &[FinalizedBlock]) -> (Arc<MemoryStore>, Arc<Genesis>, ValidatorSet) {
        let store = store_holding(&blocks[..3]);
        let signers = ChainBuilder::new("writer-chain", 4).current_set().clone();
        let chain_id = blocks[0].block.header.chain_id.clone();
        let genesis = Genesis::new(chain_id, 0, signers.clone(), Default::default()).unwrap();
        (store, Arc::new(genesis), signers)
    }

    /// A range checked ahead for a machine that was rebuilt meanwhile is dropped: the new
    /// machine reuses request ids, and would take the old range as the answer to its own
    /// (and blame the peer). A range checked for the current machine is taken.
    #[tokio::test]
    async fn a_range_checked_for_a_rebuilt_machine_is_dropped() {
        let blocks = chain(13);
        let (store, genesis, signers) = synced_to_2(&blocks);
        let (mut network, _theirs) = handshaken_pair(&blocks[12]).await;
        let peer = network.handshaken_peers()[0];
        let metrics = Metrics::new();
        let options = SyncOptions {
            blocks_per_request: 4,
            max_requests_per_peer: 1,
            max_requests_total: 1,
            verify_threads: 1,
            ..SyncOptions::default()
        };
        let mut driver =
            SyncDriver::new(store.clone(), genesis, options, crate::node::now_ms()).unwrap();
        macro_rules! ctx {
            () => {
                Ctx {
                    network: &mut network,
                    store: &*store,
                    metrics: &metrics,
                }
            };
        }
        let status = network.peer_book().status(&peer).unwrap().status.clone();
        driver.peer_connected(peer, status, ctx!());
        let first: Vec<RequestId> = driver.requests.values().map(|(id, _)| *id).collect();
        assert_eq!(first.len(), 1, "one request for blocks 3..=6");

        // Consensus stored 3..=6 meanwhile; the machine starts again from there and asks
        // the peer for 7..=10 under the same request id.
        store.append(&blocks[3..7]).unwrap();
        driver.reanchor(&*store, &network, crate::node::now_ms());
        driver.tick(ctx!());
        let second: Vec<RequestId> = driver.requests.values().map(|(id, _)| *id).collect();
        assert_eq!(second, first, "the rebuilt machine reuses the id");
        assert_eq!(driver.generation, 1);

        let job = |generation: u64, range: &[FinalizedBlock]| AheadJob {
            generation,
            peer,
            request_id: first[0],
            signers: Arc::new(signers.clone()),
            response: Response::Blocks(BlocksResponse::Blocks(range.to_vec())),
            seconds: 0.0,
        };
        // The old machine's answer (3..=6), checked ahead, comes back now: dropped.
        driver.finished(Finished::Checked(job(0, &blocks[3..7])), ctx!());
        assert_eq!(
            driver.machine().requests_in_flight(),
            1,
            "still waiting for 7..=10"
        );
        assert_eq!(network.peer_score(&peer), 0, "the peer is not blamed");
        assert_eq!(driver.applied_height(), 6);

        // The current machine's answer is taken and verified.
        driver.finished(Finished::Checked(job(1, &blocks[7..11])), ctx!());
        assert_eq!(
            driver.machine().requests_in_flight(),
            1,
            "and on to 11..=12"
        );
        assert_eq!(driver.applied_height(), 10);
        assert_eq!(network.peer_score(&peer), 0);
    }

    /// A batch written for a machine rebuilt meanwhile moves the new machine to the store head
    /// when the write passed it, so the blocks are not fetched again.
    #[tokio::test]
    async fn a_write_finished_for_a_rebuilt_machine_moves_the_new_one_to_the_store_head() {
        let blocks = chain(9);
        let (store, genesis, _) = synced_to_2(&blocks);
        let (mut network, _theirs) = handshaken_pair(&blocks[2]).await;
        let metrics = Metrics::new();
        let options = SyncOptions {
            verify_threads: 1,
            ..SyncOptions::default()
        };
        let mut driver =
            SyncDriver::new(store.clone(), genesis, options, crate::node::now_ms()).unwrap();
        // The machine is rebuilt (still at 2) while a batch of generation 0 is on its way.
        driver.reanchor(&*store, &network, crate::node::now_ms());
        assert_eq!(driver.generation, 1);
        driver.writer.write(0, blocks[3..6].to_vec()).unwrap();
        let finished = driver.next_finished().await;
        let written = driver.finished(
            finished,
            Ctx {
                network: &mut network,
                store: &*store,
                metrics: &metrics,
            },
        );
        assert_eq!(written.len(), 1);
        assert_eq!(
            written[0].blocks.len(),
            3,
            "the node still follows the blocks written"
        );
        assert_eq!(head(&*store), 5);
        assert_eq!(
            driver.applied_height(),
            5,
            "the new machine starts at the store head"
        );
    }

    /// A store in which another writer lands `ahead` just as the next append starts: what
    /// consensus can do between `append_new`'s head read and its append.
    struct RacingStore {
        inner: MemoryStore,
        ahead: std::sync::Mutex<Vec<FinalizedBlock>>,
    }

    impl ChainStore for RacingStore {
        fn head(&self) -> Result<Option<crate::store::Head>, crate::store::StoreError> {
            self.inner.head()
        }
        fn append(&self, blocks: &[FinalizedBlock]) -> Result<(), crate::store::StoreError> {
            let ahead = std::mem::take(&mut *self.ahead.lock().unwrap());
            if !ahead.is_empty() {
                self.inner.append(&ahead)?;
            }
            self.inner.append(blocks)
        }
        fn install_snapshot(
            &self,
            snapshot: &crate::protocol::snapshot::Snapshot,
        ) -> Result<(), crate::store::StoreError> {
            self.inner.install_snapshot(snapshot)
        }
        fn header(
            &self,
            height: u64,
        ) -> Result<Option<crate::chain::TrustedHeader>, crate::store::StoreError> {
            self.inner.header(height)
        }
        fn headers(
            &self,
            start: u64,
            count: u32,
        ) -> Result<Vec<crate::chain::TrustedHeader>, crate::store::StoreError> {
            self.inner.headers(start, count)
        }
        fn block(&self, height: u64) -> Result<Option<FinalizedBlock>, crate::store::StoreError> {
            self.inner.block(height)
        }
        fn blocks(
            &self,
            start: u64,
            count: u32,
        ) -> Result<Vec<FinalizedBlock>, crate::store::StoreError> {
            self.inner.blocks(start, count)
        }
        fn height_of(
            &self,
            hash: &crate::chain::BlockHash,
        ) -> Result<Option<u64>, crate::store::StoreError> {
            self.inner.height_of(hash)
        }
        fn event_location(
            &self,
            id: &crate::chain::EventId,
        ) -> Result<Option<crate::store::EventLocation>, crate::store::StoreError> {
            self.inner.event_location(id)
        }
        fn mmr_node(
            &self,
            level: u8,
            index: u64,
        ) -> Result<Option<crate::chain::Hash>, crate::store::StoreError> {
            self.inner.mmr_node(level, index)
        }
        fn validators_for(
            &self,
            height: u64,
        ) -> Result<Option<ValidatorSet>, crate::store::StoreError> {
            self.inner.validators_for(height)
        }
        fn lowest_height(&self) -> Result<u64, crate::store::StoreError> {
            self.inner.lowest_height()
        }
        fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, crate::store::StoreError> {
            self.inner.get_meta(key)
        }
        fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), crate::store::StoreError> {
            self.inner.put_meta(key, value)
        }
    }

    fn racing(stored: &[FinalizedBlock], ahead: &[FinalizedBlock]) -> RacingStore {
        let inner = MemoryStore::new();
        inner.append(stored).unwrap();
        RacingStore {
            inner,
            ahead: std::sync::Mutex::new(ahead.to_vec()),
        }
    }

    #[test]
    fn append_new_retries_once_when_another_writer_moved_the_head() {
        let blocks = chain(7);
        // 3 and 4 land between the head read (2) and the append of 3..=6.
        let store = racing(&blocks[..3], &blocks[3..5]);
        let (up_to, written) = append_new(&store, blocks[3..].to_vec()).unwrap().unwrap();
        assert_eq!(up_to, 6);
        assert_eq!(
            written
                .iter()
                .map(FinalizedBlock::height)
                .collect::<Vec<_>>(),
            [5, 6],
            "only what this call wrote"
        );
        assert_eq!(head(&store), 6);

        // Everything landed meanwhile: nothing to write, no error.
        let store = racing(&blocks[..3], &blocks[3..]);
        assert!(append_new(&store, blocks[3..].to_vec()).unwrap().is_none());
        assert_eq!(head(&store), 6);
    }

    #[test]
    fn append_new_refuses_a_block_that_differs_from_one_landed_meanwhile() {
        let blocks = chain(5);
        // Another valid block 3 on the same prefix (it carries an event).
        let mut fork = ChainBuilder::new("writer-chain", 4);
        for _ in 0..3 {
            fork.next_finalized(Vec::new());
        }
        let event = crate::testkit::event(&crate::testkit::key(5), 1, 2);
        let other = fork.next_finalized(vec![event]);
        assert_ne!(other.block.header.hash(), blocks[3].block.header.hash());
        let store = racing(&blocks[..3], &[other]);
        let refused = append_new(&store, blocks[3..].to_vec()).unwrap_err();
        assert!(refused.to_string().contains("block 3 differs"), "{refused}");
        assert_eq!(head(&store), 3, "the other writer's block stays");
    }

    #[test]
    fn append_new_does_not_retry_when_the_head_did_not_move() {
        let blocks = chain(6);
        // A gap (4 without 3) fails, and nobody else wrote: the store's error, at once.
        let store = racing(&blocks[..3], &[]);
        assert!(append_new(&store, blocks[4..].to_vec()).is_err());
        assert_eq!(head(&store), 2);
    }

    #[test]
    fn dropping_the_writer_finishes_what_was_handed_over() {
        let blocks = chain(40);
        let (store, mut writer) = writer_over(&blocks[..1]);
        for batch in blocks[1..].chunks(3) {
            writer.write(0, batch.to_vec()).unwrap();
        }
        drop(writer);
        assert_eq!(head(&*store), 39);
        // The thread has let go of the store.
        assert_eq!(Arc::strong_count(&store), 1);
    }
}
