//! trustmail's authoritative DNS for the regions' DKIM zones (`[dkim_dns]`): SOA and NS at each
//! apex, and `<selector>.<zone>` TXT with the key behind it. A front end beside `api` that
//! answers from the service's in-memory copy of the keys (`Service::published_dkim_keys`), so no
//! query reaches the store; a refresh loop reloads it when the store's keys change on any
//! replica. Work is bounded: a fixed number of UDP workers, a TCP connection cap and idle
//! timeout, a rate per source prefix and one for all (README § DKIM DNS).

mod limits;
mod zones;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream, UdpSocket},
    sync::{OwnedSemaphorePermit, Semaphore, watch},
    task::JoinSet,
};

use crate::{config, error_chain::ErrorChain, service::Service};
use limits::{Limits, Verdict};
use zones::Zones;

/// The largest UDP query read; anything longer is cut and then fails to parse.
const UDP_QUERY_BUFFER: usize = 4096;
/// After an accept error (out of file descriptors, say), the pause before the next accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum DkimDnsError {
    #[error("dkim_dns.listen: `{0}` is not IP:PORT")]
    BadListen(String),
    #[error("cannot listen on {address} for DNS")]
    Bind {
        address: String,
        source: std::io::Error,
    },
    #[error("`{0}` is not a DNS name")]
    BadName(String),
    #[error("cannot read the DKIM keys to publish")]
    Load(#[source] crate::service::ServiceError),
}

/// Counts a query that got no answer, by why.
fn dropped(reason: &'static str) {
    metrics::counter!("dkim_dns_dropped_total", "reason" => reason).increment(1);
}

/// What every listener shares.
struct Context {
    service: Service,
    zones: Zones,
    limits: Limits,
}

impl Context {
    fn udp_reply(&self, bytes: &[u8], source: SocketAddr) -> Option<Vec<u8>> {
        let verdict = self.limits.udp(source.ip());
        if let Verdict::Drop(reason) = verdict {
            dropped(reason);
            return None;
        }
        let Some(request) = zones::parse(bytes) else {
            dropped("malformed");
            return None;
        };
        if verdict == Verdict::Slip {
            metrics::counter!("dkim_dns_slipped_total").increment(1);
            return zones::truncated(&request);
        }
        self.zones
            .answer(self.service.published_dkim_keys(), &request, true)
    }

    fn tcp_reply(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        if !self.limits.global() {
            dropped("global_rate");
            return None;
        }
        let Some(request) = zones::parse(bytes) else {
            dropped("malformed");
            return None;
        };
        self.zones
            .answer(self.service.published_dkim_keys(), &request, false)
    }
}

/// The running server: UDP and TCP on one address.
pub struct DkimDns {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl DkimDns {
    /// Loads the keys, binds `config.listen` (port 0 picks a port free for both UDP and TCP)
    /// and starts answering.
    pub async fn start(config: &config::DkimDns, service: Service) -> Result<Self, DkimDnsError> {
        let address: SocketAddr = config
            .listen
            .parse()
            .map_err(|_| DkimDnsError::BadListen(config.listen.clone()))?;
        let zones =
            Zones::new(service.settings().regions.iter().filter_map(|region| {
                Some((service.dkim_zone(&region.name)?, region.name.clone()))
            }))?;
        // The fingerprint before the load: a change in between is seen as one on the next tick.
        let fingerprint = service
            .dkim_keys_fingerprint()
            .await
            .map_err(DkimDnsError::Load)?;
        service
            .reload_published_dkim_keys()
            .await
            .map_err(DkimDnsError::Load)?;
        let (udp, tcp, addr) = bind_udp_and_tcp(address).await?;
        let context = Arc::new(Context {
            service: service.clone(),
            zones,
            limits: Limits::new(config),
        });
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let udp = Arc::new(udp);
        for _ in 0..config.udp_workers {
            tasks.spawn(udp_worker(udp.clone(), context.clone(), stopped.clone()));
        }
        tasks.spawn(tcp_listener(
            tcp,
            context,
            Arc::new(Semaphore::new(config.max_tcp_connections as usize)),
            config.tcp_idle_timeout(),
            stopped.clone(),
        ));
        tasks.spawn(keep_fresh(
            service,
            config.refresh_interval(),
            fingerprint,
            stopped,
        ));
        tracing::info!(%addr, "DKIM DNS listening (UDP and TCP)");
        Ok(Self { addr, stop, tasks })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting queries and waits for the ones in flight.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while let Some(done) = self.tasks.join_next().await {
            if let Err(e) = done {
                tracing::warn!(error = %ErrorChain(&e), "DKIM DNS did not stop cleanly");
            }
        }
    }
}

fn bind_error(address: SocketAddr) -> impl Fn(std::io::Error) -> DkimDnsError {
    move |source| DkimDnsError::Bind {
        address: address.to_string(),
        source,
    }
}

/// A UDP socket and a TCP listener on the same port. With port 0 the kernel picks the UDP port,
/// which may be taken for TCP, so a few ports are tried.
async fn bind_udp_and_tcp(
    address: SocketAddr,
) -> Result<(UdpSocket, TcpListener, SocketAddr), DkimDnsError> {
    let attempts = if address.port() == 0 { 20 } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let udp = UdpSocket::bind(address)
            .await
            .map_err(bind_error(address))?;
        let bound = udp.local_addr().map_err(bind_error(address))?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp, bound)),
            Err(e) => last = Some(e),
        }
    }
    Err(bind_error(address)(last.unwrap_or_else(|| {
        std::io::Error::other("no port free for both UDP and TCP")
    })))
}

/// A source no answer may go to (it would reach nobody, or everybody).
fn unanswerable(source: SocketAddr) -> bool {
    let ip = source.ip();
    source.port() == 0
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip == std::net::Ipv4Addr::BROADCAST
}

/// One of `udp_workers`: reads a query, answers it, reads the next. Answers come from memory,
/// so a worker never waits on anything but the socket.
async fn udp_worker(
    socket: Arc<UdpSocket>,
    context: Arc<Context>,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = vec![0; UDP_QUERY_BUFFER];
    loop {
        let (len, source) = tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok(received) => received,
                Err(e) => {
                    tracing::debug!(error = %e, "DKIM DNS UDP receive failed");
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        if unanswerable(source) {
            dropped("malformed");
            continue;
        }
        if let Some(reply) = context.udp_reply(&buf[..len], source)
            && let Err(e) = socket.send_to(&reply, source).await
        {
            tracing::debug!(error = %e, %source, "DKIM DNS cannot send an answer");
        }
    }
}

/// Accepts TCP connections, at most `connections` at once: one past the cap is closed at once.
async fn tcp_listener(
    listener: TcpListener,
    context: Arc<Context>,
    connections: Arc<Semaphore>,
    idle: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut served = JoinSet::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "DKIM DNS cannot accept a TCP connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        match connections.clone().try_acquire_owned() {
            Ok(permit) => {
                served.spawn(tcp_connection(
                    stream,
                    context.clone(),
                    permit,
                    idle,
                    stop.clone(),
                ));
            }
            Err(_) => {
                dropped("tcp_connections");
                drop(stream);
            }
        }
        while served.try_join_next().is_some() {}
    }
    // Connections stop at their next read; the one answer in flight is written first.
    while served.join_next().await.is_some() {}
}

/// Serves one TCP connection: length-prefixed queries, each read within `idle`.
async fn tcp_connection(
    mut stream: TcpStream,
    context: Arc<Context>,
    _permit: OwnedSemaphorePermit,
    idle: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let query = tokio::select! {
            read = tokio::time::timeout(idle, read_frame(&mut stream)) => match read {
                Ok(Ok(query)) => query,
                // Closed, broken, or silent for too long.
                _ => return,
            },
            _ = stop.changed() => return,
        };
        let Some(reply) = context.tcp_reply(&query) else {
            continue;
        };
        let Ok(len) = u16::try_from(reply.len()) else {
            continue;
        };
        let mut frame = Vec::with_capacity(reply.len() + 2);
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(&reply);
        if tokio::time::timeout(idle, stream.write_all(&frame))
            .await
            .is_err()
        {
            return;
        }
    }
}

async fn read_frame(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let len = stream.read_u16().await?;
    let mut query = vec![0; usize::from(len)];
    stream.read_exact(&mut query).await?;
    Ok(query)
}

/// Reloads the published keys when this process asks (a change it could not apply itself) or
/// when the store's fingerprint moves (a change on any replica); a failure keeps the last copy.
async fn keep_fresh(
    service: Service,
    interval: Duration,
    mut last: crate::store::DkimKeysFingerprint,
    mut stop: watch::Receiver<bool>,
) {
    let mut failing = false;
    loop {
        let asked = tokio::select! {
            _ = tokio::time::sleep(interval) => false,
            _ = service.published_dkim_keys().changed() => true,
            _ = stop.changed() => return,
        };
        let refreshed = async {
            let fingerprint = service.dkim_keys_fingerprint().await?;
            if asked || fingerprint != last {
                service.reload_published_dkim_keys().await?;
                last = fingerprint;
            }
            Ok::<_, crate::service::ServiceError>(())
        }
        .await;
        match refreshed {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("DKIM DNS reads the keys again");
            }
            Ok(()) => {}
            // Logged once per outage: the last copy is still served meanwhile.
            Err(e) if !failing => {
                failing = true;
                metrics::counter!("dkim_dns_refresh_failures_total").increment(1);
                tracing::warn!(error = %ErrorChain(&e), "DKIM DNS cannot refresh the keys; serving the last copy");
            }
            Err(_) => {
                metrics::counter!("dkim_dns_refresh_failures_total").increment(1);
            }
        }
    }
}
