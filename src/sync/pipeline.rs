//! The pipeline behind the requests: download → verify → write. Received ranges wait their
//! turn; headers are verified in height order (a range per signature batch); bodies are checked
//! against verified headers; verified blocks go out in write batches and stay counted until the
//! store acknowledges them. Also: gossiped blocks and the conflicts they reveal.

use std::fmt;
use std::sync::Arc;

use super::error::{Fault, RequestFailure, StopReason};
use super::machine::{BlockSync, Kind, Recent, Unwritten};
use super::messages::{Action, ForkEvidence};
use super::options::SyncMode;
use super::predicates as check;
use crate::chain::{Encode, FinalizedBlock, TrustedHeader};
use crate::verify::{RangeFailure, TrustedState, VerifyError};

impl<P: Clone + Ord + fmt::Debug> BlockSync<P> {
    // ---- download -----------------------------------------------------------------------------

    pub(super) fn on_blocks(
        &mut self,
        peer: P,
        start: u64,
        count: u64,
        mut blocks: Vec<FinalizedBlock>,
        elapsed_ms: u64,
    ) {
        let kind = Kind::Blocks { start, count };
        if let Err(fault) =
            check::range_shape("blocks", start, count, blocks.iter().map(|b| b.height()))
        {
            self.release(kind);
            self.report(peer, fault);
            return;
        }
        if blocks.is_empty() {
            self.release(kind);
            self.peers.lacks(&peer, start);
            return;
        }
        let bytes: u64 = blocks.iter().map(|b| b.encoded_len() as u64).sum();
        self.metrics.downloaded_bodies += blocks.len() as u64;
        self.metrics.downloaded_bytes += bytes;
        self.peers.measured(&peer, elapsed_ms, bytes);
        let got = blocks.len() as u64;
        if got < count {
            self.block_queue.requeue(start + got, count - got);
        }
        if self.options.mode == SyncMode::HeaderFirst {
            // Bodies are checked at once against the verified headers, so a bad one is the
            // sender's fault before anything waits on it.
            if let Some((position, fault)) = self.check_bodies(&blocks) {
                let rest = got - position as u64;
                self.block_queue.requeue(start + position as u64, rest);
                blocks.truncate(position);
                let bytes = blocks.iter().map(|b| b.encoded_len() as u64).sum();
                if !blocks.is_empty() {
                    self.block_ready.insert(start, peer.clone(), blocks, bytes);
                }
                self.report(peer, fault);
                return;
            }
        }
        self.block_ready.insert(start, peer, blocks, bytes);
    }

    /// Header-first: each block must be the verified header's block. Returns the first that
    /// is not, and why.
    fn check_bodies(&self, blocks: &[FinalizedBlock]) -> Option<(usize, Fault)> {
        let first = self.applied.0 + 1;
        for (i, block) in blocks.iter().enumerate() {
            let index = block.height().checked_sub(first)? as usize;
            let verified = self.headers.get(index)?;
            let check = check::header_is_verified(&verified.header.hash(), block).and_then(|()| {
                check::events_match_header(&block.block.header, &block.block.events)
            });
            if let Err(fault) = check {
                return Some((i, fault));
            }
        }
        None
    }

    pub(super) fn on_headers(
        &mut self,
        peer: P,
        start: u64,
        count: u64,
        headers: Vec<TrustedHeader>,
        elapsed_ms: u64,
    ) {
        let kind = Kind::Headers { start, count };
        let heights = headers.iter().map(|h| h.header.height);
        if let Err(fault) = check::range_shape("headers", start, count, heights) {
            self.release(kind);
            self.report(peer, fault);
            return;
        }
        if headers.is_empty() {
            self.release(kind);
            self.peers.lacks(&peer, start);
            return;
        }
        let bytes: u64 = headers.iter().map(|h| h.encoded_len() as u64).sum();
        self.metrics.downloaded_headers += headers.len() as u64;
        self.metrics.downloaded_bytes += bytes;
        self.peers.measured(&peer, elapsed_ms, bytes);
        let got = headers.len() as u64;
        if got < count {
            self.header_queue.requeue(start + got, count - got);
        }
        self.header_ready.insert(start, peer, headers, bytes);
    }

    // ---- verify and apply ---------------------------------------------------------------------

    /// Moves everything whose turn it is through the pipeline, in height order.
    pub(super) fn advance(&mut self) {
        match self.options.mode {
            SyncMode::Fast => self.apply_fast(),
            SyncMode::HeaderFirst => {
                self.verify_headers();
                self.apply_bodies();
            }
        }
        if self.stopped.is_none() && self.applied.0 >= self.target_height() {
            self.flush();
        }
    }

    /// Fast sync: each block's header and commit verified in a range, then its body against
    /// its header.
    fn apply_fast(&mut self) {
        while self.stopped.is_none() {
            let next = self.applied.0 + 1;
            let Some((start, received)) = self.block_ready.take_at(next) else {
                return;
            };
            let peer = received.peer;
            let mut blocks = received.items;
            blocks.drain(..((next - start) as usize).min(blocks.len()));
            if blocks.is_empty() {
                continue;
            }
            let headers: Vec<TrustedHeader> =
                blocks.iter().map(FinalizedBlock::trusted_header).collect();
            let (good, failure) =
                match self
                    .verifier
                    .verify_range(&self.head, &headers, self.now_ms)
                {
                    Ok(state) => (blocks.len(), Ok(state)),
                    Err(f) => (f.error.position, Err(f)),
                };
            // Bodies of the verified prefix.
            let mut body_fault = None;
            for (i, block) in blocks[..good].iter().enumerate() {
                if let Err(fault) =
                    check::events_match_header(&block.block.header, &block.block.events)
                {
                    body_fault = Some((i, fault));
                    break;
                }
            }
            let trusted = self.head.clone();
            match (body_fault, failure) {
                (None, Ok(state)) => {
                    self.remember(&trusted, &headers);
                    self.head = state;
                    self.apply(blocks);
                }
                (Some((i, fault)), _) => {
                    self.accept_prefix(&trusted, &headers, &mut blocks, i);
                    let end = start.max(next) + headers.len() as u64;
                    let from = self.applied.0 + 1;
                    self.block_queue.requeue(from, end - from);
                    self.report(peer, fault);
                }
                (None, Err(RangeFailure { error, .. })) => {
                    self.accept_prefix(&trusted, &headers, &mut blocks, error.position);
                    let end = start.max(next) + headers.len() as u64;
                    let from = self.applied.0 + 1;
                    self.block_queue.requeue(from, end - from);
                    self.header_fault(peer, error.height, error.error);
                }
            }
        }
    }

    /// Applies the first `count` blocks of a range whose rest failed.
    fn accept_prefix(
        &mut self,
        trusted: &TrustedState,
        headers: &[TrustedHeader],
        blocks: &mut Vec<FinalizedBlock>,
        count: usize,
    ) {
        if count == 0 {
            return;
        }
        // The prefix verified inside the range; verify it alone to get its state.
        if let Ok(state) = self
            .verifier
            .verify_range(trusted, &headers[..count], self.now_ms)
        {
            self.remember(trusted, &headers[..count]);
            self.head = state;
            blocks.truncate(count);
            self.apply(std::mem::take(blocks));
        }
    }

    /// A header failed verification: the sender's fault, except a timestamp past our clock
    /// (more likely our clock is behind): then the peer only backs off.
    fn header_fault(&mut self, peer: P, height: u64, error: VerifyError) {
        if matches!(error, VerifyError::TimestampInFuture { .. }) {
            self.metrics.validation_errors += 1;
            self.failed(&peer, &RequestFailure::Refused(error.to_string()));
        } else {
            self.report(peer, Fault::InvalidHeader { height, error });
        }
    }

    /// Header-first: header ranges verified in order, kept until their bodies come.
    fn verify_headers(&mut self) {
        while self.stopped.is_none() {
            let next = self.head.height() + 1;
            let Some((start, received)) = self.header_ready.take_at(next) else {
                return;
            };
            let peer = received.peer;
            let mut headers = received.items;
            headers.drain(..((next - start) as usize).min(headers.len()));
            if headers.is_empty() {
                continue;
            }
            let trusted = self.head.clone();
            match self.verifier.verify_range(&trusted, &headers, self.now_ms) {
                Ok(state) => {
                    self.remember(&trusted, &headers);
                    self.head = state;
                    self.keep_headers(headers);
                }
                Err(failure) => {
                    let position = failure.error.position;
                    let end = next + headers.len() as u64;
                    if let Some(state) = failure.last_good {
                        self.remember(&trusted, &headers[..position]);
                        self.head = *state;
                        headers.truncate(position);
                        self.keep_headers(headers);
                    }
                    let from = self.head.height() + 1;
                    self.header_queue.requeue(from, end - from);
                    self.header_fault(peer, failure.error.height, failure.error.error);
                }
            }
        }
    }

    fn keep_headers(&mut self, headers: Vec<TrustedHeader>) {
        for h in headers {
            self.headers_bytes += h.encoded_len() as u64;
            self.headers.push_back(h);
        }
    }

    /// Header-first: bodies (already checked) applied in order with their verified headers'
    /// commits, so what is written is exactly what was verified.
    fn apply_bodies(&mut self) {
        while self.stopped.is_none() {
            let next = self.applied.0 + 1;
            let Some((start, received)) = self.block_ready.take_at(next) else {
                return;
            };
            let mut blocks = received.items;
            blocks.drain(..((next - start) as usize).min(blocks.len()));
            let mut out = Vec::with_capacity(blocks.len());
            for body in blocks {
                let Some(header) = self.headers.pop_front() else {
                    break;
                };
                self.headers_bytes = self
                    .headers_bytes
                    .saturating_sub(header.encoded_len() as u64);
                out.push(FinalizedBlock {
                    block: body.block,
                    commit: header.commit,
                    next_validators: header.next_validators,
                });
            }
            self.apply(out);
        }
    }

    /// Keeps the last verified headers, with the set that signed each, for fork checks.
    fn remember(&mut self, trusted: &TrustedState, headers: &[TrustedHeader]) {
        let mut signers = Arc::clone(&trusted.next_validators);
        let keep_from = headers.len().saturating_sub(self.options.fork_window);
        for (i, th) in headers.iter().enumerate() {
            let next = match (&th.next_validators, th.header.hands_over()) {
                (Some(set), true) => Arc::new(set.clone()),
                _ => Arc::clone(&signers),
            };
            if i >= keep_from {
                self.recent.insert(
                    th.header.height,
                    Recent {
                        hash: th.header.hash(),
                        header: th.clone(),
                        signers: Arc::clone(&signers),
                    },
                );
            }
            signers = next;
        }
        while self.recent.len() > self.options.fork_window {
            self.recent.pop_first();
        }
    }

    /// Verified blocks, in order: into the write batch.
    fn apply(&mut self, blocks: Vec<FinalizedBlock>) {
        if blocks.is_empty() {
            return;
        }
        if self.to_write.is_empty() {
            self.to_write_since = self.now_ms;
        }
        for block in blocks {
            let bytes = block.encoded_len() as u64;
            let hash = block.block.header.hash();
            let height = block.height();
            self.unwritten.push_back(Unwritten {
                height,
                hash,
                bytes,
            });
            self.unwritten_bytes += bytes;
            self.applied = (height, hash);
            self.metrics.validated_blocks += 1;
            self.to_write.push(block);
            if self.to_write.len() >= self.options.write_batch_blocks {
                self.flush();
            }
        }
        // Later ranges would not need what is below.
        self.block_queue.skip_to(self.applied.0 + 1);
    }

    // ---- write --------------------------------------------------------------------------------

    pub(super) fn flush(&mut self) {
        if self.to_write.is_empty() {
            return;
        }
        let blocks = std::mem::take(&mut self.to_write);
        if self.awaiting_ack_since.is_none() {
            self.awaiting_ack_since = Some(self.now_ms);
            self.store_asked = false;
        }
        self.actions.push_back(Action::Write { blocks });
    }

    /// The store holds every block up to `height` (its notification, or its height read after
    /// a missed one). Heights we never handed out are not ours to count.
    pub(super) fn on_written(&mut self, height: u64) {
        let handed_out = self.applied.0 - self.to_write.len() as u64;
        let height = height.min(handed_out);
        if height <= self.written.0 {
            return;
        }
        while let Some(u) = self.unwritten.front() {
            if u.height > height {
                break;
            }
            self.unwritten_bytes -= u.bytes;
            self.written = (u.height, u.hash);
            self.metrics.written_blocks += 1;
            self.unwritten.pop_front();
        }
        self.store_asked = false;
        self.awaiting_ack_since = (self.written.0 < handed_out).then_some(self.now_ms);
    }

    // ---- gossip and forks ---------------------------------------------------------------------

    /// A finalized block from gossip. At a height we hold, a different block that is validly
    /// signed is a fork: evidence, and stop. Above, it tells us the peer's head (and right
    /// after our head, in fast mode, it is applied like a received range).
    pub(super) fn on_gossip(&mut self, peer: P, block: FinalizedBlock) {
        if !self.peers.contains(&peer) {
            return;
        }
        let height = block.height();
        if let Some(ours) = self.recent.get(&height) {
            let theirs = block.trusted_header();
            if theirs.header.hash() == ours.hash {
                return;
            }
            let verdict = check::signed_without_parent(
                &self.verifier,
                &ours.header.header,
                &ours.signers,
                &theirs,
                self.now_ms,
            );
            match verdict {
                Ok(()) => {
                    let ours = ours.header.clone();
                    let hash = ours.header.hash();
                    self.stopped = Some(StopReason::Fork { height, ours: hash });
                    self.actions.push_back(Action::ForkDetected {
                        evidence: Box::new(ForkEvidence {
                            height,
                            ours,
                            theirs,
                            peer,
                        }),
                    });
                }
                Err(error) => self.report(peer, Fault::InvalidConflict { height, error }),
            }
            return;
        }
        if height <= self.head.height() {
            // Below the fork window (or the head we started from): the store is the one to
            // compare with; not handled here.
            return;
        }
        self.peers.saw(&peer, height);
        let idle = self.block_queue.frontier() == height
            && self.block_queue.pending() == 0
            && self.requests.is_empty()
            && self.block_ready.is_empty();
        if self.options.mode == SyncMode::Fast && height == self.applied.0 + 1 && idle {
            let bytes = block.encoded_len() as u64;
            self.block_queue.take(height, 1);
            self.block_ready.insert(height, peer, vec![block], bytes);
        }
    }
}
