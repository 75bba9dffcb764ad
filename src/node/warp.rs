//! The node's side of warp sync: drives the sans-I/O [`WarpSync`] machine over the real
//! network until the checkpoint's snapshot is checked, then installs it in the (empty) store.
//!
//! It runs once, at start, before consensus and block sync exist: a node given a warp
//! checkpoint and an empty data directory starts its chain at the checkpoint instead of at
//! genesis. Meanwhile it answers requests from what it has (nothing yet: empty answers) and
//! ignores gossip; block sync then continues from the snapshot's height as after any restart.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use libp2p::PeerId;

use super::metrics::Metrics;
use super::serve::serve;
use super::sync_driver::{known_statuses, report_and_ban, request_failure, status_after_handshake};
use crate::chain::{Checkpoint, Genesis, Hash};
use crate::net::peers::Misbehaviour;
use crate::net::{self, NetEvent, Network};
use crate::protocol::{Request, Response, Status};
use crate::store::ChainStore;
use crate::sync::{RequestFailure, RequestId, WarpAction, WarpInput, WarpOptions, WarpSync};

/// How often the driver logs that it is still waiting for a peer that serves the snapshot.
const WAITING_LOG_EVERY: Duration = Duration::from_secs(10);

/// Checks, before any networking, that a warp checkpoint belongs to this chain: its chain id
/// and the set it names for the next block must be the genesis schedule's.
pub fn check_checkpoint(checkpoint: &Checkpoint, genesis: &Genesis) -> Result<()> {
    if checkpoint.chain_id != genesis.chain_id {
        bail!(
            "the warp checkpoint is for chain {}, the genesis for {}",
            checkpoint.chain_id,
            genesis.chain_id
        );
    }
    let scheduled = genesis.validators_at(checkpoint.height.saturating_add(1));
    if checkpoint.validators != *scheduled {
        bail!(
            "the warp checkpoint names validator set {} to sign block {}, the genesis schedules {}",
            checkpoint.validators.hash(),
            checkpoint.height.saturating_add(1),
            scheduled.hash()
        );
    }
    Ok(())
}

/// What a node announces while it has no block yet: the chain's start, nothing to serve beyond
/// the genesis height.
pub fn empty_status(genesis_hash: Hash) -> Status {
    Status {
        head_height: 0,
        head_hash: genesis_hash,
        mmr_root: Hash::ZERO,
        lowest_height: 0,
        syncing: true,
    }
}

/// Fetches, checks and installs the snapshot at `checkpoint`; returns once the store holds it.
/// Waits as long as it takes for a peer that serves the snapshot: the caller drops the future
/// to stop it.
pub async fn warp_sync(
    network: &mut Network,
    store: &dyn ChainStore,
    genesis: &Genesis,
    checkpoint: Checkpoint,
    metrics: &Metrics,
) -> Result<()> {
    let height = checkpoint.height;
    tracing::info!(height, hash = %checkpoint.block_hash, "warp sync: fetching the snapshot at the checkpoint");
    let started = Instant::now();
    let mut machine: WarpSync<PeerId> =
        WarpSync::new(checkpoint, WarpOptions::default(), super::now_ms());
    let mut requests: HashMap<net::RequestId, RequestId> = HashMap::new();
    for (peer, status) in known_statuses(network) {
        machine.feed(WarpInput::PeerStatus { peer, status });
    }
    let mut last_waiting_log = Instant::now();
    loop {
        while let Some(action) = machine.next_action() {
            match action {
                WarpAction::SendRequest {
                    peer,
                    request_id,
                    request,
                } => match network.send_request(peer, Request::GetSnapshot(request)) {
                    Ok(id) => {
                        requests.insert(id, request_id);
                    }
                    Err(e) => machine.feed(WarpInput::RequestFailed {
                        peer,
                        request_id,
                        reason: RequestFailure::Transport(e.to_string()),
                    }),
                },
                WarpAction::ReportPeer { peer, fault } => {
                    tracing::warn!(%peer, %fault, "warp sync: peer served a bad snapshot: banned");
                    metrics.sync_validation_errors.inc();
                    metrics.sync_peers_reported.inc();
                    report_and_ban(network, peer, Misbehaviour::Invalid);
                }
                WarpAction::Done(snapshot) => {
                    store
                        .install_snapshot(&snapshot)
                        .context("installing the warp-sync snapshot")?;
                    tracing::info!(
                        height = snapshot.height(),
                        hash = %snapshot.header.header.hash(),
                        peer = ?machine.served_by(),
                        chunks = machine.chunks_received,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "warp sync: snapshot checked against the checkpoint and installed"
                    );
                    return Ok(());
                }
            }
        }
        if last_waiting_log.elapsed() >= WAITING_LOG_EVERY && machine.fetching_from().is_none() {
            last_waiting_log = Instant::now();
            tracing::info!(
                height,
                peers = network.handshaken_peers().len(),
                "warp sync: waiting for a peer that serves the checkpoint's height"
            );
        }
        let sleep = machine
            .next_deadline_ms()
            .map_or(WAITING_LOG_EVERY, |at| {
                Duration::from_millis(at.saturating_sub(super::now_ms()))
            })
            .min(WAITING_LOG_EVERY);
        tokio::select! {
            event = network.next_event() => {
                if let Some(input) = on_event(event, network, store, genesis, &mut requests) {
                    machine.feed(input);
                }
            }
            _ = tokio::time::sleep(sleep) => {}
        }
        machine.feed(WarpInput::Tick {
            now_ms: super::now_ms(),
        });
    }
}

/// Turns a network event into the machine's input, answering what the node must answer.
fn on_event(
    event: NetEvent,
    network: &mut Network,
    store: &dyn ChainStore,
    genesis: &Genesis,
    requests: &mut HashMap<net::RequestId, RequestId>,
) -> Option<WarpInput<PeerId>> {
    match event {
        NetEvent::InboundRequest { peer, id, request } => {
            // Nothing stored yet: the answers are empty, never invented.
            let response = serve(store, genesis, &request);
            if let Err(e) = network.respond(id, response) {
                tracing::debug!(%peer, error = %e, "response not sent");
            }
            None
        }
        NetEvent::HandshakeDone { peer, info } => Some(WarpInput::PeerStatus {
            peer,
            status: status_after_handshake(network, &peer, &info),
        }),
        NetEvent::PeerStatus { peer, status } => Some(WarpInput::PeerStatus { peer, status }),
        NetEvent::PeerDisconnected { peer } | NetEvent::PeerBanned { peer, .. } => {
            Some(WarpInput::PeerDisconnected { peer })
        }
        NetEvent::Response { peer, id, result } => {
            let request_id = requests.remove(&id)?;
            Some(match result {
                Ok(Response::Snapshot(response)) => WarpInput::Response {
                    peer,
                    request_id,
                    response,
                },
                Ok(other) => WarpInput::RequestFailed {
                    peer,
                    request_id,
                    reason: RequestFailure::Transport(format!(
                        "a {} response to a snapshot request",
                        other.protocol()
                    )),
                },
                Err(failure) => WarpInput::RequestFailed {
                    peer,
                    request_id,
                    reason: request_failure(failure),
                },
            })
        }
        NetEvent::HandshakeFailed { peer, reason } => {
            tracing::warn!(%peer, %reason, "handshake failed");
            None
        }
        NetEvent::Gossip { .. } | NetEvent::DialFailed { .. } | NetEvent::ListenAddr { .. } => None,
    }
}
