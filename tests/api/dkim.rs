//! DKIM keys behind the CNAMEs: roles, rotation, signatures that verify (with mail-auth, through
//! the in-process DNS), keys sealed at rest and kept across restarts.

use std::{sync::Arc, time::Duration};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::{Engine, engine::general_purpose::STANDARD};
use mail_auth::DkimResult;
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::Value;
use trustmail::{
    domain::{DkimAlgorithm, DkimRole},
    secrets::{Binding, MasterKey},
};

use crate::support::{TestApp, TestDns, assert_p1_error};

const DOMAIN: &str = "a.shopco.test";

struct Fixture {
    app: TestApp,
    dns: Arc<TestDns>,
    env: String,
    id: String,
}

impl Fixture {
    async fn new(algorithm: DkimAlgorithm) -> Self {
        let dns = TestDns::start().await;
        let app = TestApp::with_dns(&dns, |c| c.dkim.algorithm = algorithm).await;
        let env = app.environment("Shop").await;
        let id = app.domain(&env, DOMAIN).await;
        app.publish_domain(&dns, &env, &id).await;
        Self { app, dns, env, id }
    }

    fn path(&self, leaf: &str) -> String {
        format!(
            "/v1/environments/{}/emailDomains/{}/{leaf}",
            self.env, self.id
        )
    }

    async fn rotate(&self, query: &str) -> reqwest::Response {
        self.app
            .post(
                &format!("{}{query}", self.path("dkim/rotate")),
                &self.app.admin_token,
                Value::Null,
            )
            .await
    }

    async fn keys(&self) -> Vec<trustmail::domain::DkimKey> {
        let domain = self.app.email_domain(&self.env, &self.id).await;
        self.app.service.dkim_keys(&domain).await.unwrap()
    }

    /// A message from the domain, signed by the region's signing key.
    async fn signed_message(&self) -> Vec<u8> {
        let domain = self.app.email_domain(&self.env, &self.id).await;
        let signer = self
            .app
            .service
            .dkim_signer(&domain, "us-east-1")
            .await
            .unwrap();
        let message = format!(
            "From: Shop <noreply@{DOMAIN}>\r\nTo: ann@example.test\r\nSubject: Hello\r\n\
             Date: Tue, 1 Dec 2026 10:00:00 +0000\r\nMessage-ID: <1@{DOMAIN}>\r\n\r\nHi Ann.\r\n"
        );
        let header = signer.sign(message.as_bytes()).unwrap();
        format!("{header}{message}").into_bytes()
    }

    /// What mail-auth (an independent verifier) says of `message`'s signatures, resolving the
    /// customer's CNAME and the key behind it through the test DNS.
    async fn verify(&self, message: &[u8]) -> Vec<DkimResult> {
        self.dns.verify_dkim(message).await
    }
}

fn roles(dkim: &Value) -> Vec<String> {
    dkim["regions"][0]["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["role"].as_str().unwrap().to_owned())
        .collect()
}

fn selector(token: &Value) -> String {
    token["key"]
        .as_str()
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_dkim_read_shows_which_selector_signs_and_since_when() {
    let f = Fixture::new(DkimAlgorithm::Ed25519).await;
    let dkim = f.app.get_json(&f.path("dkim")).await;
    assert_eq!(dkim["regions"][0]["status"], "ACTIVE", "{dkim}");
    assert_eq!(roles(&dkim), ["SIGNING", "PUBLISHED", "RETIRED"]);
    let first = &dkim["regions"][0]["tokens"][0];
    assert_eq!(dkim["regions"][0]["signingSelector"], selector(first));
    assert!(
        dkim["regions"][0]["signingSince"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
}

#[tokio::test]
async fn a_rotation_moves_the_roles_and_gives_only_the_retired_slot_a_fresh_key() {
    let f = Fixture::new(DkimAlgorithm::Ed25519).await;
    let before = f.keys().await;
    let response = f.rotate("").await;
    assert_eq!(response.status(), StatusCode::OK);
    let dkim: Value = response.json().await.unwrap();
    assert_eq!(roles(&dkim), ["RETIRED", "SIGNING", "PUBLISHED"]);
    assert_eq!(
        dkim["regions"][0]["signingSelector"],
        selector(&dkim["regions"][0]["tokens"][1])
    );
    let after = f.keys().await;
    assert_eq!(
        after[0].public_key, before[0].public_key,
        "the old signer stays published"
    );
    assert_eq!(
        after[1].public_key, before[1].public_key,
        "the waiting key signs"
    );
    assert_ne!(
        after[2].public_key, before[2].public_key,
        "the retired slot has a fresh key"
    );
    assert_eq!(
        after[2].selector, before[2].selector,
        "customers change nothing"
    );
}

#[tokio::test]
async fn a_rotation_is_recorded_as_dkim_key_rotated() {
    let f = Fixture::new(DkimAlgorithm::Ed25519).await;
    assert_eq!(f.rotate("?region=us-east-1").await.status(), StatusCode::OK);
    let list = f
        .app
        .get_json(&format!("/v1/environments/{}/activities", f.env))
        .await;
    let rotated: Vec<&Value> = list["_embedded"]["activities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"]["type"] == "DKIM_KEY_ROTATED")
        .collect();
    assert_eq!(rotated.len(), 1);
    assert_eq!(rotated[0]["details"]["region"], "us-east-1");
    assert_eq!(rotated[0]["resources"][0]["id"], f.id.as_str());
}

#[tokio::test]
async fn rotating_a_region_the_domain_lacks_is_400_invalid_value() {
    let f = Fixture::new(DkimAlgorithm::Ed25519).await;
    let response = f.rotate("?region=mars-1").await;
    assert_p1_error(
        response,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("INVALID_VALUE", "region")),
    )
    .await;
    assert_eq!(f.keys().await[0].role, DkimRole::Signing, "nothing rotated");
}

#[tokio::test]
async fn a_reader_cannot_rotate() {
    let f = Fixture::new(DkimAlgorithm::Ed25519).await;
    let reader = f.app.token(&f.env, trustmail::domain::Role::ReadOnly).await;
    let response = f
        .app
        .post(&f.path("dkim/rotate"), &reader, Value::Null)
        .await;
    assert_p1_error(response, StatusCode::FORBIDDEN, "ACCESS_FAILED", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_rotations_keep_one_signing_key_that_signs_at_every_moment() {
    let f = Arc::new(Fixture::new(DkimAlgorithm::Ed25519).await);
    let signing = {
        let f = f.clone();
        tokio::spawn(async move {
            let domain = f.app.email_domain(&f.env, &f.id).await;
            for _ in 0..60 {
                f.app
                    .service
                    .dkim_signer(&domain, "us-east-1")
                    .await
                    .expect("a signing key at every moment");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let rotations: Vec<_> = (0..6)
        .map(|_| {
            let f = f.clone();
            tokio::spawn(async move { f.rotate("").await.status() })
        })
        .collect();
    for rotation in rotations {
        assert_eq!(rotation.await.unwrap(), StatusCode::OK);
    }
    signing.await.unwrap();
    let keys = f.keys().await;
    let count = |role| keys.iter().filter(|k| k.role == role).count();
    assert_eq!(
        (
            count(DkimRole::Signing),
            count(DkimRole::Published),
            count(DkimRole::Retired)
        ),
        (1, 1, 1)
    );
    // Six rotations bring the roles back where they started.
    assert_eq!(keys[0].role, DkimRole::Signing);
}

#[tokio::test]
async fn an_ed25519_signature_verifies_with_the_published_key() {
    let f = Fixture::new(DkimAlgorithm::Ed25519).await;
    let message = f.signed_message().await;
    assert_eq!(f.verify(&message).await, [DkimResult::Pass]);
}

#[tokio::test]
async fn an_rsa_2048_signature_verifies_with_the_published_key() {
    let f = Fixture::new(DkimAlgorithm::Rsa2048).await;
    let message = f.signed_message().await;
    assert_eq!(f.verify(&message).await, [DkimResult::Pass]);
}

#[tokio::test]
async fn a_tampered_message_fails_verification() {
    let f = Fixture::new(DkimAlgorithm::Ed25519).await;
    let message = String::from_utf8(f.signed_message().await).unwrap();
    let tampered = message.replace("Hi Ann.", "Hi Bob.");
    let results = f.verify(tampered.as_bytes()).await;
    assert!(
        matches!(results[..], [DkimResult::Fail(_) | DkimResult::Neutral(_)]),
        "{results:?}"
    );
}

#[tokio::test]
async fn a_signature_made_just_before_a_rotation_still_verifies_after_it() {
    let f = Fixture::new(DkimAlgorithm::Ed25519).await;
    let message = f.signed_message().await;
    assert_eq!(f.rotate("").await.status(), StatusCode::OK);
    // trustmail's DNS serves the keys as they are now; the test DNS follows.
    f.app.publish_dkim_keys(&f.dns, &f.env, &f.id).await;
    assert_eq!(f.verify(&message).await, [DkimResult::Pass]);
    // And the new signing key verifies too.
    let after = f.signed_message().await;
    assert_eq!(f.verify(&after).await, [DkimResult::Pass]);
    assert_ne!(message, after);
}

#[tokio::test]
async fn keys_survive_a_restart() {
    let f = Fixture::new(DkimAlgorithm::Ed25519).await;
    let before = f.keys().await;
    let Fixture { app, dns, env, id } = f;
    let app = app.restart().await;
    let f = Fixture { app, dns, env, id };
    assert_eq!(f.keys().await, before);
    let message = f.signed_message().await;
    assert_eq!(f.verify(&message).await, [DkimResult::Pass]);
}

#[tokio::test]
async fn private_keys_are_sealed_and_open_only_with_the_master_key() {
    let f = Fixture::new(DkimAlgorithm::Ed25519).await;
    let key = &f.keys().await[0];
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(f.app.config.database_url.expose_secret())
        .await
        .unwrap();
    let sealed: String =
        sqlx::query_scalar("SELECT sealed_private_key FROM dkim_keys WHERE selector = $1")
            .bind(&key.selector)
            .fetch_one(&db)
            .await
            .unwrap();
    let master = MasterKey::load(&f.app.config.secrets.master_key_file)
        .unwrap()
        .unwrap();
    let binding = Binding::dkim_private_key(key.domain_id, &key.region, &key.public_key);
    let private = master.open(&binding, &sealed).unwrap();
    // The private key opened is the one behind the published public key...
    let pair = Ed25519KeyPair::from_pkcs8(&private).unwrap();
    assert_eq!(STANDARD.encode(pair.public_key().as_ref()), key.public_key);
    // ...but the database never holds it in clear, and another key opens nothing.
    for name in ["trustmail.db", "trustmail.db-wal"] {
        let file = std::fs::read(f.app.dir.path().join(name)).unwrap_or_default();
        assert!(
            !file.windows(private.len()).any(|w| w == private.as_slice()),
            "{name}"
        );
    }
    let other = MasterKey::load_or_create(&f.app.dir.path().join("other.key")).unwrap();
    assert!(other.open(&binding, &sealed).is_err());
}

#[tokio::test]
async fn a_domain_stored_without_keys_gets_them_at_the_next_start() {
    let stored = crate::store::Stored::new(crate::support::Db::Sqlite).await;
    let (domain, records) = (stored.domain.clone(), stored.records.clone());
    assert!(
        stored
            .app
            .service
            .dkim_keys(&domain)
            .await
            .unwrap()
            .is_empty()
    );
    let app = stored.app.restart().await;
    let keys = app.service.dkim_keys(&domain).await.unwrap();
    let roles: Vec<_> = keys.iter().map(|k| k.role).collect();
    assert_eq!(
        roles,
        [DkimRole::Signing, DkimRole::Published, DkimRole::Retired]
    );
    // Each key sits behind its own record's selector.
    let dkim_records = records.iter().filter(|r| r.kind.as_str() == "DKIM");
    for (key, record) in keys.iter().zip(dkim_records) {
        assert!(record.value.starts_with(&format!("{}.", key.selector)));
    }
}
