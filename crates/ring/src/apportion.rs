//! Integer apportionment: share `total` seats among claimants in proportion
//! to their weights, each within `[lo, hi]`.
//!
//! This is the Sainte-Laguë highest-averages method with bounds: every seat
//! goes to the claimant with the greatest `weight / (2·seats + 1)` that is
//! still below its upper bound, starting everyone at its lower bound. With no
//! binding bounds the result stays within one or two seats of the exact
//! proportional share; bounds act as water-filling (claimants held at a bound
//! drop out and the rest share what is left in proportion). All arithmetic is
//! exact, so every node computes the same answer.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

#[derive(Eq, PartialEq)]
struct Claim {
    weight: u64,
    seats: u32,
    index: usize,
}

impl Ord for Claim {
    fn cmp(&self, other: &Self) -> Ordering {
        // weight_a / (2 s_a + 1)  vs  weight_b / (2 s_b + 1), cross-multiplied.
        let a = u128::from(self.weight) * (2 * u128::from(other.seats) + 1);
        let b = u128::from(other.weight) * (2 * u128::from(self.seats) + 1);
        a.cmp(&b)
            // Ties go to the lower index, so the result is deterministic.
            .then_with(|| other.index.cmp(&self.index))
    }
}

impl PartialOrd for Claim {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Seats per claimant, or `None` if the bounds cannot add up to `total`.
pub(crate) fn apportion(weights: &[u64], lo: &[u32], hi: &[u32], total: u32) -> Option<Vec<u32>> {
    debug_assert!(weights.len() == lo.len() && lo.len() == hi.len());
    let lo_sum: u64 = lo.iter().map(|&x| u64::from(x)).sum();
    let hi_sum: u64 = hi.iter().map(|&x| u64::from(x)).sum();
    if lo_sum > u64::from(total)
        || hi_sum < u64::from(total)
        || lo.iter().zip(hi).any(|(l, h)| l > h)
    {
        return None;
    }
    let mut seats: Vec<u32> = lo.to_vec();
    let mut heap: BinaryHeap<Claim> = seats
        .iter()
        .enumerate()
        .filter(|&(i, &s)| s < hi[i])
        .map(|(i, &s)| Claim {
            weight: weights[i],
            seats: s,
            index: i,
        })
        .collect();
    let mut left = u64::from(total) - lo_sum;
    while left > 0 {
        // hi_sum >= total guarantees a claimant below its bound remains.
        let mut c = heap.pop()?;
        c.seats += 1;
        seats[c.index] = c.seats;
        left -= 1;
        if c.seats < hi[c.index] {
            heap.push(c);
        }
    }
    Some(seats)
}

/// The real-valued shares `clamp(λ·w_i, lo_i, hi_i)` that sum to `total`,
/// with λ found by bisection (a fixed number of steps of plain IEEE-754
/// arithmetic, so every platform computes the same values). The bounds must
/// admit `total`.
pub(crate) fn water_fill(weights: &[f64], lo: &[f64], hi: &[f64], total: f64) -> Vec<f64> {
    let at = |lambda: f64| -> Vec<f64> {
        weights
            .iter()
            .zip(lo.iter().zip(hi))
            .map(|(&w, (&l, &h))| (lambda * w).max(l).min(h))
            .collect()
    };
    let sum = |lambda: f64| at(lambda).iter().sum::<f64>();
    let (mut a, mut b) = (0.0f64, 1.0f64);
    while sum(b) < total && b < 1e15 {
        b *= 2.0;
    }
    for _ in 0..100 {
        let mid = (a + b) / 2.0;
        if sum(mid) < total {
            a = mid;
        } else {
            b = mid;
        }
    }
    at(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn proportional_without_bounds() {
        let s = apportion(&[1, 2, 3, 4], &[0; 4], &[u32::MAX; 4], 100).unwrap();
        assert_eq!(s, vec![10, 20, 30, 40]);
    }

    #[test]
    fn upper_bounds_spill_to_the_others() {
        // Ideal 50/25/25 but the first is capped at 30: the rest share 70 equally.
        let s = apportion(&[2, 1, 1], &[0; 3], &[30, 100, 100], 100).unwrap();
        assert_eq!(s, vec![30, 35, 35]);
    }

    #[test]
    fn lower_bounds_are_honoured() {
        let s = apportion(&[1, 100], &[40, 0], &[100, 100], 100).unwrap();
        assert_eq!(s, vec![40, 60]);
    }

    #[test]
    fn water_filling_clamps_and_shares_the_rest() {
        let x = water_fill(&[2.0, 1.0, 1.0], &[0.0; 3], &[30.0, 100.0, 100.0], 100.0);
        assert!(
            (x[0] - 30.0).abs() < 1e-9 && (x[1] - 35.0).abs() < 1e-9 && (x[2] - 35.0).abs() < 1e-9
        );
    }

    #[test]
    fn impossible_bounds() {
        assert_eq!(apportion(&[1, 1], &[0, 0], &[10, 10], 21), None);
        assert_eq!(apportion(&[1, 1], &[11, 11], &[20, 20], 21), None);
    }

    proptest! {
        #[test]
        fn sums_to_total_within_bounds_and_close_to_quota(
            weights in proptest::collection::vec(1u64..=10, 1..40),
            total in 0u32..5000,
        ) {
            let n = weights.len();
            let s = apportion(&weights, &vec![0; n], &vec![u32::MAX; n], total).unwrap();
            prop_assert_eq!(s.iter().map(|&x| u64::from(x)).sum::<u64>(), u64::from(total));
            let w: u64 = weights.iter().sum();
            for (i, &seats) in s.iter().enumerate() {
                let quota = f64::from(total) * weights[i] as f64 / w as f64;
                prop_assert!((f64::from(seats) - quota).abs() <= 2.0, "seats {} quota {}", seats, quota);
            }
        }
    }
}
