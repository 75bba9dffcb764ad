//! The native full node: consensus, mempool, storage and network glued by one event loop,
//! plus its HTTP API, metrics, configuration and the local devnet.

pub mod api;
pub mod cli;
pub mod config;
pub mod consensus;
pub mod devnet;
pub mod dishonest;
pub mod gen_chain;
pub mod keys;
pub mod light;
pub mod mempool;
pub mod metrics;
pub mod serve;
pub mod service;
pub mod sync_driver;
pub mod warp;

/// Milliseconds since the Unix epoch, from the system clock (the one place the node reads it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Installs the `tracing` subscriber (human-readable, to stderr) with an `EnvFilter`-style
/// filter such as `info` or `headway=debug,libp2p=info`. Safe to call more than once.
pub fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
