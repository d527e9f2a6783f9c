//! The mail table: the message log (`MSG#<id>`/`MSG`, its addresses apart at `MSG#<id>`/`RCPT`
//! with a shorter TTL) and the suppression list (`SUPPRESSED`/`<address>`, one partition read in
//! address order). Log entries are stored as a JSON document with the attributes the
//! conditions need (`version`, `expiresAt`) beside it.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{KeysAndAttributes, ReturnValue};
use relay_core::model::mail_log::{MailMessage, MailRecipients, Suppression};
use relay_core::ports::{MailLog, StoreError, SuppressionList};
use uuid::Uuid;

use super::{conditional, get_n, get_s, n, s, DynamoStore, Item, OrStoreError};

const SUPPRESSED: &str = "SUPPRESSED";

fn key(pk: &str, sk: &str) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

fn message_pk(id: Uuid) -> String {
    format!("MSG#{id}")
}

fn doc<T: serde::de::DeserializeOwned>(item: &Item) -> Option<T> {
    get_s(item, "doc").and_then(|d| serde_json::from_str(d).ok())
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::new("serialize", e))
}

impl DynamoStore {
    fn message_item(&self, m: &MailMessage) -> Result<Item, StoreError> {
        let mut item = key(&message_pk(m.id), "MSG");
        item.insert("doc".into(), s(&json(m)?));
        item.insert("version".into(), n(m.version as i64));
        item.insert("expiresAt".into(), n(m.expires_at));
        Ok(item)
    }

    async fn get(&self, k: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.mail)
            .set_key(Some(k))
            .consistent_read(true)
            .send()
            .await
            .or_store("dynamodb:GetItem")?;
        Ok(out.item)
    }
}

#[async_trait]
impl MailLog for DynamoStore {
    async fn create_message(&self, message: &MailMessage, recipients: &MailRecipients) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.mail)
            .set_item(Some(self.message_item(message)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        if conditional(result, "dynamodb:PutItem")?.is_none() {
            return Ok(false);
        }
        self.put_recipients(message.id, recipients).await?;
        Ok(true)
    }

    async fn put_recipients(&self, id: Uuid, recipients: &MailRecipients) -> Result<(), StoreError> {
        let mut item = key(&message_pk(id), "RCPT");
        item.insert("doc".into(), s(&json(recipients)?));
        item.insert("expiresAt".into(), n(recipients.expires_at));
        self.client.put_item().table_name(&self.tables.mail).set_item(Some(item)).send().await.or_store("dynamodb:PutItem")?;
        Ok(())
    }

    async fn get_message(&self, id: Uuid, now: i64) -> Result<Option<MailMessage>, StoreError> {
        let item = self.get(key(&message_pk(id), "MSG")).await?;
        Ok(item.as_ref().filter(|i| get_n(i, "expiresAt").unwrap_or(0) > now).and_then(|i| {
            let mut m: MailMessage = doc(i)?;
            m.version = get_n(i, "version").unwrap_or(0) as u64;
            Some(m)
        }))
    }

    async fn get_recipients(&self, id: Uuid, now: i64) -> Result<Option<MailRecipients>, StoreError> {
        let item = self.get(key(&message_pk(id), "RCPT")).await?;
        Ok(item.as_ref().and_then(doc::<MailRecipients>).filter(|r| r.expires_at > now))
    }

    async fn put_message(&self, message: &MailMessage, expected: u64) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.mail)
            .set_item(Some(self.message_item(message)?))
            .condition_expression("version = :expected")
            .expression_attribute_values(":expected", n(expected as i64))
            .send()
            .await;
        Ok(conditional(result, "dynamodb:PutItem")?.is_some())
    }

    async fn delete_message(&self, id: Uuid) -> Result<(), StoreError> {
        let pk = message_pk(id);
        self.batch_delete(&self.tables.mail, vec![key(&pk, "MSG"), key(&pk, "RCPT")]).await
    }
}

#[async_trait]
impl SuppressionList for DynamoStore {
    async fn suppressed(&self, addresses: &[String]) -> Result<Vec<String>, StoreError> {
        let mut found = Vec::new();
        let mut unique: Vec<&String> = addresses.iter().collect();
        unique.sort();
        unique.dedup();
        for chunk in unique.chunks(100) {
            let keys: Vec<Item> = chunk.iter().map(|a| key(SUPPRESSED, a)).collect();
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .projection_expression("sk")
                    .consistent_read(true)
                    .build()
                    .or_store("build KeysAndAttributes")?,
            );
            for _ in 0..5 {
                let Some(r) = request.take() else { break };
                let out =
                    self.client.batch_get_item().request_items(&self.tables.mail, r).send().await.or_store("dynamodb:BatchGetItem")?;
                let items = out.responses.and_then(|mut r| r.remove(&self.tables.mail)).unwrap_or_default();
                found.extend(items.iter().filter_map(|i| get_s(i, "sk").map(str::to_string)));
                request = out.unprocessed_keys.and_then(|mut u| u.remove(&self.tables.mail));
            }
            if request.is_some() {
                return Err(StoreError::new("dynamodb:BatchGetItem", "keys left unprocessed"));
            }
        }
        Ok(found)
    }

    async fn suppress(&self, entry: &Suppression) -> Result<(), StoreError> {
        let mut item = key(SUPPRESSED, &entry.address);
        item.insert("doc".into(), s(&json(entry)?));
        self.client.put_item().table_name(&self.tables.mail).set_item(Some(item)).send().await.or_store("dynamodb:PutItem")?;
        Ok(())
    }

    async fn list_suppressions(&self, cursor: Option<&str>, limit: usize) -> Result<(Vec<Suppression>, Option<String>), StoreError> {
        let mut req = self
            .client
            .query()
            .table_name(&self.tables.mail)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(SUPPRESSED))
            .limit(limit.clamp(1, 100) as i32);
        if let Some(c) = cursor {
            req = req.set_exclusive_start_key(Some(key(SUPPRESSED, c)));
        }
        let out = req.send().await.or_store("dynamodb:Query")?;
        let entries = out.items().iter().filter_map(doc::<Suppression>).collect();
        let next = out.last_evaluated_key.as_ref().and_then(|k| get_s(k, "sk").map(str::to_string));
        Ok((entries, next))
    }

    async fn remove_suppression(&self, address: &str) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.tables.mail)
            .set_key(Some(key(SUPPRESSED, address)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .or_store("dynamodb:DeleteItem")?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }
}
