//! What an operator watches: counters, gauges and histograms in Prometheus's text format
//! (`/metrics`, see [`crate::operations`]), through the `prometheus-client` crate.
//!
//! One registry per process ([`metrics`]): the engine, the model thread and the runtime
//! record into it from wherever they are, without a handle passed around. Labels are
//! platforms, kinds of event, star counts and risk categories: never a person, a chat or
//! a word of what anyone wrote.

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlatformKind {
    pub platform: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Stars {
    pub stars: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Category {
    pub category: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Queue {
    pub queue: String,
}

/// Every metric Kindred keeps.
pub struct Metrics {
    registry: Registry,
    /// Platform events handed to the engine, by platform and kind (message, command, …).
    pub received: Family<PlatformKind, Counter>,
    /// Messages handed to a platform to send, by platform and kind (reply, notice, …).
    pub sent: Family<PlatformKind, Counter>,
    /// Sends the platform refused for good.
    pub send_failures: Counter,
    /// Presses, commands and files not carried out because a person sent too many in a
    /// minute (`conversation.max_actions_per_minute`).
    pub held_back: Counter,
    /// From a person's message reaching the engine to its reply being handed to the
    /// platform, in seconds.
    pub reply_latency: Histogram,
    /// How many events wait, by queue: `events` (intake), `model` (replies waiting for
    /// the model thread), `people` (people with a queue of their own).
    pub queue_depth: Family<Queue, Gauge>,
    /// Replies decoded together in one batch.
    pub model_batch_size: Histogram,
    /// Tokens the model generated.
    pub model_tokens: Counter,
    /// Seconds the model spent generating (tokens / seconds is the throughput).
    pub model_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    /// Replies the model failed to give (an error, a panic or a timeout).
    pub model_failures: Counter,
    /// Ratings given, by stars.
    pub ratings: Family<Stars, Counter>,
    /// Crisis responses sent, by risk category.
    pub crisis_detections: Family<Category, Counter>,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("kindred");
        let received = Family::<PlatformKind, Counter>::default();
        registry.register(
            "events_received",
            "Platform events handed to the engine, by platform and kind",
            received.clone(),
        );
        let sent = Family::<PlatformKind, Counter>::default();
        registry.register(
            "messages_sent",
            "Messages handed to a platform to send, by platform and kind",
            sent.clone(),
        );
        let send_failures = Counter::default();
        registry.register(
            "send_failures",
            "Sends a platform refused for good",
            send_failures.clone(),
        );
        let held_back = Counter::default();
        registry.register(
            "actions_held_back",
            "Presses, commands and files not carried out because a person sent too many in a minute",
            held_back.clone(),
        );
        let reply_latency =
            Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]);
        registry.register(
            "reply_latency_seconds",
            "From a person's message reaching the engine to its reply being handed to the platform",
            reply_latency.clone(),
        );
        let queue_depth = Family::<Queue, Gauge>::default();
        registry.register(
            "queue_depth",
            "Work waiting, by queue (events: intake; model: replies waiting for the model; people: people with a queue of their own)",
            queue_depth.clone(),
        );
        let model_batch_size = Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]);
        registry.register(
            "model_batch_size",
            "Replies decoded together in one batch",
            model_batch_size.clone(),
        );
        let model_tokens = Counter::default();
        registry.register(
            "model_tokens_generated",
            "Tokens the model generated",
            model_tokens.clone(),
        );
        let model_seconds = Counter::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "model_generation_seconds",
            "Seconds the model spent generating (rate of tokens over rate of this: tokens per second)",
            model_seconds.clone(),
        );
        let model_failures = Counter::default();
        registry.register(
            "model_failures",
            "Replies the model failed to give (error, panic or timeout)",
            model_failures.clone(),
        );
        let ratings = Family::<Stars, Counter>::default();
        registry.register("ratings", "Ratings given, by stars", ratings.clone());
        let crisis_detections = Family::<Category, Counter>::default();
        registry.register(
            "crisis_detections",
            "Crisis responses sent, by risk category",
            crisis_detections.clone(),
        );
        Self {
            registry,
            received,
            sent,
            send_failures,
            held_back,
            reply_latency,
            queue_depth,
            model_batch_size,
            model_tokens,
            model_seconds,
            model_failures,
            ratings,
            crisis_detections,
        }
    }

    /// Everything, in Prometheus's text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    pub fn event_received(&self, platform: &str, kind: &str) {
        self.received
            .get_or_create(&PlatformKind {
                platform: platform.to_string(),
                kind: kind.to_string(),
            })
            .inc();
    }

    pub fn message_sent(&self, platform: &str, kind: &str) {
        self.sent
            .get_or_create(&PlatformKind {
                platform: platform.to_string(),
                kind: kind.to_string(),
            })
            .inc();
    }

    pub fn set_queue_depth(&self, queue: &str, depth: usize) {
        self.queue_depth
            .get_or_create(&Queue {
                queue: queue.to_string(),
            })
            .set(depth as i64);
    }

    pub fn rated(&self, stars: crate::domain::Stars) {
        self.ratings
            .get_or_create(&Stars {
                stars: stars.to_string(),
            })
            .inc();
    }

    pub fn crisis_detected(&self, category: &str) {
        self.crisis_detections
            .get_or_create(&Category {
                category: category.to_string(),
            })
            .inc();
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}
