//! `MULTI` … `EXEC`: commands queued on one connection and run together.
//!
//! Gyre runs a transaction as a *batch*: every queued command runs at
//! `EXEC`, in order, each as its own Dynamo operation, and `EXEC` answers
//! their replies in one array. Nothing runs before `EXEC`, so a client that
//! disconnects or sends `DISCARD` has written nothing, and a command refused
//! while queueing (unknown, wrong arity) aborts the whole transaction
//! (`-EXECABORT`), as in Redis. What Redis promises beyond that does not hold
//! in a Dynamo store and is not claimed: other clients' commands may run
//! between the batch's commands, and a command that fails at `EXEC` (a
//! replica set that cannot reach its quorum) does not undo the others; its
//! error is its element of the array. `WATCH` (optimistic locking) is refused:
//! Gyre's equivalent is a write with the context of a read (`GYRE.PUT`).

use std::ops::Range;

use super::parse::Args;

/// Most bytes of arguments one transaction may queue.
pub(crate) const MAX_QUEUED_BYTES: usize = 256 << 20;
/// Most commands one transaction may queue.
pub(crate) const MAX_QUEUED_COMMANDS: usize = 100_000;

/// One connection's open transaction.
#[derive(Debug, Default)]
pub(crate) struct Transaction {
    /// Every queued argument, back to back.
    data: Vec<u8>,
    /// Per queued command, its arguments' ranges in `data`.
    commands: Vec<Vec<Range<usize>>>,
    /// A command was refused while queueing: `EXEC` runs nothing.
    aborted: bool,
}

/// Queueing would pass [`MAX_QUEUED_BYTES`] or [`MAX_QUEUED_COMMANDS`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TooLarge;

impl Transaction {
    /// Queues a copy of `args`.
    pub(crate) fn queue(&mut self, args: Args<'_>) -> Result<(), TooLarge> {
        let bytes: usize = args.iter().map(<[u8]>::len).sum();
        if self.commands.len() >= MAX_QUEUED_COMMANDS
            || self.data.len().saturating_add(bytes) > MAX_QUEUED_BYTES
        {
            return Err(TooLarge);
        }
        let mut ranges = Vec::with_capacity(args.len());
        for arg in args.iter() {
            let start = self.data.len();
            self.data.extend_from_slice(arg);
            ranges.push(start..self.data.len());
        }
        self.commands.push(ranges);
        Ok(())
    }

    /// Marks the transaction as one `EXEC` must refuse.
    pub(crate) fn abort(&mut self) {
        self.aborted = true;
    }

    /// Whether a command was refused while queueing.
    pub(crate) fn is_aborted(&self) -> bool {
        self.aborted
    }

    /// How many commands are queued.
    pub(crate) fn len(&self) -> usize {
        self.commands.len()
    }

    /// The queued commands, in order.
    pub(crate) fn commands(&self) -> impl Iterator<Item = Args<'_>> + '_ {
        self.commands
            .iter()
            .map(|ranges| Args::new(&self.data, ranges))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_commands_come_back_in_order_and_intact() {
        let mut tx = Transaction::default();
        let first = [0..3, 3..4, 4..6];
        tx.queue(Args::new(b"SETk\x00\x01", &first)).unwrap();
        let second = [0..3, 3..3];
        tx.queue(Args::new(b"GET", &second)).unwrap();
        let got: Vec<Vec<Vec<u8>>> = tx
            .commands()
            .map(|a| a.iter().map(<[u8]>::to_vec).collect())
            .collect();
        assert_eq!(
            got,
            [
                vec![b"SET".to_vec(), b"k".to_vec(), vec![0, 1]],
                vec![b"GET".to_vec(), Vec::new()],
            ]
        );
        assert_eq!(tx.len(), 2);
        assert!(!tx.is_aborted());
        tx.abort();
        assert!(tx.is_aborted());
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)]
    fn a_transaction_is_bounded() {
        let mut tx = Transaction::default();
        let ranges = [0..4];
        for _ in 0..MAX_QUEUED_COMMANDS {
            tx.queue(Args::new(b"PING", &ranges)).unwrap();
        }
        assert_eq!(tx.queue(Args::new(b"PING", &ranges)), Err(TooLarge));
        let mut tx = Transaction::default();
        let big = vec![0u8; MAX_QUEUED_BYTES];
        let whole = [0..MAX_QUEUED_BYTES];
        tx.queue(Args::new(&big, &whole)).unwrap();
        let one = [0..1];
        assert_eq!(tx.queue(Args::new(b"x", &one)), Err(TooLarge));
    }
}
