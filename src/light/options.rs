//! The light client's settings, with defaults sized for a browser tab.

use crate::protocol::limits::{MAX_HEADERS_PER_REQUEST, REQUEST_TIMEOUT};
use crate::verify::DEFAULT_MAX_CLOCK_DRIFT_MS;

use super::error::LightError;

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Settings of a [`LightClient`](super::LightClient). Every duration is in milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LightOptions {
    /// A trusted header (the checkpoint's block, or the stored head on resume) older than this
    /// raises [`Action::CheckpointStale`](super::Action). Default: 14 days.
    pub trust_period_ms: u64,
    /// Stop instead of continuing from a stale trusted header. Default: false.
    pub refuse_stale_checkpoint: bool,
    /// Allowance for a proposer's clock running ahead of ours. Default: 15 s.
    pub max_clock_drift_ms: u64,
    /// Headers per `GetHeaders` request, 1 to [`MAX_HEADERS_PER_REQUEST`]. Default: 128.
    pub batch_size: u32,
    /// Most header requests in flight to one peer. Default: 2.
    pub max_requests_per_peer: usize,
    /// Most header requests in flight in all. Default: 8.
    pub max_requests_total: usize,
    /// A request without a response after this long fails. Default: 10 s.
    pub request_timeout_ms: u64,
    /// First back-off after a failed request; it doubles with each failure in a row.
    /// Default: 500 ms.
    pub backoff_initial_ms: u64,
    /// Longest back-off. Default: 30 s.
    pub backoff_max_ms: u64,
    /// After this many failures in a row a peer is dropped (and avoided for the longest
    /// back-off). Default: 5.
    pub max_consecutive_failures: u32,
    /// How long a peer dropped for a fault (invalid header, bad proof) is avoided.
    /// Default: 10 minutes.
    pub avoid_ms: u64,
    /// How far past the verified head the client requests: this bounds the out-of-order
    /// buffer. At least `batch_size`. Default: 2048 headers.
    pub max_ahead_headers: u64,
    /// Verified headers per [`Action::StoreHeaders`](super::Action) during catch-up.
    /// Default: 512.
    pub store_batch_size: usize,
    /// Verified headers wait at most this long for a batch to fill. Default: 1 s.
    pub store_flush_ms: u64,
    /// Most headers handed to the driver but not yet acknowledged with
    /// [`Input::Stored`](super::Input); sync pauses above it. Default: 8192.
    pub max_unstored_headers: u64,
    /// How many recent verified headers (with their commits) are kept to recognise a fork.
    /// At least 2. Default: 256.
    pub fork_window: usize,
    /// How many different peers one event proof is asked from before giving up. Default: 3.
    pub proof_peers: usize,
    /// How long one `verify_event` may take in all. Default: 30 s.
    pub proof_timeout_ms: u64,
    /// Least time between two progress reports (phase changes are reported at once).
    /// Default: 500 ms.
    pub progress_interval_ms: u64,
}

impl Default for LightOptions {
    fn default() -> Self {
        LightOptions {
            trust_period_ms: 14 * DAY_MS,
            refuse_stale_checkpoint: false,
            max_clock_drift_ms: DEFAULT_MAX_CLOCK_DRIFT_MS,
            batch_size: 128,
            max_requests_per_peer: 2,
            max_requests_total: 8,
            request_timeout_ms: REQUEST_TIMEOUT.as_millis() as u64,
            backoff_initial_ms: 500,
            backoff_max_ms: 30_000,
            max_consecutive_failures: 5,
            avoid_ms: 10 * 60 * 1000,
            max_ahead_headers: 2048,
            store_batch_size: 512,
            store_flush_ms: 1_000,
            max_unstored_headers: 8192,
            fork_window: 256,
            proof_peers: 3,
            proof_timeout_ms: 30_000,
            progress_interval_ms: 500,
        }
    }
}

impl LightOptions {
    /// Checks that the settings can work together.
    pub fn validate(&self) -> Result<(), LightError> {
        let fail = |m: String| Err(LightError::InvalidOptions(m));
        if self.batch_size == 0 || self.batch_size > MAX_HEADERS_PER_REQUEST {
            return fail(format!(
                "batch_size {} is not in 1..={MAX_HEADERS_PER_REQUEST}",
                self.batch_size
            ));
        }
        if self.max_requests_per_peer == 0 || self.max_requests_total == 0 {
            return fail("request limits must be at least 1".into());
        }
        if self.request_timeout_ms == 0 || self.proof_timeout_ms == 0 {
            return fail("timeouts must be positive".into());
        }
        if self.backoff_initial_ms == 0 || self.backoff_max_ms < self.backoff_initial_ms {
            return fail(format!(
                "back-off must satisfy 0 < initial ({}) <= max ({})",
                self.backoff_initial_ms, self.backoff_max_ms
            ));
        }
        if self.max_consecutive_failures == 0 {
            return fail("max_consecutive_failures must be at least 1".into());
        }
        if self.max_ahead_headers < u64::from(self.batch_size) {
            return fail(format!(
                "max_ahead_headers {} is below batch_size {}",
                self.max_ahead_headers, self.batch_size
            ));
        }
        if self.store_batch_size == 0 || self.max_unstored_headers == 0 {
            return fail("store batch and unstored limit must be at least 1".into());
        }
        if self.fork_window < 2 {
            return fail(format!("fork_window {} is below 2", self.fork_window));
        }
        if self.proof_peers == 0 {
            return fail("proof_peers must be at least 1".into());
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
}
