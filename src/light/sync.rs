//! Sync: the checkpoint's header, header ranges verified in height order, store batches,
//! following gossiped heads, and what to request next.

use std::fmt;
use std::sync::Arc;

use super::error::{DropReason, LightError, StopReason};
use super::machine::{LightClient, RequestKind};
use super::messages::Action;
use super::stored::{quorum_commit, StoredHeader, VerifiedHeader};
use super::window::{verify_unlinked, Held};
use crate::chain::TrustedHeader;
use crate::protocol::{GetHeaders, Request};
use crate::verify::{TrustedState, VerifyError};

impl<P: Clone + Ord + fmt::Debug> LightClient<P> {
    // ---- the checkpoint's header ------------------------------------------------------------

    pub(super) fn on_anchor(&mut self, peer: P, headers: Vec<TrustedHeader>) {
        let height = self.checkpoint.height;
        let Some(first) = headers.into_iter().next() else {
            self.peers.lacks(&peer, height);
            return;
        };
        if first.header.height != height {
            let message = format!("asked for height {height}, got {}", first.header.height);
            self.drop_peer(peer, DropReason::Malformed(message), self.options.avoid_ms);
            return;
        }
        match TrustedState::from_checkpoint(&self.checkpoint, first.header) {
            Ok(state) => {
                self.peers.succeeded(&peer);
                self.to_store.push(VerifiedHeader {
                    header: StoredHeader {
                        header: state.header.clone(),
                        hash: state.hash,
                    },
                    next_validators: Some(self.checkpoint.validators.clone()),
                    commit: None,
                });
                self.to_store_since = self.now_ms;
                self.set_anchor(state);
                if self.stopped.is_none() {
                    self.after_verified();
                }
            }
            Err(e) => {
                let avoid = self.options.avoid_ms;
                self.drop_peer(peer, DropReason::CheckpointMismatch(e), avoid);
            }
        }
    }

    /// Starts trusting `state` (the checkpoint's block or a stored head); checks its age.
    pub(super) fn set_anchor(&mut self, state: TrustedState) {
        self.window.insert(
            state.height(),
            Held {
                hash: state.hash,
                signed: None,
            },
        );
        let age_ms = self.now_ms.saturating_sub(state.header.timestamp_ms);
        let height = state.height();
        self.announced_height = Some(height);
        self.trusted = Some(state);
        let trust_period_ms = self.options.trust_period_ms;
        if age_ms > trust_period_ms {
            self.actions.push_back(Action::CheckpointStale {
                age_ms,
                trust_period_ms,
            });
            if self.options.refuse_stale_checkpoint {
                self.actions.push_back(Action::Error {
                    error: LightError::StaleCheckpoint {
                        height,
                        age_ms,
                        trust_period_ms,
                    },
                });
                self.stop(StopReason::StaleCheckpoint { age_ms });
            }
        }
    }

    // ---- ranges -----------------------------------------------------------------------------

    pub(super) fn on_range(
        &mut self,
        peer: P,
        start: u64,
        count: u64,
        headers: Vec<TrustedHeader>,
    ) {
        let shape_ok = headers.len() as u64 <= count
            && headers
                .iter()
                .enumerate()
                .all(|(i, h)| h.header.height == start + i as u64);
        if !shape_ok {
            self.release(&peer, &RequestKind::Range { start, count });
            let message = format!(
                "asked for {count} headers from height {start}, got {} that do not match",
                headers.len()
            );
            self.drop_peer(peer, DropReason::Malformed(message), self.options.avoid_ms);
            return;
        }
        if headers.is_empty() {
            self.peers.lacks(&peer, start);
            self.release(&peer, &RequestKind::Range { start, count });
            return;
        }
        let got = headers.len() as u64;
        if got < count {
            self.ranges.requeue(start + got, count - got);
        }
        self.peers.succeeded(&peer);
        self.stats.headers_received += got;
        self.ranges.receive(start, peer, headers);
        self.verify_ready();
    }

    /// Verifies received ranges in height order, as far as they reach.
    pub(super) fn verify_ready(&mut self) {
        let mut advanced = false;
        while self.stopped.is_none() {
            let Some(trusted) = self.trusted.clone() else {
                return;
            };
            let next = trusted.height() + 1;
            let Some((start, received)) = self.ranges.take_ready(next) else {
                break;
            };
            let peer = received.peer;
            let mut headers = received.headers;
            if start < next {
                // Heights verified meanwhile: they must be the headers we hold.
                let overlap = ((next - start) as usize).min(headers.len());
                for header in headers.drain(..overlap) {
                    self.check_held(&peer, &header);
                }
                if headers.is_empty() || self.stopped.is_some() || self.peers.get(&peer).is_none() {
                    continue;
                }
            }
            match self.verifier.verify_range(&trusted, &headers, self.now_ms) {
                Ok(state) => {
                    self.accept(&headers, state);
                    advanced = true;
                }
                Err(failure) => {
                    let position = failure.error.position;
                    if let Some(state) = failure.last_good {
                        self.accept(&headers[..position], *state);
                        advanced = true;
                    }
                    let rest = (headers.len() - position) as u64;
                    self.ranges.requeue(headers[position].header.height, rest);
                    let failing = headers.swap_remove(position);
                    self.header_fault(peer, &failing, failure.error.error, position > 0);
                }
            }
        }
        if advanced && self.stopped.is_none() {
            self.after_verified();
        }
    }

    /// Takes verified headers in: the window, the store batch, the new head.
    pub(super) fn accept(&mut self, headers: &[TrustedHeader], state: TrustedState) {
        let Some(trusted) = &self.trusted else {
            return;
        };
        let mut signers = Arc::clone(&trusted.next_validators);
        if self.to_store.is_empty() {
            self.to_store_since = self.now_ms;
        }
        for th in headers {
            let hash = th.header.hash();
            let hands_over = th.header.hands_over();
            self.to_store.push(VerifiedHeader {
                header: StoredHeader {
                    header: th.header.clone(),
                    hash,
                },
                next_validators: if hands_over {
                    th.next_validators.clone()
                } else {
                    None
                },
                // Only the quorum prefix was verified: the rest adds nothing as evidence.
                commit: hands_over.then(|| quorum_commit(&signers, &th.commit)),
            });
            let next_signers = match (&th.next_validators, hands_over) {
                (Some(set), true) => Arc::new(set.clone()),
                _ => Arc::clone(&signers),
            };
            self.window.insert(
                th.header.height,
                Held {
                    hash,
                    signed: Some((th.clone(), signers)),
                },
            );
            signers = next_signers;
        }
        self.stats.headers_verified += headers.len() as u64;
        self.trusted = Some(state);
    }

    /// After the head moved: store in batches, announce the head.
    pub(super) fn after_verified(&mut self) {
        let Some(trusted) = &self.trusted else {
            return;
        };
        let (height, hash) = (trusted.height(), trusted.hash);
        let caught_up = height >= self.target_height();
        if self.to_store.len() >= self.options.store_batch_size || caught_up {
            self.flush();
        }
        if self.announced_height < Some(height) {
            self.announced_height = Some(height);
            self.actions.push_back(Action::NewHead { height, hash });
        }
        self.check_claimed_heads();
    }

    pub(super) fn flush(&mut self) {
        if !self.to_store.is_empty() {
            let headers = std::mem::take(&mut self.to_store);
            self.actions.push_back(Action::StoreHeaders { headers });
        }
    }

    /// The header right after the verified head, from `peer`, failed with `error`.
    /// `linked_by_same_peer`: the header below it came from the same peer in the same response.
    pub(super) fn header_fault(
        &mut self,
        peer: P,
        header: &TrustedHeader,
        error: VerifyError,
        linked_by_same_peer: bool,
    ) {
        let height = header.header.height;
        match error {
            // Likely our clock: not the peer's fault. Back off and retry.
            VerifyError::TimestampInFuture { .. } => {
                let options = &self.options;
                self.peers
                    .failed(&peer, self.now_ms, |n| options.backoff_ms(n));
                self.actions.push_back(Action::Error {
                    error: LightError::HeaderInFuture {
                        height,
                        timestamp_ms: header.header.timestamp_ms,
                        now_ms: self.now_ms,
                    },
                });
            }
            VerifyError::ParentHashMismatch { .. } if !linked_by_same_peer => {
                // Validly signed but on another branch? Then the peer's header below it differs
                // from ours: ask for it.
                let below = height - 1;
                let signed = self.trusted.as_ref().is_some_and(|t| {
                    verify_unlinked(
                        &self.verifier,
                        &t.header,
                        &t.next_validators,
                        header,
                        self.now_ms,
                    )
                    .is_ok()
                });
                let comparable = self.window.get(below).is_some_and(|h| h.signed.is_some());
                if signed && comparable {
                    self.probe(peer, below, Some(error));
                } else {
                    let avoid = self.options.avoid_ms;
                    self.drop_peer(peer, DropReason::InvalidHeader { height, error }, avoid);
                }
            }
            error => {
                let avoid = self.options.avoid_ms;
                self.drop_peer(peer, DropReason::InvalidHeader { height, error }, avoid);
            }
        }
    }

    // ---- gossip -----------------------------------------------------------------------------

    pub(super) fn on_new_head(&mut self, peer: P, header: TrustedHeader) {
        if self.peers.get(&peer).is_none() {
            return;
        }
        let height = header.header.height;
        let Some(trusted) = self.trusted.clone() else {
            self.peers.saw_head(&peer, height, header.header.hash());
            return;
        };
        if height <= trusted.height() {
            self.check_held(&peer, &header);
            return;
        }
        self.peers.saw_head(&peer, height, header.header.hash());
        let sync_idle = self.ranges.is_idle()
            && self.ranges.frontier() == height
            && !self
                .requests
                .values()
                .any(|r| matches!(r.kind, RequestKind::Range { .. }));
        if height == trusted.height() + 1 && sync_idle {
            match self.verifier.verify(&trusted, &header, self.now_ms) {
                Ok(state) => {
                    self.peers.succeeded(&peer);
                    self.accept(std::slice::from_ref(&header), state);
                    self.ranges.skip_to(height + 1);
                    self.after_verified();
                }
                Err(error) => self.header_fault(peer, &header, error, false),
            }
        }
    }

    pub(super) fn header_requests_in_flight(&self) -> usize {
        self.requests
            .values()
            .filter(|r| !matches!(r.kind, RequestKind::Proof { .. }))
            .count()
    }

    /// Sends what can be sent: the checkpoint's header, sync ranges, proof requests.
    pub(super) fn schedule(&mut self) {
        let now = self.now_ms;
        let per_peer = Some(self.options.max_requests_per_peer);
        self.pace_wakeup = None;
        let Some(verified) = self.verified_height() else {
            let height = self.checkpoint.height;
            let asking = self
                .requests
                .values()
                .any(|r| matches!(r.kind, RequestKind::Anchor));
            if !asking {
                match self.peers.pick_for_headers(height, now, per_peer) {
                    Ok(peer) => {
                        let request = Request::GetHeaders(GetHeaders {
                            start: height,
                            count: 1,
                        });
                        self.send(peer, RequestKind::Anchor, request);
                    }
                    Err(wakeup) => self.pace_wakeup = wakeup,
                }
            }
            return;
        };
        let target = self.target_height();
        let batch = u64::from(self.options.batch_size);
        let limit = (verified + 1).saturating_add(self.options.max_ahead_headers);
        while self.header_requests_in_flight() < self.options.max_requests_total {
            // Until the driver acknowledges a write, count from the checkpoint.
            let stored = self.stored_height.unwrap_or(self.checkpoint.height);
            let unstored = verified.saturating_sub(stored);
            if unstored >= self.options.max_unstored_headers {
                break;
            }
            let Some((start, count)) = self.ranges.next(target, batch, limit) else {
                break;
            };
            let peer = match self.peers.pick_for_headers(start, now, per_peer) {
                Ok(peer) => peer,
                Err(wakeup) => {
                    self.pace_wakeup = wakeup;
                    break;
                }
            };
            let head = self.peers.get(&peer).map_or(start, |p| p.head);
            let count = count.min(head - start + 1);
            self.ranges.take(start, count);
            let request = Request::GetHeaders(GetHeaders {
                start,
                count: count as u32,
            });
            self.send(peer, RequestKind::Range { start, count }, request);
        }
        self.dispatch_queries();
    }
}
