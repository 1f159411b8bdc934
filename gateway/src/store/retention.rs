//! Retention: events, logs and attempts expire by themselves (every key gets a
//! TTL when written); what remains are index entries pointing at expired logs.
//! The janitor trims those by id range (ids are time-ordered), tenant by tenant
//! with `SSCAN` in small batches, so it never blocks Redis with a big sweep.

use std::time::{Duration, UNIX_EPOCH};

use redis::AsyncCommands;

use super::{Store, StoreResult};
use crate::ids::{lower_bound, IdKind};

impl Store {
    /// Removes index entries older than the retention for every tenant. Returns how many.
    pub async fn trim_expired_indexes(&self, now_ms: u64) -> StoreResult<u64> {
        let cutoff_ms = now_ms.saturating_sub(self.retention_secs.saturating_mul(1000));
        let bound = format!(
            "({}",
            lower_bound(
                IdKind::Message,
                UNIX_EPOCH + Duration::from_millis(cutoff_ms)
            )
        );
        let mut conn = self.conn();
        let mut cursor: u64 = 0;
        let mut removed = 0;
        loop {
            let (next, tenants): (u64, Vec<String>) = redis::cmd("SSCAN")
                .arg(self.keys.tenants())
                .arg(cursor)
                .arg("COUNT")
                .arg(100)
                .query_async(&mut conn)
                .await?;
            for tenant in tenants {
                let endpoints: Vec<String> = conn.hkeys(self.keys.endpoints(&tenant)).await?;
                let mut pipe = redis::pipe();
                pipe.zrembylex(self.keys.logs_index(&tenant), "-", &bound);
                for endpoint in &endpoints {
                    pipe.zrembylex(
                        self.keys.endpoint_logs_index(&tenant, endpoint),
                        "-",
                        &bound,
                    );
                }
                let counts: Vec<u64> = pipe.query_async(&mut conn).await?;
                removed += counts.iter().sum::<u64>();
            }
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
    }
}
