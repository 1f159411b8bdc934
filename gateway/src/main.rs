//! The `gateway` binary: see [`gateway::cli`].

/// mimalloc instead of glibc malloc: allocations move between tokio worker threads, and
/// glibc's arenas spent ~16 % of the gateway's CPU in `malloc`/`free` under load
/// (`perf`, compose-template scenario of `scripts/bench.sh`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    gateway::cli::main().await
}
