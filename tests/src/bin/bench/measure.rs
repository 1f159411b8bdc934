//! Readings of the clock and of `/proc`: a process's CPU time and peak RSS, the whole
//! machine's busy and stolen CPU, and [`CpuMeter`], which takes them (and the hardware
//! counters of counters.rs or callgrind.rs) at the start and end of a measured phase.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::callgrind::Callgrind;
use crate::counters::PerfStat;
use crate::outcome::Outcome;
use crate::redis_probe::{RedisCalls, RedisProbe};

/// Wall-clock time in ns since the epoch (what events carry as `sent_at_ns`).
pub(crate) fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// CPU time (user + system) of a process, from `/proc/<pid>/stat`.
pub(crate) fn cpu_of(pid: u32) -> Result<Duration> {
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
pub(crate) fn machine_cpu() -> (f64, f64) {
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
pub(crate) fn machine_cpu_since(start: (f64, f64)) -> (f64, f64) {
    let now = machine_cpu();
    (now.0 - start.0, now.1 - start.1)
}

/// CPU used by the gateway, Redis, this process and the whole machine over one measured
/// phase, read from `/proc` at its start and end.
pub(crate) struct CpuMeter {
    /// The gateway's process id.
    pub(crate) gateway_pid: u32,
    /// The gateway's CPU time at the start.
    pub(crate) gateway: Duration,
    /// Redis's CPU time at the start.
    pub(crate) redis: Duration,
    /// Redis's command counts at the start.
    pub(crate) redis_calls: RedisCalls,
    /// This process's CPU time at the start.
    pub(crate) bench: Duration,
    /// The machine's busy and stolen CPU at the start (see [`machine_cpu`]).
    pub(crate) machine: (f64, f64),
    /// Hardware counters of the gateway, when asked for and available.
    pub(crate) gateway_counters: Option<PerfStat>,
    /// Hardware counters of Redis, when asked for and available.
    pub(crate) redis_counters: Option<PerfStat>,
    /// The gateway's instructions from callgrind (`--callgrind`), instead of perf's.
    pub(crate) gateway_callgrind: Option<Callgrind>,
}

impl CpuMeter {
    /// Starts measuring. `gateway_from_start` counts the gateway's CPU from its process start
    /// (for a gateway started after this call, whose work begins before it answers; no
    /// hardware counters then, as they would miss that start). `counters`: read hardware
    /// counters too. `callgrind`: the gateway runs under callgrind (its dumps in that
    /// directory): its instructions come from there (not for a gateway counted from its
    /// start, whose start is not instrumented).
    pub(crate) async fn start(
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
    pub(crate) async fn record(self, redis: &mut RedisProbe, outcome: &mut Outcome) -> Result<()> {
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
