//! The scenarios: [`Bench`] runs each one (the bare baseline, through the gateway, ingest
//! alone then drain alone), and [`run_round`] runs the selected ones once, in order.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;
use tokio::process::Command;

use crate::gateway_process::Gateway;
use crate::measure::{cpu_of, machine_cpu, machine_cpu_since, now_ns, CpuMeter};
use crate::options::{Options, ALL_SCENARIOS};
use crate::outcome::Outcome;
use crate::producers::produce;
use crate::receiver::{account, start_receiver, wait_drain};
use crate::redis_probe::{RedisProbe, ScenarioRedis};

/// A scenario's parts once it is set up ([`Bench::set_up`]).
struct Setup {
    redis: ScenarioRedis,
    receiver: std::sync::Arc<crate::receiver::ReceiverState>,
    gateway: Gateway,
    /// The tenant's API key.
    key: String,
}

/// What every scenario needs: the options, an HTTP client for the gateway's API, and
/// this run's id (in every Redis key prefix).
pub(crate) struct Bench {
    /// The command line.
    pub(crate) options: Options,
    /// The client for the gateway's admin and tenant API (not the producers').
    pub(crate) http: reqwest::Client,
    /// This run's id.
    pub(crate) run_id: String,
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

    /// What every gateway scenario starts with: its Redis, the receiver, a gateway (workers
    /// on or off, its log named after `log_name`) and a tenant with `endpoints` endpoints
    /// pointing at the receiver.
    async fn set_up(
        &mut self,
        prefix: &str,
        workers: bool,
        log_name: &str,
        endpoints: usize,
        plugin: bool,
    ) -> Result<Setup> {
        let redis = ScenarioRedis::start(&self.options).await?;
        let (receiver_base, receiver) = start_receiver().await?;
        let gateway = Gateway::start(
            &self.options,
            &self.http,
            &redis.url,
            prefix,
            workers,
            &self.log_path(log_name),
        )
        .await?;
        let (key, secrets) = self
            .setup_tenant(&gateway, &receiver_base, endpoints, plugin)
            .await?;
        receiver.reset(endpoints, secrets)?;
        Ok(Setup {
            redis,
            receiver,
            gateway,
            key,
        })
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
        let Setup {
            mut redis,
            receiver,
            gateway,
            key,
        } = self.set_up(&prefix, true, name, endpoints, plugin).await?;
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
        let Setup {
            mut redis,
            receiver,
            gateway,
            key,
        } = self.set_up(&prefix, false, "ingest-only", 1, false).await?;
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

/// Runs every selected scenario once, in order.
pub(crate) async fn run_round(bench: &mut Bench, options: &Options) -> Vec<Outcome> {
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
pub(crate) fn paced_rate(outcomes: &[Outcome]) -> Option<f64> {
    outcomes
        .iter()
        .find(|o| o.name == "compose-template" && o.accepted_per_s > 0.0)
        .map(|o| o.accepted_per_s / 2.0)
}
