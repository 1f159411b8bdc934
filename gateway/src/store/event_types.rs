//! A tenant's own event types, beside the built-in catalog.

use std::collections::HashMap;

use redis::AsyncCommands;

use super::{Store, StoreResult};
use crate::model::event_types::{self, EventType};

impl Store {
    /// The built-in catalog followed by the tenant's own types, by name.
    pub async fn list_event_types(&self, tenant: &str) -> StoreResult<Vec<EventType>> {
        let mut conn = self.conn();
        let own: HashMap<String, String> = conn.hgetall(self.keys.event_types(tenant)).await?;
        let mut all = event_types::builtin();
        let mut own: Vec<EventType> = own
            .into_iter()
            .filter(|(name, _)| !event_types::BUILTIN.iter().any(|(b, _)| b == name))
            .map(|(name, description)| EventType {
                name,
                description,
                builtin: false,
            })
            .collect();
        own.sort_by(|a, b| a.name.cmp(&b.name));
        all.extend(own);
        Ok(all)
    }

    /// Adds or redescribes one of the tenant's own event types.
    pub async fn put_event_type(
        &self,
        tenant: &str,
        name: &str,
        description: &str,
    ) -> StoreResult<()> {
        let mut conn = self.conn();
        let _: () = conn
            .hset(self.keys.event_types(tenant), name, description)
            .await?;
        Ok(())
    }
}
