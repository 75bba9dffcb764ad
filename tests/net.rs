//! The native network end to end, on 127.0.0.1 with ephemeral ports: handshakes over TCP,
//! WebSocket and WebRTC-direct, refusals, request routing, limits and gossip.
#![cfg(not(target_arch = "wasm32"))]

use std::time::Duration;

use futures::future::select_all;
use futures::prelude::*;
use headway::chain::{AuditEvent, ChainId, FinalizedBlock, Hash, Outcome, TrustedHeader};
use headway::net::codec::{read_frame, Frame, HeadwayCodec};
use headway::net::{
    keypair_from_seed, HandshakeFailure, NetEvent, Network, NetworkConfig, RequestFailure,
    RespondError,
};
use headway::protocol::limits::{ByteBudget, RateLimit, MAX_RESPONSE_BYTES};
use headway::protocol::{
    fit_to_response, sign_ack, BlocksResponse, ErrorCode, GetBlocks, GetHeaders, GossipMessage,
    HandshakeInfo, HeadersResponse, Hello, HelloResponse, HelloRpc, Protocol, Request, Response,
    Status, WIRE_VERSION,
};
use headway::testkit::{self, ChainBuilder};
use libp2p::multiaddr::Protocol as AddrProtocol;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm};

const GENESIS: Hash = Hash([0x9e; 32]);
const STEP: Duration = Duration::from_secs(10);

fn status(head: u64) -> Status {
    Status {
        head_height: head,
        head_hash: Hash([head as u8; 32]),
        mmr_root: Hash([0x33; 32]),
        lowest_height: 0,
        syncing: false,
    }
}

/// A configuration for node `n` (its key is `testkit::key(1000 + n)`).
fn config(n: u64, chain: &str, listen: &[&str]) -> NetworkConfig {
    let keypair = keypair_from_seed(testkit::key(1000 + n).seed());
    let mut c = NetworkConfig::new(keypair, ChainId::new(chain).unwrap(), GENESIS, status(n));
    c.listen = listen.iter().map(|a| a.parse().unwrap()).collect();
    c.gossip_heartbeat = Duration::from_millis(100);
    c
}

async fn start(config: NetworkConfig) -> Network {
    Network::new(config).await.expect("network starts").0
}

/// `net`'s first listen address whose text contains `kind`, with `/p2p/<peer id>`.
fn addr_of(net: &Network, kind: &str) -> Multiaddr {
    let addr = net
        .listen_addrs()
        .iter()
        .find(|a| a.to_string().contains(kind))
        .unwrap_or_else(|| panic!("no {kind} address in {:?}", net.listen_addrs()))
        .clone();
    addr.with(AddrProtocol::P2p(net.local_peer_id()))
}

/// The next event of any of `nets`, with its index.
async fn next_any(nets: &mut [&mut Network]) -> (usize, NetEvent) {
    let futures: Vec<_> = nets.iter_mut().map(|n| Box::pin(n.next_event())).collect();
    let (event, index, _) = select_all(futures).await;
    (index, event)
}

/// Drives `nets` until `done` is true, panicking after `limit`.
async fn drive_until(
    nets: &mut [&mut Network],
    limit: Duration,
    mut done: impl FnMut(&[&mut Network]) -> bool,
) {
    let deadline = tokio::time::Instant::now() + limit;
    while !done(nets) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in time"
        );
        let _ = tokio::time::timeout(Duration::from_millis(50), next_any(nets)).await;
    }
}

/// Connects `b` to `a`'s `kind` address and drives both until each saw the other's handshake.
async fn handshake(a: &mut Network, b: &mut Network, kind: &str) -> (HandshakeInfo, HandshakeInfo) {
    b.dial(addr_of(a, kind)).unwrap();
    let (pa, pb) = (a.local_peer_id(), b.local_peer_id());
    let (mut seen_by_a, mut seen_by_b) = (None, None);
    let mut nets = [a, b];
    tokio::time::timeout(STEP, async {
        while seen_by_a.is_none() || seen_by_b.is_none() {
            match next_any(&mut nets).await {
                (0, NetEvent::HandshakeDone { peer, info }) if peer == pb => seen_by_a = Some(info),
                (1, NetEvent::HandshakeDone { peer, info }) if peer == pa => seen_by_b = Some(info),
                (i, NetEvent::HandshakeFailed { reason, .. }) => panic!("node {i}: {reason}"),
                _ => {}
            }
        }
    })
    .await
    .expect("handshake in time");
    (seen_by_a.unwrap(), seen_by_b.unwrap())
}

#[tokio::test]
async fn two_networks_handshake_over_tcp_and_exchange_status() {
    let mut a = start(config(1, "devnet", &["/ip4/127.0.0.1/tcp/0"])).await;
    let mut b = start(config(2, "devnet", &["/ip4/127.0.0.1/tcp/0"])).await;
    let (info_b, info_a) = handshake(&mut a, &mut b, "/tcp/").await;
    assert_eq!(info_b.node_key, testkit::key(1002).public_key());
    assert_eq!(info_a.node_key, testkit::key(1001).public_key());
    assert_eq!((info_a.head_height, info_b.head_height), (1, 2));
    assert_eq!(info_a.protocol_version, WIRE_VERSION);
    assert!(a.is_handshaken(&b.local_peer_id()) && b.is_handshaken(&a.local_peer_id()));

    // Each side sends its status right after the handshake.
    let (pa, pb) = (a.local_peer_id(), b.local_peer_id());
    let mut nets = [&mut a, &mut b];
    drive_until(&mut nets, STEP, |n| {
        n[0].peer_book().status(&pb).is_some() && n[1].peer_book().status(&pa).is_some()
    })
    .await;
    assert_eq!(a.peer_book().status(&pb).unwrap().status, status(2));
    assert_eq!(a.sync_peers(2), vec![(pb, status(2))]);
    assert!(a.sync_peers(3).is_empty());
}

#[tokio::test]
async fn two_networks_handshake_over_websocket() {
    let mut a = start(config(3, "devnet", &["/ip4/127.0.0.1/tcp/0/ws"])).await;
    let mut b = start(config(4, "devnet", &[])).await;
    assert!(a.listen_addrs()[0].to_string().ends_with("/ws"));
    let (info_b, _) = handshake(&mut a, &mut b, "/ws").await;
    assert_eq!(info_b.chain_id.as_str(), "devnet");
}

#[tokio::test]
async fn a_mismatched_chain_is_refused_with_the_reason_on_both_sides() {
    let mut a = start(config(5, "devnet", &["/ip4/127.0.0.1/tcp/0"])).await;
    let mut b = start(config(6, "othernet", &[])).await;
    b.dial(addr_of(&a, "/tcp/")).unwrap();
    let (pa, pb) = (a.local_peer_id(), b.local_peer_id());
    let mut reasons: [Option<HandshakeFailure>; 2] = [None, None];
    let mut nets = [&mut a, &mut b];
    tokio::time::timeout(STEP, async {
        while reasons.iter().any(Option::is_none) {
            match next_any(&mut nets).await {
                (i, NetEvent::HandshakeFailed { peer, reason }) => {
                    assert_eq!(peer, [pb, pa][i]);
                    reasons[i].get_or_insert(reason);
                }
                (i, NetEvent::HandshakeDone { .. }) => panic!("node {i} accepted another chain"),
                _ => {}
            }
        }
    })
    .await
    .expect("both sides refuse");
    for reason in reasons.iter().flatten() {
        assert_eq!(reason.code(), ErrorCode::WrongChain, "{reason}");
        let text = reason.to_string();
        assert!(
            text.contains("devnet") && text.contains("othernet"),
            "{text}"
        );
    }
    // Both drop the connection, and neither counts the other as a peer.
    drive_until(&mut nets, STEP, |n| {
        !n[0].is_connected(&pb) && !n[1].is_connected(&pa)
    })
    .await;
    assert!(a.handshaken_peers().is_empty() && b.handshaken_peers().is_empty());
    // Another chain is not misbehaviour.
    assert_eq!(a.peer_score(&pb), 0);
}

/// Answers header requests from `headers` until aborted.
fn spawn_header_server(
    mut net: Network,
    headers: Vec<TrustedHeader>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let NetEvent::InboundRequest {
                id,
                request: Request::GetHeaders(GetHeaders { start, count }),
                ..
            } = net.next_event().await
            {
                let from = (start as usize).min(headers.len());
                let to = (from + count as usize).min(headers.len());
                let slice = &headers[from..to];
                let fit = fit_to_response(slice, MAX_RESPONSE_BYTES);
                let response = Response::Headers(HeadersResponse::Headers(slice[..fit].to_vec()));
                net.respond(id, response).unwrap();
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_headers_round_trip_with_a_responder_task() {
    let headers = ChainBuilder::new("devnet", 4).headers(20);
    let mut server = start(config(7, "devnet", &["/ip4/127.0.0.1/tcp/0"])).await;
    let mut client = start(config(8, "devnet", &[])).await;
    handshake(&mut server, &mut client, "/tcp/").await;
    let ps = server.local_peer_id();
    let task = spawn_header_server(server, headers.clone());

    let want = client
        .send_request(
            ps,
            Request::GetHeaders(GetHeaders {
                start: 5,
                count: 10,
            }),
        )
        .unwrap();
    let past_end = client
        .send_request(
            ps,
            Request::GetHeaders(GetHeaders {
                start: 15,
                count: 10,
            }),
        )
        .unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(STEP, async {
        while got.len() < 2 {
            if let NetEvent::Response { peer, id, result } = client.next_event().await {
                assert_eq!(peer, ps);
                got.push((id, result.unwrap()));
            }
        }
    })
    .await
    .expect("responses in time");
    for (id, response) in got {
        let Response::Headers(HeadersResponse::Headers(h)) = response else {
            panic!("unexpected {response:?}");
        };
        if id == want {
            assert_eq!(h, headers[5..15]);
        } else {
            assert_eq!(id, past_end);
            assert_eq!(h, headers[15..20]);
        }
    }
    assert_eq!(client.peer_score(&ps), 2);
    task.abort();
}

#[tokio::test]
async fn a_response_over_the_cap_is_replaced_by_too_large() {
    // One block of 300 events with 16 KiB of metadata each: over 4 MiB encoded.
    let source = testkit::key(77);
    let events = (0..300)
        .map(|i| {
            AuditEvent {
                kind: "file.write".into(),
                actor: "bulk".into(),
                resource: format!("blob/{i}"),
                outcome: Outcome::Success,
                metadata: vec![i as u8; 16 * 1024],
                time_ms: 1,
                source: source.public_key(),
            }
            .sign(&source)
        })
        .collect();
    let mut chain = ChainBuilder::new("devnet", 4);
    let (block, trusted) = chain.next_block(events);
    let big = FinalizedBlock {
        block,
        commit: trusted.commit,
        next_validators: trusted.next_validators,
    };

    let mut a = start(config(9, "devnet", &["/ip4/127.0.0.1/tcp/0"])).await;
    let mut b = start(config(10, "devnet", &[])).await;
    handshake(&mut a, &mut b, "/tcp/").await;
    let pa = a.local_peer_id();
    let id = b
        .send_request(pa, Request::GetBlocks(GetBlocks { start: 0, count: 1 }))
        .unwrap();
    let mut nets = [&mut a, &mut b];
    let mut big = Some(big);
    let response = tokio::time::timeout(STEP, async {
        loop {
            match next_any(&mut nets).await {
                (0, NetEvent::InboundRequest { id, .. }) => {
                    let r = Response::Blocks(BlocksResponse::Blocks(vec![big.take().unwrap()]));
                    let err = nets[0].respond(id, r).unwrap_err();
                    assert!(matches!(err, RespondError::TooLarge { .. }), "{err}");
                }
                (
                    1,
                    NetEvent::Response {
                        id: got, result, ..
                    },
                ) => {
                    assert_eq!(got, id);
                    return result.unwrap();
                }
                _ => {}
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(response.as_error().unwrap().code, ErrorCode::TooLarge);
}

#[tokio::test]
async fn a_peer_over_its_rate_limit_gets_rate_limited() {
    let mut ca = config(11, "devnet", &["/ip4/127.0.0.1/tcp/0"]);
    ca.peer_book.rate_limits[Protocol::Headers.index()] = RateLimit {
        burst: 2,
        refill_every: Duration::from_secs(60),
    };
    let mut a = start(ca).await;
    let mut b = start(config(12, "devnet", &[])).await;
    handshake(&mut a, &mut b, "/tcp/").await;
    let (pa, pb) = (a.local_peer_id(), b.local_peer_id());
    for _ in 0..5 {
        b.send_request(pa, Request::GetHeaders(GetHeaders { start: 0, count: 1 }))
            .unwrap();
    }
    let (mut ok, mut limited) = (0, 0);
    let mut nets = [&mut a, &mut b];
    tokio::time::timeout(STEP, async {
        while ok + limited < 5 {
            match next_any(&mut nets).await {
                (0, NetEvent::InboundRequest { id, .. }) => {
                    let r = Response::Headers(HeadersResponse::Headers(Vec::new()));
                    nets[0].respond(id, r).unwrap();
                }
                (1, NetEvent::Response { result, .. }) => match result.unwrap() {
                    Response::Headers(HeadersResponse::Headers(_)) => ok += 1,
                    Response::Headers(HeadersResponse::Error(e)) => {
                        assert_eq!(e.code, ErrorCode::RateLimited, "{e}");
                        limited += 1;
                    }
                    other => panic!("unexpected {other:?}"),
                },
                _ => {}
            }
        }
    })
    .await
    .expect("all answered");
    assert_eq!((ok, limited), (2, 3));
    assert_eq!(a.peer_score(&pb), -30);
}

#[tokio::test]
async fn a_peer_over_its_byte_budget_is_told_to_wait_without_losing_score() {
    let mut ca = config(30, "devnet", &["/ip4/127.0.0.1/tcp/0"]);
    // Less than one header at once, refilled at a byte a second: the first answer spends it.
    ca.peer_book.egress = ByteBudget {
        burst_bytes: 100,
        bytes_per_sec: 1,
    };
    let mut a = start(ca).await;
    let mut b = start(config(31, "devnet", &[])).await;
    handshake(&mut a, &mut b, "/tcp/").await;
    let (pa, pb) = (a.local_peer_id(), b.local_peer_id());
    let header = ChainBuilder::new("devnet", 4).next_block(Vec::new()).1;

    let mut answers = Vec::new();
    let mut nets = [&mut a, &mut b];
    for _ in 0..2 {
        nets[1]
            .send_request(pa, Request::GetHeaders(GetHeaders { start: 1, count: 1 }))
            .unwrap();
        let answer = tokio::time::timeout(STEP, async {
            loop {
                match next_any(&mut nets).await {
                    (0, NetEvent::InboundRequest { id, .. }) => {
                        let r = Response::Headers(HeadersResponse::Headers(vec![header.clone()]));
                        nets[0].respond(id, r).unwrap();
                    }
                    (1, NetEvent::Response { result, .. }) => return result.unwrap(),
                    _ => {}
                }
            }
        })
        .await
        .expect("answered");
        answers.push(answer);
    }
    assert!(
        matches!(&answers[0], Response::Headers(HeadersResponse::Headers(h)) if h.len() == 1),
        "{:?}",
        answers[0]
    );
    let refusal = answers[1].as_error().expect("refused");
    assert_eq!(refusal.code, ErrorCode::RateLimited);
    assert!(refusal.message.contains("byte budget"), "{refusal}");
    assert_eq!(a.peer_score(&pb), 0);
}

#[tokio::test]
async fn a_finalized_block_gossiped_by_one_node_reaches_two_others() {
    // A line: a — b — c, so c only gets the block through b.
    let mut a = start(config(13, "devnet", &["/ip4/127.0.0.1/tcp/0"])).await;
    let mut b = start(config(14, "devnet", &["/ip4/127.0.0.1/tcp/0"])).await;
    let mut c = start(config(15, "devnet", &[])).await;
    handshake(&mut a, &mut b, "/tcp/").await;
    handshake(&mut b, &mut c, "/tcp/").await;
    let (pa, pb) = (a.local_peer_id(), b.local_peer_id());

    let mut chain = ChainBuilder::new("devnet", 4);
    let (block, trusted) = chain.next_block(vec![testkit::event(&testkit::key(5), 1, 2)]);
    let message = GossipMessage::Finalized(FinalizedBlock {
        block,
        commit: trusted.commit,
        next_validators: trusted.next_validators,
    });

    let mut nets = [&mut a, &mut b, &mut c];
    // Let the meshes form (a few 100 ms heartbeats), then publish.
    let settle = tokio::time::Instant::now() + Duration::from_millis(500);
    while tokio::time::Instant::now() < settle {
        let _ = tokio::time::timeout(Duration::from_millis(50), next_any(&mut nets)).await;
    }
    nets[0].publish(&message).expect("b is subscribed");
    let mut received = [false; 3];
    tokio::time::timeout(STEP, async {
        while !(received[1] && received[2]) {
            if let (
                i,
                NetEvent::Gossip {
                    message: got,
                    source,
                    propagated_by,
                },
            ) = next_any(&mut nets).await
            {
                assert_eq!(got, message);
                assert_eq!(source, Some(pa));
                assert_eq!(propagated_by, if i == 1 { pa } else { pb });
                received[i] = true;
            }
        }
    })
    .await
    .expect("gossip arrives");
    assert!(
        !received[0],
        "the publisher does not receive its own message"
    );
}

/// The statuses `from` sent to `net` among `events` (index 1 of the pair is the receiver).
fn statuses_from(events: &[(usize, NetEvent)], receiver: usize, from: PeerId) -> Vec<u64> {
    events
        .iter()
        .filter_map(|(i, e)| match e {
            NetEvent::PeerStatus { peer, status } if *i == receiver && *peer == from => {
                Some(status.head_height)
            }
            _ => None,
        })
        .collect()
}

/// Drives `nets` for `span`, returning every event with the index of its network.
async fn collect_for(nets: &mut [&mut Network], span: Duration) -> Vec<(usize, NetEvent)> {
    let mut events = Vec::new();
    let end = tokio::time::Instant::now() + span;
    while tokio::time::Instant::now() < end {
        if let Ok(event) = tokio::time::timeout_at(end, next_any(nets)).await {
            events.push(event);
        }
    }
    events
}

#[tokio::test]
async fn a_new_head_is_pushed_to_peers_without_gossip_at_most_once_a_second() {
    // a is a full node; b a light client (no gossip topic); c a full node (every topic).
    let mut a = start(config(16, "devnet", &["/ip4/127.0.0.1/tcp/0"])).await;
    let mut light = config(17, "devnet", &[]);
    light.topics = Vec::new();
    let mut b = start(light).await;
    let mut c = start(config(18, "devnet", &[])).await;
    handshake(&mut a, &mut b, "/tcp/").await;
    handshake(&mut a, &mut c, "/tcp/").await;
    let pa = a.local_peer_id();
    let mut nets = [&mut a, &mut b, &mut c];
    // The statuses sent after the handshakes, and gossip subscriptions, arrive meanwhile.
    collect_for(&mut nets, Duration::from_millis(1200)).await;

    nets[0].set_status(status(40));
    let first = collect_for(&mut nets, Duration::from_millis(500)).await;
    assert_eq!(
        statuses_from(&first, 1, pa),
        vec![40],
        "pushed to the light peer at once"
    );
    assert!(
        statuses_from(&first, 2, pa).is_empty(),
        "gossip reaches the full node: no push"
    );

    // Two more heads within the second: neither goes out before it ends, then only the last.
    nets[0].set_status(status(41));
    nets[0].set_status(status(42));
    let early = collect_for(&mut nets, Duration::from_millis(300)).await;
    assert!(
        statuses_from(&early, 1, pa).is_empty(),
        "not twice in a second"
    );
    let later = collect_for(&mut nets, Duration::from_millis(1500)).await;
    assert_eq!(statuses_from(&later, 1, pa), vec![42]);

    // The same head again is no news.
    nets[0].set_status(status(42));
    let same = collect_for(&mut nets, Duration::from_millis(1300)).await;
    assert!(statuses_from(&same, 1, pa).is_empty());
    assert_eq!(nets[0].peer_score(&nets[1].local_peer_id()), 0);
    assert_eq!(
        nets[1].peer_score(&pa),
        0,
        "the pushes are within b's rate limit"
    );
}

#[tokio::test]
async fn webrtc_direct_between_two_native_nodes() {
    let wrtc = "/ip4/127.0.0.1/udp/0/webrtc-direct";
    let mut a = start(config(16, "devnet", &[wrtc])).await;
    // The dialer needs a WebRTC listener of its own (libp2p-webrtc dials from its UDP mux).
    let mut b = start(config(17, "devnet", &[wrtc])).await;
    assert!(addr_of(&a, "/certhash/")
        .to_string()
        .contains("/webrtc-direct/certhash/"));
    let (info_b, info_a) = handshake(&mut a, &mut b, "/certhash/").await;
    assert_eq!(info_b.head_height, 17);
    assert_eq!(info_a.head_height, 16);
}

#[tokio::test]
async fn the_persisted_webrtc_certificate_keeps_the_certhash() {
    let wrtc = "/ip4/127.0.0.1/udp/0/webrtc-direct";
    let certhash = |net: &Network| {
        let addr = addr_of(net, "/certhash/");
        addr.iter()
            .find_map(|p| match p {
                AddrProtocol::Certhash(h) => Some(h),
                _ => None,
            })
            .unwrap()
    };
    let (first, pem) = Network::new(config(18, "devnet", &[wrtc])).await.unwrap();
    let pem = pem.expect("a new certificate was generated");
    assert_eq!(first.webrtc_certificate_pem(), Some(pem.as_str()));
    let hash = certhash(&first);
    drop(first);

    let mut again = config(18, "devnet", &[wrtc]);
    again.webrtc_certificate_pem = Some(pem.clone());
    let (second, generated) = Network::new(again).await.unwrap();
    assert!(generated.is_none());
    assert_eq!(certhash(&second), hash);

    // Without the PEM a restart gets a new certhash; without WebRTC, no certificate at all.
    let (third, _) = Network::new(config(18, "devnet", &[wrtc])).await.unwrap();
    assert_ne!(certhash(&third), hash);
    let (tcp_only, generated) = Network::new(config(18, "devnet", &["/ip4/127.0.0.1/tcp/0"]))
        .await
        .unwrap();
    assert!(generated.is_none() && tcp_only.webrtc_certificate_pem().is_none());
}

// ---- A hand-driven peer that speaks the protocols byte by byte ------------------------------

/// Reads and writes whole frames as raw bytes (the test supplies the length prefix).
#[derive(Clone, Default)]
struct RawCodec;

impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> std::io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        match read_frame(io, 1 << 20).await? {
            Frame::Bytes(b) => Ok(b),
            Frame::TooLarge { .. } => Err(std::io::ErrorKind::InvalidData.into()),
        }
    }

    async fn read_response<T>(&mut self, p: &StreamProtocol, io: &mut T) -> std::io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        self.read_request(p, io).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        raw: Vec<u8>,
    ) -> std::io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&raw).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        raw: Vec<u8>,
    ) -> std::io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&raw).await
    }
}

#[derive(NetworkBehaviour)]
struct RawBehaviour {
    hello: request_response::Behaviour<HeadwayCodec<HelloRpc>>,
    headers: request_response::Behaviour<RawCodec>,
}

/// A peer built from the protocol functions and a raw codec, to send what a `Network` never
/// would.
struct RawPeer {
    swarm: Swarm<RawBehaviour>,
    key: headway::crypto::ed25519::SigningKey,
    /// Send our Hello as soon as connected (else call [`RawPeer::send_hello`]).
    hello_on_connect: bool,
    /// Answer the network's Hello (else hold the channel, never answering).
    answer_hello: bool,
    /// Sign acks with this key and name it as the node key (a key the connection does not have).
    ack_key: Option<headway::crypto::ed25519::SigningKey>,
    held: Vec<request_response::ResponseChannel<HelloResponse>>,
    hellos_answered: usize,
}

impl RawPeer {
    fn new(n: u64) -> RawPeer {
        let key = testkit::key(1000 + n);
        let cfg = request_response::Config::default();
        let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair_from_seed(key.seed()))
            .with_tokio()
            .with_tcp(
                Default::default(),
                libp2p::noise::Config::new,
                libp2p::yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| RawBehaviour {
                hello: request_response::Behaviour::new(
                    [(HeadwayCodec::<HelloRpc>::protocol(), ProtocolSupport::Full)],
                    cfg.clone(),
                ),
                headers: request_response::Behaviour::new(
                    [(
                        StreamProtocol::new(Protocol::Headers.name()),
                        ProtocolSupport::Full,
                    )],
                    cfg,
                ),
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        RawPeer {
            swarm,
            key,
            hello_on_connect: true,
            answer_hello: true,
            ack_key: None,
            held: Vec::new(),
            hellos_answered: 0,
        }
    }

    fn peer_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    fn info(&self) -> HandshakeInfo {
        HandshakeInfo {
            protocol_version: WIRE_VERSION,
            chain_id: ChainId::new("devnet").unwrap(),
            genesis_hash: GENESIS,
            head_height: 0,
            head_hash: Hash::ZERO,
            node_key: self.key.public_key(),
        }
    }

    fn send_hello(&mut self, peer: PeerId) {
        let hello = Hello {
            info: self.info(),
            nonce: [1; 32],
        };
        self.swarm
            .behaviour_mut()
            .hello
            .send_request(&peer, Ok(hello));
    }

    /// Handles the raw peer's side of the handshake; returns other events.
    fn on_event(&mut self, event: SwarmEvent<RawBehaviourEvent>) -> Option<RawBehaviourEvent> {
        match event {
            SwarmEvent::ConnectionEstablished { peer_id, .. } if self.hello_on_connect => {
                self.send_hello(peer_id);
                None
            }
            SwarmEvent::Behaviour(RawBehaviourEvent::Hello(request_response::Event::Message {
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            })) => {
                if !self.answer_hello {
                    self.held.push(channel);
                    return None;
                }
                let hello = request.unwrap();
                let ack = match &self.ack_key {
                    Some(other) => {
                        let info = HandshakeInfo {
                            node_key: other.public_key(),
                            ..self.info()
                        };
                        sign_ack(other, &hello, info)
                    }
                    None => sign_ack(&self.key, &hello, self.info()),
                };
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .hello
                    .send_response(channel, HelloResponse::Ack(ack));
                self.hellos_answered += 1;
                None
            }
            SwarmEvent::Behaviour(e @ RawBehaviourEvent::Headers(_)) => Some(e),
            _ => None,
        }
    }
}

/// Connects a raw peer to `net` and drives both until `net` has handshaken it.
async fn raw_handshake(net: &mut Network, raw: &mut RawPeer) {
    raw.swarm.dial(addr_of(net, "/tcp/")).unwrap();
    let peer = raw.peer_id();
    tokio::time::timeout(STEP, async {
        loop {
            tokio::select! {
                e = net.next_event() => match e {
                    NetEvent::HandshakeDone { peer: p, .. } if p == peer => return,
                    NetEvent::HandshakeFailed { reason, .. } => panic!("{reason}"),
                    _ => {}
                },
                e = raw.swarm.select_next_some() => { raw.on_event(e); }
            }
        }
    })
    .await
    .expect("raw handshake in time");
}

fn frame(len: u32, body: &[u8]) -> Vec<u8> {
    let mut v = len.to_le_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

#[tokio::test]
async fn a_malformed_request_gets_an_error_response_and_lowers_the_score() {
    let mut net = start(config(20, "devnet", &["/ip4/127.0.0.1/tcp/0"])).await;
    let mut raw = RawPeer::new(21);
    raw_handshake(&mut net, &mut raw).await;
    let (pn, pr) = (net.local_peer_id(), raw.peer_id());
    assert_eq!(net.peer_score(&pr), 0);

    // Three bytes that are no GetHeaders, then a frame over the request cap.
    raw.swarm
        .behaviour_mut()
        .headers
        .send_request(&pn, frame(3, &[1, 2, 3]));
    raw.swarm
        .behaviour_mut()
        .headers
        .send_request(&pn, frame(5000, &[0; 5000]));
    let mut codes = Vec::new();
    tokio::time::timeout(STEP, async {
        while codes.len() < 2 {
            tokio::select! {
                e = net.next_event() => {
                    assert!(!matches!(e, NetEvent::InboundRequest { .. }), "reached the node: {e:?}");
                }
                e = raw.swarm.select_next_some() => {
                    if let Some(RawBehaviourEvent::Headers(request_response::Event::Message {
                        message: request_response::Message::Response { response, .. },
                        ..
                    })) = raw.on_event(e)
                    {
                        let decoded = <HeadersResponse as headway::chain::Decode>::decode(&response).unwrap();
                        let HeadersResponse::Error(e) = decoded else { panic!("{decoded:?}") };
                        codes.push(e.code);
                    }
                }
            }
        }
    })
    .await
    .expect("error responses in time");
    codes.sort_by_key(|c| c.tag());
    assert_eq!(codes, vec![ErrorCode::Malformed, ErrorCode::TooLarge]);
    assert_eq!(net.peer_score(&pr), -50);
}

#[tokio::test]
async fn an_oversized_response_is_refused_by_the_codec() {
    let mut net = start(config(22, "devnet", &["/ip4/127.0.0.1/tcp/0"])).await;
    let mut raw = RawPeer::new(23);
    raw_handshake(&mut net, &mut raw).await;
    let pr = raw.peer_id();
    let id = net
        .send_request(pr, Request::GetHeaders(GetHeaders { start: 0, count: 1 }))
        .unwrap();
    // The raw peer announces one byte more than the cap and sends a little of it.
    let oversized = frame(MAX_RESPONSE_BYTES as u32 + 1, &[0; 1024]);
    let failure = tokio::time::timeout(STEP, async {
        loop {
            tokio::select! {
                e = net.next_event() => if let NetEvent::Response { id: got, result, .. } = e {
                    assert_eq!(got, id);
                    return result.unwrap_err();
                },
                e = raw.swarm.select_next_some() => {
                    if let Some(RawBehaviourEvent::Headers(request_response::Event::Message {
                        message: request_response::Message::Request { channel, .. },
                        ..
                    })) = raw.on_event(e)
                    {
                        let _ = raw.swarm.behaviour_mut().headers.send_response(channel, oversized.clone());
                    }
                }
            }
        }
    })
    .await
    .expect("a failure in time");
    assert!(
        matches!(&failure, RequestFailure::InvalidResponse(m) if m.contains("exceeds the cap")),
        "{failure:?}"
    );
    assert_eq!(net.peer_score(&pr), -25);
}

/// Drives `net` and `raw` for `d`, handing `net`'s events to `on_net`.
async fn drive_pair(
    net: &mut Network,
    raw: &mut RawPeer,
    d: Duration,
    mut on_net: impl FnMut(&mut Network, NetEvent),
) -> Vec<RawBehaviourEvent> {
    let mut raw_events = Vec::new();
    let deadline = tokio::time::Instant::now() + d;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return raw_events,
            e = net.next_event() => on_net(net, e),
            e = raw.swarm.select_next_some() => raw_events.extend(raw.on_event(e)),
        }
    }
}

#[tokio::test]
async fn requests_sent_during_the_handshake_are_held_until_it_completes() {
    let mut net = start(config(24, "devnet", &["/ip4/127.0.0.1/tcp/0"])).await;
    let mut raw = RawPeer::new(25);
    raw.hello_on_connect = false;
    raw.swarm.dial(addr_of(&net, "/tcp/")).unwrap();
    let (pn, pr) = (net.local_peer_id(), raw.peer_id());
    // The raw peer answers the network's Hello, then sends a request before its own Hello.
    let deadline = tokio::time::Instant::now() + STEP;
    while raw.hellos_answered == 0 {
        assert!(tokio::time::Instant::now() < deadline);
        drive_pair(&mut net, &mut raw, Duration::from_millis(20), |_, _| {}).await;
    }
    let request = GetHeaders { start: 0, count: 1 };
    let bytes = headway::chain::Encode::encode(&request);
    raw.swarm
        .behaviour_mut()
        .headers
        .send_request(&pn, frame(bytes.len() as u32, &bytes));
    drive_pair(&mut net, &mut raw, Duration::from_millis(300), |_, e| {
        assert!(
            !matches!(
                e,
                NetEvent::InboundRequest { .. } | NetEvent::HandshakeDone { .. }
            ),
            "{e:?}"
        );
    })
    .await;
    // The Hello completes the handshake; the held request follows it to the node.
    raw.send_hello(pn);
    let mut order = Vec::new();
    let raw_events = drive_pair(
        &mut net,
        &mut raw,
        Duration::from_millis(500),
        |net, e| match e {
            NetEvent::HandshakeDone { peer, .. } if peer == pr => order.push("done"),
            NetEvent::InboundRequest { peer, id, request } => {
                assert_eq!(peer, pr);
                assert_eq!(
                    request,
                    Request::GetHeaders(GetHeaders { start: 0, count: 1 })
                );
                order.push("request");
                net.respond(id, Response::Headers(HeadersResponse::Headers(Vec::new())))
                    .unwrap();
            }
            _ => {}
        },
    )
    .await;
    assert_eq!(order, ["done", "request"]);
    assert!(raw_events.iter().any(|e| matches!(
        e,
        RawBehaviourEvent::Headers(request_response::Event::Message {
            message: request_response::Message::Response { .. },
            ..
        })
    )));
}

#[tokio::test]
async fn a_peer_that_never_answers_the_hello_is_dropped_after_the_timeout() {
    let mut c = config(26, "devnet", &["/ip4/127.0.0.1/tcp/0"]);
    c.handshake_timeout = Duration::from_millis(400);
    let mut net = start(c).await;
    let mut raw = RawPeer::new(27);
    raw.hello_on_connect = false;
    raw.answer_hello = false;
    raw.swarm.dial(addr_of(&net, "/tcp/")).unwrap();
    let pr = raw.peer_id();
    let mut failure = None;
    let started = tokio::time::Instant::now();
    drive_pair(&mut net, &mut raw, Duration::from_millis(1500), |_, e| {
        if let NetEvent::HandshakeFailed { peer, reason } = e {
            assert_eq!(peer, pr);
            failure.get_or_insert((reason, started.elapsed()));
        }
    })
    .await;
    let (reason, after) = failure.expect("the handshake fails");
    assert!(matches!(reason, HandshakeFailure::NoAnswer(_)), "{reason}");
    assert!(after >= Duration::from_millis(400), "{after:?}");
    assert!(!net.is_connected(&pr));
    assert_eq!(net.peer_score(&pr), -20);
}

#[tokio::test]
async fn an_ack_signed_by_another_key_is_refused() {
    let mut net = start(config(28, "devnet", &["/ip4/127.0.0.1/tcp/0"])).await;
    let mut raw = RawPeer::new(29);
    raw.ack_key = Some(testkit::key(4242));
    raw.swarm.dial(addr_of(&net, "/tcp/")).unwrap();
    let mut failure = None;
    // The refused peer is dropped after a short grace (so an error response can reach it).
    drive_pair(&mut net, &mut raw, Duration::from_millis(1200), |_, e| {
        assert!(!matches!(e, NetEvent::HandshakeDone { .. }));
        if let NetEvent::HandshakeFailed { reason, .. } = e {
            failure.get_or_insert(reason);
        }
    })
    .await;
    let reason = failure.expect("the handshake fails");
    assert_eq!(
        reason,
        HandshakeFailure::KeyMismatch {
            claimed: testkit::key(4242).public_key()
        }
    );
    assert!(!net.is_connected(&raw.peer_id()));
}

#[tokio::test]
async fn a_peer_that_keeps_sending_garbage_is_banned_and_kept_out() {
    let mut net = start(config(30, "devnet", &["/ip4/127.0.0.1/tcp/0"])).await;
    let mut raw = RawPeer::new(31);
    raw_handshake(&mut net, &mut raw).await;
    let (pn, pr) = (net.local_peer_id(), raw.peer_id());
    for _ in 0..4 {
        raw.swarm
            .behaviour_mut()
            .headers
            .send_request(&pn, frame(1, &[0]));
    }
    let mut banned = None;
    let mut disconnected = false;
    drive_pair(
        &mut net,
        &mut raw,
        Duration::from_millis(1200),
        |_, e| match e {
            NetEvent::PeerBanned { peer, duration } => banned = Some((peer, duration)),
            NetEvent::PeerDisconnected { peer } if peer == pr => disconnected = true,
            _ => {}
        },
    )
    .await;
    assert_eq!(banned.map(|(p, _)| p), Some(pr));
    assert!(disconnected && !net.is_connected(&pr));
    assert!(net.peer_book().is_banned(&pr, net.now()));
    // Coming back does not help: the connection is dropped before any handshake.
    raw.swarm.dial(addr_of(&net, "/tcp/")).unwrap();
    drive_pair(&mut net, &mut raw, Duration::from_millis(500), |_, e| {
        assert!(!matches!(e, NetEvent::HandshakeDone { .. }), "{e:?}");
    })
    .await;
    assert!(!net.is_connected(&pr));
}

// ---- WebSocket over TLS (`/tls/ws`, a.k.a. wss) ----------------------------------------------

use headway::net::{NetError, TlsConfig, TlsError, TransportError};
use headway::node::config::{ConfigError, NodeConfig};

const WSS: &str = "/ip4/127.0.0.1/tcp/0/tls/ws";

/// A self-signed certificate for `localhost` and 127.0.0.1.
fn self_signed() -> TlsConfig {
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let rcgen::CertifiedKey { cert, key_pair } = rcgen::generate_simple_self_signed(names).unwrap();
    TlsConfig {
        certificate_chain_pem: cert.pem(),
        private_key_pem: key_pair.serialize_pem(),
    }
}

/// A wss listener on 127.0.0.1 (plus plain `/ws`) serving `tls`.
fn wss_config(n: u64, tls: &TlsConfig) -> NetworkConfig {
    let mut c = config(n, "devnet", &[WSS, "/ip4/127.0.0.1/tcp/0/ws"]);
    c.websocket_tls = Some(tls.clone());
    c
}

/// `net`'s listen address `pick` chooses, with `/p2p/<peer id>`.
fn addr_where(net: &Network, pick: impl Fn(&str) -> bool) -> Multiaddr {
    let addr = net
        .listen_addrs()
        .iter()
        .find(|a| pick(&a.to_string()))
        .unwrap_or_else(|| panic!("no such address in {:?}", net.listen_addrs()))
        .clone();
    addr.with(AddrProtocol::P2p(net.local_peer_id()))
}

/// `b` dials `addr` of `a`; drives both until each saw the other's handshake.
async fn handshake_at(a: &mut Network, b: &mut Network, addr: Multiaddr) -> HandshakeInfo {
    b.dial(addr).unwrap();
    let (pa, pb) = (a.local_peer_id(), b.local_peer_id());
    let (mut seen_by_a, mut seen_by_b) = (None, false);
    let mut nets = [a, b];
    tokio::time::timeout(STEP, async {
        while seen_by_a.is_none() || !seen_by_b {
            match next_any(&mut nets).await {
                (0, NetEvent::HandshakeDone { peer, info }) if peer == pb => seen_by_a = Some(info),
                (1, NetEvent::HandshakeDone { peer, .. }) if peer == pa => seen_by_b = true,
                (i, NetEvent::HandshakeFailed { reason, .. }) => panic!("node {i}: {reason}"),
                (1, NetEvent::DialFailed { error, .. }) => panic!("dial failed: {error}"),
                _ => {}
            }
        }
    })
    .await
    .expect("handshake in time");
    seen_by_a.unwrap()
}

#[tokio::test]
async fn a_client_trusting_the_certificate_handshakes_over_wss_and_plain_ws_still_works() {
    let tls = self_signed();
    let mut a = start(wss_config(40, &tls)).await;
    let wss = addr_where(&a, |s| s.ends_with("/tls/ws"));
    let ws = addr_where(&a, |s| s.ends_with("/ws") && !s.contains("/tls/"));

    let mut trusting = config(41, "devnet", &[]);
    trusting.websocket_trusted_roots = vec![tls.certificate_chain_pem.clone()];
    let mut b = start(trusting).await;
    let info_b = handshake_at(&mut a, &mut b, wss).await;
    assert_eq!(info_b.node_key, testkit::key(1041).public_key());

    let mut c = start(config(42, "devnet", &[])).await;
    let info_c = handshake_at(&mut a, &mut c, ws).await;
    assert_eq!(info_c.node_key, testkit::key(1042).public_key());
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_certificate_cannot_connect_over_wss() {
    let mut a = start(wss_config(43, &self_signed())).await;
    let wss = addr_where(&a, |s| s.ends_with("/tls/ws"));
    let pa = a.local_peer_id();
    // Trusting only the webpki roots, or another self-signed certificate than `a`'s.
    let mut other = config(44, "devnet", &[]);
    other.websocket_trusted_roots = vec![self_signed().certificate_chain_pem];
    for client in [config(49, "devnet", &[]), other] {
        let mut b = start(client).await;
        b.dial(wss.clone()).unwrap();
        let mut nets = [&mut a, &mut b];
        let error = tokio::time::timeout(STEP, async {
            loop {
                match next_any(&mut nets).await {
                    (_, NetEvent::HandshakeDone { .. }) => panic!("handshake over untrusted wss"),
                    (1, NetEvent::DialFailed { error, .. }) => return error,
                    _ => {}
                }
            }
        })
        .await
        .expect("the dial fails in time");
        assert!(error.contains("invalid peer certificate"), "{error}");
        assert!(!b.is_connected(&pa));
    }
}

#[tokio::test]
async fn a_wss_listen_address_without_a_certificate_is_refused() {
    let err = Network::new(config(45, "devnet", &[WSS]))
        .await
        .err()
        .unwrap();
    match err {
        NetError::Listen { addr, reason } => {
            assert_eq!(addr.to_string(), WSS);
            assert!(reason.contains("certificate"), "{reason}");
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn a_bad_certificate_or_key_is_a_typed_error() {
    let good = self_signed();
    let other = self_signed();
    // A valid base64 CERTIFICATE block that is not DER.
    let not_der = "-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQ==\n-----END CERTIFICATE-----\n";
    type Expected = fn(&TlsError) -> bool;
    let cases: Vec<(TlsConfig, Expected)> = vec![
        (
            TlsConfig {
                certificate_chain_pem: "garbage".into(),
                ..good.clone()
            },
            |e| matches!(e, TlsError::NoCertificate),
        ),
        (
            TlsConfig {
                certificate_chain_pem:
                    "-----BEGIN CERTIFICATE-----\n%%%\n-----END CERTIFICATE-----\n".into(),
                ..good.clone()
            },
            |e| matches!(e, TlsError::Certificate(_)),
        ),
        (
            TlsConfig {
                certificate_chain_pem: not_der.into(),
                ..good.clone()
            },
            |e| matches!(e, TlsError::Certificate(_)),
        ),
        (
            TlsConfig {
                private_key_pem: "garbage".into(),
                ..good.clone()
            },
            |e| matches!(e, TlsError::NoPrivateKey),
        ),
        (
            TlsConfig {
                // The key PEM holds a certificate, not a key.
                private_key_pem: good.certificate_chain_pem.clone(),
                ..good.clone()
            },
            |e| matches!(e, TlsError::NoPrivateKey),
        ),
        (
            TlsConfig {
                private_key_pem:
                    "-----BEGIN PRIVATE KEY-----\nAAECAwQFBgcICQ==\n-----END PRIVATE KEY-----\n"
                        .into(),
                ..good.clone()
            },
            |e| matches!(e, TlsError::PrivateKey(_)),
        ),
        (
            TlsConfig {
                private_key_pem: other.private_key_pem.clone(),
                ..good.clone()
            },
            |e| matches!(e, TlsError::KeyMismatch),
        ),
    ];
    assert_eq!(good.validate(), Ok(()));
    for (n, (tls, expected)) in cases.into_iter().enumerate() {
        let err = tls.validate().unwrap_err();
        assert!(expected(&err), "case {n}: {err:?}");
        // Network::new reports the same, before it listens anywhere.
        match Network::new(wss_config(46, &tls)).await.err().unwrap() {
            NetError::Transport(TransportError::Tls(e)) => assert_eq!(e, err, "case {n}"),
            other => panic!("case {n}: {other}"),
        }
    }
    // A trusted root that is not a certificate.
    let mut c = config(47, "devnet", &[]);
    c.websocket_trusted_roots = vec!["garbage".into()];
    assert!(matches!(
        Network::new(c).await.err().unwrap(),
        NetError::Transport(TransportError::Tls(TlsError::TrustedRoot(_)))
    ));
}

#[test]
fn node_config_reads_and_checks_the_tls_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let good = self_signed();
    std::fs::write(path("cert.pem"), &good.certificate_chain_pem).unwrap();
    std::fs::write(path("key.pem"), &good.private_key_pem).unwrap();
    std::fs::write(path("other-key.pem"), self_signed().private_key_pem).unwrap();
    std::fs::write(path("garbage.pem"), "not a pem file\n").unwrap();
    let with = |cert: &str, key: &str| {
        let mut c = NodeConfig::parse("data_dir = \"d\"\ngenesis = \"g\"\n").unwrap();
        c.tls_certificate = Some(path(cert));
        c.tls_private_key = Some(path(key));
        c.websocket_tls()
    };

    assert_eq!(with("cert.pem", "key.pem").unwrap(), Some(good));
    assert!(matches!(
        with("missing.pem", "key.pem"),
        Err(ConfigError::TlsRead { path: p, .. }) if p == path("missing.pem")
    ));
    assert!(matches!(
        with("cert.pem", "missing.pem"),
        Err(ConfigError::TlsRead { path: p, .. }) if p == path("missing.pem")
    ));
    assert!(matches!(
        with("garbage.pem", "key.pem"),
        Err(ConfigError::Tls {
            error: TlsError::NoCertificate,
            ..
        })
    ));
    assert!(matches!(
        with("cert.pem", "garbage.pem"),
        Err(ConfigError::Tls {
            error: TlsError::NoPrivateKey,
            ..
        })
    ));
    let err = with("cert.pem", "other-key.pem").unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::Tls {
                error: TlsError::KeyMismatch,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("other-key.pem"), "{err}");
}

#[tokio::test]
async fn a_node_started_from_a_config_with_tls_files_listens_on_wss() {
    use headway::chain::Genesis;
    use headway::node::service;

    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let tls = self_signed();
    std::fs::write(path("cert.pem"), &tls.certificate_chain_pem).unwrap();
    std::fs::write(path("key.pem"), &tls.private_key_pem).unwrap();
    let genesis = Genesis::new(
        ChainId::new("wss-node").unwrap(),
        headway::node::now_ms(),
        testkit::validator_set(&[testkit::key(1048)]),
        Default::default(),
    )
    .unwrap();
    std::fs::write(path("genesis.json"), genesis.to_json()).unwrap();
    let mut config = NodeConfig::parse("data_dir = \"d\"\ngenesis = \"g\"\n").unwrap();
    config.data_dir = path("data");
    config.genesis = path("genesis.json");
    config.listen = vec![WSS.into()];
    config.tls_certificate = Some(path("cert.pem"));
    config.tls_private_key = Some(path("key.pem"));

    let node = service::start_node(config.clone()).await.unwrap();
    assert!(node.addr_with("/tls/ws").is_some(), "{:?}", node.listen);
    node.stop().await.unwrap();

    // A key that does not match stops the node from starting, with the typed error.
    std::fs::write(path("key.pem"), self_signed().private_key_pem).unwrap();
    let err = service::start_node(config).await.err().unwrap();
    assert!(
        matches!(
            err.downcast_ref::<ConfigError>(),
            Some(ConfigError::Tls {
                error: TlsError::KeyMismatch,
                ..
            })
        ),
        "{err:#}"
    );
}
