//! On-demand event proofs: ask a peer for a proof against the latest verified header, verify
//! it, and try other peers when one fails.

use std::fmt;

use super::error::{DropReason, LightError};
use super::machine::{LightClient, RequestKind};
use super::messages::{Action, QueryId, RequestId};
use crate::chain::{BlockHeader, EventId};
use crate::proof::VerifiedEvent;
use crate::protocol::{ErrorCode, GetProof, ProofResponse, Request};

/// One open `verify_event` call.
#[derive(Clone, Debug)]
pub(crate) struct Query<P> {
    pub event_id: EventId,
    /// Peers asked so far.
    pub tried: Vec<P>,
    /// The request in flight and the header its proof must verify against.
    pub in_flight: Option<(RequestId, BlockHeader)>,
    /// The most telling failure so far.
    pub failure: Option<LightError>,
    pub deadline_ms: u64,
    /// Every peer said "not found" while the client was still syncing (the event may be in a
    /// block past the verified head): asked again once the client has caught up.
    pub after_sync: bool,
}

impl<P: Clone + Ord + fmt::Debug> LightClient<P> {
    pub(crate) fn on_verify_event(&mut self, query_id: QueryId, event_id: EventId) {
        self.queries.insert(
            query_id,
            Query {
                event_id,
                tried: Vec::new(),
                in_flight: None,
                failure: None,
                deadline_ms: self.now_ms.saturating_add(self.options.proof_timeout_ms),
                after_sync: false,
            },
        );
    }

    /// Sends every query without a request in flight to a peer it has not tried, or answers it
    /// when no peer is left to try.
    pub(crate) fn dispatch_queries(&mut self) {
        let Some(trusted) = &self.trusted else {
            return;
        };
        let (at_height, at) = (trusted.height(), trusted.header.clone());
        let syncing = at_height < self.target_height();
        let waiting: Vec<QueryId> = self
            .queries
            .iter()
            .filter(|(_, q)| q.in_flight.is_none())
            .map(|(&id, _)| id)
            .collect();
        for query_id in waiting {
            let Some(query) = self.queries.get_mut(&query_id) else {
                continue;
            };
            if query.after_sync && syncing {
                continue;
            }
            let exhausted = query.tried.len() >= self.options.proof_peers
                || (!query.tried.is_empty() && self.peers.ids().all(|p| query.tried.contains(p)));
            let not_found = matches!(query.failure, Some(LightError::NotFound { .. }));
            if exhausted && not_found && syncing && !query.after_sync {
                query.after_sync = true;
                query.tried.clear();
                query.failure = None;
                continue;
            }
            if exhausted {
                let error = query.failure.clone().unwrap_or(LightError::NotFound {
                    event_id: query.event_id,
                });
                self.finish_query(query_id, Err(error));
                continue;
            }
            let event_id = query.event_id;
            let Some(peer) = self
                .peers
                .pick(at_height, self.now_ms, None, |p| !query.tried.contains(p))
            else {
                continue; // Wait for a peer (or the deadline).
            };
            let request = Request::GetProof(GetProof {
                event_id,
                at_height: Some(at_height),
            });
            let id = self.send(
                peer.clone(),
                RequestKind::Proof { query: query_id },
                request,
            );
            if let Some(query) = self.queries.get_mut(&query_id) {
                query.tried.push(peer);
                query.in_flight = Some((id, at.clone()));
            }
        }
    }

    pub(crate) fn on_proof_response(
        &mut self,
        peer: P,
        id: RequestId,
        query_id: QueryId,
        response: ProofResponse,
    ) {
        let Some(query) = self.queries.get_mut(&query_id) else {
            return;
        };
        let at = match query.in_flight.take() {
            Some((in_flight, at)) if in_flight == id => at,
            other => {
                query.in_flight = other;
                return;
            }
        };
        let event_id = query.event_id;
        let failure = match response {
            ProofResponse::Proof(Some(proof)) => match proof.verify(&at) {
                Ok(verified) if verified.event_id == event_id => {
                    self.peers.succeeded(&peer);
                    self.finish_query(query_id, Ok(verified));
                    return;
                }
                Ok(verified) => {
                    let error = LightError::WrongEvent {
                        expected: event_id,
                        got: verified.event_id,
                    };
                    let reason = DropReason::Malformed(error.to_string());
                    self.drop_peer(peer, reason, self.options.avoid_ms);
                    error
                }
                Err(e) => {
                    let reason = DropReason::InvalidProof(e.clone());
                    self.drop_peer(peer, reason, self.options.avoid_ms);
                    LightError::InvalidProof(e)
                }
            },
            ProofResponse::Proof(None) => LightError::NotFound { event_id },
            ProofResponse::Error(e) if e.code == ErrorCode::NotFound => {
                LightError::NotFound { event_id }
            }
            ProofResponse::Error(e) => LightError::ProofUnavailable {
                event_id,
                reason: e.to_string(),
            },
        };
        self.proof_attempt_failed(query_id, id, failure);
    }

    /// One attempt of a query failed: remember the most telling failure; the query goes to
    /// another peer at the next dispatch.
    pub(crate) fn proof_attempt_failed(&mut self, query_id: QueryId, id: RequestId, e: LightError) {
        let Some(query) = self.queries.get_mut(&query_id) else {
            return;
        };
        if query.in_flight.as_ref().is_some_and(|(i, _)| *i == id) {
            query.in_flight = None;
        }
        if query
            .failure
            .as_ref()
            .is_none_or(|f| e.proof_rank() >= f.proof_rank())
        {
            query.failure = Some(e);
        }
    }

    pub(crate) fn expire_queries(&mut self) {
        let now = self.now_ms;
        let expired: Vec<(QueryId, EventId)> = self
            .queries
            .iter()
            .filter(|(_, q)| q.deadline_ms <= now)
            .map(|(&id, q)| (id, q.event_id))
            .collect();
        for (query_id, event_id) in expired {
            // Its request, if any, is left to time out on its own (and then ignored).
            let timeout_ms = self.options.proof_timeout_ms;
            let error = match self.queries.get(&query_id).and_then(|q| q.failure.clone()) {
                Some(e) if e.proof_rank() > 1 => e,
                _ => LightError::ProofTimeout {
                    event_id,
                    timeout_ms,
                },
            };
            self.finish_query(query_id, Err(error));
        }
    }

    fn finish_query(&mut self, query_id: QueryId, result: Result<VerifiedEvent, LightError>) {
        self.queries.remove(&query_id);
        self.actions
            .push_back(Action::EventVerified { query_id, result });
    }
}
