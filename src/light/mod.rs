//! The light client, sans I/O: header-first sync from a checkpoint, fork detection, event
//! proofs. Shared by the browser build and a native command; it never touches a socket, a
//! store or a clock.
//!
//! [`LightClient`] is a state machine. The driver feeds it [`Input`]s (peers connecting,
//! statuses, responses, failures, gossiped heads, "stored", the time) and carries out the
//! [`Action`]s it returns (send a request, store headers, report progress, drop a peer):
//!
//! ```
//! use headway::light::{Action, Input, LightClient, LightOptions, LightStore, MemoryLightStore};
//! # use headway::testkit::ChainBuilder;
//! # let mut chain = ChainBuilder::new("doc-chain", 4);
//! # chain.headers(1);
//! # let checkpoint = chain.checkpoint().unwrap();
//! # let now_ms = chain.last_time_ms();
//!
//! let mut store = MemoryLightStore::new();
//! let mut client: LightClient<u32> =
//!     LightClient::from_store(&mut store, checkpoint, LightOptions::default(), now_ms).unwrap();
//!
//! // The driver's loop: every event becomes an input, then the actions are carried out.
//! client.feed(Input::Tick { now_ms });
//! while let Some(action) = client.next_action() {
//!     match action {
//!         Action::SendRequest { peer, request_id, request } => { /* send; feed the answer */ }
//!         Action::StoreHeaders { headers } => {
//!             store.append(&headers).unwrap();
//!             let up_to_height = headers.last().unwrap().height();
//!             client.feed(Input::Stored { up_to_height });
//!         }
//!         Action::DropPeer { peer, reason } => { /* disconnect */ }
//!         _ => { /* progress, new head, proofs, fork alarm, errors: tell the user */ }
//!     }
//! }
//! // ... and a timer: feed `Input::Tick` at `client.next_deadline_ms()`.
//! ```
//!
//! How it works:
//!
//! - **Trust.** It trusts the checkpoint, fetches the checkpoint's header
//!   (`GetHeaders { start: checkpoint.height, count: 1 }`) and accepts it only if it is the
//!   checkpointed block. A trusted header older than the trust period raises
//!   [`Action::CheckpointStale`] (and stops the client if the options say to refuse it).
//! - **Sync.** Peers' heads come from their statuses. Ranges of
//!   [`LightOptions::batch_size`] headers are requested from several peers at once (the
//!   least busy first, within per-peer and total limits), up to
//!   [`LightOptions::max_ahead_headers`] past the verified head; ranges that arrive early
//!   wait, and verification runs strictly in height order, a whole range per batch of
//!   signatures. Verified headers go out in [`Action::StoreHeaders`] batches; every new head in
//!   [`Action::NewHead`]. Caught up, it follows new statuses (full nodes push theirs at each
//!   new head to peers without gossip, which light clients are) and any header fed to it as
//!   [`Input::NewHead`].
//! - **Faults.** A peer serving a header that fails verification is dropped and avoided for a
//!   while; what it held is fetched from another peer. A failed or timed-out request backs its
//!   peer off exponentially; too many in a row drop it. With no peer left the client waits, and
//!   resumes when one connects.
//! - **Forks.** The last [`LightOptions::fork_window`] verified headers are kept with their
//!   commits. A different header at a held height that is signed by more than 2/3 of the same
//!   set — from gossip, from a status naming another head hash (the client then fetches
//!   that header), or below a validly signed range that does not link to ours (likewise) —
//!   raises [`Action::ForkDetected`] with both headers, and the client stops.
//! - **Proofs.** [`Input::VerifyEvent`] asks a peer for a proof against the latest verified
//!   header (`GetProof { at_height: Some(head) }`) and checks it with
//!   [`EventProof::verify`](crate::proof::EventProof::verify); a bad proof drops the peer and
//!   another peer is asked; the answer is [`Action::EventVerified`].
//! - **Storage.** The client keeps only recent headers; the driver keeps the rest
//!   ([`StoredHeader`]: the header without its commit; validator sets and commits only at
//!   hand-overs) and restarts with [`LightClient::resume`] from its stored head.

mod error;
mod forks;
mod machine;
mod messages;
mod options;
mod peers;
mod proofs;
mod ranges;
mod store;
pub(crate) mod stored;
mod sync;
mod window;

pub use error::{DropReason, LightError, RequestFailure, StopReason};
pub use machine::{LightClient, LightStats};
pub use messages::{Action, ForkEvidence, Input, Phase, Progress, QueryId, RequestId};
pub use options::LightOptions;
pub use store::{LightStore, LightStoreError, MemoryLightStore, StoreBytes};
pub use stored::{
    quorum_commit, CorruptEntry, RebuiltSet, StoredHeader, StoredValidators, ValidatorDelta,
    VerifiedHeader, MAX_DELTAS,
};
