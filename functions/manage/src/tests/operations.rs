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

#[tokio::test]
async fn an_operator_lists_exhausted_deliveries_and_a_replay_takes_one_off_the_list() {
    let w = world().await;
    let own = w.create_subscription(ORG_1, &["candidate.*"]).await;
    let (given_up, retrying) = (w.stored_event().await, w.stored_event().await);
    // Exhausted: the last attempt is recorded with its dead letter, as deliver records it.
    w.failed_pair(&given_up, &own, 3, State::Retrying).await;
    let attempt = Attempt {
        number: 4,
        at: Utc::now(),
        status_code: Some(503),
        duration_ms: 2,
        response_excerpt: None,
        error_kind: Some("http".into()),
    };
    let pair = PairKey { event_id: given_up.event_id, subscription_id: &own };
    let claim = AttemptClaim {
        event: &given_up,
        subscription_id: &own,
        organization_id: "org-1",
        attempt: 4,
        lease_until_ms: Utc::now().timestamp_millis() + 60_000,
        now_ms: Utc::now().timestamp_millis() + 10,
    };
    w.deliveries.claim(&claim).await.unwrap();
    let outcome = AttemptOutcome { attempt: &attempt, state: State::Failed, next_attempt: 4, follow_up: FollowUp::DeadLetter };
    w.deliveries.record(pair, &outcome).await.unwrap();
    w.failed_pair(&retrying, &own, 1, State::Retrying).await;

    assert_eq!(w.call("GET", "/v1/dead-letters", ORG_1, None).await.0, 403);
    let (status, body) = w.call("GET", "/v1/dead-letters", ADMIN, None).await;
    assert_eq!(status, 200, "{body}");
    let letters = body["deadLetters"].as_array().unwrap();
    assert_eq!(letters.len(), 1, "only the exhausted pair: {body}");
    assert_eq!(letters[0]["eventId"], given_up.event_id.to_string());
    assert_eq!(letters[0]["subscriptionId"], own.as_str());
    assert_eq!(letters[0]["organizationId"], "org-1");
    assert_eq!(letters[0]["eventType"], "candidate.hired");
    assert_eq!((letters[0]["attempts"].as_u64(), letters[0]["lastStatusCode"].as_u64()), (Some(4), Some(503)));
    assert_eq!(w.call("GET", "/v1/dead-letters?cursor=not-a-cursor", ADMIN, None).await.0, 400);

    let replay = format!("/v1/dead-letters/{}/{own}/replay", given_up.event_id);
    assert_eq!(w.call("POST", &format!("/v1/dead-letters/{}/{own}/replay", retrying.event_id), ADMIN, None).await.0, 404);
    assert_eq!(w.call("POST", &replay, ORG_1, None).await.0, 403);
    let (status, body) = w.call("POST", &replay, ADMIN, None).await;
    assert_eq!(status, 202, "{body}");
    let queued = w.retries.scheduled();
    assert!(queued.iter().any(|(m, _)| m.envelope.event_id == given_up.event_id && m.attempt == 5), "the replay is attempt 5: {queued:?}");
    let (_, after) = w.call("GET", "/v1/dead-letters", ADMIN, None).await;
    assert_eq!(after["deadLetters"].as_array().unwrap().len(), 0, "{after}");
    assert_eq!(w.call("POST", &replay, ADMIN, None).await.0, 404, "no longer a dead letter");
}
