//! The HTTP server loop: hyper's HTTP/1.1 connections over our own listener, so that the
//! limits of `[http]` hold (README § HTTP limits), which `axum::serve` cannot set. With TLS
//! each connection handshakes first, inside the same limits (startup/tls.rs holds the keys).
//! A request hyper cannot parse gets a P1Error body (`AnswerMalformed`), not hyper's empty one.

use std::{
    future::Future,
    io,
    pin::{Pin, pin},
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use ipnet::IpNet;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{Semaphore, watch},
    task::JoinSet,
    time::Instant,
};
use tokio_rustls::TlsAcceptor;

use crate::{api::client_address::ClientAddress, config::Http};

/// How long shutdown waits for the connections in flight before dropping them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` (over TLS when `tls` is given) until `shutdown` completes;
/// then stops accepting, lets each connection finish its current request (idle ones close at
/// once), and after `SHUTDOWN_GRACE` drops those still open.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &Http,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(
        usize::try_from(limits.max_connections).unwrap_or(usize::MAX),
    ));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout())
        .keep_alive(true);
    let idle_timeout = limits.idle_timeout();
    let trusted_proxies: Arc<[IpNet]> = limits.trusted_proxies().into();
    let (stop, stopping) = watch::channel(());
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        // Past `max_connections` we stop accepting: new connections wait in the listen backlog.
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            builder: builder.clone(),
            router: router.clone(),
            idle_timeout,
            handshake_timeout: limits.header_read_timeout(),
            tls: tls.clone(),
            stopping: stopping.clone(),
            peer: peer.ip(),
            trusted_proxies: trusted_proxies.clone(),
        };
        connections.spawn(async move {
            connection.run(stream).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop.send(());
    let open = connections.len();
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open,
            still_open = connections.len(),
            grace_s = SHUTDOWN_GRACE.as_secs(),
            "connections still open after the shutdown grace; dropping them"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// Errors of one connection (reset before accept) are not worth a pause; others (out of file
/// descriptors) are, so the loop does not spin.
async fn accept_failed(e: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

struct Connection {
    builder: http1::Builder,
    router: Router,
    idle_timeout: Duration,
    /// A TLS handshake precedes the request's headers, so it gets the header read timeout.
    handshake_timeout: Duration,
    tls: Option<TlsAcceptor>,
    stopping: watch::Receiver<()>,
    /// The peer's address, resolved per request into the `ClientAddress` handlers read.
    peer: std::net::IpAddr,
    trusted_proxies: Arc<[IpNet]>,
}

impl Connection {
    async fn run(mut self, stream: TcpStream) {
        let activity = Arc::new(Activity::new());
        let tracked = Tracked {
            inner: stream,
            activity: activity.clone(),
        };
        let Some(acceptor) = self.tls.take() else {
            return self.serve(tracked, activity).await;
        };
        let handshake = tokio::time::timeout(self.handshake_timeout, acceptor.accept(tracked));
        let stream = tokio::select! {
            done = handshake => match done {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!("closing a connection that did not finish its TLS handshake in time");
                    return;
                }
            },
            _ = self.stopping.changed() => return,
        };
        self.serve(stream, activity).await
    }

    /// Serves HTTP/1.1 on `io` until the client is done, the connection idles out, or shutdown.
    async fn serve<I>(mut self, io: I, activity: Arc<Activity>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let io = TokioIo::new(AnswerMalformed::new(io));
        // A request in its handler moves no bytes (a long poll waits up to minutes): the
        // connection is not idle until its answer is written.
        let router = self.router;
        let handling = activity.clone();
        let (peer, trusted_proxies) = (self.peer, self.trusted_proxies);
        let service =
            tower::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                let source = ClientAddress::resolve(peer, request.headers(), &trusted_proxies);
                request.extensions_mut().insert(source);
                let answered = handling.handling();
                let response = tower::ServiceExt::oneshot(router.clone(), request);
                async move {
                    let response = response.await;
                    drop(answered);
                    response
                }
            });
        let served = self
            .builder
            .serve_connection(io, TowerToHyperService::new(service));
        let mut served = pin!(served);
        let mut draining = false;
        loop {
            let idle_left = self.idle_timeout.saturating_sub(activity.idle_for());
            tokio::select! {
                result = served.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = self.stopping.changed(), if !draining => {
                    draining = true;
                    served.as_mut().graceful_shutdown();
                }
                () = tokio::time::sleep(idle_left) => {
                    if activity.in_handler() {
                        activity.touch();
                    } else if activity.idle_for() >= self.idle_timeout {
                        tracing::debug!("closing a connection idle for the idle timeout");
                        return;
                    }
                }
            }
        }
    }
}

/// When a connection last moved a byte either way, and whether a request is in its handler.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
    in_handler: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_handler: AtomicUsize::new(0),
        }
    }

    /// Marks a request as in its handler until the guard drops; the idle time counts from then.
    fn handling(self: &Arc<Self>) -> Handling {
        self.in_handler.fetch_add(1, Ordering::Relaxed);
        Handling(self.clone())
    }

    fn in_handler(&self) -> bool {
        self.in_handler.load(Ordering::Relaxed) > 0
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// A request in its handler (`Activity::handling`).
struct Handling(Arc<Activity>);

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_handler.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The `AsyncWrite` methods a stream wrapper hands to its `inner` stream unchanged.
macro_rules! writes_pass_through_to_inner {
    () => {
        fn is_write_vectored(&self) -> bool {
            self.inner.is_write_vectored()
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    };
}

/// A stream that notes in `activity` every read or write that moved bytes.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    writes_pass_through_to_inner!();
}

/// hyper answers a request it cannot parse (its request line or a header malformed, its URI or
/// headers past hyper's limits) itself, before any service runs, with an empty 400 (414, 431)
/// and no way to give it a body. This stream, between hyper and the connection, writes a
/// P1Error answer in its place. hyper's answer is recognised by what only it lacks: every
/// response of the router carries a correlation id (`api::middleware::observe`).
struct AnswerMalformed<I> {
    inner: I,
    /// Our answer being written in place of hyper's.
    replacing: Option<Replacement>,
}

struct Replacement {
    bytes: Vec<u8>,
    written: usize,
    /// How many of hyper's bytes it stands for (what the write reports once done).
    replaces: usize,
}

impl<I> AnswerMalformed<I> {
    fn new(inner: I) -> Self {
        Self {
            inner,
            replacing: None,
        }
    }
}

/// hyper's own answer to a request it could not parse, if `buf` starts with one: its status and
/// its length.
fn hypers_parse_error_answer(buf: &[u8]) -> Option<(hyper::StatusCode, usize)> {
    if !buf.starts_with(b"HTTP/1.1 4") {
        return None;
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..end]).ok()?.to_ascii_lowercase();
    let status = match head.get(9..12)? {
        "400" => hyper::StatusCode::BAD_REQUEST,
        "414" => hyper::StatusCode::URI_TOO_LONG,
        "431" => hyper::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        _ => return None,
    };
    let correlated = head.contains(&format!("\r\n{}:", crate::api::middleware::CORRELATION_ID));
    (!correlated && head.contains("\r\ncontent-length: 0\r\n")).then_some((status, end))
}

/// A P1Error `INVALID_REQUEST` answer with `status`, closing the connection (hyper closes it
/// after a request it could not parse: where the next one would start is unknown).
fn malformed_request_answer(status: hyper::StatusCode) -> Vec<u8> {
    let why = match status {
        hyper::StatusCode::URI_TOO_LONG => "Its URI is too long.",
        hyper::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "Its headers are too large.",
        _ => "It is not a valid HTTP/1.1 request (request line or headers).",
    };
    let body = serde_json::to_vec(&crate::api::errors::P1Error {
        id: uuid::Uuid::new_v4().to_string(),
        code: "INVALID_REQUEST",
        message: format!("The request could not be completed. {why}"),
        details: Vec::new(),
    })
    .unwrap_or_default();
    let mut answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         {}: {}\r\nconnection: close\r\n\r\n",
        body.len(),
        crate::api::middleware::CORRELATION_ID,
        uuid::Uuid::new_v4().hyphenated(),
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    answer
}

impl<I: AsyncWrite + Unpin> AnswerMalformed<I> {
    /// Writes `buf`, or our answer in place of hyper's when `buf` starts with it (or one is
    /// under way: hyper offers the same bytes again after `Pending`).
    fn poll_write_or_replace(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.replacing.is_none() {
            let Some((status, replaces)) = hypers_parse_error_answer(buf) else {
                return Pin::new(&mut self.inner).poll_write(cx, buf);
            };
            tracing::debug!(
                status = status.as_u16(),
                "answering a request hyper could not parse"
            );
            self.replacing = Some(Replacement {
                bytes: malformed_request_answer(status),
                written: 0,
                replaces,
            });
        }
        let Some(replacement) = self.replacing.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        while replacement.written < replacement.bytes.len() {
            let rest = &replacement.bytes[replacement.written..];
            match std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, rest)) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => replacement.written += n,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        let replaces = replacement.replaces;
        self.replacing = None;
        Poll::Ready(Ok(replaces))
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for AnswerMalformed<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for AnswerMalformed<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_or_replace(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &**b);
        if self.replacing.is_some() || hypers_parse_error_answer(first).is_some() {
            return self.poll_write_or_replace(cx, first);
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    writes_pass_through_to_inner!();
}
