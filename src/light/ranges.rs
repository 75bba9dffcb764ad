//! Which header ranges to request, and the ones received ahead of their turn.
//!
//! Heights above the verified head fall in three groups: never requested (from `frontier`
//! on), to request again (`todo`, after a failure or a short response), and in flight (owned by
//! the machine's request table). Received ranges wait in `ready` until the verified head reaches
//! their start, so verification is strictly in height order; the machine bounds how far ahead
//! it requests, which bounds `ready`.

use std::collections::BTreeMap;

use crate::chain::TrustedHeader;

/// A received range waiting for verification.
#[derive(Clone, Debug)]
pub(crate) struct Received<P> {
    pub peer: P,
    pub headers: Vec<TrustedHeader>,
}

#[derive(Clone, Debug)]
pub(crate) struct Ranges<P> {
    /// The lowest height never requested.
    frontier: u64,
    /// Ranges to request again: start → count.
    todo: BTreeMap<u64, u64>,
    /// Received ranges by start height.
    ready: BTreeMap<u64, Received<P>>,
}

impl<P> Ranges<P> {
    /// Nothing requested yet; the first height to fetch is `next`.
    pub fn new(next: u64) -> Self {
        Ranges {
            frontier: next,
            todo: BTreeMap::new(),
            ready: BTreeMap::new(),
        }
    }

    /// The next range to request: the lowest one to request again, else the next `batch`
    /// heights from the frontier, up to `target` (inclusive) and below `limit` (exclusive).
    /// `(start, count)`; nothing is taken until [`Ranges::take`].
    pub fn next(&self, target: u64, batch: u64, limit: u64) -> Option<(u64, u64)> {
        if let Some((&start, &count)) = self.todo.first_key_value() {
            return Some((start, count.min(batch)));
        }
        let end = target
            .saturating_add(1)
            .min(limit)
            .min(self.frontier.saturating_add(batch));
        (self.frontier < end).then(|| (self.frontier, end - self.frontier))
    }

    /// Marks `start..start + count` as requested. It must lie within what [`Ranges::next`]
    /// returned (a prefix of it).
    pub fn take(&mut self, start: u64, count: u64) {
        if let Some(total) = self.todo.remove(&start) {
            if total > count {
                self.todo.insert(start + count, total - count);
            }
        } else if start == self.frontier {
            self.frontier += count;
        }
    }

    /// Puts `start..start + count` back to be requested again.
    pub fn requeue(&mut self, start: u64, count: u64) {
        if count > 0 {
            self.todo.insert(start, count);
        }
    }

    /// Stores a received range.
    pub fn receive(&mut self, start: u64, peer: P, headers: Vec<TrustedHeader>) {
        self.ready.insert(start, Received { peer, headers });
    }

    /// Takes the received range that starts at or below `next`, if any.
    pub fn take_ready(&mut self, next: u64) -> Option<(u64, Received<P>)> {
        let (&start, _) = self.ready.first_key_value()?;
        if start > next {
            return None;
        }
        self.ready.remove_entry(&start)
    }

    /// Puts back every received range of `peer` to be requested again (the peer is dropped).
    pub fn forget_peer(&mut self, peer: &P)
    where
        P: PartialEq,
    {
        let starts: Vec<u64> = self
            .ready
            .iter()
            .filter(|(_, r)| r.peer == *peer)
            .map(|(&s, _)| s)
            .collect();
        for start in starts {
            if let Some(r) = self.ready.remove(&start) {
                self.requeue(start, r.headers.len() as u64);
            }
        }
    }

    /// Nothing to request again and nothing received but unverified.
    pub fn is_idle(&self) -> bool {
        self.todo.is_empty() && self.ready.is_empty()
    }

    pub fn frontier(&self) -> u64 {
        self.frontier
    }

    /// Headers received and waiting for verification.
    pub fn buffered_headers(&self) -> usize {
        self.ready.values().map(|r| r.headers.len()).sum()
    }

    /// The verified head moved to `next − 1` by another path (a gossiped header): forget what
    /// lies below `next`.
    pub fn skip_to(&mut self, next: u64) {
        self.frontier = self.frontier.max(next);
        let todo = std::mem::take(&mut self.todo);
        for (start, count) in todo {
            let end = start + count;
            if end > next {
                let s = start.max(next);
                self.todo.insert(s, end - s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn hands_out_batches_from_the_frontier_up_to_target_and_limit() {
        let mut r: Ranges<u8> = Ranges::new(1);
        assert_eq!(r.next(300, 128, 1000), Some((1, 128)));
        r.take(1, 128);
        assert_eq!(r.next(300, 128, 1000), Some((129, 128)));
        r.take(129, 128);
        assert_eq!(
            r.next(300, 128, 1000),
            Some((257, 44)),
            "stops at the target"
        );
        assert_eq!(
            r.next(1000, 128, 300),
            Some((257, 43)),
            "stops below the limit"
        );
        r.take(257, 10);
        assert_eq!(r.frontier(), 267);
        assert_eq!(r.next(266, 128, 1000), None);
    }

    #[test]
    fn requeued_ranges_come_first_and_split() {
        let mut r: Ranges<u8> = Ranges::new(1);
        r.take(1, 100);
        r.take(101, 100);
        r.requeue(101, 100);
        r.requeue(1, 100);
        assert_eq!(r.next(1000, 64, 1000), Some((1, 64)));
        r.take(1, 64);
        assert_eq!(r.next(1000, 64, 1000), Some((65, 36)));
        r.take(65, 36);
        assert_eq!(r.next(1000, 64, 1000), Some((101, 64)));
        assert!(!r.is_idle());
    }

    #[test]
    fn ready_ranges_wait_for_their_turn_and_go_back_with_their_peer() {
        let headers = crate::testkit::ChainBuilder::new("ranges", 4).headers(30);
        let mut r: Ranges<u8> = Ranges::new(1);
        r.take(1, 29);
        r.receive(11, 7, headers[11..21].to_vec());
        assert_eq!(r.buffered_headers(), 10);
        assert!(r.take_ready(1).is_none(), "heights 1..11 come first");
        r.forget_peer(&7);
        assert_eq!(r.buffered_headers(), 0);
        assert_eq!(r.next(1000, 64, 1000), Some((11, 10)));
        r.receive(1, 8, headers[1..11].to_vec());
        let (start, got) = r.take_ready(1).unwrap();
        assert_eq!((start, got.peer, got.headers.len()), (1, 8, 10));
        r.skip_to(15);
        assert_eq!(r.next(1000, 64, 1000), Some((15, 6)));
    }
}
