//! Rate limits shared by every instance: `rate:<key>#<window start>` counters in the idempotency
//! table, each taken with one conditional increment; they expire two minutes after their window.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use relay_core::ports::{window_start, RateLimiter, StoreError};

use super::{conditional, key, n, DynamoStore};

#[async_trait]
impl RateLimiter for DynamoStore {
    async fn take_rate_slots(&self, name: &str, count: u32, limit: u32, window_secs: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        if count > limit {
            return Ok(false);
        }
        let start = window_start(now, window_secs);
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.idempotency)
            .set_key(Some(key::id(&format!("rate:{name}#{start}"))))
            .update_expression("ADD used :count SET expiresAt = :exp")
            .condition_expression("attribute_not_exists(used) OR used <= :room")
            .expression_attribute_values(":count", n(i64::from(count)))
            .expression_attribute_values(":room", n(i64::from(limit - count)))
            .expression_attribute_values(":exp", n(start + window_secs.max(1) + 120))
            .send()
            .await;
        Ok(conditional(result, "dynamodb:UpdateItem")?.is_some())
    }
}
