//! What a node says about itself, and how the core behaves.

use std::time::Duration;

use gyre_ring::RingConfig;
use gyre_types::{NodeId, ZoneName};

use crate::{Error, NodeState, Result};

/// Longest peer or client address a state may carry, in bytes.
pub const MAX_ADDR_LEN: usize = 256;
/// Most client addresses a state may carry.
pub const MAX_CLIENT_ADDRS: usize = 8;

/// A node's description of itself, from its configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// Its id, kept for as long as its data lives.
    pub id: NodeId,
    /// Where peers reach it (QUIC, `host:port`); at most [`MAX_ADDR_LEN`] bytes.
    pub peer_addr: String,
    /// Where clients reach it (RESP, HTTP); at most [`MAX_CLIENT_ADDRS`] of
    /// at most [`MAX_ADDR_LEN`] bytes.
    pub client_addrs: Vec<String>,
    /// Its failure domain: what an operator's `Join` puts in the layout.
    pub zone: ZoneName,
    /// Its relative capacity (at least 1 to be joined): likewise.
    pub capacity: u32,
}

impl NodeInfo {
    pub(crate) fn check(&self) -> Result<()> {
        if self.peer_addr.len() > MAX_ADDR_LEN {
            return Err(Error::InvalidNodeInfo("peer address too long"));
        }
        if self.client_addrs.len() > MAX_CLIENT_ADDRS {
            return Err(Error::InvalidNodeInfo("too many client addresses"));
        }
        if self.client_addrs.iter().any(|a| a.len() > MAX_ADDR_LEN) {
            return Err(Error::InvalidNodeInfo("client address too long"));
        }
        Ok(())
    }
}

/// Whether a state from the network keeps the limits our own must keep.
pub(crate) fn acceptable(s: &NodeState) -> bool {
    s.version >= 1
        && s.peer_addr.len() <= MAX_ADDR_LEN
        && s.client_addrs.len() <= MAX_CLIENT_ADDRS
        && s.client_addrs.iter().all(|a| a.len() <= MAX_ADDR_LEN)
}

/// How the membership core behaves. `Config::default()` suits a LAN cluster
/// gossiping once a second.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// How often the driver calls [`crate::Membership::tick`]. The core
    /// does not enforce it; it uses it as the first estimate of heartbeat
    /// intervals and to pace retries. Default 1 s.
    pub gossip_interval: Duration,
    /// Phi above which a peer is considered down. Default 8 (Akka's and
    /// Cassandra's): at the fitted distribution, a 10⁻⁸ chance that the
    /// silence is normal.
    pub phi_threshold: f64,
    /// Inter-arrival times the detector remembers per peer (at least 1).
    /// Default 200.
    pub phi_window: usize,
    /// Floor of the fitted standard deviation. Default 500 ms.
    pub min_std_deviation: Duration,
    /// Added to the mean interval: silence that raises no suspicion at all.
    /// Default 2 s.
    pub acceptable_heartbeat_pause: Duration,
    /// Initial guess of a new peer's heartbeat interval. Default 1 s.
    pub first_heartbeat_estimate: Duration,
    /// How long a removal tombstone is kept (and wins over the removed id's
    /// state). Default 3 days, like Cassandra's quarantine: far longer than
    /// any node stays partitioned away with a stale view.
    pub removed_ttl: Duration,
    /// How long to wait for a layout asked for with
    /// [`crate::Output::PullLayout`] before asking again. Default 3 s.
    pub layout_pull_timeout: Duration,
    /// Most nodes (live or tombstoned) the core keeps track of; states of
    /// further new ids are ignored. At least 1; default 4096 (a layout holds
    /// at most 1024 members).
    pub max_nodes: usize,
    /// Most full states sent or read in one message (at least 1). Default 256.
    pub max_states_per_message: usize,
    /// Q and N of the first layout, made by the first commit on a cluster
    /// that has none. Later layouts keep the cluster's.
    pub ring: RingConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            gossip_interval: Duration::from_secs(1),
            phi_threshold: 8.0,
            phi_window: 200,
            min_std_deviation: Duration::from_millis(500),
            acceptable_heartbeat_pause: Duration::from_secs(2),
            first_heartbeat_estimate: Duration::from_secs(1),
            removed_ttl: Duration::from_secs(3 * 24 * 3600),
            layout_pull_timeout: Duration::from_secs(3),
            max_nodes: 4096,
            max_states_per_message: 256,
            ring: RingConfig::default(),
        }
    }
}
