//! The store's contract, on SQLite always and on PostgreSQL when `TEST_POSTGRES_URL` is set.

use trustmail::{
    domain::{
        Activity, ActivityType, DomainId, DomainName, EmailDomain, Geography, PublicSuffixes,
        ResourceType, now,
    },
    store::CreateDomainError,
};

use crate::support::{TestApp, backends};

#[tokio::test]
async fn domains_records_and_cascades_round_trip() {
    for db in backends("domains_records_and_cascades_round_trip").await {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        let service = &app.service;
        let store = app.store();
        let admin = app.admin.client_id;
        let actor = trustmail::service::Actor {
            client_id: admin,
            environment_id: app.admin.environment_id,
            role: trustmail::domain::Role::OrganizationAdmin,
        };
        let env = service
            .create_environment(&actor, "Store", Geography::Eu)
            .await
            .unwrap();
        assert_eq!(
            store.get_environment(env.id).await.unwrap().as_ref(),
            Some(&env)
        );

        let name = DomainName::parse("x.shopco.test", &PublicSuffixes::new(["test"])).unwrap();
        let domain = EmailDomain {
            id: DomainId::new(),
            environment_id: env.id,
            name: name.clone(),
            mail_from: None,
            created_at: now(),
            updated_at: now(),
        };
        let records = trustmail::domain::build_domain_records(
            &name,
            &env.email_token,
            env.region,
            &service.settings().regions,
            &service.settings().records,
        );
        let activity = Activity::new(
            env.id,
            ActivityType::EmailDomainCreated,
            admin,
            ResourceType::EmailDomain,
            domain.id,
            name.as_str(),
        );
        store
            .create_domain(&domain, &records, now(), 2, &activity)
            .await
            .unwrap();
        assert_eq!(
            store.get_domain(env.id, domain.id).await.unwrap().as_ref(),
            Some(&domain),
            "{db:?}"
        );

        let mut stored: Vec<_> = store
            .checked_records(domain.id)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.record)
            .collect();
        let mut expected = records.clone();
        let key =
            |r: &trustmail::domain::DnsRecord| (r.kind.as_str(), r.region.clone(), r.position);
        stored.sort_by_key(key);
        expected.sort_by_key(key);
        assert_eq!(stored, expected, "{db:?}");

        // Same name again: duplicate, whatever the id.
        let twin = EmailDomain {
            id: DomainId::new(),
            ..domain.clone()
        };
        let err = store
            .create_domain(&twin, &[], now(), 2, &activity_for(&twin, admin))
            .await
            .unwrap_err();
        assert!(
            matches!(err, CreateDomainError::Duplicate),
            "{db:?}: {err:?}"
        );
        // Unknown environment.
        let stray = EmailDomain {
            id: DomainId::new(),
            environment_id: trustmail::domain::EnvironmentId::new(),
            ..domain.clone()
        };
        let err = store
            .create_domain(&stray, &[], now(), 2, &activity_for(&stray, admin))
            .await
            .unwrap_err();
        assert!(
            matches!(err, CreateDomainError::EnvironmentNotFound),
            "{db:?}: {err:?}"
        );

        // Deleting the environment removes the domain and its records.
        let deleted = store
            .delete_environment(
                env.id,
                &Activity::new(
                    actor.environment_id,
                    ActivityType::EnvironmentDeleted,
                    admin,
                    ResourceType::Environment,
                    env.id,
                    "Store",
                ),
            )
            .await
            .unwrap();
        assert!(deleted);
        assert!(store.get_domain(env.id, domain.id).await.unwrap().is_none());
        assert!(
            store.checked_records(domain.id).await.unwrap().is_empty(),
            "{db:?}"
        );
    }
}

fn activity_for(domain: &EmailDomain, actor: trustmail::domain::ClientId) -> Activity {
    Activity::new(
        domain.environment_id,
        ActivityType::EmailDomainCreated,
        actor,
        ResourceType::EmailDomain,
        domain.id,
        domain.name.as_str(),
    )
}

#[tokio::test]
async fn one_process_at_a_time_holds_a_domains_check_lease() {
    for db in backends("one_process_at_a_time_holds_a_domains_check_lease").await {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        let env = app.environment("Lease").await;
        let domain: DomainId = app.domain(&env, "l.shopco.test").await.parse().unwrap();
        let store = app.store();
        let t0 = now();
        let until = t0 + time::Duration::minutes(1);
        let lease = |owner: &'static str, at, until| async move {
            store
                .lease_domain_checks(&[domain], owner, at, until)
                .await
                .unwrap()
        };
        let release = |owner: &'static str| async move {
            store
                .save_checks(&[(domain, vec![])], &[], owner)
                .await
                .unwrap()
        };
        assert_eq!(lease("replica-a", t0, until).await, [domain], "{db:?}");
        assert!(lease("replica-b", t0, until).await.is_empty(), "{db:?}");
        // Only the holder releases it; an expired lease can be taken over.
        release("replica-b").await;
        assert!(lease("replica-b", t0, until).await.is_empty());
        let later = until + time::Duration::seconds(1);
        assert_eq!(
            lease("replica-b", later, later + time::Duration::minutes(1)).await,
            [domain]
        );
        release("replica-b").await;
        assert_eq!(lease("replica-a", later, later).await, [domain]);
    }
}
