//! Prefixed, time-ordered identifiers.
//!
//! Every resource id is a type prefix plus a ULID (`msg_01J...`), so ids say
//! what they name, sort by creation time (the log indexes rely on this), and
//! carry enough randomness to be unguessable across tenants.

use std::time::{Duration, SystemTime};

use ulid::Ulid;

/// The kinds of identifier the gateway hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// A tenant (`ten_`).
    Tenant,
    /// An API key (`key_`).
    ApiKey,
    /// A webhook endpoint (`ep_`).
    Endpoint,
    /// An ingested event (`evt_`).
    Event,
    /// One delivery of an event to an endpoint; also its `webhook-id` (`msg_`).
    Message,
}

impl IdKind {
    /// The prefix this kind's ids start with, underscore included.
    pub const fn prefix(self) -> &'static str {
        match self {
            IdKind::Tenant => "ten_",
            IdKind::ApiKey => "key_",
            IdKind::Endpoint => "ep_",
            IdKind::Event => "evt_",
            IdKind::Message => "msg_",
        }
    }
}

/// A new id of `kind`, ordered by the current time.
pub fn new_id(kind: IdKind) -> String {
    format!("{}{}", kind.prefix(), Ulid::new())
}

/// True when `id` has the prefix of `kind` followed by a valid ULID.
pub fn is_valid(kind: IdKind, id: &str) -> bool {
    id.strip_prefix(kind.prefix())
        .is_some_and(|rest| Ulid::from_string(rest).is_ok())
}

/// The smallest id of `kind` created at or after `at`: a bound for time-ranged index scans.
pub fn lower_bound(kind: IdKind, at: SystemTime) -> String {
    format!("{}{}", kind.prefix(), Ulid::from_parts(millis(at), 0))
}

/// The largest id of `kind` created at or before `at`.
pub fn upper_bound(kind: IdKind, at: SystemTime) -> String {
    format!(
        "{}{}",
        kind.prefix(),
        Ulid::from_parts(millis(at), u128::MAX)
    )
}

fn millis(at: SystemTime) -> u64 {
    let since = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_their_prefix_and_validate() {
        let id = new_id(IdKind::Endpoint);
        assert!(id.starts_with("ep_"));
        assert!(is_valid(IdKind::Endpoint, &id));
        assert!(!is_valid(IdKind::Event, &id));
        assert!(!is_valid(IdKind::Endpoint, "ep_nonsense"));
    }

    #[test]
    fn bounds_enclose_ids_of_that_millisecond() {
        let now = SystemTime::now();
        let id = format!("msg_{}", Ulid::from_datetime(now));
        assert!(lower_bound(IdKind::Message, now) <= id);
        assert!(upper_bound(IdKind::Message, now) >= id);
        let later = now + Duration::from_millis(5);
        assert!(lower_bound(IdKind::Message, later) > id);
    }
}
