//! The full node's block sync, sans I/O: parallel ranges over balanced peers, fast or
//! header-first, applied strictly in height order through a bounded download → verify → write
//! pipeline. It never touches a socket, a store or a clock, and builds for both targets.
//!
//! [`BlockSync`] is a state machine. The driver feeds it [`Input`]s (peers and their statuses,
//! responses, failures, gossiped blocks, the store's write notifications, the time) and carries
//! out the [`Action`]s it returns (send a request, write a batch, report a peer, persist a
//! progress record, raise a fork alarm):
//!
//! ```
//! use std::sync::Arc;
//! use headway::sync::{Action, BlockSync, Input, SyncOptions};
//! use headway::verify::TrustedState;
//! # use headway::testkit::ChainBuilder;
//! # let mut chain = ChainBuilder::new("doc-chain", 4);
//! # let genesis = chain.headers(1).remove(0).header;
//! # let next_validators = Arc::new(chain.current_set().clone());
//! # let now_ms = chain.last_time_ms();
//!
//! // Start from the store's head: its header and the set that signs the next block.
//! let head = TrustedState { hash: genesis.hash(), header: genesis, next_validators };
//! let mut sync: BlockSync<u32> = BlockSync::new(head, SyncOptions::default(), now_ms).unwrap();
//!
//! // The driver's loop: every event becomes an input, then the actions are carried out.
//! sync.feed(Input::Tick { now_ms });
//! while let Some(action) = sync.next_action() {
//!     match action {
//!         Action::SendRequest { peer, request_id, request } => { /* send; feed the answer */ }
//!         Action::Write { blocks } => {
//!             // store.append(&blocks) in one transaction; the store's notification becomes:
//!             let up_to = blocks.last().unwrap().height();
//!             sync.feed(Input::Written { up_to });
//!         }
//!         Action::CheckStore => { /* feed Input::StoreHeight { height: store head } */ }
//!         Action::ReportPeer { peer, fault } => { /* PeerBook report (ban), disconnect */ }
//!         Action::PersistProgress(record) => { /* put_meta("sync:progress", ...) */ }
//!         _ => { /* state, progress, give-ups, fork evidence: log, export, alarm */ }
//!     }
//! }
//! // ... and a timer: feed `Input::Tick` at `sync.next_deadline_ms()`.
//! ```
//!
//! How it works:
//!
//! - **States** (Moloch's, the node's part): [`SyncState::Determining`] until a peer's status
//!   gives a height to compare with, then [`SyncState::Syncing`] while behind the best head
//!   any peer claims and [`SyncState::Synced`] at it; [`SyncState::Stopped`] after a fork.
//! - **Peers** (Soma): a peer serves `h` iff `lowest ≤ h ≤ head` (from [`Status`]). A balancer
//!   picks among those: trusted first, then fewest recent failures, then the soonest expected
//!   answer from moving averages of its latency and throughput and its requests in flight.
//! - **Modes.** [`SyncMode::Fast`]: `GetBlocks` ranges, each verified as a range of headers
//!   (one signature batch) and each body against its header. [`SyncMode::HeaderFirst`]:
//!   `GetHeaders` ranges verified in order first, then `GetBlocks` for verified heights only,
//!   each body checked on arrival against its verified header's hash and events root.
//! - **Pipeline.** Ranges go to several peers at once; early ones wait; application is strictly
//!   in height order; verified blocks leave in [`Action::Write`] batches. Memory stays flat: all
//!   blocks held (in flight, waiting, unwritten) lie within [`SyncOptions::max_ahead_blocks`]
//!   of the written head, each request reserves the protocol's response cap, and no request is
//!   sent that could overrun [`SyncOptions::max_buffer_bytes`].
//! - **Event-driven writes** (ADR-023): the store's notification is [`Input::Written`]. If none
//!   comes for a while the machine asks for the store's height ([`Action::CheckStore`] →
//!   [`Input::StoreHeight`]), so a dropped notification costs a delay, never a stall. A restart
//!   starts from the store head at once and asks the connected peers: no waiting for traffic.
//! - **Faults.** Every request has a timeout; a failure backs the peer off exponentially and
//!   its range goes to another peer; too many in a row give the peer up. The request holding
//!   the next height is reassigned after [`SyncOptions::stall_timeout_ms`] when another peer
//!   can serve it. A peer sending invalid data (bad signature, wrong parent, a body that is not
//!   its header's, a malformed response) is reported ([`Action::ReportPeer`]) and avoided; its
//!   ranges go to others. With no peer left the machine waits and goes on when one connects.
//! - **Progress** (EVM syncer): [`Progress`] (start, current, target, rate, ETA) every
//!   [`SyncOptions::progress_interval_ms`], and a [`ProgressRecord`] to persist every 1,000
//!   written blocks and every 30 s while it moves. Resume needs only the store head.
//! - **Forks.** Finalized blocks are never rolled back and never chosen between: a gossiped
//!   block at a height in the recent window that differs from ours and is validly finalized
//!   by the same set raises [`Action::ForkDetected`] and stops the machine.
//!
//! **Warp sync** ([`WarpSync`], `warp.rs`) comes before this machine when a node starts from a
//! checkpoint instead of genesis: it fetches and checks the snapshot at the checkpoint; the
//! store starts from it, and [`BlockSync`] continues from its height.
//!
//! Not handled here (documented gaps): a conflict below the fork window or at the starting
//! head (the store must be compared, and the starting head has no commit here); a range whose
//! first block is validly signed but does not link to our head is treated as the peer's fault,
//! not probed for a fork (the light client probes); non-finalized tips (the node's consensus
//! owns them); gossip follow in header-first mode (gossip raises the
//! target and the block is fetched).
//!
//! [`Status`]: crate::protocol::Status

mod balancer;
mod error;
mod machine;
mod messages;
mod options;
mod pipeline;
pub mod predicates;
mod progress;
mod ranges;
pub mod warp;

pub use error::{Fault, GiveUp, RequestFailure, StopReason, SyncError};
pub use machine::BlockSync;
pub use messages::{
    Action, ForkEvidence, Input, Progress, ProgressRecord, RequestId, SyncMetrics, SyncState,
};
pub use options::{SyncMode, SyncOptions};
pub use warp::{WarpAction, WarpFault, WarpInput, WarpOptions, WarpSync};
