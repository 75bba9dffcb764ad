//! The block-sync state machine: inputs in, actions out, time as an input. Requests,
//! failures, peers and reports live here; what happens to received data (verification,
//! application, writes, forks) is in `pipeline.rs`.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use super::balancer::Balancer;
use super::error::{Fault, GiveUp, RequestFailure, StopReason, SyncError};
use super::messages::{Action, Input, Progress, ProgressRecord, RequestId, SyncMetrics, SyncState};
use super::options::{SyncMode, SyncOptions};
use super::progress::Tracker;
use super::ranges::{RangeQueue, Ready};
use crate::chain::{BlockHash, FinalizedBlock, TrustedHeader, ValidatorSet};
use crate::protocol::{
    BlocksResponse, ErrorCode, GetBlocks, GetHeaders, HeadersResponse, Request, Response, Status,
};
use crate::verify::{SignatureCache, TrustedState, Verifier};

/// What a request in flight asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Headers { start: u64, count: u64 },
    Blocks { start: u64, count: u64 },
}

#[derive(Clone, Debug)]
pub(crate) struct InFlight<P> {
    pub peer: P,
    pub kind: Kind,
    pub sent_ms: u64,
}

/// A recent verified header, kept to recognise a conflicting finalized block.
#[derive(Clone, Debug)]
pub(crate) struct Recent {
    pub hash: BlockHash,
    pub header: TrustedHeader,
    /// The set that signed it.
    pub signers: Arc<ValidatorSet>,
}

/// A block handed to the driver (or batched for it) and not yet acknowledged as written.
#[derive(Clone, Debug)]
pub(crate) struct Unwritten {
    pub height: u64,
    pub hash: BlockHash,
    pub bytes: u64,
}

/// The full node's block sync as a sans-I/O machine: parallel ranges over the balanced peers,
/// fast or header-first, applied strictly in height order, written in batches, bounded in
/// memory. See the [module documentation](super) for the driver loop.
#[derive(Debug)]
pub struct BlockSync<P> {
    pub(super) options: SyncOptions,
    pub(super) verifier: Verifier,
    pub(super) now_ms: u64,
    pub(super) state: SyncState,
    pub(super) stopped: Option<StopReason>,
    /// The last verified header: the applied block in fast mode, ahead of it in header-first.
    pub(super) head: TrustedState,
    /// The last block verified with its body and handed on for writing.
    pub(super) applied: (u64, BlockHash),
    /// Header-first: verified headers above `applied`, waiting for their bodies, and their
    /// encoded size.
    pub(super) headers: VecDeque<TrustedHeader>,
    pub(super) headers_bytes: u64,
    pub(super) recent: BTreeMap<u64, Recent>,
    pub(super) peers: Balancer<P>,
    pub(super) header_queue: RangeQueue,
    pub(super) header_ready: Ready<P, TrustedHeader>,
    pub(super) block_queue: RangeQueue,
    pub(super) block_ready: Ready<P, FinalizedBlock>,
    pub(super) requests: BTreeMap<RequestId, InFlight<P>>,
    pub(super) next_request: u64,
    /// Verified blocks waiting for a write batch to fill.
    pub(super) to_write: Vec<FinalizedBlock>,
    pub(super) to_write_since: u64,
    /// Every verified block not yet acknowledged (batched or handed out), in height order.
    pub(super) unwritten: VecDeque<Unwritten>,
    pub(super) unwritten_bytes: u64,
    /// Every block up to here is durably written.
    pub(super) written: (u64, BlockHash),
    /// Since when handed-out writes wait for an acknowledgement (`None` if none waits), and
    /// whether the store was already asked.
    pub(super) awaiting_ack_since: Option<u64>,
    pub(super) store_asked: bool,
    pub(super) actions: VecDeque<Action<P>>,
    pub(super) tracker: Tracker,
    pub(super) metrics: SyncMetrics,
    /// The most held at once: `(blocks, bytes)`, for tests and a status page.
    pub(super) high_water: (u64, u64),
}

impl<P: Clone + Ord + fmt::Debug> BlockSync<P> {
    /// A sync that continues from the store's head: `head` is its header and hash and the
    /// validator set that signs the next block (`TrustedState`). Nothing at or below it is
    /// requested; after a crash this is what was durably written, so resume needs nothing
    /// else.
    pub fn new(head: TrustedState, options: SyncOptions, now_ms: u64) -> Result<Self, SyncError> {
        options.validate()?;
        if head.header.hash() != head.hash {
            return Err(SyncError::Anchor(
                "the head hash is not its header's".into(),
            ));
        }
        if head.next_validators.hash() != head.header.next_validators_hash {
            return Err(SyncError::Anchor(format!(
                "the next validator set {} is not the set {} the head names",
                head.next_validators.hash(),
                head.header.next_validators_hash
            )));
        }
        let height = head.height();
        let next = height
            .checked_add(1)
            .ok_or_else(|| SyncError::Anchor("the head is at the last possible height".into()))?;
        Ok(BlockSync {
            verifier: Verifier::new()
                .with_max_clock_drift_ms(options.max_clock_drift_ms)
                .with_threads(options.verify_threads),
            now_ms,
            state: SyncState::Determining,
            stopped: None,
            applied: (height, head.hash),
            written: (height, head.hash),
            head,
            headers: VecDeque::new(),
            headers_bytes: 0,
            recent: BTreeMap::new(),
            peers: Balancer::new(),
            header_queue: RangeQueue::new(next),
            header_ready: Ready::new(),
            block_queue: RangeQueue::new(next),
            block_ready: Ready::new(),
            requests: BTreeMap::new(),
            next_request: 0,
            to_write: Vec::new(),
            to_write_since: now_ms,
            unwritten: VecDeque::new(),
            unwritten_bytes: 0,
            awaiting_ack_since: None,
            store_asked: false,
            actions: VecDeque::new(),
            tracker: Tracker::new(height, now_ms),
            metrics: SyncMetrics::default(),
            high_water: (0, 0),
            options,
        })
    }

    /// Skips the cryptography of signatures found in `cache` when verifying ranges (the driver
    /// checks each received range's signatures ahead, on other threads:
    /// [`SignatureCache::check_ahead`]). Every other check still runs here, in order.
    pub fn with_signature_cache(mut self, cache: Arc<SignatureCache>) -> Self {
        self.verifier = self.verifier.with_cache(cache);
        self
    }

    /// Feeds one input. Then take every [`Action`] with [`BlockSync::next_action`].
    pub fn feed(&mut self, input: Input<P>) {
        if self.stopped.is_some() {
            return;
        }
        match input {
            Input::PeerConnected {
                peer,
                status,
                trusted,
            } => self.on_connected(peer, &status, trusted),
            Input::PeerStatus { peer, status } => {
                self.peers.update(&peer, &status);
            }
            Input::PeerDisconnected { peer } => {
                if self.peers.remove(&peer).is_some() {
                    self.abandon_requests_of(&peer);
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
            Input::Written { up_to } => self.on_written(up_to),
            Input::StoreHeight { height } => self.on_written(height),
            Input::Gossip { peer, block } => self.on_gossip(peer, *block),
            Input::Tick { now_ms } => self.on_tick(now_ms),
        }
        if self.stopped.is_none() {
            self.advance();
            self.schedule();
        }
        self.after_input();
    }

    /// The next thing to do, in order; `None` until the next input.
    pub fn next_action(&mut self) -> Option<Action<P>> {
        self.actions.pop_front()
    }

    /// When the machine next needs an [`Input::Tick`]: a request timeout or stall, a back-off
    /// ending, a write batch to flush, a store check, a record to persist.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        if self.stopped.is_some() {
            return None;
        }
        let timeouts = self
            .requests
            .values()
            .map(|r| r.sent_ms.saturating_add(self.options.request_timeout_ms));
        let stalls = self
            .head_of_line()
            .into_iter()
            .filter_map(|id| self.requests.get(&id))
            .map(|r| r.sent_ms.saturating_add(self.options.stall_timeout_ms))
            // A stall past due was kept (no other peer can take it): its timeout counts.
            .filter(|&t| t > self.now_ms);
        let flush = (!self.to_write.is_empty()).then(|| {
            self.to_write_since
                .saturating_add(self.options.write_flush_ms)
        });
        let check = self
            .awaiting_ack_since
            .filter(|_| !self.store_asked)
            .map(|t| t.saturating_add(self.options.store_check_ms));
        let persist = self
            .tracker
            .persist_deadline(self.written.0, self.options.persist_every_ms);
        let backoff = self.peers.next_backoff_end(self.now_ms);
        timeouts
            .chain(stalls)
            .chain(flush)
            .chain(check)
            .chain(persist)
            .chain(backoff)
            .min()
    }

    // ---- accessors --------------------------------------------------------------------------

    pub fn state(&self) -> SyncState {
        self.state
    }

    pub fn options(&self) -> &SyncOptions {
        &self.options
    }

    pub fn metrics(&self) -> &SyncMetrics {
        &self.metrics
    }

    /// Why the machine stopped, if it did.
    pub fn stopped(&self) -> Option<StopReason> {
        self.stopped
    }

    /// The last block verified with its body (handed to the store or batched for it).
    pub fn applied_height(&self) -> u64 {
        self.applied.0
    }

    pub fn applied_hash(&self) -> BlockHash {
        self.applied.1
    }

    /// The last header verified (ahead of [`BlockSync::applied_height`] in header-first).
    pub fn verified_header_height(&self) -> u64 {
        self.head.height()
    }

    /// The set that signs the block after the last verified header.
    pub fn next_signers(&self) -> &Arc<ValidatorSet> {
        &self.head.next_validators
    }

    /// Every block up to here was acknowledged as written.
    pub fn written_height(&self) -> u64 {
        self.written.0
    }

    /// The best head any connected peer claims, at least the applied height.
    pub fn target_height(&self) -> u64 {
        self.peers.best_head().unwrap_or(0).max(self.applied.0)
    }

    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    pub fn requests_in_flight(&self) -> usize {
        self.requests.len()
    }

    /// Blocks held: received and waiting for their turn, or verified and not yet written.
    /// Never more than [`SyncOptions::max_ahead_blocks`].
    pub fn buffered_blocks(&self) -> u64 {
        self.block_ready.items() + self.unwritten.len() as u64
    }

    /// Bytes held: received headers and blocks, verified headers waiting for bodies, blocks not
    /// yet written. With [`BlockSync::reserved_bytes`], never more than
    /// [`SyncOptions::max_buffer_bytes`].
    pub fn buffered_bytes(&self) -> u64 {
        self.block_ready.bytes()
            + self.header_ready.bytes()
            + self.headers_bytes
            + self.unwritten_bytes
    }

    /// Bytes reserved for the responses in flight.
    pub fn reserved_bytes(&self) -> u64 {
        self.requests.len() as u64 * self.options.reservation_bytes()
    }

    /// The most held at once since the start, `(blocks, bytes + reserved)`.
    pub fn high_water(&self) -> (u64, u64) {
        self.high_water
    }

    /// The current progress report.
    pub fn progress(&self) -> Progress {
        let current = self.applied.0;
        let target = self.target_height();
        Progress {
            state: self.state,
            start: self.tracker.start_height,
            current,
            written: self.written.0,
            target,
            blocks_per_second: self.tracker.rate(),
            eta_ms: self.tracker.eta_ms(current, target),
            percent: self.tracker.percent(current, target),
            peers: self.peers.len(),
        }
    }

    /// The record to persist now.
    pub fn progress_record(&self) -> ProgressRecord {
        let target = self.target_height();
        ProgressRecord {
            start_height: self.tracker.start_height,
            current_height: self.written.0,
            current_hash: self.written.1,
            target_height: target,
            started_at_ms: self.tracker.started_at_ms,
            at_ms: self.now_ms,
            blocks_synced: self.written.0 - self.tracker.start_height,
            reorgs: 0,
            blocks_per_second: self.tracker.rate(),
            eta_ms: self.tracker.eta_ms(self.written.0, target),
        }
    }

    // ---- peers --------------------------------------------------------------------------------

    fn on_connected(&mut self, peer: P, status: &Status, trusted: bool) {
        if let Err(until_ms) = self
            .peers
            .connect(peer.clone(), status, trusted, self.now_ms)
        {
            self.actions.push_back(Action::GiveUpPeer {
                peer,
                reason: GiveUp::Avoided { until_ms },
            });
        }
    }

    /// `peer` sent invalid data: report it, avoid it, and give its work to others.
    pub(super) fn report(&mut self, peer: P, fault: Fault) {
        self.metrics.validation_errors += 1;
        if !self.peers.contains(&peer) {
            // Already reported (or gone): its work was reassigned then.
            return;
        }
        self.metrics.peers_reported += 1;
        self.peers
            .avoid(&peer, self.now_ms.saturating_add(self.options.ban_ms));
        self.abandon_requests_of(&peer);
        self.forget_received_of(&peer);
        self.actions.push_back(Action::ReportPeer { peer, fault });
    }

    /// Received but unverified ranges of `peer` go back to the queues. Header-first bodies
    /// were checked against verified headers on arrival, so they stay.
    fn forget_received_of(&mut self, peer: &P) {
        for (start, count) in self.header_ready.forget_peer(peer) {
            self.header_queue.requeue(start, count);
        }
        if self.options.mode == SyncMode::Fast {
            for (start, count) in self.block_ready.forget_peer(peer) {
                self.block_queue.requeue(start, count);
            }
        }
    }

    /// Drops every request to `peer`: their ranges go back to the queues.
    fn abandon_requests_of(&mut self, peer: &P) {
        let ids: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| r.peer == *peer)
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            if let Some(r) = self.requests.remove(&id) {
                self.peers.done(peer);
                self.release(r.kind);
            }
        }
    }

    /// Puts a request's range back, minus what was verified meanwhile.
    pub(super) fn release(&mut self, kind: Kind) {
        let (queue, start, count, done) = match kind {
            Kind::Headers { start, count } => {
                (&mut self.header_queue, start, count, self.head.height())
            }
            Kind::Blocks { start, count } => (&mut self.block_queue, start, count, self.applied.0),
        };
        let end = start + count;
        let s = start.max(done + 1);
        if end > s {
            queue.requeue(s, end - s);
        }
    }

    // ---- requests -----------------------------------------------------------------------------

    pub(super) fn on_failure(&mut self, peer: &P, id: RequestId, reason: RequestFailure) {
        if self.requests.get(&id).is_none_or(|r| r.peer != *peer) {
            return; // Late, or already handled (stalled and reassigned).
        }
        if let Some(r) = self.requests.remove(&id) {
            self.peers.done(peer);
            self.release(r.kind);
            self.failed(peer, &reason);
        }
    }

    /// Backs `peer` off after a failure; gives it up after too many in a row.
    pub(super) fn failed(&mut self, peer: &P, reason: &RequestFailure) {
        self.metrics.request_failures += 1;
        match reason {
            RequestFailure::Timeout => self.metrics.timeouts += 1,
            RequestFailure::Stalled => self.metrics.stalls += 1,
            _ => {}
        }
        let options = &self.options;
        let failures = self
            .peers
            .failed(peer, self.now_ms, |n| options.backoff_ms(n));
        if failures >= self.options.max_consecutive_failures {
            self.metrics.peers_given_up += 1;
            let until = self.now_ms.saturating_add(self.options.backoff_max_ms);
            self.peers.avoid(peer, until);
            self.abandon_requests_of(peer);
            self.actions.push_back(Action::GiveUpPeer {
                peer: peer.clone(),
                reason: GiveUp::Unresponsive { failures },
            });
        }
    }

    pub(super) fn on_response(&mut self, peer: P, id: RequestId, response: Response) {
        if self.requests.get(&id).is_none_or(|r| r.peer != peer) {
            return;
        }
        let Some(request) = self.requests.remove(&id) else {
            return;
        };
        self.peers.done(&peer);
        let elapsed = self.now_ms.saturating_sub(request.sent_ms);
        if let Some(error) = response.as_error() {
            self.release(request.kind);
            if matches!(error.code, ErrorCode::NotFound | ErrorCode::Unsupported) {
                // It lacks these heights (behind, or pruned): ask another peer.
                let start = match request.kind {
                    Kind::Headers { start, .. } | Kind::Blocks { start, .. } => start,
                };
                self.peers.lacks(&peer, start);
            } else if error.code == ErrorCode::RateLimited {
                self.metrics.request_failures += 1;
                let options = &self.options;
                self.peers
                    .refused(&peer, request.sent_ms, self.now_ms, |n| {
                        options.backoff_ms(n)
                    });
            } else {
                self.failed(&peer, &RequestFailure::Refused(error.to_string()));
            }
            return;
        }
        match (request.kind, response) {
            (Kind::Blocks { start, count }, Response::Blocks(BlocksResponse::Blocks(blocks))) => {
                self.on_blocks(peer, start, count, blocks, elapsed)
            }
            (
                Kind::Headers { start, count },
                Response::Headers(HeadersResponse::Headers(headers)),
            ) => self.on_headers(peer, start, count, headers, elapsed),
            (kind, other) => {
                self.release(kind);
                let message = format!("a {} response to a {kind:?} request", other.protocol());
                self.report(peer, Fault::Malformed(message));
            }
        }
    }

    fn on_tick(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        let now = self.now_ms;
        self.peers.expire(now);
        let timed_out: Vec<(RequestId, P)> = self
            .requests
            .iter()
            .filter(|(_, r)| r.sent_ms.saturating_add(self.options.request_timeout_ms) <= now)
            .map(|(&id, r)| (id, r.peer.clone()))
            .collect();
        for (id, peer) in timed_out {
            self.on_failure(&peer, id, RequestFailure::Timeout);
        }
        // A request blocking the pipeline for too long goes to another peer, if one can serve
        // it; alone, the peer keeps it until the timeout.
        for id in self.head_of_line() {
            let Some(r) = self.requests.get(&id) else {
                continue;
            };
            if r.sent_ms.saturating_add(self.options.stall_timeout_ms) > now {
                continue;
            }
            let start = match r.kind {
                Kind::Headers { start, .. } | Kind::Blocks { start, .. } => start,
            };
            let peer = r.peer.clone();
            let reservation = self.options.reservation_bytes();
            if self
                .peers
                .pick(start, reservation, now, usize::MAX, Some(&peer))
                .is_some()
            {
                self.on_failure(&peer, id, RequestFailure::Stalled);
            }
        }
        if !self.to_write.is_empty()
            && now
                >= self
                    .to_write_since
                    .saturating_add(self.options.write_flush_ms)
        {
            self.flush();
        }
        if let Some(since) = self.awaiting_ack_since {
            if !self.store_asked && now >= since.saturating_add(self.options.store_check_ms) {
                self.store_asked = true;
                self.actions.push_back(Action::CheckStore);
            }
        }
    }

    /// The requests holding the next height the pipeline needs (one per stage).
    pub(super) fn head_of_line(&self) -> Vec<RequestId> {
        let header_next = self.head.height() + 1;
        let block_next = self.applied.0 + 1;
        self.requests
            .iter()
            .filter(|(_, r)| match r.kind {
                Kind::Headers { start, count } => {
                    start <= header_next && header_next < start + count
                }
                Kind::Blocks { start, count } => start <= block_next && block_next < start + count,
            })
            .map(|(&id, _)| id)
            .collect()
    }

    /// Sends what fits: ranges to the best peers, within the per-peer and total request
    /// limits, the reservation and memory budgets, and the window past the written head.
    pub(super) fn schedule(&mut self) {
        let reservation = self.options.reservation_bytes();
        let mut headers_first = !self
            .requests
            .values()
            .any(|r| matches!(r.kind, Kind::Headers { .. }));
        loop {
            if self.requests.len() >= self.options.max_requests_total {
                break;
            }
            let reserved = self.reserved_bytes() + reservation;
            if reserved > self.options.max_in_flight_bytes
                || reserved + self.buffered_bytes() > self.options.max_buffer_bytes
            {
                break;
            }
            let sent = match self.options.mode {
                SyncMode::Fast => self.send_blocks(),
                // One header request at a time goes first, so verified headers stay ahead of
                // the bodies; the rest of the slots go to bodies.
                SyncMode::HeaderFirst => {
                    let order: [fn(&mut Self) -> bool; 2] = if headers_first {
                        [Self::send_headers, Self::send_blocks]
                    } else {
                        [Self::send_blocks, Self::send_headers]
                    };
                    order.iter().any(|send| send(self))
                }
            };
            if !sent {
                break;
            }
            headers_first = false;
        }
    }

    fn send_blocks(&mut self) -> bool {
        let target = match self.options.mode {
            SyncMode::Fast => self.target_height(),
            // Bodies only for verified headers.
            SyncMode::HeaderFirst => self.head.height(),
        };
        // Everything held lies within the window past the written head.
        let limit = (self.written.0 + 1).saturating_add(self.options.max_ahead_blocks);
        let batch = u64::from(self.options.blocks_per_request);
        let Some((start, count)) = self.block_queue.next(target, batch, limit) else {
            return false;
        };
        let Some(peer) = self.pick(start) else {
            return false;
        };
        let head = self.peers.get(&peer).map_or(start, |p| p.head);
        let count = count.min(head - start + 1);
        self.block_queue.take(start, count);
        let request = Request::GetBlocks(GetBlocks {
            start,
            count: count as u32,
        });
        self.send(peer, Kind::Blocks { start, count }, request);
        true
    }

    fn send_headers(&mut self) -> bool {
        let target = self.target_height();
        let limit = (self.applied.0 + 1).saturating_add(self.options.max_ahead_headers);
        let batch = u64::from(self.options.headers_per_request);
        let Some((start, count)) = self.header_queue.next(target, batch, limit) else {
            return false;
        };
        let Some(peer) = self.pick(start) else {
            return false;
        };
        let head = self.peers.get(&peer).map_or(start, |p| p.head);
        let count = count.min(head - start + 1);
        self.header_queue.take(start, count);
        let request = Request::GetHeaders(GetHeaders {
            start,
            count: count as u32,
        });
        self.send(peer, Kind::Headers { start, count }, request);
        true
    }

    fn pick(&self, start: u64) -> Option<P> {
        self.peers.pick(
            start,
            self.options.reservation_bytes(),
            self.now_ms,
            self.options.max_requests_per_peer,
            None,
        )
    }

    fn send(&mut self, peer: P, kind: Kind, request: Request) {
        let id = RequestId(self.next_request);
        self.next_request += 1;
        self.metrics.requests_sent += 1;
        self.peers.sent(&peer);
        self.requests.insert(
            id,
            InFlight {
                peer: peer.clone(),
                kind,
                sent_ms: self.now_ms,
            },
        );
        self.actions.push_back(Action::SendRequest {
            peer,
            request_id: id,
            request,
        });
    }

    // ---- state and reports --------------------------------------------------------------------

    fn after_input(&mut self) {
        let now = self.now_ms;
        let held = (
            self.buffered_blocks(),
            self.buffered_bytes() + self.reserved_bytes(),
        );
        self.high_water = (self.high_water.0.max(held.0), self.high_water.1.max(held.1));
        self.tracker.sample(now, self.applied.0);
        let state = if self.stopped.is_some() {
            SyncState::Stopped
        } else if self.peers.len() == 0 {
            SyncState::Determining
        } else if self.applied.0 >= self.target_height() {
            SyncState::Synced
        } else {
            SyncState::Syncing
        };
        let changed = state != self.state;
        if changed {
            let from = std::mem::replace(&mut self.state, state);
            self.actions
                .push_back(Action::StateChanged { from, to: state });
        }
        let moved = self.applied.0 != self.tracker.last_report_height;
        let due = now
            >= self
                .tracker
                .last_report_at
                .saturating_add(self.options.progress_interval_ms);
        if changed || (moved && due) {
            self.tracker.last_report_at = now;
            self.tracker.last_report_height = self.applied.0;
            let progress = self.progress();
            self.actions.push_back(Action::Progress(progress));
        }
        if self.tracker.persist_due(
            now,
            self.written.0,
            self.options.persist_every_blocks,
            self.options.persist_every_ms,
        ) {
            self.tracker.last_persist_at = now;
            self.tracker.last_persist_height = self.written.0;
            let record = self.progress_record();
            self.actions.push_back(Action::PersistProgress(record));
        }
    }
}
