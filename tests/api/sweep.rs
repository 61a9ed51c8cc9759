//! The background check sweep as a pipeline: a slow tenant occupies one slot for at most one
//! deadline, and never holds up the others.

use std::time::Duration;

use hickory_proto::rr::RecordType;
use trustmail::domain::{CheckedRecord, DomainId, ReasonCode, RecordKind, RecordStatus};

use crate::support::{TestApp, TestDns};

const DEADLINE_MS: u64 = 3000;

async fn records(app: &TestApp, id: DomainId) -> Vec<CheckedRecord> {
    app.store().checked_records(id).await.unwrap()
}

#[tokio::test]
async fn a_tenant_with_a_slow_hostile_spf_tree_does_not_hold_up_the_others() {
    let dns = TestDns::start().await;
    let app = TestApp::with_dns(&dns, |c| {
        c.dns.initial_recheck_interval_s = 1;
        // Only the background sweep checks: status reads never do.
        c.dns.min_recheck_interval_s = 3600;
        // Slow answers are answers, not timeouts: only the deadline can stop the hostile check.
        c.dns.timeout_ms = 10_000;
        c.dns.check_deadline_ms = DEADLINE_MS;
    })
    .await;
    let hostile_env = app.environment("Hostile").await;
    let hostile_id = app.domain(&hostile_env, "evil.shopco.test").await;
    app.publish_domain(&dns, &hostile_env, &hostile_id).await;
    let hostile: DomainId = hostile_id.parse().unwrap();
    // Ten includes, each of ten more, every answer two seconds late: walked naively, minutes.
    let level = |prefix: &str| -> String {
        let includes: Vec<String> = (0..10)
            .map(|i| format!("include:{prefix}{i}.hostile.test"))
            .collect();
        format!("v=spf1 {} -all", includes.join(" "))
    };
    dns.remove("evil.shopco.test", RecordType::TXT);
    dns.add_txt(
        "evil.shopco.test",
        &[&format!(
            "v=spf1 include:spf.trustmail.example {} ~all",
            (1..10)
                .map(|i| format!("include:h{i}.hostile.test"))
                .collect::<Vec<_>>()
                .join(" ")
        )],
    );
    for i in 0..10 {
        dns.add_txt(&format!("h{i}.hostile.test"), &[&level(&format!("h{i}x"))]);
    }
    dns.slow("evil.shopco.test", Duration::from_secs(2));
    dns.slow("hostile.test", Duration::from_secs(2));

    let env = app.environment("Shop").await;
    let mut others = Vec::new();
    for i in 0..4 {
        let name = format!("d{i}.shopco.test");
        let id = app.domain(&env, &name).await;
        app.publish_domain(&dns, &env, &id).await;
        others.push(id.parse().unwrap());
    }

    // Every other domain turns ACTIVE...
    let mut all_active = false;
    for _ in 0..300 {
        let mut active = true;
        for id in &others {
            active &= records(&app, *id)
                .await
                .iter()
                .all(|r| r.record.status == RecordStatus::Active);
        }
        if active {
            all_active = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(all_active, "the other domains never turned ACTIVE");
    let others_done = {
        let mut latest = None;
        for id in &others {
            for r in records(&app, *id).await {
                latest = latest.max(r.last_checked_at);
            }
        }
        latest.unwrap()
    };
    // ...while the hostile domain's SPF check ends at its deadline, as a DNS error, and is
    // saved after every other domain's.
    let mut spf = None;
    for _ in 0..300 {
        let found = records(&app, hostile)
            .await
            .into_iter()
            .find(|r| r.record.kind == RecordKind::Spf && r.last_checked_at.is_some());
        if found.is_some() {
            spf = found;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let spf = spf.expect("the hostile domain's SPF record was never checked");
    assert_eq!(spf.reason, ReasonCode::DnsError, "{}", spf.message);
    assert!(
        spf.message
            .contains(&format!("did not finish within {DEADLINE_MS} ms")),
        "{}",
        spf.message
    );
    assert!(
        spf.last_checked_at.unwrap() > others_done,
        "the others waited for the hostile check: theirs saved at {others_done}, its at {:?}",
        spf.last_checked_at
    );
    // A DNS error is re-checked after the initial interval, then later and later.
    assert_eq!(spf.error_streak, 1);
    assert_eq!(
        spf.next_check_at - spf.last_checked_at.unwrap(),
        time::Duration::seconds(1)
    );
    // The hostile domain's fast-enough records were still saved.
    let ownership = records(&app, hostile)
        .await
        .into_iter()
        .find(|r| r.record.kind == RecordKind::Ownership)
        .unwrap();
    assert_eq!(
        ownership.record.status,
        RecordStatus::Active,
        "{}",
        ownership.message
    );
}
