//! A faster 2×2 max-pooling (stride 2, no padding) on the CPU backends (flex and ndarray).
//!
//! flex pools through a general kernel that recomputes the window bounds of every output and
//! writes an `i64` index per output; on the reference CNN that took about a quarter of a training
//! step, more than the second convolution's forward pass. Here the forward pass is a direct loop
//! over pairs of rows. On its own, the backward pass finds each window's maximum again from the
//! saved input instead of storing indices; fused into a convolution (`conv_host.rs`), the forward
//! pass records each window's winner in a byte and the backward pass reads it. The window is
//! scanned with the same rule as flex's (`>` keeps the first maximum; a NaN wins, the last one in
//! the window) and the gradient is added to a zero, so values and gradients are bit-identical to
//! flex's `MaxPool2d` (ndarray's own pooling skips a NaN instead).
//!
//! Other backends (and other pooling shapes) use Burn's `MaxPool2d`.

use burn::nn::PaddingConfig2d;
use burn::nn::pool::MaxPool2d;
use burn::tensor::Tensor;

/// `pool` applied to `x`: by the 2×2 kernel where it [`applies`], else by Burn's pooling.
pub(crate) fn max_pool2d(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    if applies(pool, &x) {
        crate::kernels::max_pool2x2(x)
    } else {
        pool.forward(x)
    }
}

/// Whether the 2×2 kernel computes `pool(x)`: a 2×2 window, stride 2, no padding or dilation,
/// floor rounding, an `f32` tensor on a CPU backend.
fn applies(pool: &MaxPool2d, x: &Tensor<4>) -> bool {
    is_2x2(pool) && crate::kernels::supported(x)
}

/// Whether `pool` is the 2×2 kernel's: a 2×2 window, stride 2, no padding or dilation, floor
/// rounding.
pub(crate) fn is_2x2(pool: &MaxPool2d) -> bool {
    pool.kernel_size == [2, 2]
        && pool.stride == [2, 2]
        && pool.dilation == [1, 1]
        && !pool.ceil_mode
        && matches!(pool.padding, PaddingConfig2d::Valid)
}

/// The maximum of a 2×2 window `[a, b, c, d]` (row-major) and its index, by flex's rule: the first
/// value, replaced by any later value that is greater or NaN. No short-circuit operators: on real
/// data which of the four wins is unpredictable, so the choice should compile to selects.
#[cfg(any(feature = "flex", feature = "ndarray"))]
#[inline(always)]
fn max4(a: f32, b: f32, c: f32, d: f32) -> (f32, usize) {
    let (mut m, mut k) = (a, 0);
    for (i, v) in [(1, b), (2, c), (3, d)] {
        let take = (v > m) | v.is_nan();
        m = if take { v } else { m };
        k = if take { i } else { k };
    }
    (m, k)
}

/// Forward pass over planes of `h × w`: outputs of `(h/2) × (w/2)` per plane.
#[cfg(any(feature = "flex", feature = "ndarray"))]
pub(crate) fn forward_host(x: &[f32], h: usize, w: usize) -> Vec<f32> {
    use rayon::prelude::*;
    let (oh, ow) = (h / 2, w / 2);
    if oh * ow == 0 {
        return Vec::new();
    }
    let planes = x.len() / (h * w);
    let mut out = vec![0.0f32; planes * oh * ow];
    out.par_chunks_mut(oh * ow)
        .zip(x.par_chunks(h * w))
        .for_each(|(dst, src)| {
            crate::conv_host::vectorized(
                #[inline(always)]
                || forward_plane(src, dst, w, ow),
            )
        });
    out
}

/// One plane of [`forward_host`].
#[cfg(any(feature = "flex", feature = "ndarray"))]
#[inline(always)]
fn forward_plane(src: &[f32], dst: &mut [f32], w: usize, ow: usize) {
    for (i, row) in dst.chunks_exact_mut(ow).enumerate() {
        let top = &src[2 * i * w..2 * i * w + 2 * ow];
        let bottom = &src[(2 * i + 1) * w..(2 * i + 1) * w + 2 * ow];
        for ((o, t), b) in row
            .iter_mut()
            .zip(top.chunks_exact(2))
            .zip(bottom.chunks_exact(2))
        {
            *o = max4(t[0], t[1], b[0], b[1]).0;
        }
    }
}

/// Backward pass: the gradient of the input `x` (`h × w` planes) given the output's gradient.
#[cfg(any(feature = "flex", feature = "ndarray"))]
pub(crate) fn backward_host(x: &[f32], grad: &[f32], h: usize, w: usize) -> Vec<f32> {
    use rayon::prelude::*;
    let (oh, ow) = (h / 2, w / 2);
    let mut out = vec![0.0f32; x.len()];
    if oh * ow == 0 {
        return out;
    }
    out.par_chunks_mut(h * w)
        .zip(x.par_chunks(h * w))
        .zip(grad.par_chunks(oh * ow))
        .for_each(|((dst, src), g)| {
            crate::conv_host::vectorized(
                #[inline(always)]
                || backward_plane(src, g, dst, w, ow),
            )
        });
    out
}

/// One plane of [`backward_host`].
#[cfg(any(feature = "flex", feature = "ndarray"))]
#[inline(always)]
fn backward_plane(src: &[f32], g: &[f32], dst: &mut [f32], w: usize, ow: usize) {
    for (i, grow) in g.chunks_exact(ow).enumerate() {
        let (t, b) = (2 * i * w, (2 * i + 1) * w);
        let (dt, db) = dst[t..b + w].split_at_mut(w);
        let (st, sb) = (&src[t..t + w], &src[b..b + w]);
        for (j, &gv) in grow.iter().enumerate() {
            let (l, r) = (2 * j, 2 * j + 1);
            let (_, k) = max4(st[l], st[r], sb[l], sb[r]);
            // Every position of the window is written (the windows do not overlap):
            // the gradient (added to zero, as flex does) at the maximum, zero elsewhere.
            let g = 0.0 + gv;
            dt[l] = if k == 0 { g } else { 0.0 };
            dt[r] = if k == 1 { g } else { 0.0 };
            db[l] = if k == 2 { g } else { 0.0 };
            db[r] = if k == 3 { g } else { 0.0 };
        }
    }
}

/// A window's winner as [`forward_plane_winners`] records it: its maximum's position (0 to 3,
/// row-major), or [`MASKED`] where a ReLU before the pooling stops the gradient.
#[cfg(any(feature = "flex", feature = "ndarray"))]
pub(crate) const MASKED: u8 = 4;

/// [`forward_plane`], also recording each window's winner, for a backward pass that does not
/// search the windows again: where `relu` (the plane is a ReLU's output), a window whose
/// maximum is `<= 0` is [`MASKED`], as the ReLU's gradient stops there.
#[cfg(any(feature = "flex", feature = "ndarray"))]
#[inline(always)]
fn forward_plane_winners(
    src: &[f32],
    dst: &mut [f32],
    winners: &mut [u8],
    w: usize,
    ow: usize,
    relu: bool,
) {
    for (i, (row, codes)) in dst
        .chunks_exact_mut(ow)
        .zip(winners.chunks_exact_mut(ow))
        .enumerate()
    {
        let top = &src[2 * i * w..2 * i * w + 2 * ow];
        let bottom = &src[(2 * i + 1) * w..(2 * i + 1) * w + 2 * ow];
        for (j, (o, code)) in row.iter_mut().zip(codes.iter_mut()).enumerate() {
            let (l, r) = (2 * j, 2 * j + 1);
            let (m, k) = max4(top[l], top[r], bottom[l], bottom[r]);
            *o = m;
            *code = if relu & (m <= 0.0) { MASKED } else { k as u8 };
        }
    }
}

/// The gradient of one plane (`dst`, every window position written) from its pooled gradient
/// `g` and the winners [`forward_plane_winners`] recorded: the gradient (added to zero, as flex
/// does) at each window's winner, zero elsewhere.
#[cfg(any(feature = "flex", feature = "ndarray"))]
#[inline(always)]
fn backward_plane_winners(winners: &[u8], g: &[f32], dst: &mut [f32], w: usize, ow: usize) {
    for (i, (grow, codes)) in g.chunks_exact(ow).zip(winners.chunks_exact(ow)).enumerate() {
        let (t, b) = (2 * i * w, (2 * i + 1) * w);
        let (dt, db) = dst[t..b + w].split_at_mut(w);
        let (dt, db) = (&mut dt[..2 * ow], &mut db[..2 * ow]);
        for j in 0..ow {
            let (k, g) = (codes[j], 0.0 + grow[j]);
            dt[2 * j] = if k == 0 { g } else { 0.0 };
            dt[2 * j + 1] = if k == 1 { g } else { 0.0 };
            db[2 * j] = if k == 2 { g } else { 0.0 };
            db[2 * j + 1] = if k == 3 { g } else { 0.0 };
        }
    }
}

/// Buffers for [`forward_image_winners`] and [`backward_image_winners`], reused across images.
#[cfg(any(feature = "flex", feature = "ndarray"))]
#[derive(Default)]
pub(crate) struct PoolScratch {
    rows: Vec<f32>,
    lanes: Vec<f32>,
}

#[cfg(any(feature = "flex", feature = "ndarray"))]
impl PoolScratch {
    /// The top and bottom rows of every window (`pairs` pairs of rows of `w`), each set laid end
    /// to end, and four lanes of `windows` values.
    #[inline(always)]
    fn split(
        &mut self,
        pairs: usize,
        w: usize,
        windows: usize,
    ) -> ([&mut [f32]; 2], [&mut [f32]; 4]) {
        let rows = crate::conv_host::sized(&mut self.rows, 2 * pairs * w);
        let (tops, bottoms) = rows.split_at_mut(pairs * w);
        let lanes = crate::conv_host::sized(&mut self.lanes, 4 * windows);
        let (a, rest) = lanes.split_at_mut(windows);
        let (b, rest) = rest.split_at_mut(windows);
        let (c, rest) = rest.split_at_mut(windows);
        ([tops, bottoms], [a, b, c, &mut rest[..windows]])
    }
}

/// `even[j] = src[2j]`, `odd[j] = src[2j + 1]`: a plain strided copy, which vectorizes.
#[cfg(any(feature = "flex", feature = "ndarray"))]
#[inline(always)]
fn deinterleave(src: &[f32], even: &mut [f32], odd: &mut [f32]) {
    let n = even.len();
    let (src, odd) = (&src[..2 * n], &mut odd[..n]);
    for j in 0..n {
        even[j] = src[2 * j];
        odd[j] = src[2 * j + 1];
    }
}

/// The inverse of [`deinterleave`].
#[cfg(any(feature = "flex", feature = "ndarray"))]
#[inline(always)]
fn interleave(even: &[f32], odd: &[f32], dst: &mut [f32]) {
    let n = even.len();
    let (dst, odd) = (&mut dst[..2 * n], &odd[..n]);
    for j in 0..n {
        dst[2 * j] = even[j];
        dst[2 * j + 1] = odd[j];
    }
}

/// [`forward_plane_winners`] of a whole image, `planes` planes of `h × w` with `h` and `w` even,
/// laid out so that every loop runs over the image's windows at once: the rows are gathered into
/// the windows' top and bottom rows, those split into left and right columns, then each window
/// is chosen from four consecutive lanes.
#[cfg(any(feature = "flex", feature = "ndarray"))]
#[inline(always)]
fn forward_image_winners(
    y: &[f32],
    [planes, h, w]: [usize; 3],
    pooled: &mut [f32],
    winners: &mut [u8],
    relu: bool,
    scratch: &mut PoolScratch,
) {
    let (pairs, windows) = (planes * h / 2, planes * h * w / 4);
    let ([tops, bottoms], [a, b, c, d]) = scratch.split(pairs, w, windows);
    for (i, (t, bt)) in tops
        .chunks_exact_mut(w)
        .zip(bottoms.chunks_exact_mut(w))
        .enumerate()
    {
        t.copy_from_slice(&y[2 * i * w..(2 * i + 1) * w]);
        bt.copy_from_slice(&y[(2 * i + 1) * w..(2 * i + 2) * w]);
    }
    deinterleave(tops, a, b);
    deinterleave(bottoms, c, d);
    let (pooled, winners) = (&mut pooled[..windows], &mut winners[..windows]);
    let (b, c, d) = (&b[..windows], &c[..windows], &d[..windows]);
    for q in 0..windows {
        let (m, k) = max4(a[q], b[q], c[q], d[q]);
        pooled[q] = m;
        winners[q] = if relu & (m <= 0.0) { MASKED } else { k as u8 };
    }
}

/// [`backward_plane_winners`] of a whole image laid out as in [`forward_image_winners`]: `dst`
/// (`planes × h × w`, `h` and `w` even) gets the pooled gradient `g` at each window's winner.
#[cfg(any(feature = "flex", feature = "ndarray"))]
#[inline(always)]
fn backward_image_winners(
    winners: &[u8],
    g: &[f32],
    dst: &mut [f32],
    [planes, h, w]: [usize; 3],
    scratch: &mut PoolScratch,
) {
    let (pairs, windows) = (planes * h / 2, planes * h * w / 4);
    let ([tops, bottoms], [a, b, c, d]) = scratch.split(pairs, w, windows);
    let (winners, g) = (&winners[..windows], &g[..windows]);
    let (b, c, d) = (&mut b[..windows], &mut c[..windows], &mut d[..windows]);
    for q in 0..windows {
        let (k, v) = (winners[q], 0.0 + g[q]);
        a[q] = if k == 0 { v } else { 0.0 };
        b[q] = if k == 1 { v } else { 0.0 };
        c[q] = if k == 2 { v } else { 0.0 };
        d[q] = if k == 3 { v } else { 0.0 };
    }
    interleave(a, b, tops);
    interleave(c, d, bottoms);
    for (i, (t, bt)) in tops
        .chunks_exact(w)
        .zip(bottoms.chunks_exact(w))
        .enumerate()
    {
        dst[2 * i * w..(2 * i + 1) * w].copy_from_slice(t);
        dst[(2 * i + 1) * w..(2 * i + 2) * w].copy_from_slice(bt);
    }
}

/// 2×2 max-pooling of one image's `planes` maps of `h × w` (`y`) into `pooled`, recording each
/// window's winner (see [`forward_plane_winners`]): over the whole image at once where `h` and
/// `w` are even, plane by plane (dropping the last row or column) where not.
#[cfg(any(feature = "flex", feature = "ndarray"))]
#[inline(always)]
pub(crate) fn forward_winners(
    y: &[f32],
    [planes, h, w]: [usize; 3],
    pooled: &mut [f32],
    winners: &mut [u8],
    relu: bool,
    scratch: &mut PoolScratch,
) {
    let (ph, pw) = (h / 2, w / 2);
    if ph * pw == 0 {
        return;
    }
    if h % 2 == 0 && w % 2 == 0 {
        forward_image_winners(y, [planes, h, w], pooled, winners, relu, scratch);
        return;
    }
    for ((src, dst), codes) in y
        .chunks_exact(h * w)
        .zip(pooled.chunks_exact_mut(ph * pw))
        .zip(winners.chunks_exact_mut(ph * pw))
    {
        forward_plane_winners(src, dst, codes, w, pw, relu);
    }
}

/// The gradient `dst` of one image's maps (`planes × h × w`, every value written) from the
/// pooled gradient `g` and the winners [`forward_winners`] recorded: at each window's winner,
/// zero elsewhere (and everywhere where the maps are too small to hold a window).
#[cfg(any(feature = "flex", feature = "ndarray"))]
#[inline(always)]
pub(crate) fn backward_winners(
    winners: &[u8],
    g: &[f32],
    dst: &mut [f32],
    [planes, h, w]: [usize; 3],
    scratch: &mut PoolScratch,
) {
    let (ph, pw) = (h / 2, w / 2);
    if h % 2 == 0 && w % 2 == 0 && ph * pw > 0 {
        backward_image_winners(winners, g, dst, [planes, h, w], scratch);
        return;
    }
    // The last row and column of an odd map are in no window.
    dst.fill(0.0);
    if ph * pw == 0 {
        return;
    }
    for ((codes, gp), plane) in winners
        .chunks_exact(ph * pw)
        .zip(g.chunks_exact(ph * pw))
        .zip(dst.chunks_exact_mut(h * w))
    {
        backward_plane_winners(codes, gp, plane, w, pw);
    }
}
