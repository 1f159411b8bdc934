//! Prometheus metrics, served at `GET /metrics`.
//!
//! One [`Metrics`] per gateway instance (not a global), so several gateways in
//! one test process do not mix their numbers. Labels are bounded: outcomes and
//! error codes, never ids. Queue depth is read from Redis at scrape time.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Latency buckets in seconds, from 1 ms to ~100 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 100.0,
];
/// Plugin-call buckets in seconds, from 5 µs to 1 s.
const PLUGIN_BUCKETS: &[f64] = &[
    0.000_005, 0.00001, 0.000_025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1,
    1.0,
];

/// The gateway's metrics.
pub struct Metrics {
    registry: Registry,
    /// Events accepted (202).
    pub events_accepted: IntCounter,
    /// Deliveries by outcome: `delivered`, `retry`, `failed`, `dropped`, `plugin_error`, `dead_lettered`.
    pub deliveries: IntCounterVec,
    /// HTTP attempt latency.
    pub attempt_seconds: Histogram,
    /// From ingest to a successful delivery.
    pub ingest_to_delivery_seconds: Histogram,
    /// Plugin calls by result code (`ok`, `drop`, `plugin_*`).
    pub plugin_calls: IntCounterVec,
    /// Plugin call duration.
    pub plugin_seconds: Histogram,
    /// Redis errors seen by workers and the API.
    pub redis_errors: IntCounter,
    /// Jobs by queue state: `ready`, `leased`, `delayed`, `dead`.
    pub queue_depth: IntGaugeVec,
}

fn build<T: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<T>,
) -> T {
    // Metric definitions are static and valid; a failure here is a programming error
    // caught by the unit test below, so fall back to an unregistered metric.
    let metric = match metric {
        Ok(m) => m,
        Err(e) => unreachable!("invalid metric definition: {e}"),
    };
    let _ = registry.register(Box::new(metric.clone()));
    metric
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new_custom(Some("gateway".into()), None).unwrap_or_default();
        let histogram = |name: &str, help: &str, buckets: &[f64]| {
            Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))
        };
        Self {
            events_accepted: build(
                &registry,
                IntCounter::new("events_accepted_total", "Events accepted (202)."),
            ),
            deliveries: build(
                &registry,
                IntCounterVec::new(
                    Opts::new("deliveries_total", "Delivery outcomes."),
                    &["outcome"],
                ),
            ),
            attempt_seconds: build(
                &registry,
                histogram(
                    "attempt_duration_seconds",
                    "HTTP attempt latency.",
                    LATENCY_BUCKETS,
                ),
            ),
            ingest_to_delivery_seconds: build(
                &registry,
                histogram(
                    "ingest_to_delivery_seconds",
                    "Time from ingest to a successful delivery.",
                    LATENCY_BUCKETS,
                ),
            ),
            plugin_calls: build(
                &registry,
                IntCounterVec::new(
                    Opts::new("plugin_invocations_total", "Plugin calls by result."),
                    &["code"],
                ),
            ),
            plugin_seconds: build(
                &registry,
                histogram(
                    "plugin_duration_seconds",
                    "Plugin call duration.",
                    PLUGIN_BUCKETS,
                ),
            ),
            redis_errors: build(
                &registry,
                IntCounter::new("redis_errors_total", "Redis errors."),
            ),
            queue_depth: build(
                &registry,
                IntGaugeVec::new(Opts::new("queue_jobs", "Jobs by queue state."), &["state"]),
            ),
            registry,
        }
    }
}

impl Metrics {
    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_registered_and_rendered() {
        let m = Metrics::default();
        m.events_accepted.inc();
        m.deliveries.with_label_values(&["delivered"]).inc();
        m.attempt_seconds.observe(0.01);
        m.ingest_to_delivery_seconds.observe(0.02);
        m.plugin_calls.with_label_values(&["ok"]).inc();
        m.plugin_seconds.observe(0.00002);
        m.redis_errors.inc();
        m.queue_depth.with_label_values(&["ready"]).set(3);
        let text = m.render();
        for name in [
            "gateway_events_accepted_total 1",
            "gateway_deliveries_total{outcome=\"delivered\"} 1",
            "gateway_attempt_duration_seconds_bucket",
            "gateway_ingest_to_delivery_seconds_count 1",
            "gateway_plugin_invocations_total{code=\"ok\"} 1",
            "gateway_plugin_duration_seconds_sum",
            "gateway_redis_errors_total 1",
            "gateway_queue_jobs{state=\"ready\"} 3",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
    }
}
