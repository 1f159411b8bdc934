//! The gateway's own command line, built inside the test crate so that
//! process-level tests (SIGKILL, restarts) can run it as a child process.

/// mimalloc instead of glibc malloc: allocations move between tokio worker threads, and
/// glibc's arenas spent ~16 % of the gateway's CPU in `malloc`/`free` under load
/// (`perf`, compose-template scenario of `scripts/bench.sh`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    gateway::cli::main().await
}
