//! The integrations step's adapter over the subscription store: a platform integration
//! (organisation `*`) that serves a list of organisations gets the new tenant added to its list.
//! One that serves every organisation already serves it; one an operator has not configured
//! yet (it has no endpoint) cannot, and the step's note says so.

use std::sync::Arc;

use async_trait::async_trait;

use crate::model::ids::integration_id;
use crate::ports::provision::TenantIntegrations;
use crate::ports::{modify_subscription, StoreError, SubscriptionStore};

pub struct SubscriptionIntegrations {
    subscriptions: Arc<dyn SubscriptionStore>,
}

impl SubscriptionIntegrations {
    pub fn new(subscriptions: Arc<dyn SubscriptionStore>) -> Self {
        Self { subscriptions }
    }
}

#[async_trait]
impl TenantIntegrations for SubscriptionIntegrations {
    async fn switch_on(&self, organization_id: &str, pairs: &[(&str, &str)]) -> Result<Vec<String>, StoreError> {
        let mut notes = Vec::with_capacity(pairs.len());
        for (source, target) in pairs {
            let id = integration_id(source, target);
            let mut serves_all = false;
            let added = modify_subscription(self.subscriptions.as_ref(), &id, |s| match s.integration.as_mut() {
                Some(i) => match i.organizations.as_mut() {
                    Some(list) => list.insert(organization_id.to_string()),
                    None => {
                        serves_all = true;
                        false
                    }
                },
                None => false,
            })
            .await?;
            let configured = added.is_some() || serves_all || self.subscriptions.get_subscription(&id).await?.is_some();
            notes.push(match (added.is_some(), serves_all, configured) {
                (true, _, _) => format!("{source} → {target}: switched on"),
                (false, true, _) => format!("{source} → {target}: serves every organisation already"),
                (false, false, true) => format!("{source} → {target}: switched on already"),
                (false, false, false) => {
                    format!("{source} → {target}: not configured by an operator yet (PUT /v1/integrations/{source}/{target})")
                }
            });
        }
        Ok(notes)
    }
}

#[cfg(test)]
mod integrations_tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use chrono::Utc;

    use super::SubscriptionIntegrations;
    use crate::memory::MemorySubscriptions;
    use crate::model::ids::integration_id;
    use crate::model::subscription::{Integration, Subscription};
    use crate::ports::provision::TenantIntegrations;
    use crate::ports::SubscriptionStore;

    fn integration(source: &str, target: &str, organizations: Option<BTreeSet<String>>) -> Subscription {
        let now = Utc::now();
        Subscription {
            id: integration_id(source, target),
            organization_id: "*".into(),
            url: "https://nexus.example/hooks".into(),
            event_types: vec!["candidate.hired".into()],
            description: None,
            enabled: true,
            headers: Default::default(),
            rate_limit: None,
            secrets: vec![],
            disabled_reason: None,
            integration: Some(Integration { source: source.into(), target: target.into(), organizations }),
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    #[tokio::test]
    async fn a_listed_integration_gains_the_tenant_once_and_the_others_say_why_not() {
        let store = Arc::new(MemorySubscriptions::default());
        store.put_subscription(&integration("recruitiq", "nexus", Some(BTreeSet::new())), None).await.unwrap();
        store.put_subscription(&integration("nexus", "paylinq", None), None).await.unwrap();
        let adapter = SubscriptionIntegrations::new(store.clone());
        let pairs = [("recruitiq", "nexus"), ("nexus", "paylinq"), ("recruitiq", "paylinq")];
        let notes = adapter.switch_on("org-1", &pairs).await.unwrap();
        assert_eq!(
            notes,
            [
                "recruitiq → nexus: switched on",
                "nexus → paylinq: serves every organisation already",
                "recruitiq → paylinq: not configured by an operator yet (PUT /v1/integrations/recruitiq/paylinq)"
            ]
        );
        let again = adapter.switch_on("org-1", &pairs[..1]).await.unwrap();
        assert_eq!(again, ["recruitiq → nexus: switched on already"]);
        let stored = store.get_subscription(&integration_id("recruitiq", "nexus")).await.unwrap().unwrap();
        let listed = stored.integration.as_ref().unwrap();
        assert_eq!(listed.organizations.as_ref().unwrap().iter().collect::<Vec<_>>(), ["org-1"]);
        assert!(listed.serves("org-1") && !listed.serves("org-2"));
        assert!(stored.wants("candidate.hired", "recruitiq", "org-1"));
        assert!(!stored.wants("candidate.hired", "recruitiq", "org-2"), "an organisation not listed is not served");
    }
}
