//! One raw DNS query (hickory-proto messages over a socket), for tests that must see what a
//! resolver hides: the AA and TC flags, the response code, the authority section.

use std::{net::SocketAddr, str::FromStr, time::Duration};

use hickory_proto::{
    op::{Edns, Message, Query},
    rr::{Name, RData, Record, RecordType},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpStream, UdpSocket},
};

#[derive(Clone, Copy, Debug)]
pub enum Transport {
    /// Plain UDP: answers past 512 bytes come back truncated.
    Udp,
    /// UDP with EDNS advertising this payload size.
    UdpEdns(u16),
    Tcp,
}

const WAIT: Duration = Duration::from_secs(5);

/// Asks `server` for `name`'s `record_type` records and returns the whole response.
pub async fn ask(
    server: SocketAddr,
    name: &str,
    record_type: RecordType,
    transport: Transport,
) -> Message {
    let mut message = Message::query();
    message.add_query(Query::query(Name::from_str(name).unwrap(), record_type));
    if let Transport::UdpEdns(size) = transport {
        let mut edns = Edns::new();
        edns.set_max_payload(size);
        message.set_edns(edns);
    }
    let request = message.to_vec().unwrap();
    let bytes = tokio::time::timeout(WAIT, async {
        match transport {
            Transport::Udp | Transport::UdpEdns(_) => {
                let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                socket.send_to(&request, server).await.unwrap();
                let mut buf = vec![0; 65535];
                let (len, _) = socket.recv_from(&mut buf).await.unwrap();
                buf.truncate(len);
                buf
            }
            Transport::Tcp => {
                let mut stream = TcpStream::connect(server).await.unwrap();
                let len = u16::try_from(request.len()).unwrap();
                stream.write_all(&len.to_be_bytes()).await.unwrap();
                stream.write_all(&request).await.unwrap();
                let len = stream.read_u16().await.unwrap();
                let mut buf = vec![0; usize::from(len)];
                stream.read_exact(&mut buf).await.unwrap();
                buf
            }
        }
    })
    .await
    .expect("trustmail's DNS answers");
    let response = Message::from_vec(&bytes).unwrap();
    assert_eq!(response.metadata.id, message.metadata.id);
    response
}

/// The strings of each TXT record in `records`.
pub fn txt_strings(records: &[Record]) -> Vec<Vec<String>> {
    records
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|s| String::from_utf8(s.to_vec()).unwrap())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}
