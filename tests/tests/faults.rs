//! Faults, injected for real: a crash between the receiver's answer and the ack
//! (failpoint), a job that crashes its worker every time (dead letter), two
//! gateways with one killed, SIGTERM with deliveries in flight.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use gateway_e2e::process::{free_port, gateway_env, GatewayProcess};
use gateway_e2e::{cleanup, client, unique_prefix, Receiver, TestGateway};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_test-gateway");
const WAIT: Duration = Duration::from_secs(30);

/// Environment of a gateway process on `prefix`, plus `extra`.
fn env(prefix: &str, admin: &str, extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut env = gateway_env(prefix, admin, &[("GATEWAY_LEASE_MS", "1000")]);
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    env
}

struct Setup {
    /// An in-process gateway on the same data with workers off: events sent through it are
    /// answered by a process no failpoint aborts (a worker can crash a process before the
    /// 202 of the request that stored its job has been written).
    ingest: TestGateway,
    prefix: String,
    admin: String,
    key: String,
    http: reqwest::Client,
}

impl Setup {
    /// A tenant and an endpoint to `rx`, made through a short-lived in-process gateway.
    async fn new(rx: &Receiver) -> (Self, String) {
        let prefix = unique_prefix();
        let gw = TestGateway::start_with(|c| {
            c.redis_prefix = prefix.clone();
            c.shards = 1;
            c.workers_enabled = false;
        })
        .await;
        let api = gw.tenant().await;
        let (endpoint, _) = api.endpoint(json!({"url": rx.url("/"), "retry": {"max_attempts": 3, "initial_delay_ms": 50, "multiplier": 2, "max_delay_ms": 1000}})).await;
        let admin = gw.admin_token.clone();
        (
            Setup {
                // kept running, never stopped (stop would remove the data the processes use)
                ingest: gw,
                prefix,
                admin,
                key: api.key,
                http: client(),
            },
            endpoint,
        )
    }

    async fn send(&self, base: &str, body: Value) -> String {
        let r = self
            .http
            .post(format!("{base}/v1/events"))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Sends an event through the ingest-only gateway; returns its id.
    async fn ingest(&self, body: Value) -> String {
        let base = self.ingest.base.clone();
        self.send(&base, body).await
    }

    async fn get(&self, base: &str, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{base}{path}"))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap();
        r.json().await.unwrap()
    }

    async fn post(&self, base: &str, path: &str) -> u16 {
        self.http
            .post(format!("{base}{path}"))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// The Prometheus text of a gateway.
    async fn metrics(&self, base: &str) -> String {
        self.http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn wait_status(&self, base: &str, log: &str, status: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let body = self.get(base, &format!("/v1/logs/{log}")).await;
            if body["status"] == status {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "log never reached {status}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn log_of(&self, base: &str, event: &str) -> String {
        self.get(base, &format!("/v1/events/{event}")).await["deliveries"][0]
            .as_str()
            .unwrap()
            .to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_answer_and_ack_redelivers_with_the_same_webhook_id() {
    let rx = Receiver::start().await;
    let (setup, _) = Setup::new(&rx).await;
    let port = free_port();
    let mut doomed = GatewayProcess::start(
        BIN,
        port,
        &env(
            &setup.prefix,
            &setup.admin,
            &[("FAILPOINT", "after_send_before_ack")],
        ),
    )
    .await;
    let event = setup
        .ingest(json!({"type": "x", "payload": {"n": 1}}))
        .await;
    let exit = doomed
        .wait_exit(WAIT)
        .await
        .expect("the failpoint did not fire");
    assert!(!exit.success(), "the process aborted");
    let first = rx.wait_for(1, WAIT).await;

    let survivor = GatewayProcess::start(BIN, port, &env(&setup.prefix, &setup.admin, &[])).await;
    let log = setup.log_of(&survivor.base, &event).await;
    let detail = setup.wait_status(&survivor.base, &log, "delivered").await;
    let got = rx.wait_for(2, WAIT).await;
    assert_eq!(
        got.len(),
        2,
        "delivered exactly twice: once before the crash, once after"
    );
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    assert_eq!(first[0].header("webhook-id"), Some(log.as_str()));
    assert_eq!(
        detail["attempts"], 1,
        "the crashed attempt was never recorded"
    );
    survivor.kill().await;
    cleanup(&setup.prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_keeps_crashing_its_worker_is_dead_lettered_and_redrivable() {
    let rx = Receiver::start().await;
    let (setup, _) = Setup::new(&rx).await;
    let port = free_port();
    let crashing = env(
        &setup.prefix,
        &setup.admin,
        &[("FAILPOINT", "before_send"), ("GATEWAY_MAX_LEASES", "2")],
    );
    let mut first = GatewayProcess::start(BIN, port, &crashing).await;
    let event = setup
        .ingest(json!({"type": "x", "payload": {"poison": true}}))
        .await;
    first.wait_exit(WAIT).await.expect("crash 1");
    // taken over after the lease, crashes again
    let mut second = GatewayProcess::spawn(BIN, port, &crashing);
    second.wait_exit(WAIT).await.expect("crash 2");
    // the third taker sees it was leased more than max_leases times
    let healthy = GatewayProcess::start(
        BIN,
        port,
        &env(&setup.prefix, &setup.admin, &[("GATEWAY_MAX_LEASES", "2")]),
    )
    .await;
    let log = setup.log_of(&healthy.base, &event).await;
    let detail = setup.wait_status(&healthy.base, &log, "failed").await;
    assert!(
        detail["last_error"]
            .as_str()
            .unwrap()
            .starts_with("dead_lettered"),
        "{detail}"
    );
    assert!(
        rx.received().is_empty(),
        "the poison job never reached the receiver"
    );
    let metrics = setup.metrics(&healthy.base).await;
    assert!(
        metrics.contains("gateway_queue_jobs{state=\"dead\"} 1"),
        "{metrics}"
    );

    assert_eq!(
        setup
            .post(&healthy.base, &format!("/v1/logs/{log}/retry"))
            .await,
        202
    );
    setup.wait_status(&healthy.base, &log, "delivered").await;
    assert_eq!(rx.wait_for(1, WAIT).await.len(), 1);
    let metrics = setup.metrics(&healthy.base).await;
    assert!(
        metrics.contains("gateway_queue_jobs{state=\"dead\"} 0"),
        "re-driving takes it off the dead set"
    );
    healthy.kill().await;
    cleanup(&setup.prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_one_of_two_gateways_dies_the_other_finishes_its_work() {
    let rx = Receiver::start().await;
    rx.set_delay(Duration::from_millis(200));
    let (setup, _) = Setup::new(&rx).await;
    let extra = [("GATEWAY_WORKER_CONCURRENCY", "4")];
    let a =
        GatewayProcess::start(BIN, free_port(), &env(&setup.prefix, &setup.admin, &extra)).await;
    let b =
        GatewayProcess::start(BIN, free_port(), &env(&setup.prefix, &setup.admin, &extra)).await;
    let mut events = Vec::new();
    for n in 0..40 {
        let base = if n % 2 == 0 { &a.base } else { &b.base };
        events.push(
            setup
                .send(base, json!({"type": "x", "payload": {"n": n}}))
                .await,
        );
    }
    rx.wait_for(4, WAIT).await;
    let b_base = b.base.clone();
    a.kill().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let page = setup
            .get(&b_base, "/v1/logs?status=delivered&limit=250")
            .await;
        if page["data"].as_array().unwrap().len() == 40 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the survivor did not finish: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut by_n: HashMap<i64, usize> = HashMap::new();
    for r in rx.received() {
        *by_n.entry(r.json()["n"].as_i64().unwrap()).or_default() += 1;
    }
    assert_eq!(by_n.len(), 40, "every event reached the receiver");
    println!(
        "two gateways, one killed: {} duplicates",
        by_n.values().map(|c| c - 1).sum::<usize>()
    );
    b.kill().await;
    cleanup(&setup.prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_deliveries_within_a_bound() {
    let rx = Receiver::start().await;
    rx.set_delay(Duration::from_millis(1_500));
    let (setup, _) = Setup::new(&rx).await;
    let port = free_port();
    let gw = GatewayProcess::start(
        BIN,
        port,
        &env(
            &setup.prefix,
            &setup.admin,
            &[("GATEWAY_WORKER_CONCURRENCY", "4")],
        ),
    )
    .await;
    let mut events = Vec::new();
    for n in 0..4 {
        events.push(
            setup
                .send(&gw.base, json!({"type": "x", "payload": {"n": n}}))
                .await,
        );
    }
    rx.wait_for(4, WAIT).await;
    let took = gw
        .terminate(Duration::from_secs(40))
        .await
        .expect("did not exit within 40 s");
    assert!(
        took >= Duration::from_millis(500),
        "exited without waiting for in-flight deliveries ({took:?})"
    );
    println!("SIGTERM: exited after {took:?}");
    // every in-flight delivery was finished and recorded before the exit
    let check = GatewayProcess::start(
        BIN,
        port,
        &env(
            &setup.prefix,
            &setup.admin,
            &[("GATEWAY_WORKERS_ENABLED", "false")],
        ),
    )
    .await;
    for event in &events {
        let log = setup.log_of(&check.base, event).await;
        let detail = setup.get(&check.base, &format!("/v1/logs/{log}")).await;
        assert_eq!(detail["status"], "delivered", "{detail}");
    }
    assert_eq!(rx.received().len(), 4, "nothing was sent twice");
    check.kill().await;
    cleanup(&setup.prefix).await;
}
