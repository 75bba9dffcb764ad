//! A bare network client for native node tests: a `net::Network` that is not a node, to send
//! requests or publish gossip to one. Included with `#[path]` by the tests that need it.

use std::time::Duration;

use headway::chain::Genesis;
use headway::net::{keypair_from_seed, NetEvent, Network, NetworkConfig};
use headway::node::service::NodeHandle;
use headway::protocol::Status;
use headway::testkit;
use tokio::time::Instant;

/// Starts a client (node key `testkit::key(seed)`) announcing the genesis block as its head,
/// dials `node` and waits (at most `limit`) for the handshake.
pub async fn connect_client(
    seed: u64,
    genesis: &Genesis,
    node: &NodeHandle,
    limit: Duration,
) -> Network {
    let block = genesis.block();
    let genesis_hash = block.block.header.hash();
    let status = Status {
        head_height: 0,
        head_hash: genesis_hash,
        mmr_root: block.block.header.mmr_root,
        lowest_height: 0,
        syncing: false,
    };
    let mut config = NetworkConfig::new(
        keypair_from_seed(testkit::key(seed).seed()),
        genesis.chain_id.clone(),
        genesis_hash,
        status,
    );
    config.bootnodes = vec![node.listen[0].clone()];
    let (mut client, _) = Network::new(config).await.expect("client starts");
    let deadline = Instant::now() + limit;
    loop {
        let event = tokio::time::timeout_at(deadline, client.next_event())
            .await
            .expect("handshake with the node in time");
        match event {
            NetEvent::HandshakeDone { peer, .. } if peer == node.peer_id => return client,
            NetEvent::HandshakeFailed { peer, reason } => panic!("handshake with {peer}: {reason}"),
            _ => {}
        }
    }
}
