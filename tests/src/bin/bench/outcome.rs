//! What one scenario measured ([`Outcome`]): rates, latency, CPU and counters per
//! event, losses, and its JSON for the results file.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::counters::{Counts, Source};
use crate::redis_probe::RedisCalls;

/// The measured outcome of one scenario.
#[derive(Default, Clone)]
pub(crate) struct Outcome {
    /// The scenario's name.
    pub(crate) name: String,
    /// What the scenario is, or why it failed (`failed: ...`).
    pub(crate) note: String,
    /// Events the gateway (the receiver, for the baseline) accepted.
    pub(crate) accepted: u64,
    /// Accepted events per second of the producers' run.
    pub(crate) accepted_per_s: f64,
    /// Deliveries the accepted events call for (one per endpoint).
    pub(crate) expected_deliveries: u64,
    /// Requests that reached the receiver.
    pub(crate) delivered: u64,
    /// Requests that reached the receiver per second, from the first to the last.
    pub(crate) delivered_per_s: f64,
    /// How long the drain after the producers took.
    pub(crate) drain_s: f64,
    /// Median ingest-to-delivery latency.
    pub(crate) p50_ms: Option<f64>,
    /// 99th percentile of the latency.
    pub(crate) p99_ms: Option<f64>,
    /// 99.9th percentile of the latency.
    pub(crate) p999_ms: Option<f64>,
    /// The gateway's CPU time while measured.
    pub(crate) gateway_cpu_s: Option<f64>,
    /// Redis's CPU time while measured.
    pub(crate) redis_cpu_s: Option<f64>,
    /// Redis commands run while measured (`INFO commandstats`).
    pub(crate) redis_calls: Option<RedisCalls>,
    /// This process's (producers' and receiver's) CPU time while measured.
    pub(crate) bench_cpu_s: f64,
    /// Busy CPU of the machine not spent by the gateway, Redis or this process.
    pub(crate) other_cpu_s: f64,
    /// CPU time the hypervisor gave to others (steal) while measured.
    pub(crate) steal_s: f64,
    /// The gateway's CPU per event, in µs.
    pub(crate) gateway_us_per_event: Option<f64>,
    /// Redis's CPU per event, in µs.
    pub(crate) redis_us_per_event: Option<f64>,
    /// Batched script calls (`EVALSHA`) per event: how well group commit gathers.
    pub(crate) scripts_per_event: Option<f64>,
    /// Redis commands per event, those run inside scripts included.
    pub(crate) commands_per_event: Option<f64>,
    /// The gateway's peak resident set.
    pub(crate) peak_rss_mib: Option<f64>,
    /// Hardware counters while measured (see counters.rs).
    pub(crate) gateway_counts: Option<Counts>,
    /// Redis's hardware counters while measured.
    pub(crate) redis_counts: Option<Counts>,
    /// Accepted events that never reached an endpoint (counted per endpoint).
    pub(crate) lost: Option<u64>,
    /// Deliveries beyond the first of an event to an endpoint.
    pub(crate) duplicated: u64,
    /// Deliveries of events that were not accepted, or without a readable seq.
    pub(crate) unexpected: u64,
    /// Signatures the receiver checked (a sample).
    pub(crate) signatures_checked: u64,
    /// Signatures that did not verify.
    pub(crate) signatures_bad: u64,
    /// The producers' answers by status.
    pub(crate) statuses: BTreeMap<String, u64>,
    /// Rate over the same round's baseline rate.
    pub(crate) ratio: Option<f64>,
}

impl Outcome {
    /// Records what the rest of the machine did during the measurement.
    pub(crate) fn machine(&mut self, busy: (f64, f64)) {
        let ours =
            self.gateway_cpu_s.unwrap_or(0.0) + self.redis_cpu_s.unwrap_or(0.0) + self.bench_cpu_s;
        self.other_cpu_s = (busy.0 - ours).max(0.0);
        self.steal_s = busy.1;
    }

    /// Gateway and Redis CPU per event, over `events` events (delivered or accepted).
    pub(crate) fn per_event(&mut self, events: u64) {
        if events > 0 {
            let per = |cpu: Option<f64>| cpu.map(|c| c * 1e6 / events as f64);
            self.gateway_us_per_event = per(self.gateway_cpu_s);
            self.redis_us_per_event = per(self.redis_cpu_s);
            if let Some(calls) = self.redis_calls {
                self.scripts_per_event = Some(calls.scripts as f64 / events as f64);
                self.commands_per_event = Some(calls.commands as f64 / events as f64);
            }
        }
    }

    /// CPU of this process (producers and receiver) per delivered (or accepted) event.
    pub(crate) fn bench_us_per_event(&self) -> Option<f64> {
        let n = self.events();
        (n > 0).then(|| self.bench_cpu_s * 1e6 / n as f64)
    }

    /// The outcome as one entry of the JSON's `scenarios` (and `rounds`).
    pub(crate) fn json(&self) -> Value {
        json!({
            "scenario": self.name,
            "note": self.note,
            "accepted": self.accepted,
            "accepted_per_s": round(self.accepted_per_s),
            "expected_deliveries": self.expected_deliveries,
            "delivered": self.delivered,
            "delivered_per_s": round(self.delivered_per_s),
            "drain_s": round(self.drain_s),
            "latency_ms": {"p50": self.p50_ms.map(round), "p99": self.p99_ms.map(round), "p99_9": self.p999_ms.map(round)},
            "cpu_s": {"gateway": self.gateway_cpu_s.map(round), "redis": self.redis_cpu_s.map(round), "bench": round(self.bench_cpu_s)},
            "cpu_us_per_delivered": {"gateway": self.gateway_us_per_event.map(round), "redis": self.redis_us_per_event.map(round), "load_generator": self.bench_us_per_event().map(round)},
            "redis_per_delivered": {"script_calls": self.scripts_per_event.map(round), "commands": self.commands_per_event.map(round)},
            "hardware_counters": {"gateway": self.counts_json(self.gateway_counts), "redis": self.counts_json(self.redis_counts)},
            "machine_cpu_s": {"other_processes": round(self.other_cpu_s), "steal": round(self.steal_s)},
            "gateway_peak_rss_mib": self.peak_rss_mib.map(round),
            "lost": self.lost,
            "duplicated": self.duplicated,
            "unexpected": self.unexpected,
            "signatures": {"checked": self.signatures_checked, "bad": self.signatures_bad},
            "statuses": self.statuses,
            "ratio_to_baseline": self.ratio.map(round),
        })
    }
}

impl Outcome {
    /// Events the CPU and counters are divided by: delivered, or accepted when none were.
    fn events(&self) -> u64 {
        if self.delivered > 0 {
            self.delivered
        } else {
            self.accepted
        }
    }

    /// Instructions per event of one process's counts.
    fn instructions_per_event(&self, counts: Option<Counts>) -> Option<f64> {
        let n = self.events();
        counts
            .filter(|_| n > 0)
            .map(|c| c.instructions as f64 / n as f64)
    }

    /// Thousands of instructions per event of one process's counts (the table's unit).
    pub(crate) fn kinstructions_per_event(&self, counts: Option<Counts>) -> Option<f64> {
        self.instructions_per_event(counts).map(|i| i / 1e3)
    }

    /// Counts as JSON: totals, per delivered request (per accepted event when none were
    /// delivered, as `cpu_us_per_delivered`) and per cycle.
    fn counts_json(&self, counts: Option<Counts>) -> Value {
        counts.map_or(Value::Null, |c| {
            json!({
                "instructions": c.instructions,
                "cycles": (c.source == Source::Perf).then_some(c.cycles),
                "source": c.source.name(),
                "instructions_per_delivered": self.instructions_per_event(Some(c)).map(round),
                "user_only": c.user_only,
                "ipc": c.ipc().map(round),
            })
        })
    }
}

/// `x` rounded to three decimals, for the JSON.
pub(crate) fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
