//! Prometheus metrics of a node, in the text exposition format served at `GET /metrics`.

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// A gauge holding a float (progress %, blocks/s).
pub type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabel {
    pub protocol: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub protocol: String,
    /// `served`, or the rejection reason (`malformed`, `too_large`, `rate_limited`, ...).
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

/// All node metrics. Cheap to clone (every metric is an `Arc` inside).
#[derive(Clone)]
pub struct Metrics {
    pub head_height: Gauge,
    pub finalized_height: Gauge,
    pub blocks_produced: Counter,
    pub votes_signed: Family<KindLabel, Counter>,
    pub rounds_skipped: Counter,
    pub consensus_rejections: Family<KindLabel, Counter>,
    pub mempool_size: Gauge,
    /// Events of proposals that were not finalized, put back in the mempool.
    pub mempool_returned_events: Counter,
    pub events_submitted: Family<KindLabel, Counter>,
    pub peers: Gauge,
    pub requests: Family<RequestLabels, Counter>,
    pub bytes_served: Family<ProtocolLabel, Counter>,
    pub request_latency_seconds: Family<ProtocolLabel, Histogram>,
    pub store_write_seconds: Histogram,
    /// Block sync (`node::sync_driver`): the EVM syncer's values.
    pub sync_current_block: Gauge,
    pub sync_target_block: Gauge,
    pub sync_progress_percent: FloatGauge,
    pub sync_blocks_per_second: FloatGauge,
    /// 1 for the current sync state (`determining`, `syncing`, `synced`, `stopped`), else 0.
    pub sync_state: Family<KindLabel, Gauge>,
    pub sync_downloaded_headers: Counter,
    pub sync_downloaded_bodies: Counter,
    pub sync_downloaded_bytes: Counter,
    pub sync_validated_blocks: Counter,
    pub sync_validation_errors: Counter,
    pub sync_written_blocks: Counter,
    pub sync_reorgs: Counter,
    pub sync_requests: Counter,
    pub sync_errors: Counter,
    pub sync_timeouts: Counter,
    pub sync_peers_reported: Counter,
    /// Conflicts between two finalized chains seen (each stops sync).
    pub sync_forks: Counter,
    pub sync_signatures_checked_ahead: Counter,
    pub sync_download_seconds: Histogram,
    pub sync_validation_seconds: Histogram,
    pub sync_check_ahead_seconds: Histogram,
    pub sync_write_seconds: Histogram,
    registry: std::sync::Arc<Registry>,
}

fn latency_histogram() -> Histogram {
    // 50 µs .. ~3.3 s
    Histogram::new(exponential_buckets(0.000_05, 2.0, 17))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("headway");
        let m = Metrics {
            head_height: Gauge::default(),
            finalized_height: Gauge::default(),
            blocks_produced: Counter::default(),
            votes_signed: Family::default(),
            rounds_skipped: Counter::default(),
            consensus_rejections: Family::default(),
            mempool_size: Gauge::default(),
            mempool_returned_events: Counter::default(),
            events_submitted: Family::default(),
            peers: Gauge::default(),
            requests: Family::default(),
            bytes_served: Family::default(),
            request_latency_seconds: Family::new_with_constructor(latency_histogram),
            store_write_seconds: latency_histogram(),
            sync_current_block: Gauge::default(),
            sync_target_block: Gauge::default(),
            sync_progress_percent: FloatGauge::default(),
            sync_blocks_per_second: FloatGauge::default(),
            sync_state: Family::default(),
            sync_downloaded_headers: Counter::default(),
            sync_downloaded_bodies: Counter::default(),
            sync_downloaded_bytes: Counter::default(),
            sync_validated_blocks: Counter::default(),
            sync_validation_errors: Counter::default(),
            sync_written_blocks: Counter::default(),
            sync_reorgs: Counter::default(),
            sync_requests: Counter::default(),
            sync_errors: Counter::default(),
            sync_timeouts: Counter::default(),
            sync_peers_reported: Counter::default(),
            sync_forks: Counter::default(),
            sync_signatures_checked_ahead: Counter::default(),
            sync_download_seconds: latency_histogram(),
            sync_validation_seconds: latency_histogram(),
            sync_check_ahead_seconds: latency_histogram(),
            sync_write_seconds: latency_histogram(),
            registry: std::sync::Arc::new(Registry::default()),
        };
        registry.register(
            "head_height",
            "Height of the highest stored block",
            m.head_height.clone(),
        );
        registry.register(
            "finalized_height",
            "Height of the highest finalized block",
            m.finalized_height.clone(),
        );
        registry.register(
            "blocks_produced",
            "Blocks this node proposed that were finalized",
            m.blocks_produced.clone(),
        );
        registry.register(
            "votes_signed",
            "Votes signed by this validator, by kind",
            m.votes_signed.clone(),
        );
        registry.register(
            "rounds_skipped",
            "Consensus rounds that ended without a decision",
            m.rounds_skipped.clone(),
        );
        registry.register(
            "consensus_rejections",
            "Proposals and votes rejected, by reason",
            m.consensus_rejections.clone(),
        );
        registry.register(
            "mempool_size",
            "Events waiting in the mempool",
            m.mempool_size.clone(),
        );
        registry.register(
            "mempool_returned_events",
            "Events of proposals that were not finalized, put back in the mempool",
            m.mempool_returned_events.clone(),
        );
        registry.register(
            "events_submitted",
            "Events submitted, by outcome",
            m.events_submitted.clone(),
        );
        registry.register("peers", "Connected, handshaken peers", m.peers.clone());
        registry.register(
            "requests",
            "Inbound requests by protocol and outcome",
            m.requests.clone(),
        );
        registry.register(
            "bytes_served",
            "Response bytes sent, by protocol",
            m.bytes_served.clone(),
        );
        registry.register(
            "request_latency_seconds",
            "Time to answer an inbound request",
            m.request_latency_seconds.clone(),
        );
        registry.register(
            "store_write_seconds",
            "Duration of one atomic store append",
            m.store_write_seconds.clone(),
        );
        m.register_sync(&mut registry);
        Metrics {
            registry: std::sync::Arc::new(registry),
            ..m
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    fn register_sync(&self, registry: &mut Registry) {
        let sync = registry.sub_registry_with_prefix("sync");
        sync.register(
            "current_block",
            "Highest block verified by sync",
            self.sync_current_block.clone(),
        );
        sync.register(
            "target_block",
            "Best head any connected peer claims",
            self.sync_target_block.clone(),
        );
        sync.register(
            "progress_percent",
            "Progress of this sync run towards the target, 0 to 100",
            self.sync_progress_percent.clone(),
        );
        sync.register(
            "blocks_per_second",
            "Blocks synced per second over the last seconds",
            self.sync_blocks_per_second.clone(),
        );
        sync.register(
            "state",
            "1 for the current sync state",
            self.sync_state.clone(),
        );
        let counters = [
            (
                "downloaded_headers",
                "Headers received (header-first)",
                &self.sync_downloaded_headers,
            ),
            (
                "downloaded_bodies",
                "Blocks received",
                &self.sync_downloaded_bodies,
            ),
            (
                "downloaded_bytes",
                "Bytes of headers and blocks received",
                &self.sync_downloaded_bytes,
            ),
            (
                "validated_blocks",
                "Blocks whose header and body passed every check",
                &self.sync_validated_blocks,
            ),
            (
                "validation_errors",
                "Headers or blocks rejected (each reported a peer)",
                &self.sync_validation_errors,
            ),
            (
                "written_blocks",
                "Synced blocks acknowledged as written",
                &self.sync_written_blocks,
            ),
            (
                "reorgs",
                "Reorganisations (finalized blocks never are: always 0)",
                &self.sync_reorgs,
            ),
            ("requests", "Sync requests sent", &self.sync_requests),
            (
                "errors",
                "Sync requests failed (timeouts, refusals, transport) and failed writes",
                &self.sync_errors,
            ),
            ("timeouts", "Sync requests timed out", &self.sync_timeouts),
            (
                "peers_reported",
                "Peers reported and banned for invalid data",
                &self.sync_peers_reported,
            ),
            (
                "forks",
                "Conflicts between two finalized chains seen (sync stops at the first)",
                &self.sync_forks,
            ),
            (
                "signatures_checked_ahead",
                "Commit signatures the sync machine found checked ahead (on a checker thread) \
                 and did not verify again",
                &self.sync_signatures_checked_ahead,
            ),
        ];
        for (name, help, counter) in counters {
            sync.register(name, help, counter.clone());
        }
        sync.register(
            "download_seconds",
            "Time from a sync request to its answer",
            self.sync_download_seconds.clone(),
        );
        sync.register(
            "validation_seconds",
            "Time to verify and apply one received range on the node loop (signatures found \
             checked ahead are not verified again)",
            self.sync_validation_seconds.clone(),
        );
        sync.register(
            "check_ahead_seconds",
            "Time to batch-verify one received range's signatures ahead, on a checker thread",
            self.sync_check_ahead_seconds.clone(),
        );
        sync.register(
            "write_seconds",
            "Duration of one synced batch's store append",
            self.sync_write_seconds.clone(),
        );
    }

    /// Marks `state` as the current sync state.
    pub fn set_sync_state(&self, state: &str) {
        for s in ["determining", "syncing", "synced", "stopped"] {
            self.sync_state
                .get_or_create(&KindLabel { kind: s.into() })
                .set(i64::from(s == state));
        }
    }

    pub fn request(&self, protocol: &str, outcome: &str) {
        self.requests
            .get_or_create(&RequestLabels {
                protocol: protocol.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_registered_metrics() {
        let m = Metrics::new();
        m.head_height.set(42);
        m.request("headers", "served");
        let text = m.encode();
        assert!(text.contains("headway_head_height 42"), "{text}");
        assert!(
            text.contains("headway_requests_total{protocol=\"headers\",outcome=\"served\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
