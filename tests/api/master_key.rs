//! Values sealed with the master key: bound to their row (a value moved to another row does not
//! open), the form written before key ids still opening. On SQLite always and on PostgreSQL when
//! `TEST_POSTGRES_URL` is set.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::{Engine, engine::general_purpose::STANDARD};
use secrecy::ExposeSecret;
use sqlx::AnyPool;
use trustmail::{
    mail::ComposedMail,
    store::{Store, StoreError},
};

use crate::{
    outbox::code_mail,
    subscriptions::created,
    support::{Db, TestApp, backends},
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

async fn two_mails(app: &TestApp) -> (ComposedMail, ComposedMail) {
    let first = code_mail(None, "first@shop.test", "aaaa1111");
    let second = code_mail(None, "second@shop.test", "bbbb2222");
    app.store().enqueue_mail(&first).await.unwrap();
    app.store().enqueue_mail(&second).await.unwrap();
    (first, second)
}

#[tokio::test]
async fn a_queued_message_moved_to_another_row_does_not_open_there() {
    for db in backends("a_queued_message_moved_to_another_row_does_not_open_there").await {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        let (first, second) = two_mails(&app).await;
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
        let (first, _) = two_mails(&app).await;
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
