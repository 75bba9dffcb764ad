//! An in-memory [`ChainStore`]: typed maps behind one lock, with the same append rules as the
//! on-disk store. For tests, tools and the testing paths; nothing survives the process.

use std::collections::{BTreeMap, HashMap};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::append::{plan, plan_snapshot};
use super::{ChainStore, EventLocation, Head, StoreError};
use crate::chain::{BlockHash, EventId, FinalizedBlock, Hash, TrustedHeader, ValidatorSet};
use crate::protocol::snapshot::Snapshot;

#[derive(Debug, Default)]
struct Tables {
    head: Option<Head>,
    headers: BTreeMap<u64, TrustedHeader>,
    blocks: BTreeMap<u64, FinalizedBlock>,
    heights: HashMap<BlockHash, u64>,
    events: HashMap<EventId, EventLocation>,
    mmr_nodes: HashMap<(u8, u64), Hash>,
    /// Hand-overs: announcing height → the set that signs from the next height on.
    validator_sets: BTreeMap<u64, ValidatorSet>,
    meta: HashMap<String, Vec<u8>>,
}

/// A [`ChainStore`] in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: RwLock<Tables>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    // Appends validate before they write and writing cannot panic, so a poisoned lock still
    // guards consistent maps: recover it instead of failing every later call.
    fn read(&self) -> RwLockReadGuard<'_, Tables> {
        self.tables.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Tables> {
        self.tables.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Up to `count` consecutive values from `start`.
fn consecutive<T: Clone>(map: &BTreeMap<u64, T>, start: u64, count: u32) -> Vec<T> {
    map.range(start..)
        .zip(start..)
        .take_while(|((height, _), expected)| *height == expected)
        .take(count as usize)
        .map(|((_, value), _)| value.clone())
        .collect()
}

impl ChainStore for MemoryStore {
    fn head(&self) -> Result<Option<Head>, StoreError> {
        Ok(self.read().head.clone())
    }

    fn append(&self, blocks: &[FinalizedBlock]) -> Result<(), StoreError> {
        let mut t = self.write();
        let Some(plan) = plan(t.head.as_ref(), blocks)? else {
            return Ok(());
        };
        for p in &plan.blocks {
            t.headers.insert(p.height, p.block.trusted_header());
            t.blocks.insert(p.height, p.block.clone());
            t.heights.insert(p.hash, p.height);
            for (id, location) in p.events() {
                t.events.entry(*id).or_insert(location);
            }
            for &(level, index, node) in &p.mmr_nodes {
                t.mmr_nodes.insert((level, index), node);
            }
            if let Some(set) = &p.block.next_validators {
                t.validator_sets.insert(p.height, set.clone());
            }
        }
        t.head = Some(plan.head);
        Ok(())
    }

    fn install_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let mut t = self.write();
        let plan = plan_snapshot(t.head.as_ref(), snapshot)?;
        t.headers.insert(plan.height, plan.header.clone());
        t.heights.insert(plan.hash, plan.height);
        for &(level, index, node) in &plan.mmr_nodes {
            t.mmr_nodes.insert((level, index), node);
        }
        t.validator_sets
            .insert(plan.height, plan.next_validators.clone());
        t.head = Some(plan.head);
        Ok(())
    }

    fn header(&self, height: u64) -> Result<Option<TrustedHeader>, StoreError> {
        Ok(self.read().headers.get(&height).cloned())
    }

    fn headers(&self, start: u64, count: u32) -> Result<Vec<TrustedHeader>, StoreError> {
        Ok(consecutive(&self.read().headers, start, count))
    }

    fn block(&self, height: u64) -> Result<Option<FinalizedBlock>, StoreError> {
        Ok(self.read().blocks.get(&height).cloned())
    }

    fn blocks(&self, start: u64, count: u32) -> Result<Vec<FinalizedBlock>, StoreError> {
        Ok(consecutive(&self.read().blocks, start, count))
    }

    fn height_of(&self, hash: &BlockHash) -> Result<Option<u64>, StoreError> {
        Ok(self.read().heights.get(hash).copied())
    }

    fn event_location(&self, id: &EventId) -> Result<Option<EventLocation>, StoreError> {
        Ok(self.read().events.get(id).copied())
    }

    fn mmr_node(&self, level: u8, index: u64) -> Result<Option<Hash>, StoreError> {
        Ok(self.read().mmr_nodes.get(&(level, index)).copied())
    }

    fn validators_for(&self, height: u64) -> Result<Option<ValidatorSet>, StoreError> {
        Ok(self
            .read()
            .validator_sets
            .range(..height)
            .next_back()
            .map(|(_, set)| set.clone()))
    }

    fn lowest_height(&self) -> Result<u64, StoreError> {
        let t = self.read();
        Ok(match t.blocks.keys().next() {
            Some(&first) => first,
            // Started from a snapshot, no block since: its header's height.
            None => t.head.as_ref().map_or(0, |h| h.height),
        })
    }

    fn get_meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.read().meta.get(key).cloned())
    }

    fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write().meta.insert(key.to_owned(), value.to_vec());
        Ok(())
    }
}
