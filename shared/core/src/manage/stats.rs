//! Deliveries per hour over the last day, succeeded against failed: the console's chart of how
//! an organisation's endpoints are doing, read from each subscription's pairs.

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Serialize;

use super::{unavailable, Manage};
use crate::model::delivery::State;
use crate::model::problem::Problem;

/// How many hours the chart covers (the current, partial hour included).
pub const HOURS: i64 = 24;

/// One hour of the chart: the (event, endpoint) pairs whose latest outcome fell in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HourCount {
    /// The hour's start (UTC).
    pub hour: DateTime<Utc>,
    /// Delivered: the endpoint answered 2xx.
    pub delivered: u32,
    /// Retrying or given up.
    pub failed: u32,
}

impl Manage {
    /// The organisation's last [`HOURS`] hours, oldest first, one entry per hour (zeros
    /// included). A pair counts once, in the hour its state last changed, as it stands now: a
    /// delivery that failed at 10:05 and succeeded on retry at 10:10 is one success at 10:00.
    pub async fn delivery_stats(&self, organization_id: &str, now: DateTime<Utc>) -> Result<Vec<HourCount>, Problem> {
        let current = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
        let since = current - Duration::hours(HOURS - 1);
        let mut hours: Vec<HourCount> =
            (0..HOURS).map(|i| HourCount { hour: since + Duration::hours(i), delivered: 0, failed: 0 }).collect();
        let subscriptions = self.ports.subscriptions.list_subscriptions(organization_id).await.map_err(unavailable)?;
        for sub in &subscriptions {
            for (at, state) in self.ports.deliveries.outcomes_since(&sub.id, since).await.map_err(unavailable)? {
                let Some(slot) = hours.get_mut(((at - since).num_hours()).clamp(0, HOURS - 1) as usize) else { continue };
                match state {
                    State::Delivered => slot.delivered += 1,
                    State::Retrying | State::Failed => slot.failed += 1,
                    State::Sending => {}
                }
            }
        }
        Ok(hours)
    }
}
