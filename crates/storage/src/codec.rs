//! The on-disk formats: pure functions from values to bytes and back.
//!
//! Every record starts with a format tag and ends with an XXH3-64 checksum of
//! what precedes it; integers are little-endian, counts and lengths LEB128
//! varints. Decoding checks every length against the bytes that remain
//! before allocating, so a corrupt record costs an error, never a panic or a
//! huge allocation. `tests/format_fixture.rs` pins the formats against a
//! committed file.
//!
//! ```text
//! object key   hash u64 BE ‖ len(bucket) u8 ‖ bucket ‖ key
//! object       tag 1 ‖ n_val u8 ‖ varint entries ‖ entry* ‖ checksum u64
//!   entry      node u64 ‖ varint counter ‖ varint siblings ‖ sibling*
//!   sibling    varint dot counter ‖ timestamp u64 ‖ 0 (tombstone)
//!              | 1 ‖ varint len ‖ value | 2 ‖ expiry u64 ‖ varint len ‖ value
//! hint key     target node u64 BE ‖ sequence u64 BE
//! hint         tag 1 ‖ varint len(object key) ‖ object key ‖ object record
//! leaf key     partition u32 BE ‖ n_val u8 ‖ leaf u32 BE
//! leaf         digest u128 LE (16 bytes)
//! size key     partition u32 BE ‖ n_val u8 ‖ FFFFFFFF (a leaf key past every leaf)
//! size         objects u64 LE ‖ bytes u64 LE (16 bytes)
//! ```
//!
//! Keys are big-endian so that byte order is numeric order: objects sort by
//! key hash (one partition is one contiguous range), hints by target then
//! arrival.

use bytes::Bytes;
use gyre_types::{BucketName, Key, NodeId, PartitionId, Timestamp};
use gyre_versioning::DvvSet;

use crate::{Hint, Object, ObjectId, TreeSize};

/// The format tag of object and hint records written by this version.
pub(crate) const FORMAT: u8 = 1;

const CHECKSUM_LEN: usize = 8;

/// Why bytes did not decode; the caller adds which record it was.
pub(crate) type DecodeError = String;

// ---------------------------------------------------------------- keys

/// The storage key of an object.
pub(crate) fn object_key(id: &ObjectId) -> Vec<u8> {
    let bucket = id.bucket().as_str().as_bytes();
    let mut out = Vec::with_capacity(9 + bucket.len() + id.key().len());
    out.extend_from_slice(&id.hash().as_u64().to_be_bytes());
    // A bucket name is at most 64 bytes, so its length fits a byte.
    out.push(bucket.len() as u8);
    out.extend_from_slice(bucket);
    out.extend_from_slice(id.key().as_bytes());
    out
}

/// Decodes an object's storage key, checking that the hash matches.
pub(crate) fn decode_object_key(bytes: &[u8]) -> Result<ObjectId, DecodeError> {
    let mut r = Reader::new(bytes);
    let hash = r.u64_be()?;
    let bucket_len = usize::from(r.u8()?);
    let bucket = std::str::from_utf8(r.bytes(bucket_len)?)
        .map_err(|_| "bucket name is not UTF-8".to_owned())?;
    let bucket = BucketName::new(bucket).map_err(|e| e.to_string())?;
    let key = Key::new(r.rest()).map_err(|e| e.to_string())?;
    let id = ObjectId::new(bucket, key);
    if id.hash().as_u64() != hash {
        return Err(format!("key hash {hash:016x} does not match the key"));
    }
    Ok(id)
}

/// A readable name for a raw object key, for errors about it.
pub(crate) fn describe_object_key(bytes: &[u8]) -> String {
    match decode_object_key(bytes) {
        Ok(id) => id.to_string(),
        Err(_) => format!("object key {}", hex(bytes)),
    }
}

/// The storage key of a hint.
pub(crate) fn hint_key(target: NodeId, seq: u64) -> [u8; 16] {
    let mut out = [0; 16];
    out[..8].copy_from_slice(&target.as_u64().to_be_bytes());
    out[8..].copy_from_slice(&seq.to_be_bytes());
    out
}

/// Decodes a hint's storage key into (target, sequence).
pub(crate) fn decode_hint_key(bytes: &[u8]) -> Result<(NodeId, u64), DecodeError> {
    let mut r = Reader::new(bytes);
    let target = NodeId::new(r.u64_be()?);
    let seq = r.u64_be()?;
    r.finish()?;
    Ok((target, seq))
}

/// The storage key of one Merkle leaf.
pub(crate) fn leaf_key(partition: PartitionId, n_val: u8, leaf: u32) -> [u8; 9] {
    let mut out = [0; 9];
    out[..4].copy_from_slice(&partition.get().to_be_bytes());
    out[4] = n_val;
    out[5..].copy_from_slice(&leaf.to_be_bytes());
    out
}

/// Decodes a leaf key into (partition, n_val, leaf).
pub(crate) fn decode_leaf_key(bytes: &[u8]) -> Result<(PartitionId, u8, u32), DecodeError> {
    let mut r = Reader::new(bytes);
    let partition = PartitionId::new(r.u32_be()?);
    let n_val = r.u8()?;
    let leaf = r.u32_be()?;
    r.finish()?;
    Ok((partition, n_val, leaf))
}

/// The leaf number of a tree's size row: past every leaf (a tree has at
/// most 2^16 leaves), so a tree's leaves and its size sort together.
pub(crate) const SIZES_LEAF: u32 = u32::MAX;

/// The storage key of one tree's size.
pub(crate) fn sizes_key(partition: PartitionId, n_val: u8) -> [u8; 9] {
    leaf_key(partition, n_val, SIZES_LEAF)
}

/// A tree's size as stored.
pub(crate) fn encode_sizes(size: TreeSize) -> [u8; 16] {
    let mut out = [0; 16];
    out[..8].copy_from_slice(&size.objects.to_le_bytes());
    out[8..].copy_from_slice(&size.bytes.to_le_bytes());
    out
}

/// Decodes a tree's size.
pub(crate) fn decode_sizes(bytes: &[u8]) -> Result<TreeSize, DecodeError> {
    let raw: [u8; 16] = bytes
        .try_into()
        .map_err(|_| format!("tree size is {} bytes, not 16", bytes.len()))?;
    let (objects, size) = raw.split_at(8);
    let word = |b: &[u8]| b.try_into().map(u64::from_le_bytes);
    Ok(TreeSize {
        objects: word(objects).map_err(|_| "tree size: objects".to_owned())?,
        bytes: word(size).map_err(|_| "tree size: bytes".to_owned())?,
    })
}

/// Decodes a leaf digest.
pub(crate) fn decode_leaf(bytes: &[u8]) -> Result<u128, DecodeError> {
    let raw: [u8; 16] = bytes
        .try_into()
        .map_err(|_| format!("leaf digest is {} bytes, not 16", bytes.len()))?;
    Ok(u128::from_le_bytes(raw))
}

// ---------------------------------------------------------------- records

/// Encodes an object record.
pub(crate) fn encode_object(n_val: u8, object: &Object) -> Vec<u8> {
    let mut out = Vec::with_capacity(object_size_hint(object));
    out.push(FORMAT);
    out.push(n_val);
    write_object_body(&mut out, object);
    seal(&mut out);
    out
}

/// Decodes an object record into (n_val, object).
pub(crate) fn decode_object(bytes: &[u8]) -> Result<(u8, Object), DecodeError> {
    let body = unseal(bytes)?;
    let mut r = Reader::new(body);
    let tag = r.u8()?;
    if tag != FORMAT {
        return Err(format!("unknown record format {tag}"));
    }
    let n_val = r.u8()?;
    let object = read_object_body(&mut r)?;
    r.finish()?;
    Ok((n_val, object))
}

/// Encodes a hint record.
pub(crate) fn encode_hint(hint: &Hint) -> Vec<u8> {
    let key = object_key(&hint.id);
    let mut out = Vec::with_capacity(key.len() + object_size_hint(&hint.object) + 4);
    out.push(FORMAT);
    write_varint(&mut out, key.len() as u64);
    out.extend_from_slice(&key);
    out.push(hint.n_val);
    write_object_body(&mut out, &hint.object);
    seal(&mut out);
    out
}

/// Decodes a hint record.
pub(crate) fn decode_hint(bytes: &[u8]) -> Result<Hint, DecodeError> {
    let body = unseal(bytes)?;
    let mut r = Reader::new(body);
    let tag = r.u8()?;
    if tag != FORMAT {
        return Err(format!("unknown record format {tag}"));
    }
    let key_len = r.len()?;
    let id = decode_object_key(r.bytes(key_len)?)?;
    let n_val = r.u8()?;
    let object = read_object_body(&mut r)?;
    r.finish()?;
    Ok(Hint { id, n_val, object })
}

fn object_size_hint(object: &Object) -> usize {
    let values: usize = object
        .siblings()
        .map(|s| s.value.as_ref().map_or(0, Bytes::len) + 24)
        .sum();
    values + 32 * object.parts().len() + 16
}

fn write_object_body(out: &mut Vec<u8>, object: &Object) {
    let parts = object.parts();
    write_varint(out, parts.len() as u64);
    for (node, counter, siblings) in parts {
        out.extend_from_slice(&node.as_u64().to_le_bytes());
        write_varint(out, counter);
        write_varint(out, siblings.len() as u64);
        for s in siblings {
            write_varint(out, s.dot.counter);
            out.extend_from_slice(&s.timestamp.as_u64().to_le_bytes());
            match (&s.value, s.expires) {
                (None, _) => out.push(0),
                (Some(v), expires) => {
                    match expires {
                        None => out.push(1),
                        Some(at) => {
                            out.push(2);
                            out.extend_from_slice(&at.as_u64().to_le_bytes());
                        }
                    }
                    write_varint(out, v.len() as u64);
                    out.extend_from_slice(v);
                }
            }
        }
    }
}

fn read_object_body(r: &mut Reader<'_>) -> Result<Object, DecodeError> {
    // Every entry takes at least 10 bytes and every sibling at least 10, so
    // a count larger than the remaining bytes allow is refused before any
    // allocation.
    let entry_count = r.count(10)?;
    let mut entries = Vec::with_capacity(entry_count);
    for _ in 0..entry_count {
        let node = NodeId::new(r.u64_le()?);
        let counter = r.varint()?;
        let sibling_count = r.count(10)?;
        let mut siblings = Vec::with_capacity(sibling_count);
        for _ in 0..sibling_count {
            let dot = r.varint()?;
            let ts = Timestamp::from_u64(r.u64_le()?);
            let tag = r.u8()?;
            let expires = match tag {
                0 | 1 => None,
                2 => Some(Timestamp::from_u64(r.u64_le()?)),
                t => return Err(format!("unknown sibling tag {t}")),
            };
            let value = match tag {
                0 => None,
                _ => {
                    let len = r.len()?;
                    Some(Bytes::copy_from_slice(r.bytes(len)?))
                }
            };
            siblings.push((dot, ts, value, expires));
        }
        entries.push((node, counter, siblings));
    }
    DvvSet::from_parts(entries).map_err(|e| e.to_string())
}

/// Appends the checksum of everything so far.
fn seal(out: &mut Vec<u8>) {
    let sum = xxhash_rust::xxh3::xxh3_64(out);
    out.extend_from_slice(&sum.to_le_bytes());
}

/// Checks and strips the checksum.
fn unseal(bytes: &[u8]) -> Result<&[u8], DecodeError> {
    let split = bytes
        .len()
        .checked_sub(CHECKSUM_LEN)
        .ok_or_else(|| format!("record is {} bytes, too short", bytes.len()))?;
    let (body, sum) = bytes.split_at(split);
    let mut raw = [0; CHECKSUM_LEN];
    raw.copy_from_slice(sum);
    if u64::from_le_bytes(raw) != xxhash_rust::xxh3::xxh3_64(body) {
        return Err("checksum mismatch".to_owned());
    }
    Ok(body)
}

fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let shown = bytes.get(..32).unwrap_or(bytes);
    let mut s = String::with_capacity(2 * shown.len() + 3);
    for b in shown {
        let _ = write!(s, "{b:02x}");
    }
    if shown.len() < bytes.len() {
        s.push('…');
    }
    s
}

/// A cursor over untrusted bytes: every read is bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.bytes.len() {
            return Err(format!(
                "record truncated: needed {n} bytes, {} left",
                self.bytes.len()
            ));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32_be(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64_be(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn u64_le(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err("varint overflows 64 bits".to_owned());
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes".to_owned())
    }

    /// A length that must fit in the remaining bytes.
    fn len(&mut self) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.bytes.len())
            .ok_or_else(|| format!("length {n} exceeds the {} bytes left", self.bytes.len()))
    }

    /// A count of items that take at least `min_item_len` bytes each.
    fn count(&mut self, min_item_len: usize) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n.saturating_mul(min_item_len) <= self.bytes.len())
            .ok_or_else(|| format!("count {n} exceeds what {} bytes hold", self.bytes.len()))
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    fn finish(&self) -> Result<(), DecodeError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(format!("{} unexpected trailing bytes", self.bytes.len()))
        }
    }
}

/// The digest of a Merkle leaf as stored.
pub(crate) fn encode_leaf(digest: u128) -> [u8; 16] {
    digest.to_le_bytes()
}

/// The key hash an object key starts with (for range scans).
pub(crate) fn hash_prefix(hash: u64) -> [u8; 8] {
    hash.to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gyre_versioning::Policy;

    fn sample() -> (ObjectId, Object) {
        let id = ObjectId::new(
            BucketName::new("carts").unwrap(),
            Key::new(b"user:1".to_vec()).unwrap(),
        );
        let mut o = Object::new();
        let p = Policy::default();
        o.put_blind(
            Bytes::from_static(b"v1"),
            NodeId::new(1),
            Timestamp::from_u64(5),
            &p,
        )
        .unwrap();
        let mut other = Object::new();
        other
            .put_blind(
                Bytes::from_static(b"v2"),
                NodeId::new(2),
                Timestamp::from_u64(6),
                &p,
            )
            .unwrap();
        o.sync(&other, &p);
        (id, o)
    }

    #[test]
    fn records_round_trip() {
        let (id, o) = sample();
        assert_eq!(decode_object_key(&object_key(&id)).unwrap(), id);
        assert_eq!(
            decode_object(&encode_object(3, &o)).unwrap(),
            (3, o.clone())
        );
        let hint = Hint {
            id,
            n_val: 2,
            object: o,
        };
        assert_eq!(decode_hint(&encode_hint(&hint)).unwrap(), hint);
    }

    #[test]
    fn every_truncation_and_bit_flip_is_an_error() {
        let (_, o) = sample();
        let rec = encode_object(3, &o);
        for n in 0..rec.len() {
            assert!(decode_object(&rec[..n]).is_err());
        }
        for i in 0..rec.len() * 8 {
            let mut bad = rec.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(decode_object(&bad).is_err(), "bit {i}");
        }
    }

    #[test]
    fn varints_reject_overflow() {
        let mut r = Reader::new(&[0xff; 11]);
        assert!(r.varint().is_err());
        let mut out = Vec::new();
        write_varint(&mut out, u64::MAX);
        assert_eq!(Reader::new(&out).varint().unwrap(), u64::MAX);
    }
}
