//! Incoming-webhook claims, in the idempotency table (`id` = `webhook:<source>#<delivery>`):
//! one conditional put per delivery recognises a provider's retry.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use relay_core::ports::{Claim, DedupeStore, StoreError};

use super::{conditional, get_n, key, n, DynamoStore};

#[async_trait]
impl DedupeStore for DynamoStore {
    async fn claim(&self, id: &str, hold_until_ms: i64, expires_at: i64, now_ms: i64) -> Result<Claim, StoreError> {
        let mut item = key::id(id);
        item.insert("holdUntil".into(), n(hold_until_ms));
        item.insert("expiresAt".into(), n(expires_at));
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.idempotency)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(id) OR expiresAt <= :nows OR holdUntil <= :nowms")
            .expression_attribute_values(":nows", n(now_ms / 1000))
            .expression_attribute_values(":nowms", n(now_ms))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        Ok(match conditional(result, "dynamodb:PutItem")? {
            None => Claim::Held,
            // An old item that still counted means an earlier attempt's hold lapsed.
            Some(out) => match out.attributes {
                Some(old) if get_n(&old, "expiresAt").is_some_and(|e| e * 1000 > now_ms) => Claim::Reclaimed,
                _ => Claim::Fresh,
            },
        })
    }

    async fn forget(&self, id: &str) -> Result<(), StoreError> {
        self.delete_id(id).await
    }
}
