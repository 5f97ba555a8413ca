//! The Redis protocol front end: `redis-cli`, `redis-benchmark` and Redis
//! client libraries talk to Gyre unchanged.
//!
//! [`serve`] speaks RESP2, and RESP3 once a client sends `HELLO 3`. It
//! parses multibulk requests and inline commands (`GET k` typed in telnet),
//! answers pipelined commands in order and writes their replies together.
//!
//! # Commands
//!
//! | command | reply |
//! |---|---|
//! | `GET key` | the value, or nil |
//! | `SET key value` | `+OK` (options such as `EX` or `NX`: an error) |
//! | `DEL key [key …]` | how many of the keys had a value |
//! | `EXISTS key [key …]` | how many of the keys have a value |
//! | `MGET key [key …]` | the values, nil for each missing one |
//! | `MSET key value [key value …]` | `+OK` |
//! | `PING [msg]`, `ECHO msg`, `QUIT` | as Redis |
//! | `SELECT n` | database 0 is the bucket `default`, database n the bucket `db<n>` (an error if it does not exist) |
//! | `AUTH [user] secret`, `HELLO [2\|3] [AUTH user secret] [SETNAME name]` | as Redis 6: the node's users ([`crate::auth`]); `AUTH secret` is user `default`'s |
//! | `INFO [section …]`, `COMMAND [COUNT\|DOCS\|INFO\|LIST]`, `CONFIG GET param …`, `CLIENT ID\|GETNAME\|SETNAME\|SETINFO\|INFO\|LIST` | enough for tools and client libraries |
//! | `GYRE.BUCKET [name]` | selects the connection's bucket (it must exist); without a name, shows it |
//! | `GYRE.GET key [BUCKET b] [R n]` | `[context, [value …]]`: every sibling |
//! | `GYRE.PUT key context value [BUCKET b] [W n]` | the context after the write |
//! | `GYRE.DEL key context [BUCKET b] [W n]` | the context after the delete |
//! | `SET key value [NX\|XX] [GET] [EX s\|PX ms\|EXAT t\|PXAT t\|KEEPTTL]`, `SETEX`, `PSETEX` | as Redis (expiry: see [`gyre_wire::Expiry`]) |
//! | `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT` `key n [NX\|XX\|GT\|LT]`, `PERSIST`, `GETEX` | 1/0 as Redis; a read, then a write with its context |
//! | `TTL`, `PTTL`, `EXPIRETIME`, `PEXPIRETIME` | as Redis (-2 no value, -1 no expiry) |
//! | `GETSET`, `GETDEL`, `UNLINK`, `TYPE`, `TOUCH` | as Redis (every value is a string) |
//! | `SCAN cursor [MATCH p] [COUNT n] [TYPE t]`, `KEYS p`, `DBSIZE` | the whole cluster's keys of the bucket (`DBSIZE`: an estimate) |
//! | `MULTI`, then commands, then `EXEC` or `DISCARD` | `+QUEUED` per command; `EXEC`: every reply, in order (a batch, see below) |
//! | `WATCH key …` | an error (use `GYRE.GET` and `GYRE.PUT` with its context); `UNWATCH`: `+OK` |
//!
//! # What plain Redis commands mean in a Dynamo store
//!
//! Redis has one value per key and no versions; Gyre keeps concurrent
//! writes as siblings under a causal context. Plain commands map onto that
//! as follows:
//!
//! - Keys live in the connection's bucket: [`DEFAULT_BUCKET`] until
//!   `GYRE.BUCKET name` selects another (which must exist).
//! - `SET` is a **blind write**: a put with no context
//!   (`ClientOp::Put { context: None, .. }`), which supersedes every version
//!   of the key the coordinator knows of.
//! - `GET` returns **one value**: when siblings exist, the one the read's
//!   `latest` names (the greatest hybrid-clock timestamp); nil if the key
//!   has no value. `GYRE.GET` shows them all.
//! - `DEL` is a **blind delete**, per key: a read, then, if the key has a
//!   value, a delete with no context. It counts the keys that had one.
//! - `MSET` is **not atomic**: each key is a separate blind write, in
//!   order. It answers `+OK` only if every write succeeded; otherwise the
//!   first error, and the keys after it are not written (those before it
//!   are). `MGET`, `EXISTS` and `DEL` likewise run key by key and answer
//!   the first error if one fails.
//! - `MULTI` … `EXEC` is a **batch, not an isolated transaction**. The
//!   commands after `MULTI` are checked and queued (`+QUEUED`), and nothing
//!   runs until `EXEC`; then each runs in order as its own operation and
//!   `EXEC` answers their replies in one array. A command refused while
//!   queueing (unknown, wrong number of arguments) makes `EXEC` refuse the
//!   whole batch (`-EXECABORT`), so nothing of it runs; `DISCARD` or a
//!   dropped connection runs nothing either. Not promised: other clients'
//!   commands may interleave with the batch's, and a command that fails at
//!   `EXEC` (an unavailable replica set) is its own error element without
//!   undoing the others (as in Redis, which never rolls back). `WATCH` is
//!   refused: a conditional update is `GYRE.GET`, then `GYRE.PUT` with the
//!   read's context, which keeps a concurrent write as a sibling.
//!
//! # Contexts and siblings
//!
//! `GYRE.GET` answers the key's context, base64 (standard alphabet, with
//! padding: the same text the HTTP API uses), and every sibling value. To
//! resolve siblings, `GYRE.PUT` the merged value with that context: it
//! supersedes exactly what the read saw. A context of `""` or `-` means
//! none: a blind write, like `SET`. An empty context (from reading a key
//! that does not exist) is still a context: it supersedes nothing, so two
//! writes made with it become siblings. `R` and `W` override the bucket's
//! quorums for one operation (between 1 and its n_val).
//!
//! # Errors
//!
//! Bad input (an unknown command, a wrong number of arguments, an
//! unsupported option, a key over [`gyre_types::Key::MAX_LEN`] or empty, an
//! unknown bucket, an impossible quorum, a context that is not base64) is
//! answered with `-ERR …` before anything reaches the backend, and the
//! connection stays usable. Input that is not RESP (a bad length, a
//! non-numeric count, an argument over [`RespConfig::max_value_len`]) is
//! answered with `-ERR Protocol error: …`, and the connection is closed, as
//! Redis does: its framing is lost. The backend's errors become:
//!
//! | [`KvError`] | reply |
//! |---|---|
//! | `Unavailable` | `-UNAVAILABLE 1 of 2 required replicas answered (1 stored, asked 2 other primaries and 1 fallbacks, waited 2003 ms)`: what fell short, whom the coordinator asked, how long it waited |
//! | `BadRequest(msg)` | `-ERR msg` |
//! | `UnknownBucket(b)` | `-ERR unknown bucket 'b'` |
//! | `NotReady(msg)` | `-CLUSTERDOWN not ready: msg` |
//! | `Internal(msg)` | `-ERR internal error: msg` |
//!
//! With users configured ([`crate::auth`]), a client must `AUTH [user]
//! secret` (or `HELLO … AUTH user secret`) before any command but `AUTH`,
//! `HELLO` and `QUIT` (`-NOAUTH Authentication required.`); until then it
//! may send only small commands (10 arguments of 16 KiB, as Redis allows).
//! A wrong secret is `-WRONGPASS …`, and each address's failures slow its
//! next attempts. A user runs the commands of its role on the buckets it
//! may touch; others answer `-NOPERM …`: reads need `readonly`, writes,
//! deletes and increments `readwrite`.
//!
//! Every key operation is counted in [`Metrics`] (front end `resp`), and
//! every read's values with [`Metrics::read_values`].
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//!
//! use gyre_api::resp::{self, RespConfig};
//! use gyre_api::{Backend, Metrics};
//!
//! /// Serves Redis clients on port 6379 until `stop` fires.
//! async fn serve_redis<B: Backend>(
//!     backend: Arc<B>,
//!     stop: tokio::sync::oneshot::Receiver<()>,
//! ) -> std::io::Result<()> {
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:6379").await?;
//!     // Everyone is served; `Gate::new(users, …)` checks users instead.
//!     let config = RespConfig {
//!         gate: Arc::new(gyre_api::auth::Gate::open()),
//!         ..RespConfig::default()
//!     };
//!     let shutdown = async move {
//!         let _ = stop.await;
//!     };
//!     resp::serve(listener, backend, Arc::new(Metrics::new()), config, shutdown).await
//! }
//!
//! assert_eq!(RespConfig::default().max_value_len, 64 << 20);
//! ```
//!
//! [`DEFAULT_BUCKET`]: crate::DEFAULT_BUCKET
//! [`KvError`]: crate::KvError
//! [`Metrics`]: crate::Metrics
//! [`Metrics::read_values`]: crate::Metrics::read_values

mod clients;
mod command;
mod conn;
mod expire;
mod keyspace;
mod parse;
mod pattern;
mod reply;
mod transaction;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::auth::Gate;
use crate::tls::ClientTls;
use crate::{Backend, Metrics};

/// How the Redis front end treats its clients.
#[derive(Clone, Debug)]
pub struct RespConfig {
    /// Who may connect and what each user may do (shared with the HTTP
    /// front end). An open gate (no users): no authentication, and `AUTH
    /// password` is an error, as in Redis. `AUTH password` is `AUTH default
    /// password`, as in Redis 6.
    pub gate: Arc<Gate>,
    /// The longest argument (key or value) a client may send, in bytes;
    /// longer is a protocol error. Like Redis's `proto-max-bulk-len`.
    /// Buckets have their own, usually smaller, value limit.
    pub max_value_len: usize,
    /// The most arguments in one command, the name included; more is a
    /// protocol error.
    pub max_args: usize,
    /// Clients connected at most (Redis's `maxclients`); one more is
    /// answered `-ERR max number of clients reached` and closed.
    pub max_clients: usize,
    /// A connection that completes no command for this long is closed
    /// (Redis's `timeout`; `None`, the default as in Redis: never). It also
    /// cuts off a client that trickles a command in.
    pub idle_timeout: Option<Duration>,
    /// TLS on the listener (as Redis's `tls-port`); `None`: plaintext.
    pub tls: Option<Arc<ClientTls>>,
}

impl Default for RespConfig {
    /// No authentication, arguments up to 64 MiB (the largest value a
    /// bucket may allow), up to 1 Mi arguments per command (Redis's limit),
    /// 10,000 clients (Redis's `maxclients`), no idle timeout.
    fn default() -> Self {
        Self {
            gate: Arc::new(Gate::open()),
            max_value_len: 64 << 20,
            max_args: 1024 * 1024,
            max_clients: 10_000,
            idle_timeout: None,
            tls: None,
        }
    }
}

/// Serves Redis clients on `listener` until `shutdown` resolves.
///
/// Each connection runs as its own task. At shutdown the listener closes,
/// idle connections close, and a connection running a command closes once
/// that command's reply is written (a client that does not read it gets a
/// few seconds); `serve` returns when every connection is closed.
///
/// # Errors
/// None so far: failures to accept a connection are logged and retried;
/// the `Result` leaves room for errors setting up the listener.
pub async fn serve<B: Backend>(
    listener: TcpListener,
    backend: Arc<B>,
    metrics: Arc<Metrics>,
    config: RespConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let port = listener.local_addr().map_or(0, |a| a.port());
    let server = Arc::new(command::Server::new(backend, metrics, config, port));
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => {
                    let connected = server.connected_clients.load(Ordering::Relaxed);
                    if connected >= server.config.max_clients as u64 {
                        tracing::warn!(client = %addr, "resp: max number of clients reached; refusing one");
                        tokio::spawn(conn::refuse(stream));
                        continue;
                    }
                    // Without Nagle's algorithm a reply leaves at once, not
                    // after the client's delayed ACK.
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(error = %e, "resp: cannot set TCP_NODELAY");
                    }
                    let (server, stopped) = (server.clone(), stopped.clone());
                    match server.config.tls.clone() {
                        None => {
                            connections.spawn(conn::run(server, stream, Some(addr), None, stopped));
                        }
                        Some(tls) => {
                            connections.spawn(async move {
                                match tls.accept(stream).await {
                                    Ok(stream) => {
                                        let user = crate::tls::peer_user(&stream)
                                            .and_then(|name| server.config.gate.certified(&name));
                                        conn::run(server, stream, Some(addr), user, stopped).await;
                                    }
                                    Err(e) => tracing::debug!(client = %addr, error = %e, "resp: TLS handshake failed"),
                                }
                            });
                        }
                    }
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait, retry.
                    tracing::warn!(error = %e, "resp: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}
