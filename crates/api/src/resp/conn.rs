//! One client connection: read, answer every complete command in order,
//! write the replies once per batch, repeat.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::command::{Server, Session};
use super::parse::Parser;
use super::reply::Out;
use crate::Backend;

/// The input buffer starts at this size and grows only as bytes arrive.
const READ_CHUNK: usize = 16 * 1024;
/// Replies are written mid-batch once this many bytes wait, so a long
/// pipeline of large values does not pile up in memory.
const FLUSH_AT: usize = 1 << 20;
/// Buffers grown beyond this by one large command are given back once
/// empty.
const KEEP_CAPACITY: usize = 1 << 20;
/// The most bytes one connection may hold unanswered: Redis's
/// `client-query-buffer-limit`.
const QUERY_BUFFER_LIMIT: usize = 1 << 30;
/// After shutdown, how long a client that does not read its replies may
/// hold the server up.
const SHUTDOWN_WRITE_GRACE: Duration = Duration::from_secs(5);

/// At most this long, and this many bytes, are read and discarded from a
/// client the server hangs up on.
const HANG_UP_GRACE: Duration = Duration::from_millis(200);
const HANG_UP_DISCARD: usize = 1 << 20;

/// Counts a connection, and lists it, while it lives.
struct Connected<'a, B>(&'a Server<B>, u64);

impl<B> Drop for Connected<'_, B> {
    fn drop(&mut self) {
        self.0.connected_clients.fetch_sub(1, Ordering::Relaxed);
        self.0.clients.close(self.1);
    }
}

/// Serves one connection until the client leaves, sends `QUIT` or breaks
/// the protocol, or `stop` turns true (then after the current command).
pub(crate) async fn run<B: Backend, S: Stream>(
    server: Arc<Server<B>>,
    mut stream: S,
    peer: Option<SocketAddr>,
    certified: Option<crate::auth::User>,
    mut stop: watch::Receiver<bool>,
) {
    server.connections_received.fetch_add(1, Ordering::Relaxed);
    server.connected_clients.fetch_add(1, Ordering::Relaxed);
    let id = server.next_client_id.fetch_add(1, Ordering::Relaxed);
    let entry = server.clients.open(id, peer);
    let _connected = Connected(&server, id);
    let mut session = Session::new(id, &server.config, entry, peer);
    if let Some(user) = certified {
        // A verified client certificate: authenticated as its user.
        session.entry.authenticated(user.name());
        session.user = Some(user);
        session.authenticated = true;
    }
    let mut parser = Parser::new();
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut out = Out::new();
    let mut last_command = tokio::time::Instant::now();
    loop {
        // Answer every command complete in the input.
        let mut close = false;
        let mut commands = 0;
        loop {
            let limits = session.limits(&server.config);
            match parser.parse(&input, limits) {
                Ok(Some(len)) => {
                    server
                        .execute(&mut session, parser.args(&input), &mut out)
                        .await;
                    input.advance(len);
                    commands += 1;
                    let stopping = *stop.borrow();
                    if session.quit || stopping {
                        close = true;
                        break;
                    }
                    if out.buf.len() >= FLUSH_AT && !flush(&mut stream, &mut out, &mut stop).await {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    // The framing is lost: say why and hang up.
                    out.error(&format!("ERR {e}"));
                    if flush(&mut stream, &mut out, &mut stop).await {
                        hang_up(&mut stream).await;
                    }
                    return;
                }
            }
        }
        if commands > 0 {
            last_command = tokio::time::Instant::now();
            server
                .commands_processed
                .fetch_add(commands, Ordering::Relaxed);
        }
        if !out.buf.is_empty() && !flush(&mut stream, &mut out, &mut stop).await {
            return;
        }
        if close {
            hang_up(&mut stream).await;
            return;
        }
        if out.buf.capacity() > KEEP_CAPACITY {
            out.buf = Vec::with_capacity(READ_CHUNK);
        }
        if input.is_empty() && input.capacity() > KEEP_CAPACITY {
            input = BytesMut::with_capacity(READ_CHUNK);
        }
        if input.len() >= QUERY_BUFFER_LIMIT {
            out.error("ERR Protocol error: query buffer limit exceeded");
            if flush(&mut stream, &mut out, &mut stop).await {
                hang_up(&mut stream).await;
            }
            return;
        }
        if input.capacity() - input.len() < READ_CHUNK / 4 {
            // Amortised doubling: a large argument costs O(its length).
            input.reserve(READ_CHUNK.max(input.len()));
        }
        tokio::select! {
            biased;
            read = stream.read_buf(&mut input) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            // An idle connection closes at shutdown (a dropped sender too).
            () = stopped(&mut stop) => return,
            () = idle(server.config.idle_timeout.map(|t| last_command + t)) => {
                tracing::debug!(client = id, "resp: idle too long; closing");
                return;
            }
        }
    }
}

/// Sleeps until `deadline`; without one, for ever.
async fn idle(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What a connection runs over: TCP, or TLS over TCP.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Stream for S {}

/// Answers a connection over `maxclients` as Redis does, and closes it.
pub(crate) async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream
            .write_all(b"-ERR max number of clients reached\r\n")
            .await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Writes the pending replies: `false` if the connection is gone.
async fn flush<S: Stream>(stream: &mut S, out: &mut Out, stop: &mut watch::Receiver<bool>) -> bool {
    let written = {
        let write = stream.write_all(&out.buf);
        tokio::pin!(write);
        tokio::select! {
            biased;
            written = &mut write => written.is_ok(),
            // At shutdown, a client that does not read gets a little longer.
            () = stopped(stop) => {
                matches!(tokio::time::timeout(SHUTDOWN_WRITE_GRACE, write).await, Ok(Ok(())))
            }
        }
    };
    out.buf.clear();
    written
}

/// Closes a connection whose client may still be sending: closing with
/// unread input would reset the connection, and the client could lose the
/// error it was just sent. So: end our side, then discard what the client
/// still sends, for a short while.
async fn hang_up<S: Stream>(stream: &mut S) {
    let _ = stream.shutdown().await;
    let mut discard = [0u8; 4096];
    let mut budget = HANG_UP_DISCARD;
    let _ = tokio::time::timeout(HANG_UP_GRACE, async {
        while budget > 0 {
            match stream.read(&mut discard).await {
                Ok(0) | Err(_) => break,
                Ok(n) => budget = budget.saturating_sub(n),
            }
        }
    })
    .await;
}

/// Resolves once the server stops (or is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}
