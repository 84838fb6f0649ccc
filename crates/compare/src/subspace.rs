//! Subspaces, not single filters: how much of one network's layer lies in the span of another's.
//!
//! One-to-one matching asks whether each filter of A has a partner in B. Two layers can compute
//! the same subspace in different bases (each of A's maps a mixture of several of B's), and then
//! matching fails while the layers carry the same information. Three measures tell these apart,
//! all from the joint covariance of the two layers' feature maps observed at the same positions
//! (for a conv layer every image × spatial position is an observation, as in Raghu et al.):
//!
//! - **CCA**: canonical correlations `ρ₁ ≥ ρ₂ ≥ …`, the singular values of the whitened
//!   cross-covariance `Σ_aa^{-1/2} Σ_ab Σ_bb^{-1/2}`. Directions without variance (eigenvalues
//!   below [`RANK_TOLERANCE`] of the largest, e.g. dead filters) are dropped first. CCA is
//!   invariant to any invertible linear map of either layer.
//! - **SVCCA** (Raghu et al. 2017): keep the top principal directions of each layer that explain
//!   [`SVCCA_VARIANCE`] of its variance, then CCA; the similarity is the mean `ρ`.
//! - **PWCCA** (Morcos et al. 2018): CCA on every direction with variance; the mean `ρ` weighted
//!   by how much of the layer's activations each canonical variate accounts for,
//!   `αᵢ = Σⱼ |⟨hᵢ, xⱼ⟩|` (canonical variate `hᵢ`, channel `xⱼ`), using the layer with fewer
//!   directions (A on ties), as Morcos et al.'s code does.
//! - **Many-to-one reconstruction** (after Li et al. 2016, "Convergent learning"): the R² of the
//!   least-squares reconstruction of each of A's feature maps from `k` of B's, the `k` chosen by
//!   greedy forward selection, against `k`; and from all of B's maps (the span).

use nalgebra::{DMatrix, SymmetricEigen};
use serde::{Deserialize, Serialize};

use crate::CompareError;

/// Eigenvalues below this fraction of a layer's largest one count as directions without
/// variance (dead filters, exact duplicates).
pub const RANK_TOLERANCE: f64 = 1e-6;

/// Fraction of each layer's variance the principal directions kept by SVCCA explain.
pub const SVCCA_VARIANCE: f64 = 0.99;

/// Numbers of B's maps for the many-to-one reconstruction (those up to B's live maps are used).
pub const DEFAULT_KS: [usize; 6] = [1, 2, 4, 8, 16, 32];

/// The joint covariance of layer A's `p` channels and layer B's `q` channels.
#[derive(Debug, Clone, PartialEq)]
pub struct JointCovariance {
    p: usize,
    q: usize,
    m: DMatrix<f64>,
}

impl JointCovariance {
    /// From the row-major `(p + q) × (p + q)` covariance of A's channels (first `p`) and B's (the
    /// next `q`) over the same observations.
    pub fn new(p: usize, q: usize, cov: &[f64]) -> Result<Self, CompareError> {
        let n = p + q;
        if p == 0 || q == 0 || cov.len() != n * n {
            return Err(CompareError::Mismatch(format!(
                "a joint covariance of {p} + {q} channels needs {} values, got {}",
                n * n,
                cov.len()
            )));
        }
        if cov.iter().any(|v| !v.is_finite()) {
            return Err(CompareError::Mismatch(
                "the feature-map covariance is not finite".into(),
            ));
        }
        let m = DMatrix::from_row_slice(n, n, cov);
        // Symmetrize: accumulated sums may differ in the last bits.
        let m = (&m + m.transpose()) * 0.5;
        Ok(JointCovariance { p, q, m })
    }

    fn aa(&self) -> DMatrix<f64> {
        self.m.view((0, 0), (self.p, self.p)).into_owned()
    }

    fn bb(&self) -> DMatrix<f64> {
        self.m.view((self.p, self.p), (self.q, self.q)).into_owned()
    }

    fn ab(&self) -> DMatrix<f64> {
        self.m.view((0, self.p), (self.p, self.q)).into_owned()
    }
}

/// Which principal directions of a layer to keep.
#[derive(Debug, Clone, Copy)]
enum Keep {
    /// Every direction with variance.
    All,
    /// The top directions explaining this fraction of the variance.
    Variance(f64),
}

/// The kept principal directions of a covariance matrix (columns) and their variances,
/// largest first.
fn principal(c: &DMatrix<f64>, keep: Keep) -> (DMatrix<f64>, Vec<f64>) {
    let eig = SymmetricEigen::new(c.clone());
    let mut order: Vec<usize> = (0..c.nrows()).collect();
    order.sort_by(|&i, &j| eig.eigenvalues[j].total_cmp(&eig.eigenvalues[i]));
    let max = order.first().map_or(0.0, |&i| eig.eigenvalues[i]);
    let live: Vec<usize> = if max > 0.0 {
        order
            .into_iter()
            .filter(|&i| eig.eigenvalues[i] > RANK_TOLERANCE * max)
            .collect()
    } else {
        Vec::new()
    };
    let k = match keep {
        Keep::All => live.len(),
        Keep::Variance(f) => {
            let total: f64 = live.iter().map(|&i| eig.eigenvalues[i]).sum();
            let mut cum = 0.0;
            live.iter()
                .position(|&i| {
                    cum += eig.eigenvalues[i];
                    cum >= f * total
                })
                .map_or(live.len(), |p| p + 1)
        }
    };
    let cols: Vec<_> = live[..k]
        .iter()
        .map(|&i| eig.eigenvectors.column(i).into_owned())
        .collect();
    let vectors = if cols.is_empty() {
        DMatrix::zeros(c.nrows(), 0)
    } else {
        DMatrix::from_columns(&cols)
    };
    (
        vectors,
        live[..k].iter().map(|&i| eig.eigenvalues[i]).collect(),
    )
}

/// `U·diag(1/√λ)`: maps whitened coordinates back to channel weights.
fn whitener(u: &DMatrix<f64>, lambda: &[f64]) -> DMatrix<f64> {
    let mut w = u.clone();
    for (j, &l) in lambda.iter().enumerate() {
        w.column_mut(j).scale_mut(1.0 / l.sqrt());
    }
    w
}

/// A canonical correlation analysis: the correlations (largest first) and, for each, the channel
/// weights of A's and B's canonical variates (columns; each variate has unit variance).
struct Cca {
    rho: Vec<f64>,
    dims: [usize; 2],
    wa: DMatrix<f64>,
    wb: DMatrix<f64>,
}

fn cca(cov: &JointCovariance, keep: Keep) -> Option<Cca> {
    let (ua, la) = principal(&cov.aa(), keep);
    let (ub, lb) = principal(&cov.bb(), keep);
    if la.is_empty() || lb.is_empty() {
        return None;
    }
    let (wa, wb) = (whitener(&ua, &la), whitener(&ub, &lb));
    let m = wa.transpose() * cov.ab() * &wb;
    let svd = m.svd(true, true);
    let (u, v_t) = (svd.u?, svd.v_t?);
    let mut order: Vec<usize> = (0..svd.singular_values.len()).collect();
    order.sort_by(|&i, &j| svd.singular_values[j].total_cmp(&svd.singular_values[i]));
    let rho = order
        .iter()
        .map(|&i| svd.singular_values[i].clamp(0.0, 1.0))
        .collect();
    let pick = |m: DMatrix<f64>| {
        DMatrix::from_columns(
            &order
                .iter()
                .map(|&i| m.column(i).into_owned())
                .collect::<Vec<_>>(),
        )
    };
    Some(Cca {
        rho,
        dims: [la.len(), lb.len()],
        wa: wa * pick(u),
        wb: wb * pick(v_t.transpose()),
    })
}

/// The canonical correlations of A and B (every direction with variance), largest first.
pub fn canonical_correlations(cov: &JointCovariance) -> Vec<f64> {
    cca(cov, Keep::All).map_or_else(Vec::new, |c| c.rho)
}

/// SVCCA: the mean canonical correlation after keeping the principal directions of each layer
/// that explain [`SVCCA_VARIANCE`] of its variance; also the directions kept `[A, B]`. NaN if
/// either layer has no variance.
pub fn svcca(cov: &JointCovariance) -> (f64, [usize; 2]) {
    match cca(cov, Keep::Variance(SVCCA_VARIANCE)) {
        Some(c) => (mean(&c.rho), c.dims),
        None => (f64::NAN, [0, 0]),
    }
}

/// PWCCA: canonical correlations weighted by how much of the layer with fewer directions (A on
/// ties) each canonical variate accounts for. NaN if either layer has no variance.
pub fn pwcca(cov: &JointCovariance) -> f64 {
    let Some(c) = cca(cov, Keep::All) else {
        return f64::NAN;
    };
    // The canonical variates are uncorrelated with unit variance, so orthonormalizing them (as
    // Morcos et al. do with a QR decomposition) only rescales them all by the same factor; their
    // inner products with the channels are then proportional to the covariances Σ·w.
    let (sigma, w) = if c.dims[0] <= c.dims[1] {
        (cov.aa(), &c.wa)
    } else {
        (cov.bb(), &c.wb)
    };
    let inner = sigma * w;
    let alpha: Vec<f64> = (0..c.rho.len())
        .map(|i| inner.column(i).iter().map(|v| v.abs()).sum())
        .collect();
    let total: f64 = alpha.iter().sum();
    if total > 0.0 {
        alpha.iter().zip(&c.rho).map(|(a, r)| a * r).sum::<f64>() / total
    } else {
        f64::NAN
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Channels whose variance exceeds [`RANK_TOLERANCE`] of the layer's largest.
fn live_channels(c: &DMatrix<f64>) -> Vec<usize> {
    let max = (0..c.nrows()).map(|i| c[(i, i)]).fold(0.0, f64::max);
    (0..c.nrows())
        .filter(|&i| max > 0.0 && c[(i, i)] > RANK_TOLERANCE * max)
        .collect()
}

/// The mean R² of reconstructing A's maps from `k` of B's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Reconstruction {
    /// B's maps used per map of A.
    pub k: usize,
    /// Mean R² over A's live maps.
    pub r2: f64,
}

/// For each `k` of `ks` (at most B's live maps), the mean over A's live maps of the R² of their
/// least-squares reconstruction from `k` of B's maps, chosen by greedy forward selection (each
/// step adds the map that explains most of what is left); and the R² from all of B's maps.
pub fn reconstruction(cov: &JointCovariance, ks: &[usize]) -> (Vec<Reconstruction>, f64) {
    let (aa, bb, ab) = (cov.aa(), cov.bb(), cov.ab());
    let (targets, sources) = (live_channels(&aa), live_channels(&bb));
    let mut ks: Vec<usize> = ks
        .iter()
        .copied()
        .filter(|&k| k >= 1 && k <= sources.len())
        .collect();
    ks.sort_unstable();
    ks.dedup();
    if targets.is_empty() || sources.is_empty() {
        return (
            ks.iter()
                .map(|&k| Reconstruction { k, r2: f64::NAN })
                .collect(),
            f64::NAN,
        );
    }
    let kmax = ks.last().copied().unwrap_or(0);
    let s = sources.len();
    let bb_live = DMatrix::from_fn(s, s, |i, j| bb[(sources[i], sources[j])]);
    let mut sums = vec![0.0; ks.len()];
    for &t in &targets {
        let var = aa[(t, t)];
        // Residual covariances given the maps chosen so far.
        let mut r = bb_live.clone();
        let mut c: Vec<f64> = sources.iter().map(|&j| ab[(t, j)]).collect();
        let mut left = var;
        let mut chosen = vec![false; s];
        let mut next = 0;
        for step in 1..=kmax {
            let best = (0..s)
                .filter(|&j| !chosen[j] && r[(j, j)] > 1e-12 * bb_live[(j, j)])
                .max_by(|&i, &j| (c[i] * c[i] / r[(i, i)]).total_cmp(&(c[j] * c[j] / r[(j, j)])));
            if let Some(j) = best {
                chosen[j] = true;
                let d = r[(j, j)];
                left -= c[j] * c[j] / d;
                let col = r.column(j).into_owned();
                let cj = c[j];
                for (ci, &x) in c.iter_mut().zip(col.iter()) {
                    *ci -= cj * x / d;
                }
                r -= &col * col.transpose() / d;
            }
            if ks.get(next) == Some(&step) {
                sums[next] += (1.0 - left / var).clamp(0.0, 1.0);
                next += 1;
            }
        }
    }
    let n = targets.len() as f64;
    let curve = ks
        .iter()
        .zip(&sums)
        .map(|(&k, &sum)| Reconstruction { k, r2: sum / n })
        .collect();
    // All of B: R² = Σ_ab Σ_bb⁺ Σ_ba / σ², through B's principal directions.
    let (ub, lb) = principal(&bb, Keep::All);
    let proj = &ab * whitener(&ub, &lb);
    let all = targets
        .iter()
        .map(|&t| (proj.row(t).norm_squared() / aa[(t, t)]).clamp(0.0, 1.0))
        .sum::<f64>()
        / n;
    (curve, all)
}

/// Everything about the subspaces of one pair of layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subspace {
    /// SVCCA similarity (mean canonical correlation of the top principal directions).
    pub svcca: f64,
    /// Principal directions SVCCA kept `[A, B]`.
    pub svcca_dims: [usize; 2],
    /// PWCCA similarity.
    pub pwcca: f64,
    /// Canonical correlations of all directions with variance, largest first.
    pub canonical_correlations: Vec<f64>,
    /// Mean R² of reconstructing A's maps from `k` of B's, by `k`.
    pub reconstruction: Vec<Reconstruction>,
    /// Mean R² of reconstructing A's maps from all of B's.
    pub reconstruction_all: f64,
    /// Live maps (with variance) `[A, B]`.
    pub live: [usize; 2],
}

/// SVCCA, PWCCA, the canonical correlations and the many-to-one reconstruction for `ks`.
pub fn subspace(cov: &JointCovariance, ks: &[usize]) -> Subspace {
    let (svcca, svcca_dims) = svcca(cov);
    let (reconstruction, reconstruction_all) = reconstruction(cov, ks);
    Subspace {
        svcca,
        svcca_dims,
        pwcca: pwcca(cov),
        canonical_correlations: canonical_correlations(cov),
        reconstruction,
        reconstruction_all,
        live: [
            live_channels(&cov.aa()).len(),
            live_channels(&cov.bb()).len(),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` observations of `p` standard normal variables, row-major, from seed `seed`.
    fn normal(n: usize, p: usize, seed: u64) -> Vec<f64> {
        let mut rng = params::ParamRng::new(seed, "subspace");
        (0..n * p).map(|_| rng.normal()).collect()
    }

    /// `x·m` for row-major `x` (`n × p`) and `m` (`p × q`).
    fn times(x: &[f64], n: usize, p: usize, m: &[f64], q: usize) -> Vec<f64> {
        let mut out = vec![0.0; n * q];
        for i in 0..n {
            for j in 0..q {
                out[i * q + j] = (0..p).map(|k| x[i * p + k] * m[k * q + j]).sum();
            }
        }
        out
    }

    /// The population covariance of `[x | y]`, computed directly from the data.
    fn joint(x: &[f64], y: &[f64], n: usize, p: usize, q: usize) -> JointCovariance {
        let d = p + q;
        let row = |i: usize| -> Vec<f64> {
            x[i * p..(i + 1) * p]
                .iter()
                .chain(&y[i * q..(i + 1) * q])
                .copied()
                .collect()
        };
        let rows: Vec<Vec<f64>> = (0..n).map(row).collect();
        let mean: Vec<f64> = (0..d)
            .map(|c| rows.iter().map(|r| r[c]).sum::<f64>() / n as f64)
            .collect();
        let mut cov = vec![0.0; d * d];
        for r in &rows {
            for a in 0..d {
                for b in 0..d {
                    cov[a * d + b] += (r[a] - mean[a]) * (r[b] - mean[b]) / n as f64;
                }
            }
        }
        JointCovariance::new(p, q, &cov).unwrap()
    }

    /// Canonical correlations by Björck and Golub's method, independently of the covariance
    /// route: centre the data, orthonormalize each side's columns (modified Gram–Schmidt), and
    /// take the singular values of `Q_xᵀ Q_y`.
    fn bjorck_golub(x: &[f64], y: &[f64], n: usize, p: usize, q: usize) -> Vec<f64> {
        let orthonormal = |m: &[f64], d: usize| -> Vec<Vec<f64>> {
            let mut cols: Vec<Vec<f64>> = (0..d)
                .map(|c| {
                    let v: Vec<f64> = (0..n).map(|i| m[i * d + c]).collect();
                    let mu = v.iter().sum::<f64>() / n as f64;
                    v.iter().map(|x| x - mu).collect()
                })
                .collect();
            for c in 0..d {
                for prev in 0..c {
                    let (done, rest) = cols.split_at_mut(c);
                    let (cur, base) = (&mut rest[0], &done[prev]);
                    let dot: f64 = cur.iter().zip(base).map(|(a, b)| a * b).sum();
                    cur.iter_mut().zip(base).for_each(|(a, b)| *a -= dot * b);
                }
                let norm = cols[c].iter().map(|v| v * v).sum::<f64>().sqrt();
                cols[c].iter_mut().for_each(|v| *v /= norm);
            }
            cols
        };
        let (qx, qy) = (orthonormal(x, p), orthonormal(y, q));
        let m = DMatrix::from_fn(p, q, |a, b| {
            (0..n).map(|i| qx[a][i] * qy[b][i]).sum::<f64>()
        });
        let mut s: Vec<f64> = m.singular_values().iter().copied().collect();
        s.sort_by(|a, b| b.total_cmp(a));
        s
    }

    #[test]
    fn one_variable_each_gives_the_absolute_correlation() {
        // y = −2x + noise: one canonical correlation, |Pearson ρ|, computed here by hand.
        let n = 200;
        let x = normal(n, 1, 1);
        let e = normal(n, 1, 2);
        let y: Vec<f64> = x.iter().zip(&e).map(|(x, e)| -2.0 * x + e).collect();
        let mx = x.iter().sum::<f64>() / n as f64;
        let my = y.iter().sum::<f64>() / n as f64;
        let sxy: f64 = x.iter().zip(&y).map(|(a, b)| (a - mx) * (b - my)).sum();
        let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
        let syy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
        let want = (sxy / (sxx * syy).sqrt()).abs();
        let cov = joint(&x, &y, n, 1, 1);
        let got = canonical_correlations(&cov);
        assert_eq!(got.len(), 1);
        assert!((got[0] - want).abs() < 1e-12, "{got:?} vs {want}");
        assert!((pwcca(&cov) - want).abs() < 1e-12);
        assert!((svcca(&cov).0 - want).abs() < 1e-12);
        // Reconstructing x from y: R² = ρ².
        let (curve, all) = reconstruction(&cov, &[1, 2]);
        assert_eq!(curve.len(), 1, "k is capped at B's maps");
        assert!((curve[0].r2 - want * want).abs() < 1e-12 && (all - want * want).abs() < 1e-12);
    }

    #[test]
    fn matches_the_data_space_method_and_is_invariant_to_invertible_maps() {
        let (n, p, q) = (300, 4, 3);
        let x = normal(n, p, 3);
        let noise = normal(n, q, 4);
        // Y depends on the first three columns of X, with noise: correlations inside (0, 1).
        let y: Vec<f64> = (0..n * q)
            .map(|k| x[(k / q) * p + k % q] * (1.0 + (k % q) as f64) + 1.5 * noise[k])
            .collect();
        let want = bjorck_golub(&x, &y, n, p, q);
        let got = canonical_correlations(&joint(&x, &y, n, p, q));
        assert_eq!(got.len(), q);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-9, "{got:?} vs {want:?}");
        }
        assert!(want[0] > 0.5 && want[q - 1] < want[0], "{want:?}");
        // X·A and Y·B for invertible (not orthogonal) A, B: the same canonical correlations.
        let a: Vec<f64> = normal(p, p, 5)
            .iter()
            .enumerate()
            .map(|(k, v)| v + if k % (p + 1) == 0 { 3.0 } else { 0.0 })
            .collect();
        let b: Vec<f64> = normal(q, q, 6)
            .iter()
            .enumerate()
            .map(|(k, v)| v + if k % (q + 1) == 0 { 3.0 } else { 0.0 })
            .collect();
        let (xa, yb) = (times(&x, n, p, &a, p), times(&y, n, q, &b, q));
        let mapped = canonical_correlations(&joint(&xa, &yb, n, p, q));
        for (g, m) in got.iter().zip(&mapped) {
            assert!((g - m).abs() < 1e-9, "{got:?} vs {mapped:?}");
        }
    }

    #[test]
    fn a_representation_with_itself_or_a_rotation_of_itself_scores_one() {
        let (n, p) = (200, 5);
        let x = normal(n, p, 7);
        let cov = joint(&x, &x, n, p, p);
        assert!((pwcca(&cov) - 1.0).abs() < 1e-9);
        assert!((svcca(&cov).0 - 1.0).abs() < 1e-9);
        let (curve, all) = reconstruction(&cov, &DEFAULT_KS);
        assert!((curve[0].r2 - 1.0).abs() < 1e-9 && (all - 1.0).abs() < 1e-9);
        // A rotated, scaled copy: every canonical correlation is 1, but a single map of B no
        // longer reconstructs one of A's (the basis changed), while all of them do.
        let r = init::semi_orthogonal(p, p, &mut params::ParamRng::new(8, "rotation"));
        let xr: Vec<f64> = times(&x, n, p, &r, p).iter().map(|v| 2.5 * v).collect();
        let cov = joint(&x, &xr, n, p, p);
        assert!(
            canonical_correlations(&cov)
                .iter()
                .all(|r| (r - 1.0).abs() < 1e-9)
        );
        assert!((pwcca(&cov) - 1.0).abs() < 1e-9 && (svcca(&cov).0 - 1.0).abs() < 1e-9);
        let (curve, all) = reconstruction(&cov, &[1, p]);
        assert!(curve[0].r2 < 0.95, "{curve:?}");
        assert!((curve[1].r2 - 1.0).abs() < 1e-9 && (all - 1.0).abs() < 1e-9);
    }

    #[test]
    fn greedy_reconstruction_matches_least_squares_on_the_chosen_maps() {
        // B: three independent maps; A: a = b0 + b1 (needs two of B's), a' = b2 + noise.
        let n = 400;
        let b = normal(n, 3, 9);
        let e = normal(n, 1, 10);
        let a: Vec<f64> = (0..n)
            .flat_map(|i| [b[i * 3] + b[i * 3 + 1], b[i * 3 + 2] + 0.5 * e[i]])
            .collect();
        let cov = joint(&a, &b, n, 2, 3);
        let (curve, all) = reconstruction(&cov, &[1, 2, 3]);
        // Independent least squares for a' on b2 alone: R² = ρ(a', b2)².
        let col =
            |m: &[f64], d: usize, c: usize| -> Vec<f64> { (0..n).map(|i| m[i * d + c]).collect() };
        let r2_single = |t: &[f64], s: &[f64]| {
            let (mt, ms) = (
                t.iter().sum::<f64>() / n as f64,
                s.iter().sum::<f64>() / n as f64,
            );
            let cts: f64 = t.iter().zip(s).map(|(x, y)| (x - mt) * (y - ms)).sum();
            let ctt: f64 = t.iter().map(|x| (x - mt).powi(2)).sum();
            let css: f64 = s.iter().map(|y| (y - ms).powi(2)).sum();
            cts * cts / (ctt * css)
        };
        let a0 = col(&a, 2, 0);
        let a1 = col(&a, 2, 1);
        let best_single_a0 = (0..3)
            .map(|j| r2_single(&a0, &col(&b, 3, j)))
            .fold(0.0, f64::max);
        let single_a1 = r2_single(&a1, &col(&b, 3, 2));
        let want_k1 = (best_single_a0 + single_a1) / 2.0;
        assert!(
            (curve[0].r2 - want_k1).abs() < 1e-9,
            "{curve:?} vs {want_k1}"
        );
        // k = 2: a is exact (R² 1); a' gains nothing real from a second map.
        assert!(curve[1].r2 > (1.0 + single_a1) / 2.0 - 1e-9);
        assert!(curve[1].r2 < (1.0 + single_a1) / 2.0 + 0.02);
        assert!((curve[2].r2 - all).abs() < 1e-9, "k = all of B's maps");
        assert!(curve.windows(2).all(|w| w[0].r2 <= w[1].r2 + 1e-12));
    }

    #[test]
    fn dead_maps_are_left_out_and_bad_input_is_an_error() {
        let n = 100;
        let x = normal(n, 2, 11);
        // B: a copy of x's first column and a dead (constant) map.
        let y: Vec<f64> = (0..n).flat_map(|i| [x[i * 2], 0.0]).collect();
        let cov = joint(&x, &y, n, 2, 2);
        let s = subspace(&cov, &DEFAULT_KS);
        assert_eq!(s.live, [2, 1]);
        assert_eq!(s.canonical_correlations.len(), 1);
        assert!((s.canonical_correlations[0] - 1.0).abs() < 1e-9);
        assert_eq!(s.reconstruction.len(), 1);
        assert!((s.reconstruction_all - 0.5).abs() < 0.1, "{s:?}");
        // Everything dead: NaN, no panic.
        let cov = joint(&vec![1.0; n * 2], &y, n, 2, 2);
        let s = subspace(&cov, &DEFAULT_KS);
        assert!(s.svcca.is_nan() && s.pwcca.is_nan() && s.reconstruction_all.is_nan());
        assert!(JointCovariance::new(2, 2, &[0.0; 15]).is_err());
        assert!(JointCovariance::new(1, 1, &[f64::NAN, 0.0, 0.0, 1.0]).is_err());
    }
}
