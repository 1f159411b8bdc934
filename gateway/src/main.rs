//! The `gateway` binary: see [`gateway::cli`].

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    gateway::cli::main().await
}
