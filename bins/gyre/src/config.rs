//! A node's settings: a TOML file, overridden by `GYRE_*` environment
//! variables, overridden by command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use gyre_api::auth::{Role, UserEntry, hash_secret};
use gyre_storage::Durability;
use gyre_types::{BucketProps, PartitionCount};
use serde::{Deserialize, Serialize};

/// `gyre node` flags. Every one may also come from the config file (the
/// same name, `-` as `_`) or from `GYRE_<NAME>`.
#[derive(Args, Debug, Default, Clone)]
pub(crate) struct NodeArgs {
    /// The TOML config file.
    #[arg(long, short = 'c', env = "GYRE_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// A name for logs and `gyre cluster status` (default: the host's).
    #[arg(long, env = "GYRE_NAME")]
    pub(crate) name: Option<String>,
    /// Where the node keeps its data (bound to its node id).
    #[arg(long, env = "GYRE_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// The cluster's name (peers of other clusters are refused).
    #[arg(long, env = "GYRE_CLUSTER")]
    pub(crate) cluster: Option<String>,
    /// QUIC (UDP) address for peers [default: 127.0.0.1:7000].
    #[arg(long, env = "GYRE_PEER_LISTEN")]
    pub(crate) peer_listen: Option<SocketAddr>,
    /// The address peers reach this node at, if not `peer_listen` (needed
    /// when listening on 0.0.0.0).
    #[arg(long, env = "GYRE_PEER_ADVERTISE")]
    pub(crate) peer_advertise: Option<String>,
    /// Redis protocol (TCP) address [default: 127.0.0.1:6379].
    #[arg(long, env = "GYRE_RESP_LISTEN")]
    pub(crate) resp_listen: Option<SocketAddr>,
    /// HTTP address [default: 127.0.0.1:8080].
    #[arg(long, env = "GYRE_HTTP_LISTEN")]
    pub(crate) http_listen: Option<SocketAddr>,
    /// A peer address to join through (repeatable; GYRE_SEEDS is
    /// comma-separated).
    #[arg(long = "seed", env = "GYRE_SEEDS", value_delimiter = ',')]
    pub(crate) seeds: Vec<String>,
    /// Failure domain (rack, room, availability zone) [default: default;
    /// empty is the default too].
    #[arg(long, env = "GYRE_ZONE")]
    pub(crate) zone: Option<String>,
    /// Relative capacity: the share of data this node takes [default: 100].
    #[arg(long, env = "GYRE_CAPACITY")]
    pub(crate) capacity: Option<u32>,
    /// When writes are acknowledged: always, group or none [default: group].
    #[arg(long, env = "GYRE_FSYNC")]
    pub(crate) fsync: Option<Durability>,
    /// The cluster CA certificate (PEM).
    #[arg(long, env = "GYRE_CA_CERT")]
    pub(crate) ca_cert: Option<PathBuf>,
    /// The cluster CA key (PEM): the node issues its own certificate for
    /// its id. Give this, or `node_cert` and `node_key`.
    #[arg(long, env = "GYRE_CA_KEY")]
    pub(crate) ca_key: Option<PathBuf>,
    /// This node's certificate (PEM), issued by `gyre cert node`.
    #[arg(long, env = "GYRE_NODE_CERT")]
    pub(crate) node_cert: Option<PathBuf>,
    /// This node's key (PEM).
    #[arg(long, env = "GYRE_NODE_KEY")]
    pub(crate) node_key: Option<PathBuf>,
    /// Replicas per key of buckets that do not say [default: 3].
    #[arg(long, env = "GYRE_N_VAL")]
    pub(crate) n_val: Option<u8>,
    /// Read quorum of buckets that do not say [default: majority].
    #[arg(long, env = "GYRE_R")]
    pub(crate) r: Option<u8>,
    /// Write quorum of buckets that do not say [default: majority].
    #[arg(long, env = "GYRE_W")]
    pub(crate) w: Option<u8>,
    /// Partitions of a new cluster's ring (a power of two) [default: 256].
    #[arg(long, env = "GYRE_PARTITIONS")]
    pub(crate) partitions: Option<u32>,
    /// A password Redis clients must give with AUTH (as Redis's
    /// `requirepass`): the secret of a user `default` with the `admin`
    /// role. Prefer users (`gyre user add`).
    #[arg(long, env = "GYRE_RESP_PASSWORD")]
    pub(crate) resp_password: Option<String>,
    /// A TOML file of `[[users]]` (what `gyre user add` prints), besides
    /// those of the config file.
    #[arg(long, env = "GYRE_USERS_FILE")]
    pub(crate) users_file: Option<PathBuf>,
    /// Serve every client without authentication even on a non-loopback
    /// address (protected mode refuses to start like that otherwise).
    #[arg(long, env = "GYRE_INSECURE_NO_AUTH")]
    pub(crate) insecure_no_auth: bool,
    /// `GET /metrics` needs a user too (by default it is open, for
    /// Prometheus).
    #[arg(long, env = "GYRE_PROTECT_METRICS")]
    pub(crate) protect_metrics: bool,
    /// Clients each front end serves at once (Redis's `maxclients`); more
    /// are refused with an error [default: 10000].
    #[arg(long, env = "GYRE_MAX_CLIENTS")]
    pub(crate) max_clients: Option<usize>,
    /// Close a Redis connection that completes no command for this many
    /// seconds (Redis's `timeout`; 0: never) [default: 0].
    #[arg(long, env = "GYRE_RESP_IDLE_TIMEOUT_SECS")]
    pub(crate) resp_idle_timeout_secs: Option<u64>,
    /// TLS for clients: the certificate (chain, PEM) the Redis and HTTP
    /// listeners present (`gyre cert client-tls` makes one). With it both
    /// speak only TLS.
    #[arg(long, env = "GYRE_CLIENT_TLS_CERT", requires = "client_tls_key")]
    pub(crate) client_tls_cert: Option<PathBuf>,
    /// The key of `client_tls_cert` (PEM).
    #[arg(long, env = "GYRE_CLIENT_TLS_KEY", requires = "client_tls_cert")]
    pub(crate) client_tls_key: Option<PathBuf>,
    /// How often held hints are offered to their owners, in milliseconds
    /// [default: 10000].
    #[arg(long, env = "GYRE_HINT_INTERVAL_MS")]
    pub(crate) hint_interval_ms: Option<u64>,
    /// How often each partition is compared with its other replicas
    /// (Merkle anti-entropy), in seconds [default: 600].
    #[arg(long, env = "GYRE_ANTI_ENTROPY_INTERVAL_SECS")]
    pub(crate) anti_entropy_interval_secs: Option<u64>,
    /// How long a tombstone or an expired value stays after every replica
    /// holds it, before it is purged, in seconds [default: 3600]. Longer
    /// than any outage a node may come back from with its data.
    #[arg(long, env = "GYRE_TOMBSTONE_GRACE_SECS")]
    pub(crate) tombstone_grace_secs: Option<u64>,
    /// How often the node sweeps its partitions for tombstones and expired
    /// values nobody reads, in seconds [default: 3600].
    #[arg(long, env = "GYRE_SWEEP_INTERVAL_SECS")]
    pub(crate) sweep_interval_secs: Option<u64>,
    /// Gossip round interval, in milliseconds [default: 1000]. Failure
    /// detection scales with it.
    #[arg(long, env = "GYRE_GOSSIP_INTERVAL_MS")]
    pub(crate) gossip_interval_ms: Option<u64>,
    /// Partition handoff throttle: bytes per second this node pulls at
    /// most, 0 for no limit [default: 50000000, 50 MB/s]. Changeable at
    /// run time with `gyre cluster throttle`.
    #[arg(long, env = "GYRE_HANDOFF_RATE")]
    pub(crate) handoff_rate: Option<u64>,
    /// Partition handoff throttle: partitions this node pulls at once
    /// [default: 4].
    #[arg(long, env = "GYRE_HANDOFF_INBOUND")]
    pub(crate) handoff_inbound: Option<usize>,
    /// Partition handoff throttle: partitions this node serves at once
    /// [default: 4].
    #[arg(long, env = "GYRE_HANDOFF_OUTBOUND")]
    pub(crate) handoff_outbound: Option<usize>,
    /// Seconds a finished layout change waits before this node hands off
    /// and drops the partitions it no longer holds [default: one gossip
    /// interval, 1 s].
    #[arg(long, env = "GYRE_HANDOFF_DROP_GRACE_SECS")]
    pub(crate) handoff_drop_grace_secs: Option<u64>,
    /// How much lower the CPU priority of the threads that read, merge and
    /// drop partitions during layout changes is than the node's: a nice
    /// value added to the node's, 0 to 19 [default: 10]. Clients' requests
    /// get the CPU first; 0 gives a change the same share as clients.
    #[arg(long, env = "GYRE_HANDOFF_NICE", value_parser = clap::value_parser!(u8).range(0..=19))]
    pub(crate) handoff_nice: Option<u8>,
}

/// The config file: the same settings as the flags.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct FileConfig {
    pub(crate) name: Option<String>,
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) cluster: Option<String>,
    pub(crate) peer_listen: Option<SocketAddr>,
    pub(crate) peer_advertise: Option<String>,
    pub(crate) resp_listen: Option<SocketAddr>,
    pub(crate) http_listen: Option<SocketAddr>,
    pub(crate) seeds: Vec<String>,
    pub(crate) zone: Option<String>,
    pub(crate) capacity: Option<u32>,
    pub(crate) fsync: Option<Durability>,
    pub(crate) ca_cert: Option<PathBuf>,
    pub(crate) ca_key: Option<PathBuf>,
    pub(crate) node_cert: Option<PathBuf>,
    pub(crate) node_key: Option<PathBuf>,
    pub(crate) n_val: Option<u8>,
    pub(crate) r: Option<u8>,
    pub(crate) w: Option<u8>,
    pub(crate) partitions: Option<u32>,
    pub(crate) resp_password: Option<String>,
    pub(crate) users: Vec<UserEntry>,
    pub(crate) users_file: Option<PathBuf>,
    pub(crate) insecure_no_auth: Option<bool>,
    pub(crate) protect_metrics: Option<bool>,
    pub(crate) max_clients: Option<usize>,
    pub(crate) resp_idle_timeout_secs: Option<u64>,
    pub(crate) client_tls_cert: Option<PathBuf>,
    pub(crate) client_tls_key: Option<PathBuf>,
    pub(crate) hint_interval_ms: Option<u64>,
    pub(crate) anti_entropy_interval_secs: Option<u64>,
    pub(crate) tombstone_grace_secs: Option<u64>,
    pub(crate) sweep_interval_secs: Option<u64>,
    pub(crate) gossip_interval_ms: Option<u64>,
    pub(crate) handoff_rate: Option<u64>,
    pub(crate) handoff_inbound: Option<usize>,
    pub(crate) handoff_outbound: Option<usize>,
    pub(crate) handoff_drop_grace_secs: Option<u64>,
    pub(crate) handoff_nice: Option<u8>,
}

impl FileConfig {
    /// Reads a config file.
    pub(crate) fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("bad config file {}", path.display()))
    }
}

/// How the node proves who it is to peers.
#[derive(Debug, Clone)]
pub(crate) enum Credentials {
    /// It holds the CA key and issues itself a certificate for its id.
    CaKey { ca_cert: PathBuf, ca_key: PathBuf },
    /// An operator issued its certificate; its id is the one the
    /// certificate names.
    NodeCert {
        ca_cert: PathBuf,
        cert: PathBuf,
        key: PathBuf,
    },
}

impl Credentials {
    /// The cluster CA certificate.
    pub(crate) fn ca_cert(&self) -> &Path {
        match self {
            Self::CaKey { ca_cert, .. } | Self::NodeCert { ca_cert, .. } => ca_cert,
        }
    }
}

/// Every setting of a node, resolved.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) name: String,
    pub(crate) data_dir: PathBuf,
    pub(crate) cluster: String,
    pub(crate) peer_listen: SocketAddr,
    pub(crate) peer_advertise: Option<String>,
    pub(crate) resp_listen: SocketAddr,
    pub(crate) http_listen: SocketAddr,
    pub(crate) seeds: Vec<String>,
    pub(crate) zone: String,
    pub(crate) capacity: u32,
    pub(crate) fsync: Durability,
    pub(crate) credentials: Credentials,
    pub(crate) bucket_defaults: BucketProps,
    pub(crate) partitions: PartitionCount,
    /// Every user: the config file's, the users file's, and `default` for
    /// a `resp_password`.
    pub(crate) users: Vec<UserEntry>,
    pub(crate) protect_metrics: bool,
    /// Clients each front end serves at once.
    pub(crate) max_clients: usize,
    /// When an idle Redis connection is closed (`None`: never).
    pub(crate) resp_idle_timeout: Option<Duration>,
    /// TLS for clients: certificate and key files.
    pub(crate) client_tls: Option<(PathBuf, PathBuf)>,
    pub(crate) hint_interval: Duration,
    pub(crate) anti_entropy_interval: Duration,
    pub(crate) tombstone_grace: Duration,
    pub(crate) sweep_interval: Duration,
    pub(crate) gossip_interval: Duration,
    pub(crate) handoff: gyre_node::HandoffConfig,
    /// The nice value the background (handoff) threads add to the node's.
    pub(crate) handoff_nice: i32,
}

impl Settings {
    /// Flags over environment (clap merges those two) over the file over
    /// defaults.
    pub(crate) fn resolve(args: NodeArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => FileConfig::read(path)?,
            None => FileConfig::default(),
        };
        // Relative paths in a config file are relative to the file.
        let base = args
            .config
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let from_file = |p: Option<PathBuf>| p.map(|p| base.join(p));
        let data_dir = args
            .data_dir
            .or(from_file(file.data_dir))
            .context("no data directory: give --data-dir (or data_dir in the config file)")?;
        let ca_cert = args
            .ca_cert
            .or(from_file(file.ca_cert))
            .context("no cluster CA: give --ca-cert (make one with `gyre cert ca`)")?;
        let credentials = match (
            args.ca_key.or(from_file(file.ca_key)),
            args.node_cert.or(from_file(file.node_cert)),
            args.node_key.or(from_file(file.node_key)),
        ) {
            (Some(ca_key), None, None) => Credentials::CaKey { ca_cert, ca_key },
            (None, Some(cert), Some(key)) => Credentials::NodeCert { ca_cert, cert, key },
            _ => bail!(
                "give either --ca-key (the node issues its own certificate) or both --node-cert and --node-key"
            ),
        };
        let n_val = args.n_val.or(file.n_val).unwrap_or(3);
        let majority = n_val / 2 + 1;
        let bucket_defaults = BucketProps::new(
            n_val,
            args.r.or(file.r).unwrap_or(majority),
            args.w.or(file.w).unwrap_or(majority),
        )
        .context("bad replication defaults")?;
        let partitions = PartitionCount::new(args.partitions.or(file.partitions).unwrap_or(256))
            .context("bad partition count")?;
        let mut users = file.users;
        if let Some(path) = args.users_file.or(from_file(file.users_file)) {
            users.extend(UsersFile::read(&path)?.users);
        }
        if let Some(password) = args.resp_password.or(file.resp_password) {
            users.push(UserEntry {
                name: "default".to_owned(),
                role: Role::Admin,
                buckets: None,
                secret_hash: hash_secret(&password).context("cannot hash resp_password")?,
            });
        }
        let insecure_no_auth = args.insecure_no_auth || file.insecure_no_auth.unwrap_or(false);
        let seeds = if args.seeds.is_empty() {
            file.seeds
        } else {
            args.seeds
        };
        let settings = Self {
            name: args
                .name
                .or(file.name)
                .unwrap_or_else(|| default_name(&data_dir)),
            data_dir,
            cluster: args
                .cluster
                .or(file.cluster)
                .unwrap_or_else(|| "gyre".to_owned()),
            peer_listen: args
                .peer_listen
                .or(file.peer_listen)
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 7000))),
            peer_advertise: args.peer_advertise.or(file.peer_advertise),
            resp_listen: args
                .resp_listen
                .or(file.resp_listen)
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 6379))),
            http_listen: args
                .http_listen
                .or(file.http_listen)
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080))),
            seeds,
            // Empty is unset: a Kubernetes pod gets its zone from a label
            // that a cluster without zones leaves empty.
            zone: args
                .zone
                .filter(|z| !z.is_empty())
                .or(file.zone)
                .unwrap_or_else(|| "default".to_owned()),
            capacity: args.capacity.or(file.capacity).unwrap_or(100),
            fsync: args.fsync.or(file.fsync).unwrap_or_default(),
            credentials,
            bucket_defaults,
            partitions,
            users,
            protect_metrics: args.protect_metrics || file.protect_metrics.unwrap_or(false),
            max_clients: args
                .max_clients
                .or(file.max_clients)
                .unwrap_or(10_000)
                .max(1),
            resp_idle_timeout: args
                .resp_idle_timeout_secs
                .or(file.resp_idle_timeout_secs)
                .filter(|&s| s > 0)
                .map(Duration::from_secs),
            client_tls: match (
                args.client_tls_cert.or(from_file(file.client_tls_cert)),
                args.client_tls_key.or(from_file(file.client_tls_key)),
            ) {
                (Some(cert), Some(key)) => Some((cert, key)),
                (None, None) => None,
                _ => bail!("client TLS needs both client_tls_cert and client_tls_key"),
            },
            hint_interval: Duration::from_millis(
                args.hint_interval_ms
                    .or(file.hint_interval_ms)
                    .unwrap_or(10_000)
                    .max(10),
            ),
            anti_entropy_interval: Duration::from_secs(
                args.anti_entropy_interval_secs
                    .or(file.anti_entropy_interval_secs)
                    .unwrap_or(600)
                    .max(1),
            ),
            tombstone_grace: Duration::from_secs(
                args.tombstone_grace_secs
                    .or(file.tombstone_grace_secs)
                    .unwrap_or(3600),
            ),
            sweep_interval: Duration::from_secs(
                args.sweep_interval_secs
                    .or(file.sweep_interval_secs)
                    .unwrap_or(3600)
                    .max(1),
            ),
            gossip_interval: Duration::from_millis(
                args.gossip_interval_ms
                    .or(file.gossip_interval_ms)
                    .unwrap_or(1000)
                    .max(10),
            ),
            handoff: {
                let d = gyre_node::HandoffConfig::default();
                gyre_node::HandoffConfig {
                    max_rate: args
                        .handoff_rate
                        .or(file.handoff_rate)
                        .unwrap_or(d.max_rate),
                    max_inbound: args
                        .handoff_inbound
                        .or(file.handoff_inbound)
                        .unwrap_or(d.max_inbound)
                        .max(1),
                    max_outbound: args
                        .handoff_outbound
                        .or(file.handoff_outbound)
                        .unwrap_or(d.max_outbound)
                        .max(1),
                    drop_grace: args
                        .handoff_drop_grace_secs
                        .or(file.handoff_drop_grace_secs)
                        .map(Duration::from_secs)
                        .or(d.drop_grace),
                    ..d
                }
            },
            handoff_nice: match args.handoff_nice.or(file.handoff_nice) {
                None => gyre_node::DEFAULT_BACKGROUND_NICE,
                Some(nice @ 0..=19) => i32::from(nice),
                Some(nice) => anyhow::bail!("handoff_nice is {nice}: it must be between 0 and 19"),
            },
        };
        settings.check_protected(insecure_no_auth)?;
        Ok(settings)
    }

    /// The cluster CA certificate.
    pub(crate) fn ca_cert(&self) -> &Path {
        self.credentials.ca_cert()
    }

    /// Protected mode: a node that serves clients beyond loopback with no
    /// users refuses to start, unless told to serve everyone anyway.
    fn check_protected(&self, insecure_no_auth: bool) -> anyhow::Result<()> {
        if !self.users.is_empty() || insecure_no_auth {
            return Ok(());
        }
        for (what, addr) in [("Redis", self.resp_listen), ("HTTP", self.http_listen)] {
            if !addr.ip().is_loopback() {
                bail!(
                    "protected mode: refusing to serve {what} clients on {addr} with no users \
                     configured, as anyone who reaches it could read and write every key and \
                     change the cluster. Add a user (`gyre user add NAME --role admin` prints \
                     the lines for the config file or a users file), listen on 127.0.0.1 only, \
                     or pass --insecure-no-auth to serve everyone anyway"
                );
            }
        }
        Ok(())
    }
}

/// A users file: `[[users]]` entries, as `gyre user add` prints them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    users: Vec<UserEntry>,
}

impl UsersFile {
    fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read users file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("bad users file {}", path.display()))
    }
}

/// The host name, else the data directory's name.
fn default_name(data_dir: &Path) -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| {
            data_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "gyre".to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn flags_override_the_file_and_paths_in_the_file_are_relative_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(
            &path,
            "data_dir = \"data\"\nca_cert = \"ca.pem\"\nca_key = \"ca.key\"\nzone = \"rack1\"\ncapacity = 50\nfsync = \"always\"\nseeds = [\"10.0.0.1:7000\"]\nn_val = 5\n",
        )
        .unwrap();
        let args = NodeArgs {
            config: Some(path.clone()),
            capacity: Some(70),
            ..NodeArgs::default()
        };
        let s = Settings::resolve(args).unwrap();
        assert_eq!(s.data_dir, dir.path().join("data"));
        assert_eq!(s.zone, "rack1");
        assert_eq!(s.capacity, 70);
        assert_eq!(s.fsync, Durability::Always);
        assert_eq!(s.seeds, ["10.0.0.1:7000"]);
        assert_eq!(
            (
                s.bucket_defaults.n_val(),
                s.bucket_defaults.r(),
                s.bucket_defaults.w()
            ),
            (5, 3, 3)
        );
        assert!(matches!(s.credentials, Credentials::CaKey { .. }));

        // An empty zone flag (an empty GYRE_ZONE) leaves the file's.
        let args = NodeArgs {
            config: Some(path),
            zone: Some(String::new()),
            ..NodeArgs::default()
        };
        assert_eq!(Settings::resolve(args).unwrap().zone, "rack1");
    }

    #[test]
    fn the_example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/config/node.toml");
        let file = FileConfig::read(&path).unwrap();
        assert_eq!(file.users_file.as_deref(), Some(Path::new("users.toml")));
        assert_eq!(
            file.resp_listen,
            Some(SocketAddr::from(([0, 0, 0, 0], 6379)))
        );
    }

    #[test]
    fn unknown_settings_and_half_credentials_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, "data_dir = \"d\"\nca_cert = \"c\"\nzoen = \"x\"\n").unwrap();
        let err = Settings::resolve(NodeArgs {
            config: Some(path.clone()),
            ..NodeArgs::default()
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("zoen"), "{err:#}");
        std::fs::write(
            &path,
            "data_dir = \"d\"\nca_cert = \"c\"\nnode_cert = \"x\"\n",
        )
        .unwrap();
        let err = Settings::resolve(NodeArgs {
            config: Some(path),
            ..NodeArgs::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("--node-key"), "{err}");
    }
}
