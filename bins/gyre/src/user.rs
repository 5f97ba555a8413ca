//! `gyre user add`: a new client user, as lines for every node's config.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use gyre_api::auth::{Role, UserEntry, Users, generate_secret, hash_secret};
use serde::Serialize;

/// `gyre user` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum UserCommand {
    /// Make a user: prints the `[[users]]` lines to add to every node's
    /// config file (or users file) on stdout, and its secret, once, on
    /// stderr. Nodes read users from their own config, never over the
    /// network: add the lines to every node and restart it.
    Add {
        /// The user's name: letters, digits, `_` and `-`.
        name: String,
        /// admin (everything), readwrite (keys) or readonly (reads).
        #[arg(long)]
        role: Role,
        /// Limit a readwrite or readonly user to this bucket (repeatable).
        #[arg(long = "bucket")]
        buckets: Vec<String>,
        /// Append the lines to this file (a users file; created private to
        /// its owner) instead of printing them.
        #[arg(long)]
        append: Option<PathBuf>,
        /// Also write the secret to this file (created private to its
        /// owner; refused if it exists).
        #[arg(long)]
        secret_file: Option<PathBuf>,
    },
}

/// The lines `gyre user add` prints.
#[derive(Serialize)]
struct Lines {
    users: Vec<UserEntry>,
}

/// Runs a `gyre user` command.
pub(crate) fn run(command: UserCommand) -> anyhow::Result<()> {
    let UserCommand::Add {
        name,
        role,
        buckets,
        append,
        secret_file,
    } = command;
    let secret = generate_secret(&name)?;
    let entry = UserEntry {
        name: name.clone(),
        role,
        buckets: (!buckets.is_empty()).then_some(buckets),
        secret_hash: hash_secret(&secret)?,
    };
    // The same checks a node makes when it reads the entry.
    Users::new(vec![entry.clone()])?;
    let lines =
        toml::to_string(&Lines { users: vec![entry] }).context("cannot write the user as TOML")?;
    eprintln!(
        "The secret of {name} (shown only now; the lines below hold its hash):\n\n    {secret}\n\n\
         Clients give it as `AUTH {name} <secret>` (Redis), `Authorization: Bearer <secret>` or \
         `curl -u {name}:<secret>` (HTTP), or `--token <secret>` / GYRE_TOKEN (the gyre CLI).\n\
         Every node's config file or users file must hold its lines.\n"
    );
    if let Some(path) = secret_file {
        let (dir, file) = split(&path)?;
        crate::cert::write_new(dir, file, &format!("{secret}\n"), true)?;
    }
    match append {
        None => print!("{lines}"),
        Some(path) => {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            file.write_all(format!("\n{lines}").as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("appended {name} to {}", path.display());
        }
    }
    Ok(())
}

/// A path's directory and file name.
fn split(path: &Path) -> anyhow::Result<(&Path, &str)> {
    let file = path
        .file_name()
        .and_then(|f| f.to_str())
        .with_context(|| format!("{} names no file", path.display()))?;
    Ok((path.parent().unwrap_or(Path::new(".")), file))
}
