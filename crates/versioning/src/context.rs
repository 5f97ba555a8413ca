use std::cmp::Ordering;
use std::fmt;

use gyre_types::NodeId;
use serde::{Deserialize, Serialize, Serializer};

use crate::{ContextError, Dot, Error, Result};

/// A causal context: for each node, how many of its writes to a key have been
/// seen (a version vector). It covers dot `(n, c)` when its counter for `n` is
/// at least `c`.
///
/// Clients receive it with every read and hand it back, unchanged, with their
/// next write of the key; to them it is opaque bytes ([`Self::to_bytes`]).
/// Contexts are partially ordered by causality ([`PartialOrd`]):
/// `a <= b` when `b` has seen everything `a` has.
///
/// Entries are kept sorted by node id, unique, with non-zero counters, so that
/// equal contexts have equal representations and equal encodings.
///
/// The encoding is checksummed, not authenticated: a client can craft a
/// context, but all it can do with one is make its own write of the key
/// supersede more versions (as a delete could), never break a state. A
/// context claiming `u64::MAX` writes of a node exhausts that node's counter
/// for the key ([`Error::CounterOverflow`]); front ends should cap the size of
/// the contexts they accept.
#[derive(Clone, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "Vec<(NodeId, u64)>")]
pub struct Context {
    entries: Vec<(NodeId, u64)>,
}

impl Context {
    /// The first byte of every encoding produced by [`Self::to_bytes`].
    pub const FORMAT_VERSION: u8 = 1;

    /// The context of a client that has seen nothing. A write with it
    /// supersedes nothing.
    pub const fn empty() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Builds a context from `(node, counter)` pairs in any order; repeated
    /// nodes keep their greatest counter and zero counters are dropped.
    pub fn from_entries(entries: impl IntoIterator<Item = (NodeId, u64)>) -> Self {
        let mut entries: Vec<(NodeId, u64)> = entries.into_iter().filter(|&(_, c)| c > 0).collect();
        // Sort by node, greatest counter first, then keep the first of each node.
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        entries.dedup_by_key(|e| e.0);
        Self { entries }
    }

    /// Wraps entries that are already sorted, unique and non-zero.
    pub(crate) fn from_canonical(entries: Vec<(NodeId, u64)>) -> Self {
        debug_assert!(check_canonical(&entries).is_ok());
        Self { entries }
    }

    /// Whether the context has seen nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many nodes the context names.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// How many of `node`'s writes the context has seen (0 if none).
    pub fn get(&self, node: NodeId) -> u64 {
        match self.entries.binary_search_by_key(&node, |e| e.0) {
            Ok(i) => self.entries.get(i).map_or(0, |e| e.1),
            Err(_) => 0,
        }
    }

    /// Whether the context has seen the write `dot`.
    pub fn covers(&self, dot: Dot) -> bool {
        self.get(dot.node) >= dot.counter
    }

    /// The `(node, counter)` entries, sorted by node.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (NodeId, u64)> + '_ {
        self.entries.iter().copied()
    }

    /// Merges `other` into this context: each node keeps the greater counter.
    pub fn join(&mut self, other: &Context) {
        if other.entries.is_empty() {
            return;
        }
        let mine = std::mem::take(&mut self.entries);
        let mut out = Vec::with_capacity(mine.len().max(other.entries.len()));
        let mut a = mine.into_iter().peekable();
        let mut b = other.entries.iter().copied().peekable();
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => match x.0.cmp(&y.0) {
                    Ordering::Less => a.next(),
                    Ordering::Greater => b.next(),
                    Ordering::Equal => {
                        let c = x.1.max(y.1);
                        let n = x.0;
                        a.next();
                        b.next();
                        Some((n, c))
                    }
                },
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (None, None) => None,
            };
            match next {
                Some(e) => out.push(e),
                None => break,
            }
        }
        self.entries = out;
    }

    /// Whether this context has seen everything `other` has (`self >= other`).
    pub fn descends(&self, other: &Context) -> bool {
        other.entries.iter().all(|&(n, c)| self.get(n) >= c)
    }

    /// The client encoding.
    ///
    /// Format (version 1), every field in order:
    ///
    /// | field | encoding |
    /// |---|---|
    /// | version | one byte, `1` |
    /// | entry count | unsigned LEB128 varint |
    /// | each entry, node ids strictly increasing | node id as 8 bytes big-endian, then its counter (≥ 1) as unsigned LEB128 varint |
    /// | checksum | 4 bytes big-endian: the low 32 bits of XXH3-64 (seed 0) of every preceding byte |
    ///
    /// Varints are minimal (no redundant `0x80` continuation bytes), so a
    /// context has exactly one encoding. The empty context encodes to 6 bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 10 + self.entries.len() * 12 + 4);
        out.push(Self::FORMAT_VERSION);
        put_varint(&mut out, self.entries.len() as u64);
        for &(node, counter) in &self.entries {
            out.extend_from_slice(&node.as_u64().to_be_bytes());
            put_varint(&mut out, counter);
        }
        let sum = checksum(&out);
        out.extend_from_slice(&sum.to_be_bytes());
        out
    }

    /// Decodes [`Self::to_bytes`]'s format. Anything else, including a
    /// single flipped bit, is an [`Error::InvalidContext`]; nothing panics,
    /// and nothing is allocated beyond what the input's length justifies.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Ok(decode(bytes)?)
    }
}

/// Entries of an encoded context: node id, then at least one varint byte.
const MIN_ENTRY_LEN: usize = 9;
const CHECKSUM_LEN: usize = 4;

fn decode(bytes: &[u8]) -> std::result::Result<Context, ContextError> {
    let mut input = bytes;
    let (&version, rest) = input.split_first().ok_or(ContextError::Truncated)?;
    input = rest;
    if version != Context::FORMAT_VERSION {
        return Err(ContextError::UnknownVersion(version));
    }
    let count = read_varint(&mut input)?;
    // Each entry needs at least MIN_ENTRY_LEN bytes: a count the input
    // cannot hold is refused before anything is allocated for it.
    let count = usize::try_from(count).map_err(|_| ContextError::Truncated)?;
    if count > input.len() / MIN_ENTRY_LEN {
        return Err(ContextError::Truncated);
    }
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let (node, rest) = input
            .split_first_chunk::<8>()
            .ok_or(ContextError::Truncated)?;
        input = rest;
        let counter = read_varint(&mut input)?;
        entries.push((NodeId::new(u64::from_be_bytes(*node)), counter));
    }
    match input.len() {
        n if n < CHECKSUM_LEN => return Err(ContextError::Truncated),
        n if n > CHECKSUM_LEN => return Err(ContextError::TrailingBytes(n - CHECKSUM_LEN)),
        _ => {}
    }
    let (body, stored) = bytes
        .split_last_chunk::<CHECKSUM_LEN>()
        .ok_or(ContextError::Truncated)?;
    if checksum(body) != u32::from_be_bytes(*stored) {
        return Err(ContextError::BadChecksum);
    }
    check_canonical(&entries)?;
    Ok(Context { entries })
}

/// Checks that entries are sorted, unique and non-zero.
fn check_canonical(entries: &[(NodeId, u64)]) -> std::result::Result<(), ContextError> {
    if entries.iter().any(|e| e.1 == 0) {
        return Err(ContextError::ZeroCounter);
    }
    for pair in entries.windows(2) {
        if let [a, b] = pair {
            match a.0.cmp(&b.0) {
                Ordering::Less => {}
                Ordering::Equal => return Err(ContextError::Duplicate),
                Ordering::Greater => return Err(ContextError::NotSorted),
            }
        }
    }
    Ok(())
}

fn checksum(bytes: &[u8]) -> u32 {
    // The low 32 bits, by definition of the format.
    xxhash_rust::xxh3::xxh3_64(bytes) as u32
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        // Masked to 7 bits, so the cast is lossless.
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn read_varint(input: &mut &[u8]) -> std::result::Result<u64, ContextError> {
    let mut value = 0u64;
    for i in 0..10u32 {
        let (&byte, rest) = input.split_first().ok_or(ContextError::Truncated)?;
        *input = rest;
        // The tenth byte carries bit 63 only.
        if i == 9 && byte > 1 {
            return Err(ContextError::VarintOverflow);
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if byte == 0 && i > 0 {
                return Err(ContextError::OverlongVarint);
            }
            return Ok(value);
        }
    }
    // Unreachable in practice: the tenth byte either ended the varint or was
    // refused above. Kept as an error rather than a panic.
    Err(ContextError::VarintOverflow)
}

impl TryFrom<Vec<(NodeId, u64)>> for Context {
    type Error = Error;

    fn try_from(entries: Vec<(NodeId, u64)>) -> Result<Self> {
        check_canonical(&entries)?;
        Ok(Self { entries })
    }
}

impl Serialize for Context {
    /// A sequence of `(node, counter)` pairs, sorted by node.
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_seq(&self.entries)
    }
}

impl FromIterator<(NodeId, u64)> for Context {
    fn from_iter<I: IntoIterator<Item = (NodeId, u64)>>(iter: I) -> Self {
        Self::from_entries(iter)
    }
}

impl PartialOrd for Context {
    /// The causal order: `Less` when `other` has seen everything `self` has
    /// and more, `None` when each has seen something the other has not.
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match (other.descends(self), self.descends(other)) {
            (true, true) => Some(Ordering::Equal),
            (true, false) => Some(Ordering::Less),
            (false, true) => Some(Ordering::Greater),
            (false, false) => None,
        }
    }
}

impl fmt::Display for Context {
    /// `{node:counter, …}` with node ids in hexadecimal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (node, counter)) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{node}:{counter}")?;
        }
        f.write_str("}")
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Context{self}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(x: u64) -> NodeId {
        NodeId::new(x)
    }

    #[test]
    fn varints_round_trip_at_the_edges() {
        for v in [0, 1, 127, 128, 16_383, 16_384, u64::MAX - 1, u64::MAX] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            let mut input = buf.as_slice();
            assert_eq!(read_varint(&mut input), Ok(v));
            assert!(input.is_empty());
        }
    }

    #[test]
    fn non_minimal_and_oversized_varints_are_refused() {
        assert_eq!(
            read_varint(&mut &[0x80, 0x00][..]),
            Err(ContextError::OverlongVarint)
        );
        assert_eq!(
            read_varint(&mut &[0x81, 0x80, 0x00][..]),
            Err(ContextError::OverlongVarint)
        );
        let mut eleven = [0xff; 10].to_vec();
        eleven.push(0x01);
        assert_eq!(
            read_varint(&mut eleven.as_slice()),
            Err(ContextError::VarintOverflow)
        );
        let mut big = [0xff; 9].to_vec();
        big.push(0x02);
        assert_eq!(
            read_varint(&mut big.as_slice()),
            Err(ContextError::VarintOverflow)
        );
        assert_eq!(read_varint(&mut &[0x80][..]), Err(ContextError::Truncated));
    }

    /// The encoding is a format: clients hold on to these bytes. Checksums
    /// computed with the reference xxHash (Python's `xxhash` package).
    #[test]
    fn encoding_is_pinned() {
        assert_eq!(Context::empty().to_bytes(), [1, 0, 0xce, 0x72, 0x76, 0xc0]);
        let ctx = Context::from_entries([(n(0x0102_0304_0506_0708), 300), (n(1), 1)]);
        let bytes = ctx.to_bytes();
        assert_eq!(
            bytes,
            [
                1, 2, // version, count
                0, 0, 0, 0, 0, 0, 0, 1, 1, // node 1, counter 1
                1, 2, 3, 4, 5, 6, 7, 8, 0xac, 0x02, // node, counter 300
                0x61, 0x5a, 0x3a, 0x25, // checksum
            ]
        );
        assert_eq!(Context::from_bytes(&bytes), Ok(ctx));
    }

    #[test]
    fn from_entries_normalises() {
        let ctx = Context::from_entries([(n(2), 1), (n(1), 0), (n(2), 5), (n(0), 3)]);
        assert_eq!(ctx.iter().collect::<Vec<_>>(), vec![(n(0), 3), (n(2), 5)]);
        assert_eq!(ctx.to_string(), "{0000000000000000:3, 0000000000000002:5}");
    }

    #[test]
    fn causal_order() {
        let a = Context::from_entries([(n(1), 2)]);
        let b = Context::from_entries([(n(1), 2), (n(2), 1)]);
        let c = Context::from_entries([(n(1), 3)]);
        assert!(a < b);
        assert!(b > a);
        assert_eq!(a.partial_cmp(&a.clone()), Some(Ordering::Equal));
        assert_eq!(b.partial_cmp(&c), None);
        let mut j = b.clone();
        j.join(&c);
        assert!(j >= b && j >= c);
        assert_eq!(j, Context::from_entries([(n(1), 3), (n(2), 1)]));
        assert!(Context::empty() <= a);
    }
}
