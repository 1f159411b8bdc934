//! Wall-clock helpers: milliseconds since the epoch and RFC 3339 rendering.

use std::time::{SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// RFC 3339 (UTC, millisecond precision) of a Unix time in ms.
pub fn rfc3339(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Parses an RFC 3339 time or a Unix time in seconds into Unix ms.
pub fn parse_time(s: &str) -> Option<u64> {
    if let Ok(secs) = s.parse::<u64>() {
        return secs.checked_mul(1000);
    }
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rfc3339() {
        let ms = 1_614_265_330_123;
        let text = rfc3339(ms);
        assert_eq!(text, "2021-02-25T15:02:10.123Z");
        assert_eq!(parse_time(&text), Some(ms));
        assert_eq!(parse_time("1614265330"), Some(1_614_265_330_000));
        assert_eq!(parse_time("yesterday"), None);
    }
}
