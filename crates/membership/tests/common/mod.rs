//! The simulation harness shared by the integration tests (and the
//! convergence report in `benches/`).
#![allow(dead_code, unreachable_pub)]

pub mod scenarios;
pub mod sim;
