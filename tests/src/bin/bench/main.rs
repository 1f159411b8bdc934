//! End-to-end benchmark of the gateway (issue 5), run by `scripts/bench.sh`.
//!
//! The gateway runs as a separate process (a release build of the `gateway`
//! binary) so that its CPU time and peak RSS can be read from `/proc`. This
//! process holds the closed-loop producers and the receiver: the receiver
//! counts requests, checks the Standard Webhooks signature on a sample, and
//! computes ingest-to-delivery latency from the `sent_at_ns` each event carries.
//!
//! Scenarios, side by side: the bare baseline (producers post straight to the
//! receiver), the gateway with one endpoint and no plugin, with the
//! `compose-template` plugin, a 4-endpoint fan-out, ingest alone (workers off),
//! and drain alone (the ingest-alone backlog delivered by a fresh gateway with
//! workers on, producers off). Every gateway scenario gets a Redis of its own
//! (redis_probe.rs says why).
//!
//! Options: `bench --help`, or `HELP` in options.rs.
//!
//! Modules: options.rs (the command line), scenarios.rs (each scenario and a round of
//! them), producers.rs (the load generator), receiver.rs (the receiver and what it saw),
//! gateway_process.rs (the gateway as a child process), redis_probe.rs (a scenario's
//! Redis, its CPU and commands), measure.rs (CPU, RSS and the clock from `/proc`),
//! counters.rs and callgrind.rs (instructions per event), outcome.rs (one scenario's
//! figures and JSON), report.rs (the tables and the rest of the JSON), bare_http.rs (the
//! bare HTTP/1 client and server the producers and receiver use).

use std::time::Duration;

use anyhow::Result;
use serde_json::json;

mod bare_http;
mod callgrind;
mod counters;
mod gateway_process;
mod measure;
mod options;
mod outcome;
mod producers;
mod receiver;
mod redis_probe;
mod report;
mod scenarios;

use options::parse_options;
use outcome::Outcome;
use producers::PAD_BYTES;
use redis_probe::redis_server_version;
use report::{
    best_of_rounds, counters_table, machine, medians, plugin_line, set_ratios, spread_table, table,
};
use scenarios::{paced_rate, run_round, Bench};

/// The load generator and receiver share the machine with the gateway: the same allocator
/// as the gateway (mimalloc 2, see tests/Cargo.toml) keeps their CPU per event low.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<()> {
    let options = parse_options()?;
    if let Some(dir) = options.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(4096)
        .build()?;
    let mut bench = Bench {
        options: options.clone(),
        http,
        run_id: ulid::Ulid::new().to_string().to_lowercase(),
    };
    let mut rounds: Vec<Vec<Outcome>> = Vec::new();
    let mut round_options = options.clone();
    for round in 0..options.repeat {
        if options.repeat > 1 {
            eprintln!("bench: round {} of {}", round + 1, options.repeat);
        }
        let mut outcomes = run_round(&mut bench, &round_options).await;
        set_ratios(&mut outcomes);
        // Every later round paces at the rate the first one chose, so the paced runs
        // offer the same load and their latencies compare.
        if round_options.rate.is_none() {
            round_options.rate = paced_rate(&outcomes);
        }
        rounds.push(outcomes);
    }
    let outcomes = medians(&rounds);
    let plugin = options
        .plugin_bench
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|text| {
            json!({
                "compose_template_fresh_instance": plugin_line(&text, "invoke compose-template"),
                "near_empty_call": plugin_line(&text, "validate_config"),
                "native": plugin_line(&text, "same logic, native"),
                "output": text,
            })
        });
    let report = json!({
        "date": std::env::var("BENCH_DATE").unwrap_or_default(),
        "command": std::env::var("BENCH_COMMAND").unwrap_or_default(),
        "machine": machine(),
        "redis": match &options.redis_url {
            Some(url) => json!({"server": "shared", "url": url}),
            None => json!({
                "server": "private per scenario",
                "persistence": options.redis_persistence.name(),
                "version": redis_server_version(),
            }),
        },
        "duration_s": options.duration.as_secs_f64(),
        "concurrency": options.concurrency,
        "event_bytes": PAD_BYTES + 100,
        "scenarios": outcomes.iter().map(Outcome::json).collect::<Vec<_>>(),
        "repeat": options.repeat,
        "best_of_rounds": best_of_rounds(&rounds),
        "rounds": rounds
            .iter()
            .map(|round| round.iter().map(Outcome::json).collect::<Vec<_>>())
            .collect::<Vec<_>>(),
        "plugin_microbench": plugin,
    });
    std::fs::write(&options.out, serde_json::to_string_pretty(&report)?)?;
    println!("{}", table(&outcomes));
    if options.repeat > 1 {
        println!("{}", spread_table(&rounds));
    }
    if let Some(counters) = counters_table(&outcomes) {
        println!("{counters}");
    }
    println!(
        "delivered/s: requests that reached the receiver per second from the first request to the last \
         (fan-out counts each endpoint); ingest-only: CPU per accepted event; other CPU s: busy CPU of \
         the machine not used by the gateway, Redis or the load generator during the scenario (interference); \
         Redis scripts/ev: batched script calls (EVALSHA) per event (a delivered event makes two calls, so 2 / this is the mean batch size); \
         × baseline: delivered/s (accepted/s for ingest-only) over the baseline's."
    );
    println!("JSON: {}", options.out.display());
    Ok(())
}
