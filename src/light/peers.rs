//! What the light client knows about each connected peer: its claimed chain, its requests in
//! flight, its back-off; and which peers it avoids after a fault. Sans I/O: times are arguments.

use std::collections::BTreeMap;

use crate::chain::Hash;
use crate::protocol::limits::RateLimit;
use crate::protocol::{Protocol, Status};

/// Our side of the full nodes' inbound limit on header requests (PROTOCOL.md §21.2), as the
/// full node's sync driver paces its requests: (interval, tolerance) in ms for GCRA. A request
/// over the limit is refused and costs the client score, and in the end a ban.
const HEADER_PACE: (u64, u64) = {
    let limit = RateLimit::default_for(Protocol::Headers).requester_side();
    let interval_ms = limit.refill_every.as_millis() as u64;
    (interval_ms, interval_ms * limit.burst as u64)
};

/// One connected peer.
#[derive(Clone, Debug)]
pub(crate) struct PeerInfo {
    /// The head the peer claims (from its status or gossip; lowered when it cannot serve).
    pub head: u64,
    /// The hash the peer claims for `head`, until checked against ours (or until `head` is
    /// lowered).
    pub head_hash: Option<Hash>,
    /// The lowest height the peer serves.
    pub lowest: u64,
    /// Requests of ours it has not answered yet.
    pub in_flight: usize,
    /// Failures in a row.
    pub failures: u32,
    /// No new request before this time.
    pub backoff_until: u64,
    /// When it was last picked (a sequence number), to rotate among equals.
    pub last_used: u64,
    /// A fork probe to this peer is out: no sync requests until it is answered.
    pub suspect: bool,
    /// GCRA time of our header requests to it ([`HEADER_PACE`]).
    headers_tat: u64,
}

impl PeerInfo {
    fn new(status: &Status) -> PeerInfo {
        PeerInfo {
            head: status.head_height,
            head_hash: Some(status.head_hash),
            lowest: status.lowest_height,
            in_flight: 0,
            failures: 0,
            backoff_until: 0,
            last_used: 0,
            suspect: false,
            headers_tat: 0,
        }
    }

    /// When it may next be sent a header request.
    fn headers_ready_at(&self) -> u64 {
        self.headers_tat.saturating_sub(HEADER_PACE.1)
    }

    /// Whether it may get a new request at `now_ms` for a range starting at `start`, with
    /// fewer than `max_in_flight` (if given) already out.
    fn can_take(&self, start: u64, now_ms: u64, max_in_flight: Option<usize>) -> bool {
        !self.suspect
            && self.backoff_until <= now_ms
            && self.lowest <= start
            && self.head >= start
            && max_in_flight.is_none_or(|m| self.in_flight < m)
    }
}

/// Connected peers (ordered, so choices are deterministic) and avoided ones.
#[derive(Clone, Debug)]
pub(crate) struct Peers<P> {
    connected: BTreeMap<P, PeerInfo>,
    /// Peers dropped for a fault, until when.
    avoided: BTreeMap<P, u64>,
    picks: u64,
}

impl<P: Clone + Ord> Peers<P> {
    pub fn new() -> Self {
        Peers {
            connected: BTreeMap::new(),
            avoided: BTreeMap::new(),
            picks: 0,
        }
    }

    /// Adds (or refreshes) a peer; `Err(until)` if it is avoided.
    pub fn connect(&mut self, peer: P, status: &Status, now_ms: u64) -> Result<(), u64> {
        if let Some(until) = self.avoided_until(&peer, now_ms) {
            return Err(until);
        }
        match self.connected.get_mut(&peer) {
            Some(info) => Self::apply_status(info, status),
            None => {
                self.connected.insert(peer, PeerInfo::new(status));
            }
        }
        Ok(())
    }

    fn apply_status(info: &mut PeerInfo, status: &Status) {
        info.head = status.head_height;
        info.head_hash = Some(status.head_hash);
        info.lowest = status.lowest_height;
    }

    /// A new status of a connected peer; `false` if the peer is unknown.
    pub fn update_status(&mut self, peer: &P, status: &Status) -> bool {
        match self.connected.get_mut(peer) {
            Some(info) => {
                Self::apply_status(info, status);
                true
            }
            None => false,
        }
    }

    /// Raises the peer's claimed head (gossip of a header at `height`).
    pub fn saw_head(&mut self, peer: &P, height: u64, hash: Hash) {
        if let Some(info) = self.connected.get_mut(peer) {
            if height >= info.head {
                info.head = height;
                info.head_hash = Some(hash);
            }
        }
    }

    /// The peer answered a range starting at `start` with nothing: it does not have it.
    pub fn lacks(&mut self, peer: &P, start: u64) {
        if let Some(info) = self.connected.get_mut(peer) {
            let head = start.saturating_sub(1);
            if head < info.head {
                info.head = head;
                info.head_hash = None;
            }
        }
    }

    /// Heads at or below `max_height` that peers claim and that were not checked yet:
    /// `(peer, height, hash)`.
    pub fn unchecked_heads(&self, max_height: u64) -> Vec<(P, u64, Hash)> {
        self.connected
            .iter()
            .filter(|(_, i)| !i.suspect && i.head <= max_height)
            .filter_map(|(p, i)| Some((p.clone(), i.head, i.head_hash?)))
            .collect()
    }

    /// The peer's claimed head was checked.
    pub fn head_checked(&mut self, peer: &P) {
        if let Some(info) = self.connected.get_mut(peer) {
            info.head_hash = None;
        }
    }

    pub fn remove(&mut self, peer: &P) -> Option<PeerInfo> {
        self.connected.remove(peer)
    }

    /// Removes the peer and avoids it until `until_ms`.
    pub fn avoid(&mut self, peer: &P, until_ms: u64) {
        self.connected.remove(peer);
        let until = self.avoided.get(peer).copied().unwrap_or(0).max(until_ms);
        self.avoided.insert(peer.clone(), until);
    }

    pub fn avoided_until(&self, peer: &P, now_ms: u64) -> Option<u64> {
        self.avoided.get(peer).copied().filter(|&u| u > now_ms)
    }

    /// Forgets avoidances that ran out.
    pub fn expire(&mut self, now_ms: u64) {
        self.avoided.retain(|_, until| *until > now_ms);
    }

    pub fn get(&self, peer: &P) -> Option<&PeerInfo> {
        self.connected.get(peer)
    }

    pub fn get_mut(&mut self, peer: &P) -> Option<&mut PeerInfo> {
        self.connected.get_mut(peer)
    }

    pub fn len(&self) -> usize {
        self.connected.len()
    }

    pub fn ids(&self) -> impl Iterator<Item = &P> {
        self.connected.keys()
    }

    /// The highest head any connected peer claims.
    pub fn best_head(&self) -> Option<u64> {
        self.connected.values().map(|p| p.head).max()
    }

    /// The peer to ask for a range starting at `start`: one that serves it, below
    /// `max_in_flight` (if given) and accepted by `allow`, with the fewest requests in flight,
    /// then the least recently used.
    pub fn pick(
        &self,
        start: u64,
        now_ms: u64,
        max_in_flight: Option<usize>,
        allow: impl Fn(&P) -> bool,
    ) -> Option<P> {
        self.connected
            .iter()
            .filter(|(p, info)| info.can_take(start, now_ms, max_in_flight) && allow(p))
            .min_by_key(|(_, info)| (info.in_flight, info.last_used))
            .map(|(p, _)| p.clone())
    }

    /// [`Peers::pick`] for a header request: also within the peer's header pace. `Err` holds
    /// when the pace would let an otherwise eligible peer be asked (the time to wake up for), if
    /// that is what holds the request back.
    pub fn pick_for_headers(
        &self,
        start: u64,
        now_ms: u64,
        max_in_flight: Option<usize>,
    ) -> Result<P, Option<u64>> {
        let ready = |p: &P| {
            self.connected
                .get(p)
                .is_some_and(|info| info.headers_ready_at() <= now_ms)
        };
        if let Some(peer) = self.pick(start, now_ms, max_in_flight, ready) {
            return Ok(peer);
        }
        Err(self
            .connected
            .values()
            .filter(|info| info.can_take(start, now_ms, max_in_flight))
            .map(PeerInfo::headers_ready_at)
            .filter(|&t| t > now_ms)
            .min())
    }

    /// Counts a header request sent to `peer` against its pace.
    pub fn header_request_sent(&mut self, peer: &P, now_ms: u64) {
        if let Some(info) = self.connected.get_mut(peer) {
            info.headers_tat = info.headers_tat.max(now_ms) + HEADER_PACE.0;
        }
    }

    /// Counts a request sent to `peer`.
    pub fn sent(&mut self, peer: &P) {
        self.picks += 1;
        let picks = self.picks;
        if let Some(info) = self.connected.get_mut(peer) {
            info.in_flight += 1;
            info.last_used = picks;
        }
    }

    /// A request to `peer` ended (answered or not).
    pub fn done(&mut self, peer: &P) {
        if let Some(info) = self.connected.get_mut(peer) {
            info.in_flight = info.in_flight.saturating_sub(1);
        }
    }

    /// A good answer: the failure count restarts.
    pub fn succeeded(&mut self, peer: &P) {
        if let Some(info) = self.connected.get_mut(peer) {
            info.failures = 0;
            info.backoff_until = 0;
        }
    }

    /// A failed request: backs the peer off by `backoff(failures)`; returns the failures in a
    /// row (0 if the peer is not connected).
    pub fn failed(&mut self, peer: &P, now_ms: u64, backoff: impl Fn(u32) -> u64) -> u32 {
        match self.connected.get_mut(peer) {
            Some(info) => {
                info.failures += 1;
                info.backoff_until = now_ms.saturating_add(backoff(info.failures));
                info.failures
            }
            None => 0,
        }
    }

    /// The earliest end of a back-off still running at `now_ms`.
    pub fn next_backoff_end(&self, now_ms: u64) -> Option<u64> {
        self.connected
            .values()
            .map(|p| p.backoff_until)
            .filter(|&t| t > now_ms)
            .min()
    }
}
