//! The command line's client commands: `gyre cluster …`, `gyre get`,
//! `gyre put`, `gyre del`, all over a node's HTTP API.

use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use gyre_api::{AdminCommand, AdminReply, ClusterStatus, PlanSummary};

/// Which node to talk to.
#[derive(Args, Debug, Clone)]
pub(crate) struct Target {
    /// A node's HTTP address.
    #[arg(
        long,
        global = true,
        env = "GYRE_NODE",
        default_value = "http://127.0.0.1:8080"
    )]
    pub(crate) node: String,
}

/// `gyre cluster` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum ClusterCommand {
    /// Members, liveness, zones, capacities, ownership, hints, layout.
    Status {
        /// Print the JSON the node answered.
        #[arg(long)]
        json: bool,
    },
    /// Stage: make a node that gossip knows a member.
    Join {
        /// Its id.
        #[arg(value_name = "NODE_ID")]
        member: String,
    },
    /// Stage: take a member out (its replicas move to the others).
    Leave {
        /// Its id.
        #[arg(value_name = "NODE_ID")]
        member: String,
    },
    /// Stage: forget a node that is gone for good (refused while it is up).
    Remove {
        /// Its id.
        #[arg(value_name = "NODE_ID")]
        member: String,
    },
    /// Stage: a node that lost its data came back under a new id: remove
    /// the old id and join the new one.
    Replace {
        /// The lost node's id.
        old: String,
        /// The id it came back with.
        new: String,
    },
    /// Stage: change a member's capacity or zone.
    Set {
        /// Its id.
        #[arg(value_name = "NODE_ID")]
        member: String,
        /// The new capacity.
        #[arg(long)]
        capacity: Option<u32>,
        /// The new zone.
        #[arg(long)]
        zone: Option<String>,
    },
    /// Forget the staged changes.
    Clear,
    /// Show what committing the staged changes would do.
    Plan,
    /// Commit the staged changes: a new layout for the whole cluster.
    /// Until streaming handoff exists, new replicas of a partition are
    /// filled by anti-entropy.
    Commit,
}

/// Options of `gyre get|put|del`.
#[derive(Args, Debug)]
pub(crate) struct KeyArgs {
    /// The bucket.
    #[arg(long, short = 'b', default_value = gyre_api::DEFAULT_BUCKET)]
    pub(crate) bucket: String,
    /// The key.
    pub(crate) key: String,
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build(),
    )
}

/// A node's answer: the status and the body.
struct Answer {
    status: u16,
    body: Vec<u8>,
    context: Option<String>,
}

impl Answer {
    fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).context("the node answered something that is not JSON")
    }

    /// Fails with the node's error message unless the status is 2xx.
    fn ok(self) -> anyhow::Result<Self> {
        if (200..300).contains(&self.status) {
            return Ok(self);
        }
        let message = self
            .json()
            .ok()
            .and_then(|j| j.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).into_owned());
        bail!("{} ({})", message, self.status)
    }
}

fn call(
    method: &str,
    url: &str,
    body: Option<Vec<u8>>,
    headers: &[(&str, &str)],
) -> anyhow::Result<Answer> {
    let agent = agent();
    let mut response = match method {
        "GET" | "DELETE" => {
            let mut req = if method == "GET" {
                agent.get(url)
            } else {
                agent.delete(url)
            };
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.call()
        }
        _ => {
            let mut req = if method == "PUT" {
                agent.put(url)
            } else {
                agent.post(url)
            };
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.send(body.unwrap_or_default())
        }
    }
    .with_context(|| format!("cannot reach {url}"))?;
    let context = response
        .headers()
        .get("x-gyre-context")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .context("cannot read the answer")?;
    Ok(Answer {
        status: response.status().as_u16(),
        body,
        context,
    })
}

fn admin(target: &Target, command: &AdminCommand) -> anyhow::Result<AdminReply> {
    let body = serde_json::to_vec(command)?;
    let answer = call(
        "POST",
        &format!("{}/v1/cluster/admin", target.node),
        Some(body),
        &[("content-type", "application/json")],
    )?
    .ok()?;
    serde_json::from_slice(&answer.body).context("unexpected answer to an admin command")
}

fn print_plan(plan: &PlanSummary) {
    for change in &plan.changes {
        out!("  {change}");
    }
    out!(
        "layout version {}: {} partition replicas move",
        plan.version,
        plan.moves
    );
    for (id, share) in &plan.ownership {
        out!("  {id}  {:>5.1}%", share * 100.0);
    }
}

/// The node's status.
pub(crate) fn status(target: &Target) -> anyhow::Result<ClusterStatus> {
    let answer = call("GET", &format!("{}/v1/cluster", target.node), None, &[])?.ok()?;
    serde_json::from_slice(&answer.body).context("unexpected answer to a status request")
}

/// Runs a `gyre cluster` command.
pub(crate) fn cluster(target: &Target, command: ClusterCommand) -> anyhow::Result<()> {
    let command = match command {
        ClusterCommand::Status { json } => {
            let status = status(target)?;
            if json {
                out!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print_status(&status);
            }
            return Ok(());
        }
        ClusterCommand::Replace { old, new } => {
            admin(target, &AdminCommand::Remove { node: old })?;
            AdminCommand::Join { node: new }
        }
        ClusterCommand::Join { member } => AdminCommand::Join { node: member },
        ClusterCommand::Leave { member } => AdminCommand::Leave { node: member },
        ClusterCommand::Remove { member } => AdminCommand::Remove { node: member },
        ClusterCommand::Set {
            member,
            capacity,
            zone,
        } => AdminCommand::Set {
            node: member,
            capacity,
            zone,
        },
        ClusterCommand::Clear => AdminCommand::Clear,
        ClusterCommand::Plan => AdminCommand::Plan,
        ClusterCommand::Commit => AdminCommand::Commit,
    };
    match admin(target, &command)? {
        AdminReply::Staged(changes) => {
            out!("staged ({}):", changes.len());
            for c in changes {
                out!("  {c}");
            }
            out!("review with `gyre cluster plan`, apply with `gyre cluster commit`");
        }
        AdminReply::Plan(plan) => print_plan(&plan),
        AdminReply::Committed(plan) => {
            out!("committed:");
            print_plan(&plan);
        }
    }
    Ok(())
}

fn print_status(status: &ClusterStatus) {
    match status.layout_version {
        Some(v) => out!(
            "node {} · layout version {v} · {} partitions × {} replicas",
            status.node,
            status.partitions.unwrap_or(0),
            status.replication.unwrap_or(0)
        ),
        None => out!("node {} · no layout committed yet", status.node),
    }
    out!(
        "{:<16}  {:<10} {:<5} {:>6}  {:<9} {:<10} {:>8} {:>6}  {:<8} addresses",
        "id",
        "name",
        "up",
        "phi",
        "status",
        "zone",
        "capacity",
        "owns",
        "hints"
    );
    for m in &status.members {
        let name = m
            .client_addrs
            .iter()
            .find_map(|a| a.strip_prefix("name="))
            .unwrap_or("-");
        let addrs: Vec<&str> = m
            .client_addrs
            .iter()
            .filter(|a| !a.starts_with("name="))
            .map(String::as_str)
            .collect();
        out!(
            "{:<16}  {:<10} {:<5} {:>6}  {:<9} {:<10} {:>8} {:>5.1}%  {:<8} peer={} {}",
            m.id,
            name,
            if m.up { "up" } else { "DOWN" },
            m.phi.map_or("-".to_owned(), |p| format!("{p:.1}")),
            if m.in_layout {
                m.status.clone()
            } else {
                format!("{}*", m.status)
            },
            m.zone.as_deref().unwrap_or("-"),
            m.capacity.map_or("-".to_owned(), |c| c.to_string()),
            m.ownership * 100.0,
            m.hints_pending,
            m.peer_addr.as_deref().unwrap_or("-"),
            addrs.join(" "),
        );
    }
    if status.members.iter().any(|m| !m.in_layout) {
        out!("* not in the layout");
    }
    if !status.staged.is_empty() {
        out!("staged, not committed: {}", status.staged.join(", "));
    }
}

fn key_url(target: &Target, args: &KeyArgs, quorum: Option<(&str, u8)>) -> String {
    let mut url = format!(
        "{}/v1/kv/{}/{}",
        target.node,
        encode(&args.bucket),
        encode(&args.key)
    );
    if let Some((name, q)) = quorum {
        url.push_str(&format!("?{name}={q}"));
    }
    url
}

/// Percent-encodes a path segment.
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `gyre get`: every sibling and the context.
pub(crate) fn get(target: &Target, args: &KeyArgs, r: Option<u8>) -> anyhow::Result<()> {
    let answer = call(
        "GET",
        &key_url(target, args, r.map(|r| ("r", r))),
        None,
        &[("accept", "application/json")],
    )?;
    if answer.status == 404 {
        out!("(not found)");
        if let Some(c) = &answer.context {
            out!("context: {c}");
        }
        return Ok(());
    }
    let answer = answer.ok()?;
    let json = answer.json()?;
    let siblings = json
        .get("siblings")
        .and_then(|s| s.as_array())
        .cloned()
        .unwrap_or_default();
    if siblings.len() > 1 {
        out!("{} siblings (concurrent writes):", siblings.len());
    }
    for s in &siblings {
        match s.get("value").and_then(|v| v.as_str()) {
            Some(v) => out!("{v}"),
            None => out!(
                "(binary, base64) {}",
                s.get("value_base64").and_then(|v| v.as_str()).unwrap_or("")
            ),
        }
    }
    if let Some(c) = json.get("context").and_then(|c| c.as_str()) {
        out!("context: {c}");
    }
    Ok(())
}

/// `gyre put` and `gyre del`: prints the new context.
pub(crate) fn write(
    target: &Target,
    args: &KeyArgs,
    value: Option<String>,
    context: Option<String>,
    w: Option<u8>,
) -> anyhow::Result<()> {
    let url = key_url(target, args, w.map(|w| ("w", w)));
    let mut headers = Vec::new();
    if let Some(c) = &context {
        headers.push(("x-gyre-context", c.as_str()));
    }
    let answer = match value {
        Some(v) => call("PUT", &url, Some(v.into_bytes()), &headers)?,
        None => call("DELETE", &url, None, &headers)?,
    }
    .ok()?;
    let header = answer.context.clone();
    match header.or_else(|| {
        answer
            .json()
            .ok()?
            .get("context")?
            .as_str()
            .map(str::to_owned)
    }) {
        Some(c) => out!("ok · context: {c}"),
        None => out!("ok"),
    }
    Ok(())
}
