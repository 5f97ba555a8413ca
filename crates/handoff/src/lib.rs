//! The pure core of partition handoff, with no IO: what a node reports of
//! the transfers a layout change gives it ([`TransferProgress`], one type
//! that the node keeps, the HTTP API serves and the CLI reads as it is),
//! where each transfer stands ([`Cursors`], persisted by the node), the
//! throttle ([`Pacer`], fed the time), what a change gives a node to fill
//! and the barrier it waits on ([`fill`]), which replicas to fill when
//! ([`Schedule`]: at most so many at once, a failed one tried again after a
//! growing wait, fed the time), the filling of one replica ([`Transfer`]:
//! what to ask next, answers in), and a change's dry run
//! with its safety verdict ([`PlanEstimate`]).
//!
//! The node (`gyre-node`) drives it, asking peers and the store.
//!
//! ```
//! use gyre_handoff::{PartitionTransfer, Stage, TransferProgress};
//! use gyre_types::PartitionId;
//!
//! let mut progress = TransferProgress {
//!     partitions: vec![PartitionTransfer {
//!         partition: 7,
//!         n_val: 3,
//!         stage: Stage::Stream,
//!         source: None,
//!         keys: 0,
//!         bytes: 0,
//!         expected: 100,
//!         waiting: None,
//!     }],
//!     bytes_total: 100,
//!     ..TransferProgress::default()
//! };
//! // 120 bytes arrive for a partition its source said held 100: written
//! // while it moved. Done never passes the total; the rest is counted apart.
//! progress.received(PartitionId::new(7), 3, 4, 120);
//! assert_eq!((progress.bytes_done, progress.bytes_extra), (100, 20));
//! assert_eq!(progress.stage_counts(), [0, 1, 0, 0]);
//! ```

mod cursors;
mod error;
pub mod fill;
mod pace;
mod plan;
mod progress;
mod schedule;
mod transfer;

pub use cursors::{Cursor, Cursors};
pub use error::Error;
pub use pace::Pacer;
pub use plan::{DryRun, NodeEstimate, PlanEstimate};
pub use progress::{PartitionTransfer, Stage, TransferProgress, TransferSummary};
pub use schedule::{Replica, Schedule};
pub use transfer::{Accepted, Next, Transfer};
