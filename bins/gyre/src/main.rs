//! `gyre`: run a Gyre node, a local demo cluster, make certificates,
//! administer a cluster, and read and write keys.
//!
//! ```text
//! gyre demo                                  # a 3-node cluster on loopback
//! gyre cert ca --out certs                   # a cluster CA
//! gyre node --data-dir d1 --ca-cert certs/ca.pem --ca-key certs/ca.key
//! gyre cluster status --node http://127.0.0.1:8080
//! gyre put greeting hello && gyre get greeting
//! ```
//!
//! Logs go to stderr, human-readable unless `--log-format json`, at the
//! level of `--log-level` or `RUST_LOG` (default `info`; `warn` for
//! `gyre demo`, which prints its own progress).

/// `println!` that ignores a closed stdout (`gyre … | head`, a script that
/// stopped reading): what the program does must not depend on it.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod backend;
mod cert;
mod client;
mod config;
mod demo;
mod process;
mod run;
mod user;

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

/// Gyre: a Dynamo-style distributed key-value store.
#[derive(Parser, Debug)]
#[command(name = "gyre", version, about)]
struct Cli {
    /// Log format.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "GYRE_LOG_FORMAT",
        default_value = "human"
    )]
    log_format: LogFormat,
    /// Log level or filter (as RUST_LOG; this flag wins over it).
    #[arg(long, global = true, env = "GYRE_LOG_LEVEL")]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one node until SIGTERM or Ctrl-C.
    Node(Box<config::NodeArgs>),
    /// Run a local cluster on loopback until Ctrl-C.
    Demo(demo::DemoArgs),
    /// Make the cluster CA and node certificates.
    #[command(subcommand)]
    Cert(cert::CertCommand),
    /// Make client users (their secrets and the config lines with their
    /// hashes).
    #[command(subcommand)]
    User(user::UserCommand),
    /// Cluster status and layout changes.
    Cluster {
        #[command(flatten)]
        target: client::Target,
        #[command(subcommand)]
        command: client::ClusterCommand,
    },
    /// Whether a node is healthy: exits 0 if it is, 1 if it answered that
    /// it is not, 2 if it cannot be reached. Needs no credential (a
    /// container health check runs it).
    Health {
        #[command(flatten)]
        target: client::Target,
        /// Only whether the process answers (`/health/live`), not whether
        /// it serves (`/health`: it holds a layout).
        #[arg(long)]
        live: bool,
    },
    /// Read a key: every sibling and the context to write with. Exits 0
    /// if the key has a value, 1 if the node answered that it has none, 2
    /// on any error (as every command does).
    Get {
        #[command(flatten)]
        target: client::Target,
        #[command(flatten)]
        key: client::KeyArgs,
        /// Read quorum.
        #[arg(long)]
        r: Option<u8>,
    },
    /// Write a key. Without --context the write supersedes everything the
    /// coordinating node knows of the key.
    Put {
        #[command(flatten)]
        target: client::Target,
        #[command(flatten)]
        key: client::KeyArgs,
        /// The value.
        value: String,
        /// The context of an earlier read.
        #[arg(long)]
        context: Option<String>,
        /// Write quorum.
        #[arg(long)]
        w: Option<u8>,
    },
    /// Delete a key.
    Del {
        #[command(flatten)]
        target: client::Target,
        #[command(flatten)]
        key: client::KeyArgs,
        /// The context of an earlier read.
        #[arg(long)]
        context: Option<String>,
        /// Write quorum.
        #[arg(long)]
        w: Option<u8>,
    },
}

fn init_logs(format: LogFormat, level: Option<&str>) {
    let filter = match level {
        Some(l) => EnvFilter::new(l),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    // Colours only for a terminal, not for files, journald or docker logs.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The demo prints its own progress; its nodes' info logs would come in
    // between, so it logs warnings only unless told otherwise.
    let demo_level = (matches!(cli.command, Command::Demo(_))
        && std::env::var_os("RUST_LOG").is_none())
    .then_some("warn");
    init_logs(cli.log_format, cli.log_level.as_deref().or(demo_level));
    if let Command::Cluster { target, .. }
    | Command::Get { target, .. }
    | Command::Put { target, .. }
    | Command::Del { target, .. } = &cli.command
    {
        match target.secret() {
            Ok(token) => client::use_token(token),
            Err(e) => {
                eprintln!("error: {e:#}");
                return std::process::ExitCode::from(2);
            }
        }
    }
    let result = match cli.command {
        Command::Node(args) => {
            config::Settings::resolve(*args).and_then(|s| runtime()?.block_on(run::node(s)))
        }
        Command::Demo(args) => runtime().and_then(|rt| rt.block_on(demo::run(args))),
        Command::Cert(command) => cert::run(command),
        Command::User(command) => user::run(command),
        Command::Cluster { target, command } => client::cluster(&target, command),
        Command::Health { target, live } => match client::health(&target, live) {
            Ok(false) => return std::process::ExitCode::from(1),
            other => other.map(|_| ()),
        },
        Command::Get { target, key, r } => match client::get(&target, &key, r) {
            Ok(client::Found::No) => return std::process::ExitCode::from(1),
            other => other.map(|_| ()),
        },
        Command::Put {
            target,
            key,
            value,
            context,
            w,
        } => client::write(&target, &key, Some(value), context, w),
        Command::Del {
            target,
            key,
            context,
            w,
        } => client::write(&target, &key, None, context, w),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::Parser as _;

    use super::{Cli, Command};
    use crate::client::ClusterCommand;

    #[test]
    fn a_member_id_and_the_node_url_parse_apart() {
        for args in [
            [
                "gyre",
                "cluster",
                "join",
                "00000000000000aa",
                "--node",
                "http://h:1",
            ],
            [
                "gyre",
                "cluster",
                "--node",
                "http://h:1",
                "join",
                "00000000000000aa",
            ],
        ] {
            match Cli::try_parse_from(args).unwrap().command {
                Command::Cluster {
                    target,
                    command: ClusterCommand::Join { member },
                } => {
                    assert_eq!(member, "00000000000000aa");
                    assert_eq!(target.node, "http://h:1");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
