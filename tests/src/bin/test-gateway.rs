//! The gateway's own command line, built inside the test crate so that
//! process-level tests (SIGKILL, restarts) can run it as a child process.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    gateway::cli::main().await
}
