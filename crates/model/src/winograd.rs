//! 3×3 "same" convolutions by Winograd's minimal filtering F(2×2, 3×3) (Lavin and Gray 2016,
//! "Fast Algorithms for Convolutional Neural Networks"), forward and backward, for the host
//! kernels of `conv_host.rs`.
//!
//! Each 2×2 block of outputs is computed from the 4×4 block of input around it as
//! `Y = Aᵀ [Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B)] A`: 16 multiplications per input channel instead of
//! 36, so the three matrix products of a training step (output, weight gradient, input gradient)
//! do 2.25× fewer multiply-adds than over a patch matrix. With the transformed filters `U[ξ]`
//! (`[C, O]` for each of the 16 positions `ξ` of a tile) and the transformed input tiles `V[ξ]`
//! (`[T, C]` for `T` tiles), a group of images takes 16 matrix products:
//!
//! - forward: `M[ξ] = V[ξ] · U[ξ]`, then `Y = Aᵀ M A` tile by tile;
//! - backward: `dM = A dY Aᵀ` tile by tile, `dU[ξ] += V[ξ]ᵀ · dM[ξ]` and
//!   `dV[ξ] = dM[ξ] · U[ξ]ᵀ`, then the filters' gradient `Gᵀ dU G` and the input's, `B dV Bᵀ`
//!   added tile by tile into the image (neighbouring tiles overlap by two rows or columns).
//!
//! The backward pass is the exact adjoint of the forward pass, so the gradients are those of the
//! function the forward pass computes. The transforms work on channel-last copies of each image
//! (a tile's position holds all channels side by side), so they run in SIMD lanes over channels.
//! Tiles, images and groups are visited in an order that depends only on the shapes, so results
//! are the same bits on any number of threads.
//!
//! Used for 3×3 kernels with padding 1 on maps of even height and width, with enough channels
//! for the products to pay for the transforms ([`applies`]).

use rayon::prelude::*;
use std::cell::RefCell;

use crate::conv_host::{
    ConvShape, Epilogue, Kept, by_groups, group_size, output_grad, relu_in_place, sized, vectorized,
};
use crate::matmul::{MatMut, MatRef, matmul};
use pulp::{Simd, WithSimd};

/// Positions of a transformed 4×4 tile.
const XI: usize = 16;
/// Fewest input and output channels for which the transforms pay off.
const MIN_CHANNELS: usize = 8;
/// Tiles per group of products: images are taken together up to about this many tiles.
const TILES_PER_PRODUCT: usize = 196;

/// Whether `s` is computed by Winograd's F(2×2, 3×3) here: a 3×3 kernel with padding 1 (the
/// output the size of the input) on maps of even height and width, with at least
/// [`MIN_CHANNELS`] input and output channels.
pub(crate) fn applies(s: &ConvShape) -> bool {
    let [_, c, h, w] = s.input;
    s.kernel == [3, 3]
        && s.padding == [1, 1]
        && h >= 2
        && w >= 2
        && h % 2 == 0
        && w % 2 == 0
        && c >= MIN_CHANNELS
        && s.out_channels >= MIN_CHANNELS
}

/// The tiles of one image, `[H/2, W/2]`.
fn tiles([_, _, h, w]: [usize; 4]) -> (usize, usize) {
    (h / 2, w / 2)
}

/// Images taken together in one group of products: enough for about [`TILES_PER_PRODUCT`]
/// tiles, at most `limit`.
fn images_per_product(s: &ConvShape, limit: usize) -> usize {
    let (th, tw) = tiles(s.input);
    (TILES_PER_PRODUCT / (th * tw).max(1)).clamp(1, limit.max(1))
}

/// Per-thread buffers: the transformed tiles, the products, their gradients, channel-last
/// copies of an image, one image's output gradient, and the pooling's buffers.
#[derive(Default)]
struct Scratch {
    v: Vec<f32>,
    m: Vec<f32>,
    dv: Vec<f32>,
    last: Buffers,
    grad: Vec<f32>,
    pool: crate::pool::PoolScratch,
}

/// One image channel last: with a zero border, and without.
#[derive(Default)]
struct Buffers {
    padded: Vec<f32>,
    plain: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// The transformed filters `U` (`[16, C, O]`) of `weight` (`[O, C, 3, 3]`): `G g Gᵀ` with
/// `G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]`.
fn transform_weights(weight: &[f32], o: usize, c: usize) -> Vec<f32> {
    let mut u = vec![0.0f32; XI * c * o];
    let g4 = |a: [f32; 3]| {
        [
            a[0],
            (a[0] + a[1] + a[2]) * 0.5,
            (a[0] - a[1] + a[2]) * 0.5,
            a[2],
        ]
    };
    for (oc, g) in weight.chunks_exact(9).enumerate() {
        let (oo, ci) = (oc / c, oc % c);
        // Columns first (G applied down each column), then rows.
        let cols: [[f32; 4]; 3] = std::array::from_fn(|j| g4([g[j], g[3 + j], g[6 + j]]));
        for i in 0..4 {
            let row = g4([cols[0][i], cols[1][i], cols[2][i]]);
            for (j, v) in row.into_iter().enumerate() {
                u[((i * 4 + j) * c + ci) * o + oo] = v;
            }
        }
    }
    u
}

/// The adjoint of [`transform_weights`]: the filters' gradient (`[O, C, 3, 3]`) from the
/// transformed filters' (`[16, C, O]`), `Gᵀ dU G`.
fn weights_gradient(du: &[f32], o: usize, c: usize) -> Vec<f32> {
    let gt = |u: [f32; 4]| {
        [
            u[0] + (u[1] + u[2]) * 0.5,
            (u[1] - u[2]) * 0.5,
            (u[1] + u[2]) * 0.5 + u[3],
        ]
    };
    let mut dw = vec![0.0f32; o * c * 9];
    for (oc, d) in dw.chunks_exact_mut(9).enumerate() {
        let (oo, ci) = (oc / c, oc % c);
        let at = |i: usize, j: usize| du[((i * 4 + j) * c + ci) * o + oo];
        // Rows first (Gᵀ along each row), then columns.
        let rows: [[f32; 3]; 4] = std::array::from_fn(|i| gt(std::array::from_fn(|j| at(i, j))));
        for j in 0..3 {
            let col = gt([rows[0][j], rows[1][j], rows[2][j], rows[3][j]]);
            for (i, v) in col.into_iter().enumerate() {
                d[i * 3 + j] = v;
            }
        }
    }
    dw
}

/// A group of products' layout: `T` tiles in all, `[TH, TW]` tiles per image.
#[derive(Clone, Copy)]
struct Tiles {
    t: usize,
    th: usize,
    tw: usize,
}

impl Tiles {
    fn per_image(&self) -> usize {
        self.th * self.tw
    }
}

/// `dst = srcᵀ`: `dst[j · rows + i] = src[i · cols + j]` for the `rows × cols` row-major `src`,
/// in blocks of 16 × 16 held in registers.
#[inline(always)]
fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    const B: usize = 16;
    let (full_rows, full_cols) = (rows / B * B, cols / B * B);
    for i0 in (0..full_rows).step_by(B) {
        for j0 in (0..full_cols).step_by(B) {
            let mut block = [[0.0f32; B]; B];
            for (i, r) in block.iter_mut().enumerate() {
                r.copy_from_slice(&src[(i0 + i) * cols + j0..][..B]);
            }
            for j in 0..B {
                let d = &mut dst[(j0 + j) * rows + i0..][..B];
                for (i, v) in d.iter_mut().enumerate() {
                    *v = block[i][j];
                }
            }
        }
        for j in full_cols..cols {
            for i in i0..i0 + B {
                dst[j * rows + i] = src[i * cols + j];
            }
        }
    }
    for i in full_rows..rows {
        for j in 0..cols {
            dst[j * rows + i] = src[i * cols + j];
        }
    }
}

/// One image `x` (`[C, H, W]`) channel last with a zero border: `[H + 2, W + 2, C]`, through
/// `tmp`.
#[inline(always)]
fn channel_last_padded(x: &[f32], c: usize, h: usize, w: usize, out: &mut [f32], tmp: &mut [f32]) {
    let pw = w + 2;
    transpose(x, c, h * w, tmp);
    out[..(pw + 1) * c].fill(0.0);
    for y in 0..h {
        let row = &mut out[((y + 1) * pw + 1) * c..];
        row[..w * c].copy_from_slice(&tmp[y * w * c..(y + 1) * w * c]);
        row[w * c..(w + 2) * c].fill(0.0);
    }
    out[((h + 1) * pw + 1) * c..].fill(0.0);
}

/// The values `s` (at most one register's) as a register, zero-filled.
#[inline(always)]
fn load<S: Simd>(simd: S, s: &[f32]) -> S::f32s {
    if s.len() == S::F32_LANES {
        S::as_simd_f32s(s).0[0]
    } else {
        simd.partial_load_f32s(s)
    }
}

/// A register's first `s.len()` values into `s`.
#[inline(always)]
fn store<S: Simd>(simd: S, s: &mut [f32], v: S::f32s) {
    if s.len() == S::F32_LANES {
        S::as_mut_simd_f32s(s).0[0] = v;
    } else {
        simd.partial_store_f32s(s, v);
    }
}

/// `Bᵀ d B` of a register of tiles (positions in row order), with
/// `Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]`.
#[inline(always)]
fn bt_d_b<S: Simd>(simd: S, d: [S::f32s; 16]) -> [S::f32s; 16] {
    let (add, sub) = (|a, b| simd.add_f32s(a, b), |a, b| simd.sub_f32s(a, b));
    let mut a = d;
    for j in 0..4 {
        a[j] = sub(d[j], d[8 + j]);
        a[4 + j] = add(d[4 + j], d[8 + j]);
        a[8 + j] = sub(d[8 + j], d[4 + j]);
        a[12 + j] = sub(d[4 + j], d[12 + j]);
    }
    let mut out = a;
    for r in [0, 4, 8, 12] {
        out[r] = sub(a[r], a[r + 2]);
        out[r + 1] = add(a[r + 1], a[r + 2]);
        out[r + 2] = sub(a[r + 2], a[r + 1]);
        out[r + 3] = sub(a[r + 1], a[r + 3]);
    }
    out
}

/// `B e Bᵀ`: the adjoint of [`bt_d_b`].
#[inline(always)]
fn b_e_bt<S: Simd>(simd: S, e: [S::f32s; 16]) -> [S::f32s; 16] {
    let (add, sub) = (|a, b| simd.add_f32s(a, b), |a, b| simd.sub_f32s(a, b));
    let mut a = e;
    for j in 0..4 {
        a[4 + j] = add(sub(e[4 + j], e[8 + j]), e[12 + j]);
        a[8 + j] = sub(add(e[4 + j], e[8 + j]), e[j]);
        a[12 + j] = simd.neg_f32s(e[12 + j]);
    }
    let mut out = a;
    for r in [0, 4, 8, 12] {
        out[r + 1] = add(sub(a[r + 1], a[r + 2]), a[r + 3]);
        out[r + 2] = sub(add(a[r + 1], a[r + 2]), a[r]);
        out[r + 3] = simd.neg_f32s(a[r + 3]);
    }
    out
}

/// `Aᵀ m A`, with `Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]`: the 2×2 outputs in row order.
#[inline(always)]
fn at_m_a<S: Simd>(simd: S, m: [S::f32s; 16]) -> [S::f32s; 4] {
    let (add, sub) = (|a, b| simd.add_f32s(a, b), |a, b| simd.sub_f32s(a, b));
    let (mut s0, mut s1) = ([m[0]; 4], [m[0]; 4]);
    for j in 0..4 {
        s0[j] = add(add(m[j], m[4 + j]), m[8 + j]);
        s1[j] = sub(sub(m[4 + j], m[8 + j]), m[12 + j]);
    }
    [
        add(add(s0[0], s0[1]), s0[2]),
        sub(sub(s0[1], s0[2]), s0[3]),
        add(add(s1[0], s1[1]), s1[2]),
        sub(sub(s1[1], s1[2]), s1[3]),
    ]
}

/// `A g Aᵀ` of the 2×2 output gradients (row order): the adjoint of [`at_m_a`].
#[inline(always)]
fn a_g_at<S: Simd>(simd: S, g: [S::f32s; 4]) -> [S::f32s; 16] {
    let (add, sub) = (|a, b| simd.add_f32s(a, b), |a, b| simd.sub_f32s(a, b));
    // A = [[1, 0], [1, 1], [1, −1], [0, −1]] down the columns, then along the rows.
    let c = [
        g[0],
        g[1],
        add(g[0], g[2]),
        add(g[1], g[3]),
        sub(g[0], g[2]),
        sub(g[1], g[3]),
        simd.neg_f32s(g[2]),
        simd.neg_f32s(g[3]),
    ];
    let mut out = [g[0]; 16];
    for i in 0..4 {
        let (a, b) = (c[2 * i], c[2 * i + 1]);
        out[4 * i] = a;
        out[4 * i + 1] = add(a, b);
        out[4 * i + 2] = sub(a, b);
        out[4 * i + 3] = simd.neg_f32s(b);
    }
    out
}

/// One image's part of a group of products, with the widest SIMD the CPU has: its tiles, its
/// output, or their gradients (see [`Pass::run`]).
enum Pass<'a> {
    /// The transformed tiles of image `x`.
    Tiles { x: &'a [f32], v: &'a mut [f32] },
    /// The output `y` (`[O, H, W]`) from the products `m`, plus `bias`.
    Output {
        m: &'a [f32],
        bias: &'a [f32],
        y: &'a mut [f32],
    },
    /// The output plus `bias`, after a ReLU where `relu`, max-pooled 2×2 (each tile is one
    /// window) into `pooled` (`[O, H/2, W/2]`) with each window's winner, as
    /// `pool::forward_winners` records them.
    Pooled {
        m: &'a [f32],
        bias: &'a [f32],
        relu: bool,
        pooled: &'a mut [f32],
        winners: &'a mut [u8],
    },
    /// The products' gradient `dm` from the output gradient `g` (`[O, H, W]`).
    OutputGrad { g: &'a [f32], dm: &'a mut [f32] },
    /// The image's gradient `dx` (`[C, H, W]`) from the tiles' gradient `dv`.
    InputGrad { dv: &'a [f32], dx: &'a mut [f32] },
}

/// Where a [`Pass`] works: the image's tiles are rows `first..first + TH·TW` of a group's
/// `T` rows, its channels `c` in and `o` out.
#[derive(Clone, Copy)]
struct At {
    tl: Tiles,
    first: usize,
    c: usize,
    o: usize,
}

impl Pass<'_> {
    /// Runs the pass on image tiles `at`, with `last` for its channel-last copies.
    #[inline(always)]
    fn run(self, at: At, last: &mut Buffers) {
        struct Op<'a, 'b>(Pass<'a>, At, &'b mut Buffers);
        impl WithSimd for Op<'_, '_> {
            type Output = ();
            #[inline(always)]
            fn with_simd<S: Simd>(self, simd: S) {
                let Op(pass, at, last) = self;
                match pass {
                    Pass::Tiles { x, v } => input_tiles(simd, x, at, v, last),
                    Pass::Output { m, bias, y } => output_tiles(simd, m, at, bias, y, last),
                    Pass::Pooled {
                        m,
                        bias,
                        relu,
                        pooled,
                        winners,
                    } => pooled_tiles(simd, m, at, bias, relu, (pooled, winners), last),
                    Pass::OutputGrad { g, dm } => output_grad_tiles(simd, g, at, dm, last),
                    Pass::InputGrad { dv, dx } => input_grad_tiles(simd, dv, at, dx, last),
                }
            }
        }
        pulp::Arch::new().dispatch(Op(self, at, last));
    }
}

/// The channel chunks of one register: `(start, len)` over `0..n`.
#[inline(always)]
fn chunks<S: Simd>(n: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n)
        .step_by(S::F32_LANES)
        .map(move |c0| (c0, S::F32_LANES.min(n - c0)))
}

/// The transformed tiles `Bᵀ d B` of one image `x` (`[C, H, W]`) into its rows of `v`
/// (`[T, 16, C]`). Tile `(ty, tx)` is the input around outputs `2ty..2ty + 2`, `2tx..2tx + 2`:
/// rows `2ty − 1..2ty + 3` and columns `2tx − 1..2tx + 3`, zero outside the image.
#[inline(always)]
fn input_tiles<S: Simd>(simd: S, x: &[f32], at: At, v: &mut [f32], last: &mut Buffers) {
    let (th, tw, c) = (at.tl.th, at.tl.tw, at.c);
    let pw = 2 * tw + 2;
    let xt = sized(&mut last.padded, (2 * th + 2) * pw * c);
    let tmp = sized(&mut last.plain, 4 * th * tw * c);
    channel_last_padded(x, c, 2 * th, 2 * tw, xt, tmp);
    for ty in 0..th {
        for tx in 0..tw {
            let out = &mut v[(at.first + ty * tw + tx) * XI * c..][..XI * c];
            let pos = |k: usize| ((2 * ty + k / 4) * pw + 2 * tx + k % 4) * c;
            for (c0, len) in chunks::<S>(c) {
                let mut d = [simd.splat_f32s(0.0); 16];
                for (k, r) in d.iter_mut().enumerate() {
                    *r = load(simd, &xt[pos(k) + c0..][..len]);
                }
                for (xi, r) in bt_d_b(simd, d).into_iter().enumerate() {
                    store(simd, &mut out[xi * c + c0..][..len], r);
                }
            }
        }
    }
}

/// One image's output `y` (`[O, H, W]`, every value written) from its rows of the products `m`
/// (`[T, 16, O]`): `Aᵀ M A + bias`, through a channel-last buffer.
#[inline(always)]
fn output_tiles<S: Simd>(
    simd: S,
    m: &[f32],
    at: At,
    bias: &[f32],
    y: &mut [f32],
    last: &mut Buffers,
) {
    let (th, tw, o) = (at.tl.th, at.tl.tw, at.o);
    let (h, w) = (2 * th, 2 * tw);
    let yt = sized(&mut last.plain, h * w * o);
    for ty in 0..th {
        for tx in 0..tw {
            let src = &m[(at.first + ty * tw + tx) * XI * o..][..XI * o];
            let pos = |k: usize| ((2 * ty + k / 2) * w + 2 * tx + k % 2) * o;
            for (o0, len) in chunks::<S>(o) {
                let mut e = [simd.splat_f32s(0.0); 16];
                for (xi, r) in e.iter_mut().enumerate() {
                    *r = load(simd, &src[xi * o + o0..][..len]);
                }
                for (k, r) in at_m_a(simd, e).into_iter().enumerate() {
                    store(simd, &mut yt[pos(k) + o0..][..len], r);
                }
            }
        }
    }
    transpose(yt, h * w, o, y);
    for (plane, &b) in y.chunks_exact_mut(h * w).zip(bias) {
        for v in plane {
            *v += b;
        }
    }
}

/// [`output_tiles`] followed by a ReLU (where `relu`) and a 2×2 max-pooling, without the
/// full-size output: each tile's four outputs are one pooling window, pooled in the tile loop by
/// `pool.rs`'s rule (the first maximum; a NaN wins) with its winner's index, or
/// [`crate::pool::MASKED`] where the ReLU stops the gradient. The same values and winners as
/// the output, ReLU and pooling applied one after the other.
#[inline(always)]
fn pooled_tiles<S: Simd>(
    simd: S,
    m: &[f32],
    at: At,
    bias: &[f32],
    relu: bool,
    (pooled, winners): (&mut [f32], &mut [u8]),
    last: &mut Buffers,
) {
    let (windows, o) = (at.tl.per_image(), at.o);
    let values = sized(&mut last.plain, windows * o);
    let codes = sized(&mut last.padded, windows * o);
    let zero = simd.splat_f32s(0.0);
    let masked = simd.splat_f32s(f32::from(crate::pool::MASKED));
    for q in 0..windows {
        let src = &m[(at.first + q) * XI * o..][..XI * o];
        for (o0, len) in chunks::<S>(o) {
            let mut e = [zero; 16];
            for (xi, r) in e.iter_mut().enumerate() {
                *r = load(simd, &src[xi * o + o0..][..len]);
            }
            let b = load(simd, &bias[o0..o0 + len]);
            let mut v = at_m_a(simd, e);
            for r in &mut v {
                *r = simd.add_f32s(*r, b);
                if relu {
                    *r = simd.select_f32s(simd.less_than_or_equal_f32s(*r, zero), zero, *r);
                }
            }
            let (mut best, mut code) = (v[0], zero);
            for (k, &x) in v.iter().enumerate().skip(1) {
                let nan = simd.not_m32s(simd.equal_f32s(x, x));
                let take = simd.or_m32s(simd.greater_than_f32s(x, best), nan);
                best = simd.select_f32s(take, x, best);
                code = simd.select_f32s(take, simd.splat_f32s(k as f32), code);
            }
            if relu {
                code = simd.select_f32s(simd.less_than_or_equal_f32s(best, zero), masked, code);
            }
            store(simd, &mut values[q * o + o0..][..len], best);
            store(simd, &mut codes[q * o + o0..][..len], code);
        }
    }
    transpose(values, windows, o, pooled);
    for (oc, plane) in winners.chunks_exact_mut(windows).enumerate() {
        for (q, w) in plane.iter_mut().enumerate() {
            *w = codes[q * o + oc] as u8;
        }
    }
}

/// The adjoint of [`output_tiles`] (without the bias): the products' gradient `A dY Aᵀ` of one
/// image's output gradient `g` (`[O, H, W]`) into its rows of `dm` (`[T, 16, O]`).
#[inline(always)]
fn output_grad_tiles<S: Simd>(simd: S, g: &[f32], at: At, dm: &mut [f32], last: &mut Buffers) {
    let (th, tw, o) = (at.tl.th, at.tl.tw, at.o);
    let (h, w) = (2 * th, 2 * tw);
    let gt = sized(&mut last.plain, h * w * o);
    transpose(g, o, h * w, gt);
    for ty in 0..th {
        for tx in 0..tw {
            let out = &mut dm[(at.first + ty * tw + tx) * XI * o..][..XI * o];
            let pos = |k: usize| ((2 * ty + k / 2) * w + 2 * tx + k % 2) * o;
            for (o0, len) in chunks::<S>(o) {
                let mut gk = [simd.splat_f32s(0.0); 4];
                for (k, r) in gk.iter_mut().enumerate() {
                    *r = load(simd, &gt[pos(k) + o0..][..len]);
                }
                for (xi, r) in a_g_at(simd, gk).into_iter().enumerate() {
                    store(simd, &mut out[xi * o + o0..][..len], r);
                }
            }
        }
    }
}

/// The adjoint of [`input_tiles`]: one image's gradient `dx` (`[C, H, W]`, every value written)
/// from its rows of the tiles' gradient `dv` (`[T, 16, C]`): `B dV Bᵀ` of each tile added into
/// a channel-last image, tiles in row order, then its inside transposed.
#[inline(always)]
fn input_grad_tiles<S: Simd>(simd: S, dv: &[f32], at: At, dx: &mut [f32], last: &mut Buffers) {
    let (th, tw, c) = (at.tl.th, at.tl.tw, at.c);
    let (h, w) = (2 * th, 2 * tw);
    let pw = w + 2;
    let xt = sized(&mut last.padded, (h + 2) * pw * c);
    xt.fill(0.0);
    for ty in 0..th {
        for tx in 0..tw {
            let src = &dv[(at.first + ty * tw + tx) * XI * c..][..XI * c];
            let pos = |k: usize| ((2 * ty + k / 4) * pw + 2 * tx + k % 4) * c;
            for (c0, len) in chunks::<S>(c) {
                let mut e = [simd.splat_f32s(0.0); 16];
                for (xi, r) in e.iter_mut().enumerate() {
                    *r = load(simd, &src[xi * c + c0..][..len]);
                }
                for (k, r) in b_e_bt(simd, e).into_iter().enumerate() {
                    let dst = &mut xt[pos(k) + c0..][..len];
                    let sum = simd.add_f32s(load(simd, dst), r);
                    store(simd, dst, sum);
                }
            }
        }
    }
    let tmp = sized(&mut last.plain, h * w * c);
    for (y, row) in tmp.chunks_exact_mut(w * c).enumerate() {
        row.copy_from_slice(&xt[((y + 1) * pw + 1) * c..][..w * c]);
    }
    transpose(tmp, h * w, c, dx);
}

/// `M[ξ] = V[ξ] · U[ξ]` for the 16 positions: `v` `[T, 16, C]`, `u` `[16, C, O]`, `m`
/// `[T, 16, O]`.
fn products(v: &[f32], u: &[f32], m: &mut [f32], o: usize, c: usize, t: usize) {
    for (xi, u) in u.chunks_exact(c * o).enumerate() {
        matmul(
            MatMut::strided(&mut m[xi * o..], t, o, XI * o),
            MatRef::strided(&v[xi * c..], t, c, XI * c, 1),
            MatRef::rows(u, c, o),
            false,
        );
    }
}

/// The convolution of `x` with `weight` and `bias`, then the epilogue: as
/// [`crate::conv_host::forward`], for a shape that [`applies`].
pub(crate) fn forward(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    s: &ConvShape,
    epilogue: Epilogue,
) -> (Vec<f32>, Option<Vec<u8>>) {
    let [n, c, h, w] = s.input;
    let o = s.out_channels;
    let (th, tw) = tiles(s.input);
    let u = transform_weights(weight, o, c);
    let per = images_per_product(s, group_size(n));
    let (image, map) = (c * h * w, o * h * w);
    let out_len = if epilogue.pool { o * th * tw } else { map };
    let mut out = vec![0.0f32; n * out_len];
    let mut winners = vec![0u8; if epilogue.pool { n * out_len } else { 0 }];
    if out.is_empty() {
        return (out, epilogue.pool.then_some(winners));
    }
    // One group of images: their tiles, the products, then each image's output.
    let group = |first: usize, out: &mut [f32], winners: &mut [u8]| {
        let count = out.len() / out_len;
        let tl = Tiles {
            t: count * th * tw,
            th,
            tw,
        };
        SCRATCH.with_borrow_mut(|scr| {
            let Scratch { v, m, last, .. } = scr;
            let v = sized(v, XI * tl.t * c);
            let m = sized(m, XI * tl.t * o);
            for k in 0..count {
                let xi = &x[(first + k) * image..(first + k + 1) * image];
                let at = At {
                    tl,
                    first: k * tl.per_image(),
                    c,
                    o,
                };
                Pass::Tiles { x: xi, v }.run(at, last);
            }
            products(v, &u, m, o, c, tl.t);
            for k in 0..count {
                let at = At {
                    tl,
                    first: k * tl.per_image(),
                    c,
                    o,
                };
                let out = &mut out[k * out_len..(k + 1) * out_len];
                if epilogue.pool {
                    Pass::Pooled {
                        m,
                        bias,
                        relu: epilogue.relu,
                        pooled: out,
                        winners: &mut winners[k * out_len..(k + 1) * out_len],
                    }
                    .run(at, last);
                } else {
                    Pass::Output { m, bias, y: out }.run(at, last);
                    if epilogue.relu {
                        vectorized(
                            #[inline(always)]
                            || relu_in_place(out),
                        );
                    }
                }
            }
        })
    };
    if epilogue.pool {
        out.par_chunks_mut(per * out_len)
            .zip(winners.par_chunks_mut(per * out_len))
            .enumerate()
            .for_each(|(g, (out, won))| group(g * per, out, won));
        (out, Some(winners))
    } else {
        out.par_chunks_mut(per * out_len)
            .enumerate()
            .for_each(|(g, out)| group(g * per, out, &mut []));
        (out, None)
    }
}

/// Gradients `(dx, dweight, dbias)` of [`forward`]: as [`crate::conv_host::backward`], for a
/// shape that [`applies`].
pub(crate) fn backward(
    x: &[f32],
    weight: &[f32],
    kept: Kept<'_>,
    grad: &[f32],
    s: &ConvShape,
    input_grad: bool,
) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    let (c, o) = (s.input[1], s.out_channels);
    let u = transform_weights(weight, o, c);
    // The transformed filters' gradient, summed over the groups, then the filters' own.
    let (dx, du, db) = by_groups(s, XI * c * o, input_grad, |first, dx| {
        group_grads(x, &u, kept, grad, s, first, dx)
    });
    (dx, weights_gradient(&du, o, c), db)
}

/// The transformed filters' and the bias's gradients of the images of one backward group from
/// `first` on (as many as `dx` holds, or up to a group's size without `dx`), and their input
/// gradients into `dx`.
fn group_grads(
    x: &[f32],
    u: &[f32],
    kept: Kept<'_>,
    grad: &[f32],
    s: &ConvShape,
    first: usize,
    mut dx: Option<&mut [f32]>,
) -> (Vec<f32>, Vec<f32>) {
    let [n, c, h, w] = s.input;
    let o = s.out_channels;
    let (th, tw) = tiles(s.input);
    let (image, map) = (c * h * w, o * h * w);
    let count = group_size(n).min(n - first);
    let per = images_per_product(s, count);
    let mut du = vec![0.0f32; XI * c * o];
    let mut db = vec![0.0f32; o];
    SCRATCH.with_borrow_mut(|scr| {
        let Scratch {
            v,
            m: dm,
            dv,
            last,
            grad: g,
            pool,
            ..
        } = scr;
        for start in (0..count).step_by(per) {
            let batch = per.min(count - start);
            let tl = Tiles {
                t: batch * th * tw,
                th,
                tw,
            };
            let v = sized(v, XI * tl.t * c);
            let dm = sized(dm, XI * tl.t * o);
            let g = sized(g, map);
            for k in 0..batch {
                let i = first + start + k;
                let at = At {
                    tl,
                    first: k * tl.per_image(),
                    c,
                    o,
                };
                Pass::Tiles {
                    x: &x[i * image..(i + 1) * image],
                    v,
                }
                .run(at, last);
                vectorized(
                    #[inline(always)]
                    || output_grad(kept, grad, i, s, g, &mut db, pool),
                );
                Pass::OutputGrad { g, dm }.run(at, last);
            }
            for (xi, du) in du.chunks_exact_mut(c * o).enumerate() {
                matmul(
                    MatMut::rows(du, c, o),
                    MatRef::strided(&v[xi * c..], c, tl.t, 1, XI * c),
                    MatRef::strided(&dm[xi * o..], tl.t, o, XI * o, 1),
                    true,
                );
            }
            if let Some(dx) = dx.as_deref_mut() {
                let dv = sized(dv, XI * tl.t * c);
                for (xi, u) in u.chunks_exact(c * o).enumerate() {
                    matmul(
                        MatMut::strided(&mut dv[xi * c..], tl.t, c, XI * c),
                        MatRef::strided(&dm[xi * o..], tl.t, o, XI * o, 1),
                        MatRef::transposed(u, o, c),
                        false,
                    );
                }
                for k in 0..batch {
                    let dx = &mut dx[(start + k) * image..(start + k + 1) * image];
                    let at = At {
                        tl,
                        first: k * tl.per_image(),
                        c,
                        o,
                    };
                    Pass::InputGrad { dv, dx }.run(at, last);
                }
            }
        }
    });
    (du, db)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1).
    fn values(len: usize, salt: u32) -> Vec<f32> {
        (0..len as u32)
            .map(|i| {
                let h = (i ^ salt.wrapping_mul(0x9e37_79b9)).wrapping_mul(0x85eb_ca6b);
                let h = (h ^ (h >> 13)).wrapping_mul(0xc2b2_ae35);
                (h >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// The convolution by its definition, in f64: `[N, O, H, W]`.
    fn direct(x: &[f32], wt: &[f32], b: &[f32], s: &ConvShape) -> Vec<f64> {
        let [n, c, h, w] = s.input;
        let o = s.out_channels;
        let mut y = vec![0.0f64; n * o * h * w];
        for i in 0..n {
            for oc in 0..o {
                for oy in 0..h {
                    for ox in 0..w {
                        let mut acc = b[oc] as f64;
                        for ci in 0..c {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let (iy, ix) = (oy + ky, ox + kx);
                                    if iy < 1 || ix < 1 || iy > h || ix > w {
                                        continue;
                                    }
                                    let xv = x[((i * c + ci) * h + iy - 1) * w + ix - 1];
                                    acc += xv as f64 * wt[((oc * c + ci) * 3 + ky) * 3 + kx] as f64;
                                }
                            }
                        }
                        y[((i * o + oc) * h + oy) * w + ox] = acc;
                    }
                }
            }
        }
        y
    }

    /// Asserts `|got − want| ≤ tol · max|want|` everywhere.
    fn assert_close(got: &[f32], want: &[f64], tol: f64, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        let scale = want.iter().fold(0.0f64, |a, v| a.max(v.abs())).max(1e-30);
        for (k, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (*g as f64 - w).abs() <= tol * scale,
                "{what}[{k}]: {g} against {w} (scale {scale})"
            );
        }
    }

    fn shape(n: usize, c: usize, o: usize, h: usize, w: usize) -> ConvShape {
        ConvShape {
            input: [n, c, h, w],
            out_channels: o,
            kernel: [3, 3],
            padding: [1, 1],
        }
    }

    const NONE: Epilogue = Epilogue {
        relu: false,
        pool: false,
    };

    #[test]
    fn applies_only_to_even_same_size_3x3_convolutions_with_enough_channels() {
        assert!(applies(&shape(4, 32, 64, 14, 14)));
        assert!(applies(&shape(1, 16, 16, 28, 28)));
        assert!(!applies(&shape(4, 1, 32, 28, 28)));
        assert!(!applies(&shape(4, 16, 16, 7, 8)));
        let mut s = shape(4, 16, 16, 8, 8);
        s.padding = [0, 0];
        assert!(!applies(&s));
        s.padding = [1, 1];
        s.kernel = [5, 3];
        assert!(!applies(&s));
    }

    #[test]
    fn the_weight_transform_and_its_adjoint_agree() {
        // <U(g), r> = <g, Uᵀ(r)> for random g and r: the filters' gradient is the adjoint.
        let (o, c) = (3, 2);
        let g = values(o * c * 9, 1);
        let r = values(XI * o * c, 2);
        let u = transform_weights(&g, o, c);
        let lhs: f64 = u.iter().zip(&r).map(|(a, b)| *a as f64 * *b as f64).sum();
        let back = weights_gradient(&r, o, c);
        let rhs: f64 = g
            .iter()
            .zip(&back)
            .map(|(a, b)| *a as f64 * *b as f64)
            .sum();
        assert!((lhs - rhs).abs() < 1e-5, "{lhs} against {rhs}");
    }

    #[test]
    fn forward_equals_the_definition() {
        // Several images per group of products, a last group with fewer, non-square maps.
        for (n, c, o, h, w) in [(5, 8, 9, 6, 10), (3, 16, 8, 14, 14), (2, 9, 12, 2, 4)] {
            let s = shape(n, c, o, h, w);
            let x = values(n * c * h * w, 3);
            let wt = values(o * c * 9, 4);
            let b = values(o, 5);
            let (y, none) = forward(&x, &wt, &b, &s, NONE);
            assert!(none.is_none());
            assert_close(
                &y,
                &direct(&x, &wt, &b, &s),
                1e-6,
                &format!("{:?}", s.input),
            );
        }
    }

    /// The gradients by the definition, in f64, of `Σ y·r` for `y` the plain convolution:
    /// `(dx, dw, db)`.
    fn direct_grads(x: &[f32], wt: &[f32], r: &[f32], s: &ConvShape) -> [Vec<f64>; 3] {
        let [n, c, h, w] = s.input;
        let o = s.out_channels;
        let mut dx = vec![0.0f64; x.len()];
        let mut dw = vec![0.0f64; wt.len()];
        let mut db = vec![0.0f64; o];
        for i in 0..n {
            for oc in 0..o {
                for oy in 0..h {
                    for ox in 0..w {
                        let g = r[((i * o + oc) * h + oy) * w + ox] as f64;
                        db[oc] += g;
                        for ci in 0..c {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let (iy, ix) = (oy + ky, ox + kx);
                                    if iy < 1 || ix < 1 || iy > h || ix > w {
                                        continue;
                                    }
                                    let xi = ((i * c + ci) * h + iy - 1) * w + ix - 1;
                                    let wi = ((oc * c + ci) * 3 + ky) * 3 + kx;
                                    dx[xi] += g * wt[wi] as f64;
                                    dw[wi] += g * x[xi] as f64;
                                }
                            }
                        }
                    }
                }
            }
        }
        [dx, dw, db]
    }

    #[test]
    fn gradients_equal_the_definition() {
        for (n, c, o, h, w) in [(5, 8, 9, 6, 10), (17, 16, 8, 14, 14)] {
            let s = shape(n, c, o, h, w);
            let x = values(n * c * h * w, 6);
            let wt = values(o * c * 9, 7);
            let r = values(n * o * h * w, 8);
            let [dx, dw, db] = direct_grads(&x, &wt, &r, &s);
            let (gx, gw, gb) = backward(&x, &wt, Kept::Nothing, &r, &s, true);
            let what = format!("{:?}", s.input);
            assert_close(&gx.unwrap(), &dx, 1e-6, &format!("{what} dx"));
            assert_close(&gw, &dw, 1e-6, &format!("{what} dw"));
            assert_close(&gb, &db, 1e-6, &format!("{what} db"));
            let (none, gw2, gb2) = backward(&x, &wt, Kept::Nothing, &r, &s, false);
            assert!(none.is_none());
            assert_eq!((gw2, gb2), (gw, gb), "{what}: without the input gradient");
        }
    }

    #[test]
    fn forward_with_its_epilogues_equals_the_patch_matrices() {
        for (n, c, o, h, w) in [
            (1, 32, 64, 14, 14),
            (7, 16, 32, 14, 14),
            (64, 32, 64, 14, 14),
        ] {
            let s = shape(n, c, o, h, w);
            let x = values(n * c * h * w, 13);
            let wt = values(o * c * 9, 14);
            let b = values(o, 15);
            for (relu, pool) in [(false, false), (true, false), (true, true)] {
                let ep = Epilogue { relu, pool };
                let (y, won) = forward(&x, &wt, &b, &s, ep);
                let (y2, won2) = crate::conv_host::forward_patches(&x, &wt, &b, &s, ep);
                let want: Vec<f64> = y2.iter().map(|&v| v as f64).collect();
                assert_close(
                    &y,
                    &want,
                    1e-5,
                    &format!("{:?} relu {relu} pool {pool}", s.input),
                );
                assert_eq!(won.is_some(), won2.is_some());
            }
        }
    }

    #[test]
    fn pooling_in_the_tile_loop_is_the_same_bits_as_pooling_the_output() {
        // Inputs from a small set (ties in the windows, zeros after the ReLU) and one NaN.
        let (n, c, o, h, w) = (3, 8, 20, 6, 10);
        let s = shape(n, c, o, h, w);
        let mut x: Vec<f32> = (0..n * c * h * w)
            .map(|i| ((i * 7919) % 3) as f32 - 1.0)
            .collect();
        x[100] = f32::NAN;
        let wt: Vec<f32> = (0..o * c * 9)
            .map(|i| ((i * 31) % 5) as f32 * 0.25 - 0.5)
            .collect();
        let b = values(o, 16);
        for relu in [false, true] {
            let (pooled, won) = forward(&x, &wt, &b, &s, Epilogue { relu, pool: true });
            let (mut y, _) = forward(&x, &wt, &b, &s, NONE);
            let (mut want, mut want_won) = (vec![0.0; pooled.len()], vec![0u8; pooled.len()]);
            let mut scratch = crate::pool::PoolScratch::default();
            let (image, out) = (o * h * w, o * h * w / 4);
            for i in 0..n {
                let yi = &mut y[i * image..(i + 1) * image];
                if relu {
                    relu_in_place(yi);
                }
                crate::pool::forward_winners(
                    yi,
                    [o, h, w],
                    &mut want[i * out..(i + 1) * out],
                    &mut want_won[i * out..(i + 1) * out],
                    relu,
                    &mut scratch,
                );
            }
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&pooled), bits(&want), "relu {relu}");
            assert_eq!(won.unwrap(), want_won, "relu {relu}");
        }
    }
}
