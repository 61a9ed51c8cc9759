//! A webhook endpoint on 127.0.0.1: records every request it gets and answers each with the
//! next status of its plan (204 once the plan is used up).

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use tokio::task::JoinHandle;

/// One request as the endpoint got it.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
struct Inbox {
    received: Mutex<Vec<Received>>,
    plan: Mutex<VecDeque<StatusCode>>,
}

pub struct WebhookReceiver {
    /// Where to point a subscription (`http://127.0.0.1:PORT/hook`).
    pub url: String,
    inbox: Arc<Inbox>,
    server: JoinHandle<()>,
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl WebhookReceiver {
    /// An endpoint that answers 204 to everything.
    pub async fn start() -> Self {
        Self::answering([]).await
    }

    /// An endpoint that answers `plan` in turn, then 204.
    pub async fn answering(plan: impl IntoIterator<Item = StatusCode>) -> Self {
        let inbox = Arc::new(Inbox::default());
        inbox.plan.lock().unwrap().extend(plan);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(inbox.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, inbox, server }
    }

    pub fn received(&self) -> Vec<Received> {
        self.inbox.received.lock().unwrap().clone()
    }

    /// The first `count` requests, once they have come (within 20 s).
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        for _ in 0..400 {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the endpoint got {} requests, not {count}",
            self.received().len()
        );
    }
}

async fn receive(State(inbox): State<Arc<Inbox>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    inbox
        .received
        .lock()
        .unwrap()
        .push(Received { headers, body });
    inbox
        .plan
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(StatusCode::NO_CONTENT)
}
