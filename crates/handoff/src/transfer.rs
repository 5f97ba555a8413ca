//! [`Transfer`]: filling one (partition, n_val) replica, as a state machine
//! with no IO. The driver asks what to do next ([`Transfer::next`]), does
//! it (a chunk request, a Merkle session), and hands the answer back; the
//! rules (which source, when a stream is complete, what a chunk may hold,
//! when verification suffices) are here and nowhere else.

use gyre_types::{BucketName, Key, NodeId, PartitionId};

use crate::{Cursor, Stage};

/// What the driver of a [`Transfer`] is to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Ask `source` for the chunk of keys after `after` (`None`: from the
    /// first), and hand the answer to [`Transfer::chunk`] or
    /// [`Transfer::busy`].
    Fetch {
        /// The old replica to ask.
        source: NodeId,
        /// The last key already merged.
        after: Option<(BucketName, Key)>,
    },
    /// Compare Merkle trees with each of `peers` (at once: they are
    /// independent), repairing both ways, and hand how many succeeded to
    /// [`Transfer::verified`].
    Verify {
        /// The old replicas to compare with: every one that is up.
        peers: Vec<NodeId>,
    },
    /// Streamed and verified (or nothing to fetch): record
    /// [`Cursor::Done`].
    Done,
    /// Stopped for now, and why: try again later with a new transfer from
    /// the recorded cursor.
    Wait(String),
}

/// A chunk that [`Transfer::chunk`] accepted: merge its objects, then
/// record `cursor` if there is one (the last chunk records nothing: the
/// stream counts as done only once verified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The cursor to record once the chunk is durable.
    pub cursor: Option<Cursor>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Stream { after: Option<(BucketName, Key)> },
    Verify,
    Done,
    Wait(String),
}

/// Filling one (partition, n_val): stream it in key order from one up old
/// replica (the next one when a source is busy: a cursor is a key, the
/// same on every replica), then compare trees with every up old replica at
/// once, done when a majority of all of them did.
#[derive(Clone, Debug)]
pub struct Transfer {
    partition: PartitionId,
    n_val: u8,
    /// The old replicas up when it began, in preference order.
    up: Vec<NodeId>,
    /// Index in `up` of the source streamed from.
    source: usize,
    /// How many of the old replicas must compare trees.
    quorum: usize,
    /// Whether it resumed a stream (its first chunk may have been merged
    /// before without its cursor being recorded).
    resumed: bool,
    state: State,
}

impl Transfer {
    /// The transfer of (`partition`, `n_val`) from `old` (every replica it
    /// has, see [`crate::fill::sources`]), of which `is_up` says which are
    /// up, resuming from `cursor` if a previous run recorded one.
    pub fn new(
        partition: PartitionId,
        n_val: u8,
        old: &[NodeId],
        is_up: impl Fn(NodeId) -> bool,
        cursor: Option<&Cursor>,
    ) -> Self {
        let up: Vec<NodeId> = old.iter().copied().filter(|&n| is_up(n)).collect();
        let (state, resumed) = match cursor {
            // Every replica it had was removed: there is nothing to fetch.
            _ if old.is_empty() => (State::Done, false),
            Some(Cursor::Done) => (State::Done, false),
            _ if up.is_empty() => (
                State::Wait(format!("every old replica is down: {old:?}")),
                false,
            ),
            Some(Cursor::After(bucket, key)) => (
                State::Stream {
                    after: Some((bucket.clone(), key.clone())),
                },
                true,
            ),
            None => (State::Stream { after: None }, false),
        };
        Self {
            partition,
            n_val,
            up,
            source: 0,
            quorum: old.len() / 2 + 1,
            resumed,
            state,
        }
    }

    /// The stage it is in, as progress reports it.
    pub fn stage(&self) -> Stage {
        match self.state {
            State::Stream { .. } | State::Wait(_) => Stage::Stream,
            State::Verify => Stage::Verify,
            State::Done => Stage::Synced,
        }
    }

    /// The old replica it streams from.
    pub fn source(&self) -> Option<NodeId> {
        self.up.get(self.source).copied()
    }

    /// Whether it resumed a stream: its first chunk may be one merged
    /// before (a restart re-asks at most one chunk per stream).
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// What to do next.
    pub fn next(&self) -> Next {
        match &self.state {
            State::Stream { after } => match self.source() {
                Some(source) => Next::Fetch {
                    source,
                    after: after.clone(),
                },
                None => Next::Wait("no old replica to stream from".to_owned()),
            },
            State::Verify => Next::Verify {
                peers: self.up.clone(),
            },
            State::Done => Next::Done,
            State::Wait(why) => Next::Wait(why.clone()),
        }
    }

    /// The answer to [`Next::Fetch`]: a chunk's keys (bucket, key, n_val)
    /// and the cursor after it (`None`: the stream is complete).
    /// `partition_of` places a key under the layout being filled. What a
    /// peer sends is checked before anything is merged: only keys of this
    /// partition and n_val, and a cursor that moves; anything else stops
    /// the transfer (`Err`, and it waits).
    pub fn chunk<'a>(
        &mut self,
        keys: impl IntoIterator<Item = (&'a BucketName, &'a Key, u8)>,
        next: Option<(BucketName, Key)>,
        partition_of: impl Fn(&BucketName, &Key) -> PartitionId,
    ) -> Result<Accepted, String> {
        let State::Stream { after } = &self.state else {
            return Err("a chunk arrived while not streaming".to_owned());
        };
        let source = self.source().map_or_else(String::new, |s| s.to_string());
        if let Some((bucket, _, n_val)) = keys
            .into_iter()
            .find(|&(b, k, n)| n != self.n_val || partition_of(b, k) != self.partition)
        {
            return Err(self.stop(format!(
                "{source} sent a key of another partition or n_val ({bucket}, n_val {n_val}) in a chunk of {:?}",
                self.partition
            )));
        }
        if next.is_some() && next == *after {
            return Err(self.stop(format!(
                "{source} answered a chunk whose cursor does not move"
            )));
        }
        let cursor = next
            .as_ref()
            .map(|(bucket, key)| Cursor::After(bucket.clone(), key.clone()));
        self.state = match next {
            Some(after) => State::Stream { after: Some(after) },
            None => State::Verify,
        };
        Ok(Accepted { cursor })
    }

    /// The source of [`Next::Fetch`] is busy serving others: ask the next
    /// up old replica with the same cursor, or wait if none is left.
    pub fn busy(&mut self, message: &str) {
        if matches!(self.state, State::Stream { .. }) {
            self.source += 1;
            if self.source().is_none() {
                self.state = State::Wait(format!("every old replica is busy: {message}"));
            }
        }
    }

    /// The request of [`Next::Fetch`] failed otherwise: the transfer waits.
    pub fn failed(&mut self, why: String) {
        self.stop(why);
    }

    /// The outcome of [`Next::Verify`]: how many of the replicas compared
    /// trees. It is done if a majority of all the old replicas did, else it
    /// waits.
    pub fn verified(&mut self, verified: usize) {
        if self.state != State::Verify {
            return;
        }
        self.state = if verified >= self.quorum {
            State::Done
        } else {
            State::Wait(format!(
                "verify: {verified} of the {} old replicas needed compared trees",
                self.quorum
            ))
        };
    }

    fn stop(&mut self, why: String) -> String {
        self.state = State::Wait(why.clone());
        why
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    const P: PartitionId = PartitionId::new(5);

    fn n(i: u64) -> NodeId {
        NodeId::new(i)
    }

    fn key(i: usize) -> (BucketName, Key) {
        (
            BucketName::new("b").unwrap(),
            Key::new(format!("k{i:04}").into_bytes()).unwrap(),
        )
    }

    fn here(_: &BucketName, _: &Key) -> PartitionId {
        P
    }

    /// Drives `t` against sources that all hold `keys` keys, answering
    /// chunks of `chunk` keys; `busy(source, asked)` says whether a source
    /// is busy at the `asked`th request and `verifies(peer)` whether a tree
    /// comparison with it succeeds. What was merged, in order, and how it
    /// ended.
    fn drive(
        t: &mut Transfer,
        keys: usize,
        chunk: usize,
        busy: impl Fn(NodeId, usize) -> bool,
        verifies: impl Fn(NodeId) -> bool,
    ) -> (Vec<usize>, Next) {
        let all: Vec<(BucketName, Key)> = (0..keys).map(key).collect();
        let mut merged = Vec::new();
        for asked in 0.. {
            match t.next() {
                Next::Fetch { source, after } => {
                    if busy(source, asked) {
                        t.busy("busy");
                        continue;
                    }
                    let from = after.map_or(0, |a| all.iter().position(|k| *k == a).unwrap() + 1);
                    let to = (from + chunk).min(keys);
                    let items: Vec<(&BucketName, &Key, u8)> =
                        all[from..to].iter().map(|(b, k)| (b, k, 3)).collect();
                    let next = (to < keys).then(|| all[to - 1].clone());
                    let accepted = t.chunk(items, next, here).unwrap();
                    merged.extend(from..to);
                    assert_eq!(accepted.cursor.is_none(), to == keys);
                }
                Next::Verify { peers } => {
                    t.verified(peers.into_iter().filter(|&p| verifies(p)).count());
                }
                end => return (merged, end),
            }
        }
        unreachable!()
    }

    #[test]
    fn streams_in_chunks_then_verifies_with_every_up_replica() {
        let mut t = Transfer::new(P, 3, &[n(1), n(2), n(3)], |_| true, None);
        assert_eq!(
            (t.stage(), t.source(), t.resumed()),
            (Stage::Stream, Some(n(1)), false)
        );
        let (merged, end) = drive(&mut t, 10, 4, |_, _| false, |_| true);
        assert_eq!(merged, (0..10).collect::<Vec<_>>());
        assert_eq!((end, t.stage()), (Next::Done, Stage::Synced));
    }

    #[test]
    fn a_busy_source_hands_the_same_cursor_to_the_next() {
        let mut t = Transfer::new(P, 3, &[n(1), n(2), n(3)], |_| true, None);
        // Node 1 serves the first chunk, then is busy.
        let (merged, end) = drive(&mut t, 10, 4, |s, asked| s == n(1) && asked > 0, |_| true);
        assert_eq!(merged, (0..10).collect::<Vec<_>>());
        assert_eq!(end, Next::Done);
        let mut t = Transfer::new(P, 3, &[n(1), n(2)], |_| true, None);
        let (_, end) = drive(&mut t, 10, 4, |_, _| true, |_| true);
        assert_eq!(
            end,
            Next::Wait("every old replica is busy: busy".to_owned())
        );
    }

    #[test]
    fn verification_needs_a_majority_of_all_old_replicas() {
        // Three old replicas, one down: both up ones must compare trees.
        let up = |s: NodeId| s != n(3);
        let mut t = Transfer::new(P, 3, &[n(1), n(2), n(3)], up, None);
        let (_, end) = drive(&mut t, 3, 4, |_, _| false, |p| p != n(2));
        assert_eq!(
            end,
            Next::Wait("verify: 1 of the 2 old replicas needed compared trees".to_owned())
        );
        let mut t = Transfer::new(P, 3, &[n(1), n(2), n(3)], up, None);
        assert_eq!(drive(&mut t, 3, 4, |_, _| false, |_| true).1, Next::Done);
    }

    #[test]
    fn where_it_starts() {
        let (b, k) = key(3);
        let cursor = Cursor::After(b, k);
        let t = Transfer::new(P, 3, &[n(1)], |_| true, Some(&cursor));
        assert!(t.resumed());
        assert_eq!(
            t.next(),
            Next::Fetch {
                source: n(1),
                after: Some(key(3))
            }
        );
        let t = Transfer::new(P, 3, &[n(1)], |_| true, Some(&Cursor::Done));
        assert_eq!(t.next(), Next::Done);
        // Every replica it had was removed: nothing to fetch.
        assert_eq!(Transfer::new(P, 3, &[], |_| true, None).next(), Next::Done);
        let t = Transfer::new(P, 3, &[n(1), n(2)], |_| false, None);
        assert!(
            matches!(t.next(), Next::Wait(why) if why.starts_with("every old replica is down"))
        );
    }

    #[test]
    fn a_chunk_that_breaks_the_rules_merges_nothing_and_stops_the_transfer() {
        let (b, k) = key(1);
        let mut t = Transfer::new(P, 3, &[n(1)], |_| true, None);
        let stray = t.chunk([(&b, &k, 3)], Some(key(1)), |_, _| PartitionId::new(6));
        assert!(stray.unwrap_err().contains("another partition"));
        assert!(matches!(t.next(), Next::Wait(_)));
        let mut t = Transfer::new(P, 3, &[n(1)], |_| true, None);
        assert!(t.chunk([(&b, &k, 1)], Some(key(1)), here).is_err());
        // A cursor that does not move would re-ask the same chunk forever.
        let mut t = Transfer::new(
            P,
            3,
            &[n(1)],
            |_| true,
            Some(&Cursor::After(b.clone(), k.clone())),
        );
        let stuck = t.chunk([], Some(key(1)), here).unwrap_err();
        assert!(stuck.contains("does not move"));
        // A chunk when none was asked for.
        let mut t = Transfer::new(P, 3, &[n(1)], |_| true, Some(&Cursor::Done));
        assert!(t.chunk([], None, here).is_err());
    }

    proptest! {
        /// Whatever the chunk size and whichever sources are busy, every
        /// key is merged once, in order, or the transfer waits with every
        /// source busy.
        #[test]
        fn every_key_once_in_order(
            keys in 0usize..60,
            chunk in 1usize..10,
            busy in prop::collection::vec(any::<bool>(), 0..40),
        ) {
            let mut t = Transfer::new(P, 3, &[n(1), n(2), n(3)], |_| true, None);
            let (merged, end) = drive(&mut t, keys, chunk, |_, asked| busy.get(asked).copied().unwrap_or(false), |_| true);
            prop_assert!(merged.windows(2).all(|w| w[0] + 1 == w[1]));
            match end {
                Next::Done => prop_assert_eq!(merged.len(), keys),
                Next::Wait(why) => prop_assert!(why.starts_with("every old replica is busy")),
                other => prop_assert!(false, "ended with {:?}", other),
            }
        }
    }
}
