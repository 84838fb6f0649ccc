//! Centered kernel alignment with linear kernels.
//!
//! For representations `X` (`n × p`) and `Y` (`n × q`) of the same `n` inputs, with Gram
//! matrices `K = XXᵀ`, `L = YYᵀ`:
//!
//! - linear CKA (Kornblith et al. 2019): `HSIC(K, L) / √(HSIC(K, K)·HSIC(L, L))` with
//!   `HSIC(K, L) = tr(KHLH)/(n−1)²`, `H = I − 11ᵀ/n`; equal to `‖YᵀX‖²_F / (‖XᵀX‖_F‖YᵀY‖_F)`
//!   for column-centred `X`, `Y`. It is 1 for `Y = XQ·s` (orthogonal `Q`, scale `s`).
//! - minibatch CKA (Nguyen et al. 2021): the unbiased HSIC estimator of Song et al. (2012)
//!   averaged over minibatches, which removes the positive bias of the plain estimator on
//!   small batches and lets CKA be accumulated over any number of inputs.

/// A square matrix, row-major.
pub type Gram = Vec<f64>;

/// `tr(KHLH)` for `n × n` Gram matrices: the sum of the element-wise product of the
/// double-centred matrices.
fn centered_dot(k: &[f64], l: &[f64], n: usize) -> f64 {
    let center = |m: &[f64]| -> Vec<f64> {
        let row: Vec<f64> = (0..n)
            .map(|i| m[i * n..(i + 1) * n].iter().sum::<f64>() / n as f64)
            .collect();
        let col: Vec<f64> = (0..n)
            .map(|j| (0..n).map(|i| m[i * n + j]).sum::<f64>() / n as f64)
            .collect();
        let all = row.iter().sum::<f64>() / n as f64;
        (0..n * n)
            .map(|ij| m[ij] - row[ij / n] - col[ij % n] + all)
            .collect()
    };
    let (kc, lc) = (center(k), center(l));
    kc.iter().zip(&lc).map(|(a, b)| a * b).sum()
}

/// Linear CKA of two `n × n` Gram matrices of the same inputs.
pub fn linear_cka(k: &[f64], l: &[f64], n: usize) -> f64 {
    let kl = centered_dot(k, l, n);
    let denom = (centered_dot(k, k, n) * centered_dot(l, l, n)).sqrt();
    if denom > 0.0 { kl / denom } else { 0.0 }
}

/// The unbiased HSIC estimator (Song et al. 2012) of `n × n` Gram matrices, `n ≥ 4`:
/// `[tr(K̃L̃) + 1ᵀK̃1·1ᵀL̃1/((n−1)(n−2)) − 2·1ᵀK̃L̃1/(n−2)] / (n(n−3))`, where `K̃`, `L̃` are `K`, `L`
/// with zero diagonals.
pub fn unbiased_hsic(k: &[f64], l: &[f64], n: usize) -> f64 {
    assert!(n >= 4, "the unbiased HSIC needs at least 4 samples");
    let off = |m: &[f64], i: usize, j: usize| if i == j { 0.0 } else { m[i * n + j] };
    let row_sums =
        |m: &[f64]| -> Vec<f64> { (0..n).map(|i| (0..n).map(|j| off(m, i, j)).sum()).collect() };
    let (rk, rl) = (row_sums(k), row_sums(l));
    let (sk, sl): (f64, f64) = (rk.iter().sum(), rl.iter().sum());
    let tr: f64 = (0..n * n)
        .map(|ij| off(k, ij / n, ij % n) * off(l, ij / n, ij % n))
        .sum();
    // 1ᵀK̃L̃1 = Σ_j (Σ_i K̃_ij)(Σ_m L̃_jm) = Σ_j colsum(K̃)_j · rowsum(L̃)_j; K̃, L̃ symmetric.
    let kl1: f64 = (0..n).map(|j| rk[j] * rl[j]).sum();
    let nf = n as f64;
    (tr + sk * sl / ((nf - 1.0) * (nf - 2.0)) - 2.0 * kl1 / (nf - 2.0)) / (nf * (nf - 3.0))
}

/// Debiased CKA accumulated over minibatches (Nguyen et al. 2021).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MinibatchCka {
    xy: f64,
    xx: f64,
    yy: f64,
    batches: usize,
}

impl MinibatchCka {
    /// Add one minibatch's Gram matrices (`n × n`, `n ≥ 4`).
    pub fn update(&mut self, k: &[f64], l: &[f64], n: usize) {
        self.xy += unbiased_hsic(k, l, n);
        self.xx += unbiased_hsic(k, k, n);
        self.yy += unbiased_hsic(l, l, n);
        self.batches += 1;
    }

    /// The CKA estimate so far.
    pub fn value(&self) -> f64 {
        let d = (self.xx * self.yy).sqrt();
        if d > 0.0 { self.xy / d } else { 0.0 }
    }
}

/// The Gram matrix `XXᵀ` of `n` rows of `p` features.
pub fn gram(x: &[f64], n: usize, p: usize) -> Gram {
    let mut g = vec![0.0; n * n];
    for i in 0..n {
        for j in i..n {
            let v: f64 = (0..p).map(|c| x[i * p + c] * x[j * p + c]).sum();
            g[i * n + j] = v;
            g[j * n + i] = v;
        }
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(n: usize, p: usize, seed: u64) -> Vec<f64> {
        let mut rng = params::ParamRng::new(seed, "cka");
        (0..n * p).map(|_| rng.normal()).collect()
    }

    /// CKA from features directly: ‖YᵀX‖²/(‖XᵀX‖‖YᵀY‖) with centred columns — the feature-space
    /// formula, computed independently of the Gram-based code.
    fn feature_cka(x: &[f64], y: &[f64], n: usize, p: usize, q: usize) -> f64 {
        let center = |m: &[f64], d: usize| -> Vec<f64> {
            let mean: Vec<f64> = (0..d)
                .map(|c| (0..n).map(|i| m[i * d + c]).sum::<f64>() / n as f64)
                .collect();
            (0..n * d).map(|k| m[k] - mean[k % d]).collect()
        };
        let (x, y) = (center(x, p), center(y, q));
        let cross = |a: &[f64], da: usize, b: &[f64], db: usize| -> f64 {
            let mut s = 0.0;
            for u in 0..da {
                for v in 0..db {
                    let d: f64 = (0..n).map(|i| a[i * da + u] * b[i * db + v]).sum();
                    s += d * d;
                }
            }
            s
        };
        cross(&y, q, &x, p) / (cross(&x, p, &x, p).sqrt() * cross(&y, q, &y, q).sqrt())
    }

    #[test]
    fn cka_of_a_representation_with_itself_is_one() {
        let (n, p) = (40, 7);
        let x = matrix(n, p, 1);
        let k = gram(&x, n, p);
        assert!((linear_cka(&k, &k, n) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn invariant_to_orthogonal_transforms_and_isotropic_scaling() {
        let (n, p) = (50, 6);
        let x = matrix(n, p, 2);
        let y = matrix(n, 4, 3);
        let q = init::semi_orthogonal(p, p, &mut params::ParamRng::new(9, "q"));
        let mut xq = vec![0.0; n * p];
        for i in 0..n {
            for c in 0..p {
                xq[i * p + c] = 3.5 * (0..p).map(|r| x[i * p + r] * q[r * p + c]).sum::<f64>();
            }
        }
        let (kx, kxq, ly) = (gram(&x, n, p), gram(&xq, n, p), gram(&y, n, 4));
        assert!((linear_cka(&kx, &kxq, n) - 1.0).abs() < 1e-12);
        assert!((linear_cka(&kx, &ly, n) - linear_cka(&kxq, &ly, n)).abs() < 1e-12);
    }

    #[test]
    fn matches_the_feature_space_formula() {
        // Fixed inputs: 30 samples of 5 and 3 features drawn from seeds 4 and 5; the reference
        // value comes from `feature_cka`, an independent implementation of the same quantity.
        let (n, p, q) = (30, 5, 3);
        let (x, y0) = (matrix(n, p, 4), matrix(n, q, 5));
        // Make Y partly depend on X so CKA is well inside (0, 1).
        let y: Vec<f64> = (0..n * q).map(|k| y0[k] + x[(k / q) * p + k % q]).collect();
        let want = feature_cka(&x, &y, n, p, q);
        let got = linear_cka(&gram(&x, n, p), &gram(&y, n, q), n);
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        assert!(want > 0.2 && want < 0.95, "{want}");
    }

    #[test]
    fn debiased_minibatch_cka_removes_the_small_sample_bias() {
        // Independent representations: the plain estimator is biased upward on small batches,
        // the unbiased one averages near 0.
        let (n, p) = (16, 20);
        let mut mb = MinibatchCka::default();
        let mut biased = 0.0;
        for b in 0..40 {
            let (kx, ly) = (
                gram(&matrix(n, p, 100 + b), n, p),
                gram(&matrix(n, p, 200 + b), n, p),
            );
            mb.update(&kx, &ly, n);
            biased += linear_cka(&kx, &ly, n) / 40.0;
        }
        assert!(biased > 0.4, "plain CKA of independent data: {biased}");
        assert!(mb.value().abs() < 0.1, "debiased: {}", mb.value());
        // And identical representations still give 1.
        let mut same = MinibatchCka::default();
        let k = gram(&matrix(n, p, 7), n, p);
        same.update(&k, &k, n);
        assert!((same.value() - 1.0).abs() < 1e-12);
    }
}
