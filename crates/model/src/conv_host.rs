//! Stride-1 convolutions on the host, image by image, for the CPU backends (see `kernels.rs`).
//!
//! Each image's patch matrix (`[C·kh·kw, OH·OW]`, a few hundred KB at most for our layers) is
//! built in a reused per-thread buffer, so it stays in the core's cache for the matrix product
//! that reads it, and the output comes out in `[N, O, OH, OW]` order with no transpose:
//!
//! - forward: `Y_i = W · P_i + b`, then the [`Epilogue`]: the ReLU in place, and a 2×2
//!   max-pooling of the image while it is in cache, recording each window's winner;
//! - backward, per image: `G_i` = the output gradient (sent to the winners where the epilogue
//!   pooled), masked where the ReLU's output is `<= 0`; `dW += G_i · P_iᵀ`; `db += Σ G_i`;
//!   `dP_i = Wᵀ · G_i`, folded back into the image's gradient (col2im).
//!
//! The backward pass splits the images into contiguous groups of a size that depends only on the
//! batch (at most [`GROUPS`] groups), whatever the thread count; each group sums its weight and
//! bias gradients in image order, and the groups' sums are added in group order, so the result is
//! the same bits on one thread or many.

use rayon::prelude::*;
use std::cell::RefCell;

use crate::matmul::{MatMut, MatRef, matmul};

/// Number of groups the backward pass splits a batch into (fewer for smaller batches).
const GROUPS: usize = 8;

/// The sizes of a stride-1 convolution without dilation or groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvShape {
    /// Input `[N, C, H, W]`.
    pub input: [usize; 4],
    /// Output channels.
    pub out_channels: usize,
    /// Kernel `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Zero padding `[ph, pw]` on each side.
    pub padding: [usize; 2],
}

impl ConvShape {
    /// The output map `[OH, OW]`.
    pub fn output_hw(&self) -> [usize; 2] {
        let [_, _, h, w] = self.input;
        let ([kh, kw], [ph, pw]) = (self.kernel, self.padding);
        [
            (h + 2 * ph + 1).saturating_sub(kh),
            (w + 2 * pw + 1).saturating_sub(kw),
        ]
    }

    /// The output `[N, O, OH, OW]`.
    pub fn output(&self) -> [usize; 4] {
        let [oh, ow] = self.output_hw();
        [self.input[0], self.out_channels, oh, ow]
    }

    /// Rows of a patch matrix (`C·kh·kw`), the weight's row length.
    fn taps(&self) -> usize {
        self.input[1] * self.kernel[0] * self.kernel[1]
    }

    pub(crate) fn image_len(&self) -> usize {
        let [_, c, h, w] = self.input;
        c * h * w
    }

    pub(crate) fn map_len(&self) -> usize {
        let [oh, ow] = self.output_hw();
        oh * ow
    }
}

/// What the kernel applies to the convolution's output before handing it on: a ReLU, then a
/// 2×2 max-pooling with stride 2 (`pool.rs`'s rule), each or both.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Epilogue {
    /// A ReLU on the output.
    pub relu: bool,
    /// A 2×2 max-pooling after it: the kernel's result is the pooled map.
    pub pool: bool,
}

/// What the backward pass needs of the forward pass's epilogue.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kept<'a> {
    /// Nothing: no epilogue.
    Nothing,
    /// The output after its ReLU, whose gradient passes where it is not `<= 0`.
    Output(&'a [f32]),
    /// The pooling's winners, one per window (see `pool::forward_winners`).
    Winners(&'a [u8]),
}

/// Per-thread buffers reused across images and steps: the patch matrix, its gradient, the
/// (masked) output gradient, one image's output where it is pooled before it leaves the kernel,
/// and the pooling's own.
#[derive(Default)]
struct Scratch {
    cols: Vec<f32>,
    dcols: Vec<f32>,
    grad: Vec<f32>,
    output: Vec<f32>,
    pool: crate::pool::PoolScratch,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// `f()` compiled for the widest SIMD instruction set the CPU has (AVX-512, AVX2 or the
/// baseline), chosen at run time: the loops of the functions `f` inlines are vectorized for it.
#[inline(always)]
pub(crate) fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}

/// `buf` resized to `len` (its old values are left: every user overwrites all of it).
pub(crate) fn sized(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

/// Where one row of a patch matrix, tap `(c, ky, kx)`, reads its image: the output columns
/// `x0..x1` and rows `y0..y1` whose input position lies inside the image (the rest is padding).
/// [`patches_into`] and its adjoint [`fold_into`] share it.
struct TapSpan {
    /// The input channel's plane, `c·H·W..(c + 1)·H·W`.
    plane: std::ops::Range<usize>,
    x0: usize,
    x1: usize,
    y0: usize,
    y1: usize,
    /// The input offset within the plane of output position `(0, 0)`, `−(ph − ky)·W − (pw − kx)`
    /// as a wrapping sum: add it to `oy·W + ox` for a valid position.
    shift: usize,
    /// Whether output and input rows have the same length (a size-preserving convolution):
    /// the valid rows are then one shifted block, `y0·OW + x0 .. (y1 − 1)·OW + x1`, whose
    /// wrapped-around columns (`..x0` and `x1..` of each row) lie outside the image.
    block: bool,
}

impl ConvShape {
    /// The span of patch-matrix row `r`.
    #[inline(always)]
    fn tap(&self, r: usize) -> TapSpan {
        let [_, _, h, w] = self.input;
        let ([kh, kw], [ph, pw]) = (self.kernel, self.padding);
        let [oh, ow] = self.output_hw();
        let (ci, ky, kx) = (r / (kh * kw), r / kw % kh, r % kw);
        let x0 = pw.saturating_sub(kx).min(ow);
        let x1 = (w + pw).saturating_sub(kx).clamp(x0, ow);
        let y0 = ph.saturating_sub(ky).min(oh);
        let y1 = (h + ph).saturating_sub(ky).clamp(y0, oh);
        TapSpan {
            plane: ci * h * w..(ci + 1) * h * w,
            x0,
            x1,
            y0,
            y1,
            shift: (ky * w + kx).wrapping_sub(ph * w + pw),
            block: ow == w && x0 < x1 && y0 < y1,
        }
    }
}

impl TapSpan {
    /// The valid block `start..end` of a same-size convolution's row and where it starts in
    /// the plane.
    #[inline(always)]
    fn block_range(&self, ow: usize) -> (usize, usize, usize) {
        let start = self.y0 * ow + self.x0;
        (
            start,
            (self.y1 - 1) * ow + self.x1,
            start.wrapping_add(self.shift),
        )
    }

    /// Zeroes the columns of the valid rows that lie outside the image.
    #[inline(always)]
    fn zero_wrapped(&self, row: &mut [f32], ow: usize) {
        for out in row[self.y0 * ow..self.y1 * ow].chunks_exact_mut(ow) {
            out[..self.x0].fill(0.0);
            out[self.x1..].fill(0.0);
        }
    }

    /// For output row `oy`, where its valid columns `x0..x1` start in the plane, if the row
    /// lies inside the image.
    #[inline(always)]
    fn input_row(&self, oy: usize, w: usize) -> Option<usize> {
        ((self.y0..self.y1).contains(&oy) && self.x0 < self.x1)
            .then(|| (oy * w + self.x0).wrapping_add(self.shift))
    }
}

/// The patch matrix of one image `x` (`[C, H, W]`) into `cols` (`[C·kh·kw, OH·OW]`): row
/// `(c, ky, kx)` holds channel `c` shifted by `(ky − ph, kx − pw)`, zero outside the image.
/// Every value of `cols` is written.
#[inline(always)]
pub(crate) fn patches_into(x: &[f32], s: &ConvShape, cols: &mut [f32]) {
    let [_, _, _, w] = s.input;
    let [oh, ow] = s.output_hw();
    if oh * ow == 0 {
        return;
    }
    for (r, row) in cols.chunks_exact_mut(oh * ow).enumerate() {
        let tap = s.tap(r);
        let plane = &x[tap.plane.clone()];
        if tap.block {
            // The valid rows are one shifted block of the plane (copied at once), then the
            // columns that wrapped around are zeroed.
            let (start, end, src) = tap.block_range(ow);
            row[..start].fill(0.0);
            row[start..end].copy_from_slice(&plane[src..src + end - start]);
            row[end..].fill(0.0);
            tap.zero_wrapped(row, ow);
            continue;
        }
        let (x0, x1) = (tap.x0, tap.x1);
        for (oy, out) in row.chunks_exact_mut(ow).enumerate() {
            match tap.input_row(oy, w) {
                Some(src) => {
                    out[..x0].fill(0.0);
                    out[x0..x1].copy_from_slice(&plane[src..src + x1 - x0]);
                    out[x1..].fill(0.0);
                }
                None => out.fill(0.0),
            }
        }
    }
}

/// The sum of `values` in a fixed order that vectorizes: 16 running sums, added at the end.
#[inline(always)]
fn sum(values: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 16];
    let chunks = values.chunks_exact(16);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (l, v) in lanes.iter_mut().zip(chunk) {
            *l += v;
        }
    }
    lanes.iter().chain(rest).fold(0.0, |a, v| a + v)
}

/// The adjoint of [`patches_into`] (col2im): the patch-matrix gradient `dcols` of one image
/// added into its gradient `dx` (`[C, H, W]`, which must hold zeros), taps in row order.
/// Where rows are copied as one block, `dcols`'s values at positions outside the image are zeroed
/// on the way.
#[inline(always)]
fn fold_into(dcols: &mut [f32], s: &ConvShape, dx: &mut [f32]) {
    let [_, _, _, w] = s.input;
    let [oh, ow] = s.output_hw();
    if oh * ow == 0 {
        return;
    }
    for (r, row) in dcols.chunks_exact_mut(oh * ow).enumerate() {
        let tap = s.tap(r);
        let plane = &mut dx[tap.plane.clone()];
        if tap.block {
            // As in `patches_into`: the valid rows are one shifted block. The columns that wrap
            // around into the neighbouring rows are zeroed first, so they add nothing (`dx`
            // never holds −0, so adding +0 leaves every value's bits as they are).
            tap.zero_wrapped(row, ow);
            let (start, end, dst) = tap.block_range(ow);
            for (d, v) in plane[dst..dst + end - start]
                .iter_mut()
                .zip(&row[start..end])
            {
                *d += v;
            }
            continue;
        }
        let (x0, x1) = (tap.x0, tap.x1);
        for (oy, src) in row.chunks_exact(ow).enumerate() {
            if let Some(dst) = tap.input_row(oy, w) {
                for (d, v) in plane[dst..dst + x1 - x0].iter_mut().zip(&src[x0..x1]) {
                    *d += v;
                }
            }
        }
    }
}

/// ReLU in place, as Burn's: values `<= 0` become 0 (a NaN stays).
#[inline(always)]
pub(crate) fn relu_in_place(y: &mut [f32]) {
    for v in y {
        *v = if *v <= 0.0 { 0.0 } else { *v };
    }
}

/// The sizes of a 2×2 pooling's output of an `[oh, ow]` map.
pub(crate) fn pooled_hw([oh, ow]: [usize; 2]) -> [usize; 2] {
    [oh / 2, ow / 2]
}

/// The convolution of `x` (`[N, C, H, W]`) with `weight` (`[O, C, kh, kw]`) and `bias` (`[O]`),
/// followed by the epilogue: the output `[N, O, OH, OW]` (after the ReLU where there is one)
/// or, where the epilogue pools, its pooling `[N, O, OH/2, OW/2]` and each window's winner,
/// computed image by image while the output is in cache.
pub(crate) fn forward(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    s: &ConvShape,
    epilogue: Epilogue,
) -> (Vec<f32>, Option<Vec<u8>>) {
    if crate::winograd::applies(s) {
        crate::winograd::forward(x, weight, bias, s, epilogue)
    } else {
        forward_patches(x, weight, bias, s, epilogue)
    }
}

/// [`forward`] over each image's patch matrix, for any shape.
pub(crate) fn forward_patches(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    s: &ConvShape,
    epilogue: Epilogue,
) -> (Vec<f32>, Option<Vec<u8>>) {
    let (o, taps, ohw) = (s.out_channels, s.taps(), s.map_len());
    let [n, ..] = s.input;
    let [oh, ow] = s.output_hw();
    let [ph, pw] = pooled_hw([oh, ow]);
    // One image: its output `y` (starting as the bias) plus the product, then the ReLU.
    let image = |y: &mut [f32], x: &[f32], cols: &mut Vec<f32>| {
        for (row, &b) in y.chunks_exact_mut(ohw.max(1)).zip(bias) {
            row.fill(b);
        }
        let cols = sized(cols, taps * ohw);
        vectorized(
            #[inline(always)]
            || patches_into(x, s, cols),
        );
        matmul(
            MatMut::rows(y, o, ohw),
            MatRef::rows(weight, o, taps),
            MatRef::rows(cols, taps, ohw),
            true,
        );
        if epilogue.relu {
            vectorized(
                #[inline(always)]
                || relu_in_place(y),
            );
        }
    };
    let image_len = s.image_len();
    let input = |i: usize| &x[i * image_len..(i + 1) * image_len];
    if !epilogue.pool {
        let mut out = vec![0.0f32; n * o * ohw];
        if !out.is_empty() {
            out.par_chunks_mut(o * ohw).enumerate().for_each(|(i, y)| {
                SCRATCH.with_borrow_mut(|scratch| image(y, input(i), &mut scratch.cols))
            });
        }
        return (out, None);
    }
    // The output of one image at a time, in a per-thread buffer, pooled on the spot.
    let mut pooled = vec![0.0f32; n * o * ph * pw];
    let mut winners = vec![0u8; n * o * ph * pw];
    if pooled.is_empty() {
        return (pooled, Some(winners));
    }
    pooled
        .par_chunks_mut(o * ph * pw)
        .zip(winners.par_chunks_mut(o * ph * pw))
        .enumerate()
        .for_each(|(i, (p, k))| {
            SCRATCH.with_borrow_mut(|scratch| {
                let Scratch {
                    cols, output, pool, ..
                } = scratch;
                let y = sized(output, o * ohw);
                image(y, input(i), cols);
                vectorized(
                    #[inline(always)]
                    || {
                        let relu = epilogue.relu;
                        crate::pool::forward_winners(y, [o, oh, ow], p, k, relu, pool);
                    },
                );
            })
        });
    (pooled, Some(winners))
}

/// Gradients of [`forward`]: `(dx, dweight, dbias)` given the gradient `grad` of its result (the
/// pooled map where the epilogue pools, else the output), with `dx` only where `input_grad`.
/// `kept` is what the epilogue kept: the pooling's gradient goes to each window's winner, and
/// the ReLU's passes where the output is not `<= 0`, as Burn's do.
pub(crate) fn backward(
    x: &[f32],
    weight: &[f32],
    kept: Kept<'_>,
    grad: &[f32],
    s: &ConvShape,
    input_grad: bool,
) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    if crate::winograd::applies(s) {
        crate::winograd::backward(x, weight, kept, grad, s, input_grad)
    } else {
        backward_patches(x, weight, kept, grad, s, input_grad)
    }
}

/// [`backward`] over each image's patch matrix, for any shape.
pub(crate) fn backward_patches(
    x: &[f32],
    weight: &[f32],
    kept: Kept<'_>,
    grad: &[f32],
    s: &ConvShape,
    input_grad: bool,
) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    let images = Images {
        x,
        weight,
        kept,
        grad,
        s,
    };
    by_groups(s, s.out_channels * s.taps(), input_grad, |first, dx| {
        group_grads(&images, first, dx)
    })
}

/// Runs `group(first, dx)` for every group of the backward pass (images `first..` up to the
/// group's size, their input gradients into `dx` where `input_grad`), in parallel, and adds the
/// groups' `weights` weight gradients and bias gradients in group order: `(dx, dweight,
/// dbias)`, the same bits on any number of threads.
pub(crate) fn by_groups(
    s: &ConvShape,
    weights: usize,
    input_grad: bool,
    group: impl Fn(usize, Option<&mut [f32]>) -> (Vec<f32>, Vec<f32>) + Sync,
) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    let (image, [n, ..]) = (s.image_len(), s.input);
    let per = group_size(n);
    let mut dx = vec![0.0f32; if input_grad { n * image } else { 0 }];
    let partial: Vec<(Vec<f32>, Vec<f32>)> = if input_grad && image > 0 {
        dx.par_chunks_mut(per * image)
            .enumerate()
            .map(|(g, dx)| group(g * per, Some(dx)))
            .collect()
    } else {
        (0..n.div_ceil(per))
            .into_par_iter()
            .map(|g| group(g * per, None))
            .collect()
    };
    let (mut dw, mut db) = (vec![0.0f32; weights], vec![0.0f32; s.out_channels]);
    for (pw, pb) in &partial {
        for (d, v) in dw.iter_mut().zip(pw) {
            *d += v;
        }
        for (d, v) in db.iter_mut().zip(pb) {
            *d += v;
        }
    }
    (input_grad.then_some(dx), dw, db)
}

/// Images per group of the backward pass: a batch of `n` in at most [`GROUPS`] groups.
pub(crate) fn group_size(n: usize) -> usize {
    n.div_ceil(GROUPS.min(n).max(1)).max(1)
}

/// A backward pass's inputs (see [`backward`]).
struct Images<'a> {
    x: &'a [f32],
    weight: &'a [f32],
    kept: Kept<'a>,
    grad: &'a [f32],
    s: &'a ConvShape,
}

/// The gradient `g` (`[O, OH, OW]`) of image `i`'s convolution output, before its epilogue,
/// from the gradient `grad` of the batch's result: sent to each pooling window's winner, masked
/// where the ReLU's output is `<= 0`, as Burn's; its sum per channel added to `db`.
#[inline(always)]
pub(crate) fn output_grad(
    kept: Kept<'_>,
    grad: &[f32],
    i: usize,
    s: &ConvShape,
    g: &mut [f32],
    db: &mut [f32],
    pool: &mut crate::pool::PoolScratch,
) {
    let (o, ohw) = (s.out_channels, s.map_len());
    let [oh, ow] = s.output_hw();
    let [ph, pw] = pooled_hw([oh, ow]);
    match kept {
        Kept::Winners(winners) => {
            let gi = &grad[i * o * ph * pw..(i + 1) * o * ph * pw];
            let ki = &winners[i * o * ph * pw..(i + 1) * o * ph * pw];
            crate::pool::backward_winners(ki, gi, g, [o, oh, ow], pool);
        }
        Kept::Output(y) => {
            let yi = &y[i * o * ohw..(i + 1) * o * ohw];
            let gi = &grad[i * o * ohw..(i + 1) * o * ohw];
            for ((d, &v), &y) in g.iter_mut().zip(gi).zip(yi) {
                *d = if y <= 0.0 { 0.0 } else { v };
            }
        }
        Kept::Nothing => g.copy_from_slice(&grad[i * o * ohw..(i + 1) * o * ohw]),
    }
    for (d, row) in db.iter_mut().zip(g.chunks_exact(ohw.max(1))) {
        *d += sum(row);
    }
}

/// The weight and bias gradients of the images from `first` on (as many as `dx` holds, or up to
/// a group's size without `dx`), and their input gradients into `dx`.
fn group_grads(
    images: &Images<'_>,
    first: usize,
    mut dx: Option<&mut [f32]>,
) -> (Vec<f32>, Vec<f32>) {
    let &Images {
        x,
        weight,
        kept,
        grad,
        s,
    } = images;
    let (o, taps, ohw, image) = (s.out_channels, s.taps(), s.map_len(), s.image_len());
    let [n, ..] = s.input;
    let count = group_size(n).min(n - first);
    let mut dw = vec![0.0f32; o * taps];
    let mut db = vec![0.0f32; o];
    SCRATCH.with_borrow_mut(|scratch| {
        let Scratch {
            cols,
            dcols,
            grad: g,
            pool,
            ..
        } = scratch;
        let cols = sized(cols, taps * ohw);
        let dcols = sized(dcols, taps * ohw);
        let g = sized(g, o * ohw);
        for (k, i) in (first..first + count).enumerate() {
            vectorized(
                #[inline(always)]
                || {
                    output_grad(kept, grad, i, s, g, &mut db, pool);
                    patches_into(&x[i * image..(i + 1) * image], s, cols);
                },
            );
            matmul(
                MatMut::rows(&mut dw, o, taps),
                MatRef::rows(g, o, ohw),
                MatRef::transposed(cols, ohw, taps),
                k > 0,
            );
            if let Some(dx) = dx.as_deref_mut() {
                matmul(
                    MatMut::rows(dcols, taps, ohw),
                    MatRef::transposed(weight, taps, o),
                    MatRef::rows(g, o, ohw),
                    false,
                );
                vectorized(
                    #[inline(always)]
                    || fold_into(dcols, s, &mut dx[k * image..(k + 1) * image]),
                );
            }
        }
    });
    (dw, db)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Milliseconds per call of `f`, the median of `reps` calls after one untimed call.
    fn time_ms(reps: usize, mut f: impl FnMut()) -> f64 {
        f();
        let mut ms: Vec<f64> = (0..reps)
            .map(|_| {
                let t = std::time::Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        ms.sort_by(f64::total_cmp);
        ms[reps / 2]
    }

    /// Deterministic values in [-1, 1).
    fn values(len: usize, salt: u32) -> Vec<f32> {
        (0..len as u32)
            .map(|i| {
                let h = (i ^ salt.wrapping_mul(0x9e37_79b9)).wrapping_mul(0x85eb_ca6b);
                (h >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// Where a training step of the reference CNN spends its time on one thread: each
    /// convolution's forward and backward pass at batch 64 (FLOP/s counted as a direct
    /// convolution's), and the products of fc1's forward and backward passes. Not a check: `cargo test --release -p model --features flex --
    /// --ignored --nocapture kernel_timings`.
    #[test]
    #[ignore = "a measurement, run by hand"]
    fn kernel_timings() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let reps = 15;
        pool.install(|| {
            // The reference CNN's convolutions, conv2 at widths ×2 and ×4, and a layer of the
            // study's plain CNN (16 channels on 28×28, ReLU only), each over patch matrices and,
            // where it applies, by Winograd's F(2×2, 3×3), interleaved.
            for (name, input, o, pool) in [
                ("conv1", [64, 1, 28, 28], 32, true),
                ("conv2", [64, 32, 14, 14], 64, true),
                ("conv2 ×2", [64, 64, 14, 14], 128, true),
                ("conv2 ×4", [64, 128, 14, 14], 256, true),
                ("plain", [64, 16, 28, 28], 16, false),
            ] {
                let s = ConvShape {
                    input,
                    out_channels: o,
                    kernel: [3, 3],
                    padding: [1, 1],
                };
                let flops = 2.0 * (s.taps() * o * s.map_len() * input[0]) as f64;
                let x = values(input.iter().product(), 1);
                let w = values(o * s.taps(), 2);
                let b = values(o, 3);
                let epilogue = Epilogue { relu: true, pool };
                let input_grad = name != "conv1";
                let products = if input_grad { 2.0 } else { 1.0 };
                let winograd = crate::winograd::applies(&s);
                for (path, fast) in [("patches", false), ("winograd", true)] {
                    if fast && !winograd {
                        continue;
                    }
                    let fwd_fn = || {
                        if fast {
                            crate::winograd::forward(&x, &w, &b, &s, epilogue)
                        } else {
                            forward_patches(&x, &w, &b, &s, epilogue)
                        }
                    };
                    let (y, winners) = fwd_fn();
                    let g = values(y.len(), 4);
                    let kept = match &winners {
                        Some(k) => Kept::Winners(k),
                        None => Kept::Output(&y),
                    };
                    let fwd = time_ms(reps, || {
                        std::hint::black_box(fwd_fn());
                    });
                    let bwd = time_ms(reps, || {
                        std::hint::black_box(if fast {
                            crate::winograd::backward(&x, &w, kept, &g, &s, input_grad)
                        } else {
                            backward_patches(&x, &w, kept, &g, &s, input_grad)
                        });
                    });
                    println!(
                        "{name} ({path}): forward {fwd:.2} ms ({:.1} GFLOP/s), backward \
                         {bwd:.2} ms ({:.1} GFLOP/s)",
                        flops / fwd / 1e6,
                        products * flops / bwd / 1e6
                    );
                }
            }
            // conv2's products one image at a time against a group of 8 images at once.
            let (o, taps, ohw) = (64, 288, 196);
            for per in [1, 8] {
                let cols = values(taps * ohw * per, 8);
                let w = values(o * taps, 9);
                let g = values(o * ohw * per, 10);
                let mut y = vec![0.0; o * ohw * per];
                let mut dw = vec![0.0; o * taps];
                let mut dcols = vec![0.0; taps * ohw * per];
                let calls = 64 / per;
                let flops = 2.0 * (o * taps * ohw * 64) as f64;
                let fwd = time_ms(reps, || {
                    for _ in 0..calls {
                        matmul(
                            MatMut::rows(&mut y, o, ohw * per),
                            MatRef::rows(&w, o, taps),
                            MatRef::rows(&cols, taps, ohw * per),
                            true,
                        )
                    }
                });
                let dwt = time_ms(reps, || {
                    for _ in 0..calls {
                        matmul(
                            MatMut::rows(&mut dw, o, taps),
                            MatRef::rows(&g, o, ohw * per),
                            MatRef::transposed(&cols, ohw * per, taps),
                            true,
                        )
                    }
                });
                let dpt = time_ms(reps, || {
                    for _ in 0..calls {
                        matmul(
                            MatMut::rows(&mut dcols, taps, ohw * per),
                            MatRef::transposed(&w, taps, o),
                            MatRef::rows(&g, o, ohw * per),
                            false,
                        )
                    }
                });
                println!(
                    "conv2 products, {per} image(s) per product: forward {fwd:.2} ms ({:.1} \
                     GFLOP/s), weight gradient {dwt:.2} ms ({:.1}), patch gradient {dpt:.2} ms \
                     ({:.1})",
                    flops / fwd / 1e6,
                    flops / dwt / 1e6,
                    flops / dpt / 1e6
                );
            }
            let (n, k, m) = (64, 3136, 128);
            let x = values(n * k, 5);
            let w = values(k * m, 6);
            let g = values(n * m, 7);
            let mut y = vec![0.0; n * m];
            let mut dw = vec![0.0; k * m];
            let mut dx = vec![0.0; n * k];
            let flops = 2.0 * (n * k * m) as f64;
            let fwd = time_ms(reps, || {
                matmul(
                    MatMut::rows(&mut y, n, m),
                    MatRef::rows(&x, n, k),
                    MatRef::rows(&w, k, m),
                    false,
                )
            });
            let dwt = time_ms(reps, || {
                matmul(
                    MatMut::rows(&mut dw, k, m),
                    MatRef::transposed(&x, k, n),
                    MatRef::rows(&g, n, m),
                    false,
                )
            });
            let dxt = time_ms(reps, || {
                matmul(
                    MatMut::rows(&mut dx, n, k),
                    MatRef::rows(&g, n, m),
                    MatRef::transposed(&w, m, k),
                    false,
                )
            });
            println!(
                "fc1 products: forward {fwd:.2} ms ({:.1} GFLOP/s), weight gradient {dwt:.2} ms \
                 ({:.1}), input gradient {dxt:.2} ms ({:.1})",
                flops / fwd / 1e6,
                flops / dwt / 1e6,
                flops / dxt / 1e6
            );
        });
    }
}
