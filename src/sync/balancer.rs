//! The peer balancer (Soma's `PeerBalancer`, with measurements): which connected peer gets the
//! next range. A peer serves height `h` iff `lowest <= h <= head`; among those, trusted peers
//! first, then the fewest recent failures, then the soonest expected answer from measured
//! latency and throughput (EWMA) and the requests it already has. Sans I/O: times are
//! arguments.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::protocol::Status;

/// Weight of a new sample in the moving averages.
const EWMA_ALPHA: f64 = 0.3;

/// One connected peer.
#[derive(Clone, Debug)]
pub(crate) struct PeerState {
    pub head: u64,
    pub lowest: u64,
    pub trusted: bool,
    pub in_flight: usize,
    /// Failures in a row.
    pub failures: u32,
    /// `RateLimited` refusals in a row, counted once per round of requests (see
    /// [`Balancer::refused`]).
    pub refusals: u32,
    /// When the last counted refusal arrived.
    pub refused_at: u64,
    /// No new request before this time.
    pub backoff_until: u64,
    /// Moving average of response times, ms; `None` until measured.
    pub latency_ms: Option<f64>,
    /// Moving average of bytes per second; `None` until measured.
    pub bytes_per_s: Option<f64>,
    /// When it was last picked (a sequence number), to rotate among equals.
    pub last_used: u64,
}

impl PeerState {
    fn new(status: &Status, trusted: bool) -> Self {
        PeerState {
            head: status.head_height,
            lowest: status.lowest_height,
            trusted,
            in_flight: 0,
            failures: 0,
            refusals: 0,
            refused_at: 0,
            backoff_until: 0,
            latency_ms: None,
            bytes_per_s: None,
            last_used: 0,
        }
    }

    /// Whether it has height `h` (Soma's availability).
    pub fn serves(&self, h: u64) -> bool {
        self.lowest <= h && h <= self.head
    }

    /// How long a response of `bytes` is expected to take, counting the requests it already
    /// has. Unmeasured peers look fast, so each gets tried.
    fn expected_ms(&self, bytes: u64) -> f64 {
        let latency = self.latency_ms.unwrap_or(0.0);
        let transfer = self
            .bytes_per_s
            .filter(|&r| r > 0.0)
            .map_or(0.0, |r| bytes as f64 * 1000.0 / r);
        (latency + transfer) * (self.in_flight as f64 + 1.0)
    }
}

/// Connected peers (ordered, so choices are deterministic) and the ones avoided for a while.
#[derive(Clone, Debug)]
pub(crate) struct Balancer<P> {
    peers: BTreeMap<P, PeerState>,
    avoided: BTreeMap<P, u64>,
    picks: u64,
}

impl<P: Clone + Ord> Balancer<P> {
    pub fn new() -> Self {
        Balancer {
            peers: BTreeMap::new(),
            avoided: BTreeMap::new(),
            picks: 0,
        }
    }

    /// Adds or refreshes a peer; `Err(until)` if it is avoided until later than `now_ms`.
    pub fn connect(
        &mut self,
        peer: P,
        status: &Status,
        trusted: bool,
        now_ms: u64,
    ) -> Result<(), u64> {
        if let Some(&until) = self.avoided.get(&peer).filter(|&&u| u > now_ms) {
            return Err(until);
        }
        match self.peers.get_mut(&peer) {
            Some(p) => {
                p.head = status.head_height;
                p.lowest = status.lowest_height;
                p.trusted = trusted;
            }
            None => {
                self.peers.insert(peer, PeerState::new(status, trusted));
            }
        }
        Ok(())
    }

    /// A later status; `false` for an unknown peer.
    pub fn update(&mut self, peer: &P, status: &Status) -> bool {
        match self.peers.get_mut(peer) {
            Some(p) => {
                p.head = status.head_height;
                p.lowest = status.lowest_height.min(status.head_height);
                true
            }
            None => false,
        }
    }

    /// The peer showed a block at `height` (gossip): it has at least that.
    pub fn saw(&mut self, peer: &P, height: u64) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.head = p.head.max(height);
        }
    }

    /// The peer answered a range from `start` with nothing: its head is below `start`.
    pub fn lacks(&mut self, peer: &P, start: u64) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.head = p.head.min(start.saturating_sub(1));
        }
    }

    pub fn remove(&mut self, peer: &P) -> Option<PeerState> {
        self.peers.remove(peer)
    }

    /// Removes the peer and refuses it until `until_ms`.
    pub fn avoid(&mut self, peer: &P, until_ms: u64) {
        self.peers.remove(peer);
        let until = self.avoided.get(peer).copied().unwrap_or(0).max(until_ms);
        self.avoided.insert(peer.clone(), until);
    }

    pub fn expire(&mut self, now_ms: u64) {
        self.avoided.retain(|_, &mut u| u > now_ms);
    }

    pub fn get(&self, peer: &P) -> Option<&PeerState> {
        self.peers.get(peer)
    }

    pub fn contains(&self, peer: &P) -> bool {
        self.peers.contains_key(peer)
    }

    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// The best head any connected peer claims.
    pub fn best_head(&self) -> Option<u64> {
        self.peers.values().map(|p| p.head).max()
    }

    /// The peer to ask for heights from `start` (expecting about `bytes`): one that serves
    /// `start`, is not backing off, has fewer than `max_in_flight` requests, and is not
    /// `except`; ranked trusted first, then fewest failures, then soonest expected answer,
    /// then least recently used.
    pub fn pick(
        &self,
        start: u64,
        bytes: u64,
        now_ms: u64,
        max_in_flight: usize,
        except: Option<&P>,
    ) -> Option<P> {
        self.peers
            .iter()
            .filter(|(id, p)| {
                p.serves(start)
                    && p.backoff_until <= now_ms
                    && p.in_flight < max_in_flight
                    && except != Some(*id)
            })
            .min_by(|(_, a), (_, b)| {
                (!a.trusted, a.failures)
                    .cmp(&(!b.trusted, b.failures))
                    .then_with(|| {
                        a.expected_ms(bytes)
                            .partial_cmp(&b.expected_ms(bytes))
                            .unwrap_or(Ordering::Equal)
                    })
                    .then(a.last_used.cmp(&b.last_used))
            })
            .map(|(id, _)| id.clone())
    }

    pub fn sent(&mut self, peer: &P) {
        self.picks += 1;
        let picks = self.picks;
        if let Some(p) = self.peers.get_mut(peer) {
            p.in_flight += 1;
            p.last_used = picks;
        }
    }

    /// A request to `peer` ended, answered or not.
    pub fn done(&mut self, peer: &P) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.in_flight = p.in_flight.saturating_sub(1);
        }
    }

    /// A good answer of `bytes` after `elapsed_ms`: updates the averages, clears failures.
    pub fn measured(&mut self, peer: &P, elapsed_ms: u64, bytes: u64) {
        if let Some(p) = self.peers.get_mut(peer) {
            let ms = elapsed_ms.max(1) as f64;
            let rate = bytes as f64 * 1000.0 / ms;
            p.latency_ms = Some(ewma(p.latency_ms, ms));
            p.bytes_per_s = Some(ewma(p.bytes_per_s, rate));
            p.failures = 0;
            p.refusals = 0;
            p.backoff_until = 0;
        }
    }

    /// A `RateLimited` answer to a request sent at `sent_ms`: the peer answers but will not
    /// serve now (over a rate or byte budget, or it has banned us). Backs it off by
    /// `backoff(refusals)`, counting only refusals of requests sent after the last counted
    /// one, so the requests already in flight when it started refusing do not escalate the
    /// back-off. Never a reason to give the peer up.
    pub fn refused(&mut self, peer: &P, sent_ms: u64, now_ms: u64, backoff: impl Fn(u32) -> u64) {
        if let Some(p) = self.peers.get_mut(peer) {
            if p.refusals == 0 || sent_ms > p.refused_at {
                p.refusals += 1;
                p.refused_at = now_ms;
            }
            let until = now_ms.saturating_add(backoff(p.refusals));
            p.backoff_until = p.backoff_until.max(until);
        }
    }

    /// A failure: backs off by `backoff(failures)`; returns the failures in a row (0 for an
    /// unknown peer).
    pub fn failed(&mut self, peer: &P, now_ms: u64, backoff: impl Fn(u32) -> u64) -> u32 {
        match self.peers.get_mut(peer) {
            Some(p) => {
                p.failures += 1;
                p.backoff_until = now_ms.saturating_add(backoff(p.failures));
                p.failures
            }
            None => 0,
        }
    }

    /// The earliest end of a back-off still running.
    pub fn next_backoff_end(&self, now_ms: u64) -> Option<u64> {
        self.peers
            .values()
            .map(|p| p.backoff_until)
            .filter(|&t| t > now_ms)
            .min()
    }
}

fn ewma(old: Option<f64>, sample: f64) -> f64 {
    match old {
        Some(o) => EWMA_ALPHA * sample + (1.0 - EWMA_ALPHA) * o,
        None => sample,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Hash;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn status(lowest: u64, head: u64) -> Status {
        Status {
            head_height: head,
            head_hash: Hash::ZERO,
            mmr_root: Hash::ZERO,
            lowest_height: lowest,
            syncing: false,
        }
    }

    #[test]
    fn picks_only_peers_that_have_the_height() {
        let mut b: Balancer<u8> = Balancer::new();
        b.connect(1, &status(0, 100), false, 0).unwrap();
        b.connect(2, &status(50, 300), false, 0).unwrap();
        assert_eq!(b.pick(10, 1, 0, 4, None), Some(1));
        assert_eq!(b.pick(200, 1, 0, 4, None), Some(2));
        assert_eq!(b.pick(301, 1, 0, 4, None), None);
        b.lacks(&2, 200);
        assert_eq!(b.pick(200, 1, 0, 4, None), None, "it said it lacks 200");
    }

    #[test]
    fn prefers_trusted_then_healthy_then_fast_peers() {
        let mut b: Balancer<u8> = Balancer::new();
        for id in 1..=3 {
            b.connect(id, &status(0, 100), id == 3, 0).unwrap();
        }
        assert_eq!(b.pick(1, 1000, 0, 4, None), Some(3), "trusted first");
        assert_eq!(b.pick(1, 1000, 0, 4, Some(&3)), Some(1));
        b.measured(&1, 400, 1000);
        b.measured(&2, 100, 1000);
        assert_eq!(b.pick(1, 1000, 0, 4, Some(&3)), Some(2), "lower latency");
        b.failed(&2, 0, |_| 0);
        assert_eq!(b.pick(1, 1000, 0, 4, Some(&3)), Some(1), "fewer failures");
        b.failed(&1, 0, |_| 500);
        assert_eq!(b.pick(1, 1000, 100, 4, Some(&3)), Some(2), "1 backs off");
        assert_eq!(b.next_backoff_end(100), Some(500));
        b.sent(&2);
        assert_eq!(
            b.pick(1, 1000, 600, 1, Some(&3)),
            Some(1),
            "2 is at its limit"
        );
    }

    #[test]
    fn an_avoided_peer_cannot_reconnect_until_it_expires() {
        let mut b: Balancer<u8> = Balancer::new();
        b.connect(1, &status(0, 10), false, 0).unwrap();
        b.avoid(&1, 1000);
        assert!(!b.contains(&1));
        assert_eq!(b.connect(1, &status(0, 10), false, 999), Err(1000));
        b.expire(1000);
        assert_eq!(b.connect(1, &status(0, 10), false, 1000), Ok(()));
    }
}
