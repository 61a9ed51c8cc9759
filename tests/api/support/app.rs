//! `TestApp`: a trustmail on port 0 with its own database, and shortcuts for the API.

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::{sync::oneshot, task::JoinHandle};
use trustmail::{
    config::Config,
    domain::{Role, txt_strings},
    service::{Credentials, Service},
    startup::Application,
    store::Store,
};

/// Where a test's data lives.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite,
    /// A fresh database on the server at `TEST_POSTGRES_URL`.
    Postgres(String),
}

/// The PostgreSQL backend when `TEST_POSTGRES_URL` is set; otherwise says it skips.
pub async fn postgres(test: &str) -> Option<Db> {
    let Ok(admin_url) = std::env::var("TEST_POSTGRES_URL") else {
        eprintln!("skipping {test} on PostgreSQL: TEST_POSTGRES_URL is not set");
        return None;
    };
    sqlx::any::install_default_drivers();
    let name = format!("trustmail_test_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::AnyPool::connect(&admin_url)
        .await
        .expect("TEST_POSTGRES_URL does not accept connections");
    // The name is ours (a UUID), not input: safe to splice.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let base = admin_url
        .rsplit_once('/')
        .map(|(base, _)| base.to_owned())
        .unwrap();
    Some(Db::Postgres(format!("{base}/{name}")))
}

/// Every backend a store test must pass on.
pub async fn backends(test: &str) -> Vec<Db> {
    let mut dbs = vec![Db::Sqlite];
    dbs.extend(postgres(test).await);
    dbs
}

pub struct TestApp {
    pub url: String,
    pub service: Service,
    store: Store,
    pub http: reqwest::Client,
    pub admin: Credentials,
    pub admin_token: String,
    pub config: Config,
    pub dir: TempDir,
    /// trustmail's DNS for the DKIM zones, when the test set `dkim_dns.listen`.
    pub dkim_dns: Option<std::net::SocketAddr>,
    /// The listener of `metrics.listen`, when the test set it.
    pub metrics: Option<std::net::SocketAddr>,
    /// The feedback MX (on a port of its own per app).
    pub feedback: Option<std::net::SocketAddr>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

pub fn test_config(dir: &std::path::Path, db: &Db) -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: match db {
            Db::Sqlite => format!("sqlite://{}", dir.join("trustmail.db").display()),
            Db::Postgres(url) => url.clone(),
        }
        .into(),
        ..Config::default()
    };
    config.secrets.master_key_file = dir.join("master.key");
    config.domains.extra_public_suffixes = vec!["test".into()];
    // No test reaches the machine's resolvers: a closed local port fails at once. Tests that
    // need DNS point this at their own server (`TestApp::with_dns`).
    config.dns.resolvers = vec!["127.0.0.1:9".into()];
    config.dns.timeout_ms = 500;
    // Each app its own feedback MX port, as tests run side by side.
    config.feedback.listen = "127.0.0.1:0".into();
    // Ed25519 keys are made in microseconds; tests that need RSA ask for it.
    config.dkim.algorithm = trustmail::domain::DkimAlgorithm::Ed25519;
    // Webhook receivers in tests listen on http://127.0.0.1; `webhook_limits.rs` turns these off.
    config.webhooks.allow_private_endpoints = true;
    config.webhooks.allow_http_endpoints = true;
    config
}

impl TestApp {
    /// The app's store, for tests that arrange or inspect data below the API. The one place a
    /// test reaches the store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub async fn spawn() -> Self {
        Self::spawn_on(Db::Sqlite, |_| {}).await
    }

    /// An app whose DNS is `dns`, re-checking on every status read.
    pub async fn with_dns(dns: &super::dns::TestDns, tweak: impl FnOnce(&mut Config)) -> Self {
        let resolver = dns.resolver();
        Self::spawn_on(Db::Sqlite, move |c| {
            c.dns.resolvers = vec![resolver];
            c.dns.min_recheck_interval_s = 0;
            tweak(c);
        })
        .await
    }

    pub async fn spawn_on(db: Db, tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path(), &db);
        tweak(&mut config);
        Self::start(config, dir, None).await
    }

    /// Starts a server on an existing data directory (restart tests).
    async fn start(
        config: Config,
        dir: TempDir,
        admin: Option<(Credentials, Option<String>)>,
    ) -> Self {
        let mut app = Application::build(config.clone())
            .await
            .expect("app builds");
        // Where this server answers; its `public_url` (links, `iss`, `aud`) is the same unless
        // the test set one (a replica shares its first server's).
        let scheme = if config.http.tls_files().is_some() {
            "https"
        } else {
            "http"
        };
        let url = format!("{scheme}://127.0.0.1:{}", app.port());
        let service = app.service().clone();
        let store = app.store().clone();
        let dkim_dns = app.dkim_dns_addr();
        let metrics = app.metrics_addr();
        let feedback = app.feedback_addr();
        let fresh = app.take_bootstrap_credentials();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        let http = client_for(&config);
        let (admin, admin_token) = match (fresh, admin) {
            (Some(credentials), _) => {
                let token = fetch_token(&http, &credentials.token_url, &credentials).await;
                (credentials, token)
            }
            (None, Some((credentials, Some(token)))) => (credentials, token),
            (None, Some((mut credentials, None))) => {
                credentials.token_url = format!("{url}/{}/as/token", credentials.environment_id);
                let token = fetch_token(&http, &credentials.token_url, &credentials).await;
                (credentials, token)
            }
            (None, None) => panic!("a fresh database must bootstrap"),
        };
        Self {
            url,
            service,
            store,
            http,
            admin,
            admin_token,
            config,
            dir,
            dkim_dns,
            metrics,
            feedback,
            shutdown: Some(shutdown),
            server: Some(server),
        }
    }

    /// Stops the server (finishing requests in flight) and starts another on the same data.
    pub async fn restart(self) -> Self {
        self.restart_with(|_| {}).await
    }

    /// As `restart`, with the configuration changed by `tweak` first.
    pub async fn restart_with(mut self, tweak: impl FnOnce(&mut Config)) -> Self {
        self.stop().await;
        let mut config = self.config.clone();
        tweak(&mut config);
        // Tokens name the URL they were issued for (`iss`, `aud`), so the same address keeps
        // them valid. Should the port be taken by now, the new one is used with a new token.
        let address: std::net::SocketAddr = self.url.trim_start_matches("http://").parse().unwrap();
        // As the server binds (SO_REUSEADDR), so that its closed connections do not count.
        let probe = tokio::net::TcpSocket::new_v4().unwrap();
        probe.set_reuseaddr(true).unwrap();
        let same_port = probe.bind(address).is_ok() && probe.listen(1).is_ok();
        let admin = if same_port {
            config.listen = address;
            (self.admin.clone(), Some(self.admin_token.clone()))
        } else {
            config.listen = "127.0.0.1:0".parse().unwrap();
            (self.admin.clone(), None)
        };
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        Self::start(config, dir, Some(admin)).await
    }

    /// A second replica: another server on the same database and master key file, as the
    /// organization administrator of this one.
    pub async fn replica(&self) -> Self {
        let mut config = self.config.clone();
        config.listen = "127.0.0.1:0".parse().unwrap();
        // Replicas sit behind one public URL, which their tokens name.
        config.public_url = self.url.clone();
        let admin = (self.admin.clone(), Some(self.admin_token.clone()));
        Self::start(config, tempfile::tempdir().unwrap(), Some(admin)).await
    }

    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.request(Method::POST, path, Some(token), Some(body))
            .await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Response {
        self.request(Method::PUT, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.request(Method::DELETE, path, Some(token), None).await
    }

    /// The app's database opened anew with its master key, for a test that stopped the app (so
    /// that none of its jobs runs) and works below the API.
    pub async fn open_store(&self) -> Store {
        use secrecy::ExposeSecret;
        let store = Store::connect(self.config.database_url.expose_secret())
            .await
            .unwrap();
        let key = trustmail::secrets::MasterKey::load(&self.config.secrets.master_key_file)
            .unwrap()
            .unwrap();
        store.sealing_with(std::sync::Arc::new(key))
    }

    /// A new environment, created by the organization administrator.
    pub async fn environment(&self, name: &str) -> String {
        let response = self
            .post(
                "/v1/environments",
                &self.admin_token,
                json!({"name": name, "region": "NA"}),
            )
            .await;
        created_id(response).await
    }

    /// A token for a new client with `role` in `environment`, through the token endpoint.
    pub async fn token(&self, environment: &str, role: Role) -> String {
        let operator = self.service.operator().await.unwrap().unwrap();
        let resolved = self
            .service
            .environment(environment.parse().unwrap())
            .await
            .unwrap();
        let client = self
            .service
            .create_client(&operator, &resolved, "test client", role)
            .await
            .unwrap();
        let credentials = Credentials {
            environment_id: environment.parse().unwrap(),
            client_id: client.client.id,
            client_secret: client.client_secret,
            token_url: format!("{}/{environment}/as/token", self.url),
        };
        fetch_token(&self.http, &credentials.token_url, &credentials).await
    }

    pub async fn create_domain(&self, environment: &str, token: &str, name: &str) -> Response {
        self.post(
            &format!("/v1/environments/{environment}/emailDomains"),
            token,
            json!({ "domainName": name }),
        )
        .await
    }

    /// Creates a domain and returns its id.
    pub async fn domain(&self, environment: &str, name: &str) -> String {
        let response = self
            .create_domain(environment, &self.admin_token, name)
            .await;
        created_id(response).await
    }

    /// The domain as the service resolves it, for tests that call the service directly.
    pub async fn email_domain(
        &self,
        environment: &str,
        domain: &str,
    ) -> std::sync::Arc<trustmail::service::DomainSnapshot> {
        self.service
            .domain(environment.parse().unwrap(), domain.parse().unwrap())
            .await
            .unwrap()
    }

    /// Publishes in `dns` the key record behind each of the domain's DKIM selectors, as
    /// trustmail's own DNS serves them (`<selector>.<region's dkim_zone>` TXT).
    pub async fn publish_dkim_keys(&self, dns: &super::TestDns, environment: &str, domain: &str) {
        let domain = self.email_domain(environment, domain).await;
        for key in self.service.dkim_keys(&domain).await.unwrap() {
            let zone = self.dkim_zone(&key.region);
            dns.remove(&key.fqdn(zone), hickory_proto::rr::RecordType::TXT);
            dns.add_txt(&key.fqdn(zone), &txt_strings(&key.txt()));
        }
    }

    /// The configured `dkim_zone` of `region`.
    pub fn dkim_zone(&self, region: &str) -> &str {
        &self
            .config
            .regions
            .iter()
            .find(|r| r.name == region)
            .unwrap()
            .dkim_zone
    }

    /// Publishes in `dns` every record the domain asks for (ownership, environment, DKIM
    /// CNAMEs and the keys behind them, SPF, MAIL FROM), exactly as asked.
    pub async fn publish_domain(&self, dns: &super::TestDns, environment: &str, domain: &str) {
        let resolved = self.email_domain(environment, domain).await;
        for checked in self.service.verification(&resolved).await.unwrap() {
            let record = &checked.record;
            let at = record.fqdn(&resolved.name);
            match record.record_type {
                "CNAME" => dns.add_cname(&at, &record.value),
                "MX" => dns.add_mx(&at, 10, &record.value),
                _ => dns.add_txt(&at, &txt_strings(&record.value)),
            }
        }
        self.publish_dkim_keys(dns, environment, domain).await;
    }

    /// The JSON body of a GET of `path` as the organization administrator, which must be a 200.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path, &self.admin_token).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.json().await.unwrap()
    }
}

/// A client for the server `config` starts: over HTTPS it trusts only the certificate of
/// `http.tls_cert_file` as the server starts with it.
fn client_for(config: &Config) -> reqwest::Client {
    match config.http.tls_files() {
        None => reqwest::Client::new(),
        Some((cert, _)) => {
            let pem = std::fs::read(cert).unwrap();
            reqwest::Client::builder()
                .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
                .build()
                .unwrap()
        }
    }
}

/// The id of what a 201 created.
async fn created_id(response: Response) -> String {
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub async fn fetch_token(http: &reqwest::Client, url: &str, credentials: &Credentials) -> String {
    let response = http
        .post(url)
        .basic_auth(
            credentials.client_id.to_string(),
            Some(&credentials.client_secret),
        )
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The body of a P1Error response, after checking its status, that it is JSON, and that it
/// carries a correlation id.
pub async fn p1_error(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert!(response.headers().contains_key("correlation-id"));
    response.json().await.unwrap()
}

/// Asserts a P1Error: status, top-level code, and (when given) the first detail's code and target.
pub async fn assert_p1_error(
    response: Response,
    status: StatusCode,
    code: &str,
    detail: Option<(&str, &str)>,
) -> Value {
    let body = p1_error(response, status).await;
    assert_eq!(body["code"], code, "{body}");
    assert!(uuid::Uuid::parse_str(body["id"].as_str().unwrap()).is_ok());
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    match detail {
        Some((detail_code, target)) => {
            assert_eq!(body["details"][0]["code"], detail_code, "{body}");
            assert_eq!(body["details"][0]["target"], target, "{body}");
            assert!(body["details"][0]["message"].is_string());
        }
        None => assert!(body.get("details").is_none(), "{body}"),
    }
    body
}

/// The `Retry-After` header, in seconds.
pub fn retry_after(response: &Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Any id that names nothing (the Terraform provider's own choice).
pub const UNKNOWN_ID: &str = "9c052a8a-14be-44e4-8f07-2662569994ce";
