//! The straight line between two networks' weights.

use params::{HostParam, HostParams};
use serde::{Deserialize, Serialize};

use crate::CompareError;

/// `(1 − α)·a + α·b` for every parameter of `a`.
pub fn lerp(a: &HostParams, b: &HostParams, alpha: f64) -> Result<HostParams, CompareError> {
    a.iter()
        .map(|pa| {
            let vb = b
                .values(&pa.path)
                .ok()
                .filter(|vb| vb.len() == pa.values.len())
                .ok_or_else(|| {
                    CompareError::Mismatch(format!("{} missing or of another size", pa.path))
                })?;
            let values = pa
                .values
                .iter()
                .zip(vb)
                .map(|(&x, &y)| ((1.0 - alpha) * x as f64 + alpha * y as f64) as f32)
                .collect();
            Ok(HostParam {
                path: pa.path.clone(),
                shape: pa.shape.clone(),
                values,
            })
        })
        .collect()
}

/// `count` evenly spaced values of α from 0 to 1.
pub fn alphas(count: usize) -> Vec<f64> {
    let count = count.max(2);
    (0..count).map(|i| i as f64 / (count - 1) as f64).collect()
}

/// One point of an interpolation curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Position on the line.
    pub alpha: f64,
    /// Test loss.
    pub loss: f64,
    /// Test accuracy (0–1).
    pub accuracy: f64,
}

/// Barrier height (Entezari et al. 2022): the largest excess of the curve over the straight
/// line between its end points, `max_α [f(α) − ((1 − α)·f(0) + α·f(1))]`. Points must be sorted
/// by α from 0 to 1. 0 when the curve never rises above the chord.
pub fn barrier(points: &[(f64, f64)]) -> f64 {
    let (Some(&(_, f0)), Some(&(_, f1))) = (points.first(), points.last()) else {
        return 0.0;
    };
    points
        .iter()
        .map(|&(a, f)| f - ((1.0 - a) * f0 + a * f1))
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn barrier_of_a_bump_and_of_a_line() {
        let bump = [(0.0, 1.0), (0.5, 3.0), (1.0, 2.0)];
        assert!((barrier(&bump) - 1.5).abs() < 1e-12);
        let line = [(0.0, 1.0), (0.5, 1.5), (1.0, 2.0)];
        assert_eq!(barrier(&line), 0.0);
        let convex = [(0.0, 1.0), (0.5, 0.5), (1.0, 1.0)];
        assert_eq!(barrier(&convex), 0.0);
    }

    #[test]
    fn lerp_end_points_and_a_network_with_itself() {
        let one = |v: Vec<f32>| -> HostParams {
            [HostParam {
                path: "w".into(),
                shape: vec![2],
                values: v,
            }]
            .into_iter()
            .collect()
        };
        let (a, b) = (one(vec![1.0, -2.0]), one(vec![3.0, 2.0]));
        assert_eq!(lerp(&a, &b, 0.0).unwrap(), a);
        assert_eq!(lerp(&a, &b, 1.0).unwrap(), b);
        assert_eq!(lerp(&a, &b, 0.5).unwrap().values("w").unwrap(), [2.0, 0.0]);
        // The line from a network to itself is constant: zero barrier.
        for alpha in alphas(11) {
            assert_eq!(lerp(&a, &a, alpha).unwrap(), a);
        }
        assert_eq!(alphas(3), vec![0.0, 0.5, 1.0]);
    }
}
