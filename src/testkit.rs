//! Deterministic chains for tests, benchmarks and the devnet: valid headers, commits and
//! validator-set hand-overs, built without any network or clock.

use std::collections::BTreeMap;

use crate::chain::{
    AuditEvent, Block, BlockHash, BlockHeader, ChainId, Checkpoint, Commit, FinalizedBlock, Hash,
    Outcome, SignedEvent, TrustedHeader, Validator, ValidatorSet, PROTOCOL_VERSION,
};
use crate::crypto::ed25519::SigningKey;
use crate::proof::merkle::merkle_root;
use crate::proof::mmr::Mmr;

/// A deterministic signing key: `seed = BLAKE3("headway testkit key" ‖ u64_le(n))`.
pub fn key(n: u64) -> SigningKey {
    let mut h = blake3::Hasher::new();
    h.update(b"headway testkit key");
    h.update(&n.to_le_bytes());
    SigningKey::from_seed(h.finalize().as_bytes())
}

/// Keys `first..first + count`.
pub fn keys(first: u64, count: usize) -> Vec<SigningKey> {
    (first..first + count as u64).map(key).collect()
}

/// An equal-power (10 each) validator set over `keys`.
pub fn validator_set(keys: &[SigningKey]) -> ValidatorSet {
    let validators = keys
        .iter()
        .map(|k| Validator {
            key: k.public_key(),
            power: 10,
        })
        .collect();
    // Distinct deterministic keys, 1..=1024 of them, power 10 each: always a valid set.
    ValidatorSet::new(validators).expect("testkit validator set is valid")
}

/// A signed sample event number `n` from `source`.
pub fn event(source: &SigningKey, n: u64, time_ms: u64) -> SignedEvent {
    AuditEvent {
        kind: "document.read".into(),
        actor: format!("user-{}", n % 97),
        resource: format!("doc/{n}"),
        outcome: if n.is_multiple_of(5) {
            Outcome::Denied
        } else {
            Outcome::Success
        },
        metadata: n.to_le_bytes().to_vec(),
        time_ms,
        source: source.public_key(),
    }
    .sign(source)
}

/// Builds a valid chain block by block.
pub struct ChainBuilder {
    chain_id: ChainId,
    /// Keys of the set that signs the next block.
    signers: Vec<SigningKey>,
    set: ValidatorSet,
    /// Hand-overs: height → keys of the set that signs blocks from that height on.
    schedule: BTreeMap<u64, Vec<SigningKey>>,
    mmr: Mmr,
    parent: Option<(BlockHeader, BlockHash)>,
    next_time_ms: u64,
    interval_ms: u64,
    /// How many of the signing set sign each commit (default: all).
    signing: Option<usize>,
}

impl ChainBuilder {
    /// A chain whose genesis is signed by `validators` deterministic keys.
    pub fn new(chain_id: &str, validators: usize) -> Self {
        let signers = keys(0, validators);
        ChainBuilder {
            chain_id: ChainId::new(chain_id).expect("valid testkit chain id"),
            set: validator_set(&signers),
            signers,
            schedule: BTreeMap::new(),
            mmr: Mmr::default(),
            parent: None,
            next_time_ms: 1_700_000_000_000,
            interval_ms: 1_000,
            signing: None,
        }
    }

    /// From block `height` on, blocks are signed by `keys` (announced by block `height − 1`).
    pub fn hand_over_at(mut self, height: u64, keys: Vec<SigningKey>) -> Self {
        self.schedule.insert(height, keys);
        self
    }

    /// Only the first `count` validators (in set order) sign each commit.
    pub fn signing(mut self, count: usize) -> Self {
        self.signing = Some(count);
        self
    }

    pub fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }

    /// The set that signs the next block.
    pub fn current_set(&self) -> &ValidatorSet {
        &self.set
    }

    /// Keys of the set that signs the next block.
    pub fn current_keys(&self) -> &[SigningKey] {
        &self.signers
    }

    pub fn mmr(&self) -> &Mmr {
        &self.mmr
    }

    /// Time of the last block built, ms.
    pub fn last_time_ms(&self) -> u64 {
        self.next_time_ms.saturating_sub(self.interval_ms)
    }

    /// Height the next block gets.
    pub fn next_height(&self) -> u64 {
        self.parent.as_ref().map_or(0, |(h, _)| h.height + 1)
    }

    /// The header the next block would have, before it is signed (for tests that tamper).
    pub fn next_header(&self, events: &[SignedEvent]) -> BlockHeader {
        let height = self.next_height();
        let next_set = match self.schedule.get(&(height + 1)) {
            Some(keys) => validator_set(keys),
            None => self.set.clone(),
        };
        let ids: Vec<Hash> = events.iter().map(SignedEvent::id).collect();
        BlockHeader {
            version: PROTOCOL_VERSION,
            chain_id: self.chain_id.clone(),
            height,
            parent_hash: self.parent.as_ref().map_or(Hash::ZERO, |(_, h)| *h),
            timestamp_ms: self.next_time_ms,
            events_root: merkle_root(&ids),
            event_count: events.len() as u32,
            mmr_root: self.mmr.root(),
            mmr_leaf_count: self.mmr.leaf_count(),
            validators_hash: self.set.hash(),
            next_validators_hash: next_set.hash(),
            proposer: self.set.proposer(height, 0).key.clone(),
        }
    }

    /// Signs `header` with the configured share of the current set.
    pub fn commit_for(&self, header: &BlockHeader) -> Commit {
        let count = self.signing.unwrap_or(self.signers.len());
        let mut ordered: Vec<&SigningKey> = self.signers.iter().collect();
        ordered.sort_by_key(|k| self.set.index_of(&k.public_key()));
        Commit::sign(header, 0, &self.set, &ordered[..count.min(ordered.len())])
    }

    /// Builds, signs and appends the next block.
    pub fn next_block(&mut self, events: Vec<SignedEvent>) -> (Block, TrustedHeader) {
        let header = self.next_header(&events);
        let commit = self.commit_for(&header);
        let hash = header.hash();
        let height = header.height;
        let next_validators = if header.hands_over() {
            self.schedule
                .get(&(height + 1))
                .map(|keys| validator_set(keys))
        } else {
            None
        };
        self.mmr
            .append(&hash)
            .expect("testkit MMR stays far below its size limit");
        if let Some(keys) = self.schedule.get(&(height + 1)) {
            self.signers = keys.clone();
            self.set = validator_set(keys);
        }
        self.parent = Some((header.clone(), hash));
        self.next_time_ms += self.interval_ms;
        let trusted = TrustedHeader {
            header: header.clone(),
            commit,
            next_validators,
        };
        (Block { header, events }, trusted)
    }

    /// Builds, signs and appends the next block, as a full node stores it.
    pub fn next_finalized(&mut self, events: Vec<SignedEvent>) -> FinalizedBlock {
        let (block, trusted) = self.next_block(events);
        FinalizedBlock {
            block,
            commit: trusted.commit,
            next_validators: trusted.next_validators,
        }
    }

    /// Builds `count` empty blocks and returns their trusted headers.
    pub fn headers(&mut self, count: usize) -> Vec<TrustedHeader> {
        (0..count).map(|_| self.next_block(Vec::new()).1).collect()
    }

    /// A checkpoint for the last block built (whose successor the current set signs).
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        let (header, _) = self.parent.as_ref()?;
        Checkpoint::for_header(header, self.set.clone()).ok()
    }
}
