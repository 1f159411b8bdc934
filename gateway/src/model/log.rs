//! Delivery logs: one per event × endpoint, with every attempt.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogStatus {
    /// Waiting for its first or next attempt (or held while the endpoint is paused).
    Pending,
    /// A 2xx answer was received.
    Delivered,
    /// Out of attempts, or a plugin error; retryable by hand.
    Failed,
    /// A plugin dropped the event; not retried.
    Dropped,
}

impl LogStatus {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogStatus::Pending => "pending",
            LogStatus::Delivered => "delivered",
            LogStatus::Failed => "failed",
            LogStatus::Dropped => "dropped",
        }
    }
}

impl fmt::Display for LogStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LogStatus {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(LogStatus::Pending),
            "delivered" => Ok(LogStatus::Delivered),
            "failed" => Ok(LogStatus::Failed),
            "dropped" => Ok(LogStatus::Dropped),
            _ => Err(()),
        }
    }
}

/// One attempt at delivering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Attempt {
    /// When the attempt started, RFC 3339.
    pub at: String,
    /// HTTP status received, if any.
    pub status_code: Option<u16>,
    /// Milliseconds from start to the end of the (capped) body read or the error.
    pub latency_ms: u64,
    /// First 4 KiB of the response body, lossily decoded as UTF-8.
    pub response: Option<String>,
    /// Stable code of what went wrong (`timeout`, `connect`, `blocked_address`, `http_status`, `plugin_*`...).
    pub error_code: Option<String>,
    /// Human-readable detail of what went wrong.
    pub error: Option<String>,
}

/// A request exactly as sent, with secret values masked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SentRequest {
    /// Method.
    pub method: String,
    /// Url (secret query values masked).
    pub url: String,
    /// Headers in order (secret values masked).
    pub headers: Vec<(String, String)>,
    /// Body as text (lossy UTF-8), truncated to 64 KiB.
    pub body: String,
}

/// A delivery log as listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LogEntry {
    /// `msg_...`: also the `webhook-id` the receiver sees.
    pub id: String,
    /// The event delivered.
    pub event_id: String,
    /// Its type.
    pub event_type: String,
    /// The endpoint delivered to.
    pub endpoint_id: String,
    /// RFC 3339.
    pub created_at: String,
    /// Current status.
    pub status: LogStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (pending retries only), RFC 3339.
    pub next_attempt_at: Option<String>,
    /// Why the last attempt failed or the plugin dropped the event.
    pub last_error: Option<String>,
    /// The event's payload (`null` once the event has expired).
    #[schema(value_type = Object)]
    pub payload: Value,
}

/// A delivery log with every attempt and the request as sent.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LogDetail {
    /// The summary fields.
    #[serde(flatten)]
    pub entry: LogEntry,
    /// Every attempt, oldest first.
    pub attempt_details: Vec<Attempt>,
    /// The last request as sent, secrets masked.
    pub request: Option<SentRequest>,
}

/// A page of logs.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LogPage {
    /// The entries, newest first.
    pub data: Vec<LogEntry>,
    /// Pass as `cursor` for the next page; `null` at the end.
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for s in [
            LogStatus::Pending,
            LogStatus::Delivered,
            LogStatus::Failed,
            LogStatus::Dropped,
        ] {
            assert_eq!(s.as_str().parse::<LogStatus>(), Ok(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        assert!("nope".parse::<LogStatus>().is_err());
    }
}
