//! A random stream per parameter, keyed by `(seed, parameter path)`.
//!
//! The key is `SHA-256("filterlab.init.v1" ‖ seed (u64, little-endian) ‖ path)`, which seeds a
//! ChaCha8 generator. A parameter's values therefore depend only on the seed and its own path:
//! not on the backend, the order parameters are visited in, or other threads drawing at the same
//! time. Uniform and normal draws are computed here (not by a distribution crate) so the bits
//! are fixed by this file alone.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

/// The random stream of one parameter.
pub struct ParamRng {
    rng: ChaCha8Rng,
    spare_normal: Option<f64>,
}

impl ParamRng {
    /// The stream for parameter `path` under `seed`.
    pub fn new(seed: u64, path: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"filterlab.init.v1");
        h.update(seed.to_le_bytes());
        h.update(path.as_bytes());
        ParamRng {
            rng: ChaCha8Rng::from_seed(h.finalize().into()),
            spare_normal: None,
        }
    }

    /// Uniform on `[0, 1)` with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform on `[a, b)`.
    pub fn uniform(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.unit()
    }

    /// Standard normal, by the Box–Muller transform (both values of a pair are used).
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        // u1 in (0, 1] so that ln(u1) is finite.
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = std::f64::consts::TAU * u2;
        self.spare_normal = Some(r * theta.sin());
        r * theta.cos()
    }

    /// Standard normal conditioned on `lo ≤ z ≤ hi`, by rejection (fine for the ±2σ cut, which
    /// accepts 95.4% of draws).
    pub fn truncated_normal(&mut self, lo: f64, hi: f64) -> f64 {
        loop {
            let z = self.normal();
            if (lo..=hi).contains(&z) {
                return z;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_depend_only_on_seed_and_path() {
        let draw = |seed, path| {
            let mut r = ParamRng::new(seed, path);
            (0..4).map(|_| r.normal()).collect::<Vec<_>>()
        };
        assert_eq!(draw(1, "conv1.weight"), draw(1, "conv1.weight"));
        assert_ne!(draw(1, "conv1.weight"), draw(2, "conv1.weight"));
        assert_ne!(draw(1, "conv1.weight"), draw(1, "conv2.weight"));
    }

    #[test]
    fn normal_moments() {
        let mut r = ParamRng::new(0, "x");
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        let kurt = xs.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n as f64 / var / var;
        // Standard errors: mean 1/√n ≈ 0.0022, variance √(2/n) ≈ 0.0032, kurtosis √(24/n) ≈ 0.011.
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.015, "{var}");
        assert!((kurt - 3.0).abs() < 0.06, "{kurt}");
    }
}
