//! A plain SMTP client for driving the feedback MX command by command, so a test sees every
//! reply (lettre stops at the first refusal and hides the rest).

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{
        TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
};

pub struct SmtpClient {
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
}

impl SmtpClient {
    /// Connects and reads the greeting, which it returns.
    pub async fn connect(addr: SocketAddr) -> (Self, String) {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (read, write) = stream.into_split();
        let mut client = Self {
            read: BufReader::new(read),
            write,
        };
        let greeting = client.reply().await;
        (client, greeting)
    }

    /// Sends one command line and returns the whole reply (all lines of a multi-line one).
    pub async fn command(&mut self, line: &str) -> String {
        self.send_raw(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.write.write_all(bytes).await.unwrap();
    }

    /// One reply; empty when the server closed the connection.
    pub async fn reply(&mut self) -> String {
        let mut reply = String::new();
        loop {
            let mut line = String::new();
            let read =
                tokio::time::timeout(Duration::from_secs(15), self.read.read_line(&mut line))
                    .await
                    .expect("no reply from the SMTP server in time")
                    .unwrap();
            if read == 0 {
                return reply;
            }
            reply.push_str(&line);
            // `250-…` continues, `250 …` ends.
            if line.as_bytes().get(3) != Some(&b'-') {
                return reply;
            }
        }
    }

    /// EHLO, MAIL, RCPT, DATA and the text (dot-stuffed here): the reply to the text, or the
    /// first refusal before it.
    pub async fn deliver(&mut self, from: &str, to: &str, text: &str) -> String {
        for line in [
            "EHLO client.test".to_owned(),
            format!("MAIL FROM:<{from}>"),
            format!("RCPT TO:<{to}>"),
            "DATA".to_owned(),
        ] {
            let reply = self.command(&line).await;
            if !(reply.starts_with('2') || reply.starts_with('3')) {
                return reply;
            }
        }
        let mut data = String::new();
        for line in text.split_inclusive('\n') {
            let line = line.trim_end_matches(['\r', '\n']);
            if line.starts_with('.') {
                data.push('.');
            }
            data.push_str(line);
            data.push_str("\r\n");
        }
        data.push_str(".\r\n");
        self.send_raw(data.as_bytes()).await;
        self.reply().await
    }
}

/// Delivers `text` to `to` at `addr` over a connection of its own: the reply to the text.
pub async fn deliver(addr: SocketAddr, to: &str, text: &str) -> String {
    let (mut client, _) = SmtpClient::connect(addr).await;
    let reply = client.deliver("", to, text).await;
    client.command("QUIT").await;
    reply
}
