//! Which heights to request, and the ranges received ahead of their turn.
//!
//! Heights past what is verified fall in three groups: never requested (from `frontier` on),
//! to request again (`todo`, after a failure, a fault or a short response), and in flight
//! (owned by the machine's request table). Received ranges wait in a [`Ready`] buffer until
//! the verified height reaches their start, so application is strictly in height order; the
//! machine bounds how far ahead it requests, which bounds the buffer.

use std::collections::BTreeMap;

/// Heights to hand out as requests.
#[derive(Clone, Debug)]
pub(crate) struct RangeQueue {
    /// The lowest height never requested.
    frontier: u64,
    /// Ranges to request again: start → count.
    todo: BTreeMap<u64, u64>,
}

impl RangeQueue {
    pub fn new(next: u64) -> Self {
        RangeQueue {
            frontier: next,
            todo: BTreeMap::new(),
        }
    }

    /// The next range to request: the lowest one to request again, else up to `batch` heights
    /// from the frontier; never past `target` (inclusive) nor at or past `limit`. Nothing is
    /// taken until [`RangeQueue::take`].
    pub fn next(&self, target: u64, batch: u64, limit: u64) -> Option<(u64, u64)> {
        let end = target.saturating_add(1).min(limit);
        if let Some((&start, &count)) = self.todo.first_key_value() {
            let count = count.min(batch).min(end.saturating_sub(start));
            return (count > 0).then_some((start, count));
        }
        let end = end.min(self.frontier.saturating_add(batch));
        (self.frontier < end).then(|| (self.frontier, end - self.frontier))
    }

    /// Marks `start..start + count` requested: a prefix of what [`RangeQueue::next`] gave.
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

    /// Heights below `next` are no longer needed.
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

    pub fn frontier(&self) -> u64 {
        self.frontier
    }

    /// Heights waiting to be requested again.
    pub fn pending(&self) -> u64 {
        self.todo.values().sum()
    }
}

/// A received range waiting for its turn.
#[derive(Clone, Debug)]
pub(crate) struct Received<P, T> {
    pub peer: P,
    pub items: Vec<T>,
    pub bytes: u64,
}

/// Received ranges by start height, with their total size.
#[derive(Clone, Debug)]
pub(crate) struct Ready<P, T> {
    ranges: BTreeMap<u64, Received<P, T>>,
    items: u64,
    bytes: u64,
}

impl<P: PartialEq, T> Ready<P, T> {
    pub fn new() -> Self {
        Ready {
            ranges: BTreeMap::new(),
            items: 0,
            bytes: 0,
        }
    }

    pub fn insert(&mut self, start: u64, peer: P, items: Vec<T>, bytes: u64) {
        self.items += items.len() as u64;
        self.bytes += bytes;
        if let Some(old) = self.ranges.insert(start, Received { peer, items, bytes }) {
            self.items -= old.items.len() as u64;
            self.bytes -= old.bytes;
        }
    }

    /// Takes the range starting at or below `next`, if any: the one whose turn it is.
    pub fn take_at(&mut self, next: u64) -> Option<(u64, Received<P, T>)> {
        let (&start, _) = self.ranges.first_key_value()?;
        if start > next {
            return None;
        }
        let (start, r) = self.ranges.remove_entry(&start)?;
        self.items -= r.items.len() as u64;
        self.bytes -= r.bytes;
        Some((start, r))
    }

    /// Removes every range of `peer`; returns them as `(start, count)` to request again.
    pub fn forget_peer(&mut self, peer: &P) -> Vec<(u64, u64)> {
        let starts: Vec<u64> = self
            .ranges
            .iter()
            .filter(|(_, r)| r.peer == *peer)
            .map(|(&s, _)| s)
            .collect();
        let mut out = Vec::with_capacity(starts.len());
        for start in starts {
            if let Some(r) = self.ranges.remove(&start) {
                self.items -= r.items.len() as u64;
                self.bytes -= r.bytes;
                out.push((start, r.items.len() as u64));
            }
        }
        out
    }

    pub fn items(&self) -> u64 {
        self.items
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn hands_out_batches_up_to_target_and_limit_requeued_first() {
        let mut q = RangeQueue::new(1);
        assert_eq!(q.next(300, 128, 1000), Some((1, 128)));
        q.take(1, 128);
        assert_eq!(q.next(300, 128, 200), Some((129, 71)), "below the limit");
        q.take(129, 71);
        q.requeue(10, 20);
        assert_eq!(q.next(300, 8, 1000), Some((10, 8)));
        q.take(10, 8);
        assert_eq!(q.pending(), 12);
        assert_eq!(
            q.next(300, 128, 15),
            None,
            "the limit applies to requeued ranges too"
        );
        assert_eq!(q.next(300, 128, 1000), Some((18, 12)));
        q.skip_to(25);
        assert_eq!(q.next(300, 128, 1000), Some((25, 5)));
        assert_eq!(q.frontier(), 200);
    }

    #[test]
    fn ready_ranges_wait_their_turn_and_leave_with_their_peer() {
        let mut r: Ready<u8, u64> = Ready::new();
        r.insert(11, 7, (11..21).collect(), 100);
        r.insert(21, 8, (21..25).collect(), 40);
        assert_eq!((r.items(), r.bytes()), (14, 140));
        assert!(r.take_at(1).is_none(), "heights 1..11 come first");
        assert_eq!(r.forget_peer(&7), vec![(11, 10)]);
        assert_eq!((r.items(), r.bytes()), (4, 40));
        let (start, got) = r.take_at(21).unwrap();
        assert_eq!((start, got.peer, got.items.len()), (21, 8, 4));
        assert!(r.is_empty());
    }
}
