//! Streaming statistics of feature maps: per-channel moments and cross-channel correlations,
//! accumulated batch by batch (in f64 on the host) so any number of images fits in memory.

use burn::tensor::Tensor;

/// `[N, C, H, W]` → `[C, N·H·W]`: one row of observations per channel.
pub fn channel_rows(t: &Tensor<4>) -> Tensor<2> {
    let [n, c, h, w] = t.dims();
    t.clone().swap_dims(0, 1).reshape([c, n * h * w])
}

/// A float tensor's values on the host, widened to f64.
pub fn host(t: Tensor<2>) -> Vec<f64> {
    t.into_data()
        .try_into_vec_as::<f32>()
        .expect("float tensor")
        .into_iter()
        .map(f64::from)
        .collect()
}

/// First and second moments of two sets of channels (`a`, `b`) observed at the same positions
/// (the same images, the same spatial locations), and their cross products.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossMoments {
    /// Channels of `a`.
    pub ca: usize,
    /// Channels of `b`.
    pub cb: usize,
    /// Observations per channel so far.
    pub n: f64,
    sum_a: Vec<f64>,
    sum_b: Vec<f64>,
    sq_a: Vec<f64>,
    sq_b: Vec<f64>,
    cross: Vec<f64>,
}

impl CrossMoments {
    /// Empty moments of `ca` × `cb` channels.
    pub fn new(ca: usize, cb: usize) -> Self {
        CrossMoments {
            ca,
            cb,
            n: 0.0,
            sum_a: vec![0.0; ca],
            sum_b: vec![0.0; cb],
            sq_a: vec![0.0; ca],
            sq_b: vec![0.0; cb],
            cross: vec![0.0; ca * cb],
        }
    }

    /// Add a batch: `a` is `[N, ca, H, W]`, `b` is `[N, cb, H, W]` at the same positions.
    ///
    /// # Shapes
    /// - `a`: `[N, ca, H, W]`, `b`: `[N, cb, H, W]`
    pub fn update(&mut self, a: &Tensor<4>, b: &Tensor<4>) {
        let (ra, rb) = (channel_rows(a), channel_rows(b));
        let [_, p] = ra.dims();
        let cross = ra.clone().matmul(rb.clone().transpose());
        for (acc, v) in self.cross.iter_mut().zip(host(cross)) {
            *acc += v;
        }
        for (acc, v) in self.sum_a.iter_mut().zip(host(ra.clone().sum_dim(1))) {
            *acc += v;
        }
        for (acc, v) in self.sum_b.iter_mut().zip(host(rb.clone().sum_dim(1))) {
            *acc += v;
        }
        for (acc, v) in self
            .sq_a
            .iter_mut()
            .zip(host(ra.clone().mul(ra).sum_dim(1)))
        {
            *acc += v;
        }
        for (acc, v) in self
            .sq_b
            .iter_mut()
            .zip(host(rb.clone().mul(rb).sum_dim(1)))
        {
            *acc += v;
        }
        self.n += p as f64;
    }

    /// Mean of each `a` channel.
    pub fn mean_a(&self) -> Vec<f64> {
        self.sum_a.iter().map(|s| s / self.n).collect()
    }

    /// Standard deviation of each `a` channel.
    pub fn std_a(&self) -> Vec<f64> {
        std(&self.sum_a, &self.sq_a, self.n)
    }

    /// Standard deviation of each `b` channel.
    pub fn std_b(&self) -> Vec<f64> {
        std(&self.sum_b, &self.sq_b, self.n)
    }

    /// Covariance `cov[i·cb + j]` of `a` channel `i` with `b` channel `j` (population, over every
    /// observation so far), row-major `ca × cb`.
    pub fn covariance(&self) -> Vec<f64> {
        (0..self.ca * self.cb)
            .map(|ij| {
                let (i, j) = (ij / self.cb, ij % self.cb);
                self.cross[ij] / self.n - (self.sum_a[i] / self.n) * (self.sum_b[j] / self.n)
            })
            .collect()
    }

    /// Pearson correlation `corr[i][j]` of `a` channel `i` with `b` channel `j`; 0 where either
    /// channel is constant.
    pub fn correlation(&self) -> Vec<Vec<f64>> {
        let (sa, sb) = (self.std_a(), self.std_b());
        (0..self.ca)
            .map(|i| {
                (0..self.cb)
                    .map(|j| {
                        let cov = self.cross[i * self.cb + j] / self.n
                            - (self.sum_a[i] / self.n) * (self.sum_b[j] / self.n);
                        if sa[i] <= 1e-12 || sb[j] <= 1e-12 {
                            0.0
                        } else {
                            (cov / (sa[i] * sb[j])).clamp(-1.0, 1.0)
                        }
                    })
                    .collect()
            })
            .collect()
    }
}

fn std(sum: &[f64], sq: &[f64], n: f64) -> Vec<f64> {
    sum.iter()
        .zip(sq)
        .map(|(s, q)| (q / n - (s / n).powi(2)).max(0.0).sqrt())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::device;
    use burn::tensor::TensorData;

    #[test]
    fn correlation_matches_a_direct_computation() {
        // Channel 0: x; channel 1: 2x + 1 (corr 1); channel 2: -x (corr -1); channel 3: const.
        let xs: Vec<f32> = (0..24).map(|i| ((i * 7) % 11) as f32).collect();
        let mut v = Vec::new();
        for n in 0..2 {
            for c in 0..4 {
                for p in 0..12 {
                    let x = xs[n * 12 + p];
                    v.push(match c {
                        0 => x,
                        1 => 2.0 * x + 1.0,
                        2 => -x,
                        _ => 3.0,
                    });
                }
            }
        }
        let t = Tensor::<4>::from_data(TensorData::new(v, [2, 4, 3, 4]), &device());
        let mut m = CrossMoments::new(4, 4);
        // Two updates of the same batch give the same correlations as one.
        m.update(&t, &t);
        m.update(&t, &t);
        let c = m.correlation();
        assert!((c[0][1] - 1.0).abs() < 1e-9 && (c[0][2] + 1.0).abs() < 1e-9);
        assert_eq!(c[0][3], 0.0);
        assert!((c[1][1] - 1.0).abs() < 1e-9);
        let mean: f64 = xs.iter().map(|&x| x as f64).sum::<f64>() / 24.0;
        assert!((m.mean_a()[0] - mean).abs() < 1e-9);
        assert_eq!(m.n, 48.0);
        // Covariance: var(x) on the diagonal, 2·var(x) with the 2x + 1 channel, 0 with the
        // constant one.
        let var = xs.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / 24.0;
        let cov = m.covariance();
        assert!((cov[0] - var).abs() < 1e-9 && (cov[1] - 2.0 * var).abs() < 1e-9);
        assert!(cov[3].abs() < 1e-9);
    }
}
