//! The webhook delivery queue in the store, on both backends: two deliverers never take the
//! same delivery, only the lease holder records an outcome, retries follow the schedule, no
//! subscription or environment holds more than its places in flight, and a failing endpoint's
//! deliveries wait.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use trustmail::{
    domain::{
        Activity, ActivityType, Client, ClientId, DeliveryState, EnvironmentId, ResourceType, Role,
        now,
    },
    store::{DeliveryOutcome, IN_FLIGHT_PER_ENVIRONMENT, IN_FLIGHT_PER_SUBSCRIPTION, Store},
};

use crate::subscriptions::created;
use crate::support::{Db, TestApp, backends};

/// A client and its CLIENT_CREATED activity, written straight to `store` (as a write of the
/// API would, with the app stopped so that no deliverer runs): the activity.
pub async fn client_created(store: &Store, env: EnvironmentId) -> Activity {
    let client = Client {
        id: ClientId::new(),
        environment_id: env,
        name: "Worker".into(),
        role: Role::ReadOnly,
        secret_hash: "not a hash: this client never asks for a token".into(),
        created_at: now(),
    };
    let activity = Activity::new(
        env,
        ActivityType::ClientCreated,
        None,
        ResourceType::Client,
        client.id,
        &client.name,
    );
    store.insert_client(&client, &activity).await.unwrap();
    activity
}

const LEASE: Duration = Duration::from_secs(60);

/// A stopped app whose environment has an enabled subscription to CLIENT_CREATED and `count`
/// activities queued for it: (app, store, the subscription's id).
async fn queued(db: Db, count: usize) -> (TestApp, Store, String) {
    let mut app = TestApp::spawn_on(db, |_| {}).await;
    let env = app.environment("Shop").await;
    // Nothing answers there: no delivery of this test is ever sent.
    let (id, _) = created(&app, &env, "http://127.0.0.1:9/hook", &["CLIENT_CREATED"]).await;
    app.stop().await;
    let store = app.open_store().await;
    for _ in 0..count {
        client_created(&store, env.parse().unwrap()).await;
    }
    (app, store, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliverers_never_claim_the_same_delivery() {
    for db in backends("concurrent_deliverers_never_claim_the_same_delivery").await {
        let (_app, store, _) = queued(db.clone(), 30).await;
        let at = now() + Duration::from_millis(10);
        let deliverers: Vec<_> = (0..4)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move {
                    let owner = format!("deliverer-{n}");
                    let mut mine = Vec::new();
                    // Each records what it claimed, so that the subscription's places in
                    // flight free up; another deliverer's claim may hold them a moment.
                    let mut idle = 0;
                    while idle < 20 {
                        let batch = store
                            .claim_due_deliveries(&owner, at, LEASE, 3)
                            .await
                            .unwrap();
                        if batch.is_empty() {
                            idle += 1;
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            continue;
                        }
                        idle = 0;
                        for d in batch {
                            let delivered = DeliveryOutcome::Delivered { status: 204 };
                            store
                                .record_delivery(
                                    d.subscription_id,
                                    d.activity.id,
                                    &owner,
                                    &delivered,
                                    at,
                                    LEASE,
                                )
                                .await
                                .unwrap();
                            mine.push(d.activity.id);
                        }
                    }
                    mine
                })
            })
            .collect();
        let mut claimed = HashSet::new();
        for deliverer in deliverers {
            for id in deliverer.await.unwrap() {
                assert!(claimed.insert(id), "{id} claimed twice on {db:?}");
            }
        }
        assert_eq!(claimed.len(), 30, "{db:?}");
        let again = store
            .claim_due_deliveries("late", at, LEASE, 100)
            .await
            .unwrap();
        assert!(again.is_empty(), "{db:?}");
    }
}

#[tokio::test]
async fn only_the_lease_holder_records_and_a_lapsed_lease_passes_on() {
    for db in backends("only_the_lease_holder_records_and_a_lapsed_lease_passes_on").await {
        let (_app, store, _) = queued(db.clone(), 1).await;
        let t0 = now() + Duration::from_millis(10);
        let first = store
            .claim_due_deliveries("a", t0, LEASE, 10)
            .await
            .unwrap();
        assert_eq!(first.len(), 1, "{db:?}");
        let d = &first[0];
        let delivered = DeliveryOutcome::Delivered { status: 204 };
        let by_b = store
            .record_delivery(d.subscription_id, d.activity.id, "b", &delivered, t0, LEASE)
            .await
            .unwrap();
        assert_eq!(by_b, None, "{db:?}");
        // Once a's lease has run out, b takes the delivery and its outcome counts; a's does not.
        let later = t0 + LEASE + Duration::from_secs(1);
        let second = store
            .claim_due_deliveries("b", later, LEASE, 10)
            .await
            .unwrap();
        assert_eq!(second.len(), 1, "{db:?}");
        let by_a = store
            .record_delivery(
                d.subscription_id,
                d.activity.id,
                "a",
                &delivered,
                later,
                LEASE,
            )
            .await
            .unwrap();
        assert_eq!(by_a, None, "{db:?}");
        let by_b = store
            .record_delivery(
                d.subscription_id,
                d.activity.id,
                "b",
                &delivered,
                later,
                LEASE,
            )
            .await
            .unwrap();
        assert_eq!(by_b, Some((DeliveryState::Delivered, 1)), "{db:?}");
    }
}

#[tokio::test]
async fn failed_attempts_follow_the_schedule_then_fail() {
    for db in backends("failed_attempts_follow_the_schedule_then_fail").await {
        let (_app, store, _) = queued(db.clone(), 1).await;
        let first_retry = Duration::from_secs(5);
        let mut at = now() + Duration::from_millis(10);
        let mut waits = Vec::new();
        loop {
            let claimed = store
                .claim_due_deliveries("a", at, LEASE, 10)
                .await
                .unwrap();
            assert_eq!(claimed.len(), 1, "{db:?}");
            let d = &claimed[0];
            let failed = DeliveryOutcome::Failed {
                status: Some(500),
                error: "the endpoint answered 500".into(),
            };
            let recorded = store
                .record_delivery(
                    d.subscription_id,
                    d.activity.id,
                    "a",
                    &failed,
                    at,
                    first_retry,
                )
                .await
                .unwrap()
                .unwrap();
            let (deliveries, _) = store
                .list_deliveries(d.subscription_id, 1, 0)
                .await
                .unwrap();
            let delivery = &deliveries[0];
            assert_eq!(delivery.last_status, Some(500));
            match recorded {
                (DeliveryState::Pending, _) => {
                    let next = delivery.next_attempt_at.unwrap();
                    waits.push((next - at).whole_seconds());
                    // Not due a moment before its time.
                    let early = next - Duration::from_millis(1);
                    assert!(
                        store
                            .claim_due_deliveries("a", early, LEASE, 10)
                            .await
                            .unwrap()
                            .is_empty()
                    );
                    at = next;
                }
                (state, attempts) => {
                    assert_eq!(state, DeliveryState::Failed, "{db:?}");
                    assert_eq!(attempts, 9, "{db:?}");
                    break;
                }
            }
        }
        assert_eq!(
            waits,
            [5, 30, 300, 1800, 7200, 18000, 36000, 36000],
            "{db:?}"
        );
    }
}

#[tokio::test]
async fn deliveries_that_waited_too_long_fail_unsent_unless_leased() {
    for db in backends("deliveries_that_waited_too_long_fail_unsent_unless_leased").await {
        let (_app, store, id) = queued(db.clone(), 3).await;
        let at = now() + Duration::from_millis(10);
        let leased = store
            .claim_due_deliveries("deliverer", at, LEASE, 1)
            .await
            .unwrap();
        assert_eq!(leased.len(), 1, "{db:?}");
        // Queued before a cut-off just ahead: all three count as too old.
        let expired = store
            .expire_deliveries(at + Duration::from_secs(1), at, "waited too long")
            .await
            .unwrap();
        assert_eq!(
            expired, 2,
            "{db:?}: the leased one is its deliverer's to finish"
        );
        let (deliveries, _) = store
            .list_deliveries(id.parse().unwrap(), 10, 0)
            .await
            .unwrap();
        let failed: Vec<_> = deliveries
            .iter()
            .filter(|d| d.state == DeliveryState::Failed)
            .collect();
        assert_eq!(failed.len(), 2, "{db:?}");
        assert!(
            failed
                .iter()
                .all(|d| d.last_error.as_deref() == Some("waited too long"))
        );
        assert!(
            deliveries.iter().any(
                |d| d.state == DeliveryState::Pending && d.activity_id == leased[0].activity.id
            ),
            "{db:?}"
        );
    }
}

#[tokio::test]
async fn claims_hold_a_few_places_per_subscription_and_environment_across_deliverers() {
    for db in
        backends("claims_hold_a_few_places_per_subscription_and_environment_across_deliverers")
            .await
    {
        let mut app = TestApp::spawn_on(db.clone(), |_| {}).await;
        let busy = app.environment("Busy").await;
        let quiet = app.environment("Quiet").await;
        for _ in 0..3 {
            created(&app, &busy, "http://127.0.0.1:9/hook", &["CLIENT_CREATED"]).await;
        }
        created(&app, &quiet, "http://127.0.0.1:9/hook", &["CLIENT_CREATED"]).await;
        app.stop().await;
        let store = app.open_store().await;
        for _ in 0..10 {
            client_created(&store, busy.parse().unwrap()).await;
        }
        client_created(&store, quiet.parse().unwrap()).await;
        let at = now() + Duration::from_millis(10);

        // 31 due: the busy environment gets its 4 places, at most 2 a subscription, and the
        // quiet one its delivery in the same claim.
        let first = store
            .claim_due_deliveries("a", at, LEASE, 100)
            .await
            .unwrap();
        let mut per_environment: HashMap<EnvironmentId, u32> = HashMap::new();
        let mut per_subscription = HashMap::new();
        for d in &first {
            *per_environment
                .entry(d.activity.environment_id)
                .or_default() += 1;
            *per_subscription.entry(d.subscription_id).or_insert(0) += 1;
        }
        assert_eq!(
            per_environment[&busy.parse().unwrap()],
            IN_FLIGHT_PER_ENVIRONMENT,
            "{db:?}"
        );
        assert_eq!(per_environment[&quiet.parse().unwrap()], 1, "{db:?}");
        assert!(
            per_subscription
                .values()
                .all(|n| *n <= IN_FLIGHT_PER_SUBSCRIPTION),
            "{db:?}: {per_subscription:?}"
        );
        // Another replica sees those leases: nothing more of the busy environment.
        let second = store
            .claim_due_deliveries("b", at, LEASE, 100)
            .await
            .unwrap();
        assert!(second.is_empty(), "{db:?}: {} claimed", second.len());
        // One recorded frees one place.
        let d = &first[0];
        let delivered = DeliveryOutcome::Delivered { status: 204 };
        store
            .record_delivery(d.subscription_id, d.activity.id, "a", &delivered, at, LEASE)
            .await
            .unwrap();
        let third = store
            .claim_due_deliveries("b", at, LEASE, 100)
            .await
            .unwrap();
        assert_eq!(third.len(), 1, "{db:?}");
    }
}

#[tokio::test]
async fn a_failing_endpoint_pauses_its_deliveries_until_it_answers() {
    for db in backends("a_failing_endpoint_pauses_its_deliveries_until_it_answers").await {
        let (_app, store, _) = queued(db.clone(), 6).await;
        let first_retry = Duration::from_secs(5);
        let at = now() + Duration::from_millis(10);
        let claimed = store
            .claim_due_deliveries("a", at, LEASE, 10)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 2, "{db:?}");
        let failed = DeliveryOutcome::Failed {
            status: None,
            error: "no answer".into(),
        };
        for d in &claimed {
            store
                .record_delivery(
                    d.subscription_id,
                    d.activity.id,
                    "a",
                    &failed,
                    at,
                    first_retry,
                )
                .await
                .unwrap()
                .unwrap();
        }
        // Two failures in a row: the other four, though due, wait 10 s.
        let pause = Duration::from_secs(10);
        for early in [at, at + pause - Duration::from_millis(1)] {
            let none = store
                .claim_due_deliveries("a", early, LEASE, 10)
                .await
                .unwrap();
            assert!(
                none.is_empty(),
                "{db:?}: {} claimed while paused",
                none.len()
            );
        }
        let after = at + pause;
        let resumed = store
            .claim_due_deliveries("a", after, LEASE, 10)
            .await
            .unwrap();
        assert_eq!(resumed.len(), 2, "{db:?}");
        // An answer ends the pause; another failure would start it again from 5 s.
        let delivered = DeliveryOutcome::Delivered { status: 204 };
        let d = &resumed[0];
        store
            .record_delivery(
                d.subscription_id,
                d.activity.id,
                "a",
                &delivered,
                after,
                first_retry,
            )
            .await
            .unwrap()
            .unwrap();
        let next = store
            .claim_due_deliveries("a", after, LEASE, 10)
            .await
            .unwrap();
        assert_eq!(next.len(), 1, "{db:?}");
    }
}
