//! What goes into the light client ([`Input`]) and what comes out ([`Action`]).

use std::fmt;

use serde::Serialize;

use super::error::{DropReason, LightError, RequestFailure};
use super::stored::VerifiedHeader;
use crate::chain::{BlockHash, EventId, TrustedHeader};
use crate::proof::VerifiedEvent;
use crate::protocol::{Request, Response, Status};

/// Names one request of the machine; the driver echoes it with the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Names one `verify_event` call; chosen by the caller, echoed in
/// [`Action::EventVerified`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct QueryId(pub u64);

/// Something that happened, fed to [`LightClient::feed`](super::LightClient::feed). `P` is the
/// driver's peer id type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input<P> {
    /// A handshaken peer and its first status.
    PeerConnected {
        peer: P,
        status: Status,
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
    /// The driver durably wrote every header up to `up_to_height`.
    Stored {
        up_to_height: u64,
    },
    /// The time, ms since the Unix epoch. The machine's clock only moves forward; every other
    /// input is handled at the last tick's time. Feed one at least at
    /// [`LightClient::next_deadline_ms`](super::LightClient::next_deadline_ms).
    Tick {
        now_ms: u64,
    },
    /// Asks for a proof that event `event_id` is in the chain.
    VerifyEvent {
        query_id: QueryId,
        event_id: EventId,
    },
    /// A finalized header a peer announced by gossip.
    NewHead {
        peer: P,
        header: Box<TrustedHeader>,
    },
}

/// Something the driver must do or report, taken with
/// [`LightClient::next_action`](super::LightClient::next_action), in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Action<P> {
    /// Send `request` to `peer`; feed back [`Input::Response`] or [`Input::RequestFailed`].
    SendRequest {
        peer: P,
        request_id: RequestId,
        request: Request,
    },
    /// Persist these verified headers (consecutive heights, in order), then feed
    /// [`Input::Stored`].
    StoreHeaders {
        headers: Vec<VerifiedHeader>,
    },
    Progress(Progress),
    /// The verified head moved to `height`.
    NewHead {
        height: u64,
        hash: BlockHash,
    },
    /// The answer to [`Input::VerifyEvent`] `query_id`.
    EventVerified {
        query_id: QueryId,
        result: Result<VerifiedEvent, LightError>,
    },
    /// Two different headers at one height, both signed by more than 2/3 of the same validator
    /// set. The machine has stopped: it never picks one of them.
    ForkDetected {
        evidence: Box<ForkEvidence<P>>,
    },
    /// The trusted header the client starts from (the checkpoint's block, or the stored head on
    /// resume) is older than the trust period.
    CheckpointStale {
        age_ms: u64,
        trust_period_ms: u64,
    },
    /// Disconnect `peer` (and do not redial it soon).
    DropPeer {
        peer: P,
        reason: DropReason,
    },
    /// Something the user should know that is not a peer's fault or a query's answer.
    Error {
        error: LightError,
    },
}

/// Both sides of a fork.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForkEvidence<P> {
    pub height: u64,
    /// The header the client had verified in sequence.
    pub ours: TrustedHeader,
    /// The other header, and the peer that served it.
    pub theirs: TrustedHeader,
    pub peer: P,
}

/// Where the client is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// Fetching the checkpoint's header.
    Bootstrapping,
    /// Behind the best head the peers claim.
    Syncing,
    /// At the head, following new heads: caught up once, and since then never more than one
    /// request batch behind the best head the peers claim.
    Following,
    /// No peer connected; resumes when one connects.
    WaitingForPeers,
    /// Stopped for good (fork, or a refused stale checkpoint).
    Stopped,
}

/// A progress report.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub phase: Phase,
    pub verified_height: u64,
    pub target_height: u64,
    pub peers: usize,
    pub headers_per_second: f64,
}
