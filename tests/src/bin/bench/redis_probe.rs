//! The Redis a scenario runs against, and what is read from it: its CPU time and the
//! commands it ran (`INFO commandstats`).
//!
//! Every gateway scenario gets a Redis of its own (ingest-only and drain-only share one:
//! drain-only delivers ingest-only's backlog; the baseline uses none): a private
//! `redis-server` started for it on a free port, by default with an append-only file
//! fsynced once a second, and stopped after it. A shared Redis carried one scenario's
//! leftovers into the next: after a million keys were deleted it kept its grown tables
//! and freed their memory in the background, and the next scenario ran ~24 % slower. A
//! bench killed by a signal leaves its running server and that server's directory (under
//! the temp dir, `gw-redis-*`) behind.

use std::time::Duration;

use anyhow::{Context, Result};
use gateway_e2e::process::free_port;
use gateway_e2e::redis_server::RedisServer;

use crate::measure::cpu_of;
use crate::options::Options;

/// Redis CPU: from `/proc` of its pid when visible, else `INFO CPU`.
pub(crate) struct RedisProbe {
    conn: redis::aio::MultiplexedConnection,
    /// Redis's process id, when its `/proc` entry is readable (a local server).
    pub(crate) pid: Option<u32>,
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

    /// Redis's CPU time (user + system) since its start.
    pub(crate) async fn cpu(&mut self) -> Result<Duration> {
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
    pub(crate) async fn calls(&mut self) -> Result<RedisCalls> {
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
pub(crate) struct RedisCalls {
    /// `EVALSHA` calls.
    pub(crate) scripts: u64,
    /// Every command, those run by scripts included.
    pub(crate) commands: u64,
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

    /// The calls made since `start` was read.
    pub(crate) fn since(self, start: Self) -> Self {
        Self {
            scripts: self.scripts.saturating_sub(start.scripts),
            commands: self.commands.saturating_sub(start.commands),
        }
    }
}

/// The Redis one scenario runs against: a private server started for it, or the shared
/// one of `--redis-url`.
pub(crate) struct ScenarioRedis {
    /// Its URL, for the gateway.
    pub(crate) url: String,
    /// A connection to read its CPU and command counts.
    pub(crate) probe: RedisProbe,
    server: Option<RedisServer>,
}

impl ScenarioRedis {
    /// Starts a private server (or connects to `--redis-url`'s) and connects to it.
    pub(crate) async fn start(options: &Options) -> Result<Self> {
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
    pub(crate) async fn finish(mut self, prefix: &str) -> Result<()> {
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

/// `redis-server --version`'s `v=` field.
pub(crate) fn redis_server_version() -> Option<String> {
    let out = std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.split_whitespace().find_map(|w| w.strip_prefix("v="))?;
    Some(version.to_owned())
}

#[cfg(test)]
mod tests {
    use super::RedisCalls;

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
