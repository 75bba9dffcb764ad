//! The mempool: signed events waiting to be proposed, bounded in count and bytes,
//! deduplicated by event id, validated on insert, selected oldest first.
//!
//! Events stay in the pool while they are proposed ([`Mempool::take`] does not remove them);
//! they leave when a finalized block includes them ([`Mempool::remove_included`]). Events of a
//! proposal that was not finalized can be put back ahead of newer ones with
//! [`Mempool::reinsert`].

use std::collections::{BTreeMap, HashMap};

use crate::chain::{Encode, EventError, EventId, SignedEvent};

/// Bounds of a mempool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MempoolConfig {
    /// Most events held.
    pub max_events: usize,
    /// Most bytes held (sum of the events' canonical encodings).
    pub max_bytes: usize,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig {
            max_events: 50_000,
            max_bytes: 64 << 20,
        }
    }
}

/// Why an event is not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    #[error("invalid event: {0}")]
    Invalid(#[from] EventError),
    #[error("event {0} is already in the mempool")]
    Duplicate(EventId),
    #[error("event {0} is already in the chain")]
    AlreadyInChain(EventId),
    #[error(
        "mempool full: {events} events and {bytes} bytes held, an event of {size} bytes does not \
         fit the limits of {max_events} events and {max_bytes} bytes"
    )]
    Full {
        events: usize,
        bytes: usize,
        size: usize,
        max_events: usize,
        max_bytes: usize,
    },
}

#[derive(Clone, Debug)]
struct Entry {
    event: SignedEvent,
    size: usize,
}

/// Pending events in arrival order.
#[derive(Clone, Debug)]
pub struct Mempool {
    config: MempoolConfig,
    /// Position → event. Positions grow at the back and shrink at the front (reinsertions).
    queue: BTreeMap<i64, Entry>,
    positions: HashMap<EventId, i64>,
    bytes: usize,
    front: i64,
    back: i64,
}

impl Mempool {
    pub fn new(config: MempoolConfig) -> Self {
        Mempool {
            config,
            queue: BTreeMap::new(),
            positions: HashMap::new(),
            bytes: 0,
            front: 0,
            back: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Bytes held (sum of the events' encodings).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn contains(&self, id: &EventId) -> bool {
        self.positions.contains_key(id)
    }

    /// Validates `event` and appends it. `in_chain` tells whether an event id is already in a
    /// finalized block. Returns the event id.
    pub fn insert(
        &mut self,
        event: SignedEvent,
        in_chain: impl Fn(&EventId) -> bool,
    ) -> Result<EventId, MempoolError> {
        let (id, size) = self.admit(&event, &in_chain)?;
        self.back += 1;
        self.place(self.back, id, event, size);
        Ok(id)
    }

    /// Puts back the events of a proposal that was not finalized, ahead of every other event
    /// and in their order. Events that are held, in the chain, invalid, or that no longer fit
    /// are skipped. Returns how many were put back.
    pub fn reinsert(
        &mut self,
        events: Vec<SignedEvent>,
        in_chain: impl Fn(&EventId) -> bool,
    ) -> usize {
        let admitted: Vec<_> = events
            .into_iter()
            .filter_map(|event| {
                let (id, size) = self.admit(&event, &in_chain).ok()?;
                // Reserve now so the next event's capacity check counts this one.
                self.bytes += size;
                self.positions.insert(id, i64::MIN);
                Some((id, event, size))
            })
            .collect();
        let count = admitted.len();
        for (id, event, size) in admitted.into_iter().rev() {
            self.bytes -= size;
            self.front -= 1;
            self.place(self.front, id, event, size);
        }
        count
    }

    fn admit(
        &self,
        event: &SignedEvent,
        in_chain: &impl Fn(&EventId) -> bool,
    ) -> Result<(EventId, usize), MempoolError> {
        let id = event.id();
        if self.positions.contains_key(&id) {
            return Err(MempoolError::Duplicate(id));
        }
        let size = event.encoded_len();
        if self.positions.len() >= self.config.max_events
            || self.bytes.saturating_add(size) > self.config.max_bytes
        {
            return Err(MempoolError::Full {
                events: self.positions.len(),
                bytes: self.bytes,
                size,
                max_events: self.config.max_events,
                max_bytes: self.config.max_bytes,
            });
        }
        if in_chain(&id) {
            return Err(MempoolError::AlreadyInChain(id));
        }
        event.validate()?;
        Ok((id, size))
    }

    fn place(&mut self, position: i64, id: EventId, event: SignedEvent, size: usize) {
        self.bytes += size;
        self.positions.insert(id, position);
        self.queue.insert(position, Entry { event, size });
    }

    /// The oldest events, in order, up to `max_events` events and `max_bytes` bytes, stopping
    /// at the first that does not fit (strict FIFO: a large event is not overtaken). Nothing is
    /// removed.
    pub fn take(&self, max_events: usize, max_bytes: usize) -> Vec<SignedEvent> {
        let mut bytes = 0usize;
        let mut out = Vec::new();
        for entry in self.queue.values() {
            if out.len() >= max_events || bytes.saturating_add(entry.size) > max_bytes {
                break;
            }
            bytes += entry.size;
            out.push(entry.event.clone());
        }
        out
    }

    /// Removes the events a finalized block included; returns how many were held.
    pub fn remove_included(&mut self, ids: &[EventId]) -> usize {
        let mut removed = 0;
        for id in ids {
            if let Some(position) = self.positions.remove(id) {
                if let Some(entry) = self.queue.remove(&position) {
                    self.bytes -= entry.size;
                }
                removed += 1;
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    fn events(n: u64) -> Vec<SignedEvent> {
        let source = testkit::key(9);
        (0..n).map(|i| testkit::event(&source, i, 1_000)).collect()
    }

    fn size() -> usize {
        events(1)[0].encode().len()
    }

    fn pool(max_events: usize) -> Mempool {
        Mempool::new(MempoolConfig {
            max_events,
            max_bytes: 1 << 20,
        })
    }

    fn none(_: &EventId) -> bool {
        false
    }

    #[test]
    fn takes_oldest_first_without_removing() {
        let mut pool = pool(10);
        for e in events(4) {
            pool.insert(e, none).unwrap();
        }
        assert_eq!(pool.take(3, usize::MAX), events(3));
        assert_eq!(pool.take(10, usize::MAX), events(4));
        assert_eq!(pool.len(), 4);
        assert_eq!(pool.bytes(), 4 * size());
    }

    #[test]
    fn take_stops_at_the_first_event_over_the_byte_budget() {
        let mut pool = pool(10);
        for e in events(4) {
            pool.insert(e, none).unwrap();
        }
        assert_eq!(pool.take(10, 2 * size() + 1), events(2));
        assert_eq!(pool.take(10, 0), vec![]);
    }

    #[test]
    fn rejects_a_duplicate() {
        let mut pool = pool(10);
        let e = events(1).remove(0);
        let id = pool.insert(e.clone(), none).unwrap();
        assert_eq!(id, e.id());
        assert_eq!(pool.insert(e, none), Err(MempoolError::Duplicate(id)));
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn rejects_an_invalid_event() {
        let mut pool = pool(10);
        let mut e = events(1).remove(0);
        e.event.actor = "mallory".into();
        assert!(matches!(
            pool.insert(e, none),
            Err(MempoolError::Invalid(EventError::Signature(_)))
        ));
        assert!(pool.is_empty());
    }

    #[test]
    fn rejects_an_event_already_in_the_chain() {
        let mut pool = pool(10);
        let e = events(1).remove(0);
        let id = e.id();
        assert_eq!(
            pool.insert(e, |x| *x == id),
            Err(MempoolError::AlreadyInChain(id))
        );
        assert!(pool.is_empty());
    }

    #[test]
    fn rejects_when_full_by_count_or_bytes() {
        let mut pool = pool(2);
        let mut all = events(3);
        pool.insert(all.remove(0), none).unwrap();
        pool.insert(all.remove(0), none).unwrap();
        assert!(matches!(
            pool.insert(all.remove(0), none),
            Err(MempoolError::Full {
                events: 2,
                max_events: 2,
                ..
            })
        ));
        let mut small = Mempool::new(MempoolConfig {
            max_events: 10,
            max_bytes: size() + 1,
        });
        let mut all = events(2);
        small.insert(all.remove(0), none).unwrap();
        assert!(matches!(
            small.insert(all.remove(0), none),
            Err(MempoolError::Full { events: 1, .. })
        ));
    }

    #[test]
    fn remove_included_frees_room_and_keeps_order() {
        let mut pool = pool(3);
        let all = events(4);
        for e in &all[..3] {
            pool.insert(e.clone(), none).unwrap();
        }
        let removed = pool.remove_included(&[all[1].id(), all[3].id()]);
        assert_eq!(removed, 1);
        assert_eq!(pool.len(), 2);
        assert_eq!(pool.bytes(), 2 * size());
        assert!(!pool.contains(&all[1].id()));
        pool.insert(all[3].clone(), none).unwrap();
        assert_eq!(
            pool.take(10, usize::MAX),
            vec![all[0].clone(), all[2].clone(), all[3].clone()]
        );
    }

    #[test]
    fn reinsert_puts_events_ahead_in_order_and_skips_held_chained_or_invalid() {
        let mut pool = pool(10);
        let all = events(6);
        pool.insert(all[4].clone(), none).unwrap();
        pool.insert(all[5].clone(), none).unwrap();
        let mut forged = all[3].clone();
        forged.event.actor = "mallory".into();
        let chained = all[2].id();
        let back = vec![
            all[0].clone(),
            all[1].clone(),
            all[2].clone(),
            forged,
            all[5].clone(),
        ];
        assert_eq!(pool.reinsert(back, |id| *id == chained), 2);
        assert_eq!(
            pool.take(10, usize::MAX),
            vec![
                all[0].clone(),
                all[1].clone(),
                all[4].clone(),
                all[5].clone()
            ]
        );
        assert_eq!(pool.bytes(), 4 * size());
        // A second reinsertion goes ahead of the first.
        pool.remove_included(&[all[0].id()]);
        assert_eq!(pool.reinsert(vec![all[0].clone()], none), 1);
        assert_eq!(pool.take(1, usize::MAX), vec![all[0].clone()]);
    }

    #[test]
    fn reinsert_stops_at_capacity() {
        let mut pool = pool(3);
        let all = events(5);
        pool.insert(all[4].clone(), none).unwrap();
        assert_eq!(pool.reinsert(all[..4].to_vec(), none), 2);
        assert_eq!(pool.len(), 3);
        assert_eq!(
            pool.take(10, usize::MAX),
            vec![all[0].clone(), all[1].clone(), all[4].clone()]
        );
    }
}
