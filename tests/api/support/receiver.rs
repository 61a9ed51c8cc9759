//! A webhook endpoint on 127.0.0.1 (plain HTTP, or HTTPS with a self-signed certificate): records every request it gets and answers each with the
//! next status of its plan (204 once the plan is used up).

use std::{
    collections::VecDeque,
    net::SocketAddr,
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
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};
use tokio_rustls::{TlsAcceptor, rustls};

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
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = router(&inbox);
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, inbox, server }
    }

    /// An endpoint over HTTPS whose certificate (tests/api/fixtures/self-signed.cert.pem, for
    /// 127.0.0.1) no trust store knows; it answers 204. A client that refuses the certificate
    /// never reaches it.
    pub async fn self_signed() -> Self {
        let inbox = Arc::new(Inbox::default());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}/hook", listener.local_addr().unwrap());
        let certificate =
            CertificateDer::from_pem_slice(include_bytes!("../fixtures/self-signed.cert.pem"))
                .unwrap();
        let key = PrivateKeyDer::from_pem_slice(include_bytes!("../fixtures/self-signed.key.pem"))
            .unwrap();
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![certificate], key)
            .unwrap();
        let listener = TlsListener {
            tcp: listener,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        };
        let app = router(&inbox);
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

fn router(inbox: &Arc<Inbox>) -> Router {
    Router::new()
        .route("/hook", post(receive))
        .with_state(inbox.clone())
}

/// TCP connections that completed a TLS handshake; failed handshakes are dropped.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, SocketAddr) {
        loop {
            let Ok((tcp, address)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, address);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
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
