//! Faults on real hosts: hosts in network namespaces and the network
//! faults between them ([`hosts`]), the seeded schedule of faults
//! ([`nemesis`]), the workload's clients
//! ([`workload`]: causal read-modify-writes and blind writes through a real
//! Redis client library), the history a run records ([`history`]: every
//! client operation with its outcome and every fault, as JSON lines) and
//! the checker of that history against the state read back at R = N after
//! the heal ([`check`]).
//!
//! ```
//! use std::collections::BTreeMap;
//!
//! use gyre_nemesis::check::check;
//! use gyre_nemesis::history::{Action, Entry, Op, Outcome};
//!
//! let put = Entry::Op(Op {
//!     client: 1,
//!     node: 0,
//!     key: "cart:7".into(),
//!     start_us: 0,
//!     end_us: 900,
//!     outcome: Outcome::Ok,
//!     error: None,
//!     action: Action::Put { value: "c1.1".into(), read: vec![], blind: false },
//! });
//! // Read back after the heal: the acknowledged value is there.
//! let after = BTreeMap::from([("cart:7".to_owned(), vec!["c1.1".to_owned()])]);
//! assert!(check(&[put.clone()], &after).is_ok());
//! // Gone: lost.
//! assert!(!check(&[put], &BTreeMap::new()).is_ok());
//! ```

pub mod check;
mod choices;
pub mod history;
pub mod hosts;
pub mod nemesis;
pub mod workload;

pub use choices::Choices;
