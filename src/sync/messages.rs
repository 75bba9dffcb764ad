//! What goes into the block sync ([`Input`]) and what comes out ([`Action`]), and what it
//! reports (state, progress, the persisted record, metrics).

use std::fmt;

use serde::Serialize;

use super::error::{Fault, GiveUp, RequestFailure};
use crate::chain::{BlockHash, FinalizedBlock, TrustedHeader};
use crate::protocol::{Request, Response, Status};

/// Names one request of the machine; the driver echoes it with the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Something that happened, fed to [`BlockSync::feed`](super::BlockSync::feed). `P` is the
/// driver's peer id type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input<P> {
    /// A handshaken peer and its first status. `trusted` peers (configured by the operator)
    /// are preferred when several can serve a range.
    PeerConnected {
        peer: P,
        status: Status,
        trusted: bool,
    },
    /// A later status of a connected peer.
    PeerStatus {
        peer: P,
        status: Status,
    },
    PeerDisconnected {
        peer: P,
    },
    /// The response to [`Action::SendRequest`] `request_id`.
    Response {
        peer: P,
        request_id: RequestId,
        response: Response,
    },
    /// The request `request_id` got no response.
    RequestFailed {
        peer: P,
        request_id: RequestId,
        reason: RequestFailure,
    },
    /// The store's notification: every block up to `up_to` is durably written.
    Written {
        up_to: u64,
    },
    /// The store's head height, read directly: after [`Action::CheckStore`] (a notification
    /// was dropped), or whenever the driver likes. Same effect as [`Input::Written`].
    StoreHeight {
        height: u64,
    },
    /// A finalized block a peer announced by gossip: raises the peer's known head, and one at
    /// a height we hold is compared with ours (a fork).
    Gossip {
        peer: P,
        block: Box<FinalizedBlock>,
    },
    /// The time, ms since the Unix epoch. The clock only moves forward; every other input is
    /// handled at the last tick's time. Feed one at least at
    /// [`BlockSync::next_deadline_ms`](super::BlockSync::next_deadline_ms).
    Tick {
        now_ms: u64,
    },
}

/// Something the driver must do or report, taken with
/// [`BlockSync::next_action`](super::BlockSync::next_action), in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Action<P> {
    /// Send `request` to `peer`; feed back [`Input::Response`] or [`Input::RequestFailed`].
    SendRequest {
        peer: P,
        request_id: RequestId,
        request: Request,
    },
    /// Append these verified blocks (consecutive heights, in order, right after the last
    /// batch) in one store transaction; the store's notification is [`Input::Written`].
    Write {
        blocks: Vec<FinalizedBlock>,
    },
    /// Writes were handed out and none was acknowledged for a while: read the store's head
    /// and feed [`Input::StoreHeight`].
    CheckStore,
    /// `peer` sent provably invalid data: report it (ban) and disconnect it. Its work was
    /// already given to other peers.
    ReportPeer {
        peer: P,
        fault: Fault,
    },
    /// `peer` failed too often in a row: disconnect it (no ban). Its work was given to others.
    GiveUpPeer {
        peer: P,
        reason: GiveUp,
    },
    /// The machine's state changed.
    StateChanged {
        from: SyncState,
        to: SyncState,
    },
    Progress(Progress),
    /// Persist this record (e.g. under the store's `sync:progress` meta key). Due every
    /// [`SyncOptions::persist_every_blocks`](super::SyncOptions) written blocks and every
    /// [`SyncOptions::persist_every_ms`](super::SyncOptions) while anything changed.
    PersistProgress(ProgressRecord),
    /// Two different blocks at one height, both finalized by more than 2/3 of the same
    /// validator set. The machine has stopped: it never picks one of them.
    ForkDetected {
        evidence: Box<ForkEvidence<P>>,
    },
}

/// Both sides of a conflict between two finalized chains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForkEvidence<P> {
    pub height: u64,
    /// The header we verified in sequence (and applied or are applying).
    pub ours: TrustedHeader,
    /// The other one, and the peer that sent it.
    pub theirs: TrustedHeader,
    pub peer: P,
}

/// Where the machine is (Moloch's diagram, the node's part of it: connecting and
/// handshaking are the network's, and serving happens in every state).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SyncState {
    /// No peer to compare heights with: waiting for one.
    Determining,
    /// Behind the best head a peer claims: downloading.
    Syncing,
    /// At the best head any peer claims.
    Synced,
    /// Stopped for good (a fork between finalized chains).
    Stopped,
}

impl SyncState {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Determining => "determining",
            SyncState::Syncing => "syncing",
            SyncState::Synced => "synced",
            SyncState::Stopped => "stopped",
        }
    }
}

/// A progress report (the EVM syncer's tracked values).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub state: SyncState,
    /// Where this run started (the store head given at construction).
    pub start: u64,
    /// The highest block verified and handed to the store.
    pub current: u64,
    /// The highest block durably written.
    pub written: u64,
    /// The best head any connected peer claims (at least `current`).
    pub target: u64,
    /// Blocks per second over the last few seconds.
    pub blocks_per_second: f64,
    /// Estimated time to reach `target` at that rate; `None` while the rate is 0.
    pub eta_ms: Option<u64>,
    /// `(current − start) / (target − start)`, 0 to 100.
    pub percent: f64,
    pub peers: usize,
}

/// The record the driver persists: where sync stands, durably. Resume does not need it (the
/// store head is the resume point, written atomically with the blocks); it keeps the run's
/// start, rate and counters across restarts for operators.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressRecord {
    pub start_height: u64,
    /// The highest durably written block and its hash.
    pub current_height: u64,
    pub current_hash: BlockHash,
    pub target_height: u64,
    pub started_at_ms: u64,
    pub at_ms: u64,
    /// Blocks written in this run.
    pub blocks_synced: u64,
    /// Always 0: finalized blocks are never reorganised (a conflict stops sync instead).
    pub reorgs: u64,
    pub blocks_per_second: f64,
    pub eta_ms: Option<u64>,
}

/// Counters for the driver to export (Prometheus names in the node's metrics module).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncMetrics {
    pub requests_sent: u64,
    pub request_failures: u64,
    pub timeouts: u64,
    /// Requests reassigned because they stalled the pipeline.
    pub stalls: u64,
    /// Headers received in `GetHeaders` responses (header-first).
    pub downloaded_headers: u64,
    /// Blocks received in `GetBlocks` responses.
    pub downloaded_bodies: u64,
    pub downloaded_bytes: u64,
    /// Blocks whose header and body passed every check.
    pub validated_blocks: u64,
    /// Headers or blocks rejected (each one reported a peer).
    pub validation_errors: u64,
    /// Blocks acknowledged as written.
    pub written_blocks: u64,
    /// Always 0: see [`ProgressRecord::reorgs`].
    pub reorgs: u64,
    pub peers_reported: u64,
    pub peers_given_up: u64,
}
