//! Relay's state on DynamoDB: one client for the six tables, one file per table's ports.
//!
//! | table (template.yaml) | key            | items                                              | file               |
//! |-----------------------|----------------|----------------------------------------------------|--------------------|
//! | idempotency           | `id`           | `<principal>#<key>` idempotency records             | [`idempotency`]    |
//! |                       |                | `webhook:<source>#<delivery>` incoming-webhook claims | [`dedupe`]       |
//! |                       |                | `rate:<key>#<window>` rate-limit counters           | [`rate`]           |
//! | events                | `eventId`      | every event of an organisation (from ingest, or kept by deliver from the bus: `observed`), with `delivered`/`failing` sets of subscription ids; index `byOrganization` (`organizationId`, `orgReceived`) | [`events`] |
//! | config                | `pk` / `sk`    | `KEY#<hash>`/`KEY` API keys; `SOURCE#<id>`/`SOURCE` and `SUB#<id>`/`SUB` for look-up, each with an `ORG#<org>`/`SOURCE#<id>` or `SUB#<id>` listing item written in the same transaction; `ORG#<org>`/`PROFILE` | [`config`] |
//! | deliveries            | `eventId`/`sk` | `SUB#<subscription>` pair state; `ATTEMPT#<subscription>#<nnnn>` attempts; `health:<subscription>`/`HEALTH` failing-since marks; index `bySubscription` (`subscriptionId`, `updatedAt`) | [`deliveries`] |
//! | requests              | `sourceId`/`requestId` | what each webhook source received, newest last by id | [`requests`] |
//! | mail                  | `pk` / `sk`    | `MSG#<id>`/`MSG` message log entries, `MSG#<id>`/`RCPT` their addresses (shorter TTL); `SUPPRESSED`/`<address>` the suppression list | [`mail`] |
//!
//! The rate counters and webhook claims share the idempotency table because they are the same
//! kind of thing (a short-lived conditional claim on a string key, expired by `expiresAt`) and
//! a table more would be one more IAM grant, alarm and backup for nothing. `expiresAt` is every
//! table's TTL attribute; expiry is always decided from the timestamps, since TTL deletes late
//! (and never, in the emulator).

mod config;
mod dedupe;
mod deliveries;
mod events;
mod idempotency;
mod key;
mod mail;
mod packed;
pub mod payroll;
mod rate;
mod requests;
pub mod tenants;

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, DeleteRequest, Put, TransactWriteItem, WriteRequest};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use relay_core::ports::StoreError;

/// One item, as the SDK takes and gives it.
type Item = HashMap<String, AttributeValue>;

/// Items per BatchWriteItem (service limit).
const MAX_BATCH_WRITE: usize = 25;

/// The table names, from the function's environment.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    pub idempotency: String,
    pub events: String,
    pub config: String,
    pub deliveries: String,
    pub requests: String,
    pub mail: String,
}

impl Tables {
    /// The names template.yaml hands every function.
    pub fn from_env() -> Result<Self, crate::config::ConfigError> {
        use crate::config::required;
        Ok(Self {
            idempotency: required("RELAY_IDEMPOTENCY_TABLE")?,
            events: required("RELAY_EVENTS_TABLE")?,
            config: required("RELAY_CONFIG_TABLE")?,
            deliveries: required("RELAY_DELIVERIES_TABLE")?,
            requests: required("RELAY_REQUESTS_TABLE")?,
            mail: required("RELAY_MAIL_TABLE")?,
        })
    }
}

/// One client for the six tables; implements every store port, so a function builds it once and
/// hands it out as each `Arc<dyn Port>` it needs (and a lock and its events share a transaction).
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    tables: Tables,
}

impl DynamoStore {
    pub fn new(config: &aws_config::SdkConfig, tables: Tables) -> Self {
        Self { client: Client::new(config), tables }
    }

    /// Every page of `query`, followed to the end.
    async fn query_all(&self, query: QueryFluentBuilder) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = query.clone().set_exclusive_start_key(start).send().await.or_store("dynamodb:Query")?;
            items.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// Writes `items` in one transaction without conditions: all or nothing.
    async fn write_together(&self, items: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        self.client.transact_write_items().set_transact_items(Some(items)).send().await.or_store("dynamodb:TransactWriteItems")?;
        Ok(())
    }

    /// Runs `items` as one transaction. `Ok(false)`: a condition failed and nothing was written.
    /// A transaction cancelled for another reason (a conflict with a concurrent one, throttling)
    /// is an error the caller retries, not a failed condition.
    async fn conditional_transaction(&self, items: Vec<TransactWriteItem>) -> Result<bool, StoreError> {
        conditional_transaction(&self.client, items).await
    }

    /// Deletes `keys` from `table` in batches, retrying what the service leaves unprocessed.
    async fn batch_delete(&self, table: &str, keys: Vec<Item>) -> Result<(), StoreError> {
        for chunk in keys.chunks(MAX_BATCH_WRITE) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|k| {
                    DeleteRequest::builder().set_key(Some(k.clone())).build().map(|d| WriteRequest::builder().delete_request(d).build())
                })
                .collect::<Result<_, _>>()
                .or_store("build DeleteRequest")?;
            for _ in 0..5 {
                let out = self.client.batch_write_item().request_items(table, requests).send().await.or_store("dynamodb:BatchWriteItem")?;
                requests = out.unprocessed_items.and_then(|mut u| u.remove(table)).unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
            }
            if !requests.is_empty() {
                return Err(StoreError::new("dynamodb:BatchWriteItem", "items left unprocessed"));
            }
        }
        Ok(())
    }
}

/// An SDK failure as the port's [`StoreError`], with the service's full error chain.
trait OrStoreError<T> {
    fn or_store(self, operation: &'static str) -> Result<T, StoreError>;
}

impl<T, E: std::error::Error> OrStoreError<T> for Result<T, E> {
    fn or_store(self, operation: &'static str) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::new(operation, DisplayErrorContext(e)))
    }
}

/// A conditional write's outcome: `Ok(None)` when its condition failed (nothing was written),
/// any other failure an error.
fn conditional<T, E: std::error::Error + ProvideErrorMetadata>(
    result: Result<T, E>,
    operation: &'static str,
) -> Result<Option<T>, StoreError> {
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(None),
        Err(e) => Err(StoreError::new(operation, DisplayErrorContext(e))),
    }
}

/// Puts `item` only if no item has its key; false if one had (nothing was written).
async fn put_new(client: &Client, table: &str, item: Item) -> Result<bool, StoreError> {
    let result = client.put_item().table_name(table).set_item(Some(item)).condition_expression("attribute_not_exists(pk)").send().await;
    Ok(conditional(result, "dynamodb:PutItem")?.is_some())
}

/// The item at `key`, read consistently.
async fn get_consistent(client: &Client, table: &str, key: Item) -> Result<Option<Item>, StoreError> {
    let out = client.get_item().table_name(table).set_key(Some(key)).consistent_read(true).send().await.or_store("dynamodb:GetItem")?;
    Ok(out.item)
}

/// Every item of the partition `pk` (a table keyed `pk`/`sk`), read consistently, all pages.
async fn partition(client: &Client, table: &str, pk: &str) -> Result<Vec<Item>, StoreError> {
    let mut all = Vec::new();
    let mut start = None;
    loop {
        let out = client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk))
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .or_store("dynamodb:Query")?;
        all.extend(out.items().iter().cloned());
        start = out.last_evaluated_key;
        if start.is_none() {
            return Ok(all);
        }
    }
}

/// A page of a listing index, newest first: the items whose `partition` attribute is `value`,
/// after `start`, `limit` at most; with the next page's cursor, its last item's `created` (every
/// listing index sorts on `created`).
async fn newest_first(
    client: &Client,
    table: &str,
    index: &str,
    (partition, value): (&str, &str),
    start: Option<Item>,
    limit: u32,
) -> Result<(Vec<Item>, Option<String>), StoreError> {
    let out = client
        .query()
        .table_name(table)
        .index_name(index)
        .key_condition_expression("#p = :p")
        .expression_attribute_names("#p", partition)
        .expression_attribute_values(":p", s(value))
        .scan_index_forward(false)
        .limit(limit as i32)
        .set_exclusive_start_key(start)
        .send()
        .await
        .or_store("dynamodb:Query")?;
    let next = out.last_evaluated_key().and_then(|k| get_s(k, "created")).map(str::to_string);
    Ok((out.items.unwrap_or_default(), next))
}

/// Runs `items` as one transaction (see [`DynamoStore::conditional_transaction`]).
pub(crate) async fn conditional_transaction(client: &Client, items: Vec<TransactWriteItem>) -> Result<bool, StoreError> {
    match client.transact_write_items().set_transact_items(Some(items)).send().await {
        Ok(_) => Ok(true),
        Err(e) => match e.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(c))
                if c.cancellation_reasons().iter().any(|r| r.code() == Some("ConditionalCheckFailed")) =>
            {
                Ok(false)
            }
            _ => Err(StoreError::new("dynamodb:TransactWriteItems", DisplayErrorContext(e))),
        },
    }
}

/// A transaction action putting `item` into `table` unconditionally.
fn put_action(table: &str, item: Item) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder().table_name(table).set_item(Some(item)).build().or_store("build Put")?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// A transaction action deleting `key` from `table` unconditionally.
fn delete_action(table: &str, key: Item) -> Result<TransactWriteItem, StoreError> {
    let delete = Delete::builder().table_name(table).set_key(Some(key)).build().or_store("build Delete")?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn get_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

/// An RFC 3339 time attribute; the epoch when it is missing or unreadable.
fn get_time(item: &Item, name: &str) -> DateTime<Utc> {
    get_s(item, name).and_then(|t| t.parse().ok()).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}
