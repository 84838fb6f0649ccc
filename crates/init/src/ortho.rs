//! Orthogonal matrices from the QR decomposition of Gaussian matrices.

use nalgebra::DMatrix;

use crate::InitError;
use crate::scheme::{ParamKind, ParamShape};
use params::ParamRng;

/// A `rows × cols` matrix (row-major) with orthonormal rows if `rows ≤ cols`, orthonormal columns
/// otherwise: the Q factor of a Gaussian matrix, each column multiplied by the sign of the
/// matching diagonal entry of R, so that Q is Haar-distributed (Mezzadri 2007; PyTorch's
/// `orthogonal_` does the same).
pub fn semi_orthogonal(rows: usize, cols: usize, rng: &mut ParamRng) -> Vec<f64> {
    // Decompose the tall orientation (m ≥ n): Q is m × n with orthonormal columns.
    let (m, n) = if rows >= cols {
        (rows, cols)
    } else {
        (cols, rows)
    };
    let a = DMatrix::from_fn(m, n, |_, _| rng.normal());
    let qr = a.qr();
    let (mut q, r) = (qr.q(), qr.r());
    for j in 0..n {
        if r[(j, j)] < 0.0 {
            q.column_mut(j).neg_mut();
        }
    }
    let mut out = vec![0.0; rows * cols];
    for i in 0..rows {
        for j in 0..cols {
            // rows ≥ cols: W = Q; otherwise W = Qᵀ.
            out[i * cols + j] = if rows >= cols { q[(i, j)] } else { q[(j, i)] };
        }
    }
    out
}

/// Delta-orthogonal kernel `[out, in, kh, kw]`: an `out × in` matrix with orthonormal columns at
/// the centre tap, zeros elsewhere, times `gain` (Xiao et al. 2018). Needs `in ≤ out`.
pub fn delta_orthogonal(
    p: &ParamShape,
    gain: f64,
    rng: &mut ParamRng,
) -> Result<Vec<f64>, InitError> {
    let &[out, inp, kh, kw] = p.shape.as_slice() else {
        return Err(InitError::NeedsMatrix {
            scheme: "delta-orthogonal".into(),
            shape: p.shape.clone(),
        });
    };
    if p.kind != ParamKind::ConvWeight {
        return Err(InitError::NeedsMatrix {
            scheme: "delta-orthogonal (convolutions only)".into(),
            shape: p.shape.clone(),
        });
    }
    if inp > out {
        return Err(InitError::Incompatible {
            scheme: "delta-orthogonal".into(),
            why: format!("needs in ≤ out channels, got in {inp} > out {out}"),
        });
    }
    let h = semi_orthogonal(out, inp, rng);
    let mut w = vec![0.0; out * inp * kh * kw];
    for o in 0..out {
        for i in 0..inp {
            w[((o * inp + i) * kh + kh / 2) * kw + kw / 2] = gain * h[o * inp + i];
        }
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `W Wᵀ` (if rows ≤ cols) or `Wᵀ W`, which must be the identity.
    fn gram(w: &[f64], rows: usize, cols: usize) -> DMatrix<f64> {
        let m = DMatrix::from_row_slice(rows, cols, w);
        if rows <= cols {
            &m * m.transpose()
        } else {
            m.transpose() * &m
        }
    }

    #[test]
    fn semi_orthogonal_in_both_orientations() {
        for (rows, cols) in [(8, 8), (4, 9), (32, 9), (64, 288)] {
            let mut rng = ParamRng::new(1, "w");
            let w = semi_orthogonal(rows, cols, &mut rng);
            let g = gram(&w, rows, cols);
            let id = DMatrix::<f64>::identity(g.nrows(), g.ncols());
            assert!((g - id).abs().max() < 1e-12, "{rows}×{cols}");
        }
    }

    #[test]
    fn delta_orthogonal_structure() {
        let p = ParamShape::weight(ParamKind::ConvWeight, vec![8, 4, 3, 3]);
        let w = delta_orthogonal(&p, 2.0, &mut ParamRng::new(0, "c")).unwrap();
        // Only centre taps are non-zero.
        for (idx, v) in w.iter().enumerate() {
            if idx % 9 != 4 {
                assert_eq!(*v, 0.0);
            }
        }
        // Centre matrix H (8 × 4): HᵀH = gain²·I.
        let h: Vec<f64> = (0..32).map(|k| w[k * 9 + 4]).collect();
        let g = gram(&h, 8, 4);
        assert!((g - DMatrix::<f64>::identity(4, 4) * 4.0).abs().max() < 1e-12);
        let wide = ParamShape::weight(ParamKind::ConvWeight, vec![4, 8, 3, 3]);
        assert!(delta_orthogonal(&wide, 1.0, &mut ParamRng::new(0, "c")).is_err());
    }
}
