//! Hardware counters of one process while a scenario runs: instructions and cycles, read
//! by a `perf stat -p` attached to it (optional: without `perf`, or on a machine that
//! does not expose the counters, the columns stay empty).
//!
//! Why: on a shared VM the same build's CPU per event moves between rounds by up to half
//! while its instructions per event stay within ~2 % (README, Performance): the host
//! changes how many cycles an instruction takes (another guest on the core, cache
//! pressure), not what the gateway does. Instructions per event are the figure to compare
//! builds by; cycles per instruction say how loaded the host was.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// What a process executed while measured (user and kernel).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Counts {
    /// Instructions retired.
    pub instructions: u64,
    /// CPU cycles.
    pub cycles: u64,
}

impl Counts {
    /// Instructions per cycle.
    pub fn ipc(&self) -> Option<f64> {
        (self.cycles > 0).then(|| self.instructions as f64 / self.cycles as f64)
    }
}

/// A `perf stat` counting one process until [`PerfStat::stop`].
pub struct PerfStat {
    child: Child,
    out: PathBuf,
    target: u32,
}

impl PerfStat {
    /// Attaches to `pid`; `None` (after saying why on stderr) when `perf` cannot be run.
    pub fn start(pid: u32) -> Option<Self> {
        let out =
            std::env::temp_dir().join(format!("bench-perf-stat-{}-{pid}.csv", std::process::id()));
        let child = Command::new("perf")
            .args(["stat", "-x", ",", "-e", "instructions,cycles", "-p"])
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
        let pid = self.child.id()?;
        let _ = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        let text = std::fs::read_to_string(&self.out).ok();
        let _ = std::fs::remove_file(&self.out);
        let counts = text.as_deref().and_then(parse);
        if counts.is_none() {
            eprintln!("bench: perf stat counted nothing for pid {}", self.target);
        }
        counts
    }
}

/// Instructions and cycles from `perf stat -x ,` output (`value,unit,event,...` lines);
/// `None` unless both were counted.
pub fn parse(text: &str) -> Option<Counts> {
    let mut instructions = None;
    let mut cycles = None;
    for line in text.lines() {
        let mut fields = line.split(',');
        let (Some(value), Some(_unit), Some(event)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Ok(value) = value.trim().parse::<u64>() else {
            continue; // a comment, or "<not counted>" / "<not supported>"
        };
        // Hybrid CPUs name them "cpu_core/instructions/"; a modifier may follow (":u").
        let name = event.trim().trim_end_matches('/');
        let name = name.rsplit('/').next().unwrap_or(name);
        match name.split(':').next() {
            Some("instructions") => instructions = Some(value),
            Some("cycles") => cycles = Some(value),
            _ => {}
        }
    }
    Some(Counts {
        instructions: instructions?,
        cycles: cycles?,
    })
}

#[cfg(test)]
mod tests {
    use super::{parse, Counts};

    #[test]
    fn reads_perf_stat_csv() {
        let text = "# started on Sun Nov 22 00:10:01 2026\n\n\
                    22110483080,,instructions,4000000000,100.00,,\n\
                    11048960804,,cycles,4000000000,100.00,,\n";
        assert_eq!(
            parse(text),
            Some(Counts {
                instructions: 22_110_483_080,
                cycles: 11_048_960_804
            })
        );
    }

    #[test]
    fn reads_hybrid_and_modified_event_names() {
        let text = "700,,cpu_core/instructions/,1,100.00,,\n350,,cycles:u,1,100.00,,\n";
        let counts = parse(text).unwrap();
        assert_eq!((counts.instructions, counts.cycles), (700, 350));
        assert_eq!(counts.ipc(), Some(2.0));
    }

    #[test]
    fn nothing_when_a_counter_was_not_counted() {
        let text = "<not supported>,,instructions,0,100.00,,\n350,,cycles,1,100.00,,\n";
        assert_eq!(parse(text), None);
        assert_eq!(parse(""), None);
        assert_eq!(Counts::default().ipc(), None);
    }
}
