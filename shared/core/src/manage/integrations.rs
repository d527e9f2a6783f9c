//! The platform's product-to-product integrations (RecruitIQ → Nexus, ...): subscriptions owned
//! by the platform (organisation `*`), delivered by the same machinery, switched on and pointed
//! at a product's endpoint by an operator.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{unavailable, Manage};
use crate::model::delivery::DeliveryActivity;
use crate::model::ids::integration_id;
use crate::model::problem::{Problem, ProblemKind};
use crate::model::subscription::{Changes, Integration, Subscription, SEED_INTEGRATIONS};
use crate::ports::modify_subscription;

/// One integration as an operator sees it.
#[derive(Debug, Clone)]
pub struct IntegrationState {
    pub source: &'static str,
    pub target: &'static str,
    /// The integration as stored; `None` until an operator first configures it.
    pub stored: Option<Subscription>,
    /// The event types it carries when first configured.
    pub seed_types: &'static [&'static str],
    /// Deliveries over the last day, and the newest event it was sent.
    pub activity: DeliveryActivity,
}

impl Manage {
    /// Every known integration, configured or not, with its activity since `now` minus a day.
    pub async fn integrations(&self, now: DateTime<Utc>) -> Result<Vec<IntegrationState>, Problem> {
        let stored = self.ports.subscriptions.list_subscriptions("*").await.map_err(unavailable)?;
        let since = now - chrono::Duration::days(1);
        let stored = &stored;
        let states = SEED_INTEGRATIONS.iter().map(|(source, target, types)| async move {
            let stored = stored.iter().find(|s| s.id == integration_id(source, target)).cloned();
            let activity = match &stored {
                Some(s) => self.ports.deliveries.activity(&s.id, since).await.map_err(unavailable)?,
                None => DeliveryActivity::default(),
            };
            Ok(IntegrationState { source, target, stored, seed_types: types, activity })
        });
        futures::future::join_all(states).await.into_iter().collect()
    }

    /// Switches an integration on or off, sets its endpoint and (`organizations`: `Some(None)`
    /// every organisation, `Some(Some(list))` only those) whom it serves; the first time,
    /// creates it with its seed event types and answers its signing secret (shown only then).
    pub async fn configure_integration(
        &self,
        source: &str,
        target: &str,
        enabled: Option<bool>,
        url: Option<String>,
        organizations: Option<Option<BTreeSet<String>>>,
        now: DateTime<Utc>,
    ) -> Result<(Subscription, Option<String>), Problem> {
        let Some((_, _, types)) = SEED_INTEGRATIONS.iter().find(|(s, t, _)| *s == source && *t == target) else {
            return Err(Problem::new(ProblemKind::NotFound, format!("there is no {source} -> {target} integration")));
        };
        let changes = Changes::parse(&json!({"url": url, "enabled": enabled}))?;
        let id = integration_id(source, target);
        let updated = modify_subscription(self.ports.subscriptions.as_ref(), &id, |s| {
            changes.apply_to(s, now);
            if let (Some(i), Some(orgs)) = (s.integration.as_mut(), organizations.as_ref()) {
                i.organizations = orgs.clone();
            }
            true
        })
        .await
        .map_err(unavailable)?;
        let (sub, secret) = match updated {
            Some(s) => (s, None),
            None if changes.url.is_none() => {
                // State, not syntax: the same body is fine once the integration exists.
                return Err(Problem::new(
                    ProblemKind::Conflict,
                    format!("the {source} -> {target} integration is not configured yet: give the url of {target}'s endpoint"),
                ));
            }
            None => {
                let create = Changes { event_types: Some(types.iter().map(|t| t.to_string()).collect()), ..changes };
                let (mut s, secret) = create.create("*", id, now, &self.config.secrets)?;
                s.integration = Some(Integration {
                    source: source.to_string(),
                    target: target.to_string(),
                    organizations: organizations.clone().flatten(),
                });
                if !self.ports.subscriptions.put_subscription(&s, None).await.map_err(unavailable)? {
                    return Err(Problem::new(ProblemKind::Conflict, "the integration was created meanwhile; retry"));
                }
                (s, Some(secret))
            }
        };
        tracing::info!(source, target, enabled = sub.enabled, "integration updated");
        Ok((sub, secret))
    }
}
