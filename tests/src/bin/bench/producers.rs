//! The load generator: closed-loop producers (optionally paced) that post ~1 KB events,
//! each carrying its `seq` and send time, to the gateway or straight to the receiver,
//! and count what was accepted.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;

use crate::bare_http::{Connection, PostError, Target};
use crate::measure::now_ns;
use crate::options::Options;

/// How long a producer waits for an answer before it counts a timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Size of the padding field, so that an event is about 1 KB.
pub(crate) const PAD_BYTES: usize = 900;

/// What the producers did.
#[derive(Default)]
pub(crate) struct Produced {
    /// The seqs of the events accepted (202 from the gateway, 200 from the receiver).
    pub(crate) accepted: Vec<u64>,
    /// Answers by status code (or `timeout`, `error`), with their counts.
    pub(crate) statuses: BTreeMap<String, u64>,
    /// How long the producers ran.
    pub(crate) elapsed: Duration,
}

/// An event's JSON text (about 1 KB): its `seq`, the send time, and padding. With
/// `wrap` it is the payload of a gateway event of type `bench.event`.
fn event_body(seq: u64, pad: &str, wrap: bool) -> Bytes {
    let payload = format!(
        r#"{{"seq":{seq},"sent_at_ns":{},"status":"read","pad":"{pad}"}}"#,
        now_ns()
    );
    Bytes::from(if wrap {
        format!(r#"{{"type":"bench.event","payload":{payload}}}"#)
    } else {
        payload
    })
}

/// Closed loop: `concurrency` tasks, each with its own connection, posting one event
/// and waiting for the answer, until `duration` is up. With `rate` (events/s in all),
/// each task also waits for its next slot, so the load stays below saturation.
/// With `api_key` the payload is wrapped as an event for the gateway.
pub(crate) async fn produce(
    url: &str,
    api_key: Option<&str>,
    options: &Options,
    rate: Option<f64>,
) -> Result<Produced> {
    let target = Target::parse(url, api_key)?;
    let wrap = api_key.is_some();
    let next_seq = Arc::new(AtomicU64::new(0));
    let pad: Arc<str> = "x".repeat(PAD_BYTES).into();
    let start = Instant::now();
    let deadline = start + options.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for producer in 0..options.concurrency {
        let (next_seq, pad) = (next_seq.clone(), pad.clone());
        let mut connection = Connection::new(target.clone());
        let period = rate.map(|r| Duration::from_secs_f64(options.concurrency as f64 / r.max(1.0)));
        let phase_of = producer as f64 / options.concurrency as f64;
        tasks.spawn(async move {
            let mut accepted = Vec::new();
            let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
            // Paced producers start out of phase (producer k at k/concurrency of a period),
            // so the rate is steady instead of `concurrency` events in a burst every period.
            let mut pace = period.map(|p| {
                let phase = p.mul_f64(phase_of);
                let mut i = tokio::time::interval_at(tokio::time::Instant::now() + phase, p);
                i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                i
            });
            while Instant::now() < deadline {
                if let Some(pace) = &mut pace {
                    pace.tick().await;
                    if Instant::now() >= deadline {
                        break;
                    }
                }
                let seq = next_seq.fetch_add(1, Ordering::Relaxed);
                let body = event_body(seq, &pad, wrap);
                let status = match connection.post_json(body, REQUEST_TIMEOUT).await {
                    Ok(code) => code.to_string(),
                    Err(PostError::Timeout) => "timeout".to_string(),
                    Err(PostError::Failed(_)) => "error".to_string(),
                };
                if status == "202" || (!wrap && status == "200") {
                    accepted.push(seq);
                } else if status == "error" {
                    // Do not spin on a refused connection.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                *statuses.entry(status).or_default() += 1;
            }
            (accepted, statuses)
        });
    }
    let mut produced = Produced::default();
    while let Some(done) = tasks.join_next().await {
        let (accepted, statuses) = done?;
        produced.accepted.extend(accepted);
        for (k, v) in statuses {
            *produced.statuses.entry(k).or_default() += v;
        }
    }
    produced.elapsed = start.elapsed();
    Ok(produced)
}
