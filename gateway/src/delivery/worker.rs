//! The delivery worker: leases jobs, makes each attempt, records the outcome.
//!
//! Per shard, one reader leases up to as many jobs as it holds delivery slots (a
//! blocking `XREADGROUP` on its own connection, so a new job starts within
//! milliseconds) and runs each in its own task. A maintenance loop moves due
//! retries back to the stream, renews the leases of running deliveries and
//! moves handed-off jobs whose lease ended to the stream; the readers take over
//! stream jobs whose lease expired. A job is
//! acknowledged only together with its recorded outcome; if anything fails
//! before that (Redis down, process killed), the lease expires and the job is
//! delivered again with the same `webhook-id`.
//!
//! The API of the same process hands over the jobs it has just stored when slots are
//! free and the shard's stream is drained ([`Worker::handoff_slots`],
//! [`Worker::dispatch`]): they start at once, from the event in memory, with no trip
//! through the stream (see [`crate::queue`]).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::{task_tracker::TaskTrackerToken, TaskTracker};
use tracing::{info, warn};

use super::attempt::{attempt, AttemptReport, DeliveryContext, Verdict};
use super::retry::{next_step, AttemptResult, NextStep};
use crate::model::event::EventCreate;
use crate::plugins::PluginEvent;
use crate::queue::{Completion, Job, Lease, Queue};
use crate::store::deliveries::DeliveryInput;
use crate::store::events::{HandedOff, HandoffSlots};
use crate::store::time::{now_ms, rfc3339};
use crate::store::{Store, StoreResult};

/// How long the reader waits on an empty stream before looking again.
const READ_BLOCK: Duration = Duration::from_millis(1_000);
/// How often due retries are moved back to the stream.
const MAINTENANCE_EVERY: Duration = Duration::from_millis(200);
/// Error code of a plugin that could not be loaded (a store failure, not the plugin's fault).
pub const PLUGIN_UNAVAILABLE: &str = "plugin_unavailable";

/// The operational event sent when the gateway pauses an endpoint by itself.
pub const OPERATIONAL_EVENT: &str = "endpoint.disabled";

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Most jobs leased in one read.
const MAX_BATCH: usize = 256;

/// Settings of the worker pool.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Lease length; expired leases are reclaimed.
    pub lease: Duration,
    /// How long shutdown waits for in-flight deliveries before leaving them to lease expiry.
    pub drain_timeout: Duration,
    /// An endpoint whose every attempt has failed for this long is paused, and the tenant
    /// told with an `endpoint.disabled` event.
    pub disable_after_failing: Duration,
    /// Most deliveries to one endpoint in flight at once in this process, so that a slow
    /// or hanging receiver cannot take the whole pool from everyone else.
    pub endpoint_concurrency: usize,
}

/// The worker pool of one process.
#[derive(Clone)]
pub struct Worker {
    store: Store,
    queue: Queue,
    ctx: DeliveryContext,
    slots: Arc<Semaphore>,
    settings: WorkerSettings,
    /// The jobs being delivered, whose leases the maintenance loop renews; shared with
    /// each delivery's task (no copy of the job per delivery).
    in_flight: Arc<Mutex<HashSet<Arc<Job>>>>,
    endpoint_slots: Arc<EndpointSlots>,
    /// Every delivery task, read or handed off: shutdown waits for them (bounded).
    tasks: TaskTracker,
    /// Per shard: whether the reader's last read emptied the stream. Ingest hands jobs
    /// over only then, so a backlog (retries, overflow) is never overtaken indefinitely.
    stream_drained: Arc<Vec<AtomicBool>>,
}

/// A job whose lease the maintenance loop renews; untracked when dropped.
struct InFlight {
    set: Arc<Mutex<HashSet<Arc<Job>>>>,
    key: Arc<Job>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut set) = self.set.lock() {
            set.remove(&self.key);
        }
    }
}

/// How long a job waits when its endpoint already has all its slots busy.
const ENDPOINT_BUSY_DELAY_MS: u64 = 250;
/// How long a job waits in the worker for its endpoint's slot before going back to the queue.
const ENDPOINT_BUSY_WAIT: Duration = Duration::from_millis(100);

/// Deliveries in flight per endpoint in this process: one semaphore per endpoint.
#[derive(Default)]
struct EndpointSlots {
    per_endpoint: Mutex<std::collections::HashMap<String, Arc<Semaphore>>>,
}

impl EndpointSlots {
    /// A slot of `endpoint`, waiting at most `wait` for one to free up. A fast endpoint
    /// under load gets its slot within that wait; a slow or hanging one does not, and its
    /// job goes back to the queue for a while instead of holding a worker slot.
    async fn take(
        &self,
        endpoint: &str,
        limit: usize,
        wait: Duration,
    ) -> Option<OwnedSemaphorePermit> {
        let semaphore = {
            let mut map = self.per_endpoint.lock().ok()?;
            map.entry(endpoint.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(limit)))
                .clone()
        };
        if let Ok(permit) = semaphore.clone().try_acquire_owned() {
            return Some(permit);
        }
        tokio::time::timeout(wait, semaphore.acquire_owned())
            .await
            .ok()?
            .ok()
    }
}

impl Worker {
    /// A worker pool over the given parts.
    pub fn new(store: Store, queue: Queue, ctx: DeliveryContext, settings: WorkerSettings) -> Self {
        let slots = Arc::new(Semaphore::new(settings.concurrency));
        let stream_drained = Arc::new(
            (0..queue.keys().shards())
                .map(|_| AtomicBool::new(true))
                .collect(),
        );
        Self {
            store,
            queue,
            ctx,
            slots,
            settings,
            in_flight: Arc::default(),
            endpoint_slots: Arc::default(),
            tasks: TaskTracker::new(),
            stream_drained,
        }
    }

    /// The free slots of this pool, for ingest to hand `tenant`'s new jobs over (see
    /// [`crate::store::events::HandoffSlots`]), with a token that keeps shutdown waiting
    /// until those jobs are dispatched; `None` once the pool is shutting down, or while
    /// the tenant's shard has a backlog on its stream (new jobs then queue behind it).
    pub fn handoff_slots(&self, tenant: &str) -> Option<(HandoffSlots, TaskTrackerToken)> {
        let shard = usize::from(self.queue.keys().shard_of(tenant));
        let drained = self
            .stream_drained
            .get(shard)
            .is_some_and(|d| d.load(Ordering::Relaxed));
        // No free slot: no task spawned and no slot held across the ingest round trip.
        if self.tasks.is_closed() || !drained || self.slots.available_permits() == 0 {
            return None;
        }
        let token = self.tasks.token();
        let slots = HandoffSlots {
            slots: self.slots.clone(),
            lease_ms: millis(self.settings.lease),
        };
        Some((slots, token))
    }

    /// Starts the deliveries that ingest just stored as leased to this process, from the
    /// event as it was posted: no stream read and no reload of what was just written.
    pub fn dispatch(&self, tenant: &str, event_id: &str, event: &EventCreate, handed: HandedOff) {
        let HandedOff {
            permits,
            deliveries,
            endpoints_version,
            created_ms,
        } = handed;
        let plugin_event = PluginEvent {
            id: event_id.to_string(),
            event_type: event.event_type.clone(),
            tenant: tenant.to_string(),
            channel: event.channel.clone(),
            created_at: rfc3339(created_ms),
            payload: event.payload.get().to_string(),
        };
        let shard = self.queue.keys().shard_of(tenant);
        // One copy of the event per delivery, the last one the original.
        let events = std::iter::repeat_n(plugin_event, deliveries.len());
        for (((msg, endpoint_id), permit), event) in deliveries.into_iter().zip(permits).zip(events)
        {
            let job = Job {
                shard,
                lease: Lease::HandedOff,
                tenant: tenant.to_string(),
                msg,
                event: event_id.to_string(),
            };
            let input = DeliveryInput {
                status: "pending".into(),
                attempts: 0,
                endpoint_id,
                manual: false,
                event,
                event_created_ms: created_ms,
                endpoints_version,
            };
            self.start(job, Some(input), permit);
        }
    }

    /// Runs one delivery in its own task, its lease renewed until it ends.
    fn start(&self, job: Job, input: Option<DeliveryInput>, permit: OwnedSemaphorePermit) {
        let job = Arc::new(job);
        if let Ok(mut set) = self.in_flight.lock() {
            set.insert(job.clone());
        }
        let worker = self.clone();
        self.tasks.spawn(async move {
            // Forgotten (no more lease renewal) however `process` ends, panics included.
            let tracked = InFlight {
                set: worker.in_flight.clone(),
                key: job,
            };
            worker.process(&tracked.key, input).await;
            drop(permit);
        });
    }

    /// Runs until `shutdown` is cancelled, then drains in-flight deliveries (bounded).
    pub async fn run(self, shutdown: CancellationToken) {
        let mut loops = JoinSet::new();
        for shard in 0..self.queue.keys().shards() {
            loops.spawn(self.clone().read_loop(shard, shutdown.clone()));
        }
        // Maintenance (retries due, lease renewal) outlives the readers: deliveries still
        // draining after shutdown keep their leases renewed until they finish.
        let maintenance_stop = CancellationToken::new();
        let maintenance = tokio::spawn(self.clone().maintenance_loop(maintenance_stop.clone()));
        while loops.join_next().await.is_some() {}
        // No more handoffs from ingest: what the API stores from now on goes on the stream.
        self.slots.close();
        self.tasks.close();
        let drained = tokio::time::timeout(self.settings.drain_timeout, self.tasks.wait()).await;
        maintenance_stop.cancel();
        let _ = maintenance.await;
        match drained {
            Ok(()) => info!("workers stopped; in-flight deliveries finished"),
            Err(_) => {
                warn!("workers stopped; unfinished deliveries stay leased and will be retried")
            }
        }
    }

    async fn read_loop(self, shard: u16, shutdown: CancellationToken) {
        let mut conn = match self
            .store
            .dedicated_conn(READ_BLOCK + Duration::from_secs(5))
        {
            Ok(conn) => conn,
            Err(e) => {
                warn!(shard, error = %e, "cannot open a reader connection; using the shared one");
                self.store.conn()
            }
        };
        let reclaim_every = (self.settings.lease / 4).max(Duration::from_millis(250));
        let mut reclaim_due = tokio::time::Instant::now();
        let mut reclaim_cursor = String::from("0-0");
        let mut backoff = Duration::from_millis(100);
        loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => return,
                permit = self.slots.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => return },
            };
            let mut permits = vec![first];
            // Each shard's reader holds the slots it may fill while it waits on its stream:
            // at most its share, so the other shards' readers are never starved, and, while
            // its stream is drained, beyond its first slot at most half of those free, so that
            // ingest can still hand its new jobs straight over. (Per reader: with about as
            // many shards as slots, the readers' first slots are all there is, and ingest
            // uses the stream.)
            let share = (self.settings.concurrency / usize::from(self.queue.keys().shards()))
                .clamp(1, MAX_BATCH);
            // While the stream has a backlog ingest hands nothing off: take the whole share.
            let drained = self.stream_drained[usize::from(shard)].load(Ordering::Relaxed);
            let wanted = if drained {
                share.min(1 + self.slots.available_permits() / 2)
            } else {
                share
            };
            while permits.len() < wanted {
                match self.slots.clone().try_acquire_owned() {
                    Ok(p) => permits.push(p),
                    Err(_) => break,
                }
            }
            // Jobs whose worker died come first: they have waited a whole lease already.
            let read = if tokio::time::Instant::now() >= reclaim_due {
                reclaim_due = tokio::time::Instant::now() + reclaim_every;
                let reclaimed = self
                    .queue
                    .reclaim(shard, permits.len(), &mut reclaim_cursor)
                    .await;
                if let Ok(jobs) = &reclaimed {
                    if !jobs.is_empty() {
                        info!(
                            shard,
                            count = jobs.len(),
                            "took over jobs whose lease expired"
                        );
                    }
                }
                reclaimed
            } else {
                let asked = permits.len();
                let read = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    read = self.queue.read(&mut conn, shard, asked, READ_BLOCK.min(reclaim_every)) => read,
                };
                if let Ok(jobs) = &read {
                    // A full read means the stream may hold more: until a read comes back
                    // short, new events queue behind it instead of being handed off.
                    self.stream_drained[usize::from(shard)]
                        .store(jobs.len() < asked, Ordering::Relaxed);
                }
                read
            };
            match read {
                Ok(jobs) => {
                    backoff = Duration::from_millis(100);
                    self.spawn_jobs(jobs, permits).await;
                }
                Err(e) => {
                    self.ctx.metrics.redis_errors.inc();
                    warn!(shard, error = %e, "reading jobs failed; backing off");
                    drop(permits);
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    if let Err(e) = self.queue.ensure_groups().await {
                        warn!(error = %e, "recreating consumer groups failed");
                    }
                }
            }
        }
    }

    async fn spawn_jobs(&self, jobs: Vec<Job>, mut permits: Vec<OwnedSemaphorePermit>) {
        if jobs.is_empty() {
            return;
        }
        // One round trip for the whole batch. If it fails, the jobs stay leased and are
        // taken over after their lease, as when a single delivery cannot be recorded.
        let inputs = match self.store.load_deliveries(&jobs).await {
            Ok(inputs) => inputs,
            Err(e) => {
                self.ctx.metrics.redis_errors.inc();
                warn!(count = jobs.len(), error = %e, "loading deliveries failed; they will be retried after their lease expires");
                return;
            }
        };
        for (job, input) in jobs.into_iter().zip(inputs) {
            let input = match input {
                Ok(input) => input,
                Err(e) => {
                    // Only this job: it stays leased and is taken over after its lease (and
                    // dead-lettered if it keeps failing), while the rest of the batch goes on.
                    self.ctx.metrics.redis_errors.inc();
                    warn!(msg = %job.msg, error = %e, "loading a delivery failed; it will be retried after its lease expires");
                    continue;
                }
            };
            let Some(permit) = permits.pop() else { break };
            self.start(job, input, permit);
        }
    }

    /// Moves due retries back onto the streams, every [`MAINTENANCE_EVERY`], and renews
    /// the leases of deliveries still running, every third of a lease.
    async fn maintenance_loop(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(MAINTENANCE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let renew_every = self.settings.lease / 3;
        let mut renew_due = tokio::time::Instant::now() + renew_every;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if tokio::time::Instant::now() >= renew_due {
                renew_due = tokio::time::Instant::now() + renew_every;
                self.renew_leases().await;
            }
            for shard in 0..self.queue.keys().shards() {
                if let Err(e) = self.queue.promote_due(shard, now_ms()).await {
                    warn!(shard, error = %e, "moving due retries failed");
                }
            }
        }
    }

    async fn renew_leases(&self) {
        let running: Vec<Arc<Job>> = match self.in_flight.lock() {
            Ok(set) => set.iter().cloned().collect(),
            Err(_) => return,
        };
        for shard in 0..self.queue.keys().shards() {
            let jobs: Vec<&Job> = running
                .iter()
                .map(|job| &**job)
                .filter(|job| job.shard == shard)
                .collect();
            if let Err(e) = self.queue.renew(shard, &jobs).await {
                warn!(shard, error = %e, "renewing leases failed");
            }
        }
    }

    /// Delivers one job whose stored input was loaded with its batch (`None`: the log or
    /// event is gone). Store errors leave the job leased: it is retried after the lease.
    async fn process(&self, job: &Job, input: Option<DeliveryInput>) {
        let span = tracing::info_span!("delivery", msg = %job.msg, event = %job.event, tenant = %job.tenant);
        let result = tracing::Instrument::instrument(self.try_process(job, input), span).await;
        if let Err(e) = result {
            self.ctx.metrics.redis_errors.inc();
            warn!(msg = %job.msg, error = %e, "delivery not recorded; it will be retried after its lease expires");
        }
    }

    async fn try_process(&self, job: &Job, input: Option<DeliveryInput>) -> StoreResult<()> {
        let Some(input) = input else {
            return self.queue.discard_job(job).await;
        };
        if input.status != "pending" {
            return self.queue.discard_job(job).await;
        }
        let endpoints = self
            .store
            .endpoints_at(&job.tenant, input.endpoints_version)
            .await?;
        let Some(endpoint) = endpoints.get(&input.endpoint_id) else {
            let done = Completion {
                status: "failed",
                attempts: input.attempts,
                retry_at_ms: None,
                attempt: None,
                request: None,
                last_error: Some("endpoint was deleted".into()),
                stats: None,
                reached: None,
            };
            self.queue.complete(job, &done).await?;
            return Ok(());
        };
        if !endpoint.active {
            return self.queue.hold(job, &endpoint.id, endpoints.version).await;
        }
        let now = now_ms();
        if let Some(limit) = endpoint.rate_limit_per_s {
            if !self
                .queue
                .take_endpoint_slot(&job.tenant, &endpoint.id, limit, now)
                .await?
            {
                // Over the rate: wait for the next second instead of failing.
                let next_second = (now / 1000 + 1) * 1000 + rand::rng().random_range(0..200);
                return self.queue.defer(job, next_second).await;
            }
        }
        let slot = self
            .endpoint_slots
            .take(
                &endpoint.id,
                self.settings.endpoint_concurrency,
                ENDPOINT_BUSY_WAIT,
            )
            .await;
        let Some(_slot) = slot else {
            // This endpoint already has its share of the worker pool (a slow or hanging
            // receiver); others get the remaining slots while this job waits a moment.
            return self
                .queue
                .defer(job, now_ms() + ENDPOINT_BUSY_DELAY_MS)
                .await;
        };
        crate::failpoint::hit("before_send");
        let report = attempt(&self.ctx, endpoint, &input.event, &job.msg).await;
        crate::failpoint::hit("after_send_before_ack");
        let attempt_no = input.attempts + 1;
        let policy = if input.manual {
            // A manual retry gets exactly one attempt.
            super::retry::RetryPolicy {
                max_attempts: attempt_no,
                ..endpoint.retry
            }
        } else {
            endpoint.retry
        };
        let mut done = completion(&report, attempt_no, &policy)?;
        done.stats = Some((endpoint.id.clone(), stats_field(&done, &report.verdict)));
        done.reached = match report.verdict {
            Verdict::Sent(result) => Some(result == AttemptResult::Success),
            _ => None,
        };
        let Some(failing_since) = self.queue.complete(job, &done).await? else {
            return Ok(());
        };
        self.count(&done, &report.verdict, input.event_created_ms);
        let gone = matches!(
            report.verdict,
            Verdict::Sent(AttemptResult::Status { code: 410, .. })
        );
        let failing_for = now_ms().saturating_sub(failing_since);
        let reason = if gone {
            Some(
                "the receiver answered 410 Gone; resume the endpoint once it exists again"
                    .to_string(),
            )
        } else if failing_since > 0 && failing_for >= millis(self.settings.disable_after_failing) {
            Some(format!(
                "every attempt failed for {} s; resume the endpoint once the receiver is fixed",
                failing_for / 1000
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            self.disable(&job.tenant, &endpoint.id, &reason).await?;
        }
        Ok(())
    }

    /// Pauses an endpoint and tells the tenant: an `endpoint.disabled` event goes to every
    /// endpoint of the tenant that subscribes to that exact type.
    async fn disable(&self, tenant: &str, endpoint: &str, reason: &str) -> StoreResult<()> {
        let current = match self.store.get_endpoint(tenant, endpoint).await {
            Ok(current) => current,
            Err(crate::store::StoreError::NotFound) => return Ok(()),
            Err(e) => return Err(e),
        };
        if !current.active {
            return Ok(());
        }
        // Tell first, pause second. If the pause fails, the endpoint stays active, the next
        // failed attempt comes back here, and the idempotency key (the endpoint's revision,
        // unchanged) keeps the notice single: never a pause the tenant was not told about.
        let set = self.store.load_endpoints(tenant).await?;
        let payload = serde_json::value::to_raw_value(
            &serde_json::json!({"endpoint_id": endpoint, "reason": reason, "disabled_at": crate::store::time::rfc3339(now_ms())}),
        )?;
        for target in set
            .endpoints
            .iter()
            .filter(|e| e.id != endpoint && e.event_types.iter().any(|t| t == OPERATIONAL_EVENT))
        {
            let event = crate::model::event::EventCreate {
                event_type: OPERATIONAL_EVENT.to_string(),
                payload: payload.clone(),
                channel: None,
                endpoint_id: Some(target.id.clone()),
            };
            let key = format!(
                "{OPERATIONAL_EVENT}:{endpoint}:{}:{}",
                current.revision, target.id
            );
            self.store
                .ingest(tenant, &event, Some(&key), None, None)
                .await?;
        }
        if self
            .store
            .disable_endpoint(tenant, endpoint, reason)
            .await?
        {
            warn!(%endpoint, reason, "endpoint paused by the gateway");
        }
        Ok(())
    }

    /// One place that logs and counts a recorded outcome.
    fn count(&self, done: &Completion, verdict: &Verdict, event_created_ms: u64) {
        let metrics = &self.ctx.metrics;
        let outcome = match (done.status, verdict) {
            ("pending", _) => "retry",
            (_, Verdict::PluginFailed { .. }) => "plugin_error",
            (status, _) => status,
        };
        metrics.deliveries.with_label_values(&[outcome]).inc();
        if done.status == "delivered" {
            let waited = now_ms().saturating_sub(event_created_ms);
            metrics
                .ingest_to_delivery_seconds
                .observe(waited as f64 / 1000.0);
        }
        tracing::debug!(outcome, attempts = done.attempts, "delivery recorded");
    }
}

/// The hourly-stats field an outcome counts under.
fn stats_field(done: &Completion, verdict: &Verdict) -> &'static str {
    match (done.status, verdict) {
        ("pending", _) => "attempt_failed",
        (_, Verdict::PluginFailed { .. }) => "failed",
        (status, _) => match status {
            "delivered" => "delivered",
            "dropped" => "dropped",
            _ => "failed",
        },
    }
}

/// What to record for an attempt report (pure apart from the jitter draw).
fn completion(
    report: &AttemptReport,
    attempt_no: u32,
    policy: &super::retry::RetryPolicy,
) -> StoreResult<Completion> {
    let attempt = match &report.attempt {
        Some(a) => Some(serde_json::to_string(a)?),
        None => None,
    };
    let request = match &report.request {
        Some(r) => Some(serde_json::to_string(r)?),
        None => None,
    };
    let last_error = report.last_error();
    let jitter: f64 = rand::rng().random();
    // A plugin that could not be loaded (Redis unreachable) is retried like a receiver
    // that did not answer; any other plugin error is final for this delivery.
    let retryable = match &report.verdict {
        Verdict::Sent(result) => Some(*result),
        Verdict::PluginFailed { code, .. } if *code == PLUGIN_UNAVAILABLE => {
            Some(AttemptResult::NoAnswer)
        }
        _ => None,
    };
    let (status, attempts, retry_at_ms) = match (&report.verdict, retryable) {
        (Verdict::Dropped(_), _) => ("dropped", attempt_no - 1, None),
        (_, Some(result)) => match next_step(policy, attempt_no, result, jitter) {
            NextStep::Delivered => ("delivered", attempt_no, None),
            NextStep::RetryIn(ms) => ("pending", attempt_no, Some(now_ms() + ms)),
            NextStep::GiveUp => ("failed", attempt_no, None),
        },
        (_, None) => ("failed", attempt_no, None),
    };
    let done = Completion {
        status,
        attempts,
        retry_at_ms,
        attempt,
        request,
        last_error: if status == "delivered" {
            None
        } else {
            last_error
        },
        stats: None,
        reached: None,
    };
    Ok(done)
}
