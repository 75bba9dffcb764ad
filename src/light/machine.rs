//! The light client state machine: inputs in, actions out, time as an input.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use super::error::{DropReason, LightError, RequestFailure, StopReason};
use super::messages::{Action, Input, Phase, Progress, QueryId, RequestId};
use super::options::LightOptions;
use super::peers::Peers;
use super::proofs::Query;
use super::ranges::Ranges;
use super::stored::{StoredHeader, VerifiedHeader};
use super::window::Window;
use crate::chain::{BlockHash, Checkpoint, EventId, ValidatorSet};
use crate::protocol::{ErrorCode, HeadersResponse, Request, Response, Status};
use crate::verify::{TrustedState, Verifier, VerifyError};

/// Counters for tests, benchmarks and a status page.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LightStats {
    /// Requests of every kind sent.
    pub requests_sent: u64,
    /// `GetHeaders` requests sent (checkpoint header, ranges and fork probes).
    pub header_requests: u64,
    /// Headers asked for in those requests.
    pub headers_requested: u64,
    /// Headers received in range responses.
    pub headers_received: u64,
    /// Headers verified (the anchor not counted).
    pub headers_verified: u64,
    pub proof_requests: u64,
    /// Requests that failed or timed out.
    pub request_failures: u64,
    pub peers_dropped: u64,
}

/// What a request in flight was for.
#[derive(Clone, Debug)]
pub(crate) enum RequestKind {
    /// The checkpoint's header.
    Anchor,
    /// Sync: heights `start..start + count`.
    Range { start: u64, count: u64 },
    /// The peer's header at `height`, to compare with ours after its header above did not link
    /// (`error`, at `height + 1`), or after its status named another head hash.
    Probe {
        height: u64,
        error: Option<VerifyError>,
    },
    /// An event proof for a query.
    Proof { query: QueryId },
}

#[derive(Clone, Debug)]
pub(crate) struct InFlight<P> {
    pub peer: P,
    pub kind: RequestKind,
    pub deadline_ms: u64,
}

/// Progress reporting state.
#[derive(Clone, Debug, Default)]
struct Reporter {
    last_phase: Option<Phase>,
    last_at: u64,
    last_height: u64,
    last_peers: usize,
    /// (time, verified height) samples over the last few seconds.
    samples: VecDeque<(u64, u64)>,
}

const RATE_WINDOW_MS: u64 = 5_000;

/// The light client: header-first sync from a checkpoint, fork detection and event proofs, as
/// a sans-I/O machine. See the [module documentation](super) for the driver loop.
#[derive(Debug)]
pub struct LightClient<P> {
    pub(super) options: LightOptions,
    pub(super) checkpoint: Checkpoint,
    pub(super) verifier: Verifier,
    pub(super) now_ms: u64,
    /// The verified head; `None` until the checkpoint's header arrives.
    pub(super) trusted: Option<TrustedState>,
    pub(super) peers: Peers<P>,
    pub(super) ranges: Ranges<P>,
    pub(super) window: Window,
    pub(super) requests: BTreeMap<RequestId, InFlight<P>>,
    pub(super) next_request: u64,
    pub(super) queries: BTreeMap<QueryId, Query<P>>,
    pub(super) actions: VecDeque<Action<P>>,
    pub(super) to_store: Vec<VerifiedHeader>,
    pub(super) to_store_since: u64,
    /// Every height up to this one is durably stored (per [`Input::Stored`]).
    pub(super) stored_height: Option<u64>,
    pub(super) announced_height: Option<u64>,
    pub(super) stopped: Option<StopReason>,
    /// When a header request held back only by the peers' pace may go (set by `schedule`).
    pub(super) pace_wakeup: Option<u64>,
    /// Caught up, and since then never more than a request batch behind the target: the next
    /// heads come in one round trip, which is following, not syncing.
    following: bool,
    reporter: Reporter,
    pub(super) stats: LightStats,
}

impl<P: Clone + Ord + fmt::Debug> LightClient<P> {
    /// A client that trusts `checkpoint` and nothing else. It first fetches the checkpoint's
    /// header from a peer.
    pub fn new(
        checkpoint: Checkpoint,
        options: LightOptions,
        now_ms: u64,
    ) -> Result<Self, LightError> {
        options.validate()?;
        let next = checkpoint.height.checked_add(1).ok_or_else(|| {
            LightError::InvalidOptions("checkpoint at the last possible height".into())
        })?;
        Ok(LightClient {
            verifier: Verifier::new()
                .with_max_clock_drift_ms(options.max_clock_drift_ms)
                .with_checkpoint(checkpoint.clone()),
            window: Window::new(options.fork_window),
            ranges: Ranges::new(next),
            options,
            checkpoint,
            now_ms,
            trusted: None,
            peers: Peers::new(),
            requests: BTreeMap::new(),
            next_request: 0,
            pace_wakeup: None,
            queries: BTreeMap::new(),
            actions: VecDeque::new(),
            to_store: Vec::new(),
            to_store_since: now_ms,
            stored_height: None,
            announced_height: None,
            stopped: None,
            following: false,
            reporter: Reporter::default(),
            stats: LightStats::default(),
        })
    }

    /// A client that continues from a head it verified and stored earlier: `stored_head` and
    /// the set that signs the block after it. It requests nothing at or below the stored head.
    pub fn resume(
        checkpoint: Checkpoint,
        stored_head: StoredHeader,
        next_validators: ValidatorSet,
        options: LightOptions,
        now_ms: u64,
    ) -> Result<Self, LightError> {
        let head = &stored_head.header;
        if head.chain_id != checkpoint.chain_id {
            return Err(LightError::Resume(format!(
                "stored head is on chain {}, the checkpoint on {}",
                head.chain_id, checkpoint.chain_id
            )));
        }
        if head.height < checkpoint.height {
            return Err(LightError::Resume(format!(
                "stored head {} is below the checkpoint {}",
                head.height, checkpoint.height
            )));
        }
        if head.hash() != stored_head.hash {
            return Err(LightError::Resume(
                "stored head hash is not its header's".into(),
            ));
        }
        if head.height == checkpoint.height {
            checkpoint.check_header(head)?;
        }
        if next_validators.hash() != head.next_validators_hash {
            return Err(LightError::Resume(format!(
                "stored next validator set {} is not the set {} the head names",
                next_validators.hash(),
                head.next_validators_hash
            )));
        }
        let mut client = Self::new(checkpoint, options, now_ms)?;
        let height = stored_head.height();
        client.ranges = Ranges::new(height + 1);
        client.stored_height = Some(height);
        client.set_anchor(TrustedState {
            hash: stored_head.hash,
            header: stored_head.header,
            next_validators: Arc::new(next_validators),
        });
        Ok(client)
    }

    /// Feeds one input. Then take every [`Action`] with [`LightClient::next_action`].
    pub fn feed(&mut self, input: Input<P>) {
        if self.stopped.is_some() {
            if let Input::VerifyEvent { query_id, .. } = input {
                self.answer_stopped(query_id);
            }
            return;
        }
        match input {
            Input::PeerConnected { peer, status } => self.on_connected(peer, status),
            Input::PeerStatus { peer, status } => {
                if self.peers.update_status(&peer, &status) {
                    self.check_claimed_heads();
                }
            }
            Input::PeerDisconnected { peer } => {
                if self.peers.remove(&peer).is_some() {
                    self.abandon_requests_of(&peer);
                    self.ranges.forget_peer(&peer);
                }
            }
            Input::Response {
                peer,
                request_id,
                response,
            } => self.on_response(peer, request_id, response),
            Input::RequestFailed {
                peer,
                request_id,
                reason,
            } => self.on_failure(&peer, request_id, reason),
            Input::Stored { up_to_height } => {
                self.stored_height = Some(self.stored_height.unwrap_or(0).max(up_to_height));
            }
            Input::Tick { now_ms } => self.on_tick(now_ms),
            Input::VerifyEvent { query_id, event_id } => self.on_verify_event(query_id, event_id),
            Input::NewHead { peer, header } => self.on_new_head(peer, *header),
        }
        self.update_following();
        if self.stopped.is_none() {
            self.schedule();
        }
        self.report_progress();
    }

    /// Asks for a proof that `event_id` is in the chain; the answer comes as
    /// [`Action::EventVerified`] with `query_id`. The same as feeding [`Input::VerifyEvent`].
    pub fn verify_event(&mut self, query_id: QueryId, event_id: EventId) {
        self.feed(Input::VerifyEvent { query_id, event_id });
    }

    /// The next thing to do, in order; `None` when there is nothing until the next input.
    pub fn next_action(&mut self) -> Option<Action<P>> {
        self.actions.pop_front()
    }

    /// When the machine next needs a [`Input::Tick`] (a timeout, a back-off ending, a store
    /// batch to flush), if anything is pending.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        if self.stopped.is_some() {
            return None;
        }
        let requests = self.requests.values().map(|r| r.deadline_ms);
        let queries = self.queries.values().map(|q| q.deadline_ms);
        let flush =
            (!self.to_store.is_empty()).then(|| self.to_store_since + self.options.store_flush_ms);
        let backoff = self.peers.next_backoff_end(self.now_ms);
        let pace = self.pace_wakeup.filter(|&t| t > self.now_ms);
        requests
            .chain(queries)
            .chain(flush)
            .chain(backoff)
            .chain(pace)
            .min()
    }

    pub fn phase(&self) -> Phase {
        if self.stopped.is_some() {
            Phase::Stopped
        } else if self.peers.len() == 0 {
            Phase::WaitingForPeers
        } else if self.trusted.is_none() {
            Phase::Bootstrapping
        } else if self.following {
            Phase::Following
        } else {
            Phase::Syncing
        }
    }

    /// Following starts when the verified head reaches the target and lasts while the gap
    /// stays within one request batch: a full node pushes its Status about once a second
    /// (several heads on a fast chain), and fetching those few is following, not syncing.
    fn update_following(&mut self) {
        let Some(verified) = self.verified_height() else {
            self.following = false;
            return;
        };
        let gap = self.target_height().saturating_sub(verified);
        self.following = if self.following {
            gap <= u64::from(self.options.batch_size)
        } else {
            gap == 0
        };
    }

    /// The verified head, once the checkpoint's header is in.
    pub fn trusted(&self) -> Option<&TrustedState> {
        self.trusted.as_ref()
    }

    pub fn verified_height(&self) -> Option<u64> {
        self.trusted.as_ref().map(TrustedState::height)
    }

    /// The best head the connected peers claim (at least the verified head).
    pub fn target_height(&self) -> u64 {
        let verified = self.verified_height().unwrap_or(self.checkpoint.height);
        self.peers.best_head().unwrap_or(0).max(verified)
    }

    /// Every height up to this one was acknowledged with [`Input::Stored`].
    pub fn stored_height(&self) -> Option<u64> {
        self.stored_height
    }

    /// Headers received ahead of their turn and not yet verified (bounded by
    /// [`LightOptions::max_ahead_headers`]).
    pub fn buffered_headers(&self) -> usize {
        self.ranges.buffered_headers()
    }

    /// Requests sent and not yet answered, failed or timed out.
    pub fn requests_in_flight(&self) -> usize {
        self.requests.len()
    }

    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    pub fn options(&self) -> &LightOptions {
        &self.options
    }

    pub fn stats(&self) -> &LightStats {
        &self.stats
    }

    /// Why the machine stopped, if it did.
    pub fn stopped(&self) -> Option<StopReason> {
        self.stopped
    }

    /// The current progress report.
    pub fn progress(&self) -> Progress {
        Progress {
            phase: self.phase(),
            verified_height: self.verified_height().unwrap_or(self.checkpoint.height),
            target_height: self.target_height(),
            peers: self.peers.len(),
            headers_per_second: self.rate(),
        }
    }

    // ---- inputs -------------------------------------------------------------------------

    pub(super) fn on_connected(&mut self, peer: P, status: Status) {
        match self.peers.connect(peer.clone(), &status, self.now_ms) {
            Ok(()) => self.check_claimed_heads(),
            Err(until_ms) => self.actions.push_back(Action::DropPeer {
                peer,
                reason: DropReason::Avoided { until_ms },
            }),
        }
    }

    pub(super) fn on_tick(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        let now = self.now_ms;
        self.peers.expire(now);
        let expired: Vec<(RequestId, P)> = self
            .requests
            .iter()
            .filter(|(_, r)| r.deadline_ms <= now)
            .map(|(&id, r)| (id, r.peer.clone()))
            .collect();
        for (id, peer) in expired {
            self.on_failure(&peer, id, RequestFailure::Timeout);
        }
        self.expire_queries();
        if !self.to_store.is_empty() && now >= self.to_store_since + self.options.store_flush_ms {
            self.flush();
        }
    }

    pub(super) fn on_response(&mut self, peer: P, id: RequestId, response: Response) {
        if self.requests.get(&id).is_none_or(|r| r.peer != peer) {
            return; // Late (timed out, abandoned) or from the wrong peer: ignore.
        }
        let Some(request) = self.requests.remove(&id) else {
            return;
        };
        self.peers.done(&peer);
        match (request.kind, response) {
            (RequestKind::Proof { query }, Response::Proof(r)) => {
                self.on_proof_response(peer, id, query, r)
            }
            (kind, Response::Headers(HeadersResponse::Error(e)))
                if !matches!(kind, RequestKind::Proof { .. }) =>
            {
                if matches!(e.code, ErrorCode::NotFound | ErrorCode::Unsupported) {
                    // It does not have these heights (pruned, or behind): ask another peer.
                    let start = match kind {
                        RequestKind::Range { start, .. } => start,
                        RequestKind::Probe { height, .. } => height,
                        RequestKind::Anchor | RequestKind::Proof { .. } => self.checkpoint.height,
                    };
                    self.release(&peer, &kind);
                    self.peers.lacks(&peer, start);
                } else {
                    self.request_failed(&peer, id, kind, RequestFailure::Transport(e.to_string()));
                }
            }
            (RequestKind::Anchor, Response::Headers(HeadersResponse::Headers(h))) => {
                self.on_anchor(peer, h)
            }
            (
                RequestKind::Range { start, count },
                Response::Headers(HeadersResponse::Headers(h)),
            ) => self.on_range(peer, start, count, h),
            (
                RequestKind::Probe { height, error },
                Response::Headers(HeadersResponse::Headers(h)),
            ) => self.on_probe(peer, height, error, h),
            (kind, other) => {
                let message = format!("a {:?} response to a {kind:?} request", other.protocol());
                self.release(&peer, &kind);
                self.drop_peer(peer, DropReason::Malformed(message), self.options.avoid_ms);
            }
        }
    }

    pub(super) fn on_failure(&mut self, peer: &P, id: RequestId, reason: RequestFailure) {
        if self.requests.get(&id).is_none_or(|r| r.peer != *peer) {
            return;
        }
        if let Some(request) = self.requests.remove(&id) {
            self.peers.done(peer);
            self.request_failed(peer, id, request.kind, reason);
        }
    }

    /// A request that got no usable answer: release what it held, back the peer off, and drop
    /// it after too many failures in a row.
    pub(super) fn request_failed(
        &mut self,
        peer: &P,
        id: RequestId,
        kind: RequestKind,
        reason: RequestFailure,
    ) {
        self.stats.request_failures += 1;
        if let RequestKind::Proof { query } = kind {
            self.proof_attempt_failed(
                query,
                id,
                LightError::ProofUnavailable {
                    event_id: self
                        .queries
                        .get(&query)
                        .map(|q| q.event_id)
                        .unwrap_or_default(),
                    reason: reason.to_string(),
                },
            );
        } else {
            self.release(peer, &kind);
        }
        let options = &self.options;
        let failures = self
            .peers
            .failed(peer, self.now_ms, |n| options.backoff_ms(n));
        if failures >= self.options.max_consecutive_failures {
            let avoid = self.options.backoff_max_ms;
            self.drop_peer(peer.clone(), DropReason::Unresponsive { failures }, avoid);
        }
    }

    /// Gives back what a header request to `peer` held: its range, or the peer's probe slot.
    pub(super) fn release(&mut self, peer: &P, kind: &RequestKind) {
        match *kind {
            RequestKind::Range { start, count } => {
                // Heights verified meanwhile (through gossip) are not needed again.
                let next = self.verified_height().map_or(start, |h| h + 1);
                let end = start + count;
                if end > next {
                    let s = start.max(next);
                    self.ranges.requeue(s, end - s);
                }
            }
            RequestKind::Probe { .. } => {
                if let Some(info) = self.peers.get_mut(peer) {
                    info.suspect = false;
                }
            }
            RequestKind::Anchor | RequestKind::Proof { .. } => {}
        }
    }

    /// Drops every request to `peer` (it is gone): ranges go back to the queue, proofs to
    /// another peer.
    pub(super) fn abandon_requests_of(&mut self, peer: &P) {
        let ids: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| r.peer == *peer)
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            if let Some(r) = self.requests.remove(&id) {
                match r.kind {
                    RequestKind::Proof { query } => {
                        let event_id = self.queries.get(&query).map(|q| q.event_id);
                        self.proof_attempt_failed(
                            query,
                            id,
                            LightError::ProofUnavailable {
                                event_id: event_id.unwrap_or_default(),
                                reason: "peer disconnected".into(),
                            },
                        );
                    }
                    kind => self.release(peer, &kind),
                }
            }
        }
    }

    /// Disconnects `peer` and avoids it for `avoid_ms`.
    pub(super) fn drop_peer(&mut self, peer: P, reason: DropReason, avoid_ms: u64) {
        self.peers
            .avoid(&peer, self.now_ms.saturating_add(avoid_ms));
        self.abandon_requests_of(&peer);
        self.ranges.forget_peer(&peer);
        self.stats.peers_dropped += 1;
        self.actions.push_back(Action::DropPeer { peer, reason });
    }

    // ---- requests ---------------------------------------------------------------------------

    pub(super) fn send(&mut self, peer: P, kind: RequestKind, request: Request) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        self.stats.requests_sent += 1;
        match &request {
            Request::GetHeaders(g) => {
                self.stats.header_requests += 1;
                self.stats.headers_requested += u64::from(g.count);
                self.peers.header_request_sent(&peer, self.now_ms);
            }
            Request::GetProof(_) => self.stats.proof_requests += 1,
            Request::GetBlocks(_) | Request::GetSnapshot(_) => {}
        }
        self.peers.sent(&peer);
        self.requests.insert(
            id,
            InFlight {
                peer: peer.clone(),
                kind,
                deadline_ms: self.now_ms.saturating_add(self.options.request_timeout_ms),
            },
        );
        self.actions.push_back(Action::SendRequest {
            peer,
            request_id: id,
            request,
        });
        id
    }

    // ---- progress ---------------------------------------------------------------------------

    pub(super) fn rate(&self) -> f64 {
        match (self.reporter.samples.front(), self.reporter.samples.back()) {
            (Some(&(t0, h0)), Some(&(t1, h1))) if t1 > t0 => {
                (h1 - h0) as f64 * 1000.0 / (t1 - t0) as f64
            }
            _ => 0.0,
        }
    }

    pub(super) fn report_progress(&mut self) {
        let now = self.now_ms;
        let height = self.verified_height().unwrap_or(self.checkpoint.height);
        let samples = &mut self.reporter.samples;
        if samples.back().is_none_or(|&(t, h)| t < now || h != height) {
            samples.push_back((now, height));
        }
        while samples.len() > 2
            && samples
                .front()
                .is_some_and(|&(t, _)| t + RATE_WINDOW_MS < now)
        {
            samples.pop_front();
        }
        let phase = self.phase();
        let peers = self.peers.len();
        let changed = height != self.reporter.last_height || peers != self.reporter.last_peers;
        let due = now >= self.reporter.last_at + self.options.progress_interval_ms;
        if self.reporter.last_phase != Some(phase) || (changed && due) {
            self.reporter.last_phase = Some(phase);
            self.reporter.last_at = now;
            self.reporter.last_height = height;
            self.reporter.last_peers = peers;
            let progress = self.progress();
            self.actions.push_back(Action::Progress(progress));
        }
    }

    /// The hash we hold at `height`, if it is in the recent window.
    pub fn recent_hash(&self, height: u64) -> Option<BlockHash> {
        self.window.get(height).map(|h| h.hash)
    }
}
