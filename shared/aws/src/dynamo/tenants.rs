//! The tenants table: per tenant (pk `TENANT#<id>`, sk `TENANT`) its record as JSON with its
//! version, status and workflow lease beside it; the fleet in one partition (pk `FLEET`, sk the
//! VPS's name), each VPS's tenants a string set with their count, so a slot is taken by one
//! conditional `ADD` (below `maxTenants`, active, the tenant not on it yet).
//!
//! Tenants are listed newest first through the `byCreated` index (`listed` = `TENANT`,
//! `created` = `<created>~<id>`): tenants are few, one partition lists them easily.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, SecondsFormat, Utc};
use relay_core::ports::provision::{FleetStore, TenantStore};
use relay_core::ports::StoreError;
use relay_core::provision::fleet::{Usage, Vps, VpsStatus};
use relay_core::provision::tenant::Tenant;
use relay_core::provision::workflow::status_name;

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};

use super::{
    conditional, conditional_transaction, get_consistent, get_n, get_s, key, n, newest_first, partition, put_new, s, Item, OrStoreError,
};

const TENANT_SK: &str = "TENANT";
const FLEET: &str = "FLEET";

#[derive(Clone)]
pub struct DynamoTenants {
    client: Client,
    table: String,
}

impl DynamoTenants {
    pub fn new(config: &aws_config::SdkConfig, table: String) -> Self {
        Self { client: Client::new(config), table }
    }

    fn tenant_key(id: &str) -> Item {
        key::config(&format!("TENANT#{id}"), TENANT_SK)
    }

    fn vps_key(name: &str) -> Item {
        key::config(FLEET, name)
    }

    /// Sets one attribute of a VPS that exists; false if there is no such VPS.
    async fn set_on_vps(&self, name: &str, attribute: &str, value: AttributeValue) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::vps_key(name)))
            .update_expression("SET #a = :v")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#a", attribute)
            .expression_attribute_values(":v", value)
            .send()
            .await;
        Ok(conditional(result, "dynamodb:UpdateItem")?.is_some())
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn json<T: serde::Serialize>(what: &'static str, v: &T) -> Result<AttributeValue, StoreError> {
    serde_json::to_string(v).map(|j| s(&j)).map_err(|e| StoreError::new(what, e))
}

fn tenant(item: &Item) -> Option<Tenant> {
    serde_json::from_str(get_s(item, "doc")?).ok()
}

/// A VPS item: its fixed facts as JSON, and the fields that change apart.
fn vps(item: &Item) -> Option<Vps> {
    let mut v: Vps = serde_json::from_str(get_s(item, "doc")?).ok()?;
    v.tenants = match item.get("tenants") {
        Some(AttributeValue::Ss(set)) => set.clone(),
        _ => Vec::new(),
    };
    v.tenants.sort();
    v.max_tenants = get_n(item, "maxTenants").unwrap_or(0) as u32;
    v.status = if get_s(item, "status") == Some("draining") { VpsStatus::Draining } else { VpsStatus::Active };
    v.usage = get_s(item, "usage").and_then(|u| serde_json::from_str::<Usage>(u).ok());
    Some(v)
}

#[async_trait]
impl TenantStore for DynamoTenants {
    async fn create_tenant(&self, t: &Tenant) -> Result<bool, StoreError> {
        let mut item = Self::tenant_key(t.id());
        item.insert("doc".into(), json("encode tenant", t)?);
        item.insert("version".into(), n(t.version as i64));
        item.insert("status".into(), s(status_name(t.status)));
        item.insert("listed".into(), s(TENANT_SK));
        item.insert("created".into(), s(&format!("{}~{}", time(t.created_at), t.id())));
        // The slug's reservation (pk `SLUG#<slug>`), written with the tenant or not at all.
        let mut slug = key::config(&format!("SLUG#{}", t.request.slug), "SLUG");
        slug.insert("organizationId".into(), s(t.id()));
        let new = |item: Item| -> Result<TransactWriteItem, StoreError> {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .or_store("build Put")?;
            Ok(TransactWriteItem::builder().put(put).build())
        };
        conditional_transaction(&self.client, vec![new(item)?, new(slug)?]).await
    }

    async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        Ok(get_consistent(&self.client, &self.table, Self::tenant_key(id)).await?.as_ref().and_then(tenant))
    }

    async fn save_tenant(&self, t: &Tenant) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::tenant_key(t.id())))
            .update_expression("SET doc = :doc, version = :v, #st = :status")
            .condition_expression("version = :read")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":doc", json("encode tenant", t)?)
            .expression_attribute_values(":v", n(t.version as i64))
            .expression_attribute_values(":read", n(t.version as i64 - 1))
            .expression_attribute_values(":status", s(status_name(t.status)))
            .send()
            .await;
        Ok(conditional(result, "dynamodb:UpdateItem")?.is_some())
    }

    async fn list_tenants(&self, cursor: Option<&str>, limit: u32) -> Result<(Vec<Tenant>, Option<String>), StoreError> {
        let start = match cursor {
            None => None,
            Some(c) => {
                let (_, id) = c.split_once('~').ok_or_else(|| StoreError::new("cursor", "not a cursor of this list"))?;
                let mut start = Self::tenant_key(id);
                start.insert("listed".into(), s(TENANT_SK));
                start.insert("created".into(), s(c));
                Some(start)
            }
        };
        let (items, next) = newest_first(&self.client, &self.table, "byCreated", ("listed", TENANT_SK), start, limit).await?;
        Ok((items.iter().filter_map(tenant).collect(), next))
    }

    async fn lease(&self, id: &str, holder: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::tenant_key(id)))
            .update_expression("SET leaseHolder = :h, leaseUntil = :until")
            .condition_expression("attribute_exists(pk) AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now OR leaseHolder = :h)")
            .expression_attribute_values(":h", s(holder))
            .expression_attribute_values(":until", s(&time(until)))
            .expression_attribute_values(":now", s(&time(now)))
            .send()
            .await;
        Ok(conditional(result, "dynamodb:UpdateItem")?.is_some())
    }

    async fn release_lease(&self, id: &str, holder: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::tenant_key(id)))
            .update_expression("REMOVE leaseHolder, leaseUntil")
            .condition_expression("leaseHolder = :h")
            .expression_attribute_values(":h", s(holder))
            .send()
            .await;
        conditional(result, "dynamodb:UpdateItem")?;
        Ok(())
    }
}

#[async_trait]
impl FleetStore for DynamoTenants {
    async fn add_vps(&self, v: &Vps) -> Result<bool, StoreError> {
        let mut item = Self::vps_key(&v.name);
        item.insert("doc".into(), json("encode VPS", v)?);
        item.insert("maxTenants".into(), n(i64::from(v.max_tenants)));
        item.insert("tenantCount".into(), n(v.tenants.len() as i64));
        if !v.tenants.is_empty() {
            item.insert("tenants".into(), AttributeValue::Ss(v.tenants.clone()));
        }
        item.insert("status".into(), s(if v.status == VpsStatus::Draining { "draining" } else { "active" }));
        put_new(&self.client, &self.table, item).await
    }

    async fn get_vps(&self, name: &str) -> Result<Option<Vps>, StoreError> {
        Ok(get_consistent(&self.client, &self.table, Self::vps_key(name)).await?.as_ref().and_then(vps))
    }

    async fn list_vps(&self) -> Result<Vec<Vps>, StoreError> {
        Ok(partition(&self.client, &self.table, FLEET).await?.iter().filter_map(vps).collect())
    }

    async fn take_slot(&self, name: &str, tenant: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::vps_key(name)))
            .update_expression("ADD tenants :t, tenantCount :one")
            .condition_expression(
                "attribute_exists(pk) AND #st = :active AND tenantCount < maxTenants AND (attribute_not_exists(tenants) OR NOT contains(tenants, :tenant))",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":t", AttributeValue::Ss(vec![tenant.to_string()]))
            .expression_attribute_values(":tenant", s(tenant))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":active", s("active"))
            .send()
            .await;
        Ok(conditional(result, "dynamodb:UpdateItem")?.is_some())
    }

    async fn release_slot(&self, name: &str, tenant: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::vps_key(name)))
            .update_expression("DELETE tenants :t ADD tenantCount :minus")
            .condition_expression("contains(tenants, :tenant)")
            .expression_attribute_values(":t", AttributeValue::Ss(vec![tenant.to_string()]))
            .expression_attribute_values(":tenant", s(tenant))
            .expression_attribute_values(":minus", n(-1))
            .return_values(ReturnValue::None)
            .send()
            .await;
        Ok(conditional(result, "dynamodb:UpdateItem")?.is_some())
    }

    async fn report_usage(&self, name: &str, usage: &Usage) -> Result<bool, StoreError> {
        self.set_on_vps(name, "usage", json("encode usage", usage)?).await
    }

    async fn set_vps_status(&self, name: &str, status: VpsStatus) -> Result<bool, StoreError> {
        self.set_on_vps(name, "status", s(if status == VpsStatus::Draining { "draining" } else { "active" })).await
    }

    async fn remove_vps(&self, name: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::vps_key(name)))
            .send()
            .await
            .or_store("dynamodb:DeleteItem")?;
        Ok(())
    }
}
