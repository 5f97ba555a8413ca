//! A minimal RESP client and a server over the DVV model, for the RESP
//! front end's tests.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use gyre_api::resp::{self, RespConfig};
use gyre_api::{Backend, Metrics};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::common::ModelBackend;

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A reply as a client decodes it.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    /// RESP2's null bulk string, `$-1`.
    Nil,
    /// RESP3's null, `_`.
    Null,
    Array(Vec<Reply>),
    Map(Vec<(Reply, Reply)>),
    Verbatim(String),
}

pub fn bulk(s: impl AsRef<[u8]>) -> Reply {
    Reply::Bulk(s.as_ref().to_vec())
}

pub fn ok() -> Reply {
    Reply::Simple("OK".into())
}

pub fn error(s: &str) -> Reply {
    Reply::Error(s.into())
}

impl Reply {
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Self::Bulk(b) => b.clone(),
            other => panic!("not a bulk string: {other:?}"),
        }
    }

    pub fn text(&self) -> String {
        match self {
            Self::Bulk(b) => String::from_utf8(b.clone()).unwrap(),
            Self::Verbatim(s) | Self::Simple(s) => s.clone(),
            other => panic!("not text: {other:?}"),
        }
    }

    pub fn items(&self) -> Vec<Reply> {
        match self {
            Self::Array(items) => items.clone(),
            other => panic!("not an array: {other:?}"),
        }
    }

    pub fn is_error_starting(&self, prefix: &str) -> bool {
        matches!(self, Self::Error(e) if e.starts_with(prefix))
    }
}

/// One reply at the start of `buf` and its length, if complete.
pub fn decode(buf: &[u8]) -> Option<(Reply, usize)> {
    let end = buf.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&buf[1..end]).unwrap();
    let mut at = end + 2;
    let reply = match buf[0] {
        b'+' => Reply::Simple(line.into()),
        b'-' => Reply::Error(line.into()),
        b':' => Reply::Int(line.parse().unwrap()),
        b'_' => Reply::Null,
        b'$' | b'=' => {
            let len: i64 = line.parse().unwrap();
            if len < 0 {
                Reply::Nil
            } else {
                let len = len as usize;
                if buf.len() < at + len + 2 {
                    return None;
                }
                let data = buf[at..at + len].to_vec();
                assert_eq!(&buf[at + len..at + len + 2], b"\r\n");
                at += len + 2;
                if buf[0] == b'=' {
                    let text = String::from_utf8(data).unwrap();
                    Reply::Verbatim(text.strip_prefix("txt:").unwrap().into())
                } else {
                    Reply::Bulk(data)
                }
            }
        }
        b'*' | b'%' => {
            let len: i64 = line.parse().unwrap();
            let items = if buf[0] == b'%' { len * 2 } else { len };
            let mut elements = Vec::new();
            for _ in 0..items.max(0) {
                let (element, used) = decode(&buf[at..])?;
                elements.push(element);
                at += used;
            }
            if buf[0] == b'%' {
                let mut pairs = Vec::new();
                let mut it = elements.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    pairs.push((k, v));
                }
                Reply::Map(pairs)
            } else {
                Reply::Array(elements)
            }
        }
        other => panic!("unexpected reply type {:?}", other as char),
    };
    Some((reply, at))
}

/// A multibulk request.
pub fn encode<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        let arg = arg.as_ref();
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A minimal Redis client.
pub struct Client {
    pub stream: TcpStream,
    pub buf: Vec<u8>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        Self {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    pub async fn reply(&mut self) -> Reply {
        loop {
            if let Some((reply, used)) = decode(&self.buf) {
                self.buf.drain(..used);
                return reply;
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = tokio::time::timeout(TIMEOUT, self.stream.read(&mut chunk))
                .await
                .expect("no reply in time")
                .unwrap();
            assert!(n > 0, "connection closed; unparsed {:?}", self.buf);
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub async fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Reply {
        self.send(&encode(args)).await;
        self.reply().await
    }

    /// Whether the server closed the connection (with nothing more to read).
    pub async fn closed(&mut self) -> bool {
        let mut chunk = [0u8; 1024];
        match tokio::time::timeout(TIMEOUT, self.stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => self.buf.is_empty(),
            Ok(Ok(_)) | Err(_) => false,
        }
    }
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<std::io::Result<()>>,
    pub metrics: Arc<Metrics>,
}

impl Server {
    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    pub async fn shutdown(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(TIMEOUT, self.task)
            .await
            .expect("serve did not return")
            .unwrap()
            .unwrap();
    }
}

pub async fn start_with<B: Backend>(backend: Arc<B>, config: RespConfig) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = Arc::new(Metrics::new());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(resp::serve(
        listener,
        backend,
        metrics.clone(),
        config,
        async move {
            let _ = stopped.await;
        },
    ));
    Server {
        addr,
        stop: Some(stop),
        task,
        metrics,
    }
}

pub async fn start() -> (Server, Arc<ModelBackend>) {
    let model = Arc::new(ModelBackend::new());
    (
        start_with(model.clone(), RespConfig::default()).await,
        model,
    )
}

pub fn calls(model: &ModelBackend) -> u64 {
    model.calls.load(Ordering::SeqCst)
}
