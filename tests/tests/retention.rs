//! Retention: every event and log key carries a TTL, and the janitor trims index
//! entries past the retention, so Redis does not grow without bound.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use gateway::store::{Keys, Store};
use gateway_e2e::{redis_url, Receiver, TestGateway};
use redis::AsyncCommands;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_logs_expire_and_indexes_are_trimmed() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let rx = Receiver::start().await;
    api.endpoint(json!({"url": rx.url("/")})).await;
    let (event, _) = api.event(json!({"type": "x", "payload": {"a": 1}})).await;
    let log = api.deliveries_of(&event).await.remove(0);
    api.wait_log_status(&log, "delivered", Duration::from_secs(10))
        .await;

    let keys = Keys::new(&gw.prefix, 2);
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let retention = 30 * 86_400;
    let legacy_list: bool = conn.exists(keys.attempts(&api.id, &log)).await.unwrap();
    assert!(
        !legacy_list,
        "attempts live in the log hash, not in a key of their own"
    );
    for key in [keys.event(&api.id, &event), keys.log(&api.id, &log)] {
        let ttl: i64 = conn.ttl(&key).await.unwrap();
        assert!(
            ttl > retention - 60 && ttl <= retention,
            "{key} has TTL {ttl}"
        );
    }

    let store = Store::connect(&redis_url(), keys, Duration::from_secs(30 * 86_400)).unwrap();
    let now = gateway::store::time::now_ms();
    assert_eq!(
        store.trim_expired_indexes(now).await.unwrap(),
        0,
        "nothing is old yet"
    );
    let (_, page) = api.get("/v1/logs").await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let later = now + 31 * 86_400 * 1000;
    assert_eq!(
        store.trim_expired_indexes(later).await.unwrap(),
        2,
        "tenant and endpoint index entries"
    );
    let (_, page) = api.get("/v1/logs").await;
    assert_eq!(page["data"], json!([]));
    gw.stop().await;
}

/// Keys under a prefix, hash-tagged ones included.
async fn count_keys(conn: &mut redis::aio::MultiplexedConnection, prefix: &str) -> usize {
    let mut total = 0;
    for pattern in [format!("{prefix}:*"), format!("{{{prefix}:*")] {
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(conn)
                .await
                .unwrap();
            total += keys.len();
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_short_retention_redis_stays_bounded() {
    let gw = TestGateway::start_with(|c| c.retention_secs = Some(2)).await;
    let api = gw.tenant().await;
    let rx = Receiver::start().await;
    let (endpoint, _) = api.endpoint(json!({"url": rx.url("/")})).await;
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let baseline = count_keys(&mut conn, &gw.prefix).await;
    for round in 0..3 {
        for i in 0..50 {
            api.event(json!({"type": "x", "payload": {"round": round, "i": i}}))
                .await;
        }
        rx.wait_for(50 * (round + 1), Duration::from_secs(10)).await;
        tokio::time::sleep(Duration::from_millis(3_500)).await;
        // events, logs and attempts expired; the janitor (every retention/2) trimmed the indexes
        let keys = count_keys(&mut conn, &gw.prefix).await;
        assert!(
            keys <= baseline + 6,
            "round {round}: {keys} keys left (baseline {baseline})"
        );
        let logs: u64 = conn
            .zcard(Keys::new(&gw.prefix, 2).logs_index(&api.id))
            .await
            .unwrap();
        assert_eq!(logs, 0, "round {round}: the log index was not trimmed");
        let ep_logs: u64 = conn
            .zcard(Keys::new(&gw.prefix, 2).endpoint_logs_index(&api.id, &endpoint))
            .await
            .unwrap();
        assert_eq!(ep_logs, 0);
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_due_after_the_retention_still_finds_its_log() {
    let gw = TestGateway::start_with(|c| c.retention_secs = Some(1)).await;
    let api = gw.tenant().await;
    let rx = Receiver::start().await;
    rx.respond_with(&[500]);
    api.endpoint(json!({"url": rx.url("/"), "retry": {"max_attempts": 3, "initial_delay_ms": 2500, "multiplier": 1, "max_delay_ms": 2500}}))
        .await;
    let (event, _) = api
        .event(json!({"type": "x", "payload": {"late": true}}))
        .await;
    let log = api.deliveries_of(&event).await.remove(0);
    let got = rx.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(
        got[1].json()["late"],
        true,
        "the retry carried the event's payload"
    );
    let detail = api
        .wait_log_status(&log, "delivered", Duration::from_secs(5))
        .await;
    assert_eq!(detail["attempts"], 2);
    gw.stop().await;
}

/// The outcome script keeps the newest 100 attempts of a delivery in its log, the log
/// reader also shows the attempts an older gateway kept in a list of their own, and the
/// one key the script may create (the hourly stats hash) gets its TTL in the same step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_attempts_are_capped_at_100_and_every_key_has_a_ttl() {
    use gateway::model::log::Attempt;
    use gateway::queue::Completion;

    let mut q = QueueFixture::start().await;
    let (keys, store) = (q.keys.clone(), q.store.clone());
    let (tenant, msg, event) = ("ten_cap", "msg_01KCAPCAPCAPCAPCAPCAPCAPCA", "evt_cap");
    let record = |label: &str| {
        serde_json::to_string(&Attempt {
            at: "2026-11-21T00:00:00Z".into(),
            status_code: Some(500),
            latency_ms: 1,
            response: None,
            error_code: Some("http_status".into()),
            error: Some(label.to_string()),
        })
        .unwrap()
    };
    let mut conn = q.conn.clone();
    let _: () = conn
        .hset(keys.log(tenant, msg), "status", "pending")
        .await
        .unwrap();
    // two attempts as a gateway before 2026-11-21 recorded them, in a list of their own
    let _: () = conn
        .rpush(
            keys.attempts(tenant, msg),
            &[record("legacy 1"), record("legacy 2")],
        )
        .await
        .unwrap();
    for n in 1..=102u32 {
        let job = q.push_and_lease(tenant, msg, event).await;
        let done = Completion {
            status: "pending",
            attempts: n,
            retry_at_ms: None,
            attempt: Some(record(&format!("n={n}"))),
            request: None,
            last_error: None,
            stats: Some(("ep_cap".into(), "attempt_failed")),
            reached: None,
        };
        assert!(q.queue.complete(&job, &done).await.unwrap().is_some());
    }
    let detail = store.get_log(tenant, msg).await.unwrap();
    let labels: Vec<String> = detail
        .attempt_details
        .iter()
        .map(|a| a.error.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        labels.len(),
        102,
        "2 listed + the newest 100 of 102 recorded"
    );
    assert_eq!(
        labels[..3],
        ["legacy 1", "legacy 2", "n=3"],
        "the oldest two were dropped"
    );
    assert_eq!(labels[101], "n=102");
    let fields: Vec<String> = conn.hkeys(keys.log(tenant, msg)).await.unwrap();
    assert_eq!(fields.iter().filter(|f| f.starts_with("a:")).count(), 100);
    let hour = gateway::store::time::now_ms() / 3_600_000;
    let stats = keys.endpoint_stats(tenant, "ep_cap", hour);
    let counted: u32 = conn.hget(&stats, "attempt_failed").await.unwrap();
    assert!(counted >= 1, "stats counted {counted}");
    let stats_ttl: i64 = conn.ttl(&stats).await.unwrap();
    assert!(stats_ttl > 0, "stats TTL {stats_ttl}");
    gateway_e2e::cleanup(&q.prefix).await;
}

/// An outcome for a delivery whose log is gone (its retention ended while the job waited)
/// ends the job's lease and records nothing: no log is made again from the outcome's
/// fields alone, no stats are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_for_a_log_that_is_gone_records_nothing() {
    use gateway::queue::Completion;

    let mut q = QueueFixture::start().await;
    let (tenant, msg, event) = ("ten_gone", "msg_01KGONEGONEGONEGONEGONEGON", "evt_gone");
    let job = q.push_and_lease(tenant, msg, event).await;
    // A failed attempt with a retry: the outcome that would touch the most keys.
    let now = gateway::store::time::now_ms();
    let done = Completion {
        status: "pending",
        attempts: 1,
        retry_at_ms: Some(now + 10_000),
        attempt: Some("{}".into()),
        request: Some("{}".into()),
        last_error: Some("http_status".into()),
        stats: Some(("ep_gone".into(), "attempt_failed")),
        reached: Some(false),
    };
    assert_eq!(q.queue.complete(&job, &done).await.unwrap(), None);

    let mut conn = q.conn.clone();
    let log: bool = conn.exists(q.keys.log(tenant, msg)).await.unwrap();
    assert!(!log, "the outcome made the log again");
    for hour in [now / 3_600_000, gateway::store::time::now_ms() / 3_600_000] {
        let stats: bool = conn
            .exists(q.keys.endpoint_stats(tenant, "ep_gone", hour))
            .await
            .unwrap();
        assert!(!stats, "an outcome with no log was counted");
    }
    let failing: bool = conn
        .exists(q.keys.endpoint_health(tenant, "ep_gone"))
        .await
        .unwrap();
    assert!(
        !failing,
        "an outcome with no log marked its endpoint failing"
    );
    let retries: u64 = conn.zcard(q.keys.delayed(0)).await.unwrap();
    assert_eq!(retries, 0, "an outcome with no log scheduled a retry");
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg(q.keys.jobs(0))
        .arg(gateway::queue::GROUP)
        .query_async(&mut conn)
        .await
        .unwrap();
    let redis::Value::Array(summary) = pending else {
        panic!("XPENDING answered {pending:?}");
    };
    assert_eq!(summary[0], redis::Value::Int(0), "the job is still leased");
    gateway_e2e::cleanup(&q.prefix).await;
}

/// A queue and store of one shard under a prefix of their own, for tests that drive the
/// outcome script directly.
struct QueueFixture {
    prefix: String,
    keys: Keys,
    conn: redis::aio::ConnectionManager,
    reader: redis::aio::ConnectionManager,
    queue: gateway::queue::Queue,
    store: Store,
}

impl QueueFixture {
    async fn start() -> Self {
        let prefix = gateway_e2e::unique_prefix();
        let keys = Keys::new(&prefix, 1);
        let client = redis::Client::open(redis_url()).unwrap();
        let conn = client.get_connection_manager().await.unwrap();
        let reader = client.get_connection_manager().await.unwrap();
        let queue =
            gateway::queue::Queue::new(conn.clone(), keys.clone(), "t1".into(), 60_000, 5, 3_600);
        queue.ensure_groups().await.unwrap();
        let store = Store::new(
            client,
            conn.clone(),
            keys.clone(),
            Duration::from_secs(3_600),
        );
        Self {
            prefix,
            keys,
            conn,
            reader,
            queue,
            store,
        }
    }

    /// Puts a job on the stream and leases it, as a worker's read does.
    async fn push_and_lease(
        &mut self,
        tenant: &str,
        msg: &str,
        event: &str,
    ) -> gateway::queue::Job {
        let _: String = redis::cmd("XADD")
            .arg(self.keys.jobs(0))
            .arg("*")
            .arg("t")
            .arg(tenant)
            .arg("m")
            .arg(msg)
            .arg("e")
            .arg(event)
            .query_async(&mut self.conn)
            .await
            .unwrap();
        self.queue
            .read(&mut self.reader, 0, 1, Duration::from_millis(100))
            .await
            .unwrap()
            .remove(0)
    }
}
