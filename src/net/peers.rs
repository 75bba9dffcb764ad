//! The peer book: what we know about each peer, sans I/O (time is an argument).
//!
//! - A **score** per peer, starting at 0: misbehaviour lowers it by a fixed penalty per kind
//!   ([`Misbehaviour`]), each good response raises it by one, capped at
//!   [`PeerBookConfig::max_score`] so good behaviour cannot buy much credit. At or below
//!   [`PeerBookConfig::ban_threshold`] the peer is banned for [`PeerBookConfig::ban_duration`];
//!   when the ban ends its score restarts at half the threshold, so a repeat offender is banned
//!   again quickly.
//! - A **token bucket** per peer and protocol ([`RateLimit`]), decided by
//!   [`PeerBook::allow_request`].
//! - A **byte budget** per peer for what the node sends it in data responses ([`ByteBudget`]):
//!   each response is charged after it is sent ([`PeerBook::charge_egress`]); while the peer is
//!   over its burst, [`PeerBook::within_egress_budget`] says no to its next data requests.
//! - The number of the peer's requests the node is still **answering**, capped at
//!   [`PeerBookConfig::max_concurrent_inbound`].
//! - The peer's last [`Status`], to pick sync peers.
//!
//! Entries of disconnected peers are kept while they are banned or have a negative score (so
//! reconnecting does not wash a score clean), for [`PeerBookConfig::retention`] after the
//! disconnect; [`PeerBook::prune`] drops the rest.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use crate::protocol::limits::{ByteBudget, RateLimit, MAX_CONCURRENT_INBOUND_PER_PEER};
use crate::protocol::{Protocol, Status};

/// A peer's offence, each with its own penalty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Misbehaviour {
    /// A message that does not decode.
    Malformed,
    /// A message over its size limit.
    Oversized,
    /// A message that decodes but is invalid (bad signature, wrong data); reported by the node.
    Invalid,
    /// Requests over the rate or concurrency limit.
    Abusive,
    /// A request of ours that timed out.
    Timeout,
    /// A handshake that failed (wrong chain, bad ack, no answer).
    HandshakeFailed,
}

/// Scores, penalties and limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerBookConfig {
    pub max_score: i32,
    pub ban_threshold: i32,
    pub ban_duration: Duration,
    /// How long an entry outlives the peer's last connection.
    pub retention: Duration,
    pub max_concurrent_inbound: usize,
    /// Inbound rate limit per protocol, indexed by [`Protocol::index`].
    pub rate_limits: [RateLimit; Protocol::ALL.len()],
    /// Bytes of data responses sent to one peer.
    pub egress: ByteBudget,
}

impl Default for PeerBookConfig {
    fn default() -> Self {
        PeerBookConfig {
            max_score: 20,
            ban_threshold: -100,
            ban_duration: Duration::from_secs(10 * 60),
            retention: Duration::from_secs(60 * 60),
            max_concurrent_inbound: MAX_CONCURRENT_INBOUND_PER_PEER,
            rate_limits: Protocol::ALL.map(RateLimit::default_for),
            egress: ByteBudget::DEFAULT,
        }
    }
}

impl PeerBookConfig {
    /// The score lost for `m`.
    pub fn penalty(&self, m: Misbehaviour) -> i32 {
        match m {
            Misbehaviour::Malformed | Misbehaviour::Oversized => 25,
            Misbehaviour::Invalid => 50,
            Misbehaviour::Abusive => 10,
            Misbehaviour::Timeout => 5,
            Misbehaviour::HandshakeFailed => 20,
        }
    }
}

/// What a report did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reported {
    /// The score fell to `score`; the peer is not (newly) banned.
    Penalized { score: i32 },
    /// The score fell to the threshold: the peer is banned until `until`.
    Banned { until: Duration },
}

/// A peer's last status and when it arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownStatus {
    pub status: Status,
    pub received_at: Duration,
}

#[derive(Clone, Debug)]
struct Entry {
    score: i32,
    banned_until: Option<Duration>,
    /// GCRA "theoretical arrival time" per protocol.
    buckets: [Duration; Protocol::ALL.len()],
    /// GCRA time of the bytes sent in data responses: how far ahead of now the budget is spent.
    egress_tat: Duration,
    inflight: usize,
    status: Option<KnownStatus>,
    connected: bool,
    last_seen: Duration,
}

impl Entry {
    fn new(now: Duration) -> Entry {
        Entry {
            score: 0,
            banned_until: None,
            buckets: [Duration::ZERO; Protocol::ALL.len()],
            egress_tat: Duration::ZERO,
            inflight: 0,
            status: None,
            connected: false,
            last_seen: now,
        }
    }
}

/// Per-peer scores, bans, rate limits, in-flight counts and statuses. `P` is the peer id type.
#[derive(Clone, Debug)]
pub struct PeerBook<P> {
    config: PeerBookConfig,
    peers: HashMap<P, Entry>,
}

impl<P: Clone + Eq + Hash> PeerBook<P> {
    pub fn new(config: PeerBookConfig) -> Self {
        PeerBook {
            config,
            peers: HashMap::new(),
        }
    }

    pub fn config(&self) -> &PeerBookConfig {
        &self.config
    }

    fn entry(&mut self, peer: &P, now: Duration) -> &mut Entry {
        let e = self
            .peers
            .entry(peer.clone())
            .or_insert_with(|| Entry::new(now));
        // A ban that has run out ends here, and the score restarts at half the threshold.
        if let Some(until) = e.banned_until {
            if now >= until {
                e.banned_until = None;
                e.score = self.config.ban_threshold / 2;
            }
        }
        e.last_seen = e.last_seen.max(now);
        e
    }

    /// The peer's score (0 for an unknown peer).
    pub fn score(&self, peer: &P) -> i32 {
        self.peers.get(peer).map_or(0, |e| e.score)
    }

    pub fn is_banned(&self, peer: &P, now: Duration) -> bool {
        self.peers
            .get(peer)
            .and_then(|e| e.banned_until)
            .is_some_and(|until| now < until)
    }

    /// When the peer's ban ends, if it is banned.
    pub fn banned_until(&self, peer: &P, now: Duration) -> Option<Duration> {
        self.peers
            .get(peer)
            .and_then(|e| e.banned_until)
            .filter(|&until| now < until)
    }

    /// Lowers the peer's score for `m`, banning it at the threshold.
    pub fn report(&mut self, peer: &P, m: Misbehaviour, now: Duration) -> Reported {
        let penalty = self.config.penalty(m);
        let threshold = self.config.ban_threshold;
        let ban_duration = self.config.ban_duration;
        let e = self.entry(peer, now);
        e.score = e.score.saturating_sub(penalty).max(threshold);
        if e.banned_until.is_none() && e.score <= threshold {
            let until = now + ban_duration;
            e.banned_until = Some(until);
            return Reported::Banned { until };
        }
        Reported::Penalized { score: e.score }
    }

    /// Raises the peer's score by one for a good response (up to the maximum).
    pub fn reward(&mut self, peer: &P, now: Duration) {
        let max = self.config.max_score;
        let e = self.entry(peer, now);
        if e.banned_until.is_none() {
            e.score = (e.score + 1).min(max);
        }
    }

    /// Bans the peer until `now + duration` (or its current ban's end, if later), whatever
    /// its score.
    pub fn ban(&mut self, peer: &P, now: Duration, duration: Duration) -> Duration {
        let threshold = self.config.ban_threshold;
        let e = self.entry(peer, now);
        let until = (now + duration).max(e.banned_until.unwrap_or_default());
        e.banned_until = Some(until);
        e.score = e.score.min(threshold);
        until
    }

    /// Takes a token from the peer's bucket for `protocol`: `false` if the peer is over its
    /// rate (nothing is taken then).
    pub fn allow_request(&mut self, peer: &P, protocol: Protocol, now: Duration) -> bool {
        let limit = self.config.rate_limits[protocol.index()];
        let e = self.entry(peer, now);
        // GCRA: each request pushes the theoretical arrival time `tat` one interval on; a
        // request is allowed while `tat` is at most `burst − 1` intervals ahead of now.
        let interval = limit.refill_every;
        let tolerance = interval * limit.burst.saturating_sub(1);
        let tat = e.buckets[protocol.index()].max(now);
        if tat - now > tolerance {
            return false;
        }
        e.buckets[protocol.index()] = tat + interval;
        true
    }

    /// Whether the peer may be sent another data response: the bytes already sent to it are
    /// within the burst of its [`ByteBudget`]. One response may take it past the burst (its
    /// size is known only once it is built); it is then refused until the budget refills.
    pub fn within_egress_budget(&mut self, peer: &P, now: Duration) -> bool {
        let budget = self.config.egress;
        let e = self.entry(peer, now);
        e.egress_tat.saturating_sub(now) <= budget.time_for(budget.burst_bytes)
    }

    /// Charges `bytes` sent to the peer in a data response to its byte budget.
    pub fn charge_egress(&mut self, peer: &P, bytes: usize, now: Duration) {
        let time = self.config.egress.time_for(bytes as u64);
        let e = self.entry(peer, now);
        e.egress_tat = e.egress_tat.max(now).saturating_add(time);
    }

    /// Counts a request of the peer that the node now answers: `false` (and nothing counted)
    /// if the peer already has the maximum in flight.
    pub fn inbound_started(&mut self, peer: &P, now: Duration) -> bool {
        let max = self.config.max_concurrent_inbound;
        let e = self.entry(peer, now);
        if e.inflight >= max {
            return false;
        }
        e.inflight += 1;
        true
    }

    /// The node answered (or gave up on) one of the peer's requests.
    pub fn inbound_finished(&mut self, peer: &P) {
        if let Some(e) = self.peers.get_mut(peer) {
            e.inflight = e.inflight.saturating_sub(1);
        }
    }

    pub fn inflight(&self, peer: &P) -> usize {
        self.peers.get(peer).map_or(0, |e| e.inflight)
    }

    /// Records the peer's latest status.
    pub fn set_status(&mut self, peer: &P, status: Status, now: Duration) {
        self.entry(peer, now).status = Some(KnownStatus {
            status,
            received_at: now,
        });
    }

    pub fn status(&self, peer: &P) -> Option<&KnownStatus> {
        self.peers.get(peer).and_then(|e| e.status.as_ref())
    }

    pub fn connected(&mut self, peer: &P, now: Duration) {
        self.entry(peer, now).connected = true;
    }

    /// The peer's last connection closed: forget its status and in-flight count.
    pub fn disconnected(&mut self, peer: &P, now: Duration) {
        if let Some(e) = self.peers.get_mut(peer) {
            e.connected = false;
            e.inflight = 0;
            e.status = None;
            e.last_seen = e.last_seen.max(now);
        }
    }

    /// Connected, unbanned peers whose status says they serve the block at `height`
    /// (`lowest_height ≤ height ≤ head_height`), best score first.
    pub fn peers_serving(&self, height: u64, now: Duration) -> Vec<(P, &Status)> {
        let mut out: Vec<(P, &Status, i32)> = self
            .peers
            .iter()
            .filter(|(_, e)| e.connected && e.banned_until.is_none_or(|until| now >= until))
            .filter_map(|(p, e)| {
                let s = &e.status.as_ref()?.status;
                (s.lowest_height <= height && height <= s.head_height).then_some((
                    p.clone(),
                    s,
                    e.score,
                ))
            })
            .collect();
        out.sort_by_key(|(_, _, score)| std::cmp::Reverse(*score));
        out.into_iter().map(|(p, s, _)| (p, s)).collect()
    }

    /// The highest head among connected peers' statuses.
    pub fn best_head(&self) -> Option<u64> {
        self.peers
            .values()
            .filter(|e| e.connected)
            .filter_map(|e| e.status.as_ref().map(|s| s.status.head_height))
            .max()
    }

    /// Drops disconnected entries that carry nothing worth keeping: not banned, and either a
    /// non-negative score or last seen more than the retention ago.
    pub fn prune(&mut self, now: Duration) {
        let retention = self.config.retention;
        self.peers.retain(|_, e| {
            let banned = e.banned_until.is_some_and(|until| now < until);
            e.connected || banned || (e.score < 0 && now.saturating_sub(e.last_seen) < retention)
        });
    }

    /// Number of entries (for tests and metrics).
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Hash;

    const S: Duration = Duration::from_secs(1);

    fn book() -> PeerBook<u32> {
        PeerBook::new(PeerBookConfig::default())
    }

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
    fn misbehaviour_lowers_the_score_and_bans_at_the_threshold() {
        let mut b = book();
        let t = Duration::ZERO;
        assert_eq!(
            b.report(&1, Misbehaviour::Malformed, t),
            Reported::Penalized { score: -25 }
        );
        assert_eq!(
            b.report(&1, Misbehaviour::Invalid, t),
            Reported::Penalized { score: -75 }
        );
        assert!(!b.is_banned(&1, t));
        let until = t + b.config().ban_duration;
        assert_eq!(
            b.report(&1, Misbehaviour::Oversized, t),
            Reported::Banned { until }
        );
        assert!(b.is_banned(&1, t));
        assert_eq!(b.banned_until(&1, t), Some(until));
        assert_eq!(b.score(&1), -100);
        // Further reports while banned neither extend the ban nor sink the score further.
        assert_eq!(
            b.report(&1, Misbehaviour::Malformed, t),
            Reported::Penalized { score: -100 }
        );
        assert!(!b.is_banned(&2, t));
    }

    #[test]
    fn a_ban_expires_and_the_score_restarts_at_half_the_threshold() {
        let mut b = book();
        let until = b.ban(&1, Duration::ZERO, 10 * S);
        assert_eq!(until, 10 * S);
        assert!(b.is_banned(&1, 9 * S));
        assert!(!b.is_banned(&1, 10 * S));
        // The first touch after expiry resets the score to half the threshold, so two more
        // serious offences ban again.
        assert_eq!(
            b.report(&1, Misbehaviour::Malformed, 10 * S),
            Reported::Penalized { score: -75 }
        );
        assert!(matches!(
            b.report(&1, Misbehaviour::Malformed, 11 * S),
            Reported::Banned { .. }
        ));
    }

    #[test]
    fn good_responses_raise_the_score_slowly_up_to_a_cap() {
        let mut b = book();
        for _ in 0..5 {
            b.reward(&1, Duration::ZERO);
        }
        assert_eq!(b.score(&1), 5);
        for _ in 0..100 {
            b.reward(&1, Duration::ZERO);
        }
        assert_eq!(b.score(&1), b.config().max_score);
        // A banned peer earns nothing.
        b.ban(&2, Duration::ZERO, S);
        b.reward(&2, Duration::ZERO);
        assert_eq!(b.score(&2), -100);
    }

    #[test]
    fn token_bucket_allows_a_burst_then_the_refill_rate() {
        let mut b = book();
        let limit = b.config().rate_limits[Protocol::Headers.index()];
        let t = 100 * S;
        for i in 0..limit.burst {
            assert!(b.allow_request(&1, Protocol::Headers, t), "request {i}");
        }
        assert!(!b.allow_request(&1, Protocol::Headers, t));
        // Other protocols and other peers have their own buckets.
        assert!(b.allow_request(&1, Protocol::Blocks, t));
        assert!(b.allow_request(&2, Protocol::Headers, t));
        // One interval later, exactly one more.
        let t = t + limit.refill_every;
        assert!(b.allow_request(&1, Protocol::Headers, t));
        assert!(!b.allow_request(&1, Protocol::Headers, t));
        // After a long pause the full burst is back, and no more.
        let t = t + limit.refill_every * (limit.burst + 10);
        for _ in 0..limit.burst {
            assert!(b.allow_request(&1, Protocol::Headers, t));
        }
        assert!(!b.allow_request(&1, Protocol::Headers, t));
    }

    #[test]
    fn a_custom_rate_limit_applies() {
        let mut config = PeerBookConfig::default();
        config.rate_limits[Protocol::Proof.index()] = RateLimit {
            burst: 1,
            refill_every: S,
        };
        let mut b = PeerBook::new(config);
        assert!(b.allow_request(&1, Protocol::Proof, Duration::ZERO));
        assert!(!b.allow_request(&1, Protocol::Proof, S / 2));
        assert!(b.allow_request(&1, Protocol::Proof, S));
    }

    #[test]
    fn the_byte_budget_refuses_a_peer_past_its_burst_until_it_refills() {
        let mut b = PeerBook::new(PeerBookConfig {
            egress: ByteBudget {
                burst_bytes: 1_000,
                bytes_per_sec: 100,
            },
            ..PeerBookConfig::default()
        });
        let t = Duration::from_secs(100);
        // The burst is spent, and one response may go past it.
        assert!(b.within_egress_budget(&1, t));
        b.charge_egress(&1, 1_000, t);
        assert!(b.within_egress_budget(&1, t), "exactly the burst");
        b.charge_egress(&1, 500, t);
        assert!(!b.within_egress_budget(&1, t));
        assert!(
            b.within_egress_budget(&2, t),
            "other peers have their own budget"
        );
        // 500 bytes over, at 100 bytes/s: 5 s to be back within the burst.
        assert!(!b.within_egress_budget(&1, t + Duration::from_millis(4_999)));
        assert!(b.within_egress_budget(&1, t + S * 5));
        // Idle time refills the burst and no more.
        let t = t + S * 1_000;
        b.charge_egress(&1, 1_000, t);
        assert!(b.within_egress_budget(&1, t));
        b.charge_egress(&1, 1, t);
        assert!(!b.within_egress_budget(&1, t));
        // A huge charge saturates instead of overflowing.
        b.charge_egress(&1, usize::MAX, t);
        b.charge_egress(&1, usize::MAX, t);
        assert!(!b.within_egress_budget(&1, t + S * 1_000_000));
        // Refusing does not touch the score.
        assert_eq!(b.score(&1), 0);
    }

    #[test]
    fn concurrent_inbound_requests_are_capped() {
        let mut b = book();
        let max = b.config().max_concurrent_inbound;
        for _ in 0..max {
            assert!(b.inbound_started(&1, Duration::ZERO));
        }
        assert!(!b.inbound_started(&1, Duration::ZERO));
        assert_eq!(b.inflight(&1), max);
        b.inbound_finished(&1);
        assert!(b.inbound_started(&1, Duration::ZERO));
        b.disconnected(&1, Duration::ZERO);
        assert_eq!(b.inflight(&1), 0);
        b.inbound_finished(&1);
        assert_eq!(b.inflight(&1), 0);
    }

    #[test]
    fn statuses_select_sync_peers_by_range_and_score() {
        let mut b = book();
        let t = Duration::ZERO;
        for p in [1, 2, 3, 4] {
            b.connected(&p, t);
        }
        b.set_status(&1, status(0, 100), t);
        b.set_status(&2, status(50, 200), t);
        b.set_status(&3, status(0, 40), t);
        b.set_status(&4, status(0, 300), t);
        b.reward(&2, t);
        b.ban(&4, t, S);
        let serving: Vec<u32> = b.peers_serving(60, t).into_iter().map(|(p, _)| p).collect();
        assert_eq!(serving, vec![2, 1]);
        assert_eq!(b.status(&3).unwrap().status.head_height, 40);
        assert_eq!(b.best_head(), Some(300));
        b.disconnected(&4, t);
        assert_eq!(b.best_head(), Some(200));
        assert!(b.status(&4).is_none());
    }

    #[test]
    fn prune_keeps_connected_banned_and_recently_negative_peers() {
        let mut b = book();
        let t = Duration::ZERO;
        for p in [1, 2, 3, 4] {
            b.connected(&p, t);
        }
        b.report(&2, Misbehaviour::Timeout, t);
        b.ban(&3, t, 10 * S);
        for p in [2, 3, 4] {
            b.disconnected(&p, t);
        }
        b.prune(S);
        let mut left: Vec<u32> = b.peers.keys().copied().collect();
        left.sort();
        assert_eq!(left, vec![1, 2, 3]);
        // After the ban and the retention, only the connected peer is left.
        b.prune(b.config().retention + S);
        assert_eq!(b.len(), 1);
        // A reconnecting negative peer keeps its score.
        let mut b = book();
        b.report(&5, Misbehaviour::Malformed, t);
        b.disconnected(&5, t);
        b.prune(S);
        b.connected(&5, S);
        assert_eq!(b.score(&5), -25);
    }
}
