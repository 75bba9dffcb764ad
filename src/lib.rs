//! headway: a light client and sync stack for a validator-finalized audit chain.
//!
//! The crate builds unchanged for native targets and `wasm32-unknown-unknown`. Its core is
//! sans-I/O: no sockets, no storage, no clock (time is an argument).
//!
//! - [`chain`]: the data model, its canonical encoding and hashing, checkpoints.
//! - [`crypto`]: ed25519 keys and the one signature rule, single and batch.
//! - [`light`]: the light client as a sans-I/O machine: sync from a checkpoint, forks, proofs.
//! - [`client`]: that machine driven over the network with a header store, on both targets.
//! - [`net`]: the libp2p network (native: TCP, WebSocket, WebRTC-direct; browser: WebSocket
//!   and WebRTC-direct dialing), handshake, peer scoring.
//! - [`platform`]: clock, timers and tasks, one implementation per target.
//! - [`proof`]: the event Merkle tree, the chain MMR and end-to-end event proofs.
//! - [`sync`]: the full node's block sync as a sans-I/O machine: parallel, fast or header-first.
//! - [`verify`]: header verification as small predicates, one header or a range.
//! - `wasm` (wasm32 only): the JavaScript API, class `LightClient` (see docs/JS_API.md).

pub mod chain;
pub mod client;
pub mod crypto;
pub mod light;
pub mod net;
#[cfg(not(target_arch = "wasm32"))]
pub mod node;
pub mod platform;
pub mod proof;
pub mod protocol;
#[cfg(not(target_arch = "wasm32"))]
pub mod store;
pub mod sync;
pub mod testkit;
pub mod verify;
#[cfg(target_arch = "wasm32")]
pub mod wasm;

// Unit tests also run in headless Chromium: each test module aliases `test` to
// `wasm_bindgen_test` on wasm32.
#[cfg(all(test, target_arch = "wasm32"))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// README's Rust example compiles as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
