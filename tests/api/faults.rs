//! Faults survived: the real `trustmail serve` process killed with SIGKILL in the middle of
//! concurrent writes loses none it acknowledged, and leaves a SQLite file that checks clean.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::Row;

use trustmail::service::Credentials;

use crate::support::{Db, backends, fetch_token};

/// How many creates are fired, how many at a time (all of them: 1,000 in flight), and after how
/// many answers the server dies.
const CREATES: usize = 1000;
const CONCURRENCY: usize = CREATES;
const KILL_AFTER: usize = 200;

/// One `trustmail serve` process on a data directory.
pub struct Server {
    pub child: Child,
    pub base: String,
    stderr: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failed test must not leave the process behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn database_url(dir: &Path, db: &Db) -> String {
    match db {
        Db::Sqlite => format!("sqlite://{}", dir.join("trustmail.db").display()),
        Db::Postgres(url) => url.clone(),
    }
}

/// Starts `trustmail serve` on `dir` (and `db`) listening on `listen`; `run` numbers the log
/// files so that a restart keeps the first run's.
fn start(dir: &Path, db: &Db, listen: &str, run: u32) -> Server {
    start_logging(dir, db, listen, run, "warn")
}

/// `start`, logging at `rust_log` (`RUST_LOG`).
fn start_logging(dir: &Path, db: &Db, listen: &str, run: u32, rust_log: &str) -> Server {
    let stdout = dir.join(format!("serve{run}.stdout"));
    let stderr = dir.join(format!("serve{run}.stderr"));
    let child = Command::new(env!("CARGO_BIN_EXE_trustmail"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", rust_log)
        .env("TRUSTMAIL_LISTEN", listen)
        .env("TRUSTMAIL_FEEDBACK__LISTEN", "127.0.0.1:0")
        .env("TRUSTMAIL_DATABASE_URL", database_url(dir, db))
        .env("TRUSTMAIL_SECRETS__MASTER_KEY_FILE", dir.join("master.key"))
        .env("TRUSTMAIL_DOMAINS__EXTRA_PUBLIC_SUFFIXES", "test")
        .env("TRUSTMAIL_DNS__RESOLVERS", "127.0.0.1:9")
        .env("TRUSTMAIL_DNS__TIMEOUT_MS", "500")
        .env("TRUSTMAIL_LIMITS__DOMAINS_PER_ENVIRONMENT", "2000")
        .env("TRUSTMAIL_DKIM__ALGORITHM", "ed25519")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    Server {
        child,
        base: format!("http://{listen}"),
        stderr,
    }
}

impl Server {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Fails the test (with the server's log) if the process has exited.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("trustmail serve exited ({status}): {}", self.log());
        }
    }

    /// Waits (30 s at most) for GET /healthz to answer 200.
    pub async fn ready(&mut self, http: &reqwest::Client) {
        for _ in 0..300 {
            self.assert_running();
            if let Ok(r) = http.get(format!("{}/healthz", self.base)).send().await
                && r.status() == StatusCode::OK
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("GET /healthz did not answer 200: {}", self.log());
    }
}

/// Starts the first server on a port the kernel picks; its bootstrap JSON (30 s at most), from
/// which the address it bound.
async fn first_start(dir: &Path, db: &Db) -> (Server, Credentials) {
    first_start_logging(dir, db, "warn").await
}

/// `first_start`, logging at `rust_log` (`RUST_LOG`).
pub async fn first_start_logging(dir: &Path, db: &Db, rust_log: &str) -> (Server, Credentials) {
    let mut server = start_logging(dir, db, "127.0.0.1:0", 1, rust_log);
    let stdout = dir.join("serve1.stdout");
    for _ in 0..300 {
        server.assert_running();
        let text = std::fs::read_to_string(&stdout).unwrap_or_default();
        if let Some(line) = text.lines().next().filter(|_| text.contains('\n')) {
            let boot: Value = serde_json::from_str(line).unwrap();
            let token_url = boot["tokenUrl"].as_str().unwrap();
            let authority = token_url
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap();
            server.base = format!("http://{authority}");
            let credentials = Credentials {
                environment_id: boot["environmentId"].as_str().unwrap().parse().unwrap(),
                client_id: boot["clientId"].as_str().unwrap().parse().unwrap(),
                client_secret: boot["clientSecret"].as_str().unwrap().to_owned(),
                token_url: token_url.to_owned(),
            };
            return (server, credentials);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no bootstrap JSON on stdout: {}", server.log());
}

/// A new environment "Shop" (NA); its id.
async fn create_environment(http: &reqwest::Client, base: &str, token: &str) -> String {
    let response = http
        .post(format!("{base}/v1/environments"))
        .bearer_auth(token)
        .json(&json!({"name": "Shop", "region": "NA"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The names of the domains GET `url` (an environment's emailDomains, not paged) lists.
async fn listed_domains(http: &reqwest::Client, url: &str, token: &str) -> BTreeSet<String> {
    let response = http.get(url).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let list: Value = response.json().await.unwrap();
    list["_embedded"]["emailDomains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["domainName"].as_str().unwrap().to_owned())
        .collect()
}

/// A first `serve` on a fresh data dir (and `db`), ready, with the bootstrap client's token and
/// an environment "Shop".
struct Started {
    dir: tempfile::TempDir,
    /// Its timeout is longer than any bound of the server's own (request timeout 30 s, pool
    /// 10 s): a request that runs into it is a hang.
    http: reqwest::Client,
    server: Server,
    boot: Credentials,
    base: String,
    admin: String,
    environment: String,
}

impl Started {
    async fn new(db: &Db) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let (mut server, boot) = first_start(dir.path(), db).await;
        server.ready(&http).await;
        let base = server.base.clone();
        let admin = fetch_token(&http, &boot.token_url, &boot).await;
        let environment = create_environment(&http, &base, &admin).await;
        Self {
            dir,
            http,
            server,
            boot,
            base,
            admin,
            environment,
        }
    }
}

/// Fires `CREATES` domain creates, `CONCURRENCY` at a time, and SIGKILLs the server once
/// `KILL_AFTER` have been answered. The names answered 201, and how many got no answer.
async fn creates_until_killed(
    http: &reqwest::Client,
    server: Server,
    environment: &str,
    token: &str,
) -> (BTreeSet<String>, usize) {
    let url = format!("{}/v1/environments/{environment}/emailDomains", server.base);
    let server = Arc::new(Mutex::new(server));
    let answers = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let load_start = std::time::Instant::now();
    let first_ack = std::sync::OnceLock::new();
    let first_ack = &first_ack;
    let results: Vec<(String, Option<StatusCode>)> = futures_util::stream::iter(0..CREATES)
        .map(|i| {
            let (http, url, server, answers) =
                (http.clone(), url.clone(), server.clone(), answers.clone());
            async move {
                let name = format!("d{i}.test");
                let status = http
                    .post(&url)
                    .bearer_auth(token)
                    .json(&json!({ "domainName": name }))
                    .send()
                    .await
                    .ok()
                    .map(|r| r.status());
                if status == Some(StatusCode::CREATED) {
                    first_ack.get_or_init(|| load_start.elapsed());
                }
                if status.is_some()
                    && answers.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == KILL_AFTER
                {
                    // SIGKILL on unix: no shutdown, no flush, writes in flight cut off.
                    let mut server = server.lock().unwrap();
                    server.child.kill().unwrap();
                    server.child.wait().unwrap();
                }
                (name, status)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    // The spec is 1 s; 5 s is generous yet below the 10 s pool and busy timeouts that a stall
    // at the start of load (everything queued behind one lock or one connection) would show.
    let first = first_ack.get().copied();
    eprintln!("first create acknowledged {first:?} after load started");
    assert!(
        first.is_some_and(|t| t < Duration::from_secs(5)),
        "first create acknowledged {first:?} after load started"
    );
    let mut created = BTreeSet::new();
    let mut unanswered = 0;
    for (name, status) in results {
        match status {
            Some(StatusCode::CREATED) => {
                created.insert(name);
            }
            // Cut off by the kill: the create may or may not have committed.
            None => unanswered += 1,
            Some(other) => {
                let log = server.lock().unwrap().log();
                panic!("{name}: {other} before the kill: {log}");
            }
        }
    }
    (created, unanswered)
}

async fn integrity_check(dir: &Path) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&database_url(dir, &Db::Sqlite))
        .await
        .unwrap();
    let rows = sqlx::query("PRAGMA integrity_check")
        .fetch_all(&pool)
        .await
        .unwrap();
    let results: Vec<String> = rows.iter().map(|r| r.get::<String, _>(0)).collect();
    assert_eq!(results, ["ok"]);
    pool.close().await;
}

#[tokio::test]
async fn sigkill_during_concurrent_creates_loses_no_acknowledged_create() {
    for db in backends("sigkill_during_concurrent_creates").await {
        sigkill_during_concurrent_creates(db).await;
    }
}

async fn sigkill_during_concurrent_creates(db: Db) {
    let Started {
        dir,
        http,
        server,
        boot,
        base,
        admin,
        environment,
    } = Started::new(&db).await;

    let (created, unanswered) = creates_until_killed(&http, server, &environment, &admin).await;
    assert!(created.len() >= KILL_AFTER / 2, "{db:?}: {}", created.len());
    assert!(unanswered > 0, "{db:?}: the kill cut nothing off");

    if matches!(db, Db::Sqlite) {
        integrity_check(dir.path()).await;
    }

    // The same address, so that the list's links and the token's audience stay the same; the
    // first credentials (no bootstrap JSON on a database that has them).
    let mut server = start(dir.path(), &db, base.trim_start_matches("http://"), 2);
    server.ready(&http).await;
    let admin = fetch_token(&http, &boot.token_url, &boot).await;
    let listed = listed_domains(
        &http,
        &format!("{base}/v1/environments/{environment}/emailDomains"),
        &admin,
    )
    .await;
    eprintln!(
        "{db:?}: {} answered 201, {unanswered} cut off by the kill, {} listed after restart",
        created.len(),
        listed.len()
    );
    let lost: Vec<_> = created.difference(&listed).collect();
    assert!(lost.is_empty(), "{db:?}: answered 201, gone: {lost:?}");
    // At most the creates cut off by the kill may have committed without an answer.
    assert!(
        listed.len() <= created.len() + unanswered,
        "{db:?}: {} listed",
        listed.len()
    );
    drop(server);

    if matches!(db, Db::Sqlite) {
        integrity_check(dir.path()).await;
    }
}

/// A PostgreSQL of the test's own (not the machine's shared one, which other tests use), run as
/// the `postgres` user in a temp dir, which the test stops and starts again.
struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

/// `program args…` as the `postgres` user (initdb refuses to run as root); a failure carries
/// its output and `log`.
fn as_postgres(program: &Path, args: &[&str], log: &Path) -> Result<(), String> {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(program)
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{} {args:?}: {}{}\n{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(log).unwrap_or_default()
    ))
}

impl PrivatePostgres {
    /// A new cluster, started. Set-up is the machine's, not trustmail's: a port taken between
    /// choosing and binding it is tried once more with another.
    fn running() -> Self {
        let attempt = || -> Result<Self, String> {
            let postgres = Self::init()?;
            postgres.start()?;
            Ok(postgres)
        };
        attempt()
            .or_else(|first| {
                eprintln!("private PostgreSQL set-up failed once; trying again: {first}");
                attempt()
            })
            .unwrap()
    }

    fn init() -> Result<Self, String> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .unwrap()
            .map(|e| e.unwrap().path().join("bin"))
            .find(|bin| bin.join("initdb").exists())
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        let data = dir.path().join("data");
        as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
            ],
            &dir.path().join("postgres.log"),
        )?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Ok(Self { bin, dir, port })
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), String> {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("postgres.log");
        let mut all = vec!["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap()];
        all.extend_from_slice(args);
        as_postgres(&self.bin.join("pg_ctl"), &all, &log)
    }

    fn start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        self.pg_ctl(&["-w", "-o", &options, "start"])
    }

    fn stop(&self) {
        self.pg_ctl(&["-w", "-m", "fast", "stop"]).unwrap();
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args([
                "-D",
                data.to_str().unwrap_or_default(),
                "-m",
                "immediate",
                "stop",
            ])
            .output();
    }
}

/// Creates domains `{prefix}-{n}` one after another until `stop`; every name and its answer.
async fn create_until(
    http: reqwest::Client,
    url: String,
    token: String,
    prefix: String,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<(String, Result<(StatusCode, Value), String>)> {
    let mut answers = Vec::new();
    for n in 0.. {
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        let name = format!("{prefix}-{n}.test");
        let answer = match http
            .post(&url)
            .bearer_auth(&token)
            .json(&json!({ "domainName": name }))
            .send()
            .await
        {
            Ok(r) => {
                let status = r.status();
                Ok((status, r.json().await.unwrap_or(Value::Null)))
            }
            Err(e) => Err(e.to_string()),
        };
        answers.push((name, answer));
    }
    answers
}

/// PostgreSQL stopped under load: while it is down requests get a P1Error 503 (no hang, no
/// crash); within 10 s of its return the same process serves again; no acknowledged create is
/// lost. Needs root and the PostgreSQL server binaries: ignored by default, `.ci/run` runs it
/// (`cargo test --test api -- --ignored faults_postgres`).
#[tokio::test]
#[ignore = "runs a private PostgreSQL as the postgres user; .ci/run runs it"]
async fn faults_postgres_stopped_under_load_answers_503_then_serves_again() {
    let postgres = PrivatePostgres::running();
    let db = Db::Postgres(postgres.url());
    let Started {
        dir: _dir,
        http,
        mut server,
        boot: _,
        base,
        admin,
        environment,
    } = Started::new(&db).await;
    let url = format!("{base}/v1/environments/{environment}/emailDomains");

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|w| {
            tokio::spawn(create_until(
                http.clone(),
                url.clone(),
                admin.clone(),
                format!("w{w}"),
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    postgres.stop();
    let stopped = std::time::Instant::now();

    // Down: a create and a read answer 503 SERVICE_UNAVAILABLE, and the process lives on.
    for request in [
        http.post(&url)
            .bearer_auth(&admin)
            .json(&json!({"domainName": "down.test"})),
        http.get(&url).bearer_auth(&admin),
    ] {
        let sent = std::time::Instant::now();
        let stopped = stopped.max(sent);
        let response = request.send().await.unwrap();
        eprintln!(
            "503 after {:?}, {:?} after stop",
            sent.elapsed(),
            stopped.elapsed()
        );
        // Within 10 s of the stop, not at the request timeout (30 s).
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "answered {:?} after the stop",
            stopped.elapsed()
        );
        assert_unavailable(response, &server.log()).await;
    }
    server.assert_running();

    // Back: the same process creates again within 10 s.
    postgres.start().unwrap();
    let back = std::time::Instant::now();
    let mut n = 0;
    loop {
        n += 1;
        let response = http
            .post(&url)
            .bearer_auth(&admin)
            .json(&json!({"domainName": format!("back-{n}.test")}))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::CREATED {
            break;
        }
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "still 503 10 s after PostgreSQL's return: {}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(back.elapsed() < Duration::from_secs(10));
    server.assert_running();

    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut created = BTreeSet::new();
    let mut unavailable = 0;
    for worker in workers {
        for (name, answer) in worker.await.unwrap() {
            match answer {
                Ok((StatusCode::CREATED, _)) => {
                    created.insert(name);
                }
                Ok((StatusCode::SERVICE_UNAVAILABLE, body)) => {
                    assert_eq!(body["code"], "SERVICE_UNAVAILABLE", "{name}: {body}");
                    unavailable += 1;
                }
                other => panic!("{name}: {other:?}: {}", server.log()),
            }
        }
    }
    eprintln!("{} created, {unavailable} answered 503", created.len());
    assert!(!created.is_empty() && unavailable > 0);
    let listed = listed_domains(&http, &url, &admin).await;
    let lost: Vec<_> = created.difference(&listed).collect();
    assert!(lost.is_empty(), "answered 201, gone: {lost:?}");
}

/// A tmpfs of `size` mounted on `dir`, unmounted on drop; None (the test skips) where mounting
/// is not allowed (not root).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Self(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Creates `prefix-n.test` until one is not a 201 (at most `limit`); that answer.
async fn create_until_refused(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    prefix: &str,
    limit: usize,
) -> reqwest::Response {
    for n in 0..limit {
        let response = http
            .post(url)
            .bearer_auth(token)
            .json(&json!({ "domainName": format!("{prefix}-{n}.test") }))
            .send()
            .await
            .unwrap();
        if response.status() != StatusCode::CREATED {
            return response;
        }
    }
    panic!("{limit} creates all answered 201");
}

/// Asserts a 503 SERVICE_UNAVAILABLE P1Error with Retry-After.
async fn assert_unavailable(response: reqwest::Response, log: &str) {
    assert!(
        response.headers().contains_key("retry-after"),
        "{:?}: {log}",
        response.status()
    );
    crate::support::assert_p1_error(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
        None,
    )
    .await;
}

/// SQLite on a disk that fills up: writes answer 503 with Retry-After (not 500), reads go on,
/// and the same process writes again once space is freed.
#[tokio::test]
async fn full_sqlite_disk_answers_503_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_disk) = Tmpfs::mount(dir.path(), "4m") else {
        eprintln!("skipping full_sqlite_disk: cannot mount a tmpfs (not root)");
        return;
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let (mut server, boot) = first_start(dir.path(), &Db::Sqlite).await;
    server.ready(&http).await;
    let admin = fetch_token(&http, &boot.token_url, &boot).await;
    let environment = create_environment(&http, &server.base, &admin).await;
    let url = format!("{}/v1/environments/{environment}/emailDomains", server.base);

    // Full: fill what is left, then create until the database needs a page it cannot get.
    let filler = dir.path().join("filler");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&filler).unwrap();
        while file.write_all(&[0; 4096]).is_ok() {}
    }
    let refused = create_until_refused(&http, &url, &admin, "full", 5000).await;
    assert_unavailable(refused, &server.log()).await;
    let response = http.get(&url).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    server.assert_running();

    std::fs::remove_file(&filler).unwrap();
    let response = http
        .post(&url)
        .bearer_auth(&admin)
        .json(&json!({"domainName": "freed.test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "{}", server.log());

    let listed = listed_domains(&http, &url, &admin).await;
    assert!(listed.contains("freed.test"));
    drop(server);
}
