//! The composed libp2p behaviour: identify, ping, gossipsub and one request-response behaviour
//! per protocol.
//!
//! One `request_response::Behaviour` per protocol rather than one with a multi-protocol codec:
//! a multi-protocol behaviour offers *all* its protocols when it opens a stream and lets
//! multistream-select pick the first the remote supports, so a `GetBlocks` could be negotiated
//! onto `/headway/1/headers` and the codec would have to refuse it. Separate behaviours keep
//! each request on its own protocol, give each its own typed codec, limits and timeout, and make
//! the request and response types exact at compile time.

use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{gossipsub, identify, ping};

use super::codec::HeadwayCodec;
use crate::protocol::limits::{
    HANDSHAKE_TIMEOUT, MAX_CONCURRENT_STREAMS_PER_CONNECTION, MAX_GOSSIP_BYTES, REQUEST_TIMEOUT,
};
use crate::protocol::{
    BlocksRpc, HeadersRpc, HelloRpc, ProofRpc, Rpc, SnapshotRpc, StatusRpc, Topic,
};

/// The identify protocol version string.
pub const IDENTIFY_PROTOCOL_VERSION: &str = "/headway/1";

/// Room for gossipsub's own framing (signature, key, topic, sequence number) on top of the
/// payload.
const GOSSIP_FRAMING_BYTES: usize = 4 * 1024;

/// The request-response behaviour of protocol `P`.
pub type RpcBehaviour<P> = request_response::Behaviour<HeadwayCodec<P>>;

/// Everything a headway node runs over a connection.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub gossipsub: gossipsub::Behaviour,
    pub hello: RpcBehaviour<HelloRpc>,
    pub status: RpcBehaviour<StatusRpc>,
    pub headers: RpcBehaviour<HeadersRpc>,
    pub blocks: RpcBehaviour<BlocksRpc>,
    pub proof: RpcBehaviour<ProofRpc>,
    pub snapshot: RpcBehaviour<SnapshotRpc>,
}

fn rpc<P: Rpc>(timeout: Duration) -> RpcBehaviour<P> {
    request_response::Behaviour::new(
        [(HeadwayCodec::<P>::protocol(), ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(timeout)
            .with_max_concurrent_streams(MAX_CONCURRENT_STREAMS_PER_CONNECTION),
    )
}

/// The gossipsub message id. For events and finalized blocks it is the BLAKE3 hash of the
/// payload, so the same block published by every node that stored it is one message. For
/// proposals and votes it also covers the publisher's sequence number: consensus re-sends its
/// own messages when gossip may have lost them (`rebroadcast_ms`), and a content-only id would
/// make gossipsub drop every re-send as a duplicate.
pub fn message_id(message: &gossipsub::Message) -> gossipsub::MessageId {
    let consensus = [Topic::Proposals, Topic::Votes]
        .iter()
        .any(|t| gossip_topic(*t).hash() == message.topic);
    let mut h = blake3::Hasher::new();
    h.update(&message.data);
    if consensus {
        h.update(&message.sequence_number.unwrap_or(0).to_le_bytes());
    }
    gossipsub::MessageId::from(h.finalize().as_bytes().to_vec())
}

/// The gossipsub topic of `topic`.
pub fn gossip_topic(topic: Topic) -> gossipsub::IdentTopic {
    gossipsub::IdentTopic::new(topic.name())
}

impl Behaviour {
    /// Builds the behaviour for `keypair`, subscribed to `topics` (a full node: every topic;
    /// a light client: finalized blocks only, so votes and proposals never cross its link).
    /// Gossip messages are signed and checked strictly, and held until the network validates
    /// them.
    pub fn new(
        keypair: &Keypair,
        gossip_heartbeat: Duration,
        topics: &[Topic],
    ) -> Result<Behaviour, String> {
        let gossip_config = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Strict)
            .message_id_fn(message_id)
            .validate_messages()
            .max_transmit_size(MAX_GOSSIP_BYTES + GOSSIP_FRAMING_BYTES)
            .heartbeat_interval(gossip_heartbeat)
            .build()
            .map_err(|e| format!("gossipsub config: {e}"))?;
        let mut gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(keypair.clone()),
            gossip_config,
        )
        .map_err(|e| format!("gossipsub: {e}"))?;
        for &topic in topics {
            gossipsub
                .subscribe(&gossip_topic(topic))
                .map_err(|e| format!("subscribe to {topic}: {e}"))?;
        }
        Ok(Behaviour {
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL_VERSION.into(), keypair.public())
                    .with_agent_version(format!("headway/{}", env!("CARGO_PKG_VERSION"))),
            ),
            ping: ping::Behaviour::default(),
            gossipsub,
            hello: rpc(HANDSHAKE_TIMEOUT),
            status: rpc(REQUEST_TIMEOUT),
            headers: rpc(REQUEST_TIMEOUT),
            blocks: rpc(REQUEST_TIMEOUT),
            proof: rpc(REQUEST_TIMEOUT),
            snapshot: rpc(REQUEST_TIMEOUT),
        })
    }
}
