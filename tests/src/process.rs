//! The gateway as a child process (the `test-gateway` binary of this crate),
//! for tests that kill or restart it.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// A gateway child process.
pub struct GatewayProcess {
    child: Child,
    /// `http://127.0.0.1:port`.
    pub base: String,
}

/// The environment every test gateway process gets: the test Redis, its own key
/// prefix, an admin token and loopback allowed; `extra` is appended (later wins).
pub fn gateway_env(
    prefix: &str,
    admin: &str,
    extra: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("GATEWAY_REDIS_URL", crate::redis_url()),
        ("GATEWAY_REDIS_PREFIX", prefix.to_string()),
        ("GATEWAY_ADMIN_TOKEN", admin.to_string()),
        ("GATEWAY_ALLOWED_NETWORKS", "127.0.0.0/8".to_string()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    env
}

/// A free port on 127.0.0.1 (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl GatewayProcess {
    /// Starts the binary with `GATEWAY_*` variables from `env` and waits until it is ready.
    pub async fn start(bin: &str, port: u16, env: &[(&str, String)]) -> Self {
        let process = Self::spawn(bin, port, env);
        process.wait_ready().await;
        process
    }

    /// Starts the binary with its log (stderr) going to `log`, and waits until it is ready.
    pub async fn start_logged(
        bin: &str,
        port: u16,
        env: &[(&str, String)],
        log: &std::path::Path,
    ) -> Self {
        let file = std::fs::File::create(log).expect("log file");
        let process = Self::spawn_with(bin, port, env, Stdio::from(file));
        process.wait_ready().await;
        process
    }

    /// Starts the binary without waiting for it.
    pub fn spawn(bin: &str, port: u16, env: &[(&str, String)]) -> Self {
        Self::spawn_with(bin, port, env, Stdio::inherit())
    }

    fn spawn_with(bin: &str, port: u16, env: &[(&str, String)], stderr: Stdio) -> Self {
        let mut command = Command::new(bin);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("GATEWAY_LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "RUST_LOG",
                std::env::var("GATEWAY_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().expect("spawn gateway");
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        let http = crate::client();
        for _ in 0..400 {
            if let Ok(r) = http.get(format!("{}/readyz", self.base)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("gateway process did not become ready");
    }

    /// SIGTERM: the gateway stops taking jobs and finishes in-flight deliveries.
    /// Returns how long it took to exit, or `None` if it did not within `bound`.
    pub async fn terminate(mut self, bound: Duration) -> Option<Duration> {
        let started = std::time::Instant::now();
        let pid = self.child.id()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await;
        match tokio::time::timeout(bound, self.child.wait()).await {
            Ok(_) => Some(started.elapsed()),
            Err(_) => {
                let _ = self.child.kill().await;
                None
            }
        }
    }

    /// Waits for the process to exit by itself (e.g. at a failpoint); `None` on timeout.
    pub async fn wait_exit(&mut self, bound: Duration) -> Option<std::process::ExitStatus> {
        tokio::time::timeout(bound, self.child.wait())
            .await
            .ok()
            .and_then(Result::ok)
    }

    /// Resident memory of the process now, in KiB (`VmRSS`), if it can be read.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// SIGKILL: no cleanup, no draining.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
        let _ = self.child.wait().await;
    }
}
