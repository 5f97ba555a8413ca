//! Hosts for real-host runs: each node in a network namespace of its own,
//! with its own address on a bridge, and the network faults the nemesis
//! applies between them with nft rules inside the namespaces.
//!
//! [`Hosts::create`] makes a bridge in a namespace of its own, `n` host
//! namespaces, a veth pair from each to the bridge and one from the root
//! namespace to it, with addresses
//! `10.213.S.1..=n` for the hosts and `10.213.S.254` for the test's own
//! side of the bridge (the root namespace, where the clients and the
//! harness run), with `S` the first subnet no other run holds (claimed
//! by making the namespace `gyre-net-S`). Dropping it removes all of it. Nothing
//! is sent anywhere else: every address is on the bridge this made.
//!
//! The faults are rules in an `inet gyre_nemesis` table of a host's own
//! namespace, so they cut traffic between hosts (QUIC between nodes) and
//! never the clients' traffic from the root side:
//! - [`Hosts::partition`]: hosts in different groups drop each other's
//!   packets (halves, one host isolated, or overlapping groups: a bridge);
//! - [`Hosts::one_way`]: a host drops what arrives from others, while what
//!   it sends still arrives;
//! - [`Hosts::loss`]: a host drops that share of what arrives from the
//!   other hosts, at random;
//! - [`Hosts::heal`]: every rule removed.
//!
//! Needs root and the `ip` (iproute2) and `nft` (nftables) commands;
//! [`Hosts::create`] says which is missing.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

/// Why hosts could not be made or changed.
#[derive(Debug, thiserror::Error)]
pub enum HostsError {
    /// Not root, or a command is missing: what the runs need.
    #[error("real hosts need {0}")]
    Needs(String),
    /// A command failed.
    #[error("`{command}` failed: {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// What it printed on stderr.
        stderr: String,
    },
}

/// One host: a namespace and its address on the bridge.
#[derive(Clone, Debug)]
pub struct Host {
    /// The namespace's name (`ip netns exec <ns> …`).
    pub ns: String,
    /// Its address on the bridge.
    pub addr: Ipv4Addr,
}

/// A bridge and the namespaces on it; removed when dropped.
#[derive(Debug)]
pub struct Hosts {
    /// The namespace that holds the bridge.
    switch: String,
    /// The root namespace's end of its link to the bridge.
    uplink: String,
    hosts: Vec<Host>,
    /// The root namespace's address on the bridge.
    local: Ipv4Addr,
}

fn run(args: &[&str], input: Option<&str>) -> Result<(), HostsError> {
    let mut command = Command::new(args[0]);
    command
        .args(&args[1..])
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let failed = |stderr: String| HostsError::Command {
        command: args.join(" "),
        stderr,
    };
    let mut child = command.spawn().map_err(|e| failed(e.to_string()))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        use std::io::Write as _;
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| failed(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(failed(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ))
    }
}

/// What real hosts need that this machine lacks, if anything.
#[must_use]
pub fn missing() -> Option<String> {
    let euid = Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if euid.as_deref() != Some("0") {
        return Some("root (network namespaces and nft rules)".to_owned());
    }
    for (tool, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        let found = Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!(
                "the `{tool}` command (Debian: apt-get install {package})"
            ));
        }
    }
    None
}

impl Hosts {
    /// `n` hosts (at most 200) on a new bridge.
    ///
    /// # Errors
    /// [`HostsError::Needs`] without root, `ip` or `nft`;
    /// [`HostsError::Command`] if a step fails (what was made is removed).
    pub fn create(n: usize) -> Result<Self, HostsError> {
        if let Some(what) = missing() {
            return Err(HostsError::Needs(what));
        }
        let n = n.min(200);
        // A subnet is claimed by making the namespace named after it, which
        // fails if another run holds it: runs at once never share one.
        let first = std::process::id() % 250;
        let subnet = (0..250)
            .map(|k| ((first + k) % 250) as u8)
            .find(|s| run(&["ip", "netns", "add", &format!("gyre-net-{s}")], None).is_ok())
            .ok_or_else(|| {
                HostsError::Needs("a free subnet: 250 runs hold 10.213.0.0/16".into())
            })?;
        let mut hosts = Self {
            switch: format!("gyre-net-{subnet}"),
            uplink: format!("gyu{subnet}"),
            hosts: Vec::new(),
            local: Ipv4Addr::new(10, 213, subnet, 254),
        };
        // The bridge lives in a namespace of its own: the root
        // namespace's firewall (Docker's FORWARD policy of drop, applied
        // to bridged frames where br_netfilter is loaded) never sees the
        // hosts' traffic to each other.
        let sw = ["ip", "netns", "exec", hosts.switch.as_str()];
        run(
            &[&sw[..], &["ip", "link", "add", "br0", "type", "bridge"]].concat(),
            None,
        )?;
        run(
            &[&sw[..], &["ip", "link", "set", "br0", "up"]].concat(),
            None,
        )?;
        run(
            &[
                "ip",
                "link",
                "add",
                &hosts.uplink,
                "type",
                "veth",
                "peer",
                "name",
                "up0",
                "netns",
                &hosts.switch,
            ],
            None,
        )?;
        run(
            &[
                &sw[..],
                &["ip", "link", "set", "up0", "master", "br0", "up"],
            ]
            .concat(),
            None,
        )?;
        let local = format!("{}/24", hosts.local);
        run(&["ip", "addr", "add", &local, "dev", &hosts.uplink], None)?;
        run(&["ip", "link", "set", &hosts.uplink, "up"], None)?;
        for i in 0..n {
            let host = Host {
                ns: format!("gyre-{subnet}-{i}"),
                addr: Ipv4Addr::new(10, 213, subnet, i as u8 + 1),
            };
            let port = format!("port{i}");
            run(&["ip", "netns", "add", &host.ns], None)?;
            hosts.hosts.push(host.clone());
            run(
                &[
                    &sw[..],
                    &[
                        "ip", "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                        "netns", &host.ns,
                    ],
                ]
                .concat(),
                None,
            )?;
            run(
                &[
                    &sw[..],
                    &["ip", "link", "set", &port, "master", "br0", "up"],
                ]
                .concat(),
                None,
            )?;
            let addr = format!("{}/24", host.addr);
            let exec = ["ip", "netns", "exec", host.ns.as_str()];
            run(
                &[&exec[..], &["ip", "addr", "add", &addr, "dev", "eth0"]].concat(),
                None,
            )?;
            run(
                &[&exec[..], &["ip", "link", "set", "eth0", "up"]].concat(),
                None,
            )?;
            run(
                &[&exec[..], &["ip", "link", "set", "lo", "up"]].concat(),
                None,
            )?;
        }
        Ok(hosts)
    }

    /// The hosts, in order.
    #[must_use]
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The root namespace's address on the bridge (where clients run).
    #[must_use]
    pub fn local(&self) -> Ipv4Addr {
        self.local
    }

    /// Replaces host `i`'s rules with `rules` (nft statements of its input
    /// chain; none: no rule).
    fn set_rules(&self, i: usize, rules: &[String]) -> Result<(), HostsError> {
        let Some(host) = self.hosts.get(i) else {
            return Ok(());
        };
        let mut script = String::from(
            "table inet gyre_nemesis {}\ndelete table inet gyre_nemesis\ntable inet gyre_nemesis {\n  chain input {\n    type filter hook input priority 0; policy accept;\n",
        );
        for rule in rules {
            script.push_str("    ");
            script.push_str(rule);
            script.push('\n');
        }
        script.push_str("  }\n}\n");
        run(
            &["ip", "netns", "exec", &host.ns, "nft", "-f", "-"],
            Some(&script),
        )
    }

    fn addrs(&self, of: impl Iterator<Item = usize>) -> String {
        of.filter_map(|i| self.hosts.get(i))
            .map(|h| h.addr.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Cuts the network between hosts that share no group: each host
    /// drops packets from every host outside all of its groups. Groups
    /// may overlap (a host in two groups bridges them). Hosts in no group
    /// are cut from every other.
    ///
    /// # Errors
    /// [`HostsError::Command`] if a rule cannot be set.
    pub fn partition(&self, groups: &[Vec<usize>]) -> Result<(), HostsError> {
        for i in 0..self.hosts.len() {
            let cut: Vec<usize> = (0..self.hosts.len())
                .filter(|&j| j != i && !groups.iter().any(|g| g.contains(&i) && g.contains(&j)))
                .collect();
            let rules = if cut.is_empty() {
                Vec::new()
            } else {
                vec![format!(
                    "ip saddr {{ {} }} drop",
                    self.addrs(cut.into_iter())
                )]
            };
            self.set_rules(i, &rules)?;
        }
        Ok(())
    }

    /// Host `to` drops everything from the other hosts; what it sends
    /// still arrives.
    ///
    /// # Errors
    /// [`HostsError::Command`] if a rule cannot be set.
    pub fn one_way(&self, to: usize) -> Result<(), HostsError> {
        let others = self.addrs((0..self.hosts.len()).filter(|&j| j != to));
        self.set_rules(to, &[format!("ip saddr {{ {others} }} drop")])
    }

    /// Host `i` drops `percent` of the packets from the other hosts, at
    /// random.
    ///
    /// # Errors
    /// [`HostsError::Command`] if a rule cannot be set.
    pub fn loss(&self, i: usize, percent: u8) -> Result<(), HostsError> {
        let others = self.addrs((0..self.hosts.len()).filter(|&j| j != i));
        self.set_rules(
            i,
            &[format!(
                "ip saddr {{ {others} }} numgen random mod 100 < {} drop",
                percent.min(100)
            )],
        )
    }

    /// Removes every rule: the network is whole again.
    ///
    /// # Errors
    /// [`HostsError::Command`] if a rule cannot be removed.
    pub fn heal(&self) -> Result<(), HostsError> {
        for i in 0..self.hosts.len() {
            self.set_rules(i, &[])?;
        }
        Ok(())
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        // Removing a namespace removes its veth ends and with them the
        // pairs.
        for host in &self.hosts {
            let _ = run(&["ip", "netns", "del", &host.ns], None);
        }
        let _ = run(&["ip", "link", "del", &self.uplink], None);
        let _ = run(&["ip", "netns", "del", &self.switch], None);
    }
}
