//! The `gateway` binary: see [`gateway::cli`].

/// mimalloc instead of glibc malloc: allocations move between tokio worker threads, and
/// glibc's arenas spent ~16 % of the gateway's CPU in `malloc`/`free` under load
/// (`perf`, compose-template scenario of `scripts/bench.sh`).
///
/// mimalloc 2 (the crate's `v2` feature), not the crate's default 3: under that scenario
/// the gateway's peak RSS was 95-101 MiB with 2 against 144-189 MiB with 3 (eight
/// interleaved pairs of runs, 2026-11-22), at no cost in rate or CPU per event (2 ahead
/// in six pairs of eight; medians 8,546 vs 8,312 events/s, 101.7 vs 109.3 µs/event).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    gateway::cli::main().await
}
