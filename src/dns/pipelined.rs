//! Connections to the operator's configured resolvers: a couple of long-lived TCP connections
//! per resolver, shared by every lookup in flight and made again when they close.
//!
//! Why this is safe where a socket per query is not needed: a fresh UDP socket on a random port
//! for every query is hickory's defence against off-path answer spoofing (RFC 5452: the attacker
//! must guess the port as well as the 16-bit query id). Over TCP an off-path attacker cannot
//! inject an answer at all (the handshake and the sequence numbers see to that), so keeping one
//! connection open gives nothing away. It is used only for `dns.resolvers`, servers the operator
//! names and runs for trustmail; with the system's resolvers (`dns.resolvers` empty) lookups keep
//! hickory's UDP with a random port per query, TCP when an answer is truncated.
//!
//! Everything DNS is hickory's: the resolver above (server pool, timeouts, negative answers,
//! CNAME chains) and the connection below ([`TcpClientStream`] in a [`DnsMultiplexer`], which
//! pipelines the queries in flight over the connection and matches answers by id). What this
//! file adds is the sharing: the resolver's name server keeps a list of connections and makes a
//! new one whenever none is usable (at start, by every lookup that arrives before the first
//! connect finishes; after any failed query), so it would open many connections and keep those
//! the server has since closed. Here every such "connection" is a handle on the shared
//! connections of its resolver, each of which connects once (lookups that arrive meanwhile wait
//! for it) and reconnects on the next query after the server closed it.

use std::{
    collections::HashMap,
    future::Future,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures_util::{StreamExt, stream::BoxStream};
use hickory_resolver::{
    ConnectionProvider, PoolContext,
    config::ConnectionConfig,
    net::{
        NetError,
        runtime::{RuntimeProvider, Spawn, TokioRuntimeProvider},
        tcp::{TcpClientStream, TcpStream},
        xfer::{DnsExchange, DnsHandle, DnsMultiplexer, FirstAnswer},
    },
    proto::op::{DnsRequest, DnsResponse},
};

/// hickory's [`ConnectionProvider`] for the configured resolvers: TCP, the same
/// [`CONNECTIONS_PER_RESOLVER`] connections for every lookup to a resolver address.
#[derive(Clone, Default)]
pub(super) struct PipelinedTcp {
    runtime: TokioRuntimeProvider,
    connections: Arc<Mutex<HashMap<SocketAddr, SharedConnection>>>,
}

impl ConnectionProvider for PipelinedTcp {
    type Conn = SharedConnection;
    type FutureConn = Pin<Box<dyn Future<Output = Result<SharedConnection, NetError>> + Send>>;
    type RuntimeProvider = TokioRuntimeProvider;

    fn new_connection(
        &self,
        ip: IpAddr,
        config: &ConnectionConfig,
        cx: &PoolContext,
    ) -> Result<Self::FutureConn, NetError> {
        let address = SocketAddr::new(ip, config.port);
        let connection = self
            .connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(address)
            .or_insert_with(|| {
                SharedConnection(Arc::new(Shared {
                    address,
                    timeout: cx.options.timeout,
                    max_in_flight: cx.options.max_active_requests,
                    runtime: self.runtime.clone(),
                    slots: (0..CONNECTIONS_PER_RESOLVER)
                        .map(|_| Slot::default())
                        .collect(),
                    next: AtomicUsize::new(0),
                }))
            })
            .clone();
        Ok(Box::pin(async move { Ok(connection) }))
    }

    fn runtime_provider(&self) -> &TokioRuntimeProvider {
        &self.runtime
    }
}

/// A handle on the TCP connections to a resolver; a query sent through it goes over the next
/// connection in turn, made again first if the server has closed it.
#[derive(Clone)]
pub(super) struct SharedConnection(Arc<Shared>);

struct Shared {
    address: SocketAddr,
    timeout: Duration,
    max_in_flight: usize,
    runtime: TokioRuntimeProvider,
    slots: Vec<Slot>,
    next: AtomicUsize,
}

/// Connections per resolver, taken in turn by the queries: two let both runtime threads (and
/// the resolver's) read answers at once, and halve the requests each connection's multiplexer
/// walks on every wake-up; `bench/dns_sweep.sh` measured 2 ahead of 1 and of 4.
const CONNECTIONS_PER_RESOLVER: usize = 2;

#[derive(Default)]
struct Slot {
    open: Mutex<Option<Open>>,
    /// Held while connecting, so that lookups arriving meanwhile share that connect.
    connecting: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
struct Open {
    exchange: DnsExchange<TokioRuntimeProvider>,
    /// Set when the connection's I/O task ends (the server closed it, or it failed).
    closed: Arc<AtomicBool>,
}

impl Slot {
    fn current(&self) -> Option<DnsExchange<TokioRuntimeProvider>> {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.as_ref()
            .filter(|open| !open.closed.load(Ordering::Acquire))
            .map(|open| open.exchange.clone())
    }
}

impl Shared {
    /// The next connection in turn: open, or made again.
    async fn exchange(&self) -> Result<DnsExchange<TokioRuntimeProvider>, NetError> {
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        if let Some(exchange) = slot.current() {
            return Ok(exchange);
        }
        let _connecting = slot.connecting.lock().await;
        if let Some(exchange) = slot.current() {
            return Ok(exchange);
        }
        let tcp = self
            .runtime
            .connect_tcp(self.address, None, Some(self.timeout))
            .await?;
        // The outgoing buffer holds as many queries as may be in flight, so that a burst is
        // queued rather than refused.
        let (stream, sender) =
            TcpStream::from_stream_with_buffer_size(tcp, self.address, self.max_in_flight);
        let multiplexer = DnsMultiplexer::new(TcpClientStream::from_stream(stream), sender)
            .with_timeout(self.timeout)
            .with_max_active_requests(self.max_in_flight);
        let (exchange, io) = DnsExchange::from_stream(multiplexer);
        let closed = Arc::new(AtomicBool::new(false));
        let on_close = closed.clone();
        self.runtime.create_handle().spawn_bg(async move {
            io.await;
            on_close.store(true, Ordering::Release);
        });
        *slot.open.lock().unwrap_or_else(|p| p.into_inner()) = Some(Open {
            exchange: exchange.clone(),
            closed,
        });
        Ok(exchange)
    }
}

impl DnsHandle for SharedConnection {
    type Response = BoxStream<'static, Result<DnsResponse, NetError>>;
    type Runtime = TokioRuntimeProvider;

    fn send(&self, request: DnsRequest) -> Self::Response {
        let shared = self.0.clone();
        futures_util::stream::once(async move {
            shared.exchange().await?.send(request).first_answer().await
        })
        .boxed()
    }
}
