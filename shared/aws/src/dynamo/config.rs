//! The config table (`pk`/`sk`, single-table): API keys, webhook sources, subscriptions (and the
//! platform's integrations, organisation `*`) and organisation profiles. Sources and
//! subscriptions are stored twice, for look-up by id and for listing by organisation, and the
//! two items are always written in one transaction, so a listing never shows what a look-up
//! cannot find, or the reverse.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use relay_core::model::keys::{ApiKey, KeyKind};
use relay_core::model::organization::Profile;
use relay_core::model::source::SealedSource;
use relay_core::model::subscription::Subscription;
use relay_core::ports::{KeyStore, KeyWriter, OrganizationStore, SourceLookup, SourceStore, StoreError, SubscriptionStore};

use super::{delete_action, get_n, get_s, get_time, key, n, put_action, s, DynamoStore, Item, OrStoreError};

/// The partition key of an organisation's listing items (and its profile).
fn org_pk(organization_id: &str) -> String {
    format!("ORG#{organization_id}")
}

impl DynamoStore {
    /// Reads one config item, strongly consistent when `consistent`.
    async fn config_item(&self, pk: &str, sk: &str, consistent: bool) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.config)
            .set_key(Some(key::config(pk, sk)))
            .set_consistent_read(consistent.then_some(true))
            .send()
            .await
            .or_store("dynamodb:GetItem")?;
        Ok(out.item)
    }

    /// Every listing item of an organisation whose sort key begins with `prefix`.
    async fn listing(&self, organization_id: &str, prefix: &str, consistent: bool) -> Result<Vec<Item>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.tables.config)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(&org_pk(organization_id)))
            .expression_attribute_values(":prefix", s(prefix))
            .set_consistent_read(consistent.then_some(true));
        self.query_all(query).await
    }
}

#[async_trait]
impl KeyStore for DynamoStore {
    async fn find_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let Some(item) = self.config_item(&format!("KEY#{key_hash}"), "KEY", false).await? else {
            return Ok(None);
        };
        let kind = match get_s(&item, "kind") {
            Some("product") => KeyKind::Product,
            Some("organization") => KeyKind::Organization,
            Some("admin") => KeyKind::Admin,
            _ => return Ok(None),
        };
        Ok(Some(ApiKey {
            kind,
            product: get_s(&item, "product").map(str::to_string),
            organization_id: get_s(&item, "organizationId").map(str::to_string),
            name: get_s(&item, "name").unwrap_or_default().to_string(),
            created_at: get_time(&item, "createdAt"),
            disabled: matches!(item.get("disabled"), Some(AttributeValue::Bool(true))),
        }))
    }
}

#[async_trait]
impl KeyWriter for DynamoStore {
    async fn put_key(&self, key_hash: &str, api_key: &ApiKey) -> Result<(), StoreError> {
        let kind = match api_key.kind {
            KeyKind::Product => "product",
            KeyKind::Organization => "organization",
            KeyKind::Admin => "admin",
        };
        let mut item = key::config(&format!("KEY#{key_hash}"), "KEY");
        item.insert("kind".into(), s(kind));
        item.insert("name".into(), s(&api_key.name));
        item.insert("createdAt".into(), s(&api_key.created_at.to_rfc3339()));
        item.insert("disabled".into(), AttributeValue::Bool(api_key.disabled));
        if let Some(p) = &api_key.product {
            item.insert("product".into(), s(p));
        }
        if let Some(o) = &api_key.organization_id {
            item.insert("organizationId".into(), s(o));
        }
        self.client.put_item().table_name(&self.tables.config).set_item(Some(item)).send().await.or_store("dynamodb:PutItem")?;
        Ok(())
    }
}

/// `SOURCE#<id>`/`SOURCE` (looked up by webhook-receive) and `ORG#<org>`/`SOURCE#<id>` (listed
/// by the management API).
#[async_trait]
impl SourceLookup for DynamoStore {
    async fn get_source(&self, id: &str) -> Result<Option<SealedSource>, StoreError> {
        Ok(self.config_item(&format!("SOURCE#{id}"), "SOURCE", false).await?.as_ref().and_then(read_source))
    }
}

#[async_trait]
impl SourceStore for DynamoStore {
    async fn put_source(&self, src: &SealedSource) -> Result<(), StoreError> {
        let lookup = source_item(src, key::config(&format!("SOURCE#{}", src.id), "SOURCE"));
        let listing = source_item(src, key::config(&org_pk(&src.organization_id), &format!("SOURCE#{}", src.id)));
        let table = &self.tables.config;
        self.write_together(vec![put_action(table, lookup)?, put_action(table, listing)?]).await
    }
    async fn list_sources(&self, organization_id: &str) -> Result<Vec<SealedSource>, StoreError> {
        Ok(self.listing(organization_id, "SOURCE#", false).await?.iter().filter_map(read_source).collect())
    }

    async fn delete_source(&self, organization_id: &str, id: &str) -> Result<bool, StoreError> {
        let lookup = Delete::builder()
            .table_name(&self.tables.config)
            .set_key(Some(key::config(&format!("SOURCE#{id}"), "SOURCE")))
            .condition_expression("organizationId = :org")
            .expression_attribute_values(":org", s(organization_id))
            .build()
            .or_store("build Delete")?;
        let listing = delete_action(&self.tables.config, key::config(&org_pk(organization_id), &format!("SOURCE#{id}")))?;
        // `false`: the condition failed, no such source in this organisation; nothing was deleted.
        self.conditional_transaction(vec![TransactWriteItem::builder().delete(lookup).build(), listing]).await
    }
}

/// Subscriptions as JSON documents (secrets sealed): `SUB#<id>`/`SUB` for look-up and
/// `ORG#<org>`/`SUB#<id>` for listing. The look-up item carries the version every write checks.
#[async_trait]
impl SubscriptionStore for DynamoStore {
    async fn put_subscription(&self, sub: &Subscription, expected: Option<u64>) -> Result<bool, StoreError> {
        let doc = serde_json::to_string(sub).map_err(|e| StoreError::new("encode subscription", e))?;
        let item = |mut key: Item| {
            key.insert("doc".into(), s(&doc));
            key.insert("version".into(), n(sub.version as i64));
            key
        };
        // The write goes through only over the version the caller read (or, for a new one, only
        // if none exists), so no change is lost and a deleted subscription is never written back.
        // The listing item moves with it.
        let lookup = Put::builder().table_name(&self.tables.config).set_item(Some(item(key::config(&format!("SUB#{}", sub.id), "SUB"))));
        let lookup = match expected {
            None => lookup.condition_expression("attribute_not_exists(pk)"),
            // Items written before versions existed have none: version 0 means "still without one".
            Some(0) => lookup.condition_expression("attribute_exists(pk) AND attribute_not_exists(version)"),
            Some(v) => lookup.condition_expression("version = :v").expression_attribute_values(":v", n(v as i64)),
        }
        .build()
        .or_store("build Put")?;
        let listing = put_action(&self.tables.config, item(key::config(&org_pk(&sub.organization_id), &format!("SUB#{}", sub.id))))?;
        self.conditional_transaction(vec![TransactWriteItem::builder().put(lookup).build(), listing]).await
    }

    async fn get_subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError> {
        Ok(self.config_item(&format!("SUB#{id}"), "SUB", true).await?.as_ref().and_then(read_subscription))
    }

    async fn list_subscriptions(&self, organization_id: &str) -> Result<Vec<Subscription>, StoreError> {
        Ok(self.listing(organization_id, "SUB#", true).await?.iter().filter_map(read_subscription).collect())
    }

    async fn delete_subscription(&self, organization_id: &str, id: &str) -> Result<bool, StoreError> {
        let Some(existing) = self.get_subscription(id).await? else { return Ok(false) };
        if existing.organization_id != organization_id {
            return Ok(false);
        }
        let table = &self.tables.config;
        let items = vec![
            delete_action(table, key::config(&format!("SUB#{id}"), "SUB"))?,
            delete_action(table, key::config(&org_pk(organization_id), &format!("SUB#{id}")))?,
        ];
        self.write_together(items).await?;
        Ok(true)
    }
}

/// `ORG#<org>`/`PROFILE`: the verified `contactEmail` as an attribute, a pending address (with
/// its code's digest) as JSON.
#[async_trait]
impl OrganizationStore for DynamoStore {
    async fn profile(&self, organization_id: &str) -> Result<Profile, StoreError> {
        let Some(item) = self.config_item(&org_pk(organization_id), "PROFILE", true).await? else { return Ok(Profile::default()) };
        Ok(Profile {
            // Only `verifiedContact`: a `contactEmail` written before verification existed was
            // never verified, so it is not used.
            contact_email: get_s(&item, "verifiedContact").map(str::to_string),
            pending: get_s(&item, "pending").and_then(|p| serde_json::from_str(p).ok()),
        })
    }

    async fn put_profile(&self, organization_id: &str, profile: &Profile) -> Result<(), StoreError> {
        let mut item = key::config(&org_pk(organization_id), "PROFILE");
        if let Some(c) = &profile.contact_email {
            item.insert("verifiedContact".into(), s(c));
        }
        if let Some(p) = &profile.pending {
            item.insert("pending".into(), s(&serde_json::to_string(p).map_err(|e| StoreError::new("encode profile", e))?));
        }
        self.client.put_item().table_name(&self.tables.config).set_item(Some(item)).send().await.or_store("dynamodb:PutItem")?;
        Ok(())
    }
}

/// A subscription document; its version is the item's (older items have none: version 0).
fn read_subscription(item: &Item) -> Option<Subscription> {
    let mut sub: Subscription = serde_json::from_str(get_s(item, "doc")?).ok()?;
    sub.version = get_n(item, "version").unwrap_or(0) as u64;
    Some(sub)
}

/// A source's attributes added to `key` (its look-up or its listing key).
fn source_item(src: &SealedSource, mut item: Item) -> Item {
    item.insert("id".into(), s(&src.id));
    item.insert("organizationId".into(), s(&src.organization_id));
    item.insert("provider".into(), s(&src.provider));
    item.insert("sealedSecret".into(), s(&src.sealed_secret));
    item.insert("options".into(), s(&src.options));
    item.insert("createdAt".into(), s(&src.created_at.to_rfc3339()));
    if let Some(d) = &src.description {
        item.insert("description".into(), s(d));
    }
    item
}

fn read_source(item: &Item) -> Option<SealedSource> {
    Some(SealedSource {
        id: get_s(item, "id")?.to_string(),
        organization_id: get_s(item, "organizationId")?.to_string(),
        provider: get_s(item, "provider")?.to_string(),
        sealed_secret: get_s(item, "sealedSecret")?.to_string(),
        options: get_s(item, "options").unwrap_or("{}").to_string(),
        description: get_s(item, "description").map(str::to_string),
        created_at: get_time(item, "createdAt"),
    })
}
