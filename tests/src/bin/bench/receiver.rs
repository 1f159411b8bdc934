//! The receiver the gateway delivers to (and the baseline's producers post to): it counts
//! each arrival per endpoint and seq, checks the Standard Webhooks signature on a sample,
//! and records the ingest-to-delivery latency from the `sent_at_ns` each event carries.
//! After a scenario, [`wait_drain`] waits for the deliveries and [`account`] turns what
//! the receiver saw into the outcome's delivered, lost, duplicated and latency figures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use hyper::{HeaderMap, StatusCode};
use sha2::Sha256;

use crate::bare_http::{self, Arrival};
use crate::measure::now_ns;
use crate::outcome::Outcome;

/// One receiver answer in `SIGNATURE_SAMPLE` has its signature checked.
const SIGNATURE_SAMPLE: u64 = 100;

/// What the receiver saw, for one scenario.
#[derive(Default)]
struct Seen {
    /// Arrivals per endpoint, indexed by seq.
    counts: Vec<Vec<u8>>,
    /// Ingest-to-delivery latency in µs, one per arrival.
    latencies_us: Vec<u32>,
    /// Arrivals whose body had no readable seq.
    unreadable: u64,
    /// Arrival times (ns since the epoch) of the first and last request.
    first_ns: u64,
    last_ns: u64,
}

/// The receiver's state, shared by its handler and the scenario that reads it.
#[derive(Default)]
pub(crate) struct ReceiverState {
    arrivals: AtomicU64,
    seen: Mutex<Seen>,
    secrets: Mutex<Vec<String>>,
    signatures_checked: AtomicU64,
    signatures_bad: AtomicU64,
}

impl ReceiverState {
    /// Starts a scenario afresh: nothing seen, `endpoints` endpoints whose signatures are
    /// checked with `secrets` (by index; none for the baseline).
    pub(crate) fn reset(&self, endpoints: usize, secrets: Vec<String>) -> Result<()> {
        self.arrivals.store(0, Ordering::SeqCst);
        self.signatures_checked.store(0, Ordering::SeqCst);
        self.signatures_bad.store(0, Ordering::SeqCst);
        let mut seen = self.seen.lock().map_err(|_| anyhow!("poisoned"))?;
        *seen = Seen {
            counts: vec![Vec::new(); endpoints],
            ..Seen::default()
        };
        *self.secrets.lock().map_err(|_| anyhow!("poisoned"))? = secrets;
        Ok(())
    }
}

/// Finds `"key":` in a JSON body and reads the unsigned integer after it,
/// written as a number or as a string of digits (templates render strings).
fn scan_u64(body: &[u8], key: &[u8]) -> Option<u64> {
    let at = body.windows(key.len()).position(|w| w == key)? + key.len();
    let mut rest = body[at..].iter().skip_while(|b| b.is_ascii_whitespace());
    if rest.next() != Some(&b':') {
        return None;
    }
    let mut value: u64 = 0;
    let mut digits = 0;
    for &b in rest.skip_while(|b| b.is_ascii_whitespace() || **b == b'"') {
        if !b.is_ascii_digit() {
            break;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        digits += 1;
    }
    (digits > 0).then_some(value)
}

fn verify_standard(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(ts), Some(sigs)) = (
        get("webhook-id"),
        get("webhook-timestamp"),
        get("webhook-signature"),
    ) else {
        return false;
    };
    let Ok(key) = STANDARD.decode(secret.trim_start_matches("whsec_")) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
        return false;
    };
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    sigs.split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

/// The receiver's handler: counts the arrival, checks a sample of signatures, records
/// the latency from the `sent_at_ns` in the body.
fn receive(state: &ReceiverState, arrival: Arrival<'_>) -> StatusCode {
    let at = now_ns();
    let Some(endpoint) = arrival
        .path
        .strip_prefix("/hook/")
        .and_then(|n| n.parse::<usize>().ok())
    else {
        return StatusCode::NOT_FOUND;
    };
    let body = &arrival.body;
    let n = state.arrivals.fetch_add(1, Ordering::Relaxed);
    if n % SIGNATURE_SAMPLE == 0 {
        let secret = state
            .secrets
            .lock()
            .ok()
            .and_then(|s| s.get(endpoint).cloned());
        if let Some(secret) = secret {
            state.signatures_checked.fetch_add(1, Ordering::Relaxed);
            if !verify_standard(&secret, arrival.headers, body) {
                state.signatures_bad.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    let seq = scan_u64(body, b"\"seq\"");
    let sent = scan_u64(body, b"\"sent_at_ns\"");
    let Ok(mut seen) = state.seen.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR;
    };
    if seen.first_ns == 0 {
        seen.first_ns = at;
    }
    seen.last_ns = seen.last_ns.max(at);
    match (seq, sent) {
        (Some(seq), Some(sent)) if endpoint < seen.counts.len() && seq < 50_000_000 => {
            let counts = &mut seen.counts[endpoint];
            let i = seq as usize;
            if counts.len() <= i {
                counts.resize((i + 1).next_power_of_two(), 0);
            }
            counts[i] = counts[i].saturating_add(1);
            let us = at.saturating_sub(sent) / 1_000;
            seen.latencies_us.push(us.min(u64::from(u32::MAX)) as u32);
        }
        _ => seen.unreadable += 1,
    }
    StatusCode::OK
}

/// Starts a receiver on a free port: its base URL (endpoint `i` at `/hook/i`) and state.
pub(crate) async fn start_receiver() -> Result<(String, Arc<ReceiverState>)> {
    let state = Arc::new(ReceiverState::default());
    let handler_state = state.clone();
    let base = bare_http::serve(move |arrival| receive(&handler_state, arrival)).await?;
    Ok((base, state))
}

/// Waits until `expected` requests arrived, or nothing arrived for 10 s, or `limit`.
pub(crate) async fn wait_drain(
    receiver: &ReceiverState,
    expected: u64,
    limit: Duration,
) -> Duration {
    let start = Instant::now();
    let mut last = receiver.arrivals.load(Ordering::SeqCst);
    let mut last_change = Instant::now();
    while start.elapsed() < limit {
        let now = receiver.arrivals.load(Ordering::SeqCst);
        if now >= expected {
            break;
        }
        if now != last {
            last = now;
            last_change = Instant::now();
        } else if last_change.elapsed() > Duration::from_secs(10) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

fn percentile(sorted: &[u32], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    Some(f64::from(sorted[i.min(sorted.len() - 1)]) / 1000.0)
}

/// Fills in delivered, latency, lost and duplicated from what the receiver saw.
pub(crate) fn account(
    outcome: &mut Outcome,
    receiver: &ReceiverState,
    accepted: &[u64],
    endpoints: usize,
    window_start_ns: u64,
) -> Result<()> {
    let mut seen = receiver.seen.lock().map_err(|_| anyhow!("poisoned"))?;
    let mut lost = 0;
    let mut duplicated = 0;
    let mut delivered = 0;
    let mut accepted_mask: Vec<Vec<bool>> = Vec::new();
    for counts in &seen.counts {
        let mut mask = vec![false; counts.len()];
        for &seq in accepted {
            let c = counts.get(seq as usize).copied().unwrap_or(0);
            if c == 0 {
                lost += 1;
            } else {
                duplicated += u64::from(c - 1);
            }
            if let Some(m) = mask.get_mut(seq as usize) {
                *m = true;
            }
        }
        accepted_mask.push(mask);
    }
    let mut unexpected = seen.unreadable;
    for (counts, mask) in seen.counts.iter().zip(&accepted_mask) {
        for (i, &c) in counts.iter().enumerate() {
            delivered += u64::from(c);
            if c > 0 && !mask[i] {
                unexpected += u64::from(c);
            }
        }
    }
    debug_assert_eq!(accepted_mask.len(), endpoints);
    outcome.expected_deliveries = accepted.len() as u64 * endpoints as u64;
    outcome.delivered = delivered;
    outcome.lost = Some(lost);
    outcome.duplicated = duplicated;
    outcome.unexpected = unexpected;
    // 0: from the first arrival (drain alone, where the gateway's start-up is not counted).
    let from = if window_start_ns == 0 {
        seen.first_ns
    } else {
        window_start_ns
    };
    let span_ns = seen.last_ns.saturating_sub(from);
    if delivered > 0 && span_ns > 0 {
        outcome.delivered_per_s = delivered as f64 / (span_ns as f64 / 1e9);
    }
    seen.latencies_us.sort_unstable();
    outcome.p50_ms = percentile(&seen.latencies_us, 0.5);
    outcome.p99_ms = percentile(&seen.latencies_us, 0.99);
    outcome.p999_ms = percentile(&seen.latencies_us, 0.999);
    outcome.signatures_checked = receiver.signatures_checked.load(Ordering::SeqCst);
    outcome.signatures_bad = receiver.signatures_bad.load(Ordering::SeqCst);
    Ok(())
}
