//! What differs between the native build and the browser build, in one place: the clock,
//! timers and task spawning. Everything else in the crate is written once against these.
//!
//! Native: tokio. Browser: `Date.now()`, `setTimeout` (gloo-timers) and the JS microtask
//! queue (wasm-bindgen-futures). `std::time::SystemTime::now()` and `std::thread` panic on
//! wasm32-unknown-unknown, so nothing outside this module may use them in shared code.

#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(target_arch = "wasm32")]
mod wasm;

#[cfg(not(target_arch = "wasm32"))]
pub use native::*;
#[cfg(target_arch = "wasm32")]
pub use wasm::*;

/// A monotonic instant that works on both targets.
pub use web_time::Instant;
