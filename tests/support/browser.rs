//! Shared by the browser tests: the live native nodes the test script started
//! (scripts/browser-fixture.sh), described by the JSON in `HEADWAY_BROWSER_FIXTURE` at
//! compile time.

#![allow(dead_code)] // each test binary uses a part

use std::collections::BTreeMap;
use std::time::Duration;

use headway::chain::{Checkpoint, EventId, Hash};
use headway::client::{ClientConfig, ClientStatus, Driver, HeaderStore};
use libp2p::Multiaddr;
use serde::Deserialize;

/// Upper bound on any wait: generous, the chain is on loopback.
pub const LIMIT: Duration = Duration::from_secs(120);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fixture {
    pub checkpoint: String,
    pub genesis_hash: String,
    pub head_height: u64,
    pub hand_overs: Vec<u64>,
    pub honest_ws: String,
    pub honest_webrtc: String,
    /// Dishonest mode → the WebSocket address of a node in that mode.
    pub dishonest: BTreeMap<String, String>,
    /// A node serving a conflicting chain signed by the same validators.
    pub fork_ws: String,
    pub fork_at: u64,
    pub events: Vec<FixtureEvent>,
}

#[derive(Deserialize)]
pub struct FixtureEvent {
    pub height: u64,
    pub id: String,
}

pub fn fixture() -> Fixture {
    let Some(json) = option_env!("HEADWAY_BROWSER_FIXTURE") else {
        panic!(
            "HEADWAY_BROWSER_FIXTURE is not set: run the browser tests through scripts/test.sh, \
             which starts the native nodes first (scripts/browser-fixture.sh)"
        );
    };
    serde_json::from_str(json).expect("the fixture JSON parses")
}

impl Fixture {
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint::parse(&self.checkpoint).expect("the fixture checkpoint parses")
    }

    pub fn config(&self, bootnodes: &[&str]) -> ClientConfig {
        let bootnodes: Vec<Multiaddr> = bootnodes.iter().map(|a| a.parse().unwrap()).collect();
        let mut config = ClientConfig::new(self.checkpoint(), bootnodes);
        config.genesis_hash = Some(Hash::from_hex(&self.genesis_hash).unwrap());
        config
    }

    pub fn event(&self, i: usize) -> (u64, EventId) {
        let e = &self.events[i];
        (e.height, Hash::from_hex(&e.id).unwrap())
    }
}

/// Runs `driver` until it verified and stored everything up to the fixture's head.
pub async fn sync_to_head<S: HeaderStore>(driver: &mut Driver<S>, head: u64) -> ClientStatus {
    driver
        .run_until(
            |s| s.verified_height >= Some(head) && s.stored_height >= Some(head),
            LIMIT,
        )
        .await
        .unwrap_or_else(|e| panic!("sync to {head}: {e}"))
}
