//! Retry schedule and the classification of an attempt's outcome (pure).
//!
//! Delay after failure `n` is `initial_delay_ms × multiplier^(n-1)`, capped at
//! `max_delay_ms`, with ±10 % jitter so that a burst of failures does not come
//! back as a burst. A receiver's `Retry-After` is honoured within bounds.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::FieldError;

/// Longest `Retry-After` the gateway honours; longer asks are clamped.
pub const MAX_RETRY_AFTER_MS: u64 = 24 * 3600 * 1000;

/// An endpoint's retry schedule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (default 6, so the schedule reaches its cap).
    pub max_attempts: u32,
    /// Delay after the first failure, in ms (default 10000).
    pub initial_delay_ms: u64,
    /// Factor between successive delays (default 10).
    pub multiplier: u32,
    /// Cap on any one delay, in ms (default 100000000, i.e. 100000 s).
    pub max_delay_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            initial_delay_ms: 10_000,
            multiplier: 10,
            max_delay_ms: 100_000_000,
        }
    }
}

impl RetryPolicy {
    /// Checks the ranges, naming the field.
    pub fn validate(&self) -> Result<(), FieldError> {
        if !(1..=30).contains(&self.max_attempts) {
            return Err(FieldError::new(
                "retry.max_attempts",
                "must be between 1 and 30",
            ));
        }
        if !(10..=self.max_delay_ms).contains(&self.initial_delay_ms) {
            return Err(FieldError::new(
                "retry.initial_delay_ms",
                "must be at least 10 and at most retry.max_delay_ms",
            ));
        }
        if !(1..=100).contains(&self.multiplier) {
            return Err(FieldError::new(
                "retry.multiplier",
                "must be between 1 and 100",
            ));
        }
        if self.max_delay_ms > 7 * 24 * 3600 * 1000 {
            return Err(FieldError::new(
                "retry.max_delay_ms",
                "must be at most 7 days",
            ));
        }
        Ok(())
    }

    /// Delay before the next attempt after `failures` failed attempts (1-based), without jitter.
    pub fn base_delay_ms(&self, failures: u32) -> u64 {
        let exponent = failures.saturating_sub(1);
        let factor = u64::from(self.multiplier).saturating_pow(exponent);
        self.initial_delay_ms
            .saturating_mul(factor)
            .min(self.max_delay_ms)
    }

    /// Delay with jitter: `jitter` in `[0, 1)` maps to `[0.9, 1.1)` of the base delay.
    pub fn delay_ms(&self, failures: u32, jitter: f64) -> u64 {
        let base = self.base_delay_ms(failures) as f64;
        let scaled = base * (0.9 + 0.2 * jitter.clamp(0.0, 1.0));
        (scaled as u64).min(self.max_delay_ms)
    }
}

/// What happened on one attempt, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    /// A 2xx answer.
    Success,
    /// Any other status; `retry_after_ms` from the receiver's `Retry-After` on 429/503.
    Status {
        /// The HTTP status code.
        code: u16,
        /// Requested wait, if the receiver gave one.
        retry_after_ms: Option<u64>,
    },
    /// No answer: timeout, refused connection, blocked address, TLS failure.
    NoAnswer,
}

/// What to do with a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Done: mark delivered.
    Delivered,
    /// Try again after this many ms.
    RetryIn(u64),
    /// Out of attempts: mark failed (retryable by hand).
    GiveUp,
}

/// Decides the next step after attempt number `attempt` (1-based) ended with `result`.
pub fn next_step(
    policy: &RetryPolicy,
    attempt: u32,
    result: AttemptResult,
    jitter: f64,
) -> NextStep {
    if result == AttemptResult::Success {
        return NextStep::Delivered;
    }
    // 410 Gone: the receiver says the endpoint no longer exists; retrying cannot help.
    let gone = matches!(result, AttemptResult::Status { code: 410, .. });
    if gone || attempt >= policy.max_attempts {
        return NextStep::GiveUp;
    }
    let scheduled = policy.delay_ms(attempt, jitter);
    match result {
        AttemptResult::Status {
            code: 429 | 503,
            retry_after_ms: Some(asked),
        } => NextStep::RetryIn(asked.clamp(scheduled, MAX_RETRY_AFTER_MS.max(scheduled))),
        _ => NextStep::RetryIn(scheduled),
    }
}

/// Parses a `Retry-After` value given in seconds (HTTP dates are not honoured).
pub fn parse_retry_after(value: &str) -> Option<u64> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| s.saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_is_ten_times_per_failure_capped() {
        let p = RetryPolicy::default();
        let delays: Vec<u64> = (1..=7).map(|n| p.base_delay_ms(n)).collect();
        assert_eq!(
            delays,
            vec![
                10_000,
                100_000,
                1_000_000,
                10_000_000,
                100_000_000,
                100_000_000,
                100_000_000
            ]
        );
    }

    #[test]
    fn huge_exponents_saturate_at_the_cap() {
        let p = RetryPolicy {
            max_attempts: 30,
            ..RetryPolicy::default()
        };
        assert_eq!(p.base_delay_ms(30), p.max_delay_ms);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay_ms(1, 0.0), 9_000);
        assert_eq!(p.delay_ms(1, 0.5), 10_000);
        assert!(p.delay_ms(1, 0.999_999) < 11_000);
        assert_eq!(p.delay_ms(6, 0.999), p.max_delay_ms);
    }

    #[test]
    fn outcome_classification() {
        let p = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        assert_eq!(
            next_step(&p, 1, AttemptResult::Success, 0.5),
            NextStep::Delivered
        );
        assert_eq!(
            next_step(&p, 1, AttemptResult::NoAnswer, 0.5),
            NextStep::RetryIn(10_000)
        );
        assert_eq!(
            next_step(
                &p,
                2,
                AttemptResult::Status {
                    code: 500,
                    retry_after_ms: None
                },
                0.5
            ),
            NextStep::RetryIn(100_000)
        );
        assert_eq!(
            next_step(&p, 3, AttemptResult::NoAnswer, 0.5),
            NextStep::GiveUp
        );
        let gone = AttemptResult::Status {
            code: 410,
            retry_after_ms: None,
        };
        assert_eq!(
            next_step(&p, 1, gone, 0.5),
            NextStep::GiveUp,
            "410 Gone is final"
        );
    }

    #[test]
    fn retry_after_is_honoured_within_bounds() {
        let p = RetryPolicy::default();
        let asked = |ms| AttemptResult::Status {
            code: 429,
            retry_after_ms: Some(ms),
        };
        assert_eq!(
            next_step(&p, 1, asked(60_000), 0.5),
            NextStep::RetryIn(60_000)
        );
        // never sooner than the schedule, never later than the bound
        assert_eq!(
            next_step(&p, 1, asked(1_000), 0.5),
            NextStep::RetryIn(10_000)
        );
        assert_eq!(
            next_step(&p, 1, asked(u64::MAX), 0.5),
            NextStep::RetryIn(MAX_RETRY_AFTER_MS)
        );
        assert_eq!(parse_retry_after(" 120 "), Some(120_000));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn validation_names_fields() {
        let bad = RetryPolicy {
            multiplier: 0,
            ..RetryPolicy::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "retry.multiplier");
        assert!(RetryPolicy::default().validate().is_ok());
    }
}
