//! A bare business connection for tests: netsvr frames over TCP, no client library.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use netsvr_protocol::{Codec, Frame, ToBusiness, ToGateway, pb};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A raw business connection.
pub struct Business {
    pub stream: TcpStream,
    buf: BytesMut,
    codec: Codec,
}

impl Business {
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::from_stream(TcpStream::connect(addr).await.unwrap())
    }

    pub fn from_stream(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: BytesMut::new(),
            codec: Codec::default(),
        }
    }

    pub async fn send(&mut self, message: ToGateway) {
        let mut out = BytesMut::new();
        message.encode(&mut out);
        self.stream.write_all(&out).await.unwrap();
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next frame from the gateway, or `None` when the connection closed.
    pub async fn next(&mut self) -> Option<ToBusiness> {
        loop {
            if let Some(frame) = self.codec.decode(&mut self.buf).unwrap() {
                match frame {
                    Frame::Command { cmd, body } => {
                        return Some(ToBusiness::decode(cmd, body).unwrap());
                    }
                    Frame::Heartbeat => panic!("the gateway never sends heartbeats"),
                }
            }
            let n =
                tokio::time::timeout(Duration::from_secs(5), self.stream.read_buf(&mut self.buf))
                    .await
                    .expect("timed out waiting for a frame from the gateway")
                    .unwrap_or(0);
            if n == 0 {
                return None;
            }
        }
    }

    /// Sends a request and returns the reply.
    pub async fn ask(&mut self, message: ToGateway) -> ToBusiness {
        self.send(message).await;
        self.next()
            .await
            .expect("connection closed before the reply")
    }

    /// Registers for `events` and asserts success; returns the connId.
    pub async fn register(&mut self, events: i32) -> String {
        match self
            .ask(ToGateway::Register(pb::RegisterReq { events }))
            .await
        {
            ToBusiness::Register(resp) => {
                assert_eq!(resp.code, 0, "{resp:?}");
                resp.conn_id
            }
            other => panic!("expected RegisterResp, got {other:?}"),
        }
    }

    /// Asserts the gateway closes this connection within `within`.
    pub async fn expect_closed(&mut self, within: Duration) {
        let mut scratch = [0u8; 1024];
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut scratch)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(_)) => continue,
                Err(_) => panic!("connection still open after {within:?}"),
            }
        }
    }
}
