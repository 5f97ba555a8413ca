//! Without faults every operation succeeds, and the checker finds the
//! cluster converged with nothing lost.
#![allow(clippy::unwrap_used)]

use gyre_sim::{SimConfig, run};

#[test]
fn without_faults_every_operation_succeeds() {
    for seed in 0..5 {
        let report = run(seed, &SimConfig::calm());
        assert!(report.is_ok(), "{report}");
        let ops = report.ops();
        assert!(ops.total() > 100, "{report}");
        assert_eq!(ops.unavailable + ops.timed_out + ops.other, 0, "{report}");
        assert_eq!(
            report.check.stats.present + report.check.stats.superseded,
            ops.acked,
            "{report}"
        );
    }
}
