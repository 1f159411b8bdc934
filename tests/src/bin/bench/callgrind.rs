//! The gateway under valgrind's callgrind (`--callgrind DIR`): its instructions per event
//! counted exactly, on machines whose VM exposes no hardware counters to `perf`.
//!
//! The gateway starts with instrumentation off (compiling the built-in plugins at start
//! would dwarf the measurement); [`Callgrind::start`] switches it on when the producers
//! start and [`Callgrind::stop`] dumps the counts into `DIR/callgrind.out.PID.N` and reads
//! their total. That file is a full profile: `callgrind_annotate --inclusive=yes FILE`.
//!
//! Read the figure for what it is: valgrind runs the gateway some 50 times slower on one
//! core at a time, so use a paced scenario at a low rate (group commit then gathers no
//! batches, so an event costs more than under load); callgrind counts a `rep`-prefixed
//! string instruction once per iteration (a `memset` by `rep stosb` counts one per byte).
//! Compare builds with it, not machines.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::counters::{Counts, Source};

/// How long a gateway under valgrind may take to answer `/readyz` (it compiles the
/// built-in plugins first, tens of times slower than natively).
pub const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// Plugin instance slots for a gateway under valgrind: valgrind cannot reserve the address
/// space of the default pool (64 slots of several GiB each).
pub const POOL_INSTANCES: &str = "4";

/// The command that runs `gateway_bin` under callgrind, writing its dumps into `dir`.
pub fn command(gateway_bin: &Path, dir: &Path) -> Command {
    let mut command = Command::new("valgrind");
    command
        .arg("--tool=callgrind")
        .arg("--instr-atstart=no")
        .arg(format!(
            "--callgrind-out-file={}",
            dir.join("callgrind.out.%p").display()
        ))
        .arg(gateway_bin);
    command
}

/// Instrumentation of one gateway process, switched on until [`Callgrind::stop`].
pub struct Callgrind {
    pid: u32,
    dir: PathBuf,
}

impl Callgrind {
    /// Switches instrumentation of `pid` on.
    pub async fn start(pid: u32, dir: &Path) -> anyhow::Result<Self> {
        control(pid, "--instr=on").await?;
        Ok(Self {
            pid,
            dir: dir.to_path_buf(),
        })
    }

    /// Dumps the counts since [`Callgrind::start`], switches instrumentation off and reads
    /// the dump's total (user-space instructions only).
    pub async fn stop(self) -> anyhow::Result<Counts> {
        control(self.pid, "--dump").await?;
        control(self.pid, "--instr=off").await?;
        let dump = latest_dump(&self.dir, self.pid)?;
        let text = std::fs::read_to_string(&dump)?;
        let instructions = parse_total(&text)
            .filter(|&n| n > 0)
            .ok_or_else(|| anyhow::anyhow!("no instructions counted in {}", dump.display()))?;
        eprintln!("bench: callgrind profile: {}", dump.display());
        Ok(Counts {
            instructions,
            cycles: 0,
            user_only: true,
            source: Source::Callgrind,
        })
    }
}

/// How long one `callgrind_control` command may take (it waits for the gateway's next
/// scheduling point under valgrind).
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends one command to the callgrind run of `pid`. `callgrind_control` (valgrind 3.19)
/// exits 0 also when it found no such run or the command failed, so its answer is read:
/// a command that took ends with `OK.`.
async fn control(pid: u32, what: &str) -> anyhow::Result<()> {
    let run = Command::new("callgrind_control")
        .arg(what)
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(CONTROL_TIMEOUT, run)
        .await
        .map_err(|_| anyhow::anyhow!("callgrind_control {what} {pid}: no answer in 30 s"))??;
    let answer = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success() && answered_ok(&answer),
        "callgrind_control {what} {pid} failed: {} {}",
        answer.trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// Whether `callgrind_control`'s output says the command took: an `OK.` line and no
/// error (it prints `Error: ...` or `No active callgrind runs` and still exits 0).
fn answered_ok(stdout: &str) -> bool {
    stdout.lines().any(|l| l.trim() == "OK.")
        && !stdout.contains("Error")
        && !stdout.contains("No active")
}

/// The newest dump of `pid` in `dir`: `callgrind.out.PID.N` with the highest `N`.
fn latest_dump(dir: &Path, pid: u32) -> anyhow::Result<PathBuf> {
    let prefix = format!("callgrind.out.{pid}.");
    let mut newest: Option<(u64, PathBuf)> = None;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let number = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(n) = number {
            if newest.as_ref().is_none_or(|(best, _)| n > *best) {
                newest = Some((n, path));
            }
        }
    }
    newest
        .map(|(_, path)| path)
        .ok_or_else(|| anyhow::anyhow!("no callgrind dump of pid {pid} in {}", dir.display()))
}

/// The instruction total of a callgrind dump: its `totals:` line (or `summary:`, which
/// older valgrind versions write instead).
fn parse_total(dump: &str) -> Option<u64> {
    let field = |name: &str| {
        dump.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    field("totals:").or_else(|| field("summary:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_total_comes_from_totals_or_summary() {
        let dump = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nfn=(1) main\n5 10\n\ntotals: 350190138\n";
        assert_eq!(parse_total(dump), Some(350_190_138));
        assert_eq!(parse_total("events: Ir\nsummary: 42\n"), Some(42));
        assert_eq!(parse_total("events: Ir\nfn=(1) main\n5 10\n"), None);
        assert_eq!(parse_total("totals: lots\n"), None);
    }

    #[test]
    fn only_an_ok_answer_counts_as_done() {
        let ok = "PID 15491: /work/main/target/release/gateway\nsending command instrumentation on to pid 15491\n  OK.\n";
        assert!(answered_ok(ok));
        assert!(!answered_ok("No active callgrind runs detected.\n"));
        assert!(!answered_ok(
            "PID 1: x\nsending command dump to pid 1\nError: no answer\nOK.\n"
        ));
        assert!(!answered_ok(""));
    }

    #[test]
    fn the_latest_dump_is_the_highest_number_of_that_pid() {
        let dir = std::env::temp_dir().join(format!("bench-callgrind-test-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in [
            "callgrind.out.7",
            "callgrind.out.7.2",
            "callgrind.out.7.10",
            "callgrind.out.70.11",
            "other",
        ] {
            std::fs::write(dir.join(name), "").unwrap();
        }
        let found = latest_dump(&dir, 7);
        let missing = latest_dump(&dir, 8);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found.unwrap(), dir.join("callgrind.out.7.10"));
        assert!(missing.is_err());
    }
}
