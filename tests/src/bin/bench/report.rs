//! The results: the tables printed at the end (each scenario's median run, the spread
//! over the rounds, the hardware counters), the medians and best runs over the rounds,
//! and the JSON's pieces that are not one scenario's (machine, best of rounds, the plugin
//! micro-benchmark's lines).

use serde_json::{json, Value};

use crate::counters::Source;
use crate::outcome::{round, Outcome};

fn opt(x: Option<f64>, decimals: usize) -> String {
    x.map_or("-".into(), |v| format!("{v:.decimals$}"))
}

/// The rate a scenario is judged by: delivered/s, or accepted/s when nothing was delivered.
fn rate_of(o: &Outcome) -> f64 {
    if o.delivered > 0 {
        o.delivered_per_s
    } else {
        o.accepted_per_s
    }
}

/// Each outcome's rate over the baseline of the same round.
pub(crate) fn set_ratios(outcomes: &mut [Outcome]) {
    let baseline = outcomes
        .iter()
        .find(|o| o.name == "baseline")
        .map(|o| o.delivered_per_s)
        .filter(|b| *b > 0.0);
    for o in outcomes {
        o.ratio = baseline.map(|b| rate_of(o) / b);
    }
}

/// Every run of scenario `name`, one per round that has it; failed runs only when no run
/// succeeded (a failure is reported, not averaged in as a rate of 0).
fn runs_of<'a>(rounds: &'a [Vec<Outcome>], name: &str) -> Vec<&'a Outcome> {
    let all: Vec<&Outcome> = rounds
        .iter()
        .filter_map(|round| round.iter().find(|o| o.name == name))
        .collect();
    let succeeded: Vec<&Outcome> = all
        .iter()
        .copied()
        .filter(|o| !o.note.starts_with("failed"))
        .collect();
    if succeeded.is_empty() {
        all
    } else {
        succeeded
    }
}

/// Per scenario, the run with the median rate (the lower middle for an even count).
pub(crate) fn medians(rounds: &[Vec<Outcome>]) -> Vec<Outcome> {
    let Some(first) = rounds.first() else {
        return Vec::new();
    };
    first
        .iter()
        .filter_map(|o| {
            let mut runs = runs_of(rounds, &o.name);
            runs.sort_by(|a, b| rate_of(a).total_cmp(&rate_of(b)));
            runs.get((runs.len() - 1) / 2).map(|o| (*o).clone())
        })
        .collect()
}

/// The highest rate scenario `name` reached over the rounds (0 when it never ran).
///
/// Interference on a shared host only ever slows a run down, so a scenario's best run is
/// its least disturbed one; best over best baseline is the ratio that repeats best
/// between runs of the benchmark (README, Performance).
fn best_rate(rounds: &[Vec<Outcome>], name: &str) -> f64 {
    runs_of(rounds, name)
        .iter()
        .map(|r| rate_of(r))
        .fold(0.0, f64::max)
}

/// Min, median and max of each scenario's rate, gateway CPU per event and ratio to its
/// round's baseline, over the rounds; and the best run over the best baseline run.
pub(crate) fn spread_table(rounds: &[Vec<Outcome>]) -> String {
    fn span(mut values: Vec<f64>, digits: usize) -> String {
        if values.is_empty() {
            return "-".into();
        }
        values.sort_by(f64::total_cmp);
        let mid = values[(values.len() - 1) / 2];
        format!(
            "{:.d$} / {:.d$} / {:.d$}",
            values[0],
            mid,
            values[values.len() - 1],
            d = digits
        )
    }
    let best_baseline = best_rate(rounds, "baseline");
    let scenarios = rounds.first().map(Vec::as_slice).unwrap_or_default();
    markdown_table(
        &[
            "scenario",
            "runs",
            "rate/s min / median / max",
            "gw CPU µs/ev min / median / max",
            "× baseline (same round) min / median / max",
            "best run × best baseline",
        ],
        scenarios.iter().map(|o| {
            let runs = runs_of(rounds, &o.name);
            vec![
                o.name.clone(),
                runs.len().to_string(),
                span(runs.iter().map(|r| rate_of(r)).collect(), 0),
                span(
                    runs.iter().filter_map(|r| r.gateway_us_per_event).collect(),
                    1,
                ),
                span(runs.iter().filter_map(|r| r.ratio).collect(), 3),
                opt(
                    (best_baseline > 0.0).then(|| best_rate(rounds, &o.name) / best_baseline),
                    3,
                ),
            ]
        }),
    )
}

/// A markdown table: a header row, then one row per entry of `rows`; every column but
/// the first aligned right.
fn markdown_table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
    let mut out = line(&header.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>());
    out.push_str(&format!("|---|{}\n", "---:|".repeat(header.len() - 1)));
    for row in rows {
        out.push_str(&line(&row));
    }
    out
}

/// Per scenario: its best rate over the rounds and that over the best baseline's.
pub(crate) fn best_of_rounds(rounds: &[Vec<Outcome>]) -> Value {
    let best_baseline = best_rate(rounds, "baseline");
    let scenarios = rounds.first().map(Vec::as_slice).unwrap_or_default();
    Value::Array(
        scenarios
            .iter()
            .map(|o| {
                let best = best_rate(rounds, &o.name);
                json!({
                    "scenario": o.name,
                    "rate_per_s": round(best),
                    "ratio_to_best_baseline": (best_baseline > 0.0).then(|| round(best / best_baseline)),
                })
            })
            .collect(),
    )
}

/// Every scenario's figures, one row each: the table the bench prints first.
pub(crate) fn table(outcomes: &[Outcome]) -> String {
    markdown_table(
        &[
            "scenario",
            "accepted/s",
            "delivered/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "gw CPU µs/ev",
            "Redis CPU µs/ev",
            "Redis scripts/ev",
            "gw peak RSS MiB",
            "load-gen CPU µs/ev",
            "other CPU s",
            "lost",
            "dup",
            "× baseline",
        ],
        outcomes.iter().map(|o| {
            vec![
                o.name.clone(),
                format!("{:.0}", o.accepted_per_s),
                if o.delivered > 0 {
                    format!("{:.0}", o.delivered_per_s)
                } else {
                    "-".into()
                },
                opt(o.p50_ms, 2),
                opt(o.p99_ms, 2),
                opt(o.p999_ms, 2),
                opt(o.gateway_us_per_event, 1),
                opt(o.redis_us_per_event, 1),
                opt(o.scripts_per_event, 3),
                opt(o.peak_rss_mib, 1),
                opt(o.bench_us_per_event(), 1),
                format!("{:.1}", o.other_cpu_s),
                o.lost.map_or("-".into(), |l| l.to_string()),
                o.duplicated.to_string(),
                opt(o.ratio, 3),
            ]
        }),
    )
}

/// Instructions per event and per cycle of the gateway and of Redis; `None` when no
/// scenario has counts.
pub(crate) fn counters_table(outcomes: &[Outcome]) -> Option<String> {
    if !outcomes
        .iter()
        .any(|o| o.gateway_counts.is_some() || o.redis_counts.is_some())
    {
        return None;
    }
    let mut out = markdown_table(
        &[
            "scenario",
            "gw k-instructions/ev",
            "gw instructions/cycle",
            "Redis k-instructions/ev",
            "Redis instructions/cycle",
        ],
        outcomes.iter().map(|o| {
            vec![
                o.name.clone(),
                opt(o.kinstructions_per_event(o.gateway_counts), 1),
                opt(o.gateway_counts.and_then(|c| c.ipc()), 2),
                opt(o.kinstructions_per_event(o.redis_counts), 1),
                opt(o.redis_counts.and_then(|c| c.ipc()), 2),
            ]
        }),
    );
    let counted = || {
        outcomes
            .iter()
            .flat_map(|o| [o.gateway_counts, o.redis_counts])
            .flatten()
    };
    if counted().any(|c| c.source == Source::Perf && c.user_only) {
        out.push_str(
            "\nperf counted user space only (perf_event_paranoid): system calls are not included.\n",
        );
    }
    if counted().any(|c| c.source == Source::Callgrind) {
        out.push_str(
            "\nthe gateway's instructions counted by callgrind: user space only, no cycles, a \
             rep-prefixed string instruction once per iteration (see callgrind.rs).\n",
        );
    }
    Some(out)
}

/// The machine, for the JSON: its CPU count and model, and its memory.
pub(crate) fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": model,
        "mem_gib": round(mem_kb / 1024.0 / 1024.0),
    })
}

/// Picks the `p50=…` and `p99=…` numbers of one line of the plugin micro-benchmark.
pub(crate) fn plugin_line(text: &str, starts: &str) -> Option<Value> {
    let line = text.lines().find(|l| l.starts_with(starts))?;
    let num = |key: &str| -> Option<f64> {
        let at = line.find(key)? + key.len();
        line[at..].split_whitespace().next()?.parse().ok()
    };
    Some(json!({"line": line, "p50_us": num("p50="), "p99_us": num("p99=")}))
}

#[cfg(test)]
mod tests {
    use super::markdown_table;

    #[test]
    fn markdown_tables_have_a_header_an_alignment_row_and_a_line_per_row() {
        let rows = vec![
            vec!["a".to_string(), "1".to_string()],
            vec!["b".into(), "-".into()],
        ];
        assert_eq!(
            markdown_table(&["scenario", "n"], rows),
            "| scenario | n |\n|---|---:|\n| a | 1 |\n| b | - |\n"
        );
    }
}
