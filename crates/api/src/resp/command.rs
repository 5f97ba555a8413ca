//! The commands: what each does with the [`Backend`], and its reply.
//!
//! Every command answers exactly one reply. Bad input (an unknown command,
//! a wrong number of arguments, an unsupported option, an invalid key,
//! bucket, quorum or context) is answered with an error before anything
//! reaches the backend, and leaves the connection usable.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use gyre_types::{BucketName, Key};
use gyre_wire::{ClientOp, ClientReply, Expiry};

use super::RespConfig;
use super::clients::{ClientEntry, Clients};
use super::expire::{TtlQuery, Unit};
use super::parse::{self, Args, Limits};
use super::pattern::Pattern;
use super::reply::Out;
use super::transaction::Transaction;
use crate::auth::{Access, User};
use crate::{Backend, Front, KvError, Metrics, Op};

/// The Redis version Gyre answers as (in `HELLO` and `INFO`), for clients
/// that gate features on it.
pub(crate) const REDIS_VERSION: &str = "7.0.0";

/// What every connection of one server shares.
pub(crate) struct Server<B> {
    pub(crate) backend: Arc<B>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) config: RespConfig,
    pub(crate) started: Instant,
    pub(crate) port: u16,
    pub(crate) next_client_id: AtomicU64,
    pub(crate) connected_clients: AtomicU64,
    pub(crate) connections_received: AtomicU64,
    pub(crate) commands_processed: AtomicU64,
    pub(crate) clients: Clients,
}

impl<B> Server<B> {
    pub(crate) fn new(
        backend: Arc<B>,
        metrics: Arc<Metrics>,
        config: RespConfig,
        port: u16,
    ) -> Self {
        Self {
            backend,
            metrics,
            config,
            started: Instant::now(),
            port,
            next_client_id: AtomicU64::new(1),
            connected_clients: AtomicU64::new(0),
            connections_received: AtomicU64::new(0),
            commands_processed: AtomicU64::new(0),
            clients: Clients::default(),
        }
    }
}

/// One connection's state.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) id: u64,
    pub(crate) name: Option<Vec<u8>>,
    pub(crate) authenticated: bool,
    /// Who authenticated (`None` while the gate is open, or before `AUTH`).
    pub(crate) user: Option<User>,
    /// The client's address, for the failure throttle.
    pub(crate) peer: IpAddr,
    pub(crate) bucket: BucketName,
    /// Set by `QUIT`: close once the reply is written.
    pub(crate) quit: bool,
    /// The commands queued since `MULTI`, if one is open.
    pub(crate) transaction: Option<Transaction>,
    /// What `CLIENT LIST` shows of this connection.
    pub(crate) entry: Arc<ClientEntry>,
}

impl Session {
    pub(crate) fn new(
        id: u64,
        config: &RespConfig,
        entry: Arc<ClientEntry>,
        peer: Option<std::net::SocketAddr>,
    ) -> Self {
        Self {
            id,
            name: None,
            authenticated: config.gate.is_open(),
            user: None,
            peer: peer.map_or(IpAddr::from([0, 0, 0, 0]), |p| p.ip()),
            bucket: BucketName::default(),
            quit: false,
            transaction: None,
            entry,
        }
    }

    /// What the parser accepts of this connection's next command: Redis's
    /// small limits until the client authenticates.
    pub(crate) fn limits(&self, config: &RespConfig) -> Limits {
        if self.authenticated {
            Limits {
                max_args: config.max_args,
                max_bulk: config.max_value_len,
                unauthenticated: false,
            }
        } else {
            Limits {
                max_args: config.max_args.min(parse::UNAUTHENTICATED_MAX_ARGS),
                max_bulk: config.max_value_len.min(parse::UNAUTHENTICATED_MAX_BULK),
                unauthenticated: true,
            }
        }
    }
}

/// The commands Gyre knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmd {
    Ping,
    Echo,
    Get,
    Set,
    Del,
    Exists,
    Mget,
    Mset,
    Info,
    Command,
    Config,
    Client,
    Select,
    Quit,
    Auth,
    Hello,
    GyreBucket,
    GyreGet,
    GyrePut,
    GyreDel,
    Multi,
    Exec,
    Discard,
    Watch,
    Unwatch,
    Setex,
    Psetex,
    Expire,
    Pexpire,
    Expireat,
    Pexpireat,
    Ttl,
    Pttl,
    Expiretime,
    Pexpiretime,
    Persist,
    Getex,
    Getset,
    Getdel,
    Unlink,
    Type,
    Touch,
    Scan,
    Keys,
    Dbsize,
    Incr,
    Incrby,
    Decr,
    Decrby,
}

impl Cmd {
    const ALL: [Self; 49] = [
        Self::Ping,
        Self::Echo,
        Self::Get,
        Self::Set,
        Self::Del,
        Self::Exists,
        Self::Mget,
        Self::Mset,
        Self::Info,
        Self::Command,
        Self::Config,
        Self::Client,
        Self::Select,
        Self::Quit,
        Self::Auth,
        Self::Hello,
        Self::GyreBucket,
        Self::GyreGet,
        Self::GyrePut,
        Self::GyreDel,
        Self::Multi,
        Self::Exec,
        Self::Discard,
        Self::Watch,
        Self::Unwatch,
        Self::Setex,
        Self::Psetex,
        Self::Expire,
        Self::Pexpire,
        Self::Expireat,
        Self::Pexpireat,
        Self::Ttl,
        Self::Pttl,
        Self::Expiretime,
        Self::Pexpiretime,
        Self::Persist,
        Self::Getex,
        Self::Getset,
        Self::Getdel,
        Self::Unlink,
        Self::Type,
        Self::Touch,
        Self::Scan,
        Self::Keys,
        Self::Dbsize,
        Self::Incr,
        Self::Incrby,
        Self::Decr,
        Self::Decrby,
    ];

    /// The command named `name`, in any case.
    fn lookup(name: &[u8]) -> Option<Self> {
        let mut upper = [0u8; 12];
        let upper = upper.get_mut(..name.len())?;
        upper.copy_from_slice(name);
        upper.make_ascii_uppercase();
        Some(match &*upper {
            b"PING" => Self::Ping,
            b"ECHO" => Self::Echo,
            b"GET" => Self::Get,
            b"SET" => Self::Set,
            b"DEL" => Self::Del,
            b"EXISTS" => Self::Exists,
            b"MGET" => Self::Mget,
            b"MSET" => Self::Mset,
            b"INFO" => Self::Info,
            b"COMMAND" => Self::Command,
            b"CONFIG" => Self::Config,
            b"CLIENT" => Self::Client,
            b"SELECT" => Self::Select,
            b"QUIT" => Self::Quit,
            b"AUTH" => Self::Auth,
            b"HELLO" => Self::Hello,
            b"GYRE.BUCKET" => Self::GyreBucket,
            b"GYRE.GET" => Self::GyreGet,
            b"GYRE.PUT" => Self::GyrePut,
            b"GYRE.DEL" => Self::GyreDel,
            b"MULTI" => Self::Multi,
            b"EXEC" => Self::Exec,
            b"DISCARD" => Self::Discard,
            b"WATCH" => Self::Watch,
            b"UNWATCH" => Self::Unwatch,
            b"SETEX" => Self::Setex,
            b"PSETEX" => Self::Psetex,
            b"EXPIRE" => Self::Expire,
            b"PEXPIRE" => Self::Pexpire,
            b"EXPIREAT" => Self::Expireat,
            b"PEXPIREAT" => Self::Pexpireat,
            b"TTL" => Self::Ttl,
            b"PTTL" => Self::Pttl,
            b"EXPIRETIME" => Self::Expiretime,
            b"PEXPIRETIME" => Self::Pexpiretime,
            b"PERSIST" => Self::Persist,
            b"GETEX" => Self::Getex,
            b"GETSET" => Self::Getset,
            b"GETDEL" => Self::Getdel,
            b"UNLINK" => Self::Unlink,
            b"TYPE" => Self::Type,
            b"TOUCH" => Self::Touch,
            b"SCAN" => Self::Scan,
            b"KEYS" => Self::Keys,
            b"DBSIZE" => Self::Dbsize,
            b"INCR" => Self::Incr,
            b"INCRBY" => Self::Incrby,
            b"DECR" => Self::Decr,
            b"DECRBY" => Self::Decrby,
            _ => return None,
        })
    }

    /// The name in errors, as Redis writes it: lowercase.
    fn name(self) -> &'static str {
        match self {
            Self::Ping => "ping",
            Self::Echo => "echo",
            Self::Get => "get",
            Self::Set => "set",
            Self::Del => "del",
            Self::Exists => "exists",
            Self::Mget => "mget",
            Self::Mset => "mset",
            Self::Info => "info",
            Self::Command => "command",
            Self::Config => "config",
            Self::Client => "client",
            Self::Select => "select",
            Self::Quit => "quit",
            Self::Auth => "auth",
            Self::Hello => "hello",
            Self::GyreBucket => "gyre.bucket",
            Self::GyreGet => "gyre.get",
            Self::GyrePut => "gyre.put",
            Self::GyreDel => "gyre.del",
            Self::Multi => "multi",
            Self::Exec => "exec",
            Self::Discard => "discard",
            Self::Watch => "watch",
            Self::Unwatch => "unwatch",
            Self::Setex => "setex",
            Self::Psetex => "psetex",
            Self::Expire => "expire",
            Self::Pexpire => "pexpire",
            Self::Expireat => "expireat",
            Self::Pexpireat => "pexpireat",
            Self::Ttl => "ttl",
            Self::Pttl => "pttl",
            Self::Expiretime => "expiretime",
            Self::Pexpiretime => "pexpiretime",
            Self::Persist => "persist",
            Self::Getex => "getex",
            Self::Getset => "getset",
            Self::Getdel => "getdel",
            Self::Unlink => "unlink",
            Self::Type => "type",
            Self::Touch => "touch",
            Self::Scan => "scan",
            Self::Keys => "keys",
            Self::Dbsize => "dbsize",
            Self::Incr => "incr",
            Self::Incrby => "incrby",
            Self::Decr => "decr",
            Self::Decrby => "decrby",
        }
    }

    /// The accepted numbers of arguments, the name included.
    fn arity(self) -> (usize, usize) {
        const MANY: usize = usize::MAX;
        match self {
            Self::Ping | Self::Quit => (1, 2),
            Self::Echo | Self::Get | Self::Select => (2, 2),
            Self::Set => (3, MANY),
            Self::Del | Self::Exists | Self::Mget => (2, MANY),
            Self::Mset => (3, MANY),
            Self::Info | Self::Command | Self::Hello => (1, MANY),
            Self::Config | Self::Client => (2, MANY),
            Self::Auth => (2, 3),
            Self::GyreBucket => (1, 2),
            Self::GyreGet => (2, MANY),
            Self::GyrePut => (4, MANY),
            Self::GyreDel => (3, MANY),
            Self::Multi | Self::Exec | Self::Discard | Self::Unwatch => (1, 1),
            Self::Watch => (2, MANY),
            Self::Setex | Self::Psetex => (4, 4),
            Self::Expire | Self::Pexpire | Self::Expireat | Self::Pexpireat => (3, 4),
            Self::Ttl
            | Self::Pttl
            | Self::Expiretime
            | Self::Pexpiretime
            | Self::Persist
            | Self::Getdel
            | Self::Type => (2, 2),
            Self::Getex | Self::Unlink | Self::Touch => (2, MANY),
            Self::Getset => (3, 3),
            Self::Scan => (2, MANY),
            Self::Keys => (2, 2),
            Self::Dbsize => (1, 1),
            Self::Incr | Self::Decr => (2, 2),
            Self::Incrby | Self::Decrby => (3, 3),
        }
    }

    /// The key operation it is, for the metrics.
    fn op(self) -> Option<Op> {
        match self {
            Self::Get
            | Self::Exists
            | Self::Mget
            | Self::GyreGet
            | Self::Ttl
            | Self::Pttl
            | Self::Expiretime
            | Self::Pexpiretime
            | Self::Getex
            | Self::Type
            | Self::Touch => Some(Op::Get),
            Self::Set
            | Self::Mset
            | Self::GyrePut
            | Self::Setex
            | Self::Psetex
            | Self::Expire
            | Self::Pexpire
            | Self::Expireat
            | Self::Pexpireat
            | Self::Persist
            | Self::Getset => Some(Op::Put),
            Self::Del | Self::GyreDel | Self::Getdel | Self::Unlink => Some(Op::Delete),
            Self::Incr | Self::Incrby | Self::Decr | Self::Decrby => Some(Op::Increment),
            Self::Ping
            | Self::Echo
            | Self::Info
            | Self::Command
            | Self::Config
            | Self::Client
            | Self::Select
            | Self::Quit
            | Self::Auth
            | Self::Hello
            | Self::GyreBucket
            | Self::Multi
            | Self::Exec
            | Self::Discard
            | Self::Watch
            | Self::Unwatch
            | Self::Scan
            | Self::Keys
            | Self::Dbsize => None,
        }
    }

    /// What it needs of a user's role, on the connection's bucket
    /// (`None`: any user).
    fn access(self, bucket: &BucketName) -> Option<Access<'_>> {
        match self.op() {
            Some(Op::Get) => Some(Access::Read(bucket)),
            Some(Op::Put | Op::Delete | Op::Increment) => Some(Access::Write(bucket)),
            None if matches!(self, Self::Scan | Self::Keys | Self::Dbsize) => {
                Some(Access::Read(bucket))
            }
            None => None,
        }
    }

    /// Whether a client may send it before it authenticates.
    fn no_auth(self) -> bool {
        matches!(self, Self::Auth | Self::Hello | Self::Quit)
    }
}

/// Why a command failed: the error reply.
pub(crate) enum Fail {
    /// Refused here: a complete error line, its code first (`ERR …`).
    Msg(String),
    /// As `Msg`, with bytes the client sent quoted in it.
    Raw(Vec<u8>),
    /// The backend's error (already counted in the metrics).
    Kv(KvError),
}

impl From<KvError> for Fail {
    fn from(e: KvError) -> Self {
        Self::Kv(e)
    }
}

pub(crate) fn err(message: impl Into<String>) -> Fail {
    Fail::Msg(message.into())
}

/// Whether the session's user may do `access` (with the gate open there
/// is no user, and everything is allowed): `-NOPERM` if not.
fn permit(session: &Session, command: &str, access: Access<'_>) -> Result<(), Fail> {
    match &session.user {
        Some(user) if !user.allows(access) => Err(err(format!(
            "NOPERM user '{}' ({}) may not run '{command}': it needs {access}",
            user.name(),
            user.role()
        ))),
        _ => Ok(()),
    }
}

fn unknown_bucket(bucket: &BucketName) -> Fail {
    err(format!(
        "ERR {}",
        KvError::UnknownBucket(bucket.to_string())
    ))
}

fn wrong_arity(name: &str) -> Fail {
    err(format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

pub(crate) fn not_integer() -> Fail {
    err("ERR value is not an integer or out of range")
}

pub(crate) fn syntax_error() -> Fail {
    err("ERR syntax error")
}

fn unknown_subcommand(sub: &[u8], command: &str) -> Fail {
    err(format!(
        "ERR unknown subcommand '{}'. Try {command} HELP.",
        String::from_utf8_lossy(truncated(sub, 128))
    ))
}

fn write_fail(out: &mut Out, fail: Fail) {
    match fail {
        Fail::Msg(message) => out.error(&message),
        Fail::Raw(message) => out.error_bytes(&message),
        Fail::Kv(e) => out.error(&match &e {
            KvError::Unavailable { .. } => format!("UNAVAILABLE {e}"),
            KvError::BadRequest(message) => format!("ERR {message}"),
            KvError::NotReady(_) => format!("CLUSTERDOWN {e}"),
            KvError::UnknownBucket(_) | KvError::Internal(_) => format!("ERR {e}"),
        }),
    }
}

pub(crate) fn truncated(bytes: &[u8], max: usize) -> &[u8] {
    bytes.get(..max).unwrap_or(bytes)
}

/// A key as the backend takes it, or the reason it is not one.
pub(crate) fn key(bytes: &[u8]) -> Result<Key, Fail> {
    Key::new(bytes.to_vec()).map_err(|e| err(format!("ERR {e}")))
}

fn bucket_name(bytes: &[u8]) -> Result<BucketName, Fail> {
    BucketName::new(String::from_utf8_lossy(bytes)).map_err(|e| err(format!("ERR {e}")))
}

/// A context argument: `""` or `-` for none, else standard base64.
fn context(arg: &[u8]) -> Result<Option<Bytes>, Fail> {
    if arg.is_empty() || arg == b"-" {
        return Ok(None);
    }
    STANDARD
        .decode(arg)
        .map(|bytes| Some(Bytes::from(bytes)))
        .map_err(|e| err(format!("ERR bad context: {e}")))
}

/// A client name as Redis accepts it: printable ASCII, no spaces.
fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

/// The parameters `CONFIG GET` shows, for tools that ask
/// (`redis-benchmark` asks for `save` and `appendonly`).
const CONFIG: [(&str, &str); 4] = [
    ("save", ""),
    ("appendonly", "no"),
    ("databases", "1"),
    ("maxmemory", "0"),
];

/// What a read answered.
pub(crate) struct Read {
    pub(crate) values: Vec<Bytes>,
    pub(crate) latest: Option<u32>,
    pub(crate) context: Bytes,
    /// When each value expires (milliseconds since the Unix epoch).
    pub(crate) expires: Vec<Option<u64>>,
}

impl Read {
    /// The value a protocol without siblings shows: the latest.
    pub(crate) fn latest(&self) -> Option<&Bytes> {
        self.latest.and_then(|i| self.values.get(i as usize))
    }

    /// When the latest value expires: `None` if there is no value,
    /// `Some(None)` if it never expires.
    pub(crate) fn latest_expires(&self) -> Option<Option<u64>> {
        let i = self.latest? as usize;
        self.values.get(i)?;
        Some(self.expires.get(i).copied().flatten())
    }
}

impl<B: Backend> Server<B> {
    /// Runs one key operation, counted in the metrics.
    async fn call(&self, op: ClientOp) -> Result<ClientReply, KvError> {
        let kind = match &op {
            ClientOp::Get { .. } => Op::Get,
            ClientOp::Put { .. } => Op::Put,
            ClientOp::Delete { .. } => Op::Delete,
            ClientOp::Increment { .. } => Op::Increment,
        };
        let started = Instant::now();
        let result = match self.backend.kv(op).await {
            Ok(ClientReply::Unavailable {
                answered,
                required,
                detail,
            }) => Err(KvError::Unavailable {
                answered,
                required,
                detail,
            }),
            Ok(ClientReply::Values { .. }) if kind != Op::Get => Err(KvError::Internal(
                "the backend answered a write with values".into(),
            )),
            Ok(ClientReply::Written { .. }) if kind == Op::Get || kind == Op::Increment => {
                Err(KvError::Internal(
                    "the backend answered a read or an increment with a write".into(),
                ))
            }
            Ok(ClientReply::Counted { .. }) if kind != Op::Increment => Err(KvError::Internal(
                "the backend answered with a counter".into(),
            )),
            other => other,
        };
        self.metrics.observe(
            Front::Resp,
            kind,
            started.elapsed(),
            result.as_ref().map(|_| ()),
        );
        if let Ok(ClientReply::Values { values, .. }) = &result {
            self.metrics.read_values(values.len());
        }
        result
    }

    pub(crate) async fn read(
        &self,
        bucket: &BucketName,
        key: Key,
        r: Option<u8>,
    ) -> Result<Read, KvError> {
        let op = ClientOp::Get {
            bucket: bucket.clone(),
            key,
            r,
        };
        match self.call(op).await? {
            ClientReply::Values {
                values,
                latest,
                context,
                expires,
            } => Ok(Read {
                values,
                latest,
                context,
                expires,
            }),
            // `call` turned any other reply to a read into an error.
            _ => Err(KvError::Internal("unexpected reply to a read".into())),
        }
    }

    /// `INCR` and its family: adds `delta` to the counter `key` of the
    /// connection's bucket, which must be a counter bucket; answers the
    /// value as the coordinator holds it after the increment.
    async fn increment(
        &self,
        session: &Session,
        key_arg: &[u8],
        delta: i64,
        out: &mut Out,
    ) -> Result<(), Fail> {
        let key = key(key_arg)?;
        let props = self
            .backend
            .bucket(&session.bucket)
            .ok_or_else(|| unknown_bucket(&session.bucket))?;
        if props.conflict_mode() != gyre_types::ConflictMode::Counter {
            return Err(err(format!(
                "ERR bucket '{}' does not hold counters (its conflict_mode is {}); INCR and its \
                 family work in a counter bucket: create one over HTTP with PUT \
                 /v1/buckets/<name> {{\"conflict_mode\": \"counter\"}}, then select it with \
                 GYRE.BUCKET <name> (or name it db<n> and SELECT n)",
                session.bucket,
                props.conflict_mode().name()
            )));
        }
        let op = ClientOp::Increment {
            bucket: session.bucket.clone(),
            key,
            delta,
            w: None,
        };
        match self.call(op).await? {
            ClientReply::Counted { value, .. } => out.integer(value),
            // `call` turned any other reply to an increment into an error.
            _ => return Err(Fail::Kv(KvError::Internal("unexpected reply".into()))),
        }
        Ok(())
    }

    /// Runs a put or a delete: the context after it.
    pub(crate) async fn write(&self, op: ClientOp) -> Result<Bytes, KvError> {
        match self.call(op).await? {
            ClientReply::Written { context, .. } => Ok(context),
            // `call` turned any other reply to a write into an error.
            _ => Err(KvError::Internal("unexpected reply to a write".into())),
        }
    }

    /// Runs one command, appending its reply to `out`. While a `MULTI` is
    /// open, queues it instead (or runs the batch, at `EXEC`).
    pub(crate) async fn execute(&self, session: &mut Session, args: Args<'_>, out: &mut Out) {
        let result = if session.transaction.is_some() {
            self.in_transaction(session, args, out).await
        } else {
            self.dispatch(session, args, out).await
        };
        if let Err(fail) = result {
            write_fail(out, fail);
        }
        session.entry.ran(
            Cmd::lookup(args.get(0)).map_or("unknown", Cmd::name),
            out.resp3,
            session.transaction.as_ref().map(Transaction::len),
        );
    }

    /// A command sent while a transaction is open: `EXEC`, `DISCARD` and
    /// `QUIT` act at once; anything else is checked and queued.
    async fn in_transaction(
        &self,
        session: &mut Session,
        args: Args<'_>,
        out: &mut Out,
    ) -> Result<(), Fail> {
        let checked = self.check(session, args);
        let Some(tx) = session.transaction.as_mut() else {
            return self.dispatch(session, args, out).await;
        };
        let cmd = match checked {
            Ok(cmd) => cmd,
            Err(fail) => {
                tx.abort();
                return Err(fail);
            }
        };
        match cmd {
            Cmd::Exec => {
                let Some(tx) = session.transaction.take() else {
                    return Err(err("ERR EXEC without MULTI"));
                };
                if tx.is_aborted() {
                    return Err(err(
                        "EXECABORT Transaction discarded because of previous errors.",
                    ));
                }
                out.array(tx.len());
                for queued in tx.commands() {
                    // Never `EXEC` or `MULTI`: those are not queued.
                    if let Err(fail) = self.dispatch(session, queued, out).await {
                        write_fail(out, fail);
                    }
                }
                Ok(())
            }
            Cmd::Discard => {
                session.transaction = None;
                out.ok();
                Ok(())
            }
            Cmd::Multi => Err(err("ERR MULTI calls can not be nested")),
            Cmd::Watch => Err(err("ERR WATCH inside MULTI is not allowed")),
            Cmd::Quit => self.dispatch(session, args, out).await,
            _ => match tx.queue(args) {
                Ok(()) => {
                    out.simple("QUEUED");
                    Ok(())
                }
                Err(_) => {
                    tx.abort();
                    Err(err(format!(
                        "ERR transaction too large: at most {} commands and {} MiB of \
                         arguments may be queued; EXEC will refuse it",
                        super::transaction::MAX_QUEUED_COMMANDS,
                        super::transaction::MAX_QUEUED_BYTES >> 20,
                    )))
                }
            },
        }
    }

    /// The command `args` names, if it exists, has an acceptable number of
    /// arguments, and this connection may run it.
    fn check(&self, session: &Session, args: Args<'_>) -> Result<Cmd, Fail> {
        let name = args.get(0);
        let Some(cmd) = Cmd::lookup(name) else {
            let mut message = b"ERR unknown command '".to_vec();
            message.extend_from_slice(truncated(name, 128));
            message.extend_from_slice(b"', with args beginning with: ");
            let start = message.len();
            for arg in args.iter().skip(1) {
                let used = message.len() - start;
                if used >= 128 {
                    break;
                }
                message.push(b'\'');
                message.extend_from_slice(truncated(arg, 128 - used));
                message.extend_from_slice(b"' ");
            }
            return Err(Fail::Raw(message));
        };
        let (min, max) = cmd.arity();
        if args.len() < min || args.len() > max {
            return Err(wrong_arity(cmd.name()));
        }
        if !session.authenticated && !cmd.no_auth() {
            return Err(err("NOAUTH Authentication required."));
        }
        if let Some(access) = cmd.access(&session.bucket) {
            permit(session, cmd.name(), access)?;
        }
        Ok(cmd)
    }

    async fn dispatch(
        &self,
        session: &mut Session,
        args: Args<'_>,
        out: &mut Out,
    ) -> Result<(), Fail> {
        let cmd = self.check(session, args)?;
        let started = Instant::now();
        let result = self.run(cmd, session, args, out).await;
        // A key command refused before it reached the backend is still a
        // request: counted as a bad one, as the HTTP API counts it.
        if let Err(Fail::Msg(_)) = &result
            && let Some(op) = cmd.op()
        {
            self.metrics.observe(
                Front::Resp,
                op,
                started.elapsed(),
                Err(&KvError::BadRequest(String::new())),
            );
        }
        result
    }

    /// Runs a command known to exist, with acceptable arguments counts, on
    /// a connection allowed to run it.
    async fn run(
        &self,
        cmd: Cmd,
        session: &mut Session,
        args: Args<'_>,
        out: &mut Out,
    ) -> Result<(), Fail> {
        match cmd {
            Cmd::Ping => match args.len() {
                1 => out.simple("PONG"),
                _ => out.bulk(args.get(1)),
            },
            Cmd::Echo => out.bulk(args.get(1)),
            Cmd::Get => {
                let key = key(args.get(1))?;
                let read = self.read(&session.bucket, key, None).await?;
                out.bulk_or_null(read.latest().map(|v| &v[..]));
            }
            Cmd::Set => self.set(session, args, out).await?,
            Cmd::Setex => {
                self.set_expiring(session, args, out, Unit::Seconds, "setex")
                    .await?;
            }
            Cmd::Psetex => {
                self.set_expiring(session, args, out, Unit::Millis, "psetex")
                    .await?;
            }
            Cmd::Expire => {
                self.expire(session, args, out, Unit::Seconds, "expire")
                    .await?
            }
            Cmd::Pexpire => {
                self.expire(session, args, out, Unit::Millis, "pexpire")
                    .await?
            }
            Cmd::Expireat => {
                self.expire(session, args, out, Unit::UnixSeconds, "expireat")
                    .await?;
            }
            Cmd::Pexpireat => {
                self.expire(session, args, out, Unit::UnixMillis, "pexpireat")
                    .await?;
            }
            Cmd::Ttl => self.ttl(session, args, out, TtlQuery::Seconds).await?,
            Cmd::Pttl => self.ttl(session, args, out, TtlQuery::Millis).await?,
            Cmd::Expiretime => self.ttl(session, args, out, TtlQuery::UnixSeconds).await?,
            Cmd::Pexpiretime => self.ttl(session, args, out, TtlQuery::UnixMillis).await?,
            Cmd::Persist => self.persist(session, args, out).await?,
            Cmd::Getex => self.getex(session, args, out).await?,
            Cmd::Getdel => self.getdel(session, args, out).await?,
            Cmd::Getset => {
                // `SET key value GET`.
                let key = key(args.get(1))?;
                let read = self.read(&session.bucket, key.clone(), None).await?;
                self.write(ClientOp::Put {
                    bucket: session.bucket.clone(),
                    key,
                    context: Some(read.context.clone()),
                    value: Bytes::copy_from_slice(args.get(2)),
                    w: None,
                    expiry: Expiry::Default,
                })
                .await?;
                out.bulk_or_null(read.latest().map(|v| &v[..]));
            }
            Cmd::Incr => self.increment(session, args.get(1), 1, out).await?,
            Cmd::Decr => self.increment(session, args.get(1), -1, out).await?,
            Cmd::Incrby | Cmd::Decrby => {
                let by = parse::integer(args.get(2)).ok_or_else(not_integer)?;
                let delta = if cmd == Cmd::Incrby {
                    Some(by)
                } else {
                    by.checked_neg()
                };
                let delta = delta.ok_or_else(|| err("ERR decrement would overflow"))?;
                self.increment(session, args.get(1), delta, out).await?;
            }
            Cmd::Scan => self.scan(session, args, out).await?,
            Cmd::Keys => self.keys(session, args, out).await?,
            Cmd::Dbsize => self.dbsize(out).await?,
            Cmd::Type => {
                let key = key(args.get(1))?;
                let read = self.read(&session.bucket, key, None).await?;
                out.simple(if read.values.is_empty() {
                    "none"
                } else {
                    "string"
                });
            }
            Cmd::Del | Cmd::Unlink => {
                let keys = keys(args.iter().skip(1))?;
                let mut deleted = 0;
                for key in keys {
                    let read = self.read(&session.bucket, key.clone(), None).await?;
                    if read.values.is_empty() {
                        continue;
                    }
                    self.write(ClientOp::Delete {
                        bucket: session.bucket.clone(),
                        key,
                        context: None,
                        w: None,
                    })
                    .await?;
                    deleted += 1;
                }
                out.integer(deleted);
            }
            Cmd::Exists | Cmd::Touch => {
                let keys = keys(args.iter().skip(1))?;
                let mut found = 0;
                for key in keys {
                    if !self
                        .read(&session.bucket, key, None)
                        .await?
                        .values
                        .is_empty()
                    {
                        found += 1;
                    }
                }
                out.integer(found);
            }
            Cmd::Mget => {
                let keys = keys(args.iter().skip(1))?;
                let mut values = Vec::with_capacity(keys.len());
                for key in keys {
                    let read = self.read(&session.bucket, key, None).await?;
                    values.push(read.latest().cloned());
                }
                out.array(values.len());
                for value in &values {
                    out.bulk_or_null(value.as_deref());
                }
            }
            Cmd::Mset => {
                if args.len().is_multiple_of(2) {
                    return Err(wrong_arity(cmd.name()));
                }
                let keys = keys(args.iter().skip(1).step_by(2))?;
                for (key, value) in keys.into_iter().zip(args.iter().skip(2).step_by(2)) {
                    self.write(ClientOp::Put {
                        bucket: session.bucket.clone(),
                        key,
                        context: None,
                        value: Bytes::copy_from_slice(value),
                        w: None,
                        expiry: Expiry::Default,
                    })
                    .await?;
                }
                out.ok();
            }
            Cmd::Info => out.verbatim(&self.info(args)),
            Cmd::Command => command(args, out)?,
            Cmd::Config => config(args, out)?,
            Cmd::Client => client(session, &self.clients, args, out)?,
            Cmd::Select => {
                // Database 0 is the default bucket, database n the bucket
                // `db<n>`: Redis's numbered keyspaces are Gyre's buckets.
                let n = match parse::integer(args.get(1)) {
                    Some(n) if n >= 0 => n,
                    Some(_) => return Err(err("ERR DB index is out of range")),
                    None => return Err(not_integer()),
                };
                let name = match n {
                    0 => crate::DEFAULT_BUCKET.to_owned(),
                    n => format!("db{n}"),
                };
                let bucket = BucketName::new(name).map_err(|e| err(format!("ERR {e}")))?;
                if self.backend.bucket(&bucket).is_none() {
                    return Err(err(format!(
                        "ERR DB index is out of range: database {n} is the bucket '{bucket}', \
                         which does not exist; create it with PUT /v1/buckets/{bucket}"
                    )));
                }
                session.bucket = bucket;
                out.ok();
            }
            Cmd::Quit => {
                session.quit = true;
                out.ok();
            }
            Cmd::Auth => {
                let (user, password) = match args.len() {
                    2 => (None, args.get(1)),
                    _ => (Some(args.get(1)), args.get(2)),
                };
                if self.config.gate.is_open() && user.is_none() {
                    return Err(err(
                        "ERR AUTH <password> called without any password configured for the \
                         default user. Are you sure your configuration is correct?",
                    ));
                }
                self.authenticate(session, user, password).await?;
                out.ok();
            }
            Cmd::Hello => self.hello(session, args, out).await?,
            Cmd::Multi => {
                session.transaction = Some(Transaction::default());
                out.ok();
            }
            Cmd::Exec => return Err(err("ERR EXEC without MULTI")),
            Cmd::Discard => return Err(err("ERR DISCARD without MULTI")),
            Cmd::Watch => {
                return Err(err(
                    "ERR WATCH is not supported by Gyre: a transaction here is a batch, not \
                     isolated; to update a key only if nobody changed it, read it with GYRE.GET \
                     and write with GYRE.PUT and the read's context (concurrent writes become \
                     siblings, never lost)",
                ));
            }
            // Nothing is ever watched.
            Cmd::Unwatch => out.ok(),
            Cmd::GyreBucket => {
                if args.len() == 1 {
                    out.bulk(session.bucket.as_str().as_bytes());
                } else {
                    let bucket = bucket_name(args.get(1))?;
                    if self.backend.bucket(&bucket).is_none() {
                        return Err(unknown_bucket(&bucket));
                    }
                    session.bucket = bucket;
                    out.ok();
                }
            }
            Cmd::GyreGet => {
                let key = key(args.get(1))?;
                let (bucket, r, _) = self.options(session, args, 2, "R", false)?;
                let read = self.read(&bucket, key, r).await?;
                out.array(2);
                out.bulk(STANDARD.encode(&read.context).as_bytes());
                out.array(read.values.len());
                for value in &read.values {
                    out.bulk(value);
                }
            }
            Cmd::GyrePut => {
                let key = key(args.get(1))?;
                let context = context(args.get(2))?;
                let (bucket, w, expiry) = self.options(session, args, 4, "W", true)?;
                let after = self
                    .write(ClientOp::Put {
                        bucket,
                        key,
                        context,
                        value: Bytes::copy_from_slice(args.get(3)),
                        w,
                        expiry,
                    })
                    .await?;
                out.bulk(STANDARD.encode(&after).as_bytes());
            }
            Cmd::GyreDel => {
                let key = key(args.get(1))?;
                let context = context(args.get(2))?;
                let (bucket, w, _) = self.options(session, args, 3, "W", false)?;
                let after = self
                    .write(ClientOp::Delete {
                        bucket,
                        key,
                        context,
                        w,
                    })
                    .await?;
                out.bulk(STANDARD.encode(&after).as_bytes());
            }
        }
        Ok(())
    }

    /// Checks `AUTH [user] password` (also `HELLO … AUTH`): `AUTH password`
    /// is the user `default`'s, as in Redis 6. With the gate open, the
    /// `default` user takes any password.
    async fn authenticate(
        &self,
        session: &mut Session,
        user: Option<&[u8]>,
        password: &[u8],
    ) -> Result<(), Fail> {
        let wrong = || err("WRONGPASS invalid username-password pair or user is disabled.");
        if self.config.gate.is_open() {
            if user.is_none_or(|u| u == b"default") {
                session.authenticated = true;
                return Ok(());
            }
            return Err(wrong());
        }
        let name = match user {
            None => "default",
            Some(u) => std::str::from_utf8(u).map_err(|_| wrong())?,
        };
        match self
            .config
            .gate
            .login(session.peer, Some(name), password)
            .await
        {
            Some(user) => {
                session.entry.authenticated(user.name());
                session.user = Some(user);
                session.authenticated = true;
                Ok(())
            }
            None => {
                self.metrics.auth_failed(Front::Resp);
                Err(wrong())
            }
        }
    }

    /// `HELLO [protover [AUTH user password] [SETNAME name]]`.
    async fn hello(
        &self,
        session: &mut Session,
        args: Args<'_>,
        out: &mut Out,
    ) -> Result<(), Fail> {
        let mut resp3 = out.resp3;
        if args.len() > 1 {
            match parse::integer(args.get(1)) {
                Some(2) => resp3 = false,
                Some(3) => resp3 = true,
                Some(_) => return Err(err("NOPROTO unsupported protocol version")),
                None => {
                    return Err(err(
                        "ERR Protocol version is not an integer or out of range",
                    ));
                }
            }
        }
        let mut auth = None;
        let mut name = None;
        let mut i = 2;
        while i < args.len() {
            let option = args.get(i);
            let more = args.len() - i - 1;
            if option.eq_ignore_ascii_case(b"AUTH") && more >= 2 {
                auth = Some((args.get(i + 1), args.get(i + 2)));
                i += 3;
            } else if option.eq_ignore_ascii_case(b"SETNAME") && more >= 1 {
                name = Some(args.get(i + 1));
                i += 2;
            } else {
                return Err(err(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(truncated(option, 128))
                )));
            }
        }
        if let Some((user, password)) = auth {
            self.authenticate(session, Some(user), password).await?;
        }
        if !session.authenticated {
            return Err(err(
                "NOAUTH HELLO must be called with the client already authenticated, otherwise \
                 the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the \
                 client and select the RESP protocol version at the same time",
            ));
        }
        if let Some(name) = name {
            set_name(session, name)?;
        }
        out.resp3 = resp3;
        out.map(7);
        out.bulk(b"server");
        out.bulk(b"gyre");
        out.bulk(b"version");
        out.bulk(REDIS_VERSION.as_bytes());
        out.bulk(b"proto");
        out.integer(if resp3 { 3 } else { 2 });
        out.bulk(b"id");
        out.integer(i64::try_from(session.id).unwrap_or(i64::MAX));
        out.bulk(b"mode");
        out.bulk(b"standalone");
        out.bulk(b"role");
        out.bulk(b"master");
        out.bulk(b"modules");
        out.array(0);
        Ok(())
    }

    /// The `[BUCKET b] [R|W n]` options of a `GYRE.*` command from argument
    /// `from` on: the bucket (checked to exist) and the quorum (checked
    /// against its n_val). With `ttl`, also `[EX s|PX ms]` (else the
    /// bucket's default expiry).
    fn options(
        &self,
        session: &Session,
        args: Args<'_>,
        from: usize,
        quorum_name: &str,
        ttl: bool,
    ) -> Result<(BucketName, Option<u8>, Expiry), Fail> {
        let mut bucket = None;
        let mut quorum = None;
        let mut expiry = Expiry::Default;
        let mut i = from;
        while i < args.len() {
            let option = args.get(i);
            if i + 1 >= args.len() {
                return Err(syntax_error());
            }
            let value = args.get(i + 1);
            if option.eq_ignore_ascii_case(b"BUCKET") {
                bucket = Some(bucket_name(value)?);
            } else if option.eq_ignore_ascii_case(quorum_name.as_bytes()) {
                quorum = Some(parse::integer(value).ok_or_else(not_integer)?);
            } else if ttl && option.eq_ignore_ascii_case(b"EX") {
                expiry = super::expire::checked_expiry(Unit::Seconds, value, "gyre.put")?;
            } else if ttl && option.eq_ignore_ascii_case(b"PX") {
                expiry = super::expire::checked_expiry(Unit::Millis, value, "gyre.put")?;
            } else {
                return Err(syntax_error());
            }
            i += 2;
        }
        let bucket = match bucket {
            Some(b) => {
                let (command, access) = if quorum_name == "R" {
                    ("gyre.get", Access::Read(&b))
                } else {
                    ("gyre.put", Access::Write(&b))
                };
                permit(session, command, access)?;
                b
            }
            None => session.bucket.clone(),
        };
        let props = self
            .backend
            .bucket(&bucket)
            .ok_or_else(|| unknown_bucket(&bucket))?;
        let n_val = props.n_val();
        let quorum = match quorum {
            None => None,
            Some(q) => match u8::try_from(q) {
                Ok(q) if (1..=n_val).contains(&q) => Some(q),
                _ => {
                    return Err(err(format!(
                        "ERR {quorum_name}={q} is impossible with n_val={n_val}: it must be \
                         between 1 and {n_val}"
                    )));
                }
            },
        };
        Ok((bucket, quorum, expiry))
    }

    /// The `INFO` text: the sections asked for, or the default ones.
    fn info(&self, args: Args<'_>) -> String {
        let wanted = |section: &str| {
            args.len() == 1
                || args.iter().skip(1).any(|a| {
                    a.eq_ignore_ascii_case(section.as_bytes())
                        || a.eq_ignore_ascii_case(b"all")
                        || a.eq_ignore_ascii_case(b"everything")
                        || a.eq_ignore_ascii_case(b"default")
                })
        };
        let mut text = String::new();
        let uptime = self.started.elapsed().as_secs();
        // Writing to a String cannot fail.
        if wanted("server") {
            let _ = write!(
                text,
                "# Server\r\nredis_version:{REDIS_VERSION}\r\ngyre_version:{}\r\n\
                 redis_mode:standalone\r\nos:{} {}\r\narch_bits:{}\r\nprocess_id:{}\r\n\
                 tcp_port:{}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\n",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH,
                usize::BITS,
                std::process::id(),
                self.port,
                uptime / 86_400,
            );
        }
        if wanted("clients") {
            let _ = write!(
                text,
                "{}# Clients\r\nconnected_clients:{}\r\n",
                if text.is_empty() { "" } else { "\r\n" },
                self.connected_clients.load(Ordering::Relaxed),
            );
        }
        if wanted("stats") {
            let _ = write!(
                text,
                "{}# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n",
                if text.is_empty() { "" } else { "\r\n" },
                self.connections_received.load(Ordering::Relaxed),
                self.commands_processed.load(Ordering::Relaxed),
            );
        }
        if wanted("replication") {
            let _ = write!(
                text,
                "{}# Replication\r\nrole:master\r\nconnected_slaves:0\r\n",
                if text.is_empty() { "" } else { "\r\n" },
            );
        }
        if wanted("keyspace") {
            let _ = write!(
                text,
                "{}# Keyspace\r\n",
                if text.is_empty() { "" } else { "\r\n" },
            );
        }
        text
    }
}

/// Every key of a multi-key command, checked before any reaches the
/// backend.
fn keys<'a>(args: impl Iterator<Item = &'a [u8]>) -> Result<Vec<Key>, Fail> {
    args.map(key).collect()
}

fn set_name(session: &mut Session, name: &[u8]) -> Result<(), Fail> {
    if !valid_client_name(name) {
        return Err(err(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    session.name = (!name.is_empty()).then(|| name.to_vec());
    session.entry.named(session.name.clone());
    Ok(())
}

/// `COMMAND`, `COMMAND COUNT|DOCS|INFO|LIST`.
fn command(args: Args<'_>, out: &mut Out) -> Result<(), Fail> {
    if args.len() == 1 {
        out.array(0);
        return Ok(());
    }
    let sub = args.get(1);
    if sub.eq_ignore_ascii_case(b"COUNT") {
        if args.len() != 2 {
            return Err(wrong_arity("command|count"));
        }
        out.integer(Cmd::ALL.len() as i64);
    } else if sub.eq_ignore_ascii_case(b"DOCS") {
        // No documentation: redis-cli asks at start and does without.
        out.map(0);
    } else if sub.eq_ignore_ascii_case(b"INFO") {
        out.array(args.len() - 2);
        for _ in 2..args.len() {
            out.null();
        }
    } else if sub.eq_ignore_ascii_case(b"LIST") {
        out.array(Cmd::ALL.len());
        for cmd in Cmd::ALL {
            out.bulk(cmd.name().as_bytes());
        }
    } else {
        return Err(unknown_subcommand(sub, "COMMAND"));
    }
    Ok(())
}

/// `CONFIG GET parameter [parameter …]`; nothing can be set.
fn config(args: Args<'_>, out: &mut Out) -> Result<(), Fail> {
    let sub = args.get(1);
    if sub.eq_ignore_ascii_case(b"GET") {
        if args.len() < 3 {
            return Err(wrong_arity("config|get"));
        }
        let matched: Vec<_> = CONFIG
            .iter()
            .filter(|(name, _)| {
                args.iter()
                    .skip(2)
                    .any(|p| Pattern::new(p, true).matches(name.as_bytes()))
            })
            .collect();
        out.map(matched.len());
        for (name, value) in matched {
            out.bulk(name.as_bytes());
            out.bulk(value.as_bytes());
        }
        Ok(())
    } else if [&b"SET"[..], b"RESETSTAT", b"REWRITE"]
        .iter()
        .any(|s| sub.eq_ignore_ascii_case(s))
    {
        Err(err(format!(
            "ERR CONFIG {} is not supported by Gyre",
            String::from_utf8_lossy(sub).to_ascii_uppercase()
        )))
    } else {
        Err(unknown_subcommand(sub, "CONFIG"))
    }
}

/// `CLIENT ID|GETNAME|SETNAME|SETINFO|INFO|LIST`.
fn client(
    session: &mut Session,
    clients: &Clients,
    args: Args<'_>,
    out: &mut Out,
) -> Result<(), Fail> {
    let sub = args.get(1);
    let arity = |n: usize, name: &str| {
        if args.len() == n {
            Ok(())
        } else {
            Err(wrong_arity(name))
        }
    };
    if sub.eq_ignore_ascii_case(b"ID") {
        arity(2, "client|id")?;
        out.integer(i64::try_from(session.id).unwrap_or(i64::MAX));
    } else if sub.eq_ignore_ascii_case(b"GETNAME") {
        arity(2, "client|getname")?;
        out.bulk_or_null(session.name.as_deref());
    } else if sub.eq_ignore_ascii_case(b"SETNAME") {
        arity(3, "client|setname")?;
        set_name(session, args.get(2))?;
        out.ok();
    } else if sub.eq_ignore_ascii_case(b"SETINFO") {
        arity(4, "client|setinfo")?;
        let attr = args.get(2);
        if !attr.eq_ignore_ascii_case(b"LIB-NAME") && !attr.eq_ignore_ascii_case(b"LIB-VER") {
            return Err(err(format!(
                "ERR Unrecognized option '{}'",
                String::from_utf8_lossy(truncated(attr, 128))
            )));
        }
        out.ok();
    } else if sub.eq_ignore_ascii_case(b"INFO") {
        arity(2, "client|info")?;
        session.entry.ran(
            "client|info",
            out.resp3,
            session.transaction.as_ref().map(Transaction::len),
        );
        out.verbatim(&session.entry.line(Instant::now()));
    } else if sub.eq_ignore_ascii_case(b"LIST") {
        // `CLIENT LIST [TYPE normal] [ID id …]`: every client is normal.
        let mut ids: Option<Vec<u64>> = None;
        let mut other_type = false;
        let mut i = 2;
        while i < args.len() {
            let option = args.get(i);
            if option.eq_ignore_ascii_case(b"TYPE") && i + 1 < args.len() {
                other_type = !args.get(i + 1).eq_ignore_ascii_case(b"normal");
                i += 2;
            } else if option.eq_ignore_ascii_case(b"ID") && i + 1 < args.len() {
                let mut list = Vec::new();
                for arg in args.iter().skip(i + 1) {
                    let id = std::str::from_utf8(arg)
                        .ok()
                        .and_then(|a| a.parse::<u64>().ok())
                        .ok_or_else(|| err("ERR Invalid client ID"))?;
                    list.push(id);
                }
                ids = Some(list);
                i = args.len();
            } else {
                return Err(syntax_error());
            }
        }
        let text = if other_type {
            String::new()
        } else {
            clients.list(ids.as_deref())
        };
        out.verbatim(&text);
    } else {
        return Err(unknown_subcommand(sub, "CLIENT"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_found_in_any_case() {
        assert_eq!(Cmd::lookup(b"get"), Some(Cmd::Get));
        assert_eq!(Cmd::lookup(b"gYrE.pUt"), Some(Cmd::GyrePut));
        assert_eq!(Cmd::lookup(b"GETX"), None);
        assert_eq!(Cmd::lookup(b""), None);
        assert_eq!(Cmd::lookup(&[b'A'; 100]), None);
        for cmd in Cmd::ALL {
            assert_eq!(Cmd::lookup(cmd.name().as_bytes()), Some(cmd));
        }
    }

    #[test]
    fn contexts_are_standard_base64_or_none() {
        assert!(matches!(context(b""), Ok(None)));
        assert!(matches!(context(b"-"), Ok(None)));
        assert!(matches!(context(b"AQA="), Ok(Some(b)) if b[..] == [1, 0]));
        assert!(matches!(context(b"!!"), Err(Fail::Msg(m)) if m.starts_with("ERR bad context: ")));
    }
}
