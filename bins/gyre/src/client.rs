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
    /// A user's secret, sent as `Authorization: Bearer` (`gyre user add`
    /// makes one).
    #[arg(long, global = true, env = "GYRE_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// A file holding the secret (as `--token`; a mounted Kubernetes
    /// Secret, say).
    #[arg(long, global = true, env = "GYRE_TOKEN_FILE", conflicts_with = "token")]
    pub(crate) token_file: Option<std::path::PathBuf>,
}

impl Target {
    /// The secret to send: `--token`, or the contents of `--token-file`.
    ///
    /// # Errors
    /// If the token file cannot be read.
    pub(crate) fn secret(&self) -> anyhow::Result<Option<String>> {
        match (&self.token, &self.token_file) {
            (Some(t), _) => Ok(Some(t.clone())),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map(|t| Some(t.trim().to_owned()))
                .with_context(|| format!("cannot read the token file {}", path.display())),
            (None, None) => Ok(None),
        }
    }
}

/// The secret every request of this process sends, if any.
static TOKEN: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// Sends `token` with every request of this process.
pub(crate) fn use_token(token: Option<String>) {
    let _ = TOKEN.set(token.filter(|t| !t.is_empty()));
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
    /// Form a new cluster: wait until the node sees `--expect` nodes up,
    /// then join them all and commit the first layout. Does nothing if a
    /// layout exists (so a Job or a script may run it again).
    Form {
        /// How many nodes the first layout holds.
        #[arg(long)]
        expect: usize,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
    },
    /// Forget the staged changes.
    Clear,
    /// Show what committing the staged changes would do: partitions and
    /// bytes moving per node, the time at the throttle, a safety verdict.
    Plan,
    /// Commit the staged changes: a new layout for the whole cluster. Its
    /// new replicas are filled by streaming handoff while the cluster
    /// serves (reads use the old replicas until every new one is filled).
    Commit {
        /// Commit even if the plan fails its safety verdict.
        #[arg(long)]
        force: bool,
        /// Wait for the change to complete, showing its progress.
        #[arg(long)]
        wait: bool,
        /// With `--wait`: give up after this many seconds (exit status 1,
        /// the change goes on) [default: none].
        #[arg(long, value_name = "SECS", requires = "wait")]
        timeout: Option<u64>,
    },
    /// Undo the layout changes in flight: a new layout with the oldest
    /// one's replicas (every change stacked since undone; removed nodes
    /// stay out); the new replicas drop their partial copies.
    Abort,
    /// The partition transfers of every node: stage counts, bytes, rate,
    /// ETA, and what stalls.
    Transfers {
        /// Keep showing progress until the change completes.
        #[arg(long)]
        watch: bool,
        /// With `--watch`: give up after this many seconds (exit status 1,
        /// the change goes on) [default: none].
        #[arg(long, value_name = "SECS", requires = "watch")]
        timeout: Option<u64>,
    },
    /// Set the handoff throttle on every member (or only on `--node` with
    /// `--only`).
    Throttle {
        /// Bytes per second each node pulls at most (0: no limit).
        #[arg(long)]
        rate: Option<u64>,
        /// Partitions each node pulls at once.
        #[arg(long)]
        inbound: Option<u32>,
        /// Partitions each node serves at once.
        #[arg(long)]
        outbound: Option<u32>,
        /// Only the node `--node` names.
        #[arg(long)]
        only: bool,
    },
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
            // 300 Multiple Choices is siblings, not a redirect.
            .max_redirects(0)
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
    let bearer = TOKEN
        .get()
        .cloned()
        .flatten()
        .map(|t| format!("Bearer {t}"));
    let mut headers = headers.to_vec();
    if let Some(bearer) = &bearer {
        headers.push(("authorization", bearer.as_str()));
    }
    let mut response = match method {
        "GET" | "DELETE" => {
            let mut req = if method == "GET" {
                agent.get(url)
            } else {
                agent.delete(url)
            };
            for (k, v) in &headers {
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
            for (k, v) in &headers {
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
        "layout version {}: {} partition replicas move, {} in all{}",
        plan.version,
        plan.moves,
        bytes(plan.bytes),
        plan.eta_secs
            .map(|s| format!(", about {} at the throttle", duration(s)))
            .unwrap_or_default()
    );
    out!(
        "  {:<16}  {:>6}  {:>6}  {:>10}  owns",
        "node",
        "gains",
        "loses",
        "receives"
    );
    for (id, share) in &plan.ownership {
        let moves = plan.nodes.iter().find(|n| n.node == *id);
        out!(
            "  {id:<16}  {:>6}  {:>6}  {:>10}  {:>5.1}%",
            moves.map_or(0, |m| m.gains),
            moves.map_or(0, |m| m.losses),
            bytes(moves.map_or(0, |m| m.bytes_in)),
            share * 100.0
        );
    }
    for n in plan
        .nodes
        .iter()
        .filter(|n| !plan.ownership.iter().any(|(id, _)| *id == n.node))
    {
        out!(
            "  {:<16}  {:>6}  {:>6}  {:>10}  leaves",
            n.node,
            n.gains,
            n.losses,
            "-"
        );
    }
    if !plan.unreported.is_empty() {
        out!(
            "  no size report from {} (not counted)",
            plan.unreported.join(", ")
        );
    }
    out!(
        "{}",
        if plan.safe {
            plan.safety.clone()
        } else {
            format!("UNSAFE: {}", plan.safety)
        }
    );
}

/// Bytes, readable.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Seconds, readable.
fn duration(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The HTTP address of every member `status` lists (from their gossiped
/// client addresses), with its id.
fn member_urls(status: &ClusterStatus) -> Vec<(String, String)> {
    status
        .members
        .iter()
        .filter(|m| m.in_layout || m.status == "leaving")
        .filter_map(|m| {
            let http = m
                .client_addrs
                .iter()
                .find_map(|a| a.strip_prefix("http="))?;
            Some((m.id.clone(), format!("http://{http}")))
        })
        .collect()
}

/// Every member's status (those that answer).
fn all_statuses(target: &Target) -> anyhow::Result<Vec<(String, Result<ClusterStatus, String>)>> {
    let mine = status(target)?;
    let mut all = Vec::new();
    for (id, url) in member_urls(&mine) {
        let answer = status(&Target {
            node: url,
            token: None,
            token_file: None,
        })
        .map_err(|e| e.to_string());
        all.push((id, answer));
    }
    if all.is_empty() {
        all.push((mine.node.clone(), Ok(mine)));
    }
    Ok(all)
}

/// Prints every node's transfers once.
fn print_transfers(all: &[(String, Result<ClusterStatus, String>)]) {
    let mut total = (0u64, 0u64, 0u64, 0u64);
    out!(
        "{:<16}  {:>7} {:>6} {:>6} {:>6}  {:>10} / {:<10}  {:>10}  {:>7}  waits",
        "node",
        "prepare",
        "stream",
        "verify",
        "synced",
        "done",
        "total",
        "rate",
        "eta"
    );
    for (id, s) in all {
        match s {
            Ok(s) => {
                let t = &s.transfers;
                let stages = t.stage_counts();
                total.0 += t.bytes_done;
                total.1 += t.bytes_total;
                total.3 += t.bytes_extra;
                total.2 += t.rate;
                out!(
                    "{:<16}  {:>7} {:>6} {:>6} {:>6}  {:>10} / {:<10}  {:>8}/s  {:>7}  {}",
                    id,
                    stages[0],
                    stages[1],
                    stages[2],
                    stages[3],
                    bytes(t.bytes_done),
                    bytes(t.bytes_total),
                    bytes(t.rate),
                    t.eta_secs.map_or("-".to_owned(), duration),
                    t.stalled_because().as_deref().unwrap_or("-")
                );
            }
            Err(e) => out!("{id:<16}  no answer: {e}"),
        }
    }
    out!(
        "cluster: {} of {}{} at {}/s",
        bytes(total.0),
        bytes(total.1),
        written_meanwhile(total.3),
        bytes(total.2)
    );
    if let Some((_, Ok(s))) = all.first() {
        print_change(s);
    }
}

/// What a transfer received beyond its estimate, as a suffix to "done of
/// total" (empty when nothing).
fn written_meanwhile(extra: u64) -> String {
    if extra == 0 {
        String::new()
    } else {
        format!(" (+{} written meanwhile)", bytes(extra))
    }
}

fn print_change(status: &ClusterStatus) {
    match &status.change {
        Some(c) => out!(
            "layout change {} → {}: {} ({} layouts in use){}{}",
            c.from,
            c.to,
            c.stage,
            c.layouts_in_use,
            if c.not_synced.is_empty() {
                String::new()
            } else {
                format!("; not filled yet: {}", c.not_synced.join(", "))
            },
            if c.not_reading.is_empty() || c.stage == "filling" {
                String::new()
            } else {
                format!(
                    "; not reading the new layout yet: {}",
                    c.not_reading.join(", ")
                )
            },
        ),
        None => {
            out!("no layout change in flight");
            if let Some(l) = &status.transfers.last {
                out!(
                    "last change filled here: layout {}, {} partitions, {} keys, {} in {}, {} chunks re-sent",
                    l.layout.version,
                    l.partitions,
                    l.keys,
                    bytes(l.bytes),
                    duration(l.took_ms / 1000),
                    l.resent_chunks
                );
            }
        }
    }
}

/// Shows progress bars (one per node, and the cluster's) until the
/// layout change completes everywhere.
/// Shows every node's transfers until the change completes, or `timeout`
/// passes (an error: the change goes on).
fn watch(target: &Target, timeout: Option<Duration>) -> anyhow::Result<()> {
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template(
        "{prefix:<16} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} eta {eta:>4} {msg}",
    )?
    .progress_chars("=> ");
    let mut per_node: Vec<(String, ProgressBar)> = Vec::new();
    loop {
        let all = all_statuses(target)?;
        let mut busy = false;
        for (id, s) in &all {
            let bar = match per_node.iter().find(|(n, _)| n == id) {
                Some((_, b)) => b.clone(),
                None => {
                    let b = bars.add(ProgressBar::new(0).with_style(style.clone()));
                    b.set_prefix(id.clone());
                    per_node.push((id.clone(), b.clone()));
                    b
                }
            };
            match s {
                Ok(s) => {
                    let t = &s.transfers;
                    bar.set_length(t.bytes_total.max(t.bytes_done));
                    bar.set_position(t.bytes_done);
                    let waits = t.stalled_because().unwrap_or_default();
                    let [prepare, stream, verify, synced] = t.stage_counts();
                    bar.set_message(format!("{prepare}p {stream}s {verify}v {synced}✓ {waits}"));
                    busy |= s.change.is_some() || t.to_drop > 0;
                }
                Err(e) => {
                    bar.set_message(format!("no answer: {e}"));
                    busy = true;
                }
            }
        }
        if !busy {
            for (_, b) in &per_node {
                b.finish();
            }
            print_transfers(&all);
            return Ok(());
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            for (_, b) in &per_node {
                b.abandon();
            }
            print_transfers(&all);
            anyhow::bail!(
                "the change is still in flight after {}s (it goes on; `gyre cluster transfers` \
                 shows where it stands)",
                timeout.map_or(0, |t| t.as_secs())
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The node's status.
pub(crate) fn status(target: &Target) -> anyhow::Result<ClusterStatus> {
    let answer = call("GET", &format!("{}/v1/cluster", target.node), None, &[])?.ok()?;
    serde_json::from_slice(&answer.body).context("unexpected answer to a status request")
}

/// `gyre health`: asks the node's `/health` (serving with a layout) or
/// `/health/live` (the process answers), which need no credential, and
/// prints the answer. Whether the node said it is healthy (200).
///
/// # Errors
/// If the node cannot be reached.
pub(crate) fn health(target: &Target, live: bool) -> anyhow::Result<bool> {
    let path = if live { "/health/live" } else { "/health" };
    let answer = call("GET", &format!("{}{path}", target.node), None, &[])?;
    out!("{}", String::from_utf8_lossy(&answer.body).trim_end());
    Ok(answer.status == 200)
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
        ClusterCommand::Form {
            expect,
            timeout_secs,
        } => return form(target, expect, Duration::from_secs(timeout_secs)),
        ClusterCommand::Clear => AdminCommand::Clear,
        ClusterCommand::Plan => AdminCommand::Plan,
        ClusterCommand::Commit {
            force,
            wait,
            timeout,
        } => {
            let reply = admin(target, &AdminCommand::Commit { force })?;
            print_reply(reply);
            if wait {
                watch(target, timeout.map(Duration::from_secs))?;
            }
            return Ok(());
        }
        ClusterCommand::Abort => AdminCommand::Abort,
        ClusterCommand::Transfers {
            watch: true,
            timeout,
        } => return watch(target, timeout.map(Duration::from_secs)),
        ClusterCommand::Transfers { watch: false, .. } => {
            print_transfers(&all_statuses(target)?);
            return Ok(());
        }
        ClusterCommand::Throttle {
            rate,
            inbound,
            outbound,
            only,
        } => {
            let command = AdminCommand::Throttle {
                rate,
                inbound,
                outbound,
            };
            let targets = if only {
                vec![(status(target)?.node, target.node.clone())]
            } else {
                member_urls(&status(target)?)
            };
            for (id, url) in targets {
                match admin(
                    &Target {
                        node: url,
                        token: None,
                        token_file: None,
                    },
                    &command,
                )? {
                    AdminReply::Throttle {
                        rate,
                        inbound,
                        outbound,
                    } => out!(
                        "{id}: pulls {inbound} and serves {outbound} partitions at once, {}",
                        if rate == 0 {
                            "no rate limit".to_owned()
                        } else {
                            format!("at most {}/s", bytes(rate))
                        }
                    ),
                    other => out!("{id}: {other:?}"),
                }
            }
            return Ok(());
        }
    };
    print_reply(admin(target, &command)?);
    Ok(())
}

/// `gyre cluster form`: the first layout, of the `expect` nodes that
/// `target` sees up.
fn form(target: &Target, expect: usize, timeout: Duration) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        // A node that does not answer yet (starting, or its name not in
        // DNS yet) is waited for like one that sees too few others.
        let seen = match status(target) {
            Ok(status) => {
                if let Some(v) = status.layout_version {
                    out!("the cluster has a layout (version {v}): nothing to form");
                    return Ok(());
                }
                let up: Vec<String> = status
                    .members
                    .iter()
                    .filter(|m| m.up && m.status != "removed")
                    .map(|m| m.id.clone())
                    .collect();
                if up.len() >= expect {
                    for id in up {
                        admin(target, &AdminCommand::Join { node: id })?;
                    }
                    print_reply(admin(target, &AdminCommand::Commit { force: false })?);
                    return Ok(());
                }
                format!("{} of {expect} nodes up", up.len())
            }
            Err(e) => format!("no answer: {e:#}"),
        };
        if std::time::Instant::now() >= deadline {
            bail!("no cluster formed within {timeout:?}: {seen}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn print_reply(reply: AdminReply) {
    match reply {
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
            out!("follow it with `gyre cluster transfers --watch`");
        }
        AdminReply::Throttle {
            rate,
            inbound,
            outbound,
        } => {
            out!(
                "throttle: pulls {inbound} and serves {outbound} partitions at once, {rate} bytes/s (0: no limit)"
            );
        }
    }
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
    for m in status.members.iter().filter(|m| m.status == "left") {
        out!(
            "{} left: every partition it held was handed off; it can be shut down",
            m.id
        );
    }
    if !status.staged.is_empty() {
        out!("staged, not committed: {}", status.staged.join(", "));
    }
    print_change(status);
    let t = &status.transfers;
    if t.layout.is_some() && status.change.is_some() {
        let [prepare, stream, verify, synced] = t.stage_counts();
        out!(
            "transfers here: {prepare} prepare, {stream} stream, {verify} verify, {synced} synced; {} of {}{}{}",
            bytes(t.bytes_done),
            bytes(t.bytes_total),
            written_meanwhile(t.bytes_extra),
            t.stalled_because()
                .as_deref()
                .map(|s| format!("; waits: {s}"))
                .unwrap_or_default()
        );
    }
    if t.to_drop > 0 {
        out!(
            "{} partitions here wait to be handed off and dropped",
            t.to_drop
        );
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

/// Whether `gyre get` found a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// It printed the key's values.
    Yes,
    /// The node answered that the key has no value.
    No,
}

/// `gyre get`: every sibling and the context.
pub(crate) fn get(target: &Target, args: &KeyArgs, r: Option<u8>) -> anyhow::Result<Found> {
    let url = key_url(target, args, r.map(|r| ("r", r)));
    let answer = call("GET", &url, None, &[("accept", "application/json")])?;
    // Only a Gyre node's 404 `not_found` means "no value": a 404 from
    // anything else (a proxy, another server) is an error.
    let gyre_not_found = answer.status == 404
        && answer
            .json()
            .ok()
            .is_some_and(|j| j.get("error").and_then(|e| e.as_str()) == Some("not_found"));
    if gyre_not_found {
        out!("(not found)");
        if let Some(c) = &answer.context {
            out!("context: {c}");
        }
        return Ok(Found::No);
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
    Ok(Found::Yes)
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
