//! Every size, count, rate and time limit of the wire protocols, in one place.
//!
//! Decoders check the size and count limits before they allocate; the network layer applies the
//! byte caps while it reads a frame (it never buffers more than the cap) and the rate, concurrency
//! and time limits per peer.

use std::time::Duration;

use super::Protocol;

/// Most headers one `GetHeaders` may ask for (and one `Headers` response may carry).
pub const MAX_HEADERS_PER_REQUEST: u32 = 512;

/// Most blocks one `GetBlocks` may ask for (and one `Blocks` response may carry).
pub const MAX_BLOCKS_PER_REQUEST: u32 = 128;

/// Largest encoded request of any protocol, in bytes.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024;

/// Largest encoded response of the data protocols (headers, blocks, proof, snapshot), in bytes.
/// A responder sends fewer items than asked for rather than exceed it.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Largest encoded response of the small protocols (hello, status), in bytes.
pub const MAX_SMALL_RESPONSE_BYTES: usize = 4 * 1024;

/// Largest gossip payload (the canonical encoding of one [`super::GossipMessage`]), in bytes.
pub const MAX_GOSSIP_BYTES: usize = 4 * 1024 * 1024;

/// Longest [`super::ErrorResponse`] message, in bytes; longer messages are cut on construction.
pub const MAX_ERROR_MESSAGE_LEN: usize = 256;

/// Size of every snapshot chunk but the last, which holds the rest (1 to this many bytes).
pub const SNAPSHOT_CHUNK_BYTES: usize = 1024 * 1024;

/// Most chunks one snapshot may have.
pub const MAX_SNAPSHOT_CHUNKS: u32 = 16;

/// Largest encoded snapshot, in bytes.
pub const MAX_SNAPSHOT_BYTES: usize = SNAPSHOT_CHUNK_BYTES * MAX_SNAPSHOT_CHUNKS as usize;

/// Most requests of one peer that the node may be answering at once; more are refused with
/// `RateLimited`.
pub const MAX_CONCURRENT_INBOUND_PER_PEER: usize = 8;

/// Most concurrent request streams (inbound and outbound, all protocols) on one connection.
pub const MAX_CONCURRENT_STREAMS_PER_CONNECTION: usize = 64;

/// How long a request may take, from opening the stream to the end of the response.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the Hello exchange may take, in each direction, before the peer is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often each side sends its [`super::Status`] to each handshaken peer.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(30);

/// The shortest time between two Status pushes to one peer: a node tells the peers its gossip
/// does not reach (light clients) of each new head, at most this often.
pub const STATUS_PUSH_INTERVAL: Duration = Duration::from_secs(1);

/// What a node sends one peer in data responses (headers, blocks, proofs, snapshots), in bytes:
/// up to `burst_bytes` at once, then `bytes_per_sec`. The request rate limits count requests,
/// not bytes; this bounds what those requests can make a node send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteBudget {
    pub burst_bytes: u64,
    pub bytes_per_sec: u64,
}

impl ByteBudget {
    /// 64 MiB/s after a 128 MiB burst, per peer. A full node catching up with 100 validators
    /// takes ~7 KB a block, ~17 MB/s at what two cores verify (BENCHMARKS.md): the budget is
    /// about four times that, and a tenth of what the rate limits alone allow (~280 MiB/s of
    /// full responses).
    pub const DEFAULT: ByteBudget = ByteBudget {
        burst_bytes: 128 * 1024 * 1024,
        bytes_per_sec: 64 * 1024 * 1024,
    };

    /// How long sending `bytes` takes out of the budget (saturating; never for a zero rate).
    pub fn time_for(self, bytes: u64) -> Duration {
        if self.bytes_per_sec == 0 {
            return Duration::MAX;
        }
        let nanos = u128::from(bytes) * 1_000_000_000 / u128::from(self.bytes_per_sec);
        u64::try_from(nanos).map_or(Duration::MAX, Duration::from_nanos)
    }
}

// A full snapshot chunk plus its fixed fields and the response tag fits in a response.
const _: () = assert!(SNAPSHOT_CHUNK_BYTES + 128 <= MAX_RESPONSE_BYTES);

/// A token bucket: up to `burst` requests at once, then one more every `refill_every`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub burst: u32,
    pub refill_every: Duration,
}

impl RateLimit {
    /// The default inbound limit per peer for `protocol`.
    pub const fn default_for(protocol: Protocol) -> RateLimit {
        let (burst, refill_ms) = match protocol {
            // One Hello per connection; allow a reconnect or two.
            Protocol::Hello => (2, 10_000),
            // Every 30 s, and pushed on a new head at most every STATUS_PUSH_INTERVAL (1 s):
            // twice that rate leaves room for the handshake's and the periodic exchange.
            Protocol::Status => (4, 500),
            Protocol::Headers => (16, 100),
            // A full node catching up from one peer: 40 × 128 = 5,120 blocks/s, about twice
            // what two cores verify with 100 validators (see docs/PROTOCOL.md §21.2).
            Protocol::Blocks => (32, 25),
            Protocol::Proof => (32, 50),
            Protocol::Snapshot => (MAX_SNAPSHOT_CHUNKS, 200),
        };
        RateLimit {
            burst,
            refill_every: Duration::from_millis(refill_ms),
        }
    }

    /// The limit a requester keeps to so that a peer enforcing `self` never refuses it:
    /// requests spaced 10% wider and 3 fewer in the burst, since requests can arrive closer
    /// together than they were sent. headway's full-node sync driver and light client both
    /// pace themselves by it.
    pub const fn requester_side(self) -> RateLimit {
        RateLimit {
            burst: self.burst.saturating_sub(3),
            refill_every: self.refill_every.saturating_add(Duration::from_nanos(
                self.refill_every.as_nanos() as u64 / 10,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn a_byte_budget_converts_bytes_to_time() {
        let b = ByteBudget {
            burst_bytes: 10,
            bytes_per_sec: 1_000,
        };
        assert_eq!(b.time_for(0), Duration::ZERO);
        assert_eq!(b.time_for(1), Duration::from_millis(1));
        assert_eq!(b.time_for(1_500), Duration::from_millis(1_500));
        assert_eq!(b.time_for(u64::MAX), Duration::MAX, "saturates");
        let never = ByteBudget {
            bytes_per_sec: 0,
            ..b
        };
        assert_eq!(never.time_for(1), Duration::MAX);
        assert!(ByteBudget::DEFAULT.burst_bytes >= MAX_RESPONSE_BYTES as u64);
    }

    #[test]
    fn every_protocol_has_a_positive_rate_limit() {
        for p in Protocol::ALL {
            let l = RateLimit::default_for(p);
            assert!(l.burst >= 1 && !l.refill_every.is_zero(), "{p:?}");
            let ours = l.requester_side();
            assert!(ours.burst < l.burst || l.burst == 0, "{p:?}");
            assert!(ours.refill_every > l.refill_every, "{p:?}");
        }
    }
}
