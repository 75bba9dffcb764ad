//! Genesis: the chain's first block and its validator-set schedule.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::block::{Block, Commit, FinalizedBlock};
use super::chain_id::ChainId;
use super::hash::Hash;
use super::header::{BlockHeader, PROTOCOL_VERSION};
use super::validator::ValidatorSet;
use crate::proof::mmr::MmrPeaks;

/// What every node of a chain agrees on before block 0: the chain id, the genesis time, the
/// first validator set and the scheduled hand-overs (height → the set that signs blocks from
/// that height on). The genesis block is derived from it, so its hash identifies the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    pub chain_id: ChainId,
    pub genesis_time_ms: u64,
    pub validators: ValidatorSet,
    #[serde(default)]
    pub schedule: BTreeMap<u64, ValidatorSet>,
}

/// Why a genesis is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    #[error(
        "a hand-over is scheduled at height 0; the genesis set signs block 0's successor first"
    )]
    HandOverAtGenesis,
    #[error("genesis file: {0}")]
    Parse(String),
}

impl Genesis {
    pub fn new(
        chain_id: ChainId,
        genesis_time_ms: u64,
        validators: ValidatorSet,
        schedule: BTreeMap<u64, ValidatorSet>,
    ) -> Result<Genesis, GenesisError> {
        let genesis = Genesis {
            chain_id,
            genesis_time_ms,
            validators,
            schedule,
        };
        genesis.check()?;
        Ok(genesis)
    }

    fn check(&self) -> Result<(), GenesisError> {
        if self.schedule.contains_key(&0) {
            return Err(GenesisError::HandOverAtGenesis);
        }
        Ok(())
    }

    pub fn from_json(json: &str) -> Result<Genesis, GenesisError> {
        let genesis: Genesis =
            serde_json::from_str(json).map_err(|e| GenesisError::Parse(e.to_string()))?;
        genesis.check()?;
        Ok(genesis)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The set that signs the block at `height` (the latest scheduled set at or below it).
    pub fn validators_at(&self, height: u64) -> &ValidatorSet {
        self.schedule
            .range(..=height)
            .next_back()
            .map_or(&self.validators, |(_, set)| set)
    }

    /// The genesis block: height 0, no events, empty MMR, proposed by the first validator.
    /// Its commit is empty: block 0 is trusted by definition, never verified by signatures.
    pub fn block(&self) -> FinalizedBlock {
        let validators = self.validators_at(0);
        let next = self.validators_at(1);
        let header = BlockHeader {
            version: PROTOCOL_VERSION,
            chain_id: self.chain_id.clone(),
            height: 0,
            parent_hash: Hash::ZERO,
            timestamp_ms: self.genesis_time_ms,
            events_root: Hash::ZERO,
            event_count: 0,
            mmr_root: MmrPeaks::new().root(),
            mmr_leaf_count: 0,
            validators_hash: validators.hash(),
            next_validators_hash: next.hash(),
            proposer: validators.proposer(0, 0).key.clone(),
        };
        let commit = Commit {
            height: 0,
            round: 0,
            block_hash: header.hash(),
            signatures: Vec::new(),
        };
        FinalizedBlock {
            next_validators: header.hands_over().then(|| next.clone()),
            block: Block {
                header,
                events: Vec::new(),
            },
            commit,
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::testkit;

    fn genesis() -> Genesis {
        let mut schedule = BTreeMap::new();
        schedule.insert(10, testkit::validator_set(&testkit::keys(10, 3)));
        Genesis::new(
            ChainId::new("g").unwrap(),
            1_000,
            testkit::validator_set(&testkit::keys(0, 4)),
            schedule,
        )
        .unwrap()
    }

    #[test]
    fn schedule_selects_the_set_per_height() {
        let g = genesis();
        assert_eq!(g.validators_at(0).len(), 4);
        assert_eq!(g.validators_at(9).len(), 4);
        assert_eq!(g.validators_at(10).len(), 3);
        assert_eq!(g.validators_at(u64::MAX).len(), 3);
    }

    #[test]
    fn genesis_block_is_deterministic_and_round_trips_as_json() {
        let g = genesis();
        assert_eq!(g.block(), g.block());
        let back = Genesis::from_json(&g.to_json()).unwrap();
        assert_eq!(
            back.block().block.header.hash(),
            g.block().block.header.hash()
        );
    }

    #[test]
    fn rejects_a_hand_over_at_height_zero() {
        let mut g = genesis();
        g.schedule.insert(0, g.validators.clone());
        assert_eq!(
            Genesis::from_json(&g.to_json()),
            Err(GenesisError::HandOverAtGenesis)
        );
    }
}
