//! [`Cursors`]: where each partition transfer of one layout change stands,
//! persisted after every chunk so that a restart of either side re-asks at
//! most one chunk.

use std::collections::BTreeMap;

use gyre_membership::LayoutStamp;
use gyre_types::{BucketName, Key, PartitionId};
use serde::{Deserialize, Serialize};

use crate::Error;

/// The format [`Cursors::encode`] writes. Files without a format tag were
/// written before it existed, in the same shape.
const FORMAT: u32 = 1;

/// Where one (partition, n_val) transfer stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cursor {
    /// Every key up to this one (in key order) is merged and durable.
    After(BucketName, Key),
    /// Streamed and verified.
    Done,
}

/// The cursors of the transfers of one layout change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursors {
    /// The file format (0: written before the tag).
    #[serde(default)]
    format: u32,
    layout: Option<LayoutStamp>,
    /// The layout reads used while these were made (absent in cursors of
    /// older builds: then they are not carried to a stacked change).
    #[serde(default)]
    read: Option<LayoutStamp>,
    /// Per "partition/n_val".
    entries: BTreeMap<String, Cursor>,
}

fn entry_name(partition: PartitionId, n_val: u8) -> String {
    format!("{}/{n_val}", partition.get())
}

impl Cursors {
    /// Reads what [`Self::encode`] wrote (or an older build without the
    /// format tag).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let cursors: Self =
            serde_json::from_slice(bytes).map_err(|e| Error::Cursors(e.to_string()))?;
        if cursors.format > FORMAT {
            return Err(Error::Cursors(format!(
                "format {} is newer than this build's {FORMAT}",
                cursors.format
            )));
        }
        Ok(cursors)
    }

    /// The bytes to persist.
    pub fn encode(&self) -> Vec<u8> {
        let tagged = Self {
            format: FORMAT,
            ..self.clone()
        };
        // A map of strings to plain enums: serialising cannot fail.
        serde_json::to_vec(&tagged).unwrap_or_default()
    }

    /// The layout whose transfers these are.
    pub fn layout(&self) -> Option<LayoutStamp> {
        self.layout
    }

    /// Where (`partition`, `n_val`) stands: `None` if it has not started.
    pub fn get(&self, partition: PartitionId, n_val: u8) -> Option<&Cursor> {
        self.entries.get(&entry_name(partition, n_val))
    }

    /// Records where (`partition`, `n_val`) of the transfer of `layout`
    /// stands; refused if these cursors moved to another layout since.
    pub fn set(
        &mut self,
        layout: LayoutStamp,
        partition: PartitionId,
        n_val: u8,
        cursor: Cursor,
    ) -> Result<(), Error> {
        if self.layout != Some(layout) {
            return Err(Error::Superseded(layout));
        }
        self.entries.insert(entry_name(partition, n_val), cursor);
        Ok(())
    }

    /// Moves these cursors to the transfer of `layout`, reading with
    /// `read`, which fills `work`. A change stacked on the one in flight
    /// keeps what was streamed and verified of every (partition, n_val)
    /// it still gives this node, while reads use the same layout: that
    /// copy came from replicas of that layout, and since it began this
    /// node was in the write set of a layout still in use (writes go to
    /// every one), so it missed nothing the final verification would not
    /// repair. Anything else starts over.
    pub fn carry_to(&mut self, layout: LayoutStamp, read: LayoutStamp, work: &[(PartitionId, u8)]) {
        if self.layout == Some(layout) {
            return;
        }
        let kept: BTreeMap<String, Cursor> = if self.read == Some(read) {
            work.iter()
                .filter_map(|&(p, n)| {
                    let name = entry_name(p, n);
                    self.entries.remove(&name).map(|c| (name, c))
                })
                .collect()
        } else {
            BTreeMap::new()
        };
        *self = Self {
            format: FORMAT,
            layout: Some(layout),
            read: Some(read),
            entries: kept,
        };
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn stamp(version: u64) -> LayoutStamp {
        LayoutStamp {
            version,
            digest: version * 7,
        }
    }

    fn p(i: u32) -> PartitionId {
        PartitionId::new(i)
    }

    fn after(key: &str) -> Cursor {
        Cursor::After(
            BucketName::new("b").unwrap(),
            Key::new(key.as_bytes().to_vec()).unwrap(),
        )
    }

    fn cursors() -> Cursors {
        let mut c = Cursors::default();
        c.carry_to(stamp(2), stamp(1), &[(p(1), 3), (p(2), 3), (p(3), 3)]);
        c.set(stamp(2), p(1), 3, Cursor::Done).unwrap();
        c.set(stamp(2), p(2), 3, after("k")).unwrap();
        c
    }

    #[test]
    fn a_stacked_change_keeps_the_cursors_of_what_it_still_gives() {
        let mut c = cursors();
        // Version 3 stacks on 2; reads still use 1; it keeps partitions 1
        // and 3 here, gives 2 away and adds 4.
        c.carry_to(stamp(3), stamp(1), &[(p(1), 3), (p(3), 3), (p(4), 3)]);
        assert_eq!(c.layout(), Some(stamp(3)));
        assert_eq!(c.entries.len(), 1);
        assert_eq!(c.get(p(1), 3), Some(&Cursor::Done));
        // Carried again to the same layout: nothing changes.
        let before = c.clone();
        c.carry_to(stamp(3), stamp(1), &[]);
        assert_eq!(c, before);
        // The transfer of version 2 can no longer record anything.
        assert_eq!(
            c.set(stamp(2), p(1), 3, after("z")),
            Err(Error::Superseded(stamp(2)))
        );
    }

    #[test]
    fn cursors_made_while_reads_used_another_layout_start_over() {
        let mut c = cursors();
        c.carry_to(stamp(3), stamp(2), &[(p(1), 3), (p(2), 3)]);
        assert!(c.entries.is_empty());
        // Cursors of an older build say no read layout: they start over.
        let mut c = cursors();
        c.read = None;
        c.carry_to(stamp(3), stamp(1), &[(p(1), 3), (p(2), 3)]);
        assert!(c.entries.is_empty());
    }

    #[test]
    fn cursors_read_back_as_written_and_older_files_still_decode() {
        let c = cursors();
        let bytes = c.encode();
        assert!(String::from_utf8_lossy(&bytes).starts_with(r#"{"format":1,"#));
        let back = Cursors::decode(&bytes).unwrap();
        assert_eq!(back.get(p(2), 3), Some(&after("k")));
        assert_eq!((back.layout, back.read), (c.layout, c.read));
        // Written before the format tag (and before the read layout).
        let old = r#"{"layout":{"version":2,"digest":14},"entries":{"1/3":"Done"}}"#;
        let c = Cursors::decode(old.as_bytes()).unwrap();
        assert_eq!(c.read, None);
        assert_eq!(c.get(p(1), 3), Some(&Cursor::Done));
        // From a newer build, or not cursors at all: an error, not a guess.
        let newer = r#"{"format":2,"layout":null,"entries":{}}"#;
        assert!(matches!(
            Cursors::decode(newer.as_bytes()),
            Err(Error::Cursors(_))
        ));
        assert!(Cursors::decode(b"\x00garbage").is_err());
    }
}
