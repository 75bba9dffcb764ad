//! Forks: fetch a peer's header where its branch and ours may part, and raise the alarm when
//! two validly signed headers share a height. Stopping for good.

use std::fmt;

use super::error::{DropReason, LightError, StopReason};
use super::machine::{LightClient, RequestKind};
use super::messages::{Action, ForkEvidence, QueryId};
use super::window::Conflict;
use crate::chain::TrustedHeader;
use crate::protocol::{GetHeaders, Request};
use crate::verify::VerifyError;

impl<P: Clone + Ord + fmt::Debug> LightClient<P> {
    // ---- forks ------------------------------------------------------------------------------

    /// Asks `peer` for its header at `height` (held by us) to compare.
    pub(super) fn probe(&mut self, peer: P, height: u64, error: Option<VerifyError>) {
        match self.peers.get_mut(&peer) {
            Some(info) if !info.suspect => info.suspect = true,
            _ => return,
        }
        self.send(
            peer,
            RequestKind::Probe { height, error },
            Request::GetHeaders(GetHeaders {
                start: height,
                count: 1,
            }),
        );
    }

    /// Peers' claimed heads at heights we hold: a different hash there means another branch,
    /// so fetch that header to compare (a status is not signed; the header is).
    pub(super) fn check_claimed_heads(&mut self) {
        let Some(verified) = self.verified_height() else {
            return;
        };
        for (peer, height, hash) in self.peers.unchecked_heads(verified) {
            self.peers.head_checked(&peer);
            let Some(held) = self.window.get(height) else {
                continue;
            };
            if held.hash == hash {
                continue;
            }
            if held.signed.is_some() {
                self.probe(peer, height, None);
            } else {
                let trusted = held.hash;
                let avoid = self.options.avoid_ms;
                self.drop_peer(
                    peer,
                    DropReason::ContradictsTrusted { height, trusted },
                    avoid,
                );
            }
        }
    }

    pub(super) fn on_probe(
        &mut self,
        peer: P,
        height: u64,
        error: Option<VerifyError>,
        headers: Vec<TrustedHeader>,
    ) {
        if let Some(info) = self.peers.get_mut(&peer) {
            info.suspect = false;
        }
        let avoid = self.options.avoid_ms;
        let theirs = match <[TrustedHeader; 1]>::try_from(headers) {
            Ok([h]) if h.header.height == height => h,
            Ok(_) | Err(_) => {
                let message = format!("asked for the header at {height}, got something else");
                self.drop_peer(peer, DropReason::Malformed(message), avoid);
                return;
            }
        };
        match self.window.check(&self.verifier, &theirs, self.now_ms) {
            Conflict::Fork(theirs) => self.fork(peer, *theirs),
            Conflict::None => {
                // Same header below, yet the one above did not link to it: the peer is at fault.
                if let Some(error) = error {
                    let reason = DropReason::InvalidHeader {
                        height: height + 1,
                        error,
                    };
                    self.drop_peer(peer, reason, avoid);
                } else {
                    self.peers.succeeded(&peer);
                }
            }
            Conflict::ContradictsAnchor(trusted) => self.drop_peer(
                peer,
                DropReason::ContradictsTrusted { height, trusted },
                avoid,
            ),
            Conflict::Invalid(error) => {
                self.drop_peer(peer, DropReason::InvalidHeader { height, error }, avoid)
            }
        }
    }

    /// A header from `peer` at a height we hold.
    pub(super) fn check_held(&mut self, peer: &P, header: &TrustedHeader) {
        let height = header.header.height;
        let avoid = self.options.avoid_ms;
        match self.window.check(&self.verifier, header, self.now_ms) {
            Conflict::None => {}
            Conflict::Fork(theirs) => self.fork(peer.clone(), *theirs),
            Conflict::ContradictsAnchor(trusted) => self.drop_peer(
                peer.clone(),
                DropReason::ContradictsTrusted { height, trusted },
                avoid,
            ),
            Conflict::Invalid(error) => self.drop_peer(
                peer.clone(),
                DropReason::InvalidHeader { height, error },
                avoid,
            ),
        }
    }

    pub(super) fn fork(&mut self, peer: P, theirs: TrustedHeader) {
        let height = theirs.header.height;
        let Some((ours, _)) = self.window.get(height).and_then(|h| h.signed.clone()) else {
            return;
        };
        self.actions.push_back(Action::ForkDetected {
            evidence: Box::new(ForkEvidence {
                height,
                ours,
                theirs,
                peer,
            }),
        });
        self.stop(StopReason::Fork { height });
    }

    /// Stops for good: no more requests, every open query fails.
    pub(super) fn stop(&mut self, reason: StopReason) {
        self.stopped = Some(reason);
        self.requests.clear();
        self.to_store.clear();
        let queries: Vec<QueryId> = self.queries.keys().copied().collect();
        for query_id in queries {
            self.queries.remove(&query_id);
            self.answer_stopped(query_id);
        }
    }

    pub(super) fn answer_stopped(&mut self, query_id: QueryId) {
        let reason = self.stopped.unwrap_or(StopReason::Fork { height: 0 });
        self.actions.push_back(Action::EventVerified {
            query_id,
            result: Err(LightError::Stopped(reason)),
        });
    }
}
