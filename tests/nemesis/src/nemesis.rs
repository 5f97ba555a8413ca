//! The nemesis's schedule: which fault comes next, on which nodes, held
//! for how long, drawn from a seed (the runner applies it: signals to
//! processes, nft rules on [`crate::hosts::Hosts`]).

use std::fmt;
use std::time::Duration;

use crate::Choices;

/// One fault, healed before the next starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Kill -9 the node; restart it on its data at the heal.
    Kill(usize),
    /// SIGSTOP the node; SIGCONT at the heal.
    Pause(usize),
    /// The network cut between two groups (halves, or one node alone).
    Partition(Vec<usize>, Vec<usize>),
    /// Overlapping majorities: the node both groups share reaches
    /// everyone, the others only their own group.
    Bridge(Vec<usize>, Vec<usize>),
    /// The node hears no other node, while they hear it.
    OneWay(usize),
    /// The node loses this share (percent) of what other nodes send it.
    Loss(usize, u8),
}

impl Fault {
    /// Every kind, as [`Fault::kind`] names them.
    pub const KINDS: [&'static str; 6] =
        ["kill", "pause", "partition", "bridge", "one-way", "loss"];

    /// The kind, for reports per fault type.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Kill(_) => "kill",
            Self::Pause(_) => "pause",
            Self::Partition(..) => "partition",
            Self::Bridge(..) => "bridge",
            Self::OneWay(_) => "one-way",
            Self::Loss(..) => "loss",
        }
    }
}

fn names(nodes: &[usize]) -> String {
    nodes
        .iter()
        .map(|n| format!("n{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Kill(n) => write!(f, "kill -9 n{n}"),
            Self::Pause(n) => write!(f, "pause n{n}"),
            Self::Partition(a, b) => write!(f, "partition [{}] | [{}]", names(a), names(b)),
            Self::Bridge(a, b) => write!(f, "bridge [{}] ~ [{}]", names(a), names(b)),
            Self::OneWay(n) => write!(f, "n{n} hears no one"),
            Self::Loss(n, p) => write!(f, "n{n} loses {p}% of what it hears"),
        }
    }
}

/// One step of the schedule: a fault, how long it is held, and how long
/// the cluster runs whole after its heal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The fault.
    pub fault: Fault,
    /// How long it is held.
    pub hold: Duration,
    /// How long the cluster then runs healed.
    pub calm: Duration,
}

/// The faults of a run over `nodes` nodes, drawn from a seed.
#[derive(Clone, Debug)]
pub struct Nemesis {
    choices: Choices,
    nodes: usize,
}

impl Nemesis {
    /// The nemesis of seed `seed` over `nodes` nodes (at least 2).
    #[must_use]
    pub fn new(seed: u64, nodes: usize) -> Self {
        Self {
            choices: Choices(seed),
            nodes: nodes.max(2),
        }
    }

    /// The nodes in a seeded order.
    fn shuffled(&mut self) -> Vec<usize> {
        let mut all: Vec<usize> = (0..self.nodes).collect();
        for i in (1..all.len()).rev() {
            let j = self.choices.below(i + 1);
            all.swap(i, j);
        }
        all
    }

    /// The next step: a fault held 1–4 s, then 1–2 s whole.
    pub fn step(&mut self) -> Step {
        let n = self.choices.below(self.nodes);
        let fault = match self.choices.below(Fault::KINDS.len()) {
            0 => Fault::Kill(n),
            1 => Fault::Pause(n),
            2 => {
                let order = self.shuffled();
                let cut = if self.choices.below(2) == 0 {
                    1
                } else {
                    self.nodes / 2
                };
                let (a, b) = order.split_at(cut);
                Fault::Partition(sorted(a), sorted(b))
            }
            3 => {
                let order = self.shuffled();
                let (shared, rest) = order.split_first().unwrap_or((&0, &[]));
                let (a, b) = rest.split_at(rest.len() / 2);
                let with = |side: &[usize]| sorted(&[&[*shared], side].concat());
                Fault::Bridge(with(a), with(b))
            }
            4 => Fault::OneWay(n),
            _ => Fault::Loss(n, [10, 30, 60][self.choices.below(3)]),
        };
        Step {
            fault,
            hold: Duration::from_millis(1_000 + self.choices.below(3_000) as u64),
            calm: Duration::from_millis(1_000 + self.choices.below(1_000) as u64),
        }
    }
}

fn sorted(nodes: &[usize]) -> Vec<usize> {
    let mut v = nodes.to_vec();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Every step names only nodes of the run; a partition's groups
        /// split every node between them; a bridge's groups share exactly
        /// one node and together hold every node; the same seed gives the
        /// same steps.
        #[test]
        fn steps_are_well_formed_and_replay(seed in any::<u64>(), nodes in 2usize..9) {
            let (mut a, mut b) = (Nemesis::new(seed, nodes), Nemesis::new(seed, nodes));
            for _ in 0..20 {
                let step = a.step();
                prop_assert_eq!(&step, &b.step());
                prop_assert!(step.hold >= Duration::from_secs(1) && step.hold < Duration::from_secs(4));
                let all: BTreeSet<usize> = (0..nodes).collect();
                match &step.fault {
                    Fault::Kill(n) | Fault::Pause(n) | Fault::OneWay(n) | Fault::Loss(n, _) => {
                        prop_assert!(*n < nodes);
                    }
                    Fault::Partition(x, y) => {
                        prop_assert!(!x.is_empty() && !y.is_empty());
                        let union: BTreeSet<usize> = x.iter().chain(y).copied().collect();
                        prop_assert_eq!(union, all);
                        prop_assert_eq!(x.len() + y.len(), nodes);
                    }
                    Fault::Bridge(x, y) => {
                        let union: BTreeSet<usize> = x.iter().chain(y).copied().collect();
                        prop_assert_eq!(union, all);
                        prop_assert_eq!(x.iter().filter(|n| y.contains(n)).count(), 1);
                    }
                }
                prop_assert!(Fault::KINDS.contains(&step.fault.kind()));
            }
        }
    }
}
