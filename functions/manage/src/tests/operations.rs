//! What the console reads beyond the resources: the hourly chart (per organisation) and the
//! dead letters (operators), over in-memory ports.

use super::*;

#[tokio::test]
async fn the_hourly_chart_counts_each_pair_once_as_it_stands_in_its_own_organisation() {
    let w = world().await;
    let own = w.create_subscription(ORG_1, &["candidate.*"]).await;
    let (first, second, third) = (w.stored_event().await, w.stored_event().await, w.stored_event().await);
    w.failed_pair(&first, &own, 2, State::Failed).await;
    w.failed_pair(&second, &own, 1, State::Retrying).await;
    w.failed_pair(&third, &own, 1, State::Delivered).await;

    let (status, body) = w.call("GET", "/v1/stats/deliveries", ORG_1, None).await;
    assert_eq!(status, 200, "{body}");
    let hours = body["hours"].as_array().unwrap();
    assert_eq!(hours.len(), 24);
    let now = hours.last().unwrap();
    assert_eq!((now["delivered"].as_u64(), now["failed"].as_u64()), (Some(1), Some(2)), "{now}");
    let earlier: u64 = hours[..23].iter().map(|h| h["delivered"].as_u64().unwrap() + h["failed"].as_u64().unwrap()).sum();
    assert_eq!(earlier, 0);

    let (_, other) = w.call("GET", "/v1/stats/deliveries", ORG_2, None).await;
    assert!(other["hours"].as_array().unwrap().iter().all(|h| h["delivered"] == 0 && h["failed"] == 0), "{other}");
    assert_eq!(w.call("GET", "/v1/stats/deliveries", ADMIN, None).await.0, 403);
    assert_eq!(w.call("POST", "/v1/stats/deliveries", ORG_1, None).await.0, 405);
}

/// Records the pair's fourth attempt as its last: failed, dead-lettered, as deliver records it.
async fn exhaust(w: &World, e: &EventEnvelope, subscription_id: &str) {
    w.failed_pair(e, subscription_id, 3, State::Retrying).await;
    let now = Utc::now();
    let attempt =
        Attempt { number: 4, at: now, status_code: Some(503), duration_ms: 2, response_excerpt: None, error_kind: Some("http".into()) };
    let claim = AttemptClaim {
        event: e,
        subscription_id,
        organization_id: "org-1",
        attempt: 4,
        lease_until_ms: now.timestamp_millis() + 60_000,
        now_ms: now.timestamp_millis() + 10,
    };
    w.deliveries.claim(&claim).await.unwrap();
    let outcome = AttemptOutcome { attempt: &attempt, state: State::Failed, next_attempt: 4, follow_up: FollowUp::DeadLetter };
    w.deliveries.record(PairKey { event_id: e.event_id, subscription_id }, &outcome).await.unwrap();
}

#[tokio::test]
async fn an_operator_pages_through_exhausted_deliveries_and_a_replay_takes_one_off_the_list() {
    let w = world().await;
    let own = w.create_subscription(ORG_1, &["candidate.*"]).await;
    let (given_up, also_given_up, retrying) = (w.stored_event().await, w.stored_event().await, w.stored_event().await);
    exhaust(&w, &given_up, &own).await;
    exhaust(&w, &also_given_up, &own).await;
    w.failed_pair(&retrying, &own, 1, State::Retrying).await;

    assert_eq!(w.call("GET", "/v1/dead-letters", ORG_1, None).await.0, 403);
    let (status, first) = w.call("GET", "/v1/dead-letters?limit=1", ADMIN, None).await;
    assert_eq!(status, 200, "{first}");
    let cursor = first["nextCursor"].as_str().expect("a second page").to_string();
    let (_, second) = w.call("GET", &format!("/v1/dead-letters?limit=1&cursor={cursor}"), ADMIN, None).await;
    assert_eq!(second["nextCursor"], Value::Null, "{second}");
    let letters: Vec<&Value> = first["deadLetters"].as_array().unwrap().iter().chain(second["deadLetters"].as_array().unwrap()).collect();
    let mut ids: Vec<&str> = letters.iter().filter_map(|l| l["eventId"].as_str()).collect();
    ids.sort_unstable();
    let mut want = [given_up.event_id.to_string(), also_given_up.event_id.to_string()];
    want.sort_unstable();
    assert_eq!(ids, want, "each exhausted pair once over the two pages, the retrying one never");
    let letter = letters.iter().find(|l| l["eventId"] == given_up.event_id.to_string()).unwrap();
    assert_eq!((letter["subscriptionId"].as_str(), letter["organizationId"].as_str()), (Some(own.as_str()), Some("org-1")));
    assert_eq!(
        (letter["eventType"].as_str(), letter["attempts"].as_u64(), letter["lastStatusCode"].as_u64()),
        (Some("candidate.hired"), Some(4), Some(503))
    );
    assert_eq!(w.call("GET", "/v1/dead-letters?cursor=not-a-cursor", ADMIN, None).await.0, 400);

    let replay = format!("/v1/dead-letters/{}/{own}/replay", given_up.event_id);
    assert_eq!(w.call("POST", &format!("/v1/dead-letters/{}/{own}/replay", retrying.event_id), ADMIN, None).await.0, 404);
    assert_eq!(w.call("POST", &replay, ORG_1, None).await.0, 403);
    let (status, body) = w.call("POST", &replay, ADMIN, None).await;
    assert_eq!(status, 202, "{body}");
    let queued = w.retries.scheduled();
    assert!(queued.iter().any(|(m, _)| m.envelope.event_id == given_up.event_id && m.attempt == 5), "the replay is attempt 5: {queued:?}");
    let (_, after) = w.call("GET", "/v1/dead-letters", ADMIN, None).await;
    let left: Vec<&str> = after["deadLetters"].as_array().unwrap().iter().filter_map(|l| l["eventId"].as_str()).collect();
    assert_eq!(left, [also_given_up.event_id.to_string()], "{after}");
    assert_eq!(w.call("POST", &replay, ADMIN, None).await.0, 404, "no longer a dead letter");
}

#[tokio::test]
async fn a_dead_letter_whose_endpoint_is_gone_is_not_replayed_into_nothing_but_can_be_dismissed() {
    let w = world().await;
    let gone = w.create_subscription(ORG_1, &["candidate.*"]).await;
    let e = w.stored_event().await;
    exhaust(&w, &e, &gone).await;
    assert_eq!(w.call("DELETE", &format!("/v1/subscriptions/{gone}"), ORG_1, None).await.0, 204);

    let letter = format!("/v1/dead-letters/{}/{gone}", e.event_id);
    let (status, problem) = w.call("POST", &format!("{letter}/replay"), ADMIN, None).await;
    assert_eq!(status, 409, "{problem}");
    assert!(w.retries.scheduled().is_empty(), "nothing queued");
    assert_eq!(w.call("DELETE", &letter, ORG_1, None).await.0, 403);
    assert_eq!(w.call("DELETE", &letter, ADMIN, None).await.0, 204);
    let (_, after) = w.call("GET", "/v1/dead-letters", ADMIN, None).await;
    assert_eq!(after["deadLetters"], json!([]), "{after}");
    assert_eq!(w.call("DELETE", &letter, ADMIN, None).await.0, 404);
    assert_eq!(w.call("PUT", &letter, ADMIN, None).await.0, 405);
}
