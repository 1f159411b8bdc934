//! Hardware counters of one process while a scenario runs: instructions and cycles, read
//! by a `perf stat -p` attached to it (optional: without `perf`, or on a machine that
//! does not expose the counters, the counters table is left out and the JSON holds null).
//!
//! Why: on a shared VM the same build's CPU per event moves between rounds by up to half
//! while its instructions per event stay put (README, Performance): the host changes how
//! many cycles an instruction takes (another guest on the core, cache pressure), not what
//! the gateway does. Instructions per event are the figure to compare builds by; cycles
//! per instruction say how loaded the host was.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// What a process executed while measured.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Counts {
    /// Instructions retired.
    pub instructions: u64,
    /// CPU cycles (0 when not counted: callgrind counts instructions only).
    pub cycles: u64,
    /// Only user space was counted (perf falls back to that when `perf_event_paranoid`
    /// forbids counting the kernel; callgrind never counts it): the process's system calls
    /// are not in the counts.
    pub user_only: bool,
    /// Who counted.
    pub source: Source,
}

/// Who counted a process's instructions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Source {
    /// The CPU's counters, read by `perf stat`.
    #[default]
    Perf,
    /// Valgrind's callgrind, which runs the process on a simulated CPU (see callgrind.rs).
    Callgrind,
}

impl Source {
    /// The name in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Source::Perf => "perf",
            Source::Callgrind => "callgrind",
        }
    }
}

impl Counts {
    /// Instructions per cycle, where cycles were counted.
    pub fn ipc(&self) -> Option<f64> {
        (self.cycles > 0).then(|| self.instructions as f64 / self.cycles as f64)
    }
}

/// A `perf stat` counting one process until [`PerfStat::stop`]; dropping it kills perf
/// and removes its output file.
pub struct PerfStat {
    child: Child,
    out: PathBuf,
    target: u32,
}

impl PerfStat {
    /// How long perf is given to attach to every thread of its process before the work
    /// to count starts.
    pub const ATTACH: Duration = Duration::from_millis(200);

    /// Attaches to `pid`; `None` (after saying why on stderr) when `perf` cannot be run.
    pub fn start(pid: u32) -> Option<Self> {
        let out = std::env::temp_dir().join(format!(
            "bench-perf-stat-{}-{pid}-{}.csv",
            std::process::id(),
            ulid::Ulid::new()
        ));
        // Threads the process starts later (tokio's blocking pool) are counted too, and so
        // would be a fork of it: the private Redis servers never fork (no RDB saves, no
        // automatic AOF rewrite); a shared one (`--redis-url`) may.
        let child = Command::new("perf")
            .args(["stat", "-x", ",", "-e", "instructions,cycles"])
            .arg("-p")
            .arg(pid.to_string())
            .arg("-o")
            .arg(&out)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn();
        match child {
            Ok(child) => Some(Self {
                child,
                out,
                target: pid,
            }),
            Err(e) => {
                eprintln!("bench: no hardware counters (perf stat: {e})");
                None
            }
        }
    }

    /// Stops counting (`perf stat` writes its counts on SIGINT) and reads them; `None`
    /// when perf could not count (no PMU in the VM, not permitted, the process gone).
    pub async fn stop(mut self) -> Option<Counts> {
        let signalled = match self.child.id() {
            Some(perf) => Command::new("kill")
                .args(["-INT", &perf.to_string()])
                .status()
                .await
                .is_ok_and(|s| s.success()),
            None => false, // perf was already waited for: nothing to signal
        };
        if !signalled {
            let _ = self.child.start_kill();
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        let counts = std::fs::read_to_string(&self.out)
            .ok()
            .as_deref()
            .and_then(parse);
        if counts.is_none() {
            eprintln!("bench: perf stat counted nothing for pid {}", self.target);
        }
        counts
    }
}

impl Drop for PerfStat {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.out);
    }
}

/// Instructions and cycles from `perf stat -x ,` output (`value,unit,event,...` lines),
/// summed over PMUs (a hybrid CPU reports `cpu_core/instructions/` and
/// `cpu_atom/instructions/`); `None` unless both were counted.
pub fn parse(text: &str) -> Option<Counts> {
    let mut instructions = None;
    let mut cycles = None;
    let mut user_only = false;
    for line in text.lines() {
        let mut fields = line.split(',');
        let (Some(value), Some(_unit), Some(event)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Ok(value) = value.trim().parse::<u64>() else {
            continue; // a comment, or "<not counted>" / "<not supported>"
        };
        let (name, modifiers) = event_name(event.trim());
        let total = match name {
            "instructions" => &mut instructions,
            "cycles" => &mut cycles,
            _ => continue,
        };
        *total = Some(total.unwrap_or(0) + value);
        user_only |= modifiers.contains('u') && !modifiers.contains('k');
    }
    Some(Counts {
        instructions: instructions?,
        cycles: cycles?,
        user_only,
        source: Source::Perf,
    })
}

/// An event as perf prints it, split into its name and modifiers: `cycles`, `cycles:u`,
/// `cpu_core/cycles/`, `cpu_core/cycles/u`.
fn event_name(event: &str) -> (&str, &str) {
    let mut parts = event.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(_pmu), Some(name), modifiers) => (name, modifiers.unwrap_or("")),
        _ => event.split_once(':').unwrap_or((event, "")),
    }
}

#[cfg(test)]
mod tests {
    use super::{parse, Counts, Source};

    #[test]
    fn reads_perf_stat_csv() {
        let text = "# started on Sun Nov 22 00:10:01 2026\n\n\
                    22110483080,,instructions,4000000000,100.00,,\n\
                    11048960804,,cycles,4000000000,100.00,,\n";
        assert_eq!(
            parse(text),
            Some(Counts {
                instructions: 22_110_483_080,
                cycles: 11_048_960_804,
                user_only: false,
                source: Source::Perf,
            })
        );
    }

    #[test]
    fn sums_the_pmus_of_a_hybrid_cpu_and_notices_user_only_counts() {
        let text = "700,,cpu_core/instructions/,1,100.00,,\n\
                    300,,cpu_atom/instructions/,1,100.00,,\n\
                    350,,cpu_core/cycles/,1,100.00,,\n\
                    150,,cpu_atom/cycles/,1,100.00,,\n";
        let counts = parse(text).unwrap();
        assert_eq!((counts.instructions, counts.cycles), (1000, 500));
        assert_eq!(counts.ipc(), Some(2.0));
        assert!(!counts.user_only);
        let user = parse("700,,instructions:u,1,100.00,,\n350,,cycles:u,1,100.00,,\n").unwrap();
        assert_eq!(
            (user.instructions, user.cycles, user.user_only),
            (700, 350, true)
        );
        let hybrid_user =
            parse("7,,cpu_core/instructions/u,1,,\n3,,cpu_core/cycles/u,1,,\n").unwrap();
        assert_eq!((hybrid_user.instructions, hybrid_user.user_only), (7, true));
        let both = parse("7,,instructions:uk,1,,\n3,,cycles:uk,1,,\n").unwrap();
        assert!(!both.user_only);
    }

    #[test]
    fn nothing_when_a_counter_was_not_counted() {
        let text = "<not supported>,,instructions,0,100.00,,\n350,,cycles,1,100.00,,\n";
        assert_eq!(parse(text), None);
        assert_eq!(parse(""), None);
        assert_eq!(Counts::default().ipc(), None);
    }
}
