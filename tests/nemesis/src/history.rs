//! The history of a run: every client operation with its outcome, and every
//! fault the nemesis applied, one JSON object a line.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

/// How an operation ended, as the client saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The node answered success: the write is acknowledged.
    Ok,
    /// The node answered an error, or the connection could not be made:
    /// a write may still exist on some replicas (Gyre's `UNAVAILABLE`
    /// says so), so the checker treats it as possibly applied.
    Failed,
    /// No answer came (a timeout, a reset): applied or not, nobody knows.
    Unknown,
}

/// What an operation did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Action {
    /// `GYRE.GET`: every sibling it answered (empty unless ok).
    Read {
        /// The values read.
        values: Vec<String>,
    },
    /// `GYRE.PUT` with the context of a read (`read` holds what that read
    /// saw, so the write supersedes exactly those), or a blind `SET`
    /// (`blind`, `read` empty).
    Put {
        /// The value written: unique in the whole run.
        value: String,
        /// The values the write's context covers.
        read: Vec<String>,
        /// A `SET` with no context.
        blind: bool,
    },
    /// `GYRE.DEL` with the context of a read, or a blind `DEL`.
    Delete {
        /// The values the delete's context covers.
        read: Vec<String>,
        /// A `DEL` with no context.
        blind: bool,
    },
}

/// One client operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// Its client.
    pub client: u32,
    /// The node (index) it was sent to.
    pub node: usize,
    /// The key.
    pub key: String,
    /// When it was invoked, µs since the run started.
    pub start_us: u64,
    /// When its outcome came, µs since the run started.
    pub end_us: u64,
    /// Its outcome.
    pub outcome: Outcome,
    /// The error the client saw, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What it did.
    #[serde(flatten)]
    pub action: Action,
}

impl Op {
    /// The value it wrote, if it is a put.
    pub fn written(&self) -> Option<&str> {
        match &self.action {
            Action::Put { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The values its context covered (none for a read or a blind write).
    pub fn covers(&self) -> &[String] {
        match &self.action {
            Action::Put { read, .. } | Action::Delete { read, .. } => read,
            Action::Read { .. } => &[],
        }
    }

    /// A write (put or delete).
    pub fn is_write(&self) -> bool {
        !matches!(self.action, Action::Read { .. })
    }

    /// A blind write (`SET`, `DEL`).
    pub fn is_blind(&self) -> bool {
        matches!(
            self.action,
            Action::Put { blind: true, .. } | Action::Delete { blind: true, .. }
        )
    }
}

/// A fault the nemesis applied or healed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultEvent {
    /// When, µs since the run started.
    pub at_us: u64,
    /// `start` or `heal`.
    pub phase: String,
    /// What, in words (`kill n2`, `partition [n0 n1] | [n2]`, …).
    pub fault: String,
}

/// One line of a history file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    /// A client operation.
    Op(Op),
    /// A fault.
    Fault(FaultEvent),
}

/// Writes `entries` as JSON lines.
pub fn write_jsonl(out: &mut impl Write, entries: &[Entry]) -> std::io::Result<()> {
    for entry in entries {
        serde_json::to_writer(&mut *out, entry)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Reads JSON lines written by [`write_jsonl`].
pub fn read_jsonl(input: impl BufRead) -> Result<Vec<Entry>, HistoryError> {
    let mut entries = Vec::new();
    for (n, line) in input.lines().enumerate() {
        let line = line.map_err(HistoryError::Io)?;
        if line.trim().is_empty() {
            continue;
        }
        let entry = serde_json::from_str(&line).map_err(|source| HistoryError::Line {
            line: n + 1,
            source,
        })?;
        entries.push(entry);
    }
    Ok(entries)
}

/// A history file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// Reading failed.
    #[error("cannot read the history: {0}")]
    Io(std::io::Error),
    /// A line is not an entry.
    #[error("line {line} of the history is not an entry: {source}")]
    Line {
        /// Its number, from 1.
        line: usize,
        /// Why.
        source: serde_json::Error,
    },
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn entries_survive_a_round_trip_through_jsonl() {
        let entries = vec![
            Entry::Fault(FaultEvent {
                at_us: 5,
                phase: "start".into(),
                fault: "kill n1".into(),
            }),
            Entry::Op(Op {
                client: 3,
                node: 1,
                key: "c4".into(),
                start_us: 10,
                end_us: 20,
                outcome: Outcome::Unknown,
                error: Some("timed out".into()),
                action: Action::Put {
                    value: "c3.7".into(),
                    read: vec!["c1.2".into()],
                    blind: false,
                },
            }),
        ];
        let mut out = Vec::new();
        write_jsonl(&mut out, &entries).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.contains(r#""type":"op""#), "{text}");
        assert!(text.contains(r#""op":"put""#), "{text}");
        assert_eq!(read_jsonl(&out[..]).unwrap(), entries);
    }

    #[test]
    fn a_bad_line_is_named() {
        let err = read_jsonl(&b"{\"type\":\"op\"}\n"[..]).unwrap_err();
        assert!(matches!(err, HistoryError::Line { line: 1, .. }), "{err}");
    }
}
