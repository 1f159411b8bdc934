//! Durable delivery jobs on Redis streams: ready, leased, delayed, held and dead.
//!
//! - **Ready**: an entry `{t: tenant, m: msg, e: event}` in the shard's stream `{S}:jobs`.
//! - **Leased**: read through the consumer group `workers`; the entry sits in the group's
//!   pending list until acknowledged. A worker that dies leaves it there; once it has been
//!   idle longer than the lease, any worker claims it (`XAUTOCLAIM`) and delivers it again.
//! - **Handed off**: a process that ingests an event while it has a free delivery slot
//!   for each of its deliveries and its shard's stream is drained delivers it itself,
//!   with no trip through the stream. The ingest script then writes the
//!   job into `{S}:leases` scored by the lease's end instead of onto the stream; the worker
//!   renews that score while it delivers. If the process dies, the mover puts the job on the
//!   stream when the lease ends, as a reclaim would.
//! - **Delayed**: a failed attempt's retry waits in the zset `{S}:delayed` scored by due
//!   time; a mover script puts due ones back on the stream atomically.
//! - **Held**: a job whose endpoint is paused waits in `{S}:t:<tid>:ep:<ep>:held` until resume.
//! - **Done**: the outcome is recorded and the entry acknowledged and deleted in one script,
//!   so a job is never acknowledged before its outcome is stored (at-least-once).
//!
//! Every script touches keys of one shard's hash tag only.

mod scripts;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamReadOptions, StreamReadReply,
};
use redis::AsyncCommands;

use crate::store::group_commit::{ScriptCall, ShardBatchers};
use crate::store::{Keys, StoreError, StoreResult};

/// Consumer group every worker joins.
pub const GROUP: &str = "workers";

/// One leased delivery job.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Job {
    /// Shard the job belongs to.
    pub shard: u16,
    /// How the job is held while it is delivered.
    pub lease: Lease,
    /// Tenant id.
    pub tenant: String,
    /// Delivery log id (`msg_...`).
    pub msg: String,
    /// Event id (`evt_...`).
    pub event: String,
}

/// What holds a job for the worker delivering it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Lease {
    /// Read from the shard's stream: the entry id, pending in the consumer group.
    Stream(String),
    /// Handed off at ingest to this process: the job's member in the shard's leases set,
    /// scored by the lease's end.
    HandedOff,
}

impl Job {
    /// The job as a zset member (`tenant msg event`), as the delayed, held, leases and dead
    /// sets keep it and the scripts turn back into a stream entry.
    fn member(&self) -> String {
        format!("{} {} {}", self.tenant, self.msg, self.event)
    }

    /// The stream entry id as the scripts take it: empty for a job handed off at ingest.
    fn entry_arg(&self) -> &str {
        match &self.lease {
            Lease::Stream(entry) => entry,
            Lease::HandedOff => "",
        }
    }
}

/// What to record when an attempt (or a decision not to attempt) is over.
#[derive(Debug, Clone)]
pub struct Completion {
    /// New log status (`pending` for a scheduled retry).
    pub status: &'static str,
    /// Attempts made so far, this one included.
    pub attempts: u32,
    /// When the retry is due, for `pending`.
    pub retry_at_ms: Option<u64>,
    /// The attempt record (JSON), if an attempt was made.
    pub attempt: Option<String>,
    /// The request as sent (JSON, secrets masked), if one was built.
    pub request: Option<String>,
    /// Last error or drop reason.
    pub last_error: Option<String>,
    /// Endpoint whose hourly stats count this outcome, and the outcome's name.
    pub stats: Option<(String, &'static str)>,
    /// Whether the receiver answered 2xx (`Some(true)`), failed (`Some(false)`), or
    /// was not reached (`None`: plugin drop or error): feeds the endpoint's health.
    pub reached: Option<bool>,
}

/// The job queue of one gateway deployment.
#[derive(Clone)]
pub struct Queue {
    conn: ConnectionManager,
    keys: Arc<Keys>,
    consumer: String,
    lease_ms: u64,
    max_leases: u64,
    retention_secs: u64,
    /// Outcome script calls, sent in batches per shard.
    completions: Arc<ShardBatchers>,
}

impl Queue {
    /// A queue handle; `consumer` names this process in the consumer group. A job
    /// leased more than `max_leases` times (it keeps crashing its worker) is dead-lettered.
    pub fn new(
        conn: ConnectionManager,
        keys: Keys,
        consumer: String,
        lease_ms: u64,
        max_leases: u64,
        retention_secs: u64,
    ) -> Self {
        let completions = ShardBatchers::new(&scripts::COMPLETE, &conn, keys.shards());
        Self {
            completions: Arc::new(completions),
            conn,
            keys: Arc::new(keys),
            consumer,
            lease_ms,
            max_leases,
            retention_secs,
        }
    }

    /// The key layout.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Creates each shard's stream and consumer group if missing. The group starts at the
    /// beginning of the stream, so jobs written before any worker existed are not skipped.
    pub async fn ensure_groups(&self) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        for shard in 0..self.keys.shards() {
            let created: Result<(), redis::RedisError> = conn
                .xgroup_create_mkstream(self.keys.jobs(shard), GROUP, "0")
                .await;
            match created {
                Ok(()) => {}
                Err(e) if e.code() == Some("BUSYGROUP") => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Leases up to `count` new jobs of a shard, waiting up to `block` for one to arrive.
    /// Use a connection of its own: a blocking read stalls every request multiplexed on it.
    pub async fn read(
        &self,
        conn: &mut ConnectionManager,
        shard: u16,
        count: usize,
        block: Duration,
    ) -> StoreResult<Vec<Job>> {
        let options = StreamReadOptions::default()
            .group(GROUP, &self.consumer)
            .count(count)
            .block(usize::try_from(block.as_millis()).unwrap_or(1000));
        let reply: Option<StreamReadReply> = conn
            .xread_options(&[self.keys.jobs(shard)], &[">"], &options)
            .await?;
        let mut jobs = Vec::new();
        for stream in reply.map(|r| r.keys).unwrap_or_default() {
            for entry in stream.ids {
                jobs.push(job_from(shard, &entry.id, &entry.map));
            }
        }
        Ok(jobs.into_iter().flatten().collect())
    }

    /// Takes over up to `count` jobs whose lease expired (their worker died or hung).
    /// `cursor` is where the previous scan of this shard's pending list stopped ("0-0" to
    /// start over); it is advanced in place, so deep pending lists are scanned over time.
    pub async fn reclaim(
        &self,
        shard: u16,
        count: usize,
        cursor: &mut String,
    ) -> StoreResult<Vec<Job>> {
        let mut conn = self.conn.clone();
        let options = StreamAutoClaimOptions::default().count(count);
        let reply: StreamAutoClaimReply = conn
            .xautoclaim_options(
                self.keys.jobs(shard),
                GROUP,
                &self.consumer,
                self.lease_ms,
                cursor.as_str(),
                options,
            )
            .await?;
        *cursor = reply.next_stream_id.clone();
        if reply.claimed.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for entry in &reply.claimed {
            pipe.cmd("XPENDING")
                .arg(self.keys.jobs(shard))
                .arg(GROUP)
                .arg(&entry.id)
                .arg(&entry.id)
                .arg(1);
        }
        let pending: Vec<Vec<(String, String, u64, u64)>> = pipe.query_async(&mut conn).await?;
        let mut jobs = Vec::new();
        for (entry, info) in reply.claimed.iter().zip(pending) {
            // A job moved here when its handed-off lease ended had one lease before this stream.
            let handed_off_before = u64::from(entry.map.contains_key("l"));
            let leases = info.first().map_or(0, |(_, _, _, count)| *count) + handed_off_before;
            match job_from(shard, &entry.id, &entry.map) {
                Some(job) if leases > self.max_leases => self.dead_letter(&job, leases).await?,
                Some(job) => jobs.push(job),
                None => self.discard(shard, &entry.id).await?,
            }
        }
        Ok(jobs)
    }

    /// Moves a job that was leased `leases` times without an outcome to the dead set.
    async fn dead_letter(&self, job: &Job, leases: u64) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        let message = format!("dead_lettered: the job was taken {leases} times without finishing (its worker crashed each time); retry it by hand once the cause is fixed");
        let _: i64 = scripts::DEAD_LETTER
            .key(self.keys.jobs(job.shard))
            .key(self.keys.dead(job.shard))
            .key(self.keys.log(&job.tenant, &job.msg))
            .arg(job.entry_arg())
            .arg(GROUP)
            .arg(job.member())
            .arg(crate::store::time::now_ms())
            .arg(message)
            .invoke_async(&mut conn)
            .await?;
        tracing::warn!(msg = %job.msg, leases, "job dead-lettered");
        Ok(())
    }

    /// Renews the leases of jobs of one shard this worker is still delivering, so that a
    /// slow delivery is not taken over by another worker while it runs.
    pub async fn renew(&self, shard: u16, jobs: &[&Job]) -> StoreResult<()> {
        let mut entries: Vec<&str> = Vec::new();
        let mut handed_off: Vec<String> = Vec::new();
        for job in jobs {
            match &job.lease {
                Lease::Stream(entry) => entries.push(entry),
                Lease::HandedOff => handed_off.push(job.member()),
            }
        }
        let mut conn = self.conn.clone();
        if !entries.is_empty() {
            let _: redis::Value = redis::cmd("XCLAIM")
                .arg(self.keys.jobs(shard))
                .arg(GROUP)
                .arg(&self.consumer)
                .arg(0)
                .arg(&entries)
                .arg("JUSTID")
                .query_async(&mut conn)
                .await?;
        }
        if !handed_off.is_empty() {
            let _: u64 = scripts::RENEW_LEASES
                .key(self.keys.leases(shard))
                .arg(self.lease_ms)
                .arg(&handed_off)
                .invoke_async(&mut conn)
                .await?;
        }
        Ok(())
    }

    /// Ends the lease of a job that needs no delivery (its log is gone or already finished).
    pub async fn discard_job(&self, job: &Job) -> StoreResult<()> {
        match &job.lease {
            Lease::Stream(entry) => self.discard(job.shard, entry).await,
            Lease::HandedOff => {
                let mut conn = self.conn.clone();
                let _: i64 = conn.zrem(self.keys.leases(job.shard), job.member()).await?;
                Ok(())
            }
        }
    }

    /// Acknowledges and deletes an entry that cannot be a job (malformed) or is already done.
    pub async fn discard(&self, shard: u16, entry: &str) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        let key = self.keys.jobs(shard);
        redis::pipe()
            .xack(&key, GROUP, &[entry])
            .xdel(&key, &[entry])
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// Records the outcome of a job and releases its lease, atomically. Returns `None` when
    /// the job had already been completed by another worker (its outcome is then left alone)
    /// or its log is gone (retention ended; the job is released, nothing recorded), else
    /// since when (Unix ms) the endpoint has failed every attempt, `0` when healthy.
    pub async fn complete(&self, job: &Job, done: &Completion) -> StoreResult<Option<u64>> {
        let (stats_key, stats_field) = match &done.stats {
            Some((endpoint, field)) => {
                let hour = crate::store::time::now_ms() / 3_600_000;
                (
                    self.keys.endpoint_stats(&job.tenant, endpoint, hour),
                    *field,
                )
            }
            // Any key of the same hash tag; unused when the field is empty.
            None => (self.keys.log(&job.tenant, &job.msg), ""),
        };
        let (health_key, health) = match (&done.stats, done.reached) {
            (Some((endpoint, _)), Some(ok)) => (
                self.keys.endpoint_health(&job.tenant, endpoint),
                if ok { "ok" } else { "fail" },
            ),
            _ => (self.keys.log(&job.tenant, &job.msg), ""),
        };
        let large = done.attempt.as_ref().map_or(0, String::len)
            + done.request.as_ref().map_or(0, String::len)
            + done.last_error.as_ref().map_or(0, String::len);
        let mut call = ScriptCall::with_capacity(large);
        call.key(self.keys.log(&job.tenant, &job.msg))
            .key(self.keys.attempts(&job.tenant, &job.msg))
            .key(self.keys.jobs(job.shard))
            .key(self.keys.delayed(job.shard))
            .key(stats_key)
            .key(health_key)
            .key(self.keys.event(&job.tenant, &job.event))
            .key(self.keys.leases(job.shard))
            .arg(job.entry_arg())
            .arg(GROUP)
            .arg(done.status)
            .arg(done.attempts)
            .arg(done.retry_at_ms.map(|t| t.to_string()).unwrap_or_default())
            .arg(done.attempt.as_deref().unwrap_or(""))
            .arg(done.request.as_deref().unwrap_or(""))
            .arg(done.last_error.as_deref().unwrap_or(""))
            .arg(job.member())
            .arg(self.retention_secs)
            .arg(stats_field)
            .arg(health)
            .arg(crate::store::time::now_ms());
        let recorded: i64 = self.completions.shard(job.shard).call_as(call).await?;
        Ok(u64::try_from(recorded).ok())
    }

    /// Parks a job while its endpoint is paused, as seen at endpoints version `seen_version`;
    /// if the endpoints changed since, the job goes back on the stream instead.
    pub async fn hold(&self, job: &Job, endpoint: &str, seen_version: u64) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        let _: i64 = scripts::HOLD_IF_PAUSED
            .key(self.keys.jobs(job.shard))
            .key(self.keys.held(&job.tenant, endpoint))
            .key(self.keys.endpoints_version(&job.tenant))
            .key(self.keys.leases(job.shard))
            .arg(job.entry_arg())
            .arg(GROUP)
            .arg(job.member())
            .arg(crate::store::time::now_ms())
            .arg(seen_version)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Puts a job back to wait until `due_ms` without counting an attempt (its endpoint is
    /// at its rate or concurrency limit).
    pub async fn defer(&self, job: &Job, due_ms: u64) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        let _: i64 = scripts::HOLD
            .key(self.keys.jobs(job.shard))
            .key(self.keys.delayed(job.shard))
            .key(self.keys.leases(job.shard))
            .arg(job.entry_arg())
            .arg(GROUP)
            .arg(job.member())
            .arg(due_ms)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Takes one of an endpoint's deliveries for the current second; `false` when its
    /// `limit` per second is used up (shared by every gateway process).
    pub async fn take_endpoint_slot(
        &self,
        tenant: &str,
        endpoint: &str,
        limit: u32,
        now_ms: u64,
    ) -> StoreResult<bool> {
        let key = self
            .keys
            .endpoint_rate_window(tenant, endpoint, now_ms / 1000);
        let mut conn = self.conn.clone();
        let (used, _): (u64, bool) = redis::pipe()
            .incr(&key, 1)
            .expire(&key, 2)
            .query_async(&mut conn)
            .await?;
        Ok(used <= u64::from(limit))
    }

    /// Puts every held job of an endpoint back on the stream (after resume).
    pub async fn release_held(&self, tenant: &str, endpoint: &str) -> StoreResult<u64> {
        let mut conn = self.conn.clone();
        let mut moved = 0;
        loop {
            let n: u64 = scripts::MOVE_DUE
                .key(self.keys.held(tenant, endpoint))
                .key(self.keys.jobs_for(tenant))
                .arg("+inf")
                .arg(500)
                .invoke_async(&mut conn)
                .await?;
            moved += n;
            if n < 500 {
                return Ok(moved);
            }
        }
    }

    /// Moves retries that are due, and handed-off jobs whose lease ended (the process that
    /// took them died), back onto the shard's stream; returns how many moved.
    pub async fn promote_due(&self, shard: u16, now_ms: u64) -> StoreResult<u64> {
        let mut conn = self.conn.clone();
        let retries: u64 = scripts::MOVE_DUE
            .key(self.keys.delayed(shard))
            .key(self.keys.jobs(shard))
            .arg(now_ms)
            .arg(500)
            .invoke_async(&mut conn)
            .await?;
        let expired: u64 = scripts::MOVE_EXPIRED_LEASES
            .key(self.keys.leases(shard))
            .key(self.keys.jobs(shard))
            .arg(500)
            .invoke_async(&mut conn)
            .await?;
        Ok(retries + expired)
    }

    /// Re-queues a finished delivery by hand (failed or delivered → pending, one more attempt).
    pub async fn requeue(&self, tenant: &str, msg: &str) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        let answer: String = scripts::REQUEUE
            .key(self.keys.log(tenant, msg))
            .key(self.keys.jobs_for(tenant))
            .key(self.keys.dead(self.keys.shard_of(tenant)))
            .arg(tenant)
            .arg(msg)
            .invoke_async(&mut conn)
            .await?;
        match answer.as_str() {
            "ok" => Ok(()),
            "missing" => Err(StoreError::NotFound),
            status => Err(StoreError::Conflict(format!(
                "only failed or delivered logs can be retried; this one is {status}"
            ))),
        }
    }

    /// Jobs by state, summed over every shard (for metrics).
    pub async fn depth(&self) -> StoreResult<QueueDepth> {
        let mut conn = self.conn.clone();
        let mut depth = QueueDepth::default();
        for shard in 0..self.keys.shards() {
            let (entries, pending, delayed, dead, handed_off): (u64, redis::Value, u64, u64, u64) =
                redis::pipe()
                    .xlen(self.keys.jobs(shard))
                    .cmd("XPENDING")
                    .arg(self.keys.jobs(shard))
                    .arg(GROUP)
                    .zcard(self.keys.delayed(shard))
                    .zcard(self.keys.dead(shard))
                    .zcard(self.keys.leases(shard))
                    .query_async(&mut conn)
                    .await?;
            let leased = match pending {
                redis::Value::Array(items) => match items.first() {
                    Some(redis::Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
                    _ => 0,
                },
                _ => 0,
            };
            depth.ready += entries.saturating_sub(leased);
            depth.leased += leased + handed_off;
            depth.delayed += delayed;
            depth.dead += dead;
        }
        Ok(depth)
    }
}

/// How many jobs are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Waiting for a worker.
    pub ready: u64,
    /// Taken by a worker, not yet finished (handed-off jobs included).
    pub leased: u64,
    /// Waiting for their retry time.
    pub delayed: u64,
    /// Dead-lettered.
    pub dead: u64,
}

fn job_from(
    shard: u16,
    entry: &str,
    map: &std::collections::HashMap<String, redis::Value>,
) -> Option<Job> {
    let field = |name: &str| -> Option<String> {
        match map.get(name)? {
            redis::Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
            redis::Value::SimpleString(s) => Some(s.clone()),
            _ => None,
        }
    };
    Some(Job {
        shard,
        lease: Lease::Stream(entry.to_string()),
        tenant: field("t")?,
        msg: field("m")?,
        event: field("e")?,
    })
}
