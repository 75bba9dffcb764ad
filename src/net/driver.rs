//! How [`Network`] reacts to swarm events and timers: connections, the peer book, and the
//! routing of requests, responses and gossip (the handshake and Status are in `session.rs`).

use std::time::Duration;

use libp2p::request_response::{self, InboundRequestId, Message, OutboundFailure, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::PeerId;

use super::behaviour::{BehaviourEvent, RpcBehaviour};
use super::codec::InboundFrame;
use super::gossip::{Gossip, GossipEvent, MessageId, Validation};
use super::peers::{Misbehaviour, Reported};
use super::session::{Phase, Queued, MAX_QUEUED_PER_PEER};
use super::{
    Behaviour, HandshakeFailure, InboundId, NetEvent, Network, RequestFailure, RequestId,
    RespondError, DISCONNECT_GRACE,
};
use crate::protocol::{
    BlocksResponse, BlocksRpc, ErrorCode, ErrorResponse, GossipMessage, HeadersResponse,
    HeadersRpc, HelloRpc, ProofResponse, ProofRpc, Protocol, Request, Response, Rpc,
    SnapshotResponse, SnapshotRpc, StatusRpc, Topic,
};

/// A response channel of one of the data protocols.
pub(crate) enum PendingChannel {
    Headers(ResponseChannel<HeadersResponse>),
    Blocks(ResponseChannel<BlocksResponse>),
    Proof(ResponseChannel<ProofResponse>),
    Snapshot(ResponseChannel<SnapshotResponse>),
}

impl PendingChannel {
    fn protocol(&self) -> Protocol {
        match self {
            PendingChannel::Headers(_) => Protocol::Headers,
            PendingChannel::Blocks(_) => Protocol::Blocks,
            PendingChannel::Proof(_) => Protocol::Proof,
            PendingChannel::Snapshot(_) => Protocol::Snapshot,
        }
    }
}

/// The request-response behaviour of each protocol.
pub(super) trait Proto: Rpc + Sized {
    fn behaviour(b: &mut Behaviour) -> &mut RpcBehaviour<Self>;
}

/// The protocols whose requests the node answers.
trait DataProto: Proto {
    fn request(r: Self::Request) -> Request;
    fn channel(c: ResponseChannel<Self::Response>) -> PendingChannel;
    fn response(r: Self::Response) -> Response;
    fn is_error(r: &Self::Response) -> bool;
}

macro_rules! protos {
    ($($rpc:ident, $field:ident, $variant:ident, $req:ident, $resp:ident;)*) => {$(
        impl Proto for $rpc {
            fn behaviour(b: &mut Behaviour) -> &mut RpcBehaviour<Self> {
                &mut b.$field
            }
        }

        impl DataProto for $rpc {
            fn request(r: Self::Request) -> Request {
                Request::$req(r)
            }
            fn channel(c: ResponseChannel<Self::Response>) -> PendingChannel {
                PendingChannel::$variant(c)
            }
            fn response(r: Self::Response) -> Response {
                Response::$variant(r)
            }
            fn is_error(r: &Self::Response) -> bool {
                matches!(r, $resp::Error(_))
            }
        }
    )*};
}

protos! {
    HeadersRpc, headers, Headers, GetHeaders, HeadersResponse;
    BlocksRpc, blocks, Blocks, GetBlocks, BlocksResponse;
    ProofRpc, proof, Proof, GetProof, ProofResponse;
    SnapshotRpc, snapshot, Snapshot, GetSnapshot, SnapshotResponse;
}

impl Proto for HelloRpc {
    fn behaviour(b: &mut Behaviour) -> &mut RpcBehaviour<Self> {
        &mut b.hello
    }
}

impl Proto for StatusRpc {
    fn behaviour(b: &mut Behaviour) -> &mut RpcBehaviour<Self> {
        &mut b.status
    }
}

fn request_failure(error: OutboundFailure) -> RequestFailure {
    match error {
        OutboundFailure::DialFailure => RequestFailure::DialFailure,
        OutboundFailure::Timeout => RequestFailure::Timeout,
        OutboundFailure::ConnectionClosed => RequestFailure::ConnectionClosed,
        OutboundFailure::UnsupportedProtocols => RequestFailure::Unsupported,
        OutboundFailure::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            RequestFailure::InvalidResponse(e.to_string())
        }
        OutboundFailure::Io(e) => RequestFailure::Io(e.to_string()),
    }
}

impl Network {
    pub(super) fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        let now = self.now();
        match event {
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                endpoint,
                ..
            } => {
                tracing::debug!(%peer_id, addr = %endpoint.get_remote_address(), "connected");
                if self.book.is_banned(&peer_id, now) {
                    tracing::debug!(%peer_id, "refusing a banned peer");
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                if self.blacklisted.remove(&peer_id) {
                    self.swarm.behaviour_mut().gossip.unblacklist(&peer_id);
                }
                if num_established.get() == 1 && !self.sessions.contains_key(&peer_id) {
                    self.book.connected(&peer_id, now);
                    self.start_handshake(peer_id);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                cause,
                ..
            } => {
                tracing::debug!(%peer_id, ?cause, "disconnected");
                self.disconnects.remove(&peer_id);
                self.book.disconnected(&peer_id, now);
                self.pending.retain(|_, (p, _)| *p != peer_id);
                if let Some(session) = self.sessions.remove(&peer_id) {
                    if session.is_done() {
                        self.events
                            .push_back(NetEvent::PeerDisconnected { peer: peer_id });
                    }
                }
            }
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                tracing::info!(%address, "listening");
                self.listeners_pending.remove(&listener_id);
                self.listen_addrs.push(address.clone());
                self.events.push_back(NetEvent::ListenAddr { address });
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addrs.retain(|a| *a != address);
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => {
                if let Some(addr) = self.listeners_pending.remove(&listener_id) {
                    let reason = match reason {
                        Ok(()) => "listener closed".to_string(),
                        Err(e) => e.to_string(),
                    };
                    self.listener_errors.push((addr, reason));
                }
            }
            SwarmEvent::ListenerError { listener_id, error } => {
                tracing::warn!(%error, "listener error");
                if let Some(addr) = self.listeners_pending.remove(&listener_id) {
                    self.listener_errors.push((addr, error.to_string()));
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(?peer_id, %error, "dial failed");
                self.events.push_back(NetEvent::DialFailed {
                    peer: peer_id,
                    error: error.to_string(),
                });
            }
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Hello(e) => self.on_hello_event(e),
            BehaviourEvent::Status(e) => self.on_status_event(e),
            BehaviourEvent::Headers(e) => self.on_data_event::<HeadersRpc>(e),
            BehaviourEvent::Blocks(e) => self.on_data_event::<BlocksRpc>(e),
            BehaviourEvent::Proof(e) => self.on_data_event::<ProofRpc>(e),
            BehaviourEvent::Snapshot(e) => self.on_data_event::<SnapshotRpc>(e),
            BehaviourEvent::Gossip(e) => self.on_gossip_event(e),
            BehaviourEvent::Ping(_) => {}
        }
    }

    pub(super) fn on_tick(&mut self) {
        let now = self.now();
        let due: Vec<PeerId> = self
            .disconnects
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(p, _)| *p)
            .collect();
        for peer in due {
            self.disconnects.remove(&peer);
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        let timed_out: Vec<PeerId> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                s.phase == Phase::Handshaking
                    && now.saturating_sub(s.started) > self.handshake_timeout
            })
            .map(|(p, _)| *p)
            .collect();
        for peer in timed_out {
            self.fail_handshake(
                peer,
                HandshakeFailure::NoAnswer("handshake timed out".into()),
            );
        }
        self.send_due_statuses();
        self.book.prune(now);
    }

    // ---- Data protocols --------------------------------------------------------------------

    /// The checks every inbound request passes first: not banned, well-formed, within the
    /// peer's rate. A refusal is the error to answer with (the score is already lowered).
    pub(super) fn admit<P: Proto>(
        &mut self,
        peer: PeerId,
        frame: InboundFrame<P::Request>,
    ) -> Result<P::Request, ErrorResponse> {
        let now = self.now();
        if self.book.is_banned(&peer, now) {
            return Err(ErrorResponse::new(ErrorCode::RateLimited, "you are banned"));
        }
        let request = match frame {
            Ok(request) => request,
            Err(e) => {
                tracing::debug!(%peer, protocol = %P::PROTOCOL, error = %e, "bad request");
                let m = if e.code == ErrorCode::TooLarge {
                    Misbehaviour::Oversized
                } else {
                    Misbehaviour::Malformed
                };
                self.penalize(peer, m);
                return Err(e.to_response());
            }
        };
        if !self.book.allow_request(&peer, P::PROTOCOL, now) {
            self.penalize(peer, Misbehaviour::Abusive);
            return Err(ErrorResponse::new(
                ErrorCode::RateLimited,
                format!("too many {} requests", P::PROTOCOL),
            ));
        }
        Ok(request)
    }

    pub(super) fn send_error<P: Proto>(
        &mut self,
        channel: ResponseChannel<P::Response>,
        error: ErrorResponse,
    ) {
        let _ = P::behaviour(self.swarm.behaviour_mut()).send_response(channel, P::error(error));
    }

    fn on_data_event<P: DataProto>(
        &mut self,
        event: request_response::Event<InboundFrame<P::Request>, P::Response>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                Message::Request {
                    request_id,
                    request,
                    channel,
                } => self.on_data_request::<P>(peer, request_id, request, channel),
                Message::Response {
                    request_id,
                    response,
                } => {
                    if !P::is_error(&response) {
                        let now = self.now();
                        self.book.reward(&peer, now);
                    }
                    self.events.push_back(NetEvent::Response {
                        peer,
                        id: RequestId {
                            protocol: P::PROTOCOL,
                            id: request_id,
                        },
                        result: Ok(P::response(response)),
                    });
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                self.on_outbound_failure(peer, &error);
                self.events.push_back(NetEvent::Response {
                    peer,
                    id: RequestId {
                        protocol: P::PROTOCOL,
                        id: request_id,
                    },
                    result: Err(request_failure(error)),
                });
            }
            request_response::Event::InboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let id = InboundId {
                    protocol: P::PROTOCOL,
                    id: request_id,
                };
                if self.pending.remove(&id).is_some() {
                    self.book.inbound_finished(&peer);
                }
                tracing::debug!(%peer, protocol = %P::PROTOCOL, %error, "inbound request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_data_request<P: DataProto>(
        &mut self,
        peer: PeerId,
        request_id: InboundRequestId,
        frame: InboundFrame<P::Request>,
        channel: ResponseChannel<P::Response>,
    ) {
        let request = match self.admit::<P>(peer, frame) {
            Ok(request) => P::request(request),
            Err(error) => return self.send_error::<P>(channel, error),
        };
        // Not a fault: a requester cannot know response sizes before it asks, so an honest one
        // may run into the budget. It is told to come back later; its score is untouched.
        if !self.book.within_egress_budget(&peer, self.now()) {
            tracing::debug!(%peer, protocol = %P::PROTOCOL, "over its byte budget");
            let error = ErrorResponse::new(ErrorCode::RateLimited, "over your byte budget");
            return self.send_error::<P>(channel, error);
        }
        let id = InboundId {
            protocol: P::PROTOCOL,
            id: request_id,
        };
        match self.sessions.get_mut(&peer) {
            Some(s) if s.phase == Phase::Done => {
                self.deliver_request(peer, id, request, P::channel(channel))
            }
            Some(s) if s.phase == Phase::Handshaking && s.queued.len() < MAX_QUEUED_PER_PEER => {
                s.queued.push(Queued::Request {
                    id,
                    request,
                    channel: P::channel(channel),
                });
            }
            _ => {
                let error = ErrorResponse::new(ErrorCode::Unsupported, "handshake first");
                self.send_error::<P>(channel, error);
            }
        }
    }

    /// Hands a request of a handshaken peer to the node, within the peer's concurrency.
    pub(super) fn deliver_request(
        &mut self,
        peer: PeerId,
        id: InboundId,
        request: Request,
        channel: PendingChannel,
    ) {
        let now = self.now();
        if !self.book.inbound_started(&peer, now) {
            self.penalize(peer, Misbehaviour::Abusive);
            let error = ErrorResponse::new(ErrorCode::RateLimited, "too many concurrent requests");
            let response = Response::error(id.protocol, error).expect("a data protocol");
            let _ = self.send_pending(channel, response);
            return;
        }
        self.pending.insert(id, (peer, channel));
        self.events
            .push_back(NetEvent::InboundRequest { peer, id, request });
    }

    /// Sends `response` on a data channel (the protocols match: checked by the caller).
    pub(super) fn send_pending(
        &mut self,
        channel: PendingChannel,
        response: Response,
    ) -> Result<(), RespondError> {
        let b = self.swarm.behaviour_mut();
        let sent = match (channel, response) {
            (PendingChannel::Headers(c), Response::Headers(r)) => {
                b.headers.send_response(c, r).is_ok()
            }
            (PendingChannel::Blocks(c), Response::Blocks(r)) => {
                b.blocks.send_response(c, r).is_ok()
            }
            (PendingChannel::Proof(c), Response::Proof(r)) => b.proof.send_response(c, r).is_ok(),
            (PendingChannel::Snapshot(c), Response::Snapshot(r)) => {
                b.snapshot.send_response(c, r).is_ok()
            }
            (c, r) => {
                return Err(RespondError::WrongProtocol {
                    expected: c.protocol(),
                    got: r.protocol(),
                })
            }
        };
        if sent {
            Ok(())
        } else {
            Err(RespondError::Closed)
        }
    }

    pub(super) fn on_outbound_failure(&mut self, peer: PeerId, error: &OutboundFailure) {
        match error {
            OutboundFailure::Timeout => self.penalize(peer, Misbehaviour::Timeout),
            OutboundFailure::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                self.penalize(peer, Misbehaviour::Malformed)
            }
            _ => {}
        }
    }

    // ---- Gossip ----------------------------------------------------------------------------

    fn on_gossip_event(&mut self, event: GossipEvent) {
        let Some(received) = Gossip::received(event) else {
            return;
        };
        let from = received.propagation_source;
        let decoded = Topic::from_name(&received.topic)
            .ok_or_else(|| format!("unknown topic {}", received.topic))
            .and_then(|topic| {
                GossipMessage::decode(topic, &received.data).map_err(|e| e.to_string())
            });
        let decoded = match decoded {
            Ok(m) => m,
            Err(reason) => {
                tracing::debug!(peer = %from, %reason, "bad gossip");
                self.validate_gossip(&received.message_id, &from, Validation::Reject);
                self.penalize(from, Misbehaviour::Malformed);
                return;
            }
        };
        match self.sessions.get_mut(&from) {
            Some(s) if s.phase == Phase::Done => {
                self.accept_gossip(from, received.message_id, decoded, received.source)
            }
            Some(s) if s.phase == Phase::Handshaking && s.queued.len() < MAX_QUEUED_PER_PEER => {
                s.queued.push(Queued::Gossip {
                    message_id: received.message_id,
                    message: decoded,
                    source: received.source,
                });
            }
            _ => self.validate_gossip(&received.message_id, &from, Validation::Ignore),
        }
    }

    pub(super) fn validate_gossip(&mut self, id: &MessageId, from: &PeerId, v: Validation) {
        self.swarm.behaviour_mut().gossip.validate(id, from, v);
    }

    pub(super) fn accept_gossip(
        &mut self,
        propagation_source: PeerId,
        message_id: MessageId,
        message: GossipMessage,
        source: Option<PeerId>,
    ) {
        self.validate_gossip(&message_id, &propagation_source, Validation::Accept);
        self.events.push_back(NetEvent::Gossip {
            message,
            source,
            propagated_by: propagation_source,
        });
    }

    // ---- Scores and bans -------------------------------------------------------------------

    pub(super) fn penalize(&mut self, peer: PeerId, m: Misbehaviour) {
        let now = self.now();
        match self.book.report(&peer, m, now) {
            Reported::Penalized { score } => {
                tracing::debug!(%peer, ?m, score, "peer penalized");
            }
            Reported::Banned { until } => {
                self.on_banned(peer, until.saturating_sub(now), DISCONNECT_GRACE);
            }
        }
    }

    /// Blacklists a newly banned peer in gossip and disconnects it after `grace`.
    pub(super) fn on_banned(&mut self, peer: PeerId, duration: Duration, grace: Duration) {
        tracing::warn!(%peer, ?duration, "peer banned");
        self.swarm.behaviour_mut().gossip.blacklist(&peer);
        self.blacklisted.insert(peer);
        let at = self.now() + grace;
        self.disconnects.insert(peer, at);
        if grace.is_zero() {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        self.events
            .push_back(NetEvent::PeerBanned { peer, duration });
    }
}
