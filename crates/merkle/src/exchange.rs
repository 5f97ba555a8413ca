//! The anti-entropy exchange: an IO-free state machine on the initiating side
//! and a stateless answer function on the responding side.

use serde::{Deserialize, Serialize};

use crate::digest::{many, one};
use crate::{Error, KeyRange, MerkleTree, Result, TreeId};

/// A message from the initiator of an exchange to the responder.
///
/// Every request carries the initiator's [`TreeId`], so the responder needs no
/// per-exchange state and detects a mismatched tree on any request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// The first request: "here is my root; send yours, and if it differs, its children".
    ///
    /// Carrying the initiator's root lets the responder send the root's
    /// children in the same round when the roots differ, which saves a round
    /// trip; when they are equal the answer is one digest (18 bytes on the
    /// wire) and the exchange ends.
    Root {
        /// The initiator's tree.
        tree: TreeId,
        /// The initiator's root digest.
        #[serde(with = "one")]
        root: u128,
    },
    /// "Send the children of these nodes at `level`."
    Children {
        /// The initiator's tree.
        tree: TreeId,
        /// The level of the listed (parent) nodes; their children are at `level + 1`.
        level: u8,
        /// Parent node indices at `level`, ascending; at most
        /// [`crate::TreeShape::max_nodes_per_request`].
        nodes: Vec<u32>,
    },
}

/// A message from the responder of an exchange to the initiator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The answer to [`Request::Root`].
    Root {
        /// The responder's root digest.
        #[serde(with = "one")]
        root: u128,
        /// Empty if `root` equals the initiator's root; otherwise the root's
        /// `fanout` children (level 1), whose XOR is `root`.
        #[serde(with = "many")]
        children: Vec<u128>,
    },
    /// The answer to [`Request::Children`].
    Children {
        /// The level of the requested parents (echoed).
        level: u8,
        /// `fanout` child digests per requested parent, in request order.
        #[serde(with = "many")]
        digests: Vec<u128>,
    },
}

/// Bytes of an unsigned LEB128 varint holding `v`.
fn varint_len(v: u64) -> u64 {
    let bits = 64 - u64::from(v.leading_zeros());
    bits.div_ceil(7).max(1)
}

/// Length prefix plus 16 bytes per digest.
fn digests_len(n: usize) -> u64 {
    let n = n as u64;
    varint_len(n) + 16 * n
}

fn tree_id_len(id: TreeId) -> u64 {
    varint_len(u64::from(id.q().get())) + varint_len(u64::from(id.partition().get())) + 2
}

impl Request {
    /// The initiator's tree, which every request names.
    pub fn tree(&self) -> TreeId {
        match self {
            Self::Root { tree, .. } | Self::Children { tree, .. } => *tree,
        }
    }

    /// Payload bytes a compact encoding of this request needs: a one-byte tag,
    /// integers as LEB128 varints, digests as 16 bytes, lists with a varint
    /// length. That is what postcard spends on these types (digests are
    /// serialised as byte arrays); it is an estimate of the payload only and
    /// excludes the transport's framing and envelope.
    pub fn wire_size(&self) -> u64 {
        match self {
            Self::Root { tree, .. } => 1 + tree_id_len(*tree) + 16,
            Self::Children { tree, nodes, .. } => {
                1 + tree_id_len(*tree)
                    + 1
                    + varint_len(nodes.len() as u64)
                    + nodes.iter().map(|&n| varint_len(u64::from(n))).sum::<u64>()
            }
        }
    }
}

impl Response {
    /// Payload bytes a compact encoding of this response needs; see [`Request::wire_size`].
    pub fn wire_size(&self) -> u64 {
        match self {
            Self::Root { children, .. } => 1 + 16 + digests_len(children.len()),
            Self::Children { digests, .. } => 1 + 1 + digests_len(digests.len()),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Root { .. } => "root",
            Self::Children { .. } => "children",
        }
    }
}

impl MerkleTree {
    /// The responder's side of an exchange: answers one request from this tree.
    ///
    /// Stateless: requests may come from any number of exchanges. The request is
    /// untrusted input: a different tree identity, a level without children,
    /// too many nodes or an index out of range is an error, never a panic.
    pub fn answer(&self, request: &Request) -> Result<Response> {
        let theirs = request.tree();
        if theirs != self.id() {
            return Err(Error::TreeMismatch {
                ours: self.id(),
                theirs,
            });
        }
        let shape = self.shape();
        match request {
            Request::Root { root, .. } => {
                let mine = self.root();
                let children = if mine == *root {
                    Vec::new()
                } else {
                    self.level(1).unwrap_or_default().to_vec()
                };
                Ok(Response::Root {
                    root: mine,
                    children,
                })
            }
            Request::Children { level, nodes, .. } => {
                let level = *level;
                let depth = shape.depth();
                let (Some(parents), Some(children)) = (
                    self.level(level).filter(|_| level < depth),
                    level.checked_add(1).and_then(|l| self.level(l)),
                ) else {
                    return Err(Error::LevelOutOfRange { level, depth });
                };
                let max = shape.max_nodes_per_request();
                if nodes.len() > max {
                    return Err(Error::TooManyNodes {
                        count: nodes.len(),
                        max,
                    });
                }
                let fanout = shape.fanout();
                let mut digests = Vec::with_capacity(nodes.len() * fanout);
                for &index in nodes {
                    let i = index as usize;
                    let kids = if i < parents.len() {
                        // i < fanout^level, so first + fanout <= fanout^(level + 1).
                        let first = i << shape.fanout_bits();
                        children.get(first..first + fanout)
                    } else {
                        None
                    };
                    let kids = kids.ok_or(Error::IndexOutOfRange {
                        level,
                        index,
                        len: parents.len(),
                    })?;
                    digests.extend_from_slice(kids);
                }
                Ok(Response::Children { level, digests })
            }
        }
    }
}

/// What the initiator should do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this request to the responder and feed its answer to [`Exchange::on_response`].
    Send(Request),
    /// The exchange is over.
    Done(ExchangeOutcome),
}

/// The result of an exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExchangeOutcome {
    /// The hash ranges of the leaves whose digests differ, sorted and merged
    /// (adjacent differing leaves form one range). Empty when the trees are equal.
    pub ranges: Vec<KeyRange>,
    /// What the exchange cost.
    pub stats: ExchangeStats,
}

/// What an exchange cost, as seen by the initiator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExchangeStats {
    /// Request/response round trips.
    pub rounds: u32,
    /// Digests compared with the local tree (the root counts as one).
    pub nodes_compared: u64,
    /// Leaves whose digests differed.
    pub differing_leaves: u64,
    /// [`Request::wire_size`] of every request sent.
    pub bytes_sent: u64,
    /// [`Response::wire_size`] of every response received.
    pub bytes_received: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Awaiting {
    Root { sent_root: u128 },
    Children { level: u8 },
    Over,
}

impl Awaiting {
    fn kind(self) -> &'static str {
        match self {
            Self::Root { .. } => "root",
            Self::Children { .. } => "children",
            Self::Over => "no",
        }
    }
}

/// The initiator's side of an exchange: a state machine that emits requests and
/// consumes responses, and does no IO (in the manner of quinn-proto).
///
/// It compares the roots, then descends level by level into the children of
/// the nodes whose digests differ, one request per level (split into several
/// requests when a level has more differing nodes than
/// [`crate::TreeShape::max_nodes_per_request`]). One request is outstanding at
/// a time. With the default shape, two trees differ in at most 4 rounds; equal
/// trees take 1.
///
/// Any error (a malformed or unexpected response, a different local tree)
/// ends the exchange: later calls return [`Error::ExchangeOver`].
///
/// The trees stay live during the exchange: each response is compared with
/// the local tree as it is when the response arrives, and the responder
/// answers each request from its tree as it is then. An exchange is therefore
/// not a snapshot: a write landing on one side mid-exchange may be missed (the
/// next exchange finds it, and normal replication usually delivers it first),
/// and a reported range may already have converged (the item diff then finds
/// nothing there). It never reports a difference under a subtree that did not
/// differ when compared.
#[derive(Clone, Debug)]
pub struct Exchange {
    id: TreeId,
    awaiting: Awaiting,
    /// Level of the parents in `pending` (and in the outstanding request).
    level: u8,
    /// Differing nodes at `level` whose children are wanted, ascending.
    pending: Vec<u32>,
    /// How many of `pending` have been requested.
    cursor: usize,
    /// The parents listed in the outstanding request.
    asked: Vec<u32>,
    /// Differing nodes found at `level + 1` (when that is not the leaf level).
    next: Vec<u32>,
    /// Differing leaves found so far, ascending.
    leaves: Vec<u32>,
    stats: ExchangeStats,
}

impl Exchange {
    /// Starts an exchange of `local` against the peer's tree of the same
    /// identity; send the returned request to the peer.
    pub fn new(local: &MerkleTree) -> (Self, Request) {
        let sent_root = local.root();
        let request = Request::Root {
            tree: local.id(),
            root: sent_root,
        };
        let exchange = Self {
            id: local.id(),
            awaiting: Awaiting::Root { sent_root },
            level: 0,
            pending: Vec::new(),
            cursor: 0,
            asked: Vec::new(),
            next: Vec::new(),
            leaves: Vec::new(),
            stats: ExchangeStats {
                rounds: 1,
                bytes_sent: request.wire_size(),
                ..ExchangeStats::default()
            },
        };
        (exchange, request)
    }

    /// The tree being compared.
    pub fn tree(&self) -> TreeId {
        self.id
    }

    /// What the exchange has cost so far.
    pub fn stats(&self) -> ExchangeStats {
        self.stats
    }

    /// Whether the exchange finished or failed.
    pub fn is_over(&self) -> bool {
        self.awaiting == Awaiting::Over
    }

    /// Feeds the peer's answer to the last request; `local` is this side's tree
    /// (the one the exchange was started with, possibly updated since).
    pub fn on_response(&mut self, local: &MerkleTree, response: Response) -> Result<Step> {
        let result = self.step(local, response);
        if result.is_err() {
            self.awaiting = Awaiting::Over;
        }
        result
    }

    fn step(&mut self, local: &MerkleTree, response: Response) -> Result<Step> {
        if self.awaiting == Awaiting::Over {
            return Err(Error::ExchangeOver);
        }
        if local.id() != self.id {
            return Err(Error::TreeMismatch {
                ours: self.id,
                theirs: local.id(),
            });
        }
        self.stats.bytes_received += response.wire_size();
        match (self.awaiting, response) {
            (Awaiting::Root { sent_root }, Response::Root { root, children }) => {
                self.stats.nodes_compared += 1;
                if root == sent_root {
                    if !children.is_empty() {
                        return Err(Error::MalformedResponse(
                            "children sent although the roots are equal",
                        ));
                    }
                    return Ok(Step::Done(self.finish()));
                }
                if children.iter().fold(0, |acc, d| acc ^ d) != root {
                    return Err(Error::MalformedResponse(
                        "the root's children do not combine to the root",
                    ));
                }
                self.level = 0;
                self.asked = vec![0];
                self.compare_children(local, &children)?;
            }
            (
                Awaiting::Children { level },
                Response::Children {
                    level: got,
                    digests,
                },
            ) => {
                if got != level {
                    return Err(Error::WrongLevel {
                        expected: level,
                        got,
                    });
                }
                self.compare_children(local, &digests)?;
            }
            (awaiting, response) => {
                return Err(Error::UnexpectedResponse {
                    expected: awaiting.kind(),
                    got: response.kind(),
                });
            }
        }
        Ok(self.next_step())
    }

    /// Compares the children of `self.asked` (at `self.level`) with `remote`.
    fn compare_children(&mut self, local: &MerkleTree, remote: &[u128]) -> Result<()> {
        let shape = self.id.shape();
        let fanout = shape.fanout();
        let expected = self.asked.len() * fanout;
        if remote.len() != expected {
            return Err(Error::WrongDigestCount {
                expected,
                got: remote.len(),
            });
        }
        let child_level = self.level + 1;
        let at_leaves = child_level == shape.depth();
        // `asked` holds indices this side produced from its own tree of the same
        // shape, so these lookups succeed; a failure would be a bug here, and is
        // reported as an error rather than a panic all the same.
        let ours = local
            .level(child_level)
            .ok_or(Error::MalformedResponse("no such level"))?;
        for (&parent, theirs) in self.asked.iter().zip(remote.chunks_exact(fanout)) {
            let first = (parent as usize) << shape.fanout_bits();
            let mine = ours
                .get(first..first + fanout)
                .ok_or(Error::MalformedResponse("no such node"))?;
            for (offset, (a, b)) in mine.iter().zip(theirs).enumerate() {
                self.stats.nodes_compared += 1;
                if a != b {
                    // first + offset < level_len(child_level) <= 2^20.
                    let child = (first + offset) as u32;
                    if at_leaves {
                        self.leaves.push(child);
                    } else {
                        self.next.push(child);
                    }
                }
            }
        }
        Ok(())
    }

    /// The next request, or the outcome.
    fn next_step(&mut self) -> Step {
        if self.cursor >= self.pending.len() {
            if self.next.is_empty() {
                return Step::Done(self.finish());
            }
            self.level += 1;
            self.pending = std::mem::take(&mut self.next);
            self.cursor = 0;
        }
        let end = self
            .pending
            .len()
            .min(self.cursor + self.id.shape().max_nodes_per_request());
        self.asked = self
            .pending
            .get(self.cursor..end)
            .unwrap_or_default()
            .to_vec();
        self.cursor = end;
        let request = Request::Children {
            tree: self.id,
            level: self.level,
            nodes: self.asked.clone(),
        };
        self.awaiting = Awaiting::Children { level: self.level };
        self.stats.rounds += 1;
        self.stats.bytes_sent += request.wire_size();
        Step::Send(request)
    }

    fn finish(&mut self) -> ExchangeOutcome {
        self.awaiting = Awaiting::Over;
        self.leaves.sort_unstable();
        self.leaves.dedup();
        self.stats.differing_leaves = self.leaves.len() as u64;
        let mut ranges: Vec<KeyRange> = Vec::new();
        for &leaf in &self.leaves {
            let Some(r) = self.id.leaf_range(leaf as usize) else {
                continue;
            };
            match ranges.last_mut() {
                Some(last) if last.end().as_u64().checked_add(1) == Some(r.start().as_u64()) => {
                    *last = KeyRange::from_ordered(last.start().as_u64(), r.end().as_u64());
                }
                _ => ranges.push(r),
            }
        }
        ExchangeOutcome {
            ranges,
            stats: self.stats,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_sizes_count_the_payload() {
        let q = gyre_types::PartitionCount::new(256).unwrap();
        let tree = TreeId::new(
            q,
            gyre_types::PartitionId::new(200),
            crate::TreeShape::DEFAULT,
        )
        .unwrap();
        // tag + q (2-byte varint) + partition (2) + shape (2) + root digest
        assert_eq!(
            Request::Root { tree, root: 0 }.wire_size(),
            1 + 2 + 2 + 2 + 16
        );
        let children = Request::Children {
            tree,
            level: 2,
            nodes: vec![5, 200],
        };
        // tag + id + level + length + 1-byte and 2-byte varints
        assert_eq!(children.wire_size(), 1 + 6 + 1 + 1 + 1 + 2);
        let root = Response::Root {
            root: 0,
            children: vec![0; 16],
        };
        assert_eq!(root.wire_size(), 1 + 16 + 1 + 16 * 16);
        let kids = Response::Children {
            level: 1,
            digests: vec![0; 160],
        };
        assert_eq!(kids.wire_size(), 1 + 1 + 2 + 160 * 16);
    }

    #[test]
    fn varints_are_leb128() {
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
        assert_eq!(varint_len(16_383), 2);
        assert_eq!(varint_len(16_384), 3);
        assert_eq!(varint_len(u64::MAX), 10);
    }
}
