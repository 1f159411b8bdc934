//! The chatbot view of an event: the default body fields of the seed's
//! Custom Webhook, and the connections an event came through.
//!
//! Mapping from an incoming message (`whatsapp:message:in`):
//!
//! | field                | source                                                        |
//! |----------------------|---------------------------------------------------------------|
//! | `chatId`             | `payload.chat_id` if the event has one, else `<channel>:<to>:<from>` |
//! | `contact`            | `payload.recipient.from`, else `payload.from`                 |
//! | `event`              | `END` when the event type ends in `end`/`ended`/`close`/`closed`, else `MESSAGE` |
//! | `text`               | `payload.message.payload.text` (empty for media)              |
//! | `multimedia.url`     | `payload.message.payload.url` (only media messages)           |
//! | `multimedia.caption` | `payload.message.payload.caption`                             |

use plugin_sdk::{lookup_value, Event, Value};
use serde_json::{json, Map};

/// Names usable as `chat.<name>` variables.
pub const FIELDS: &[&str] = &[
    "chatId",
    "contact",
    "event",
    "text",
    "multimedia",
    "multimedia.url",
    "multimedia.caption",
];

/// A string at `path` in the payload.
fn payload_str<'a>(event: &'a Event, path: &str) -> Option<&'a str> {
    lookup_value(&event.payload, path)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Whether the event closes the chat session.
fn is_end(event: &Event) -> bool {
    let last = event
        .event_type
        .rsplit([':', '.', '/'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    matches!(last.as_str(), "end" | "ended" | "close" | "closed")
}

/// The default chatbot fields of an event, as the JSON body sent when the
/// config has no `body` list. `multimedia` is present only for messages
/// that carry a media url.
pub fn default_body(event: &Event) -> Value {
    let contact = payload_str(event, "recipient.from")
        .or_else(|| payload_str(event, "from"))
        .unwrap_or_default();
    let chat_id = match payload_str(event, "chat_id") {
        Some(id) => id.to_owned(),
        None => {
            let channel = payload_str(event, "channels.0.name").or(event.channel.as_deref());
            let to = payload_str(event, "channels.0.to");
            [channel, to, Some(contact)]
                .into_iter()
                .flatten()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(":")
        }
    };
    let mut body = Map::new();
    body.insert("chatId".into(), json!(chat_id));
    body.insert("contact".into(), json!(contact));
    body.insert(
        "event".into(),
        json!(if is_end(event) { "END" } else { "MESSAGE" }),
    );
    body.insert(
        "text".into(),
        json!(payload_str(event, "message.payload.text").unwrap_or_default()),
    );
    if let Some(url) = payload_str(event, "message.payload.url") {
        let caption = payload_str(event, "message.payload.caption").unwrap_or_default();
        body.insert("multimedia".into(), json!({"url": url, "caption": caption}));
    }
    Value::Object(body)
}

/// Resolves a variable: `chat.<field>` from [`default_body`], anything else
/// with [`Event::lookup`]. `None` when missing.
pub fn lookup(event: &Event, defaults: &Value, path: &str) -> Option<Value> {
    match path.strip_prefix("chat.") {
        Some(field) => lookup_value(defaults, field).cloned(),
        None => event.lookup(path),
    }
}

/// The connections an event came through, lowercased: each channel name, and
/// `<channel>:<number>` with the business number (the `to` of an incoming
/// message's `channels` entries, the `from` of a status event), without
/// duplicates.
pub fn connections(event: &Event) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(channel) = &event.channel {
        out.push(channel.to_ascii_lowercase());
    }
    if let Some(channel) = payload_str(event, "channel") {
        out.push(channel.to_ascii_lowercase());
        if let Some(from) = payload_str(event, "from") {
            out.push(format!("{channel}:{from}").to_ascii_lowercase());
        }
    }
    if let Some(Value::Array(channels)) = event.payload.get("channels") {
        for entry in channels {
            let Some(name) = entry.get("name").and_then(Value::as_str) else {
                continue;
            };
            out.push(name.to_ascii_lowercase());
            if let Some(to) = entry.get("to").and_then(Value::as_str) {
                out.push(format!("{name}:{to}").to_ascii_lowercase());
            }
        }
    }
    let mut seen = Vec::with_capacity(out.len());
    out.retain(|c| {
        let new = !seen.contains(c);
        if new {
            seen.push(c.clone());
        }
        new
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_detection() {
        for (event_type, end) in [
            ("whatsapp:message:in", false),
            ("whatsapp:session:closed", true),
            ("Chat.ended", true),
            ("chat/end", true),
            ("closed:message", false),
        ] {
            assert_eq!(
                is_end(&Event::new(event_type, Value::Null)),
                end,
                "{event_type}"
            );
        }
    }

    #[test]
    fn connections_of_status_and_incoming() {
        let status = Event::new(
            "whatsapp:message:status",
            json!({"channel": "whatsapp", "from": "919019120xxx"}),
        );
        assert_eq!(connections(&status), ["whatsapp", "whatsapp:919019120xxx"]);
        let incoming = Event::new(
            "whatsapp:message:in",
            json!({"channels": [{"name": "WhatsApp", "to": "919019120xxx"}]}),
        )
        .with_channel("whatsapp");
        assert_eq!(
            connections(&incoming),
            ["whatsapp", "whatsapp:919019120xxx"]
        );
    }
}
