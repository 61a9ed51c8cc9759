//! Values sealed with the master key: bound to their row (a value moved to another row does not
//! open), the form written before key ids still opening, and `trustmail secrets
//! rotate-master-key` re-sealing all of them under a new key. On SQLite always and on
//! PostgreSQL when `TEST_POSTGRES_URL` is set.

use std::{sync::Arc, time::Duration};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::{Engine, engine::general_purpose::STANDARD};
use mail_auth::DkimResult;
use secrecy::ExposeSecret;
use sqlx::AnyPool;
use trustmail::{
    secrets::MasterKey,
    store::{RESEAL_BATCH, ResealedColumn, Store, StoreError},
};

use crate::{
    outbox::{code_mail, queue_two},
    subscriptions::created,
    support::{Db, SmtpSink, TestApp, TestDns, WebhookReceiver, backends},
};

/// `plaintext` sealed the way values were before key ids: base64(nonce ‖ ciphertext ‖ tag),
/// AES-256-GCM under the key of `key_file` with only `purpose` as associated data. Written here
/// from that definition, not with the code under test.
pub fn unversioned(key_file: &std::path::Path, purpose: &str, plaintext: &[u8]) -> String {
    let raw = STANDARD
        .decode(std::fs::read_to_string(key_file).unwrap().trim())
        .unwrap();
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &raw).unwrap());
    let nonce = [9u8; NONCE_LEN];
    let mut buf = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(purpose),
        &mut buf,
    )
    .unwrap();
    STANDARD.encode([nonce.as_slice(), &buf].concat())
}

/// A stopped app's database: its store (with the app's master key) and a pool for raw SQL.
struct Stopped {
    app: TestApp,
    store: Store,
    pool: AnyPool,
}

impl Stopped {
    async fn new(mut app: TestApp) -> Self {
        app.stop().await;
        let store = app.open_store().await;
        let pool = AnyPool::connect(app.config.database_url.expose_secret())
            .await
            .unwrap();
        Self { app, store, pool }
    }

    async fn text(&self, sql: &'static str, id: &str) -> String {
        sqlx::query_scalar(sql)
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    async fn set(&self, sql: &'static str, value: &str, id: &str) {
        let updated = sqlx::query(sql)
            .bind(value)
            .bind(id)
            .execute(&self.pool)
            .await
            .unwrap()
            .rows_affected();
        assert_eq!(updated, 1);
    }

    fn key_file(&self) -> &std::path::Path {
        &self.app.config.secrets.master_key_file
    }
}

fn is_sealed_error(result: Result<impl std::fmt::Debug, StoreError>) -> bool {
    matches!(result, Err(StoreError::Sealed(_)))
}

#[tokio::test]
async fn a_queued_message_moved_to_another_row_does_not_open_there() {
    for db in backends("a_queued_message_moved_to_another_row_does_not_open_there").await {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        let (first, second) = queue_two(&app).await;
        let s = Stopped::new(app).await;
        let sealed = s
            .text(
                "SELECT message FROM outbox WHERE id = $1",
                &first.id.to_string(),
            )
            .await;
        assert!(sealed.starts_with("sealed:v2:"), "{sealed}");
        s.set(
            "UPDATE outbox SET message = $1 WHERE id = $2",
            &sealed,
            &second.id.to_string(),
        )
        .await;
        assert!(
            is_sealed_error(s.store.get_outbox(second.id).await),
            "{db:?}"
        );
        let opened = s.store.get_outbox(first.id).await.unwrap().unwrap();
        assert_eq!(opened.mail.message, first.message, "{db:?}");
    }
}

#[tokio::test]
async fn a_queued_message_sealed_the_old_way_still_opens() {
    for db in backends("a_queued_message_sealed_the_old_way_still_opens").await {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        let (first, _) = queue_two(&app).await;
        let s = Stopped::new(app).await;
        let old = unversioned(s.key_file(), "outbox-message", first.message.as_bytes());
        s.set(
            "UPDATE outbox SET message = $1 WHERE id = $2",
            &format!("sealed:{old}"),
            &first.id.to_string(),
        )
        .await;
        let opened = s.store.get_outbox(first.id).await.unwrap().unwrap();
        assert_eq!(opened.mail.message, first.message, "{db:?}");
    }
}

/// Two subscriptions of one environment: (app, environment, first id, second id).
async fn two_subscriptions(db: Db) -> (TestApp, String, String, String) {
    let app = TestApp::spawn_on(db, |_| {}).await;
    let env = app.environment("Shop").await;
    let url = "https://hooks.shopco.test/trustmail";
    let (first, _) = created(&app, &env, url, &["EMAIL_DOMAIN_CREATED"]).await;
    let (second, _) = created(&app, &env, url, &["EMAIL_DOMAIN_CREATED"]).await;
    (app, env, first, second)
}

#[tokio::test]
async fn subscription_headers_moved_to_another_subscription_do_not_open_there() {
    for db in backends("subscription_headers_moved_to_another_subscription_do_not_open_there").await
    {
        let (app, env, first, second) = two_subscriptions(db.clone()).await;
        let s = Stopped::new(app).await;
        let env = env.parse().unwrap();
        let headers = s
            .text(
                "SELECT sealed_headers FROM subscriptions WHERE id = $1",
                &first,
            )
            .await;
        assert!(headers.starts_with("v2:"), "{headers}");
        s.set(
            "UPDATE subscriptions SET sealed_headers = $1 WHERE id = $2",
            &headers,
            &second,
        )
        .await;
        let read = s.store.get_subscription(env, second.parse().unwrap()).await;
        assert!(is_sealed_error(read), "{db:?}");
        let first = s.store.get_subscription(env, first.parse().unwrap()).await;
        assert!(first.unwrap().is_some(), "{db:?}");
    }
}

#[tokio::test]
async fn subscription_headers_sealed_the_old_way_still_open() {
    for db in backends("subscription_headers_sealed_the_old_way_still_open").await {
        let (app, env, first, _) = two_subscriptions(db.clone()).await;
        let s = Stopped::new(app).await;
        let old = unversioned(
            s.key_file(),
            "subscription-headers",
            br#"{"Authorization":"Basic b2xk"}"#,
        );
        s.set(
            "UPDATE subscriptions SET sealed_headers = $1 WHERE id = $2",
            &old,
            &first,
        )
        .await;
        let read = s
            .store
            .get_subscription(env.parse().unwrap(), first.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        let headers = read.settings.headers.as_map();
        assert_eq!(headers["Authorization"], "Basic b2xk", "{db:?}");
    }
}

#[tokio::test]
async fn a_dkim_private_key_moved_to_another_domain_does_not_sign_there() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let first = app.domain(&env, "a.shopco.test").await;
    let second = app.domain(&env, "b.shopco.test").await;
    let (first, second) = (
        app.email_domain(&env, &first).await,
        app.email_domain(&env, &second).await,
    );
    let pool = AnyPool::connect(app.config.database_url.expose_secret())
        .await
        .unwrap();
    let signing = "SELECT sealed_private_key FROM dkim_keys WHERE domain_id = $1 \
                   AND region = 'us-east-1' AND role = 'SIGNING'";
    let sealed: String = sqlx::query_scalar(signing)
        .bind(first.id.to_string())
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE dkim_keys SET sealed_private_key = $1 WHERE domain_id = $2 \
         AND region = 'us-east-1' AND role = 'SIGNING'",
    )
    .bind(&sealed)
    .bind(second.id.to_string())
    .execute(&pool)
    .await
    .unwrap();
    let moved = app.service.dkim_signer(&second, "us-east-1").await;
    assert!(
        moved.is_err(),
        "a key moved to another domain must not sign"
    );
    assert!(app.service.dkim_signer(&first, "us-east-1").await.is_ok());
}

/// `trustmail secrets rotate-master-key --new-key-file new_key` run on `app`'s database with its
/// configured keys: (exit code, stdout, stderr).
fn rotate(app: &TestApp, new_key: &std::path::Path) -> (Option<i32>, String, String) {
    let secrets = &app.config.secrets;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trustmail"))
        .args(["secrets", "rotate-master-key", "--new-key-file"])
        .arg(new_key)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .env(
            "TRUSTMAIL_DATABASE_URL",
            app.config.database_url.expose_secret(),
        )
        .env(
            "TRUSTMAIL_SECRETS__MASTER_KEY_FILE",
            &secrets.master_key_file,
        )
        .env(
            "TRUSTMAIL_SECRETS__PREVIOUS_MASTER_KEY_FILE",
            &secrets.previous_master_key_file,
        )
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Every sealed value in the database, as stored (outbox messages after their `sealed:` mark).
async fn sealed_values(pool: &AnyPool) -> Vec<String> {
    let mut values = Vec::new();
    for sql in [
        "SELECT sealed_private_key FROM signing_keys",
        "SELECT sealed_private_key FROM dkim_keys",
        "SELECT substr(message, 8) FROM outbox WHERE substr(message, 1, 7) = 'sealed:'",
        "SELECT sealed_secret FROM subscriptions",
        "SELECT sealed_headers FROM subscriptions",
    ] {
        let column: Vec<String> = sqlx::query_scalar(sql).fetch_all(pool).await.unwrap();
        assert!(
            !column.is_empty(),
            "{sql}: the test seals something in each"
        );
        values.extend(column);
    }
    values
}

const DOMAIN: &str = "a.shopco.test";
const SENDER: &str = "noreply@a.shopco.test";

/// `POST …/messages` from `SENDER`: the message's id.
async fn send(app: &TestApp, env: &str) -> String {
    let r = app
        .post(
            &format!("/v1/environments/{env}/messages"),
            &app.admin_token,
            serde_json::json!({
                "from": SENDER, "to": ["ann@example.test"], "subject": "Your order",
                "text": "It ships today.\n",
            }),
        )
        .await;
    assert_eq!(r.status(), reqwest::StatusCode::ACCEPTED);
    r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A domain verified in `dns` with `SENDER` ACTIVE, a webhook subscription to `receiver` for
/// new clients, and a message queued with no relay to take it: (environment, subscription's
/// secret).
async fn sealed_everything(
    app: &TestApp,
    dns: &TestDns,
    receiver: &WebhookReceiver,
) -> (String, String) {
    let env = app.environment("Shop").await;
    let domain = app.domain(&env, DOMAIN).await;
    app.publish_domain(dns, &env, &domain).await;
    let path = format!("/v1/environments/{env}/emailDomains/{domain}");
    let r = app
        .post(
            &format!("{path}/verification"),
            &app.admin_token,
            serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let r = app
        .post(
            &format!("{path}/trustedEmails"),
            &app.admin_token,
            serde_json::json!({ "emailAddress": SENDER }),
        )
        .await;
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    let (_, secret) = created(app, &env, &receiver.url, &["CLIENT_CREATED"]).await;
    send(app, &env).await;
    (env, secret)
}

#[tokio::test]
async fn after_a_rotation_every_sealed_value_opens_with_the_new_key_alone() {
    for db in backends("after_a_rotation_every_sealed_value_opens_with_the_new_key_alone").await {
        rotation_end_to_end(db).await;
    }
}

async fn rotation_end_to_end(db: Db) {
    let dns = TestDns::start().await;
    let mut sink = SmtpSink::start().await;
    let receiver = WebhookReceiver::start().await;
    let resolver = dns.resolver();
    let app = TestApp::spawn_on(db.clone(), move |c| {
        c.dns.resolvers = vec![resolver];
        c.dns.min_recheck_interval_s = 0;
    })
    .await;
    let (env, secret) = sealed_everything(&app, &dns, &receiver).await;
    let s = Stopped::new(app).await;
    // One value of the old form, as a database from before key ids holds them.
    let subscription: String = sqlx::query_scalar("SELECT id FROM subscriptions")
        .fetch_one(&s.pool)
        .await
        .unwrap();
    let old = unversioned(s.key_file(), "subscription-secret", secret.as_bytes());
    s.set(
        "UPDATE subscriptions SET sealed_secret = $1 WHERE id = $2",
        &old,
        &subscription,
    )
    .await;
    let before = sealed_values(&s.pool).await;

    let new_key = s.app.dir.path().join("new.key");
    let (code, stdout, stderr) = rotate(&s.app, &new_key);
    assert_eq!(code, Some(0), "{db:?}: {stderr}");
    let new_id = MasterKey::load(&new_key).unwrap().unwrap().key_id().clone();
    assert!(
        stdout.contains(&format!("created master key {new_id}")),
        "{stdout}"
    );
    let summary = format!(
        "re-sealed {} values under master key {new_id}",
        before.len()
    );
    assert!(stdout.contains(&summary), "{db:?}: {stdout}");
    assert!(
        stdout.contains("secrets.previous_master_key_file"),
        "{stdout}"
    );
    let after = sealed_values(&s.pool).await;
    assert_eq!(after.len(), before.len());
    for value in &after {
        assert!(
            value.starts_with(&format!("v2:{new_id}:")),
            "{db:?}: {value}"
        );
    }
    // Run again: nothing is left to re-seal, and nothing changes.
    let (code, stdout, _) = rotate(&s.app, &new_key);
    assert_eq!(code, Some(0));
    assert!(
        stdout.contains(&format!("re-sealed 0 values under master key {new_id}")),
        "{db:?}: {stdout}"
    );
    assert_eq!(sealed_values(&s.pool).await, after, "{db:?}");
    s.pool.close().await;
    s.store.close().await;

    // The new key alone: the old one is gone.
    std::fs::remove_file(s.key_file()).unwrap();
    let relay = sink.url();
    let app = s
        .app
        .restart_with(move |c| {
            c.secrets.master_key_file = new_key;
            c.mail.smtp_url = trustmail::config::SmtpUrl::parse(&relay).unwrap();
        })
        .await;
    // The token signing key: the old token verifies and new ones are signed.
    app.get_json("/v1/environments").await;
    let reader = app.token(&env, trustmail::domain::Role::ReadOnly).await;
    let r = app.get(&format!("/v1/environments/{env}"), &reader).await;
    assert_eq!(r.status(), reqwest::StatusCode::OK, "{db:?}");
    // The queued message is delivered, and a new one is signed with the DKIM key.
    let queued = sink.next_mail(Duration::from_secs(15)).await;
    assert_eq!(
        dns.verify_dkim(queued.data.as_bytes()).await,
        [DkimResult::Pass]
    );
    send(&app, &env).await;
    let fresh = sink.next_mail(Duration::from_secs(15)).await;
    assert!(fresh.data.starts_with("DKIM-Signature:"), "{}", fresh.data);
    assert_eq!(
        dns.verify_dkim(fresh.data.as_bytes()).await,
        [DkimResult::Pass]
    );
    // The webhook (the client made above) carries its headers and verifies with its secret.
    let delivery = &receiver.wait_for(1).await[0];
    assert_eq!(delivery.header("authorization"), "Basic c2hvcDpodW50ZXIy");
    standardwebhooks::Webhook::new(&secret)
        .unwrap()
        .verify(&delivery.body, &delivery.headers)
        .unwrap();
}

#[tokio::test]
async fn a_rotation_goes_through_every_batch_and_leaves_what_no_key_opens() {
    for db in backends("a_rotation_goes_through_every_batch_and_leaves_what_no_key_opens").await {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        let mut mails = Vec::new();
        for i in 0..RESEAL_BATCH * 2 + 50 {
            let mail = code_mail(None, &format!("n{i}@shop.test"), "aaaa1111");
            app.store().enqueue_mail(&mail).await.unwrap();
            mails.push(mail);
        }
        let s = Stopped::new(app).await;
        // A value moved to another row opens there with no key: it is left as it is, and named.
        let moved = s
            .text(
                "SELECT message FROM outbox WHERE id = $1",
                &mails[0].id.to_string(),
            )
            .await;
        let broken = mails[1].id.to_string();
        s.set(
            "UPDATE outbox SET message = $1 WHERE id = $2",
            &moved,
            &broken,
        )
        .await;
        let old = MasterKey::load(s.key_file()).unwrap().unwrap();
        let new_file = s.app.dir.path().join("new.key");
        let new = MasterKey::load_or_create(&new_file).unwrap();
        let url = s.app.config.database_url.expose_secret().to_owned();
        let rotating = Store::connect(&url)
            .await
            .unwrap()
            .sealing_with(Arc::new(new.with_previous(old)));

        let outbox = |columns: Vec<ResealedColumn>| {
            columns.into_iter().find(|c| c.table == "outbox").unwrap()
        };
        let first = outbox(rotating.reseal_all().await.unwrap());
        assert_eq!(first.resealed, mails.len() as u64 - 1, "{db:?}");
        assert_eq!(first.changed_meanwhile, 0);
        assert_eq!(first.unreadable, 1, "{db:?}");
        assert_eq!(first.unreadable_rows[0].0, broken);
        let second = outbox(rotating.reseal_all().await.unwrap());
        assert_eq!((second.resealed, second.unreadable), (0, 1), "{db:?}");

        let new_only = Store::connect(&url)
            .await
            .unwrap()
            .sealing_with(Arc::new(MasterKey::load(&new_file).unwrap().unwrap()));
        for mail in [&mails[0], &mails[RESEAL_BATCH], mails.last().unwrap()] {
            let opened = new_only.get_outbox(mail.id).await.unwrap().unwrap();
            assert_eq!(opened.mail.message, mail.message, "{db:?}");
        }
    }
}
