//! The network: a libp2p swarm driven by [`Network`], which the node runs inside its tokio
//! task and the browser light client on the JS event loop. Only [`transport`] differs per
//! target; timers come from [`crate::platform`].
//!
//! The node sees only handshaken peers. On every new connection both sides send a Hello; the
//! network checks the peer's chain, version and key, verifies its ack and only then reports
//! [`NetEvent::HandshakeDone`]; on a mismatch it answers with the reason, logs it, reports
//! [`NetEvent::HandshakeFailed`] and disconnects. Requests that arrive while the handshake is
//! still running are held and released after it.
//!
//! The [`PeerBook`] is applied here too: banned peers are disconnected, requests over a peer's
//! rate or concurrency are refused with `RateLimited`, and undecodable or oversized messages are
//! answered with `Malformed` / `TooLarge` and lower the sender's score. The network answers
//! Status itself (from [`Network::set_status`]) and exchanges it every
//! [`NetworkConfig::status_interval`]; the data requests (headers, blocks, proofs, snapshots)
//! go out as [`NetEvent::InboundRequest`] for the node to answer with [`Network::respond`].
//!
//! Modules: [`codec`] (framing), [`behaviour`] (the composed libp2p behaviour), [`transport`]
//! (TCP, WebSocket, WebRTC-direct), [`peers`] (scores, bans, rate limits; sans I/O).

pub mod behaviour;
pub mod codec;
mod driver;
pub mod gossip;
pub mod peers;
mod session;
pub mod transport;

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::time::Duration;

use futures::future::{self, Either};
use futures::StreamExt;
use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol as AddrProtocol;
use libp2p::request_response::{InboundRequestId, OutboundRequestId};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{identity::Keypair, Multiaddr, PeerId, Swarm};

use crate::platform::{self, Instant, Sleep};

use crate::chain::{ChainId, Hash};
use crate::crypto::ed25519::{PublicKey, SigningKey};
use crate::protocol::limits::{HANDSHAKE_TIMEOUT, STATUS_INTERVAL};
use crate::protocol::{
    ErrorCode, ErrorResponse, GossipMessage, HandshakeError, HandshakeInfo, Protocol, Request,
    Response, Status, Topic, WIRE_VERSION,
};

pub use behaviour::Behaviour;
pub use peers::{Misbehaviour, PeerBook, PeerBookConfig};
pub use transport::TransportError;
#[cfg(not(target_arch = "wasm32"))]
pub use transport::{TlsConfig, TlsError, WebrtcCertificate};

use driver::PendingChannel;
use session::Session;

/// How long a peer that is being dropped keeps its connection, so the error response that
/// explains why can still reach it.
const DISCONNECT_GRACE: Duration = Duration::from_millis(500);

/// How often the network checks timers (handshake timeouts, status, disconnects).
const TICK: Duration = Duration::from_millis(250);

/// How long [`Network::new`] waits for every listener to report an address.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything the network needs to start.
#[derive(Clone)]
pub struct NetworkConfig {
    /// The node's libp2p identity; must be ed25519 (its public key is the Hello `node_key`).
    pub keypair: Keypair,
    pub chain_id: ChainId,
    pub genesis_hash: Hash,
    /// The node's status at start (update it with [`Network::set_status`]).
    pub status: Status,
    /// Addresses to listen on: `/ip4/…/tcp/P`, `/ip4/…/tcp/P/ws`, `/ip4/…/tcp/P/tls/ws` (with
    /// [`NetworkConfig::websocket_tls`]), `/ip4/…/udp/P/webrtc-direct`.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start, ideally ending in `/p2p/<peer id>`.
    pub bootnodes: Vec<Multiaddr>,
    // The three transport settings below exist natively only: a browser cannot listen and
    // uses the browser's own TLS roots.
    /// A WebRTC certificate persisted earlier; `None` generates one if a WebRTC-direct address
    /// is listened on. Store the PEM [`Network::new`] returns so the certhash, and so the
    /// node's WebRTC address, stays the same across restarts.
    #[cfg(not(target_arch = "wasm32"))]
    pub webrtc_certificate_pem: Option<String>,
    /// The certificate served on `/tls/ws` (`/wss`) listen addresses; without one such an
    /// address is refused. Plain `/ws` needs none.
    #[cfg(not(target_arch = "wasm32"))]
    pub websocket_tls: Option<TlsConfig>,
    /// Certificates (PEM) trusted when dialing `/tls/ws` peers, besides the webpki (Mozilla)
    /// roots: e.g. a peer's self-signed certificate.
    #[cfg(not(target_arch = "wasm32"))]
    pub websocket_trusted_roots: Vec<String>,
    pub peer_book: PeerBookConfig,
    /// The gossip topics to subscribe to (default: all; light clients: none). The browser
    /// build has no gossip (see [`gossip`]) and refuses any topic.
    pub topics: Vec<Topic>,
    pub gossip_heartbeat: Duration,
    pub idle_connection_timeout: Duration,
    pub status_interval: Duration,
    pub handshake_timeout: Duration,
}

impl NetworkConfig {
    /// A configuration with the default limits and timers, listening nowhere.
    pub fn new(keypair: Keypair, chain_id: ChainId, genesis_hash: Hash, status: Status) -> Self {
        NetworkConfig {
            keypair,
            chain_id,
            genesis_hash,
            status,
            listen: Vec::new(),
            bootnodes: Vec::new(),
            #[cfg(not(target_arch = "wasm32"))]
            webrtc_certificate_pem: None,
            #[cfg(not(target_arch = "wasm32"))]
            websocket_tls: None,
            #[cfg(not(target_arch = "wasm32"))]
            websocket_trusted_roots: Vec::new(),
            peer_book: PeerBookConfig::default(),
            topics: Topic::ALL.to_vec(),
            gossip_heartbeat: Duration::from_secs(1),
            idle_connection_timeout: 2 * STATUS_INTERVAL,
            status_interval: STATUS_INTERVAL,
            handshake_timeout: HANDSHAKE_TIMEOUT,
        }
    }
}

/// Why the network could not start or an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("the node key must be an ed25519 key: {0}")]
    Key(String),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("cannot build the behaviour: {0}")]
    Behaviour(String),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: Multiaddr, reason: String },
    #[error("cannot dial {addr}: {reason}")]
    Dial { addr: Multiaddr, reason: String },
}

/// Our id for a request we sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestId {
    pub protocol: Protocol,
    id: OutboundRequestId,
}

/// The id of a peer's request the node has to answer with [`Network::respond`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InboundId {
    pub protocol: Protocol,
    id: InboundRequestId,
}

/// Why a handshake failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// We refused the peer's Hello or ack.
    Refused(HandshakeError),
    /// The peer refused our Hello.
    RefusedByPeer(ErrorResponse),
    /// The Hello or ack names a node key other than the one the connection authenticated.
    KeyMismatch { claimed: PublicKey },
    /// The peer's Hello did not decode.
    Malformed(ErrorResponse),
    /// No valid answer in time (timeout, protocol not supported, stream error).
    NoAnswer(String),
}

impl HandshakeFailure {
    /// The error code that best describes the failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            HandshakeFailure::Refused(e) => e.code(),
            HandshakeFailure::RefusedByPeer(e) | HandshakeFailure::Malformed(e) => e.code,
            HandshakeFailure::KeyMismatch { .. } => ErrorCode::Malformed,
            HandshakeFailure::NoAnswer(_) => ErrorCode::Unsupported,
        }
    }
}

impl fmt::Display for HandshakeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeFailure::Refused(e) => write!(f, "we refused the peer: {e}"),
            HandshakeFailure::RefusedByPeer(e) => write!(f, "the peer refused us: {e}"),
            HandshakeFailure::KeyMismatch { claimed } => write!(
                f,
                "the peer claims node key {claimed}, not the key of its connection"
            ),
            HandshakeFailure::Malformed(e) => write!(f, "malformed hello: {e}"),
            HandshakeFailure::NoAnswer(reason) => write!(f, "no valid answer: {reason}"),
        }
    }
}

/// Why one of our requests got no response.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestFailure {
    #[error("the request timed out")]
    Timeout,
    #[error("the connection closed before the response")]
    ConnectionClosed,
    #[error("the peer does not support the protocol")]
    Unsupported,
    #[error("the response is oversized or malformed: {0}")]
    InvalidResponse(String),
    #[error("stream error: {0}")]
    Io(String),
    #[error("could not dial the peer")]
    DialFailure,
}

/// Why [`Network::send_request`] refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("peer {0} is not handshaken")]
    NotHandshaken(PeerId),
}

/// Why [`Network::respond`] failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RespondError {
    #[error("no pending request {0:?} (answered already, timed out or the peer left)")]
    Unknown(InboundId),
    #[error("a {got} response cannot answer a {expected} request")]
    WrongProtocol { expected: Protocol, got: Protocol },
    #[error("response of {len} bytes exceeds the cap {max}: sent a TooLarge error instead")]
    TooLarge { len: usize, max: usize },
    #[error("the request's stream is closed")]
    Closed,
}

/// Why [`Network::publish`] failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    #[error("no peer is subscribed to the topic yet")]
    NoPeers,
    #[error("this payload was published already")]
    Duplicate,
    #[error("gossip payload of {0} bytes is too large")]
    TooLarge(usize),
    #[error("publish failed: {0}")]
    Other(String),
}

/// What the network reports to the node.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // each event is moved once, to the node
pub enum NetEvent {
    /// A new listen address (WebRTC-direct ones end in `/certhash/…`).
    ListenAddr { address: Multiaddr },
    /// A peer finished the handshake; `info` is what it said in its verified ack.
    HandshakeDone { peer: PeerId, info: HandshakeInfo },
    /// A handshake failed; the peer is being disconnected.
    HandshakeFailed {
        peer: PeerId,
        reason: HandshakeFailure,
    },
    /// A handshaken peer's last connection closed.
    PeerDisconnected { peer: PeerId },
    /// A peer's score fell to the ban threshold (or it was banned explicitly).
    PeerBanned { peer: PeerId, duration: Duration },
    /// A handshaken peer's latest status.
    PeerStatus { peer: PeerId, status: Status },
    /// A request for the node to answer with [`Network::respond`].
    InboundRequest {
        peer: PeerId,
        id: InboundId,
        request: Request,
    },
    /// The outcome of one of our requests. A response may carry an [`ErrorResponse`].
    Response {
        peer: PeerId,
        id: RequestId,
        result: Result<Response, RequestFailure>,
    },
    /// A gossip message from a handshaken peer (already forwarded to the mesh).
    Gossip {
        message: GossipMessage,
        /// The peer that published it (gossip messages are signed).
        source: Option<PeerId>,
        /// The peer we received it from.
        propagated_by: PeerId,
    },
    /// An outgoing connection attempt failed.
    DialFailed { peer: Option<PeerId>, error: String },
}

/// The network driver: owns the swarm, the peer book and the handshake state.
pub struct Network {
    swarm: Swarm<Behaviour>,
    key: SigningKey,
    chain_id: ChainId,
    genesis_hash: Hash,
    status: Status,
    book: PeerBook<PeerId>,
    sessions: HashMap<PeerId, Session>,
    pending: HashMap<InboundId, (PeerId, PendingChannel)>,
    /// Peers to disconnect at the given time.
    disconnects: HashMap<PeerId, Duration>,
    /// Peers on gossipsub's blacklist (banned).
    blacklisted: HashSet<PeerId>,
    events: VecDeque<NetEvent>,
    listen_addrs: Vec<Multiaddr>,
    /// Listeners that have not reported an address yet (only during [`Network::new`]).
    listeners_pending: HashMap<ListenerId, Multiaddr>,
    listener_errors: Vec<(Multiaddr, String)>,
    webrtc_pem: Option<String>,
    status_interval: Duration,
    handshake_timeout: Duration,
    origin: Instant,
    /// The next timer check ([`TICK`]).
    tick: Sleep,
}

impl Network {
    /// Builds the swarm, starts listening (waiting until every listener has an address, so
    /// [`Network::listen_addrs`] is complete) and dials the bootnodes.
    ///
    /// Returns the network and, when a new WebRTC certificate was generated, its PEM for the
    /// node to persist and pass back as [`NetworkConfig::webrtc_certificate_pem`] next time.
    pub async fn new(config: NetworkConfig) -> Result<(Network, Option<String>), NetError> {
        let key = signing_key(&config.keypair)?;
        let behaviour = Behaviour::new(&config.keypair, config.gossip_heartbeat, &config.topics)
            .map_err(NetError::Behaviour)?;
        let built = transport::build_swarm(&config, behaviour)?;
        let mut net = Network {
            swarm: built.swarm,
            key,
            chain_id: config.chain_id,
            genesis_hash: config.genesis_hash,
            status: config.status,
            book: PeerBook::new(config.peer_book),
            sessions: HashMap::new(),
            pending: HashMap::new(),
            disconnects: HashMap::new(),
            blacklisted: HashSet::new(),
            events: VecDeque::new(),
            listen_addrs: Vec::new(),
            listeners_pending: HashMap::new(),
            listener_errors: Vec::new(),
            webrtc_pem: built.webrtc_pem,
            status_interval: config.status_interval,
            handshake_timeout: config.handshake_timeout,
            origin: Instant::now(),
            tick: platform::sleep(TICK),
        };
        for addr in config.listen {
            let id = net
                .swarm
                .listen_on(addr.clone())
                .map_err(|e| NetError::Listen {
                    addr: addr.clone(),
                    reason: e.to_string(),
                })?;
            net.listeners_pending.insert(id, addr);
        }
        net.await_listeners().await?;
        for addr in config.bootnodes {
            net.dial(addr)?;
        }
        Ok((net, built.generated_pem))
    }

    /// Drives the swarm until every listener reported an address or failed.
    async fn await_listeners(&mut self) -> Result<(), NetError> {
        let mut deadline = platform::sleep(LISTEN_TIMEOUT);
        while !self.listeners_pending.is_empty() {
            if let Some((addr, reason)) = self.listener_errors.pop() {
                return Err(NetError::Listen { addr, reason });
            }
            match future::select(self.swarm.select_next_some(), &mut deadline).await {
                Either::Left((event, _)) => self.on_swarm_event(event),
                Either::Right(_) => {
                    let (_, addr) = self.listeners_pending.drain().next().expect("not empty");
                    return Err(NetError::Listen {
                        addr,
                        reason: "no address reported in time".into(),
                    });
                }
            }
        }
        match self.listener_errors.pop() {
            Some((addr, reason)) => Err(NetError::Listen { addr, reason }),
            None => Ok(()),
        }
    }

    /// The next event. Cancel-safe: it can be a branch of `tokio::select!` (the swarm's
    /// stream and the stored tick timer lose nothing when the future is dropped).
    pub async fn next_event(&mut self) -> NetEvent {
        loop {
            if let Some(event) = self.events.pop_front() {
                return event;
            }
            match future::select(self.swarm.select_next_some(), &mut self.tick).await {
                Either::Left((event, _)) => self.on_swarm_event(event),
                Either::Right(_) => {
                    self.tick = platform::sleep(TICK);
                    self.on_tick();
                }
            }
        }
    }

    pub fn local_peer_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    /// The addresses we listen on (WebRTC-direct ones end in `/certhash/…`).
    pub fn listen_addrs(&self) -> &[Multiaddr] {
        &self.listen_addrs
    }

    /// The WebRTC certificate PEM in use, if WebRTC is enabled.
    pub fn webrtc_certificate_pem(&self) -> Option<&str> {
        self.webrtc_pem.as_deref()
    }

    /// Dials `addr` (with `/p2p/<peer id>` the peer's identity is checked).
    pub fn dial(&mut self, addr: Multiaddr) -> Result<(), NetError> {
        let opts = match peer_of(&addr) {
            Some(peer) => {
                if self.book.is_banned(&peer, self.now()) {
                    return Err(NetError::Dial {
                        addr,
                        reason: format!("peer {peer} is banned"),
                    });
                }
                DialOpts::peer_id(peer)
                    .addresses(vec![addr.clone()])
                    .build()
            }
            None => DialOpts::unknown_peer_id().address(addr.clone()).build(),
        };
        self.swarm.dial(opts).map_err(|e| NetError::Dial {
            addr,
            reason: e.to_string(),
        })
    }

    /// Updates the status we announce (in Hello and Status).
    ///
    /// A new head is also pushed to every handshaken peer our gossip of finalized blocks does
    /// not reach (light clients subscribe to no topic), at most once per
    /// [`STATUS_PUSH_INTERVAL`](crate::protocol::limits::STATUS_PUSH_INTERVAL) each, so they
    /// follow the head without polling (Soma's push).
    pub fn set_status(&mut self, status: Status) {
        let advanced = status.head_height > self.status.head_height
            || (status.head_height == self.status.head_height
                && status.head_hash != self.status.head_hash);
        self.status = status;
        if !advanced {
            return;
        }
        let gossip = &self.swarm.behaviour().gossip;
        for (peer, session) in self.sessions.iter_mut() {
            if session.is_done() && !gossip.reaches(peer, Topic::Finalized) {
                session.status_push_due = true;
            }
        }
        self.send_due_statuses();
    }

    pub fn status(&self) -> &Status {
        &self.status
    }

    /// Peers that finished the handshake.
    pub fn handshaken_peers(&self) -> Vec<PeerId> {
        self.sessions
            .iter()
            .filter(|(_, s)| s.is_done())
            .map(|(p, _)| *p)
            .collect()
    }

    /// Whether any connection to `peer` is open (handshaken or not).
    pub fn is_connected(&self, peer: &PeerId) -> bool {
        self.swarm.is_connected(peer)
    }

    pub fn is_handshaken(&self, peer: &PeerId) -> bool {
        self.sessions.get(peer).is_some_and(Session::is_done)
    }

    /// Scores, bans and statuses of all peers.
    pub fn peer_book(&self) -> &PeerBook<PeerId> {
        &self.book
    }

    pub fn peer_score(&self, peer: &PeerId) -> i32 {
        self.book.score(peer)
    }

    /// Handshaken peers that serve the block at `height`, best score first.
    pub fn sync_peers(&self, height: u64) -> Vec<(PeerId, Status)> {
        self.book
            .peers_serving(height, self.now())
            .into_iter()
            .filter(|(p, _)| self.is_handshaken(p))
            .map(|(p, s)| (p, s.clone()))
            .collect()
    }

    /// Lowers a peer's score for misbehaviour the node found (e.g. an invalid block).
    pub fn report(&mut self, peer: PeerId, misbehaviour: Misbehaviour) {
        self.penalize(peer, misbehaviour);
    }

    /// Bans a peer for the configured ban duration and disconnects it.
    pub fn ban(&mut self, peer: PeerId) {
        let duration = self.book.config().ban_duration;
        let now = self.now();
        self.book.ban(&peer, now, duration);
        self.on_banned(peer, duration, Duration::ZERO);
    }

    /// Sends a data request to a handshaken peer; the outcome arrives as
    /// [`NetEvent::Response`] with the returned id.
    pub fn send_request(&mut self, peer: PeerId, request: Request) -> Result<RequestId, SendError> {
        if !self.is_handshaken(&peer) {
            return Err(SendError::NotHandshaken(peer));
        }
        let b = self.swarm.behaviour_mut();
        let protocol = request.protocol();
        let id = match request {
            Request::GetHeaders(r) => b.headers.send_request(&peer, Ok(r)),
            Request::GetBlocks(r) => b.blocks.send_request(&peer, Ok(r)),
            Request::GetProof(r) => b.proof.send_request(&peer, Ok(r)),
            Request::GetSnapshot(r) => b.snapshot.send_request(&peer, Ok(r)),
        };
        Ok(RequestId { protocol, id })
    }

    /// Answers an [`NetEvent::InboundRequest`]. A response over the protocol's byte cap is
    /// replaced by a `TooLarge` error (and reported as [`RespondError::TooLarge`]); send fewer
    /// items (see [`crate::protocol::fit_to_response`]).
    pub fn respond(&mut self, id: InboundId, response: Response) -> Result<(), RespondError> {
        if response.protocol() != id.protocol {
            return Err(RespondError::WrongProtocol {
                expected: id.protocol,
                got: response.protocol(),
            });
        }
        let (peer, channel) = self.pending.remove(&id).ok_or(RespondError::Unknown(id))?;
        self.book.inbound_finished(&peer);
        let max = id.protocol.max_response_bytes();
        let len = response.encoded_len();
        let (response, sent, result) = if len > max {
            let error = ErrorResponse::new(
                ErrorCode::TooLarge,
                format!("the response would be {len} bytes, over the cap {max}"),
            );
            let response = Response::error(id.protocol, error).expect("a data protocol");
            let sent = response.encoded_len();
            (response, sent, Err(RespondError::TooLarge { len, max }))
        } else {
            (response, len, Ok(()))
        };
        self.send_pending(channel, response)?;
        let now = self.now();
        self.book.charge_egress(&peer, sent, now);
        result
    }

    /// Publishes a gossip message to its topic.
    pub fn publish(&mut self, message: &GossipMessage) -> Result<(), PublishError> {
        use gossip::PublishFailure as F;
        let data = message.to_bytes();
        let len = data.len();
        if len > crate::protocol::limits::MAX_GOSSIP_BYTES {
            return Err(PublishError::TooLarge(len));
        }
        self.swarm
            .behaviour_mut()
            .gossip
            .publish(message.topic(), data)
            .map_err(|e| match e {
                F::NoPeers => PublishError::NoPeers,
                F::Duplicate => PublishError::Duplicate,
                F::TooLarge => PublishError::TooLarge(len),
                F::Other(reason) => PublishError::Other(reason),
            })
    }

    /// Time since the network started: the clock the peer book runs on.
    pub fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// The handshake info we send: our chain, head and node key.
    fn local_info(&self) -> HandshakeInfo {
        HandshakeInfo {
            protocol_version: WIRE_VERSION,
            chain_id: self.chain_id.clone(),
            genesis_hash: self.genesis_hash,
            head_height: self.status.head_height,
            head_hash: self.status.head_hash,
            node_key: self.key.public_key(),
        }
    }
}

/// Our signing key from the libp2p identity (which must be ed25519).
fn signing_key(keypair: &Keypair) -> Result<SigningKey, NetError> {
    let ed = keypair
        .clone()
        .try_into_ed25519()
        .map_err(|e| NetError::Key(e.to_string()))?;
    let secret = ed.secret();
    let seed: [u8; 32] = secret
        .as_ref()
        .try_into()
        .map_err(|_| NetError::Key("secret key is not 32 bytes".into()))?;
    let key = SigningKey::from_seed(&seed);
    if key.public_key().as_bytes() != &ed.public().to_bytes() {
        return Err(NetError::Key("public key does not match the secret".into()));
    }
    Ok(key)
}

/// The peer id an address ends in (`/p2p/<peer id>`).
pub fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        AddrProtocol::P2p(peer) => Some(peer),
        _ => None,
    })
}

/// Whether `key` is the ed25519 key behind `peer`.
fn key_matches(key: &PublicKey, peer: &PeerId) -> bool {
    libp2p::identity::ed25519::PublicKey::try_from_bytes(key.as_bytes())
        .map(|k| libp2p::identity::PublicKey::from(k).to_peer_id() == *peer)
        .unwrap_or(false)
}

/// The libp2p keypair of a node key (e.g. a validator or testkit key).
pub fn keypair_from_seed(seed: [u8; 32]) -> Keypair {
    let mut seed = seed;
    Keypair::ed25519_from_bytes(&mut seed).expect("any 32 bytes are an ed25519 secret")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    #[test]
    fn the_node_key_is_the_libp2p_identity() {
        let seed = testkit::key(4).seed();
        let keypair = keypair_from_seed(seed);
        let key = signing_key(&keypair).unwrap();
        assert_eq!(key.public_key(), testkit::key(4).public_key());
        let peer = keypair.public().to_peer_id();
        assert!(key_matches(&key.public_key(), &peer));
        assert!(!key_matches(&testkit::key(5).public_key(), &peer));
    }

    #[test]
    fn handshake_failures_carry_codes() {
        let e =
            HandshakeFailure::Refused(HandshakeError::IncompatibleVersion { ours: 1, theirs: 2 });
        assert_eq!(e.code(), ErrorCode::IncompatibleVersion);
        assert!(e.to_string().contains("we refused"));
        let e = HandshakeFailure::RefusedByPeer(ErrorResponse::new(ErrorCode::WrongChain, "x"));
        assert_eq!(e.code(), ErrorCode::WrongChain);
        assert_eq!(
            HandshakeFailure::NoAnswer("t".into()).code(),
            ErrorCode::Unsupported
        );
    }
}
