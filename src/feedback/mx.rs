//! The feedback MX: an SMTP server (RFC 5321, on smtp-proto's command parser) where bounces,
//! complaints and DMARC reports arrive. It takes mail only for addresses trustmail issued
//! (`Mailroom::addressee`), refusing any other at RCPT time with 550, so it never accepts a
//! message it would have to bounce (no backscatter).
//!
//! Everything a client can make it hold is bounded: connections at once and per IP address,
//! recipients per transaction, the message size (552 past it, the rest read and dropped), the
//! wait for each command and for a whole message, and refused commands per connection. With a
//! certificate it offers STARTTLS; what a client pipelined before the TLS handshake is dropped
//! (RFC 3207 § 4.2), as is everything said before it once the session starts again.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use smtp_proto::{
    EXT_8BIT_MIME, EXT_ENHANCED_STATUS_CODES, EXT_PIPELINING, EXT_SIZE, EXT_START_TLS,
    EhloResponse, Error as ProtoError, Request, Response,
    request::receiver::{DataReceiver, RequestReceiver},
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore, watch},
    task::JoinSet,
    time::Instant,
};
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

use crate::{config::Feedback, error_chain::ErrorChain};

/// Where received mail goes: the service answers who an address names and takes the message.
#[async_trait::async_trait]
pub trait Mailroom: Send + Sync + 'static {
    type Addressee: Send + Sync;

    /// Whom `address` (a RCPT TO path) names; `None`: no one here (550). An error is told to
    /// the client as a temporary failure (451), so it tries again later.
    async fn addressee(&self, address: &str) -> Result<Option<Self::Addressee>, String>;

    /// Takes `message` for `to`; an error is a temporary failure (451).
    async fn deliver(&self, to: &[Self::Addressee], message: &[u8]) -> Result<(), String>;
}

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// The limits of one listener, from `[feedback]`.
#[derive(Debug, Clone)]
struct Limits {
    host: String,
    max_message_bytes: usize,
    max_connections_per_ip: usize,
    max_recipients: usize,
    command_timeout: Duration,
    data_timeout: Duration,
    max_errors: u32,
}

/// The running listener; `stop` ends it.
pub struct FeedbackMx {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl FeedbackMx {
    /// Binds `config.listen` and serves until `stop`. `tls`: the certificate to offer
    /// STARTTLS with.
    pub async fn start<M: Mailroom>(
        config: &Feedback,
        host: String,
        tls: Option<TlsAcceptor>,
        mailroom: Arc<M>,
    ) -> std::io::Result<Self> {
        let address = config.listen_addr().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "feedback.listen is empty")
        })?;
        let listener = TcpListener::bind(address).await?;
        let addr = listener.local_addr()?;
        let limits = Arc::new(Limits {
            host,
            max_message_bytes: usize::try_from(config.max_message_bytes).unwrap_or(usize::MAX),
            max_connections_per_ip: config.max_connections_per_ip as usize,
            max_recipients: config.max_recipients as usize,
            command_timeout: config.command_timeout(),
            data_timeout: config.data_timeout(),
            max_errors: config.max_errors,
        });
        let connections = Arc::new(Semaphore::new(config.max_connections as usize));
        let (stop, stopped) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tasks.spawn(accept_loop(
            listener,
            limits,
            connections,
            tls,
            mailroom,
            stopped,
        ));
        tracing::info!(%addr, "feedback MX listening");
        Ok(Self { addr, stop, tasks })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting; sessions in flight end at their next read.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Connections open per client address.
#[derive(Default)]
struct PerIp(Mutex<HashMap<IpAddr, usize>>);

impl PerIp {
    /// Counts one more connection from `ip`, unless it has `max` already.
    fn enter(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let mut open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(ip).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            table: self.clone(),
            ip,
        })
    }
}

/// One counted connection; dropping it uncounts it.
struct IpSlot {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.table.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

async fn accept_loop<M: Mailroom>(
    listener: TcpListener,
    limits: Arc<Limits>,
    connections: Arc<Semaphore>,
    tls: Option<TlsAcceptor>,
    mailroom: Arc<M>,
    mut stopped: watch::Receiver<bool>,
) {
    let per_ip = Arc::new(PerIp::default());
    let mut sessions = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.wait_for(|stop| *stop) => break,
        };
        // Reap finished sessions so the set stays as large as the open connections.
        while sessions.try_join_next().is_some() {}
        let (mut stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %ErrorChain(&e), "feedback MX: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let refusal = match (
            connections.clone().try_acquire_owned(),
            per_ip.enter(peer.ip(), limits.max_connections_per_ip),
        ) {
            (Ok(permit), Some(slot)) => Ok((permit, slot)),
            (Err(_), _) => Err((
                "busy",
                "421 4.3.2 Too many connections; try again later\r\n",
            )),
            (_, None) => Err((
                "per_ip",
                "421 4.7.0 Too many connections from your address; try again later\r\n",
            )),
        };
        let (permit, slot) = match refusal {
            Ok(admitted) => admitted,
            Err((reason, reply)) => {
                metrics::counter!("feedback_connections_refused_total", "reason" => reason)
                    .increment(1);
                sessions.spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(5), async {
                        let _ = stream.write_all(reply.as_bytes()).await;
                        let _ = stream.shutdown().await;
                    })
                    .await;
                });
                continue;
            }
        };
        let session = Session {
            limits: limits.clone(),
            mailroom: mailroom.clone(),
            tls: tls.clone(),
            _held: (permit, slot),
        };
        let span = tracing::info_span!("feedback_mx", peer = %peer.ip());
        let stopped = stopped.clone();
        sessions.spawn(
            async move {
                metrics::counter!("feedback_connections_total").increment(1);
                match session.run(stream, stopped).await {
                    Ok(()) => {}
                    Err(e) => tracing::debug!(error = %e, "feedback MX session ended"),
                }
            }
            .instrument(span),
        );
    }
    // Sessions see the stop at their next read; wait for them.
    while sessions.join_next().await.is_some() {}
}

struct Session<M: Mailroom> {
    limits: Arc<Limits>,
    mailroom: Arc<M>,
    tls: Option<TlsAcceptor>,
    _held: (OwnedSemaphorePermit, IpSlot),
}

/// Why a session ended early.
#[derive(Debug, thiserror::Error)]
enum SessionEnd {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("the client was silent past the timeout")]
    Timeout,
    #[error("the service is stopping")]
    Stopping,
    #[error("too many refused commands")]
    TooManyErrors,
    #[error("the TLS handshake failed: {0}")]
    Handshake(std::io::Error),
}

/// How a conversation over one stream ended.
enum Turn {
    /// QUIT, or the client went away.
    Done,
    /// STARTTLS was accepted: go on over TLS.
    StartTls,
}

impl<M: Mailroom> Session<M> {
    async fn run(
        self,
        mut stream: TcpStream,
        mut stopped: watch::Receiver<bool>,
    ) -> Result<(), SessionEnd> {
        let greeting = format!("220 {} ESMTP trustmail feedback\r\n", self.limits.host);
        stream.write_all(greeting.as_bytes()).await?;
        let tls_offered = self.tls.is_some();
        match self
            .converse(&mut stream, tls_offered, &mut stopped)
            .await?
        {
            Turn::Done => Ok(()),
            Turn::StartTls => {
                let Some(acceptor) = self.tls.clone() else {
                    return Ok(());
                };
                let mut tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                    .await
                    .map_err(|_| SessionEnd::Timeout)?
                    .map_err(SessionEnd::Handshake)?;
                // No greeting again: the client starts over with EHLO (RFC 3207 § 4.2).
                self.converse(&mut tls, false, &mut stopped).await?;
                Ok(())
            }
        }
    }

    /// Commands and messages over `stream` until QUIT, the client leaves, or STARTTLS.
    async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        offer_tls: bool,
        stopped: &mut watch::Receiver<bool>,
    ) -> Result<Turn, SessionEnd> {
        let limits = &*self.limits;
        let mut state = State::default();
        let mut commands = RequestReceiver::default();
        let mut chunk = vec![0u8; READ_CHUNK];
        let mut out = Vec::new();
        loop {
            let deadline = match &state.data {
                Some(data) => data.deadline.min(Instant::now() + limits.command_timeout),
                None => Instant::now() + limits.command_timeout,
            };
            if !out.is_empty() {
                stream.write_all(&out).await?;
                stream.flush().await?;
                out.clear();
            }
            // The only change ever sent is the stop (or the sender going: a stop too).
            let read = tokio::select! {
                read = tokio::time::timeout_at(deadline, stream.read(&mut chunk)) => Some(read),
                _ = stopped.changed() => None,
            };
            let Some(read) = read else {
                let _ = stream
                    .write_all(b"421 4.3.2 Service shutting down\r\n")
                    .await;
                return Err(SessionEnd::Stopping);
            };
            let n = match read {
                Ok(read) => read?,
                Err(_) => {
                    let _ = stream
                        .write_all(b"421 4.4.2 Timeout waiting for you; closing\r\n")
                        .await;
                    return Err(SessionEnd::Timeout);
                }
            };
            if n == 0 {
                return Ok(Turn::Done);
            }
            let mut bytes = chunk[..n].iter();
            while bytes.len() > 0 {
                if let Some(data) = &mut state.data {
                    if !data.ingest(&mut bytes, limits.max_message_bytes) {
                        continue;
                    }
                    let data = state.data.take().map(|d| d.into_message());
                    let reply = self.message_received(&mut state, data).await;
                    reply.write(&mut out)?;
                    continue;
                }
                let request = match commands.ingest(&mut bytes) {
                    Ok(request) => request.into_owned(),
                    Err(ProtoError::NeedsMoreData { .. }) => break,
                    Err(e) => {
                        refusal(&e).write(&mut out)?;
                        state.errors += 1;
                        if state.errors >= limits.max_errors {
                            out.extend_from_slice(b"421 4.7.0 Too many errors; closing\r\n");
                            stream.write_all(&out).await?;
                            return Err(SessionEnd::TooManyErrors);
                        }
                        continue;
                    }
                };
                match self
                    .command(request, &mut state, offer_tls, &mut out)
                    .await?
                {
                    Next::Go => {}
                    Next::Quit => {
                        stream.write_all(&out).await?;
                        stream.flush().await?;
                        return Ok(Turn::Done);
                    }
                    Next::StartTls => {
                        stream.write_all(&out).await?;
                        stream.flush().await?;
                        // Whatever else came with STARTTLS is dropped, unread.
                        return Ok(Turn::StartTls);
                    }
                }
                if state.errors >= limits.max_errors {
                    out.extend_from_slice(b"421 4.7.0 Too many errors; closing\r\n");
                    stream.write_all(&out).await?;
                    return Err(SessionEnd::TooManyErrors);
                }
            }
        }
    }

    /// One command's reply (into `out`) and what comes next.
    async fn command(
        &self,
        request: Request<String>,
        state: &mut State<M::Addressee>,
        offer_tls: bool,
        out: &mut Vec<u8>,
    ) -> Result<Next, SessionEnd> {
        let limits = &*self.limits;
        let reply = match request {
            Request::Ehlo { .. } => {
                state.reset();
                state.greeted = true;
                let mut ehlo = EhloResponse::new(limits.host.as_str());
                ehlo.capabilities =
                    EXT_PIPELINING | EXT_SIZE | EXT_8BIT_MIME | EXT_ENHANCED_STATUS_CODES;
                if offer_tls {
                    ehlo.capabilities |= EXT_START_TLS;
                }
                ehlo.size = limits.max_message_bytes;
                ehlo.write(&mut *out)?;
                return Ok(Next::Go);
            }
            Request::Helo { .. } | Request::Lhlo { .. } => {
                state.reset();
                state.greeted = true;
                reply(250, [2, 0, 0], limits.host.clone())
            }
            Request::StartTls if offer_tls => {
                reply(220, [2, 0, 0], "Ready to start TLS").write(&mut *out)?;
                return Ok(Next::StartTls);
            }
            Request::StartTls => {
                state.errors += 1;
                reply(502, [5, 5, 1], "STARTTLS is not offered here")
            }
            Request::Mail { from } => {
                if !state.greeted {
                    state.errors += 1;
                    reply(503, [5, 5, 1], "Say EHLO first")
                } else if state.mail.is_some() {
                    state.errors += 1;
                    reply(503, [5, 5, 1], "A transaction is already open")
                } else if from.size > limits.max_message_bytes {
                    reply(552, [5, 3, 4], "Message too large")
                } else {
                    state.mail = Some(from.address);
                    reply(250, [2, 1, 0], "OK")
                }
            }
            Request::Rcpt { to } => {
                if state.mail.is_none() {
                    state.errors += 1;
                    reply(503, [5, 5, 1], "Say MAIL first")
                } else if state.recipients.len() >= limits.max_recipients {
                    reply(452, [4, 5, 3], "Too many recipients; send the rest again")
                } else {
                    match self.mailroom.addressee(&to.address).await {
                        Ok(Some(addressee)) => {
                            state.recipients.push(addressee);
                            reply(250, [2, 1, 5], "OK")
                        }
                        Ok(None) => {
                            state.errors += 1;
                            metrics::counter!("feedback_recipients_refused_total").increment(1);
                            tracing::info!(rcpt = %to.address, "feedback MX: no such address");
                            reply(550, [5, 1, 1], "No such address here")
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "feedback MX: a recipient could not be looked up");
                            reply(
                                451,
                                [4, 3, 0],
                                "Cannot check that address now; try again later",
                            )
                        }
                    }
                }
            }
            Request::Data => {
                if state.mail.is_none() {
                    state.errors += 1;
                    reply(503, [5, 5, 1], "Say MAIL first")
                } else if state.recipients.is_empty() {
                    reply(554, [5, 5, 1], "No valid recipients")
                } else {
                    state.data = Some(Data::new(Instant::now() + limits.data_timeout));
                    reply(354, [0, 0, 0], "End data with <CR><LF>.<CR><LF>")
                }
            }
            Request::Bdat { .. } => {
                state.errors += 1;
                reply(502, [5, 5, 1], "CHUNKING is not offered here")
            }
            Request::Rset => {
                state.reset();
                reply(250, [2, 0, 0], "OK")
            }
            Request::Noop { .. } => reply(250, [2, 0, 0], "OK"),
            Request::Vrfy { .. } => reply(252, [2, 5, 0], "Cannot verify; send mail to find out"),
            Request::Help { .. } => {
                reply(214, [2, 0, 0], "This server takes feedback for trustmail")
            }
            Request::Quit => {
                reply(221, [2, 0, 0], "Bye").write(&mut *out)?;
                return Ok(Next::Quit);
            }
            Request::Auth { .. }
            | Request::Expn { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => {
                state.errors += 1;
                reply(502, [5, 5, 1], "Command not implemented")
            }
        };
        reply.write(&mut *out)?;
        Ok(Next::Go)
    }

    /// The reply to a message's end: taken, too large, or not taken now.
    async fn message_received(
        &self,
        state: &mut State<M::Addressee>,
        data: Option<Result<Vec<u8>, usize>>,
    ) -> Response<String> {
        let recipients = std::mem::take(&mut state.recipients);
        state.mail = None;
        match data {
            Some(Ok(message)) => match self.mailroom.deliver(&recipients, &message).await {
                Ok(()) => {
                    metrics::counter!("feedback_messages_total", "result" => "taken").increment(1);
                    reply(250, [2, 0, 0], "OK")
                }
                Err(e) => {
                    metrics::counter!("feedback_messages_total", "result" => "deferred")
                        .increment(1);
                    tracing::warn!(error = %e, "feedback MX: a message could not be taken");
                    reply(
                        451,
                        [4, 3, 0],
                        "Cannot take the message now; try again later",
                    )
                }
            },
            Some(Err(size)) => {
                metrics::counter!("feedback_messages_total", "result" => "too_large").increment(1);
                tracing::info!(
                    bytes = size,
                    "feedback MX: a message over the size limit was dropped"
                );
                reply(552, [5, 3, 4], "Message too large")
            }
            None => reply(451, [4, 3, 0], "No message"),
        }
    }
}

/// What follows a command.
enum Next {
    Go,
    Quit,
    StartTls,
}

/// One conversation's state.
struct State<A> {
    greeted: bool,
    /// The open transaction's reverse path.
    mail: Option<String>,
    recipients: Vec<A>,
    data: Option<Data>,
    errors: u32,
}

impl<A> Default for State<A> {
    fn default() -> Self {
        Self {
            greeted: false,
            mail: None,
            recipients: Vec::new(),
            data: None,
            errors: 0,
        }
    }
}

impl<A> State<A> {
    /// Ends the open transaction (RSET, a new EHLO).
    fn reset(&mut self) {
        self.mail = None;
        self.recipients.clear();
        self.data = None;
    }
}

/// A message's text as it arrives, dot-stuffing undone.
struct Data {
    receiver: DataReceiver,
    message: Vec<u8>,
    /// Bytes received in all, the dropped ones past the limit included.
    received: usize,
    /// Past the limit: the rest is counted, not kept.
    too_large: bool,
    deadline: Instant,
}

impl Data {
    fn new(deadline: Instant) -> Self {
        Self {
            receiver: DataReceiver::new(),
            message: Vec::new(),
            received: 0,
            too_large: false,
            deadline,
        }
    }

    /// Reads from `bytes`; true at the message's end. Past `max` the text is dropped as it
    /// comes, so that the client still gets its reply at the end.
    fn ingest(&mut self, bytes: &mut std::slice::Iter<'_, u8>, max: usize) -> bool {
        let before = bytes.len();
        let done = self.receiver.ingest(bytes, &mut self.message);
        self.received += before - bytes.len();
        if self.message.len() > max {
            self.too_large = true;
        }
        if self.too_large {
            self.message.clear();
        }
        done
    }

    /// The message, or the bytes received when it was over the limit.
    fn into_message(self) -> Result<Vec<u8>, usize> {
        if self.too_large {
            Err(self.received)
        } else {
            Ok(self.message)
        }
    }
}

fn reply(code: u16, esc: [u8; 3], message: impl Into<String>) -> Response<String> {
    Response::new(code, esc[0], esc[1], esc[2], message.into())
}

/// The reply to a command that does not parse.
fn refusal(error: &ProtoError) -> Response<String> {
    match error {
        ProtoError::UnknownCommand => reply(500, [5, 5, 2], "Command not recognized"),
        ProtoError::InvalidSenderAddress => reply(501, [5, 1, 7], "Bad sender address syntax"),
        ProtoError::InvalidRecipientAddress => {
            reply(501, [5, 1, 3], "Bad recipient address syntax")
        }
        ProtoError::SyntaxError { syntax } => reply(501, [5, 5, 4], format!("Syntax: {syntax}")),
        ProtoError::InvalidParameter { param } => {
            reply(501, [5, 5, 4], format!("Invalid parameter {param}"))
        }
        ProtoError::UnsupportedParameter { param } => {
            reply(504, [5, 5, 4], format!("Parameter {param} not supported"))
        }
        ProtoError::ResponseTooLong => reply(500, [5, 5, 6], "Line too long"),
        ProtoError::NeedsMoreData { .. } | ProtoError::InvalidResponse { .. } => {
            reply(500, [5, 5, 2], "Command not recognized")
        }
    }
}
