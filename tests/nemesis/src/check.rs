//! The checker of a real-host run: what must hold of its history and of
//! the state read back at R = N once the faults healed.
//!
//! Clients see values, not dots, so the rules are stated over values:
//! every put writes a value unique in the run, and a write made with a
//! read's context (`GYRE.PUT`, `GYRE.DEL`) supersedes exactly the values
//! that read returned ([`Op::covers`]). A blind write (`SET`, `DEL`) is
//! made with its coordinator's local context, which the client never sees.
//!
//! An *acknowledged* write is one whose outcome is [`Outcome::Ok`]. A write
//! that failed or whose answer never came *may* have been applied (Gyre's
//! `UNAVAILABLE` says a write may exist on some replicas), so it may excuse
//! or explain things but is never required.
//!
//! For every key, with `F` the siblings read at the end:
//!
//! 1. **No acknowledged put is lost**: its value is in `F`, or a write that
//!    may have been applied covered it, or a blind write that may have been
//!    applied ended after it started (its coordinator may have seen it).
//! 2. **Nothing superseded comes back**: no value in `F` is covered by an
//!    acknowledged write (a delete's value resurrected, an overwritten value
//!    back).
//! 3. **No value nobody wrote**: every value in `F`, and every value a read
//!    returned, was written by a put of that key.
//! 4. **Siblings only from writes that did not see each other**: of two
//!    values in `F`, neither's put covered the other.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::history::{Action, Entry, Op, Outcome};

/// One rule broken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// An acknowledged put's value is gone and nothing excuses it.
    Lost {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// A value an acknowledged write superseded is a final sibling.
    Resurrected {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// The write (its client and start) that superseded it.
        by: String,
    },
    /// A value no put of that key wrote, in the final state or a read.
    Phantom {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// Where it was seen.
        seen: &'static str,
    },
    /// Two final siblings, one written having seen the other.
    NotConcurrent {
        /// The key.
        key: String,
        /// The value that was written after reading `older`.
        newer: String,
        /// The value it covered.
        older: String,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Lost { key, value } => write!(f, "{key}: acknowledged {value} is lost"),
            Self::Resurrected { key, value, by } => {
                write!(f, "{key}: {value} is back after {by} superseded it")
            }
            Self::Phantom { key, value, seen } => {
                write!(f, "{key}: {value} in {seen} was never written")
            }
            Self::NotConcurrent { key, newer, older } => {
                write!(
                    f,
                    "{key}: siblings {newer} and {older}, though {newer} was written over {older}"
                )
            }
        }
    }
}

/// What the checker counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Operations of each outcome: ok, failed, unknown.
    pub outcomes: [u64; 3],
    /// Acknowledged puts.
    pub acknowledged_puts: u64,
    /// Acknowledged puts whose value is a final sibling.
    pub kept: u64,
    /// Acknowledged puts superseded by a write that may have been applied.
    pub superseded: u64,
    /// Acknowledged puts excused only by a blind write that may have seen
    /// them.
    pub excused_by_blind: u64,
}

/// The verdict on a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Every rule broken.
    pub violations: Vec<Violation>,
    /// What was counted.
    pub stats: Stats,
}

impl Report {
    /// Whether every rule held.
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }
}

impl fmt::Display for Report {
    /// How many rules broke, then each, one per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} violations", self.violations.len())?;
        for v in &self.violations {
            write!(f, "\n{v}")?;
        }
        Ok(())
    }
}

fn describe(op: &Op) -> String {
    let what = match &op.action {
        Action::Put { value, .. } => format!("put {value}"),
        Action::Delete { blind: true, .. } => "a blind delete".to_owned(),
        Action::Delete { .. } => "a delete".to_owned(),
        Action::Read { .. } => "a read".to_owned(),
    };
    format!("{what} by client {} at {} µs", op.client, op.start_us)
}

/// Checks `entries` against `final_state`: per key, the siblings read at
/// R = N after the heal (a key absent or deleted: no siblings).
pub fn check(entries: &[Entry], final_state: &BTreeMap<String, Vec<String>>) -> Report {
    let mut report = Report::default();
    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for entry in entries {
        if let Entry::Op(op) = entry {
            let i = match op.outcome {
                Outcome::Ok => 0,
                Outcome::Failed => 1,
                Outcome::Unknown => 2,
            };
            report.stats.outcomes[i] += 1;
            by_key.entry(op.key.as_str()).or_default().push(op);
        }
    }
    let none = Vec::new();
    let keys: BTreeSet<&str> = by_key
        .keys()
        .copied()
        .chain(final_state.keys().map(String::as_str))
        .collect();
    for key in keys {
        let ops = by_key.get(key).map_or(&[][..], Vec::as_slice);
        let fin = final_state.get(key).unwrap_or(&none);
        check_key(key, ops, fin, &mut report);
    }
    report
}

fn check_key(key: &str, ops: &[&Op], fin: &[String], report: &mut Report) {
    let puts: BTreeMap<&str, &Op> = ops
        .iter()
        .filter_map(|op| op.written().map(|v| (v, *op)))
        .collect();
    let fin_set: BTreeSet<&str> = fin.iter().map(String::as_str).collect();
    let phantom = |value: &str, seen: &'static str| Violation::Phantom {
        key: key.to_owned(),
        value: value.to_owned(),
        seen,
    };
    // 3. No value nobody wrote.
    for value in &fin_set {
        if !puts.contains_key(value) {
            report.violations.push(phantom(value, "the final state"));
        }
    }
    for op in ops {
        if let (Action::Read { values }, Outcome::Ok) = (&op.action, op.outcome) {
            for value in values.iter().filter(|v| !puts.contains_key(v.as_str())) {
                report.violations.push(phantom(value, "a read"));
            }
        }
    }
    // 1. No acknowledged put lost.
    for (value, put) in puts.iter().filter(|(_, p)| p.outcome == Outcome::Ok) {
        report.stats.acknowledged_puts += 1;
        if fin_set.contains(value) {
            report.stats.kept += 1;
            continue;
        }
        // Any write may have been applied: a failed one too.
        let covered = ops.iter().any(|w| w.covers().iter().any(|c| c == value));
        if covered {
            report.stats.superseded += 1;
            continue;
        }
        let blind_after = ops
            .iter()
            .any(|w| w.is_blind() && w.end_us > put.start_us && !std::ptr::eq(*w, *put));
        if blind_after {
            report.stats.excused_by_blind += 1;
            continue;
        }
        report.violations.push(Violation::Lost {
            key: key.to_owned(),
            value: (*value).to_owned(),
        });
    }
    // 2. Nothing an acknowledged write superseded comes back.
    for value in &fin_set {
        if let Some(by) = ops
            .iter()
            .find(|w| w.outcome == Outcome::Ok && w.covers().iter().any(|c| c == value))
        {
            report.violations.push(Violation::Resurrected {
                key: key.to_owned(),
                value: (*value).to_owned(),
                by: describe(by),
            });
        }
    }
    // 4. Siblings only from writes that did not see each other (a put whose
    //    outcome is unknown but whose value is final was applied, with its
    //    context).
    for newer in &fin_set {
        let Some(put) = puts.get(newer) else { continue };
        for older in put.covers().iter().filter(|c| fin_set.contains(c.as_str())) {
            report.violations.push(Violation::NotConcurrent {
                key: key.to_owned(),
                newer: (*newer).to_owned(),
                older: older.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    fn op(client: u32, start_us: u64, outcome: Outcome, action: Action) -> Entry {
        Entry::Op(Op {
            client,
            node: 0,
            key: "k".into(),
            start_us,
            end_us: start_us + 10,
            outcome,
            error: None,
            action,
        })
    }

    fn put(client: u32, at: u64, outcome: Outcome, value: &str, read: &[&str]) -> Entry {
        let read: Vec<String> = read.iter().map(|&r| r.to_owned()).collect();
        let blind = false;
        op(
            client,
            at,
            outcome,
            Action::Put {
                value: value.into(),
                read,
                blind,
            },
        )
    }

    fn set(client: u32, at: u64, outcome: Outcome, value: &str) -> Entry {
        let action = Action::Put {
            value: value.into(),
            read: vec![],
            blind: true,
        };
        op(client, at, outcome, action)
    }

    fn del(client: u32, at: u64, outcome: Outcome, read: &[&str]) -> Entry {
        let read = read.iter().map(|&r| r.to_owned()).collect();
        op(client, at, outcome, Action::Delete { read, blind: false })
    }

    fn read(at: u64, values: &[&str]) -> Entry {
        let values = values.iter().map(|&v| v.to_owned()).collect();
        op(9, at, Outcome::Ok, Action::Read { values })
    }

    fn end(values: &[&str]) -> BTreeMap<String, Vec<String>> {
        let values: Vec<String> = values.iter().map(|&v| v.to_owned()).collect();
        BTreeMap::from([("k".to_owned(), values)])
    }

    #[test]
    fn kept_and_superseded_writes_pass() {
        let h = [
            put(1, 0, Outcome::Ok, "a", &[]),
            read(20, &["a"]),
            // Failed, but applied: it superseded "a".
            put(1, 30, Outcome::Failed, "b", &["a"]),
            put(2, 30, Outcome::Ok, "c", &[]),
        ];
        let r = check(&h, &end(&["b", "c"]));
        assert!(r.is_ok(), "{:?}", r.violations);
        assert_eq!(
            (r.stats.acknowledged_puts, r.stats.kept, r.stats.superseded),
            (2, 1, 1)
        );
        assert_eq!(r.stats.outcomes, [3, 1, 0]);
    }

    #[test]
    fn an_acknowledged_put_gone_without_excuse_is_lost() {
        let h = [
            put(1, 0, Outcome::Ok, "a", &[]),
            put(2, 50, Outcome::Ok, "b", &[]),
        ];
        let r = check(&h, &end(&["b"]));
        assert_eq!(
            r.violations,
            vec![Violation::Lost {
                key: "k".into(),
                value: "a".into()
            }]
        );
        // A blind SET that ended after "a" started may have overwritten it.
        let h = [
            put(1, 0, Outcome::Ok, "a", &[]),
            set(2, 50, Outcome::Unknown, "b"),
        ];
        let r = check(&h, &end(&[]));
        assert!(r.is_ok(), "{:?}", r.violations);
        assert_eq!(r.stats.excused_by_blind, 1);
        // One that ended before it started could not have.
        let h = [
            set(2, 0, Outcome::Ok, "b"),
            put(1, 100, Outcome::Ok, "a", &[]),
        ];
        let r = check(&h, &end(&["b"]));
        assert!(matches!(&r.violations[..], [Violation::Lost { value, .. }] if value == "a"));
    }

    #[test]
    fn a_deleted_value_that_comes_back_is_resurrected() {
        let h = [
            put(1, 0, Outcome::Ok, "a", &[]),
            del(1, 20, Outcome::Ok, &["a"]),
        ];
        let r = check(&h, &end(&["a"]));
        assert!(
            matches!(&r.violations[..], [Violation::Resurrected { value, .. }] if value == "a")
        );
        assert!(check(&h, &end(&[])).is_ok());
        // A delete that failed may not have been applied: "a" may stay.
        let h = [
            put(1, 0, Outcome::Ok, "a", &[]),
            del(1, 20, Outcome::Failed, &["a"]),
        ];
        assert!(check(&h, &end(&["a"])).is_ok());
    }

    #[test]
    fn values_nobody_wrote_are_phantoms() {
        let h = [put(1, 0, Outcome::Ok, "a", &[]), read(20, &["a", "x"])];
        let r = check(&h, &end(&["a", "y"]));
        let seen: Vec<&str> = r
            .violations
            .iter()
            .map(|v| match v {
                Violation::Phantom { value, seen, .. } => {
                    assert!(value == "x" || value == "y");
                    *seen
                }
                other => panic!("{other}"),
            })
            .collect();
        assert_eq!(seen, ["the final state", "a read"]);
    }

    #[test]
    fn siblings_must_not_have_seen_each_other() {
        let h = [
            put(1, 0, Outcome::Ok, "a", &[]),
            put(2, 20, Outcome::Unknown, "b", &["a"]),
        ];
        let r = check(&h, &end(&["a", "b"]));
        assert!(r.violations.contains(&Violation::NotConcurrent {
            key: "k".into(),
            newer: "b".into(),
            older: "a".into()
        }));
        let h = [
            put(1, 0, Outcome::Ok, "a", &[]),
            put(2, 0, Outcome::Ok, "b", &[]),
        ];
        assert!(check(&h, &end(&["a", "b"])).is_ok());
    }

    /// A register of sibling sets, the reference a correct store must
    /// match for one client's causal read-modify-writes.
    fn run(steps: &[(bool, bool)]) -> (Vec<Entry>, Vec<String>) {
        let (mut h, mut state) = (Vec::new(), Vec::<String>::new());
        for (i, &(delete, blind)) in steps.iter().enumerate() {
            let at = i as u64 * 100;
            let seen: Vec<&str> = state.iter().map(String::as_str).collect();
            h.push(read(at, &seen));
            let context: Vec<&str> = if blind { vec![] } else { seen };
            let value = format!("v{i}");
            h.push(match (delete, blind) {
                (true, true) => op(
                    1,
                    at + 50,
                    Outcome::Ok,
                    Action::Delete {
                        read: vec![],
                        blind: true,
                    },
                ),
                (true, false) => del(1, at + 50, Outcome::Ok, &context),
                (false, true) => set(1, at + 50, Outcome::Ok, &value),
                (false, false) => put(1, at + 50, Outcome::Ok, &value, &context),
            });
            // One client in sequence: each write supersedes what it saw (a
            // blind write, what its coordinator holds: the same here).
            state = if delete { vec![] } else { vec![value] };
        }
        (h, state)
    }

    proptest! {
        /// The reference's history passes; dropping any acknowledged
        /// value from its final state is caught as lost, and bringing back
        /// any superseded one as resurrected.
        #[test]
        fn the_checker_passes_the_reference_and_catches_its_corruption(
            steps in prop::collection::vec((any::<bool>(), any::<bool>()), 1..20),
            pick: prop::sample::Index,
        ) {
            let (h, state) = run(&steps);
            let r = check(&h, &end(&state.iter().map(String::as_str).collect::<Vec<_>>()));
            prop_assert!(r.is_ok(), "{:?}", r.violations);
            if let Some(kept) = state.first() {
                let r = check(&h, &end(&[]));
                let lost = Violation::Lost { key: "k".into(), value: kept.clone() };
                prop_assert!(r.violations.contains(&lost), "{:?}", r.violations);
            }
            // A value superseded by a causal write, brought back.
            let superseded: Vec<String> = h.iter().filter_map(|e| match e {
                Entry::Op(op) if !op.is_blind() => Some(op.covers().to_vec()),
                _ => None,
            }).flatten().collect();
            if !superseded.is_empty() {
                let back = superseded[pick.index(superseded.len())].clone();
                let mut fin = state.clone();
                fin.push(back.clone());
                let r = check(&h, &end(&fin.iter().map(String::as_str).collect::<Vec<_>>()));
                prop_assert!(r.violations.iter().any(|v| matches!(v, Violation::Resurrected { value, .. } if *value == back)), "{:?}", r.violations);
            }
        }
    }
}
