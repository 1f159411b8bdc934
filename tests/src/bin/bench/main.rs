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
//! workers on, producers off).
//!
//! Every gateway scenario gets a Redis of its own (ingest-only and drain-only
//! share one: drain-only delivers ingest-only's backlog; the baseline uses
//! none): a private `redis-server` started for it on a free port, by default
//! with an append-only file fsynced once a second, and stopped after it. A
//! shared Redis carried one scenario's leftovers into the next: after a million
//! keys were deleted it kept its grown tables and freed their memory in the
//! background, and the next scenario ran ~24 % slower. A bench killed by a
//! signal leaves its running server and that server's directory (under the
//! temp dir, `gw-redis-*`) behind.
//!
//! Options (all optional): `--duration SECS` (10), `--concurrency N` (64),
//! `--gateway-bin PATH` (`target/release/gateway`), `--out FILE`
//! (`bench-results/results.json`), `--redis-persistence none|everysec|always`
//! (the private servers' append-only file: none, or fsynced every second
//! (the default) or before every answer; ignored with `--redis-url`),
//! `--redis-url URL` (use that Redis for every scenario instead, deleting each
//! scenario's keys after it), `--scenarios a,b,...`,
//! `--plugin-bench FILE` (output of the plugin micro-benchmark to include),
//! `--drain-timeout SECS` (60), `--hold SECS` (0: keep each gateway running that
//! long after its drain, e.g. to attach a profiler), `--perf FILE` (record the
//! gateway with `perf record -g` while the producers run; gateway scenarios only),
//! `--rate N` (events/s of `compose-template-paced`; default half the rate the
//! closed-loop `compose-template` scenario reached in the first round), `--repeat N`
//! (1: run every scenario N times, round after round; the table shows each
//! scenario's median run by rate, with that run's ratio to its own round's
//! baseline, and a second table the spread, with each scenario's best run over
//! the best baseline run, also in the JSON as `best_of_rounds`; failed runs are
//! left out of both unless every run failed), `--counters on|off` (on: attach
//! `perf stat` to the gateway and to Redis for their instructions and cycles per
//! event, see counters.rs; a table of its own and `hardware_counters` in the JSON),
//! `--callgrind DIR` (run the gateway under valgrind's callgrind and count its
//! instructions there instead, for a VM without hardware counters: slow, use it with
//! `--scenarios compose-template-paced --rate 30`; see callgrind.rs).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use hyper::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::process::{Child, Command};

mod bare_http;
mod callgrind;
mod counters;
use bare_http::{Arrival, Connection, PostError, Target};
use callgrind::Callgrind;
use counters::{Counts, PerfStat, Source};
use gateway_e2e::process::free_port;
use gateway_e2e::redis_server::{Persistence, RedisServer};

/// Every scenario, in the order they run.
const ALL_SCENARIOS: &[&str] = &[
    "baseline",
    "gateway",
    "compose-template",
    "compose-template-paced",
    "fanout-4",
    "ingest-only",
    "drain-only",
];

/// One receiver answer in `SIGNATURE_SAMPLE` has its signature checked.
const SIGNATURE_SAMPLE: u64 = 100;

/// How long a producer waits for an answer before it counts a timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Size of the padding field, so that an event is about 1 KB.
const PAD_BYTES: usize = 900;

#[derive(Clone)]
struct Options {
    duration: Duration,
    concurrency: usize,
    gateway_bin: PathBuf,
    out: PathBuf,
    /// A shared Redis for every scenario; `None`: a private server per scenario.
    redis_url: Option<String>,
    /// What the private servers write to disk.
    redis_persistence: Persistence,
    scenarios: Vec<String>,
    plugin_bench: Option<PathBuf>,
    drain_timeout: Duration,
    hold: Duration,
    perf: Option<PathBuf>,
    rate: Option<f64>,
    repeat: usize,
    /// Read hardware counters of the gateway and Redis with `perf stat`.
    counters: bool,
    /// Run the gateway under callgrind, its dumps in this directory (see callgrind.rs).
    callgrind: Option<PathBuf>,
}

fn parse_options() -> Result<Options> {
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

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------- receiver

/// What the receiver saw, for one scenario.
#[derive(Default)]
struct Seen {
    /// Arrivals per endpoint, indexed by seq.
    counts: Vec<Vec<u8>>,
    /// Ingest-to-delivery latency in µs, one per arrival.
    latencies_us: Vec<u32>,
    /// Arrivals whose body had no readable seq.
    unreadable: u64,
    /// Arrival times (ns since the epoch) of the first and last request.
    first_ns: u64,
    last_ns: u64,
}

#[derive(Default)]
struct ReceiverState {
    arrivals: AtomicU64,
    seen: Mutex<Seen>,
    secrets: Mutex<Vec<String>>,
    signatures_checked: AtomicU64,
    signatures_bad: AtomicU64,
}

impl ReceiverState {
    fn reset(&self, endpoints: usize, secrets: Vec<String>) -> Result<()> {
        self.arrivals.store(0, Ordering::SeqCst);
        self.signatures_checked.store(0, Ordering::SeqCst);
        self.signatures_bad.store(0, Ordering::SeqCst);
        let mut seen = self.seen.lock().map_err(|_| anyhow!("poisoned"))?;
        *seen = Seen {
            counts: vec![Vec::new(); endpoints],
            ..Seen::default()
        };
        *self.secrets.lock().map_err(|_| anyhow!("poisoned"))? = secrets;
        Ok(())
    }
}

/// Finds `"key":` in a JSON body and reads the unsigned integer after it,
/// written as a number or as a string of digits (templates render strings).
fn scan_u64(body: &[u8], key: &[u8]) -> Option<u64> {
    let at = body.windows(key.len()).position(|w| w == key)? + key.len();
    let mut rest = body[at..].iter().skip_while(|b| b.is_ascii_whitespace());
    if rest.next() != Some(&b':') {
        return None;
    }
    let mut value: u64 = 0;
    let mut digits = 0;
    for &b in rest.skip_while(|b| b.is_ascii_whitespace() || **b == b'"') {
        if !b.is_ascii_digit() {
            break;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        digits += 1;
    }
    (digits > 0).then_some(value)
}

fn verify_standard(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(ts), Some(sigs)) = (
        get("webhook-id"),
        get("webhook-timestamp"),
        get("webhook-signature"),
    ) else {
        return false;
    };
    let Ok(key) = STANDARD.decode(secret.trim_start_matches("whsec_")) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
        return false;
    };
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    sigs.split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

/// The receiver's handler: counts the arrival, checks a sample of signatures, records
/// the latency from the `sent_at_ns` in the body.
fn receive(state: &ReceiverState, arrival: Arrival<'_>) -> StatusCode {
    let at = now_ns();
    let Some(endpoint) = arrival
        .path
        .strip_prefix("/hook/")
        .and_then(|n| n.parse::<usize>().ok())
    else {
        return StatusCode::NOT_FOUND;
    };
    let body = &arrival.body;
    let n = state.arrivals.fetch_add(1, Ordering::Relaxed);
    if n % SIGNATURE_SAMPLE == 0 {
        let secret = state
            .secrets
            .lock()
            .ok()
            .and_then(|s| s.get(endpoint).cloned());
        if let Some(secret) = secret {
            state.signatures_checked.fetch_add(1, Ordering::Relaxed);
            if !verify_standard(&secret, arrival.headers, body) {
                state.signatures_bad.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    let seq = scan_u64(body, b"\"seq\"");
    let sent = scan_u64(body, b"\"sent_at_ns\"");
    let Ok(mut seen) = state.seen.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR;
    };
    if seen.first_ns == 0 {
        seen.first_ns = at;
    }
    seen.last_ns = seen.last_ns.max(at);
    match (seq, sent) {
        (Some(seq), Some(sent)) if endpoint < seen.counts.len() && seq < 50_000_000 => {
            let counts = &mut seen.counts[endpoint];
            let i = seq as usize;
            if counts.len() <= i {
                counts.resize((i + 1).next_power_of_two(), 0);
            }
            counts[i] = counts[i].saturating_add(1);
            let us = at.saturating_sub(sent) / 1_000;
            seen.latencies_us.push(us.min(u64::from(u32::MAX)) as u32);
        }
        _ => seen.unreadable += 1,
    }
    StatusCode::OK
}

async fn start_receiver() -> Result<(String, Arc<ReceiverState>)> {
    let state = Arc::new(ReceiverState::default());
    let handler_state = state.clone();
    let base = bare_http::serve(move |arrival| receive(&handler_state, arrival)).await?;
    Ok((base, state))
}

// ---------------------------------------------------------------- producers

/// What the producers did.
#[derive(Default)]
struct Produced {
    accepted: Vec<u64>,
    statuses: BTreeMap<String, u64>,
    elapsed: Duration,
}

/// An event's JSON text (about 1 KB): its `seq`, the send time, and padding. With
/// `wrap` it is the payload of a gateway event of type `bench.event`.
fn event_body(seq: u64, pad: &str, wrap: bool) -> Bytes {
    let payload = format!(
        r#"{{"seq":{seq},"sent_at_ns":{},"status":"read","pad":"{pad}"}}"#,
        now_ns()
    );
    Bytes::from(if wrap {
        format!(r#"{{"type":"bench.event","payload":{payload}}}"#)
    } else {
        payload
    })
}

/// Closed loop: `concurrency` tasks, each with its own connection, posting one event
/// and waiting for the answer, until `duration` is up. With `rate` (events/s in all),
/// each task also waits for its next slot, so the load stays below saturation.
/// With `api_key` the payload is wrapped as an event for the gateway.
async fn produce(
    url: &str,
    api_key: Option<&str>,
    options: &Options,
    rate: Option<f64>,
) -> Result<Produced> {
    let target = Target::parse(url, api_key)?;
    let wrap = api_key.is_some();
    let next_seq = Arc::new(AtomicU64::new(0));
    let pad: Arc<str> = "x".repeat(PAD_BYTES).into();
    let start = Instant::now();
    let deadline = start + options.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for producer in 0..options.concurrency {
        let (next_seq, pad) = (next_seq.clone(), pad.clone());
        let mut connection = Connection::new(target.clone());
        let period = rate.map(|r| Duration::from_secs_f64(options.concurrency as f64 / r.max(1.0)));
        let phase_of = producer as f64 / options.concurrency as f64;
        tasks.spawn(async move {
            let mut accepted = Vec::new();
            let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
            // Paced producers start out of phase (producer k at k/concurrency of a period),
            // so the rate is steady instead of `concurrency` events in a burst every period.
            let mut pace = period.map(|p| {
                let phase = p.mul_f64(phase_of);
                let mut i = tokio::time::interval_at(tokio::time::Instant::now() + phase, p);
                i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                i
            });
            while Instant::now() < deadline {
                if let Some(pace) = &mut pace {
                    pace.tick().await;
                    if Instant::now() >= deadline {
                        break;
                    }
                }
                let seq = next_seq.fetch_add(1, Ordering::Relaxed);
                let body = event_body(seq, &pad, wrap);
                let status = match connection.post_json(body, REQUEST_TIMEOUT).await {
                    Ok(code) => code.to_string(),
                    Err(PostError::Timeout) => "timeout".to_string(),
                    Err(PostError::Failed(_)) => "error".to_string(),
                };
                if status == "202" || (!wrap && status == "200") {
                    accepted.push(seq);
                } else if status == "error" {
                    // Do not spin on a refused connection.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                *statuses.entry(status).or_default() += 1;
            }
            (accepted, statuses)
        });
    }
    let mut produced = Produced::default();
    while let Some(done) = tasks.join_next().await {
        let (accepted, statuses) = done?;
        produced.accepted.extend(accepted);
        for (k, v) in statuses {
            *produced.statuses.entry(k).or_default() += v;
        }
    }
    produced.elapsed = start.elapsed();
    Ok(produced)
}

// ---------------------------------------------------------------- processes

/// CPU time (user + system) of a process, from `/proc/<pid>/stat`.
fn cpu_of(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11).context("utime")?.parse()?;
    let stime: u64 = fields.get(12).context("stime")?.parse()?;
    Ok(Duration::from_secs_f64(
        (utime + stime) as f64 / clock_ticks(),
    ))
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Busy and stolen CPU seconds of the whole machine, from `/proc/stat`.
fn machine_cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let get = |i: usize| fields.get(i).copied().unwrap_or(0.0);
    // user nice system idle iowait irq softirq steal
    let busy = get(0) + get(1) + get(2) + get(5) + get(6);
    let ticks = clock_ticks();
    (busy / ticks, get(7) / ticks)
}

/// Machine CPU since `start`: (busy, stolen).
fn machine_cpu_since(start: (f64, f64)) -> (f64, f64) {
    let now = machine_cpu();
    (now.0 - start.0, now.1 - start.1)
}

/// CPU used by the gateway, Redis, this process and the whole machine over one measured
/// phase, read from `/proc` at its start and end.
struct CpuMeter {
    gateway_pid: u32,
    gateway: Duration,
    redis: Duration,
    redis_calls: RedisCalls,
    bench: Duration,
    machine: (f64, f64),
    /// Hardware counters of the gateway and of Redis, when asked for and available.
    gateway_counters: Option<PerfStat>,
    redis_counters: Option<PerfStat>,
    /// The gateway's instructions from callgrind (`--callgrind`), instead of perf's.
    gateway_callgrind: Option<Callgrind>,
}

impl CpuMeter {
    /// Starts measuring. `gateway_from_start` counts the gateway's CPU from its process start
    /// (for a gateway started after this call, whose work begins before it answers; no
    /// hardware counters then, as they would miss that start). `counters`: read hardware
    /// counters too. `callgrind`: the gateway runs under callgrind (its dumps in that
    /// directory): its instructions come from there (not for a gateway counted from its
    /// start, whose start is not instrumented).
    async fn start(
        redis: &mut RedisProbe,
        gateway_pid: u32,
        gateway_from_start: bool,
        counters: bool,
        callgrind: Option<&std::path::Path>,
    ) -> Result<Self> {
        let counters = counters && !gateway_from_start;
        let gateway_callgrind = match callgrind.filter(|_| !gateway_from_start) {
            Some(dir) => Some(Callgrind::start(gateway_pid, dir).await?),
            None => None,
        };
        let gateway_counters = (counters && gateway_callgrind.is_none())
            .then(|| PerfStat::start(gateway_pid))
            .flatten();
        let redis_counters = redis.pid.filter(|_| counters).and_then(PerfStat::start);
        if gateway_counters.is_some() || redis_counters.is_some() {
            // perf attaches to each thread after it starts; the gateway is idle until the
            // producers start, so waiting here loses nothing from the count.
            tokio::time::sleep(PerfStat::ATTACH).await;
        }
        Ok(Self {
            gateway_counters,
            redis_counters,
            gateway_callgrind,
            gateway_pid,
            gateway: if gateway_from_start {
                Duration::ZERO
            } else {
                cpu_of(gateway_pid)?
            },
            redis: redis.cpu().await?,
            redis_calls: redis.calls().await?,
            bench: cpu_of(std::process::id())?,
            machine: machine_cpu(),
        })
    }

    /// Stops measuring and records what was used, and the gateway's peak RSS, in `outcome`.
    async fn record(self, redis: &mut RedisProbe, outcome: &mut Outcome) -> Result<()> {
        outcome.gateway_cpu_s = Some((cpu_of(self.gateway_pid)? - self.gateway).as_secs_f64());
        outcome.redis_cpu_s = Some((redis.cpu().await? - self.redis).as_secs_f64());
        outcome.redis_calls = Some(redis.calls().await?.since(self.redis_calls));
        outcome.bench_cpu_s = (cpu_of(std::process::id())? - self.bench).as_secs_f64();
        outcome.peak_rss_mib = Some(peak_rss_mib(self.gateway_pid)?);
        outcome.machine(machine_cpu_since(self.machine));
        let stop = |counters: Option<PerfStat>| async move {
            match counters {
                Some(counters) => counters.stop().await,
                None => None,
            }
        };
        (outcome.gateway_counts, outcome.redis_counts) =
            tokio::join!(stop(self.gateway_counters), stop(self.redis_counters));
        if let Some(callgrind) = self.gateway_callgrind {
            outcome.gateway_counts = Some(callgrind.stop().await?);
        }
        Ok(())
    }
}

/// Peak resident set (`VmHWM`) in MiB.
fn peak_rss_mib(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM")?;
    let kb: f64 = line
        .split_whitespace()
        .nth(1)
        .context("VmHWM value")?
        .parse()?;
    Ok(kb / 1024.0)
}

/// Redis CPU: from `/proc` of its pid when visible, else `INFO CPU`.
struct RedisProbe {
    conn: redis::aio::MultiplexedConnection,
    pid: Option<u32>,
}

impl RedisProbe {
    async fn connect(url: &str) -> Result<Self> {
        let client = redis::Client::open(url)?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut conn)
            .await?;
        let pid = info_field(&info, "process_id")
            .and_then(|p| p.parse::<u32>().ok())
            .filter(|p| cpu_of(*p).is_ok());
        Ok(Self { conn, pid })
    }

    async fn cpu(&mut self) -> Result<Duration> {
        if let Some(pid) = self.pid {
            return cpu_of(pid);
        }
        let info: String = redis::cmd("INFO")
            .arg("cpu")
            .query_async(&mut self.conn)
            .await?;
        let sum: f64 = ["used_cpu_user", "used_cpu_sys"]
            .iter()
            .filter_map(|k| info_field(&info, k).and_then(|v| v.parse::<f64>().ok()))
            .sum();
        Ok(Duration::from_secs_f64(sum))
    }

    /// Commands Redis has run since its start (or its last `CONFIG RESETSTAT`).
    async fn calls(&mut self) -> Result<RedisCalls> {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut self.conn)
            .await?;
        Ok(RedisCalls::from_commandstats(&info))
    }

    /// Deletes every key under `prefix` (hash-tagged ones too), bounded.
    async fn cleanup(&mut self, prefix: &str) -> Result<()> {
        for pattern in [format!("{prefix}:*"), format!("{{{prefix}:*")] {
            let mut cursor: u64 = 0;
            for _ in 0..1_000_000 {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(5000)
                    .query_async(&mut self.conn)
                    .await?;
                if !keys.is_empty() {
                    let _: () = redis::cmd("UNLINK")
                        .arg(&keys)
                        .query_async(&mut self.conn)
                        .await?;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(())
    }
}

/// Command counts from `INFO commandstats`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct RedisCalls {
    /// `EVALSHA` calls.
    scripts: u64,
    /// Every command, those run by scripts included.
    commands: u64,
}

impl RedisCalls {
    fn from_commandstats(info: &str) -> Self {
        let mut calls = Self::default();
        for line in info.lines() {
            let Some((name, stats)) = line
                .strip_prefix("cmdstat_")
                .and_then(|l| l.split_once(':'))
            else {
                continue;
            };
            let count = stats
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
            calls.commands += count;
            if name == "evalsha" {
                calls.scripts += count;
            }
        }
        calls
    }

    fn since(self, start: Self) -> Self {
        Self {
            scripts: self.scripts.saturating_sub(start.scripts),
            commands: self.commands.saturating_sub(start.commands),
        }
    }
}

/// The Redis one scenario runs against: a private server started for it, or the shared
/// one of `--redis-url`.
struct ScenarioRedis {
    url: String,
    probe: RedisProbe,
    server: Option<RedisServer>,
}

impl ScenarioRedis {
    async fn start(options: &Options) -> Result<Self> {
        let (url, server) = match &options.redis_url {
            Some(url) => (url.clone(), None),
            None => {
                let server = RedisServer::start_with(free_port(), options.redis_persistence).await;
                (server.url(), Some(server))
            }
        };
        let probe = RedisProbe::connect(&url)
            .await
            .with_context(|| format!("redis at {url}"))?;
        Ok(Self { url, probe, server })
    }

    /// Done with it: a private server is stopped (its files go with it); from a shared
    /// one the scenario's keys (under `prefix`) are deleted.
    async fn finish(mut self, prefix: &str) -> Result<()> {
        match self.server {
            Some(mut server) => {
                server.kill().await;
                Ok(())
            }
            None => self.probe.cleanup(prefix).await,
        }
    }
}

fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

/// The gateway as a child process.
struct Gateway {
    child: Child,
    pid: u32,
    base: String,
    admin_token: String,
}

impl Gateway {
    async fn start(
        options: &Options,
        http: &reqwest::Client,
        redis_url: &str,
        prefix: &str,
        workers: bool,
        log: &str,
    ) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let admin_token = format!("bench-admin-{}", ulid::Ulid::new());
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("open {log}"))?;
        let mut command = match &options.callgrind {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("create {}", dir.display()))?;
                callgrind::command(&options.gateway_bin, dir)
            }
            None => Command::new(&options.gateway_bin),
        };
        command.env_clear();
        if options.callgrind.is_some() {
            command.env("GATEWAY_PLUGINS__POOL_INSTANCES", callgrind::POOL_INSTANCES);
            // valgrind and callgrind_control (run with this process's environment) find
            // each other through pipes in $TMPDIR.
            if let Some(tmp) = std::env::var_os("TMPDIR") {
                command.env("TMPDIR", tmp);
            }
        }
        let child = command
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .env("GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
            .env("GATEWAY_REDIS_URL", redis_url)
            .env("GATEWAY_REDIS_PREFIX", prefix)
            .env("GATEWAY_ADMIN_TOKEN", &admin_token)
            .env("GATEWAY_ALLOWED_NETWORKS", "127.0.0.0/8")
            .env("GATEWAY_WORKERS_ENABLED", workers.to_string())
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", options.gateway_bin.display()))?;
        let pid = child.id().context("gateway pid")?;
        let gateway = Self {
            child,
            pid,
            base: format!("http://127.0.0.1:{port}"),
            admin_token,
        };
        let ready_timeout = match options.callgrind {
            Some(_) => callgrind::READY_TIMEOUT,
            None => Duration::from_secs(10),
        };
        let started = Instant::now();
        while started.elapsed() < ready_timeout {
            if let Ok(r) = http.get(format!("{}/readyz", gateway.base)).send().await {
                if r.status().is_success() {
                    return Ok(gateway);
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        bail!(
            "gateway did not become ready in {} s (see {log})",
            ready_timeout.as_secs()
        )
    }

    async fn call(
        &self,
        http: &reqwest::Client,
        path: &str,
        token: &str,
        body: Value,
    ) -> Result<Value> {
        let r = http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        let value: Value = r.json().await?;
        if !status.is_success() {
            bail!("POST {path}: {status} {value}");
        }
        Ok(value)
    }

    /// Graceful stop (SIGTERM), bounded; then SIGKILL.
    async fn stop(mut self) -> Result<()> {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .is_err()
        {
            self.child.kill().await?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- scenarios

/// The measured outcome of one scenario.
#[derive(Default, Clone)]
struct Outcome {
    name: String,
    note: String,
    accepted: u64,
    accepted_per_s: f64,
    expected_deliveries: u64,
    delivered: u64,
    delivered_per_s: f64,
    drain_s: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    p999_ms: Option<f64>,
    gateway_cpu_s: Option<f64>,
    redis_cpu_s: Option<f64>,
    /// Redis commands run while measured (`INFO commandstats`).
    redis_calls: Option<RedisCalls>,
    bench_cpu_s: f64,
    /// Busy CPU of the machine not spent by the gateway, Redis or this process.
    other_cpu_s: f64,
    steal_s: f64,
    gateway_us_per_event: Option<f64>,
    redis_us_per_event: Option<f64>,
    /// Batched script calls (`EVALSHA`) per event: how well group commit gathers.
    scripts_per_event: Option<f64>,
    /// Redis commands per event, those run inside scripts included.
    commands_per_event: Option<f64>,
    peak_rss_mib: Option<f64>,
    /// Hardware counters while measured (see counters.rs).
    gateway_counts: Option<Counts>,
    redis_counts: Option<Counts>,
    lost: Option<u64>,
    duplicated: u64,
    unexpected: u64,
    signatures_checked: u64,
    signatures_bad: u64,
    statuses: BTreeMap<String, u64>,
    ratio: Option<f64>,
}

impl Outcome {
    /// Records what the rest of the machine did during the measurement.
    fn machine(&mut self, busy: (f64, f64)) {
        let ours =
            self.gateway_cpu_s.unwrap_or(0.0) + self.redis_cpu_s.unwrap_or(0.0) + self.bench_cpu_s;
        self.other_cpu_s = (busy.0 - ours).max(0.0);
        self.steal_s = busy.1;
    }

    /// Gateway and Redis CPU per event, over `events` events (delivered or accepted).
    fn per_event(&mut self, events: u64) {
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
    fn bench_us_per_event(&self) -> Option<f64> {
        let n = self.events();
        (n > 0).then(|| self.bench_cpu_s * 1e6 / n as f64)
    }

    fn json(&self) -> Value {
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
    fn kinstructions_per_event(&self, counts: Option<Counts>) -> Option<f64> {
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

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn percentile(sorted: &[u32], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    Some(f64::from(sorted[i.min(sorted.len() - 1)]) / 1000.0)
}

/// Waits until `expected` requests arrived, or nothing arrived for 10 s, or `limit`.
async fn wait_drain(receiver: &ReceiverState, expected: u64, limit: Duration) -> Duration {
    let start = Instant::now();
    let mut last = receiver.arrivals.load(Ordering::SeqCst);
    let mut last_change = Instant::now();
    while start.elapsed() < limit {
        let now = receiver.arrivals.load(Ordering::SeqCst);
        if now >= expected {
            break;
        }
        if now != last {
            last = now;
            last_change = Instant::now();
        } else if last_change.elapsed() > Duration::from_secs(10) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

/// Fills in delivered, latency, lost and duplicated from what the receiver saw.
fn account(
    outcome: &mut Outcome,
    receiver: &ReceiverState,
    accepted: &[u64],
    endpoints: usize,
    window_start_ns: u64,
) -> Result<()> {
    let mut seen = receiver.seen.lock().map_err(|_| anyhow!("poisoned"))?;
    let mut lost = 0;
    let mut duplicated = 0;
    let mut delivered = 0;
    let mut accepted_mask: Vec<Vec<bool>> = Vec::new();
    for counts in &seen.counts {
        let mut mask = vec![false; counts.len()];
        for &seq in accepted {
            let c = counts.get(seq as usize).copied().unwrap_or(0);
            if c == 0 {
                lost += 1;
            } else {
                duplicated += u64::from(c - 1);
            }
            if let Some(m) = mask.get_mut(seq as usize) {
                *m = true;
            }
        }
        accepted_mask.push(mask);
    }
    let mut unexpected = seen.unreadable;
    for (counts, mask) in seen.counts.iter().zip(&accepted_mask) {
        for (i, &c) in counts.iter().enumerate() {
            delivered += u64::from(c);
            if c > 0 && !mask[i] {
                unexpected += u64::from(c);
            }
        }
    }
    debug_assert_eq!(accepted_mask.len(), endpoints);
    outcome.expected_deliveries = accepted.len() as u64 * endpoints as u64;
    outcome.delivered = delivered;
    outcome.lost = Some(lost);
    outcome.duplicated = duplicated;
    outcome.unexpected = unexpected;
    // 0: from the first arrival (drain alone, where the gateway's start-up is not counted).
    let from = if window_start_ns == 0 {
        seen.first_ns
    } else {
        window_start_ns
    };
    let span_ns = seen.last_ns.saturating_sub(from);
    if delivered > 0 && span_ns > 0 {
        outcome.delivered_per_s = delivered as f64 / (span_ns as f64 / 1e9);
    }
    seen.latencies_us.sort_unstable();
    outcome.p50_ms = percentile(&seen.latencies_us, 0.5);
    outcome.p99_ms = percentile(&seen.latencies_us, 0.99);
    outcome.p999_ms = percentile(&seen.latencies_us, 0.999);
    outcome.signatures_checked = receiver.signatures_checked.load(Ordering::SeqCst);
    outcome.signatures_bad = receiver.signatures_bad.load(Ordering::SeqCst);
    Ok(())
}

struct Bench {
    options: Options,
    http: reqwest::Client,
    run_id: String,
}

impl Bench {
    /// Starts measuring a gateway that is already up, with the counters the options ask for.
    async fn meter(&self, redis: &mut RedisProbe, gateway_pid: u32) -> Result<CpuMeter> {
        CpuMeter::start(
            redis,
            gateway_pid,
            false,
            self.options.counters,
            self.options.callgrind.as_deref(),
        )
        .await
    }

    fn log_path(&self, name: &str) -> String {
        let dir = self
            .options
            .out
            .parent()
            .unwrap_or(std::path::Path::new("."));
        dir.join(format!("gateway-{name}.log"))
            .display()
            .to_string()
    }

    async fn baseline(&mut self) -> Result<Outcome> {
        let (base, receiver) = start_receiver().await?;
        receiver.reset(1, Vec::new())?;
        let bench_cpu = cpu_of(std::process::id())?;
        let machine = machine_cpu();
        let start_ns = now_ns();
        let produced = produce(&format!("{base}/hook/0"), None, &self.options, None).await?;
        let mut outcome = Outcome {
            name: "baseline".into(),
            note: "producers post straight to the receiver".into(),
            accepted: produced.accepted.len() as u64,
            accepted_per_s: produced.accepted.len() as f64 / produced.elapsed.as_secs_f64(),
            statuses: produced.statuses.clone(),
            ..Outcome::default()
        };
        account(&mut outcome, &receiver, &produced.accepted, 1, start_ns)?;
        outcome.bench_cpu_s = (cpu_of(std::process::id())? - bench_cpu).as_secs_f64();
        outcome.machine(machine_cpu_since(machine));
        Ok(outcome)
    }

    /// Creates a tenant and `endpoints` endpoints pointing at the receiver.
    async fn setup_tenant(
        &self,
        gateway: &Gateway,
        receiver_base: &str,
        endpoints: usize,
        plugin: bool,
    ) -> Result<(String, Vec<String>)> {
        let tenant = gateway
            .call(
                &self.http,
                "/v1/tenants",
                &gateway.admin_token,
                json!({"name": "bench"}),
            )
            .await?;
        let key = tenant["api_key"]
            .as_str()
            .context("api_key in tenant answer")?
            .to_string();
        let mut secrets = Vec::new();
        for i in 0..endpoints {
            let mut body = json!({
                "url": format!("{receiver_base}/hook/{i}"),
                "event_types": ["bench.event"],
            });
            if plugin {
                body["plugins"] = json!([{"plugin": "compose-template", "config": {"body": {
                    "seq": "@{{payload.seq}}",
                    "sent_at_ns": "@{{payload.sent_at_ns}}",
                    "status": "@{{payload.status}}",
                }}}]);
            }
            let endpoint = gateway
                .call(&self.http, "/v1/endpoints", &key, body)
                .await?;
            secrets.push(
                endpoint["secret"]
                    .as_str()
                    .context("secret in endpoint answer")?
                    .to_string(),
            );
        }
        Ok((key, secrets))
    }

    /// Scenarios 2-4: the gateway with workers on, producers for the duration, then drain.
    async fn through_gateway(
        &mut self,
        name: &str,
        endpoints: usize,
        plugin: bool,
        rate: Option<f64>,
    ) -> Result<Outcome> {
        let prefix = format!("bench-{}-{name}", self.run_id);
        let mut redis = ScenarioRedis::start(&self.options).await?;
        let (receiver_base, receiver) = start_receiver().await?;
        let gateway = Gateway::start(
            &self.options,
            &self.http,
            &redis.url,
            &prefix,
            true,
            &self.log_path(name),
        )
        .await?;
        let (key, secrets) = self
            .setup_tenant(&gateway, &receiver_base, endpoints, plugin)
            .await?;
        receiver.reset(endpoints, secrets)?;
        let meter = self.meter(&mut redis.probe, gateway.pid).await?;
        let perf = match &self.options.perf {
            Some(file) => Some(
                Command::new("perf")
                    .args(["record", "-g", "-F", "999", "-o"])
                    .arg(file)
                    .arg("-p")
                    .arg(gateway.pid.to_string())
                    .arg("--")
                    .arg("sleep")
                    .arg(self.options.duration.as_secs().to_string())
                    .stdout(Stdio::null())
                    .kill_on_drop(true)
                    .spawn()
                    .context("perf record")?,
            ),
            None => None,
        };
        let start_ns = now_ns();
        let produced = produce(
            &format!("{}/v1/events", gateway.base),
            Some(&key),
            &self.options,
            rate,
        )
        .await?;
        if let Some(mut perf) = perf {
            let _ = tokio::time::timeout(Duration::from_secs(30), perf.wait()).await;
        }
        let expected = produced.accepted.len() as u64 * endpoints as u64;
        let drain = wait_drain(&receiver, expected, self.options.drain_timeout).await;
        if !self.options.hold.is_zero() {
            eprintln!(
                "bench: holding gateway pid {} for {:?}",
                gateway.pid, self.options.hold
            );
            tokio::time::sleep(self.options.hold).await;
        }
        let mut outcome = Outcome {
            name: name.into(),
            note: match (endpoints, plugin, rate) {
                (1, true, Some(r)) => {
                    format!("1 endpoint, compose-template, paced at {r:.0} events/s")
                }
                (1, false, _) => "1 endpoint, no plugin".into(),
                (1, true, _) => "1 endpoint, compose-template".into(),
                (n, _, _) => format!("{n} endpoints, no plugin; delivered counts requests"),
            },
            accepted: produced.accepted.len() as u64,
            accepted_per_s: produced.accepted.len() as f64 / produced.elapsed.as_secs_f64(),
            drain_s: drain.as_secs_f64(),
            statuses: produced.statuses.clone(),
            ..Outcome::default()
        };
        meter.record(&mut redis.probe, &mut outcome).await?;
        account(
            &mut outcome,
            &receiver,
            &produced.accepted,
            endpoints,
            start_ns,
        )?;
        outcome.per_event(outcome.delivered);
        gateway.stop().await?;
        redis.finish(&prefix).await?;
        Ok(outcome)
    }

    /// Scenarios 5 and 6: ingest with workers off, then a fresh gateway with
    /// workers on drains the backlog with the producers off.
    async fn ingest_then_drain(
        &mut self,
        want_ingest: bool,
        want_drain: bool,
    ) -> Result<Vec<Outcome>> {
        let prefix = format!("bench-{}-backlog", self.run_id);
        let mut redis = ScenarioRedis::start(&self.options).await?;
        let (receiver_base, receiver) = start_receiver().await?;
        let gateway = Gateway::start(
            &self.options,
            &self.http,
            &redis.url,
            &prefix,
            false,
            &self.log_path("ingest-only"),
        )
        .await?;
        let (key, secrets) = self
            .setup_tenant(&gateway, &receiver_base, 1, false)
            .await?;
        receiver.reset(1, secrets)?;
        let meter = self.meter(&mut redis.probe, gateway.pid).await?;
        let produced = produce(
            &format!("{}/v1/events", gateway.base),
            Some(&key),
            &self.options,
            None,
        )
        .await?;
        let accepted = produced.accepted.len() as u64;
        let mut ingest = Outcome {
            name: "ingest-only".into(),
            note: "workers off; CPU per accepted event".into(),
            accepted,
            accepted_per_s: accepted as f64 / produced.elapsed.as_secs_f64(),
            statuses: produced.statuses.clone(),
            ..Outcome::default()
        };
        meter.record(&mut redis.probe, &mut ingest).await?;
        ingest.per_event(accepted);
        gateway.stop().await?;
        let mut outcomes = Vec::new();
        if want_ingest {
            outcomes.push(ingest);
        }
        if want_drain {
            let log = self.log_path("drain-only");
            let redis_cpu = redis.probe.cpu().await?;
            let redis_calls = redis.probe.calls().await?;
            let bench = cpu_of(std::process::id())?;
            let machine = machine_cpu();
            let gateway =
                Gateway::start(&self.options, &self.http, &redis.url, &prefix, true, &log).await?;
            // The gateway's CPU from its process start: the workers begin before it answers
            // /readyz; Redis, this process and the machine from before it started.
            let meter = CpuMeter {
                redis: redis_cpu,
                redis_calls,
                bench,
                machine,
                ..CpuMeter::start(&mut redis.probe, gateway.pid, true, false, None).await?
            };
            let drain = wait_drain(
                &receiver,
                accepted,
                self.options.drain_timeout.max(Duration::from_secs(120)),
            )
            .await;
            let mut outcome = Outcome {
                name: "drain-only".into(),
                note: format!("backlog of {accepted}, producers off; latency includes the wait in the backlog"),
                accepted,
                drain_s: drain.as_secs_f64(),
                ..Outcome::default()
            };
            meter.record(&mut redis.probe, &mut outcome).await?;
            account(&mut outcome, &receiver, &produced.accepted, 1, 0)?;
            outcome.per_event(outcome.delivered);
            gateway.stop().await?;
            outcomes.push(outcome);
        }
        redis.finish(&prefix).await?;
        Ok(outcomes)
    }
}

// ---------------------------------------------------------------- report

fn opt(x: Option<f64>, decimals: usize) -> String {
    x.map_or("-".into(), |v| format!("{v:.decimals$}"))
}

/// Runs every selected scenario once, in order.
async fn run_round(bench: &mut Bench, options: &Options) -> Vec<Outcome> {
    let want = |s: &str| options.scenarios.iter().any(|x| x == s);
    let mut outcomes: Vec<Outcome> = Vec::new();
    for name in ALL_SCENARIOS {
        if !want(name) || (*name == "drain-only" && want("ingest-only")) {
            // drain-only runs together with ingest-only: it drains that backlog.
            continue;
        }
        eprintln!(
            "bench: scenario {name} ({} s, {} producers)",
            options.duration.as_secs_f64(),
            options.concurrency
        );
        let result = match *name {
            "baseline" => bench.baseline().await.map(|o| vec![o]),
            "gateway" => bench
                .through_gateway(name, 1, false, None)
                .await
                .map(|o| vec![o]),
            "compose-template" => bench
                .through_gateway(name, 1, true, None)
                .await
                .map(|o| vec![o]),
            "compose-template-paced" => {
                // Half the saturated rate of the closed loop (or --rate), to read latency below saturation.
                let rate = options.rate.or_else(|| paced_rate(&outcomes));
                bench
                    .through_gateway(name, 1, true, Some(rate.unwrap_or(1000.0)))
                    .await
                    .map(|o| vec![o])
            }
            "fanout-4" => bench
                .through_gateway(name, 4, false, None)
                .await
                .map(|o| vec![o]),
            "ingest-only" => bench.ingest_then_drain(true, want("drain-only")).await,
            "drain-only" => bench.ingest_then_drain(false, true).await,
            _ => Ok(Vec::new()),
        };
        match result {
            Ok(list) => {
                for o in &list {
                    eprintln!(
                        "bench:   {}: accepted {} ({:.0}/s), delivered {} ({:.0}/s), lost {:?}, dup {}, statuses {:?}",
                        o.name, o.accepted, o.accepted_per_s, o.delivered, o.delivered_per_s, o.lost, o.duplicated, o.statuses
                    );
                }
                outcomes.extend(list);
            }
            Err(e) => {
                eprintln!("bench: scenario {name} failed: {e:#}");
                outcomes.push(Outcome {
                    name: name.to_string(),
                    note: format!("failed: {e:#}"),
                    ..Outcome::default()
                });
            }
        }
    }
    outcomes
}

/// The paced scenario's rate: half what the closed-loop compose-template reached.
fn paced_rate(outcomes: &[Outcome]) -> Option<f64> {
    outcomes
        .iter()
        .find(|o| o.name == "compose-template" && o.accepted_per_s > 0.0)
        .map(|o| o.accepted_per_s / 2.0)
}

/// The rate a scenario is judged by: delivered/s, or accepted/s when nothing was delivered.
fn rate_of(o: &Outcome) -> f64 {
    if o.delivered > 0 {
        o.delivered_per_s
    } else {
        o.accepted_per_s
    }
}

/// Each outcome's rate over the baseline of the same round.
fn set_ratios(outcomes: &mut [Outcome]) {
    let baseline = outcomes
        .iter()
        .find(|o| o.name == "baseline")
        .map(|o| o.delivered_per_s)
        .filter(|b| *b > 0.0);
    for o in outcomes {
        o.ratio = baseline.map(|b| rate_of(o) / b);
    }
}

/// Every run of scenario `name`, one per round that has it; failed runs only when no run
/// succeeded (a failure is reported, not averaged in as a rate of 0).
fn runs_of<'a>(rounds: &'a [Vec<Outcome>], name: &str) -> Vec<&'a Outcome> {
    let all: Vec<&Outcome> = rounds
        .iter()
        .filter_map(|round| round.iter().find(|o| o.name == name))
        .collect();
    let succeeded: Vec<&Outcome> = all
        .iter()
        .copied()
        .filter(|o| !o.note.starts_with("failed"))
        .collect();
    if succeeded.is_empty() {
        all
    } else {
        succeeded
    }
}

/// Per scenario, the run with the median rate (the lower middle for an even count).
fn medians(rounds: &[Vec<Outcome>]) -> Vec<Outcome> {
    let Some(first) = rounds.first() else {
        return Vec::new();
    };
    first
        .iter()
        .filter_map(|o| {
            let mut runs = runs_of(rounds, &o.name);
            runs.sort_by(|a, b| rate_of(a).total_cmp(&rate_of(b)));
            runs.get((runs.len() - 1) / 2).map(|o| (*o).clone())
        })
        .collect()
}

/// The highest rate scenario `name` reached over the rounds (0 when it never ran).
///
/// Interference on a shared host only ever slows a run down, so a scenario's best run is
/// its least disturbed one; best over best baseline is the ratio that repeats best
/// between runs of the benchmark (README, Performance).
fn best_rate(rounds: &[Vec<Outcome>], name: &str) -> f64 {
    runs_of(rounds, name)
        .iter()
        .map(|r| rate_of(r))
        .fold(0.0, f64::max)
}

/// Min, median and max of each scenario's rate, gateway CPU per event and ratio to its
/// round's baseline, over the rounds; and the best run over the best baseline run.
fn spread_table(rounds: &[Vec<Outcome>]) -> String {
    fn span(mut values: Vec<f64>, digits: usize) -> String {
        if values.is_empty() {
            return "-".into();
        }
        values.sort_by(f64::total_cmp);
        let mid = values[(values.len() - 1) / 2];
        format!(
            "{:.d$} / {:.d$} / {:.d$}",
            values[0],
            mid,
            values[values.len() - 1],
            d = digits
        )
    }
    let best_baseline = best_rate(rounds, "baseline");
    let scenarios = rounds.first().map(Vec::as_slice).unwrap_or_default();
    markdown_table(
        &[
            "scenario",
            "runs",
            "rate/s min / median / max",
            "gw CPU µs/ev min / median / max",
            "× baseline (same round) min / median / max",
            "best run × best baseline",
        ],
        scenarios.iter().map(|o| {
            let runs = runs_of(rounds, &o.name);
            vec![
                o.name.clone(),
                runs.len().to_string(),
                span(runs.iter().map(|r| rate_of(r)).collect(), 0),
                span(
                    runs.iter().filter_map(|r| r.gateway_us_per_event).collect(),
                    1,
                ),
                span(runs.iter().filter_map(|r| r.ratio).collect(), 3),
                opt(
                    (best_baseline > 0.0).then(|| best_rate(rounds, &o.name) / best_baseline),
                    3,
                ),
            ]
        }),
    )
}

/// A markdown table: a header row, then one row per entry of `rows`; every column but
/// the first aligned right.
fn markdown_table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
    let mut out = line(&header.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>());
    out.push_str(&format!("|---|{}\n", "---:|".repeat(header.len() - 1)));
    for row in rows {
        out.push_str(&line(&row));
    }
    out
}

/// Per scenario: its best rate over the rounds and that over the best baseline's.
fn best_of_rounds(rounds: &[Vec<Outcome>]) -> Value {
    let best_baseline = best_rate(rounds, "baseline");
    let scenarios = rounds.first().map(Vec::as_slice).unwrap_or_default();
    Value::Array(
        scenarios
            .iter()
            .map(|o| {
                let best = best_rate(rounds, &o.name);
                json!({
                    "scenario": o.name,
                    "rate_per_s": round(best),
                    "ratio_to_best_baseline": (best_baseline > 0.0).then(|| round(best / best_baseline)),
                })
            })
            .collect(),
    )
}

fn table(outcomes: &[Outcome]) -> String {
    markdown_table(
        &[
            "scenario",
            "accepted/s",
            "delivered/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "gw CPU µs/ev",
            "Redis CPU µs/ev",
            "Redis scripts/ev",
            "gw peak RSS MiB",
            "load-gen CPU µs/ev",
            "other CPU s",
            "lost",
            "dup",
            "× baseline",
        ],
        outcomes.iter().map(|o| {
            vec![
                o.name.clone(),
                format!("{:.0}", o.accepted_per_s),
                if o.delivered > 0 {
                    format!("{:.0}", o.delivered_per_s)
                } else {
                    "-".into()
                },
                opt(o.p50_ms, 2),
                opt(o.p99_ms, 2),
                opt(o.p999_ms, 2),
                opt(o.gateway_us_per_event, 1),
                opt(o.redis_us_per_event, 1),
                opt(o.scripts_per_event, 3),
                opt(o.peak_rss_mib, 1),
                opt(o.bench_us_per_event(), 1),
                format!("{:.1}", o.other_cpu_s),
                o.lost.map_or("-".into(), |l| l.to_string()),
                o.duplicated.to_string(),
                opt(o.ratio, 3),
            ]
        }),
    )
}

/// Instructions per event and per cycle of the gateway and of Redis; `None` when no
/// scenario has counts.
fn counters_table(outcomes: &[Outcome]) -> Option<String> {
    if !outcomes
        .iter()
        .any(|o| o.gateway_counts.is_some() || o.redis_counts.is_some())
    {
        return None;
    }
    let mut out = markdown_table(
        &[
            "scenario",
            "gw k-instructions/ev",
            "gw instructions/cycle",
            "Redis k-instructions/ev",
            "Redis instructions/cycle",
        ],
        outcomes.iter().map(|o| {
            vec![
                o.name.clone(),
                opt(o.kinstructions_per_event(o.gateway_counts), 1),
                opt(o.gateway_counts.and_then(|c| c.ipc()), 2),
                opt(o.kinstructions_per_event(o.redis_counts), 1),
                opt(o.redis_counts.and_then(|c| c.ipc()), 2),
            ]
        }),
    );
    let counted = || {
        outcomes
            .iter()
            .flat_map(|o| [o.gateway_counts, o.redis_counts])
            .flatten()
    };
    if counted().any(|c| c.source == Source::Perf && c.user_only) {
        out.push_str(
            "\nperf counted user space only (perf_event_paranoid): system calls are not included.\n",
        );
    }
    if counted().any(|c| c.source == Source::Callgrind) {
        out.push_str(
            "\nthe gateway's instructions counted by callgrind: user space only, no cycles, a \
             rep-prefixed string instruction once per iteration (see callgrind.rs).\n",
        );
    }
    Some(out)
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": model,
        "mem_gib": round(mem_kb / 1024.0 / 1024.0),
    })
}

/// `redis-server --version`'s `v=` field.
fn redis_server_version() -> Option<String> {
    let out = std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.split_whitespace().find_map(|w| w.strip_prefix("v="))?;
    Some(version.to_owned())
}

/// Picks the `p50=…` and `p99=…` numbers of one line of the plugin micro-benchmark.
fn plugin_line(text: &str, starts: &str) -> Option<Value> {
    let line = text.lines().find(|l| l.starts_with(starts))?;
    let num = |key: &str| -> Option<f64> {
        let at = line.find(key)? + key.len();
        line[at..].split_whitespace().next()?.parse().ok()
    };
    Some(json!({"line": line, "p50_us": num("p50="), "p99_us": num("p99=")}))
}

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

#[cfg(test)]
mod tests {
    use super::{markdown_table, RedisCalls};

    #[test]
    fn markdown_tables_have_a_header_an_alignment_row_and_a_line_per_row() {
        let rows = vec![
            vec!["a".to_string(), "1".to_string()],
            vec!["b".into(), "-".into()],
        ];
        assert_eq!(
            markdown_table(&["scenario", "n"], rows),
            "| scenario | n |\n|---|---:|\n| a | 1 |\n| b | - |\n"
        );
    }

    #[test]
    fn commandstats_counts_script_calls_and_every_command() {
        let info = "# Commandstats\r\n\
            cmdstat_zadd:calls=30,usec=38,usec_per_call=1.27,rejected_calls=0,failed_calls=0\r\n\
            cmdstat_evalsha:calls=4,usec=900,usec_per_call=225.00,rejected_calls=0,failed_calls=1\r\n\
            cmdstat_script|load:calls=2,usec=90,usec_per_call=45.00,rejected_calls=0,failed_calls=0\r\n\
            cmdstat_hset:calls=10,usec=22,usec_per_call=2.24,rejected_calls=0,failed_calls=0\r\n";
        let calls = RedisCalls::from_commandstats(info);
        assert_eq!(
            calls,
            RedisCalls {
                scripts: 4,
                commands: 46
            }
        );
        let later = RedisCalls {
            scripts: 10,
            commands: 100,
        };
        assert_eq!(
            later.since(calls),
            RedisCalls {
                scripts: 6,
                commands: 54
            }
        );
    }
}
