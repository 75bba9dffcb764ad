//! Prometheus metrics of a node, in the text exposition format served at `GET /metrics`.

use prometheus_client::encoding::{text::encode, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

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
    pub events_submitted: Family<KindLabel, Counter>,
    pub peers: Gauge,
    pub requests: Family<RequestLabels, Counter>,
    pub bytes_served: Family<ProtocolLabel, Counter>,
    pub request_latency_seconds: Family<ProtocolLabel, Histogram>,
    pub store_write_seconds: Histogram,
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
            events_submitted: Family::default(),
            peers: Gauge::default(),
            requests: Family::default(),
            bytes_served: Family::default(),
            request_latency_seconds: Family::new_with_constructor(latency_histogram),
            store_write_seconds: latency_histogram(),
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
