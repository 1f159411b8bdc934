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
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().expect("spawn gateway");
        let process = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let http = crate::client();
        for _ in 0..400 {
            if let Ok(r) = http.get(format!("{}/readyz", process.base)).send().await {
                if r.status().is_success() {
                    return process;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("gateway process did not become ready");
    }

    /// SIGKILL: no cleanup, no draining.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
        let _ = self.child.wait().await;
    }
}
