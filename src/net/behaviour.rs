//! The composed libp2p behaviour: ping, gossip (gossipsub and identify, native only) and one
//! request-response behaviour per protocol.
//!
//! One `request_response::Behaviour` per protocol rather than one with a multi-protocol codec:
//! a multi-protocol behaviour offers *all* its protocols when it opens a stream and lets
//! multistream-select pick the first the remote supports, so a `GetBlocks` could be negotiated
//! onto `/headway/1/headers` and the codec would have to refuse it. Separate behaviours keep
//! each request on its own protocol, give each its own typed codec, limits and timeout, and make
//! the request and response types exact at compile time.

use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::ping;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;

use super::codec::HeadwayCodec;
use super::gossip::Gossip;
use crate::protocol::limits::{
    HANDSHAKE_TIMEOUT, MAX_CONCURRENT_STREAMS_PER_CONNECTION, REQUEST_TIMEOUT,
};
use crate::protocol::{
    BlocksRpc, HeadersRpc, HelloRpc, ProofRpc, Rpc, SnapshotRpc, StatusRpc, Topic,
};

/// The request-response behaviour of protocol `P`.
pub type RpcBehaviour<P> = request_response::Behaviour<HeadwayCodec<P>>;

/// Everything a headway node runs over a connection.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub ping: ping::Behaviour,
    /// Gossipsub and identify natively; nothing in the browser (see [`super::gossip`]).
    pub gossip: Gossip,
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

impl Behaviour {
    /// Builds the behaviour for `keypair`, subscribed to the gossip `topics` (a full node:
    /// every topic; a light client: none).
    pub fn new(
        keypair: &Keypair,
        gossip_heartbeat: Duration,
        topics: &[Topic],
    ) -> Result<Behaviour, String> {
        Ok(Behaviour {
            ping: ping::Behaviour::default(),
            gossip: Gossip::new(keypair, gossip_heartbeat, topics)?,
            hello: rpc(HANDSHAKE_TIMEOUT),
            status: rpc(REQUEST_TIMEOUT),
            headers: rpc(REQUEST_TIMEOUT),
            blocks: rpc(REQUEST_TIMEOUT),
            proof: rpc(REQUEST_TIMEOUT),
            snapshot: rpc(REQUEST_TIMEOUT),
        })
    }
}
