//! A checked, safe entry to the `gemm` crate (the matrix product flex itself uses) for the host
//! kernels: strided views of slices, every index the product touches checked against the slice
//! before the call.
//!
//! This is the crate's only `unsafe` code. `gemm::gemm` takes raw pointers and strides; the views
//! below admit only non-negative strides whose largest offset lies inside the slice, and the
//! destination's elements must be distinct (one unit stride, the other at least the extent), so
//! the call reads and writes only memory the borrows own.

#![allow(unsafe_code)]

/// A read-only `rows × cols` matrix in `data`: element `(i, j)` at `i·row_stride + j·col_stride`.
#[derive(Clone, Copy)]
pub(crate) struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

/// A writable `rows × cols` matrix, row-major with a row stride of at least `cols` (so its
/// elements are distinct).
pub(crate) struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
}

/// Whether the largest offset of a `rows × cols` view with these strides lies inside `len`.
fn fits(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    if rows == 0 || cols == 0 {
        return true;
    }
    (rows - 1)
        .checked_mul(rs)
        .and_then(|a| (cols - 1).checked_mul(cs).and_then(|b| a.checked_add(b)))
        .is_some_and(|last| last < len)
        && isize::try_from(rs.max(cs)).is_ok()
}

impl<'a> MatRef<'a> {
    /// `data` as a row-major `rows × cols` matrix.
    pub(crate) fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols, 1)
    }

    /// `data` as the transpose of a row-major `cols × rows` matrix.
    pub(crate) fn transposed(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, 1, rows)
    }

    /// `data` as a `rows × cols` matrix with element `(i, j)` at `i·rs + j·cs`.
    pub(crate) fn strided(data: &'a [f32], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        assert!(
            fits(data.len(), rows, cols, rs, cs),
            "a {rows}×{cols} view with strides ({rs}, {cs}) does not fit in {} values",
            data.len()
        );
        Self {
            data,
            rows,
            cols,
            row_stride: rs,
            col_stride: cs,
        }
    }
}

impl<'a> MatMut<'a> {
    /// `data` as a row-major `rows × cols` matrix.
    pub(crate) fn rows(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols)
    }

    /// `data` as a `rows × cols` matrix with row `i` at `i·row_stride` (`row_stride ≥ cols`).
    pub(crate) fn strided(
        data: &'a mut [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
    ) -> Self {
        assert!(
            row_stride >= cols && fits(data.len(), rows, cols, row_stride, 1),
            "a {rows}×{cols} matrix with row stride {row_stride} does not fit in {} values",
            data.len()
        );
        Self {
            data,
            rows,
            cols,
            row_stride,
        }
    }
}

/// `dst = lhs · rhs`, or `dst += lhs · rhs` with `accumulate`, single-threaded (the kernels
/// parallelize over images).
///
/// # Panics
/// If the shapes do not agree.
pub(crate) fn matmul(dst: MatMut<'_>, lhs: MatRef<'_>, rhs: MatRef<'_>, accumulate: bool) {
    let (m, n, k) = (dst.rows, dst.cols, lhs.cols);
    assert!(
        lhs.rows == m && rhs.rows == k && rhs.cols == n,
        "matrix product of {}×{} and {}×{} into {m}×{n}",
        lhs.rows,
        lhs.cols,
        rhs.rows,
        rhs.cols
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                dst.data[i * dst.row_stride..][..n].fill(0.0);
            }
        }
        return;
    }
    // The strides fit in `isize` and every offset lies inside its slice (checked by the views'
    // constructors); `dst`'s `m × n` elements are distinct and exclusively borrowed.
    let s = |v: usize| v as isize;
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            1,
            s(dst.row_stride),
            accumulate,
            lhs.data.as_ptr(),
            s(lhs.col_stride),
            s(lhs.row_stride),
            rhs.data.as_ptr(),
            s(rhs.col_stride),
            s(rhs.row_stride),
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|t| a[i * k + t] * b[t * n + j]).sum();
            }
        }
        out
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 20) as f32 / 4096.0
                    - 0.5
            })
            .collect()
    }

    #[test]
    fn products_plain_transposed_and_accumulated_match_the_definition() {
        let (m, k, n) = (7, 13, 5);
        let (a, b) = (values(m * k, 1), values(k * n, 2));
        let want = naive(&a, &b, m, k, n);
        let mut got = vec![0.0; m * n];
        matmul(
            MatMut::rows(&mut got, m, n),
            MatRef::rows(&a, m, k),
            MatRef::rows(&b, k, n),
            false,
        );
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-5, "{g} vs {w}");
        }
        // aᵀ stored as k × m, read transposed; accumulated onto the first result.
        let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        matmul(
            MatMut::rows(&mut got, m, n),
            MatRef::transposed(&at, m, k),
            MatRef::rows(&b, k, n),
            true,
        );
        for (g, w) in got.iter().zip(&want) {
            assert!((g - 2.0 * w).abs() <= 2e-5, "{g} vs {}", 2.0 * w);
        }
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn a_view_larger_than_its_slice_is_refused() {
        let data = [0.0f32; 5];
        let _ = MatRef::rows(&data, 2, 3);
    }
}
