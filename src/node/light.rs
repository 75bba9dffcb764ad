//! The native light client: the shared [`Driver`] with headers in a [`MemoryLightStore`],
//! and `headway light`, which prints progress and can prove one event and exit.
//!
//! The handshake needs the chain id (taken from the checkpoint) and the exact genesis block
//! hash: peers refuse a Hello with another genesis. A checkpoint at height 0 *is* the genesis
//! block; for any other checkpoint pass the genesis hash (`--genesis-hash`).

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};

use crate::chain::EventId;
use crate::client::{ClientConfig, ClientError, Driver};
use crate::light::{MemoryLightStore, Phase};

/// Settings of [`LightDriver::start`]: the shared [`ClientConfig`].
pub type LightDriverConfig = ClientConfig;

/// The shared driver over an in-memory store.
pub struct LightDriver(Driver<MemoryLightStore>);

impl LightDriver {
    /// Starts the network (dialing the bootnodes) and the machine on an empty memory store.
    pub async fn start(config: LightDriverConfig) -> Result<LightDriver, ClientError> {
        Driver::start(config, MemoryLightStore::new())
            .await
            .map(LightDriver)
    }
}

impl Deref for LightDriver {
    type Target = Driver<MemoryLightStore>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for LightDriver {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// What `headway light` runs.
#[derive(Clone, Debug)]
pub struct LightRunOptions {
    pub driver: LightDriverConfig,
    /// Verify this event once caught up, print the result and exit.
    pub verify_event: Option<EventId>,
    /// How long to wait for the first peer and for catching up before giving up.
    pub sync_timeout: Duration,
}

/// Runs the light client: prints progress lines and each new verified head; with
/// `verify_event`, exits after verifying it.
pub async fn run_light(
    options: LightRunOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let mut driver = LightDriver::start(options.driver).await?;
    println!("light client {} started", driver.local_peer_id());
    tokio::pin!(shutdown);
    let mut printed: Option<u64> = None;
    let started = tokio::time::Instant::now();
    let mut caught_up = false;
    loop {
        driver.check_fatal()?;
        let status = driver.status().clone();
        if status.peers == 0 && started.elapsed() > options.sync_timeout {
            if let Some(e) = &status.last_error {
                bail!("{e}");
            }
            if status.verified_height.is_none() {
                bail!(
                    "no peer answered within {:?} (check --bootnode)",
                    options.sync_timeout
                );
            }
        }
        if status.verified_height != printed {
            if let Some(h) = status.verified_height {
                println!(
                    "verified head {h} ({}), target {}, {} peer(s), {:?}",
                    status
                        .verified_hash
                        .map(|h| h.to_string())
                        .unwrap_or_default(),
                    status.target_height,
                    status.peers,
                    status.phase,
                );
            }
            printed = status.verified_height;
        }
        if status.phase == Phase::Following && !caught_up {
            caught_up = true;
            if let Some(event_id) = options.verify_event {
                let v = driver
                    .verify_event(event_id, Duration::from_secs(60))
                    .await
                    .map_err(|e| anyhow!("event {event_id} not verified: {e}"))?;
                println!(
                    "event {} verified: block {} ({}), index {}",
                    v.event_id, v.height, v.block_hash, v.index
                );
                return Ok(());
            }
        }
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = driver.step() => {}
        }
    }
}
