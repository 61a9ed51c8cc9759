//! One tenant's stalled webhook endpoints delay nobody else's deliveries: receivers on
//! 127.0.0.1 that accept a connection and never answer, or never accept one, hold a few
//! workers at most, and an endpoint that never accepts gives its worker back after
//! `webhooks.connect_timeout_s`, not the whole request timeout.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::{
    net::{TcpListener, TcpSocket, TcpStream},
    task::JoinHandle,
};

use crate::subscriptions::{created, subscriptions};
use crate::support::{TestApp, WebhookReceiver};

/// An endpoint that never answers: it accepts connections and holds them open, unread.
struct Tarpit {
    url: String,
    /// Connections accepted so far.
    accepted: Arc<AtomicUsize>,
    server: JoinHandle<()>,
}

impl Drop for Tarpit {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Tarpit {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let counted = accepted.clone();
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                held.push(stream);
            }
        });
        Self {
            url,
            accepted,
            server,
        }
    }
}

/// An endpoint that never accepts: a listener with a one-place backlog that is never read,
/// filled by connections of its own, so that the kernel drops every further SYN and a
/// connection attempt hangs.
struct Unaccepting {
    url: String,
    _listener: tokio::net::TcpListener,
    _fillers: Vec<TcpStream>,
}

impl Unaccepting {
    async fn start() -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(1).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut fillers = Vec::new();
        for _ in 0..4 {
            let connect = TcpStream::connect(addr);
            if let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_millis(300), connect).await
            {
                fillers.push(stream);
            }
        }
        Self {
            url: format!("http://{addr}/hook"),
            _listener: listener,
            _fillers: fillers,
        }
    }
}

async fn create_client(app: &TestApp, env: &str) {
    let r = app
        .post(
            &format!("/v1/environments/{env}/clients"),
            &app.admin_token,
            json!({"name": "Worker", "role": "READ_ONLY"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_whose_endpoints_stall_does_not_delay_another_tenants_webhook() {
    // A stalled POST would hold its worker for a minute.
    let app = TestApp::spawn_on(crate::support::Db::Sqlite, |c| {
        c.webhooks.request_timeout_s = 60;
    })
    .await;
    let tarpits = [Tarpit::start().await, Tarpit::start().await];
    let unaccepting = Unaccepting::start().await;
    let stalled = app.environment("Stalled").await;
    for url in [&tarpits[0].url, &tarpits[1].url, &unaccepting.url] {
        for _ in 0..2 {
            created(&app, &stalled, url, &["CLIENT_CREATED"]).await;
        }
    }
    // 6 subscriptions × 10 activities: a backlog of 60 deliveries that never succeed.
    for _ in 0..10 {
        create_client(&app, &stalled).await;
    }
    let held = || {
        tarpits
            .iter()
            .map(|t| t.accepted.load(Ordering::SeqCst))
            .sum::<usize>()
    };
    for _ in 0..400 {
        if held() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(held() >= 2, "the stalled tenant's deliveries never started");

    let receiver = WebhookReceiver::start().await;
    let other = app.environment("Other").await;
    created(&app, &other, &receiver.url, &["CLIENT_CREATED"]).await;
    create_client(&app, &other).await;
    let mut delivered = false;
    for _ in 0..40 {
        if !receiver.received().is_empty() {
            delivered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        delivered,
        "another tenant's webhook waited more than 2 s behind the stalled tenant's"
    );
    assert_eq!(
        receiver.received()[0].json()["action"]["type"],
        "CLIENT_CREATED"
    );
    // The stalled tenant never held more than its share of the workers.
    assert!(held() <= 4, "{} stalled POSTs at once", held());
}

#[tokio::test]
async fn an_endpoint_that_never_accepts_gives_up_after_the_connect_timeout() {
    let app = TestApp::spawn_on(crate::support::Db::Sqlite, |c| {
        c.webhooks.request_timeout_s = 120;
        c.webhooks.connect_timeout_s = 1;
    })
    .await;
    let unaccepting = Unaccepting::start().await;
    let env = app.environment("Shop").await;
    let (id, _) = created(&app, &env, &unaccepting.url, &["CLIENT_CREATED"]).await;
    create_client(&app, &env).await;
    let path = format!("{}/{id}/deliveries", subscriptions(&env));
    // Well within the 120 s request timeout: only the connect timeout can have ended it.
    for _ in 0..400 {
        let page = app.get_json(&path).await;
        let newest: &Value = &page["_embedded"]["deliveries"][0];
        if newest["attempts"].as_u64().is_some_and(|n| n > 0) {
            assert_eq!(
                newest["lastError"],
                "no connection to the endpoint within 1 s (webhooks.connect_timeout_s)"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the delivery was not given up within 20 s");
}
