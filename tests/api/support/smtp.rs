//! An in-process SMTP server for tests: just enough of RFC 5321 for lettre over plain TCP
//! (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT). It accepts everything and hands each
//! message, with its envelope, to the test.
//!
//! Written here rather than taken from crates.io: mailin-embedded, the maintained embeddable
//! server, runs a blocking thread pool whose `serve()` never returns, so a test could not stop it.

use std::time::Duration;

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::mpsc,
    task::JoinHandle,
};

#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    /// The DATA as sent, dot-stuffing undone, ending in CRLF.
    pub data: String,
}

pub struct SmtpSink {
    port: u16,
    /// Recipients offered, refused ones included.
    offered: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    received: mpsc::UnboundedReceiver<ReceivedMail>,
    server: JoinHandle<()>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        Self::answering_rcpt(None).await
    }

    /// A relay that answers every RCPT TO with `reply` (e.g. a permanent `550 …`).
    pub async fn refusing(reply: &'static str) -> Self {
        Self::answering_rcpt(Some(reply)).await
    }

    /// A relay that answers RCPT TO with `reply` for `address` only, and takes the others.
    pub async fn refusing_one(address: &'static str, reply: &'static str) -> Self {
        Self::answering(Some((Some(address), reply))).await
    }

    async fn answering_rcpt(refusal: Option<&'static str>) -> Self {
        Self::answering(refusal.map(|reply| (None, reply))).await
    }

    /// `refusal`: the reply to RCPT TO, for one address (`Some`) or all (`None`).
    async fn answering(refusal: Option<(Option<&'static str>, &'static str)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (deliver, received) = mpsc::unbounded_channel();
        let offered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = offered.clone();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let deliver = deliver.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    // A client hanging up mid-conversation is its business, not the test's.
                    let _ = converse(stream, deliver, refusal, counter).await;
                });
            }
        });
        Self {
            port,
            offered,
            received,
            server,
        }
    }

    /// How many RCPT TO commands arrived, refused or not.
    pub fn recipients_offered(&self) -> usize {
        self.offered.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// `[mail] smtp_url` for a relay that is this sink.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub async fn next_mail(&mut self, within: Duration) -> ReceivedMail {
        tokio::time::timeout(within, self.received.recv())
            .await
            .expect("no mail reached the SMTP sink in time")
            .expect("the SMTP sink stopped")
    }

    /// Mail that has already arrived, without waiting.
    pub fn try_next_mail(&mut self) -> Option<ReceivedMail> {
        self.received.try_recv().ok()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn converse(
    stream: TcpStream,
    deliver: mpsc::UnboundedSender<ReceivedMail>,
    refusal: Option<(Option<&'static str>, &'static str)>,
    offered: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    loop {
        let line = read_line(&mut read).await?;
        if line.is_empty() {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") {
            b"250-sink.test\r\n250 8BITMIME\r\n"
        } else if command.starts_with("HELO") {
            b"250 sink.test\r\n"
        } else if command.starts_with("MAIL FROM:") {
            from = path(&line);
            to.clear();
            b"250 OK\r\n"
        } else if command.starts_with("RCPT TO:") {
            offered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let refused = refusal.filter(|(address, _)| {
                address.is_none_or(|address| path(&line).eq_ignore_ascii_case(address))
            });
            match refused {
                Some((_, reply)) => reply.as_bytes(),
                None => {
                    to.push(path(&line));
                    b"250 OK\r\n"
                }
            }
        } else if command == "DATA" {
            write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let data = read_data(&mut read).await?;
            let _ = deliver.send(ReceivedMail {
                from: std::mem::take(&mut from),
                to: std::mem::take(&mut to),
                data,
            });
            b"250 OK queued\r\n"
        } else if command == "RSET" {
            from.clear();
            to.clear();
            b"250 OK\r\n"
        } else if command == "NOOP" {
            b"250 OK\r\n"
        } else if command == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"502 not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
}

/// One line with its CRLF; empty at end of stream.
async fn read_line(read: &mut (impl AsyncBufReadExt + Unpin)) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    read.read_until(b'\n', &mut bytes).await?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

async fn read_data(read: &mut (impl AsyncBufReadExt + Unpin)) -> std::io::Result<String> {
    let mut data = String::new();
    loop {
        let line = read_line(read).await?;
        if line.is_empty() || line == ".\r\n" {
            return Ok(data);
        }
        data.push_str(line.strip_prefix('.').unwrap_or(&line));
    }
}

/// `MAIL FROM:<a@b> SIZE=1` → `a@b`.
fn path(line: &str) -> String {
    let start = line.find('<').map_or(0, |i| i + 1);
    let end = line[start..].find('>').map_or(line.len(), |i| start + i);
    line[start..end].to_owned()
}
