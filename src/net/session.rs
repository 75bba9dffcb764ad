//! The handshake with each peer (Hello both ways, ack verification, failure and disconnect)
//! and the Status exchange that follows it.

use std::time::Duration;

use libp2p::request_response::{self, Message, ResponseChannel};
use libp2p::PeerId;

use super::codec::InboundFrame;
use super::driver::PendingChannel;
use super::gossip::{MessageId, Validation};
use super::peers::Misbehaviour;
use super::{key_matches, HandshakeFailure, InboundId, NetEvent, Network, DISCONNECT_GRACE};
use crate::protocol::limits::STATUS_PUSH_INTERVAL;
use crate::protocol::{
    check_hello, sign_ack, verify_ack, ErrorCode, ErrorResponse, GossipMessage, HandshakeInfo,
    Hello, HelloResponse, HelloRpc, Request, Status, StatusResponse, StatusRpc,
};

/// Most requests and gossip messages held per peer while its handshake runs.
pub(super) const MAX_QUEUED_PER_PEER: usize = 16;

/// Something a peer sent before its handshake finished.
#[allow(clippy::large_enum_variant)] // short-lived, at most MAX_QUEUED_PER_PEER per peer
pub(super) enum Queued {
    Request {
        id: InboundId,
        request: Request,
        channel: PendingChannel,
    },
    Gossip {
        message_id: MessageId,
        message: GossipMessage,
        source: Option<PeerId>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    Handshaking,
    Done,
    Failed,
}

/// The handshake with one connected peer.
pub(crate) struct Session {
    pub(super) phase: Phase,
    pub(super) started: Duration,
    /// Our Hello and the id of its request.
    pub(super) hello: Hello,
    pub(super) hello_id: request_response::OutboundRequestId,
    /// The peer's info from its verified ack.
    pub(super) acked: Option<HandshakeInfo>,
    /// Whether we accepted the peer's Hello.
    pub(super) answered: bool,
    pub(super) queued: Vec<Queued>,
    pub(super) last_status_sent: Duration,
    /// Our head moved since the last Status we sent, and gossip does not tell the peer.
    pub(super) status_push_due: bool,
}

impl Session {
    pub(crate) fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }
}

impl Network {
    // ---- Handshake -------------------------------------------------------------------------

    pub(super) fn start_handshake(&mut self, peer: PeerId) {
        let hello = Hello {
            info: self.local_info(),
            nonce: rand::random(),
        };
        let hello_id = self
            .swarm
            .behaviour_mut()
            .hello
            .send_request(&peer, Ok(hello.clone()));
        self.sessions.insert(
            peer,
            Session {
                phase: Phase::Handshaking,
                started: self.now(),
                hello,
                hello_id,
                acked: None,
                answered: false,
                queued: Vec::new(),
                last_status_sent: Duration::ZERO,
                status_push_due: false,
            },
        );
    }

    pub(super) fn on_hello_event(
        &mut self,
        event: request_response::Event<InboundFrame<Hello>, HelloResponse>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                Message::Request {
                    request, channel, ..
                } => self.on_hello_request(peer, request, channel),
                Message::Response {
                    request_id,
                    response,
                } => self.on_hello_response(peer, request_id, response),
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if self
                    .sessions
                    .get(&peer)
                    .is_some_and(|s| s.hello_id == request_id)
                {
                    self.fail_handshake(peer, HandshakeFailure::NoAnswer(error.to_string()));
                }
            }
            request_response::Event::ResponseSent { peer, .. } => {
                // The reason reached a refused peer: drop it now.
                if self
                    .sessions
                    .get(&peer)
                    .is_some_and(|s| s.phase == Phase::Failed)
                {
                    self.disconnects.insert(peer, self.now());
                }
            }
            request_response::Event::InboundFailure { .. } => {}
        }
    }

    fn on_hello_request(
        &mut self,
        peer: PeerId,
        frame: InboundFrame<Hello>,
        channel: ResponseChannel<HelloResponse>,
    ) {
        let hello = match self.admit::<HelloRpc>(peer, frame) {
            Ok(hello) => hello,
            Err(error) => {
                self.send_error::<HelloRpc>(channel, error.clone());
                if error.code != ErrorCode::RateLimited {
                    self.fail_handshake(peer, HandshakeFailure::Malformed(error));
                }
                return;
            }
        };
        let Some(phase) = self.sessions.get(&peer).map(|s| s.phase) else {
            let error = ErrorResponse::new(ErrorCode::Unsupported, "no connection state");
            self.send_error::<HelloRpc>(channel, error);
            return;
        };
        if phase == Phase::Failed {
            let error = ErrorResponse::new(ErrorCode::Unsupported, "handshake already failed");
            self.send_error::<HelloRpc>(channel, error);
            return;
        }
        if !key_matches(&hello.info.node_key, &peer) {
            let failure = HandshakeFailure::KeyMismatch {
                claimed: hello.info.node_key.clone(),
            };
            self.send_error::<HelloRpc>(
                channel,
                ErrorResponse::new(ErrorCode::Malformed, failure.to_string()),
            );
            self.fail_handshake(peer, failure);
            return;
        }
        let ours = self.local_info();
        if let Err(e) = check_hello(&ours, &hello.info) {
            self.send_error::<HelloRpc>(channel, e.to_response());
            self.fail_handshake(peer, HandshakeFailure::Refused(e));
            return;
        }
        let ack = sign_ack(&self.key, &hello, ours);
        let _ = self
            .swarm
            .behaviour_mut()
            .hello
            .send_response(channel, HelloResponse::Ack(ack));
        if let Some(s) = self.sessions.get_mut(&peer) {
            s.answered = true;
        }
        self.maybe_done(peer);
    }

    fn on_hello_response(
        &mut self,
        peer: PeerId,
        request_id: request_response::OutboundRequestId,
        response: HelloResponse,
    ) {
        let Some(session) = self.sessions.get(&peer) else {
            return;
        };
        if session.hello_id != request_id || session.phase != Phase::Handshaking {
            return;
        }
        let ack = match response {
            HelloResponse::Ack(ack) => ack,
            HelloResponse::Error(e) => {
                self.fail_handshake(peer, HandshakeFailure::RefusedByPeer(e));
                return;
            }
        };
        if !key_matches(&ack.info.node_key, &peer) {
            let claimed = ack.info.node_key.clone();
            self.fail_handshake(peer, HandshakeFailure::KeyMismatch { claimed });
            return;
        }
        if let Err(e) = verify_ack(&session.hello, &ack) {
            self.fail_handshake(peer, HandshakeFailure::Refused(e));
            return;
        }
        if let Some(s) = self.sessions.get_mut(&peer) {
            s.acked = Some(ack.info);
        }
        self.maybe_done(peer);
    }

    /// Completes the handshake once the peer's Hello was accepted and its ack verified.
    fn maybe_done(&mut self, peer: PeerId) {
        let Some(session) = self.sessions.get_mut(&peer) else {
            return;
        };
        if session.phase != Phase::Handshaking || !session.answered {
            return;
        }
        let Some(info) = session.acked.clone() else {
            return;
        };
        session.phase = Phase::Done;
        let queued = std::mem::take(&mut session.queued);
        tracing::info!(%peer, chain = %info.chain_id, head = info.head_height, "handshake done");
        self.events
            .push_back(NetEvent::HandshakeDone { peer, info });
        self.send_status(peer);
        for item in queued {
            match item {
                Queued::Request {
                    id,
                    request,
                    channel,
                } => self.deliver_request(peer, id, request, channel),
                Queued::Gossip {
                    message_id,
                    message,
                    source,
                } => self.accept_gossip(peer, message_id, message, source),
            }
        }
    }

    pub(super) fn fail_handshake(&mut self, peer: PeerId, reason: HandshakeFailure) {
        let Some(session) = self.sessions.get_mut(&peer) else {
            return;
        };
        if session.phase != Phase::Handshaking {
            return;
        }
        session.phase = Phase::Failed;
        let queued = std::mem::take(&mut session.queued);
        for item in queued {
            if let Queued::Gossip { message_id, .. } = item {
                self.validate_gossip(&message_id, &peer, Validation::Ignore);
            }
        }
        tracing::warn!(%peer, %reason, "handshake failed; disconnecting");
        // Peers on another chain or version are not misbehaving; everything else costs score.
        match reason.code() {
            ErrorCode::WrongChain | ErrorCode::IncompatibleVersion => {}
            _ => self.penalize(peer, Misbehaviour::HandshakeFailed),
        }
        self.events
            .push_back(NetEvent::HandshakeFailed { peer, reason });
        let at = self.now() + DISCONNECT_GRACE;
        self.disconnects.entry(peer).or_insert(at);
    }

    // ---- Status ----------------------------------------------------------------------------

    pub(super) fn send_status(&mut self, peer: PeerId) {
        let status = self.status.clone();
        self.swarm
            .behaviour_mut()
            .status
            .send_request(&peer, Ok(status));
        let now = self.now();
        if let Some(s) = self.sessions.get_mut(&peer) {
            s.last_status_sent = now;
            s.status_push_due = false;
        }
    }

    /// Sends our Status to every handshaken peer it is due to: every `status_interval`, and
    /// after a new head that [`Network::set_status`] marked for a push once the peer had none
    /// from us for [`STATUS_PUSH_INTERVAL`] (else a later tick sends it).
    pub(super) fn send_due_statuses(&mut self) {
        let now = self.now();
        let due: Vec<PeerId> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                let since = now.saturating_sub(s.last_status_sent);
                s.is_done()
                    && (since >= self.status_interval
                        || (s.status_push_due && since >= STATUS_PUSH_INTERVAL))
            })
            .map(|(p, _)| *p)
            .collect();
        for peer in due {
            self.send_status(peer);
        }
    }

    fn record_status(&mut self, peer: PeerId, status: Status) {
        let now = self.now();
        self.book.set_status(&peer, status.clone(), now);
        if self.is_handshaken(&peer) {
            self.events.push_back(NetEvent::PeerStatus { peer, status });
        }
    }

    pub(super) fn on_status_event(
        &mut self,
        event: request_response::Event<InboundFrame<Status>, StatusResponse>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                Message::Request {
                    request, channel, ..
                } => {
                    let status = match self.admit::<StatusRpc>(peer, request) {
                        Ok(status) => status,
                        Err(error) => return self.send_error::<StatusRpc>(channel, error),
                    };
                    self.record_status(peer, status);
                    let ours = StatusResponse::Status(self.status.clone());
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .status
                        .send_response(channel, ours);
                }
                Message::Response { response, .. } => {
                    if let StatusResponse::Status(status) = response {
                        self.record_status(peer, status);
                    }
                }
            },
            request_response::Event::OutboundFailure { peer, error, .. } => {
                self.on_outbound_failure(peer, &error);
            }
            _ => {}
        }
    }
}
