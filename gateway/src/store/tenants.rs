//! Tenants and their API keys. Keys are stored only as SHA-256 hashes.

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Store, StoreResult};
use crate::ids::{new_id, IdKind};

/// Prefix of every tenant API key.
pub const API_KEY_PREFIX: &str = "gwk_";

/// What an API key hash resolves to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The tenant the key belongs to.
    pub tenant_id: String,
    /// The key's id (`key_...`), for revocation.
    pub key_id: String,
}

/// A new tenant and its first key (shown once).
#[derive(Debug, Clone)]
pub struct NewTenant {
    /// `ten_...`.
    pub id: String,
    /// The plaintext key; only its hash is stored.
    pub api_key: String,
}

/// SHA-256 hex of a token: what is stored and looked up instead of the token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn generate_api_key() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{API_KEY_PREFIX}{}", hex::encode(bytes))
}

impl Store {
    /// Creates a tenant with one API key.
    pub async fn create_tenant(&self, name: &str) -> StoreResult<NewTenant> {
        let id = new_id(IdKind::Tenant);
        let api_key = generate_api_key();
        let record = KeyRecord {
            tenant_id: id.clone(),
            key_id: new_id(IdKind::ApiKey),
        };
        let tenant =
            serde_json::json!({"id": id, "name": name, "created_at_ms": super::time::now_ms()});
        let mut conn = self.conn();
        // Tenant first, key last: a crash in between leaves a tenant nobody can use, never a key without a tenant.
        redis::pipe()
            .set(self.keys.tenant(&id), tenant.to_string())
            .sadd(self.keys.tenants(), &id)
            .set(
                self.keys.api_key(&hash_token(&api_key)),
                serde_json::to_string(&record)?,
            )
            .query_async::<()>(&mut conn)
            .await?;
        Ok(NewTenant { id, api_key })
    }

    /// The tenant an API key belongs to, if any.
    pub async fn authenticate(&self, api_key: &str) -> StoreResult<Option<KeyRecord>> {
        if !api_key.starts_with(API_KEY_PREFIX) {
            return Ok(None);
        }
        let mut conn = self.conn();
        let raw: Option<String> = conn.get(self.keys.api_key(&hash_token(api_key))).await?;
        Ok(match raw {
            Some(raw) => Some(serde_json::from_str(&raw)?),
            None => None,
        })
    }
}

/// A new random admin token, for when the operator did not set one.
pub fn generate_admin_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    format!("gwadm_{}", hex::encode(bytes))
}
