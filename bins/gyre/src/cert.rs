//! `gyre cert`: the cluster CA and node certificates.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Subcommand;
use gyre_transport::tls::ClusterCa;
use gyre_types::NodeId;

/// `gyre cert` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum CertCommand {
    /// Make a cluster CA: `ca.pem` (give it to every node) and `ca.key`
    /// (secret: whoever holds it can add nodes).
    Ca {
        /// The cluster's name; nodes of other clusters are refused.
        #[arg(long, default_value = "gyre")]
        cluster: String,
        /// The directory to write to.
        #[arg(long)]
        out: PathBuf,
    },
    /// Issue a certificate for a node: `node.pem` and `node.key`, beside a
    /// copy of the CA certificate `ca.pem` (all a node needs, and no CA
    /// key). Its id is random unless given; a node started with it has that
    /// id for as long as its data directory lives. After losing its data a
    /// node needs a new certificate (a new id).
    Node {
        /// The directory holding `ca.pem` and `ca.key`.
        #[arg(long)]
        ca_dir: PathBuf,
        /// The node id (16 hex digits) [default: random].
        #[arg(long)]
        id: Option<NodeId>,
        /// The directory to write to.
        #[arg(long)]
        out: PathBuf,
    },
    /// Issue a certificate for the client-facing listeners (Redis, HTTP):
    /// `client-tls.pem` and `client-tls.key`, for the names and addresses
    /// clients connect to. Clients trust it by trusting `ca.pem`
    /// (`redis-cli --tls --cacert ca.pem`, `curl --cacert ca.pem`).
    /// Issue a client certificate for a user: `client.pem` and
    /// `client.key`. Presented to a node's TLS listener (`redis-cli --tls
    /// --cert client.pem --key client.key`, `curl --cert … --key …`), it
    /// authenticates as that user, with the role the node's config gives
    /// it; no secret needed.
    Client {
        /// The directory holding `ca.pem` and `ca.key`.
        #[arg(long)]
        ca_dir: PathBuf,
        /// The user's name (as in the nodes' users; at most 31 bytes).
        #[arg(long)]
        user: String,
        /// The directory to write to.
        #[arg(long)]
        out: PathBuf,
    },
    ClientTls {
        /// The directory holding `ca.pem` and `ca.key`.
        #[arg(long)]
        ca_dir: PathBuf,
        /// A host name or IP address clients use (repeatable).
        #[arg(long = "name", required = true)]
        names: Vec<String>,
        /// The directory to write to.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Writes `contents` to `dir/name`, private to its owner if `secret`;
/// refuses to overwrite.
pub(crate) fn write_new(
    dir: &Path,
    name: &str,
    contents: &str,
    secret: bool,
) -> anyhow::Result<()> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options
        .open(&path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Writes a certificate as `<stem>.pem` and its key as `<stem>.key`
/// (private to its owner) in `dir`; neither may exist yet.
fn write_pair(dir: &Path, stem: &str, cert_pem: &str, key_pem: &str) -> anyhow::Result<()> {
    write_new(dir, &format!("{stem}.pem"), cert_pem, false)?;
    write_new(dir, &format!("{stem}.key"), key_pem, true)
}

/// Makes a CA for `cluster` in `dir`.
pub(crate) fn make_ca(cluster: &str, dir: &Path) -> anyhow::Result<()> {
    let ca = ClusterCa::generate(cluster)?;
    write_pair(dir, "ca", ca.cert_pem(), &ca.key_pem())
}

/// The CA in `dir` (`ca.pem`, `ca.key`).
fn read_ca(dir: &Path) -> anyhow::Result<ClusterCa> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
    };
    Ok(ClusterCa::from_pem(&read("ca.pem")?, &read("ca.key")?)?)
}

/// Runs a `gyre cert` command.
pub(crate) fn run(command: CertCommand) -> anyhow::Result<()> {
    match command {
        CertCommand::Ca { cluster, out } => {
            make_ca(&cluster, &out)?;
            out!(
                "cluster CA for {cluster:?} written to {0}/ca.pem and {0}/ca.key (keep ca.key secret)",
                out.display()
            );
        }
        CertCommand::ClientTls { ca_dir, names, out } => {
            let cert = read_ca(&ca_dir)?.issue_server(&names)?;
            write_pair(&out, "client-tls", &cert.cert_pem, &cert.key_pem)?;
            out!(
                "client TLS certificate for {} written to {1}/client-tls.pem and {1}/client-tls.key",
                names.join(", "),
                out.display()
            );
        }
        CertCommand::Client { ca_dir, user, out } => {
            let cert = read_ca(&ca_dir)?.issue_user(&user)?;
            write_pair(&out, "client", &cert.cert_pem, &cert.key_pem)?;
            out!(
                "client certificate of user {user} written to {0}/client.pem and {0}/client.key",
                out.display()
            );
        }
        CertCommand::Node { ca_dir, id, out } => {
            let ca = read_ca(&ca_dir)?;
            let id = match id {
                Some(id) => id,
                None => NodeId::new(getrandom::u64().context("no randomness for a node id")?),
            };
            // The CA certificate beside the node's: one there already must
            // be this CA's (the CA directory itself, say).
            let ca_copy = out.join("ca.pem");
            let copy_ca = match std::fs::read_to_string(&ca_copy) {
                Ok(there) if there == ca.cert_pem() => false,
                Ok(_) => bail!(
                    "{} holds another CA's certificate: issue into another directory",
                    ca_copy.display()
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
                Err(e) => return Err(e).context(format!("cannot read {}", ca_copy.display())),
            };
            let cert = ca.issue_node(id)?;
            write_pair(&out, "node", &cert.cert_pem, &cert.key_pem)?;
            if copy_ca {
                write_new(&out, "ca.pem", ca.cert_pem(), false)?;
            }
            out!("{id}");
        }
    }
    Ok(())
}
