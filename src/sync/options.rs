//! The block sync's settings. Defaults suit a full node on a desktop-class machine; every
//! memory bound is derived from the protocol's own caps so it holds whatever peers send.

use crate::protocol::limits::{
    MAX_BLOCKS_PER_REQUEST, MAX_HEADERS_PER_REQUEST, MAX_RESPONSE_BYTES, REQUEST_TIMEOUT,
};
use crate::verify::DEFAULT_MAX_CLOCK_DRIFT_MS;

use super::error::SyncError;

/// How blocks are fetched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SyncMode {
    /// `GetBlocks` only: each block's header, commit and body arrive together and are verified
    /// in one pass. Fewest round trips.
    Fast,
    /// `GetHeaders` first, verified in height order; then `GetBlocks` for the bodies, each
    /// checked against its verified header. A peer cannot make us download bodies of a chain
    /// the validators did not sign, and bodies can come from peers we trust less.
    HeaderFirst,
}

/// Settings of a [`BlockSync`](super::BlockSync). Durations in milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncOptions {
    pub mode: SyncMode,
    /// Blocks per `GetBlocks`, 1 to [`MAX_BLOCKS_PER_REQUEST`]. Default: 128.
    pub blocks_per_request: u32,
    /// Headers per `GetHeaders` (header-first), 1 to [`MAX_HEADERS_PER_REQUEST`]. Default: 512.
    pub headers_per_request: u32,
    /// Most requests in flight to one peer. Default: 4. A response of 128 blocks with 100
    /// validators is ~0.9 MB, so over a 100 ms round trip 2 in flight would cap one peer near
    /// 2,500 blocks/s, about what two cores verify; 4 leaves room, and a peer answers up to 8 at
    /// once (PROTOCOL.md §21.2). Over loopback 2 and 4 measure the same (BENCHMARKS.md).
    pub max_requests_per_peer: usize,
    /// Most requests in flight in all. Default: 16.
    pub max_requests_total: usize,
    /// Bytes reserved for responses in flight: each request reserves
    /// [`MAX_RESPONSE_BYTES`], the most a peer may send. Default: 32 MiB (8 requests).
    pub max_in_flight_bytes: u64,
    /// Blocks are requested at most this far past the applied head, which bounds the
    /// reorder buffer in blocks. At least `blocks_per_request`. Default: 1024.
    pub max_ahead_blocks: u64,
    /// Verified headers waiting for their bodies (header-first). At least
    /// `headers_per_request`. Default: 8192.
    pub max_ahead_headers: u64,
    /// Memory budget in bytes for everything held: reservations in flight, received blocks
    /// waiting for their turn, and verified blocks not yet acknowledged as written. No request
    /// is sent that could overrun it. At least `max_in_flight_bytes`. Default: 96 MiB.
    pub max_buffer_bytes: u64,
    /// Verified blocks handed to the driver (or waiting for a batch) without a
    /// [`Input::Written`](super::Input) acknowledgement; application pauses above it.
    /// Default: 2048.
    pub max_unwritten_blocks: u64,
    /// Blocks per [`Action::Write`](super::Action) during catch-up. Default: 256.
    pub write_batch_blocks: usize,
    /// A partial write batch waits at most this long. Default: 500 ms.
    pub write_flush_ms: u64,
    /// Without a write acknowledgement for this long while writes are outstanding, the machine
    /// asks the driver to read the store's height (a dropped notification). Default: 5 s.
    pub store_check_ms: u64,
    /// A request without a response after this long fails. Default: 10 s.
    pub request_timeout_ms: u64,
    /// The request holding the next height to apply is reassigned to another peer after this
    /// long, before its timeout: one slow peer must not stall the whole pipeline. Default: 4 s.
    pub stall_timeout_ms: u64,
    /// First back-off after a failure; doubles per failure in a row. Default: 500 ms.
    pub backoff_initial_ms: u64,
    /// Longest back-off. Default: 30 s.
    pub backoff_max_ms: u64,
    /// After this many failures in a row a peer is given up (and avoided for the longest
    /// back-off). Default: 5.
    pub max_consecutive_failures: u32,
    /// How long a peer reported for invalid data is avoided. Default: 10 minutes.
    pub ban_ms: u64,
    /// Recent verified headers kept (with commits and signers) to recognise a fork. At least 1.
    /// Default: 256.
    pub fork_window: usize,
    /// Least time between two [`Action::Progress`](super::Action) reports (state changes are
    /// reported at once). Default: 1 s.
    pub progress_interval_ms: u64,
    /// A [`ProgressRecord`](super::ProgressRecord) is due every this many written blocks.
    /// Default: 1000.
    pub persist_every_blocks: u64,
    /// ... and at least this often while anything changed. Default: 30 s.
    pub persist_every_ms: u64,
    /// Allowance for a proposer's clock running ahead of ours. Default: 15 s.
    pub max_clock_drift_ms: u64,
    /// Threads a range's signature batch is verified on (see `Verifier::with_threads`): the
    /// machine's one expensive step. Default: every core natively, 1 on wasm32.
    pub verify_threads: usize,
}

/// Every core this process may use (1 on wasm32, or when unknown).
fn available_cores() -> usize {
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
    #[cfg(target_arch = "wasm32")]
    {
        1
    }
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            mode: SyncMode::Fast,
            blocks_per_request: MAX_BLOCKS_PER_REQUEST,
            headers_per_request: MAX_HEADERS_PER_REQUEST,
            max_requests_per_peer: 4,
            max_requests_total: 16,
            max_in_flight_bytes: 8 * MAX_RESPONSE_BYTES as u64,
            max_ahead_blocks: 1024,
            max_ahead_headers: 8192,
            max_buffer_bytes: 24 * MAX_RESPONSE_BYTES as u64,
            max_unwritten_blocks: 2048,
            write_batch_blocks: 256,
            write_flush_ms: 500,
            store_check_ms: 5_000,
            request_timeout_ms: REQUEST_TIMEOUT.as_millis() as u64,
            stall_timeout_ms: 4_000,
            backoff_initial_ms: 500,
            backoff_max_ms: 30_000,
            max_consecutive_failures: 5,
            ban_ms: 10 * 60 * 1000,
            fork_window: 256,
            progress_interval_ms: 1_000,
            persist_every_blocks: 1_000,
            persist_every_ms: 30_000,
            max_clock_drift_ms: DEFAULT_MAX_CLOCK_DRIFT_MS,
            verify_threads: available_cores(),
        }
    }
}

impl SyncOptions {
    /// Checks that the settings can work together.
    pub fn validate(&self) -> Result<(), SyncError> {
        let fail = |m: String| Err(SyncError::InvalidOptions(m));
        if self.blocks_per_request == 0 || self.blocks_per_request > MAX_BLOCKS_PER_REQUEST {
            return fail(format!(
                "blocks_per_request {} is not in 1..={MAX_BLOCKS_PER_REQUEST}",
                self.blocks_per_request
            ));
        }
        if self.headers_per_request == 0 || self.headers_per_request > MAX_HEADERS_PER_REQUEST {
            return fail(format!(
                "headers_per_request {} is not in 1..={MAX_HEADERS_PER_REQUEST}",
                self.headers_per_request
            ));
        }
        if self.max_requests_per_peer == 0 || self.max_requests_total == 0 {
            return fail("request limits must be at least 1".into());
        }
        if self.max_in_flight_bytes < MAX_RESPONSE_BYTES as u64 {
            return fail(format!(
                "max_in_flight_bytes {} is below one response ({MAX_RESPONSE_BYTES})",
                self.max_in_flight_bytes
            ));
        }
        if self.max_buffer_bytes < self.max_in_flight_bytes {
            return fail(format!(
                "max_buffer_bytes {} is below max_in_flight_bytes {}",
                self.max_buffer_bytes, self.max_in_flight_bytes
            ));
        }
        if self.max_ahead_blocks < u64::from(self.blocks_per_request) {
            return fail(format!(
                "max_ahead_blocks {} is below blocks_per_request {}",
                self.max_ahead_blocks, self.blocks_per_request
            ));
        }
        if self.max_ahead_headers < u64::from(self.headers_per_request) {
            return fail(format!(
                "max_ahead_headers {} is below headers_per_request {}",
                self.max_ahead_headers, self.headers_per_request
            ));
        }
        if self.verify_threads == 0 {
            return fail("verify_threads must be at least 1".into());
        }
        if self.max_unwritten_blocks == 0 || self.write_batch_blocks == 0 {
            return fail("write batch and unwritten limit must be at least 1".into());
        }
        if self.request_timeout_ms == 0 || self.stall_timeout_ms == 0 || self.store_check_ms == 0 {
            return fail("timeouts must be positive".into());
        }
        if self.backoff_initial_ms == 0 || self.backoff_max_ms < self.backoff_initial_ms {
            return fail(format!(
                "back-off must satisfy 0 < initial ({}) <= max ({})",
                self.backoff_initial_ms, self.backoff_max_ms
            ));
        }
        if self.max_consecutive_failures == 0 || self.fork_window == 0 {
            return fail("max_consecutive_failures and fork_window must be at least 1".into());
        }
        if self.persist_every_blocks == 0 || self.persist_every_ms == 0 {
            return fail("persist cadence must be positive".into());
        }
        Ok(())
    }

    /// Back-off after `failures` failures in a row (1 → the initial back-off).
    pub fn backoff_ms(&self, failures: u32) -> u64 {
        let doublings = failures.saturating_sub(1).min(32);
        self.backoff_initial_ms
            .saturating_mul(1u64 << doublings)
            .min(self.backoff_max_ms)
    }

    /// The bytes a request reserves while in flight: the protocol's response cap, the most
    /// any peer can make us buffer for it.
    pub fn reservation_bytes(&self) -> u64 {
        MAX_RESPONSE_BYTES as u64
    }
}
