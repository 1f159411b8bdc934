//! Which endpoints an event goes to (pure).
//!
//! An endpoint matches when its event-type filter is empty or has the type
//! (exactly, or as a `prefix*` wildcard), and when the event names a channel,
//! the endpoint lists that channel or lists none. An explicit `endpoint_id`
//! bypasses the type and channel filters: the tenant asked for that endpoint.

use crate::model::endpoint::Endpoint;

/// True when `pattern` (exact or `prefix*`) covers `event_type`.
pub fn type_matches(pattern: &str, event_type: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => event_type.starts_with(prefix),
        None => pattern == event_type,
    }
}

/// True when `endpoint` subscribes to an event of `event_type` on `channel`.
pub fn endpoint_matches(endpoint: &Endpoint, event_type: &str, channel: Option<&str>) -> bool {
    let type_ok = endpoint.event_types.is_empty()
        || endpoint
            .event_types
            .iter()
            .any(|p| type_matches(p, event_type));
    let channel_ok = match channel {
        None => true,
        Some(c) => endpoint.channels.is_empty() || endpoint.channels.iter().any(|e| e == c),
    };
    type_ok && channel_ok
}

/// The endpoints an event goes to, in the order given.
pub fn select<'a>(
    endpoints: &'a [Endpoint],
    event_type: &str,
    channel: Option<&str>,
    target: Option<&str>,
) -> Vec<&'a Endpoint> {
    match target {
        Some(id) => endpoints.iter().filter(|e| e.id == id).collect(),
        None => endpoints
            .iter()
            .filter(|e| endpoint_matches(e, event_type, channel))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(id: &str, types: &[&str], channels: &[&str]) -> Endpoint {
        Endpoint {
            event_types: types.iter().map(|s| s.to_string()).collect(),
            channels: channels.iter().map(|s| s.to_string()).collect(),
            ..Endpoint::sample(id)
        }
    }

    #[test]
    fn wildcards_match_prefixes_only() {
        assert!(type_matches("Message.*", "Message.received"));
        assert!(type_matches("Message.*", "Message.WA.status.failed"));
        assert!(!type_matches("Message.*", "Contact.created"));
        assert!(type_matches("*", "anything"));
        assert!(type_matches("Template.status", "Template.status"));
        assert!(!type_matches("Template.status", "Template.statuses"));
    }

    #[test]
    fn channels_filter_only_events_that_name_one() {
        let all = ep("ep_all", &[], &[]);
        let wa = ep("ep_wa", &[], &["whatsapp"]);
        assert!(endpoint_matches(&all, "x", Some("sms")));
        assert!(endpoint_matches(&wa, "x", Some("whatsapp")));
        assert!(!endpoint_matches(&wa, "x", Some("sms")));
        assert!(endpoint_matches(&wa, "x", None));
    }

    #[test]
    fn fan_out_and_explicit_target() {
        let eps = vec![
            ep("ep_1", &["Message.*"], &[]),
            ep("ep_2", &["Contact.created"], &[]),
            ep("ep_3", &[], &["sms"]),
        ];
        let ids = |v: Vec<&Endpoint>| v.into_iter().map(|e| e.id.clone()).collect::<Vec<_>>();
        assert_eq!(
            ids(select(&eps, "Message.received", Some("whatsapp"), None)),
            vec!["ep_1"]
        );
        assert_eq!(
            ids(select(&eps, "Message.received", None, None)),
            vec!["ep_1", "ep_3"]
        );
        assert_eq!(
            ids(select(&eps, "Message.received", None, Some("ep_2"))),
            vec!["ep_2"]
        );
        assert!(select(&eps, "Message.received", None, Some("ep_9")).is_empty());
    }
}
