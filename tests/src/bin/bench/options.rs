//! The command line: the options, their defaults and their checks, and the text
//! `bench --help` prints ([`HELP`], the one list of the options and what they do).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use gateway_e2e::redis_server::Persistence;

/// What `bench --help` prints: every option, its default and what it does.
pub(crate) const HELP: &str = "\
End-to-end benchmark of the gateway, run by scripts/bench.sh.

Usage: bench [--OPTION VALUE]...

Options (all optional):
  --duration SECS (10): more than 0, at most 600; fractions allowed
  --concurrency N (64): 1 to 4096
  --gateway-bin PATH (target/release/gateway)
  --out FILE (bench-results/results.json)
  --redis-persistence none|everysec|always: the private servers' append-only file:
      none, or fsynced every second (the default) or before every answer; ignored
      with --redis-url
  --redis-url URL: use that Redis for every scenario instead, deleting each
      scenario's keys after it
  --scenarios a,b,...
  --plugin-bench FILE: output of the plugin micro-benchmark to include
  --drain-timeout SECS (60)
  --hold SECS (0): keep each gateway running that long after its drain, e.g. to
      attach a profiler
  --perf FILE: record the gateway with `perf record -g` while the producers run;
      gateway scenarios only
  --rate N: events/s of compose-template-paced; default half the rate the
      closed-loop compose-template scenario reached in the first round
  --repeat N (1, at most 20): run every scenario N times, round after round; the table shows
      each scenario's median run by rate, with that run's ratio to its own round's
      baseline, and a second table the spread, with each scenario's best run over
      the best baseline run, also in the JSON as best_of_rounds; failed runs are
      left out of both unless every run failed
  --counters on|off (on): attach `perf stat` to the gateway and to Redis for their
      instructions and cycles per event, see counters.rs; a table of its own and
      hardware_counters in the JSON
  --callgrind DIR: run the gateway under valgrind's callgrind and count its
      instructions there instead, for a VM without hardware counters; slow, so it
      requires --scenarios compose-template-paced and a --rate (30 is fine); see
      callgrind.rs
  --help, -h: print this and exit";

/// Every scenario, in the order they run.
pub(crate) const ALL_SCENARIOS: &[&str] = &[
    "baseline",
    "gateway",
    "compose-template",
    "compose-template-paced",
    "fanout-4",
    "ingest-only",
    "drain-only",
];

/// The command line, parsed (see [`HELP`]).
#[derive(Clone)]
pub(crate) struct Options {
    /// How long the producers run in each scenario (`--duration`).
    pub(crate) duration: Duration,
    /// Producer tasks, each with its own connection (`--concurrency`).
    pub(crate) concurrency: usize,
    /// The gateway binary to start (`--gateway-bin`).
    pub(crate) gateway_bin: PathBuf,
    /// Where the JSON goes; the gateways' logs go beside it (`--out`).
    pub(crate) out: PathBuf,
    /// A shared Redis for every scenario; `None`: a private server per scenario.
    pub(crate) redis_url: Option<String>,
    /// What the private servers write to disk.
    pub(crate) redis_persistence: Persistence,
    /// The scenarios to run (`--scenarios`), names from [`ALL_SCENARIOS`].
    pub(crate) scenarios: Vec<String>,
    /// Output of the plugin micro-benchmark to include (`--plugin-bench`).
    pub(crate) plugin_bench: Option<PathBuf>,
    /// How long to wait for the deliveries after the producers stop (`--drain-timeout`).
    pub(crate) drain_timeout: Duration,
    /// How long to keep each gateway running after its drain (`--hold`).
    pub(crate) hold: Duration,
    /// Record the gateway with `perf record` into this file (`--perf`).
    pub(crate) perf: Option<PathBuf>,
    /// Events/s of the paced scenario (`--rate`); `None`: from the closed loop's rate.
    pub(crate) rate: Option<f64>,
    /// Rounds of every scenario (`--repeat`).
    pub(crate) repeat: usize,
    /// Read hardware counters of the gateway and Redis with `perf stat`.
    pub(crate) counters: bool,
    /// Run the gateway under callgrind, its dumps in this directory (see callgrind.rs).
    pub(crate) callgrind: Option<PathBuf>,
}

/// Reads the options from the command line and checks them; `--help` or `-h` prints
/// [`HELP`] and exits.
pub(crate) fn parse_options() -> Result<Options> {
    let mut options = Options {
        duration: Duration::from_secs(10),
        concurrency: 64,
        gateway_bin: PathBuf::from("target/release/gateway"),
        out: PathBuf::from("bench-results/results.json"),
        redis_url: None,
        redis_persistence: Persistence::EverySecond,
        scenarios: ALL_SCENARIOS.iter().map(|s| s.to_string()).collect(),
        plugin_bench: None,
        drain_timeout: Duration::from_secs(60),
        hold: Duration::ZERO,
        perf: None,
        rate: None,
        repeat: 1,
        counters: true,
        callgrind: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            println!(
                "{HELP}\n\nScenarios, in the order they run: {}",
                ALL_SCENARIOS.join(",")
            );
            std::process::exit(0);
        }
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--duration" => options.duration = Duration::from_secs_f64(value.parse()?),
            "--concurrency" => options.concurrency = value.parse()?,
            "--gateway-bin" => options.gateway_bin = value.into(),
            "--out" => options.out = value.into(),
            "--redis-url" => options.redis_url = Some(value),
            "--redis-persistence" => {
                options.redis_persistence = Persistence::from_name(&value).with_context(|| {
                    format!("--redis-persistence: none, everysec or always, not {value}")
                })?
            }
            "--scenarios" => {
                options.scenarios = value.split(',').map(|s| s.trim().to_string()).collect();
                for s in &options.scenarios {
                    if !ALL_SCENARIOS.contains(&s.as_str()) {
                        bail!("unknown scenario {s}; known: {}", ALL_SCENARIOS.join(","));
                    }
                }
            }
            "--plugin-bench" => options.plugin_bench = Some(value.into()),
            "--drain-timeout" => options.drain_timeout = Duration::from_secs(value.parse()?),
            "--hold" => options.hold = Duration::from_secs(value.parse()?),
            "--perf" => options.perf = Some(value.into()),
            "--rate" => options.rate = Some(value.parse()?),
            "--repeat" => options.repeat = value.parse()?,
            "--counters" => {
                options.counters = match value.as_str() {
                    "on" => true,
                    "off" => false,
                    _ => bail!("--counters: on or off, not {value}"),
                }
            }
            "--callgrind" => options.callgrind = Some(value.into()),
            other => bail!("unknown option {other}"),
        }
    }
    if options.repeat == 0 || options.repeat > 20 {
        bail!("--repeat must be between 1 and 20");
    }
    if options.concurrency == 0 || options.concurrency > 4096 {
        bail!("--concurrency must be between 1 and 4096");
    }
    if options.duration.is_zero() || options.duration > Duration::from_secs(600) {
        bail!("--duration must be between 0 and 600 s");
    }
    // Under valgrind the gateway runs some 50 times slower: only a paced scenario at a rate
    // it can keep up with measures anything (see callgrind.rs).
    if options.callgrind.is_some()
        && (options.scenarios != ["compose-template-paced"] || options.rate.is_none())
    {
        bail!("--callgrind needs --scenarios compose-template-paced and a --rate (30 is fine)");
    }
    Ok(options)
}
