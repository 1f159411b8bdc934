//! The event-type catalog every tenant starts with, taken from the seed documents.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One entry of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventType {
    /// The type name as events carry it.
    pub name: String,
    /// What the event means.
    pub description: String,
    /// `true` for the built-in catalog, `false` for a tenant's own.
    #[serde(default)]
    pub builtin: bool,
}

/// The built-in catalog: Gallabox's events, the WhatsApp channel's and WhatsAble's.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "Contact.created",
        "Triggered when a new contact is created.",
    ),
    (
        "Contact.updated",
        "Triggered when an existing contact is updated.",
    ),
    (
        "Contact.mapped",
        "Triggered when a contact is mapped to another entity.",
    ),
    (
        "Contact.unmapped",
        "Triggered when a contact is unmapped from an entity.",
    ),
    (
        "Conversation.created",
        "Triggered when a new conversation is initiated.",
    ),
    (
        "Conversation.updated",
        "Triggered when an existing conversation is updated.",
    ),
    (
        "Conversation.UnAttended",
        "Triggered whenever an autoReply message is being sent.",
    ),
    (
        "Conversation.Tag.mapped",
        "Triggered when a tag is mapped to a conversation.",
    ),
    (
        "Conversation.Tag.unmapped",
        "Triggered when a tag is unmapped from a conversation.",
    ),
    (
        "Message.received",
        "Triggered when a new message is received.",
    ),
    (
        "Message.flow.received",
        "Triggered when a message flow is received.",
    ),
    (
        "Message.WA.Cart.received",
        "Triggered when a cart message is received on WhatsApp.",
    ),
    (
        "Message.WA.status.received",
        "Triggered when the status of a WhatsApp message is received.",
    ),
    (
        "Message.WA.status.failed",
        "Triggered when a WhatsApp message fails to send.",
    ),
    (
        "Message.WA.Payment.status.received",
        "Triggered when the status of a payment message sent via WhatsApp is received.",
    ),
    (
        "Message.WA.Interaction.Received",
        "Captures only the replies, clicks and reactions to a message.",
    ),
    (
        "Template.status",
        "Triggered when the status of a message template changes.",
    ),
    (
        "whatsapp:message:status",
        "A WhatsApp message's status changed (sent, delivered, read, failed, deleted).",
    ),
    (
        "whatsapp:message:in",
        "A message was received on the WhatsApp channel.",
    ),
    ("message_status", "A message's delivery status changed."),
    (
        "incoming_message",
        "A recipient sent a new message or replied.",
    ),
];

/// The built-in catalog as API values.
pub fn builtin() -> Vec<EventType> {
    BUILTIN
        .iter()
        .map(|(name, description)| EventType {
            name: (*name).to_string(),
            description: (*description).to_string(),
            builtin: true,
        })
        .collect()
}

/// Body of `POST /v1/event-types`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventTypeCreate {
    /// The type name.
    pub name: String,
    /// What it means.
    #[serde(default)]
    pub description: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_has_the_seed_families() {
        let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
        for name in [
            "Contact.created",
            "Conversation.UnAttended",
            "Message.received",
            "Template.status",
            "whatsapp:message:status",
            "whatsapp:message:in",
            "message_status",
            "incoming_message",
        ] {
            assert!(names.contains(&name), "{name}");
        }
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
    }
}
