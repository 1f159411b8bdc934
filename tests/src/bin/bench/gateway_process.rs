//! The gateway under test as a child process: started from `--gateway-bin` (or under
//! callgrind) with its configuration in the environment, waited for until ready, called
//! on its admin and tenant API, and stopped.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use tokio::process::{Child, Command};

use crate::callgrind;
use crate::options::Options;

/// The gateway as a child process.
pub(crate) struct Gateway {
    child: Child,
    /// Its process id.
    pub(crate) pid: u32,
    /// Its base URL, `http://127.0.0.1:<port>`.
    pub(crate) base: String,
    /// The admin token it was started with.
    pub(crate) admin_token: String,
}

impl Gateway {
    /// Starts the gateway on a free port against `redis_url` under `prefix`, with its
    /// workers on or off and its stderr appended to `log`, and waits until it is ready.
    pub(crate) async fn start(
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

    /// POSTs `body` as JSON to `path` with `token`; the answer's JSON, or an error for a
    /// status other than success.
    pub(crate) async fn call(
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
    pub(crate) async fn stop(mut self) -> Result<()> {
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
