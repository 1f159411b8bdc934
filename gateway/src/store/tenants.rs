//! Tenants and their API keys. Keys are stored only as SHA-256 hashes.

use std::time::Instant;

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Store, StoreError, StoreResult};
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

/// An API key as stored in the tenant's key index.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeyInfo {
    /// `key_...`.
    pub id: String,
    /// Free text.
    pub name: String,
    /// Last four characters of the key, to tell keys apart.
    pub hint: String,
    /// Unix ms.
    pub created_at_ms: u64,
    /// SHA-256 hex of the key.
    pub hash: String,
}

/// A new API key, shown once.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// Its stored description.
    pub info: ApiKeyInfo,
    /// The plaintext key.
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
        let tenant =
            serde_json::json!({"id": id, "name": name, "created_at_ms": super::time::now_ms()});
        let mut conn = self.conn();
        // Tenant first, key last: a crash in between leaves a tenant nobody can use, never a key without a tenant.
        redis::pipe()
            .set(self.keys.tenant(&id), tenant.to_string())
            .sadd(self.keys.tenants(), &id)
            .query_async::<()>(&mut conn)
            .await?;
        let key = self.create_api_key(&id, "initial").await?;
        Ok(NewTenant {
            id,
            api_key: key.api_key,
        })
    }

    /// Adds an API key to a tenant; the plaintext is returned once, only its hash is stored.
    pub async fn create_api_key(&self, tenant: &str, name: &str) -> StoreResult<NewApiKey> {
        let api_key = generate_api_key();
        let hash = hash_token(&api_key);
        let info = ApiKeyInfo {
            id: new_id(IdKind::ApiKey),
            name: name.to_string(),
            hint: api_key[api_key.len() - 4..].to_string(),
            created_at_ms: super::time::now_ms(),
            hash: hash.clone(),
        };
        let record = KeyRecord {
            tenant_id: tenant.to_string(),
            key_id: info.id.clone(),
        };
        let mut conn = self.conn();
        // Index first, lookup last: a key that authenticates is always listed (and revocable).
        redis::pipe()
            .hset(
                self.keys.tenant_api_keys(tenant),
                &info.id,
                serde_json::to_string(&info)?,
            )
            .set(self.keys.api_key(&hash), serde_json::to_string(&record)?)
            .query_async::<()>(&mut conn)
            .await?;
        Ok(NewApiKey { info, api_key })
    }

    /// A tenant's API keys (hashes included; the API shows only id, name, hint and time).
    pub async fn list_api_keys(&self, tenant: &str) -> StoreResult<Vec<ApiKeyInfo>> {
        let mut conn = self.conn();
        let raw: std::collections::HashMap<String, String> =
            conn.hgetall(self.keys.tenant_api_keys(tenant)).await?;
        let mut keys = raw
            .values()
            .map(|r| serde_json::from_str::<ApiKeyInfo>(r))
            .collect::<Result<Vec<_>, _>>()?;
        keys.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(keys)
    }

    /// Revokes one API key: at once in this process, within
    /// [`super::api_key_cache::CACHE_TTL`] in the others. The last key cannot be revoked (the tenant would be locked out).
    pub async fn revoke_api_key(&self, tenant: &str, key_id: &str) -> StoreResult<()> {
        let keys = self.list_api_keys(tenant).await?;
        let key = keys
            .iter()
            .find(|k| k.id == key_id)
            .ok_or(StoreError::NotFound)?;
        if keys.len() == 1 {
            return Err(StoreError::Conflict(
                "cannot revoke the last API key; create another first".into(),
            ));
        }
        let mut conn = self.conn();
        // Lookup first, index last: a crash in between leaves a listed key that no longer works.
        redis::pipe()
            .del(self.keys.api_key(&key.hash))
            .hdel(self.keys.tenant_api_keys(tenant), key_id)
            .query_async::<()>(&mut conn)
            .await?;
        self.api_keys.forget(&key.hash);
        Ok(())
    }

    /// The tenant an API key belongs to, if any (a key seen in Redis is trusted for
    /// [`super::api_key_cache::CACHE_TTL`]).
    pub async fn authenticate(&self, api_key: &str) -> StoreResult<Option<KeyRecord>> {
        if !api_key.starts_with(API_KEY_PREFIX) {
            return Ok(None);
        }
        let hash = hash_token(api_key);
        let looked_up_at = Instant::now();
        if let Some(record) = self.api_keys.get(&hash, looked_up_at) {
            return Ok(Some(record));
        }
        let mut conn = self.conn();
        let raw: Option<String> = conn.get(self.keys.api_key(&hash)).await?;
        let Some(raw) = raw else {
            return Ok(None);
        };
        let record: KeyRecord = serde_json::from_str(&raw)?;
        self.api_keys.put(&hash, &record, looked_up_at);
        Ok(Some(record))
    }
}

/// A new random admin token, for when the operator did not set one.
pub fn generate_admin_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    format!("gwadm_{}", hex::encode(bytes))
}
