//! Connections to the operator's configured resolvers, shared by every lookup in flight: a few UDP
//! sockets per resolver, each on a random port and replaced after a while, and a couple of
//! long-lived TCP connections per resolver (for truncated answers, or for every query with
//! `dns.transport = "tcp"`), made again when the server closes them.
//!
//! Why sharing is safe here: a fresh UDP socket on a random port for every query is hickory's
//! defence against off-path answer spoofing (RFC 5452: the attacker must guess the port as well as
//! the 16-bit query id). It is used only for `dns.resolvers`, servers the operator names and runs
//! for trustmail; with the system's resolvers (`dns.resolvers` empty) lookups keep hickory's socket
//! per query. A shared UDP socket still has a random port (the kernel's ephemeral port choice,
//! random on Linux), and keeps it for at most [`UDP_QUERIES_PER_SOCKET`] queries or
//! [`UDP_SOCKET_LIFETIME`], so the port is a moving target; the socket is connected to the
//! resolver, so the kernel drops datagrams from any other address or port; and an answer counts
//! only if it carries the id of a query in flight on that socket and repeats that query's question
//! (a mismatch fails the lookup, temporarily, rather than letting a forged answer through). Over
//! TCP an off-path attacker cannot inject an answer at all (the handshake and the sequence numbers
//! see to that), so keeping a connection open gives nothing away.
//!
//! Why share at all: a socket per query costs a bind (with retries for a free random port), a
//! registration with the runtime's poller and a close; sharing saves about a quarter of a lookup's
//! own CPU (`bench/dns_sweep.sh`). Unlike pipelined TCP, a shared UDP socket keeps every query
//! independent: a resolver that answers a TCP connection's queries in order lets one slow answer
//! hold up those behind it; over UDP each answer arrives when it is ready.
//!
//! What sharing must not cost is datagrams. A socket per query paces itself (each query first pays
//! for its socket) and never holds more than one answer; shared sockets send as fast as lookups
//! arrive, and a datagram that finds a receive buffer full is dropped, its lookup then waiting out
//! its timeout. In `bench/dns_sweep.sh` the sweep's opening burst (a few hundred queries at once)
//! overflowed BIND's receive buffer. So a resolver has at most [`UDP_IN_FLIGHT_PER_RESOLVER`]
//! queries from this process sent over UDP and unanswered within [`UDP_BURST_WINDOW`] (lookups
//! beyond that wait their turn, briefly: a slow query stops counting after the window, so slow
//! domains cannot hold up the rest); each shared socket asks for [`UDP_RECEIVE_BUFFER`] for the
//! answers (the kernel grants up to its `net.core.rmem_max`); and each socket's outgoing queue has
//! room for every query the resolver may have in flight.
//!
//! Everything DNS is hickory's: the resolver above (server pool, timeouts, negative answers, CNAME
//! chains, TCP after a truncated answer) and the transport below (a [`DnsMultiplexer`], which
//! matches answers to the queries in flight by id, over a [`TcpClientStream`] or over
//! [`ConnectedUdp`], this file's connected UDP socket). What this file adds is the sharing: the
//! resolver's name server keeps a list of connections and makes a new one whenever none is usable
//! (at start, by every lookup that arrives before the first connect finishes; after any failed
//! query), so it would open many connections and keep those the server has since closed. Here every
//! such "connection" is a handle on the shared sockets of its resolver and protocol, each of which
//! is made once (lookups that arrive meanwhile wait for it) and made again when it is closed or,
//! for UDP, used up.

use std::{
    collections::HashMap,
    future::Future,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use futures_util::{Stream, StreamExt, stream::BoxStream};
use hickory_resolver::{
    ConnectionProvider, PoolContext,
    config::{ConnectionConfig, ProtocolConfig},
    net::{
        BufDnsStreamHandle, NetError,
        runtime::{RuntimeProvider, Spawn, TokioRuntimeProvider, TokioTime},
        tcp::{TcpClientStream, TcpStream},
        xfer::{
            DnsClientStream, DnsExchange, DnsHandle, DnsMultiplexer, FirstAnswer, StreamReceiver,
        },
    },
    proto::op::{DnsRequest, DnsResponse, SerialMessage},
};
use tokio::{io::ReadBuf, net::UdpSocket, sync::Semaphore};

/// hickory's [`ConnectionProvider`] for the configured resolvers: for every lookup to a
/// resolver address, the same [`UDP_SOCKETS_PER_RESOLVER`] UDP sockets or
/// [`TCP_CONNECTIONS_PER_RESOLVER`] TCP connections.
#[derive(Clone, Default)]
pub(super) struct SharedConnections {
    runtime: TokioRuntimeProvider,
    connections: Arc<Mutex<HashMap<(SocketAddr, Transport), SharedConnection>>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    fn slots(self) -> usize {
        match self {
            Transport::Udp => UDP_SOCKETS_PER_RESOLVER,
            Transport::Tcp => TCP_CONNECTIONS_PER_RESOLVER,
        }
    }
}

/// UDP sockets per resolver, taken in turn by the queries.
pub const UDP_SOCKETS_PER_RESOLVER: usize = 4;
/// Queries sent over UDP to one resolver and not yet answered within [`UDP_BURST_WINDOW`], over
/// all its sockets: as many as dnsperf keeps outstanding by default (100) and a little more,
/// which a server's default receive buffer holds.
pub const UDP_IN_FLIGHT_PER_RESOLVER: usize = 128;
/// How long a query counts against [`UDP_IN_FLIGHT_PER_RESOLVER`] at most: a resolver answers
/// what it knows (its cache, its own zones) well within it, so a query older than that has left
/// its receive buffer and is being resolved, which may take up to the lookup's timeout.
pub const UDP_BURST_WINDOW: Duration = Duration::from_millis(100);
/// The receive buffer each shared UDP socket asks for: room for the answers of its queries in
/// flight, at the few kilobytes of kernel memory each datagram takes, many times over.
pub const UDP_RECEIVE_BUFFER: usize = 1 << 20;
/// Queries a UDP socket carries before a new socket, on a new random port, takes its place.
pub const UDP_QUERIES_PER_SOCKET: usize = 1024;
/// How long a UDP socket is used at most, however few queries it carried.
pub const UDP_SOCKET_LIFETIME: Duration = Duration::from_secs(60);
/// TCP connections per resolver, taken in turn by the queries: two let both runtime threads (and
/// the resolver's) read answers at once, and halve the requests each connection's multiplexer
/// walks on every wake-up; `bench/dns_sweep.sh` measured 2 ahead of 1 and of 4.
pub const TCP_CONNECTIONS_PER_RESOLVER: usize = 2;

impl ConnectionProvider for SharedConnections {
    type Conn = SharedConnection;
    type FutureConn = Pin<Box<dyn Future<Output = Result<SharedConnection, NetError>> + Send>>;
    type RuntimeProvider = TokioRuntimeProvider;

    fn new_connection(
        &self,
        ip: IpAddr,
        config: &ConnectionConfig,
        cx: &PoolContext,
    ) -> Result<Self::FutureConn, NetError> {
        let transport = match config.protocol {
            ProtocolConfig::Udp => Transport::Udp,
            ProtocolConfig::Tcp => Transport::Tcp,
            ref other => {
                return Err(NetError::from(format!(
                    "{other:?} is not a transport for configured resolvers"
                )));
            }
        };
        let address = SocketAddr::new(ip, config.port);
        let connection = self
            .connections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry((address, transport))
            .or_insert_with(|| {
                SharedConnection(Arc::new(Shared {
                    address,
                    transport,
                    in_flight: (transport == Transport::Udp)
                        .then(|| Arc::new(Semaphore::new(UDP_IN_FLIGHT_PER_RESOLVER))),
                    timeout: cx.options.timeout,
                    max_in_flight: cx.options.max_active_requests,
                    runtime: self.runtime.clone(),
                    slots: (0..transport.slots()).map(|_| Slot::default()).collect(),
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

/// A handle on the sockets to a resolver over one transport; a query sent through it goes over
/// the next socket in turn, made again first if it was closed or, for UDP, used up.
#[derive(Clone)]
pub(super) struct SharedConnection(Arc<Shared>);

struct Shared {
    address: SocketAddr,
    transport: Transport,
    /// For UDP, a permit per query in flight (see [`UDP_IN_FLIGHT_PER_RESOLVER`]).
    in_flight: Option<Arc<Semaphore>>,
    timeout: Duration,
    max_in_flight: usize,
    runtime: TokioRuntimeProvider,
    slots: Vec<Slot>,
    next: AtomicUsize,
}

#[derive(Default)]
struct Slot {
    open: Mutex<Option<Open>>,
    /// Held while connecting, so that lookups arriving meanwhile share that connect.
    connecting: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
struct Open {
    exchange: DnsExchange<TokioRuntimeProvider>,
    /// Set when the socket's I/O task ends (the server closed it, or it failed).
    closed: Arc<AtomicBool>,
    /// Queries sent over it so far, and when it was made: a UDP socket is replaced once either
    /// passes its limit (it is then dropped here, and closes once its last query is answered or
    /// timed out).
    sent: Arc<AtomicUsize>,
    opened: Instant,
}

impl Slot {
    /// The slot's socket for one more query, if it is open and not used up.
    fn take(&self, transport: Transport) -> Option<DnsExchange<TokioRuntimeProvider>> {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let open = open.as_ref()?;
        if open.closed.load(Ordering::Acquire) {
            return None;
        }
        let sent = open.sent.fetch_add(1, Ordering::Relaxed);
        if transport == Transport::Udp
            && (sent >= UDP_QUERIES_PER_SOCKET || open.opened.elapsed() >= UDP_SOCKET_LIFETIME)
        {
            return None;
        }
        Some(open.exchange.clone())
    }
}

impl Shared {
    /// The next socket in turn: open, or made again.
    async fn exchange(&self) -> Result<DnsExchange<TokioRuntimeProvider>, NetError> {
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        if let Some(exchange) = slot.take(self.transport) {
            return Ok(exchange);
        }
        let _connecting = slot.connecting.lock().await;
        if let Some(exchange) = slot.take(self.transport) {
            return Ok(exchange);
        }
        let (exchange, closed) = match self.transport {
            Transport::Udp => {
                let (stream, sender) = ConnectedUdp::connect(self.address).await?;
                self.exchange_over(DnsMultiplexer::new(stream, sender))
            }
            Transport::Tcp => {
                let tcp = self
                    .runtime
                    .connect_tcp(self.address, None, Some(self.timeout))
                    .await?;
                // The outgoing buffer holds as many queries as may be in flight, so that a
                // burst is queued rather than refused while the connection's writes wait.
                let (stream, sender) =
                    TcpStream::from_stream_with_buffer_size(tcp, self.address, self.max_in_flight);
                self.exchange_over(DnsMultiplexer::new(
                    TcpClientStream::from_stream(stream),
                    sender,
                ))
            }
        };
        *slot.open.lock().unwrap_or_else(|p| p.into_inner()) = Some(Open {
            exchange: exchange.clone(),
            closed,
            sent: Arc::new(AtomicUsize::new(1)),
            opened: Instant::now(),
        });
        Ok(exchange)
    }

    /// An exchange over the multiplexer, whose I/O task runs in the background, and the flag
    /// that task sets when it ends.
    fn exchange_over<S: DnsClientStream<Time = TokioTime>>(
        &self,
        multiplexer: DnsMultiplexer<S>,
    ) -> (DnsExchange<TokioRuntimeProvider>, Arc<AtomicBool>) {
        let (exchange, io) = DnsExchange::from_stream(
            multiplexer
                .with_timeout(self.timeout)
                .with_max_active_requests(self.max_in_flight),
        );
        let closed = Arc::new(AtomicBool::new(false));
        let on_close = closed.clone();
        self.runtime.create_handle().spawn_bg(async move {
            io.await;
            on_close.store(true, Ordering::Release);
        });
        (exchange, closed)
    }
}

impl DnsHandle for SharedConnection {
    type Response = BoxStream<'static, Result<DnsResponse, NetError>>;
    type Runtime = TokioRuntimeProvider;

    fn send(&self, request: DnsRequest) -> Self::Response {
        let shared = self.0.clone();
        futures_util::stream::once(async move {
            let permit = match &shared.in_flight {
                Some(in_flight) => Some(
                    in_flight
                        .clone()
                        .acquire_owned()
                        .await
                        .map_err(|_| NetError::from("the resolver's connections are closed"))?,
                ),
                None => None,
            };
            let question = request.queries.clone();
            let answer = shared.exchange().await?.send(request).first_answer();
            futures_util::pin_mut!(answer);
            let response = match permit {
                // A query not answered within UDP_BURST_WINDOW is no longer waiting in the
                // resolver's receive buffer (it was read, and is being resolved): its permit goes
                // to the next query, so slow domains never hold up the others' lookups.
                Some(permit) => match tokio::time::timeout(UDP_BURST_WINDOW, &mut answer).await {
                    Ok(response) => response,
                    Err(_) => {
                        drop(permit);
                        answer.await
                    }
                },
                None => answer.await,
            }?;
            // The multiplexer matches answers by id alone.
            if response.queries != question {
                return Err(NetError::from(format!(
                    "an answer from {} for another question than the one asked; ignored",
                    shared.address
                )));
            }
            Ok(response)
        })
        .boxed()
    }
}

/// A UDP socket on a random port, connected to the resolver (so the kernel passes on only its
/// datagrams), as the stream a [`DnsMultiplexer`] sends its queries over and reads answers from.
/// hickory's own UDP stream is meant for a socket per query: it queues 32 queries at most,
/// reads nothing while a send waits, and takes datagrams from anywhere.
pub(super) struct ConnectedUdp {
    socket: UdpSocket,
    resolver: SocketAddr,
    outbound: StreamReceiver,
}

/// The largest answer read: the EDNS payload hickory offers is smaller; a longer answer comes
/// truncated and is asked again over TCP.
const MAX_ANSWER: usize = 4096;

impl ConnectedUdp {
    async fn connect(resolver: SocketAddr) -> Result<(Self, BufDnsStreamHandle), NetError> {
        let local: SocketAddr = match resolver {
            SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(resolver),
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        socket.set_nonblocking(true)?;
        // Best effort: a smaller buffer than asked for still works, with less room.
        if let Err(e) = socket.set_recv_buffer_size(UDP_RECEIVE_BUFFER) {
            tracing::debug!(error = %e, "the DNS socket's receive buffer stays at the default");
        }
        socket.bind(&local.into())?;
        let socket = UdpSocket::from_std(socket.into())?;
        socket.connect(resolver).await?;
        // Room for every query holding one of the resolver's places (a query waits in this queue
        // only until it is sent, well within its place's window), so a send never finds it full.
        let (sender, outbound) =
            BufDnsStreamHandle::with_buffer_size(resolver, UDP_IN_FLIGHT_PER_RESOLVER);
        Ok((
            Self {
                socket,
                resolver,
                outbound,
            },
            sender,
        ))
    }
}

impl Stream for ConnectedUdp {
    type Item = Result<SerialMessage, NetError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        // Send what is queued, until the socket cannot take more for now.
        while let Poll::Ready(Some(query)) = Pin::new(&mut this.outbound).poll_peek(cx) {
            match this.socket.poll_send(cx, query.bytes()) {
                Poll::Pending => break,
                // Refused (the resolver's port is closed) or the network is down: the
                // multiplexer fails the queries in flight and the socket is made again.
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(Ok(_)) => {
                    let _sent = Pin::new(&mut this.outbound).poll_next(cx);
                }
            }
        }
        let mut buffer = [0u8; MAX_ANSWER];
        let mut answer = ReadBuf::new(&mut buffer);
        match futures_util::ready!(this.socket.poll_recv(cx, &mut answer)) {
            Ok(()) => Poll::Ready(Some(Ok(SerialMessage::new(
                answer.filled().to_vec(),
                this.resolver,
            )))),
            Err(e) => Poll::Ready(Some(Err(e.into()))),
        }
    }
}

impl DnsClientStream for ConnectedUdp {
    type Time = TokioTime;

    fn name_server_addr(&self) -> SocketAddr {
        self.resolver
    }
}
