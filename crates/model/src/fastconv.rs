//! Faster paths for convolutions on the flex backend.
//!
//! **Single-channel inputs** (the first layer of every model).
//! Burn computes a convolution's weight gradient as another convolution, with the batch as
//! channels and the output map as a kernel (28×28 here): on the flex CPU backend that takes ~3×
//! longer than the whole rest of the first layer. For a one-channel input the patch matrix is
//! just the `k·k` shifted copies of the padded image, so the layer is one batched matrix
//! product, whose gradients are matrix products too. Same function, different summation order
//! (identical here: each output sums `k·k` products in the same order).
//!
//! **Other stride-1 convolutions** keep flex's forward pass and input gradient, but take their
//! weight gradient as one matrix product: the output gradient (`[O, N·OH·OW]`) times the
//! transposed patch matrix of [`patches_host`] (`C·k·k` rows of shifted copies of the padded
//! channels). Burn computes it as a convolution with the batch as channels and the output map as
//! the kernel, which flex runs as many tiny matrix products.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;
use burn::tensor::ops::PadMode;

/// Whether [`forward`] applies: one input channel, stride 1, dilation 1, no groups, and
/// symmetric explicit padding that keeps the size (`2·pad = k − 1`).
pub(crate) fn applies(conv: &Conv2d) -> bool {
    let in_channels = conv.weight.lazy_shape()[1] * conv.groups;
    let [kh, kw] = conv.kernel_size;
    let same = match conv.padding {
        PaddingConfig2d::Explicit(t, l, b, r) => {
            t == b && l == r && 2 * t + 1 == kh && 2 * l + 1 == kw
        }
        _ => false,
    };
    in_channels == 1 && conv.stride == [1, 1] && conv.dilation == [1, 1] && conv.groups == 1 && same
}

/// `conv` applied to `x`: by [`forward`] where it [`applies`], by the flex kernel with a faster
/// weight gradient where [`stride1_padding`] allows, else by Burn's convolution.
pub(crate) fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    if applies(conv) {
        return forward(conv, x);
    }
    match (stride1_padding(conv, &x), &conv.bias) {
        (Some(padding), Some(bias)) => {
            crate::kernels::conv2d_s1(x, conv.weight.val(), bias.val(), padding)
        }
        _ => conv.forward(x),
    }
}

/// The padding of `conv` where the flex kernel computes it on `x`: stride 1, no dilation or
/// groups, symmetric explicit (or no) padding, and `x` an `f32` tensor on the flex backend.
fn stride1_padding(conv: &Conv2d, x: &Tensor<4>) -> Option<[usize; 2]> {
    let padding = match conv.padding {
        PaddingConfig2d::Explicit(t, l, b, r) if t == b && l == r => [t, l],
        PaddingConfig2d::Valid => [0, 0],
        _ => return None,
    };
    let plain = conv.stride == [1, 1] && conv.dilation == [1, 1] && conv.groups == 1;
    (plain && crate::kernels::supported(x)).then_some(padding)
}

/// The patch matrix of a stride-1 convolution with zero padding `[ph, pw]` and `[kh, kw]` taps
/// of `x` (`[N, C, H, W]`, contiguous), for an output of `oh × ow`: `[C·kh·kw, N·oh·ow]`, row
/// `(c, ky, kx)` holding, for each image in turn, channel `c` shifted by `(ky − ph, kx − pw)`.
#[cfg(any(feature = "flex", feature = "ndarray"))]
pub(crate) fn patches_host(
    x: &[f32],
    [n, c, h, w]: [usize; 4],
    [kh, kw]: [usize; 2],
    [ph, pw]: [usize; 2],
    [oh, ow]: [usize; 2],
) -> Vec<f32> {
    let ohw = oh * ow;
    let mut cols = vec![0.0f32; c * kh * kw * n * ohw];
    if ohw == 0 {
        return cols;
    }
    for (r, row) in cols.chunks_exact_mut(n * ohw).enumerate() {
        let (ci, ky, kx) = (r / (kh * kw), r / kw % kh, r % kw);
        // Output columns whose input column `ox + kx − pw` lies inside the image.
        let x0 = pw.saturating_sub(kx).min(ow);
        let x1 = (w + pw).saturating_sub(kx).clamp(x0, ow);
        for (b, image) in row.chunks_exact_mut(ohw).enumerate() {
            let plane = &x[(b * c + ci) * h * w..(b * c + ci + 1) * h * w];
            for (oy, out) in image.chunks_exact_mut(ow).enumerate() {
                let iy = (oy + ky).wrapping_sub(ph);
                if iy < h && x0 < x1 {
                    let src = &plane[iy * w..(iy + 1) * w];
                    out[x0..x1].copy_from_slice(&src[x0 + kx - pw..x1 + kx - pw]);
                }
            }
        }
    }
    cols
}

/// The adjoint of [`patches_host`] (col2im): a patch-matrix gradient `[C·kh·kw, N, oh, ow]`
/// folded back into the image's gradient `[N, C, H, W]`, each tap's contributions added in a
/// fixed order (taps in row order, then positions), so the result is the same bits every time.
#[cfg(feature = "ndarray")]
pub(crate) fn fold_host(
    cols: &[f32],
    [n, c, h, w]: [usize; 4],
    [kh, kw]: [usize; 2],
    [ph, pw]: [usize; 2],
    [oh, ow]: [usize; 2],
) -> Vec<f32> {
    use rayon::prelude::*;
    let ohw = oh * ow;
    let mut out = vec![0.0f32; n * c * h * w];
    if ohw == 0 || h * w == 0 {
        return out;
    }
    out.par_chunks_mut(h * w)
        .enumerate()
        .for_each(|(plane, dst)| {
            let (b, ci) = (plane / c, plane % c);
            for ky in 0..kh {
                for kx in 0..kw {
                    let r = (ci * kh + ky) * kw + kx;
                    let src = &cols[(r * n + b) * ohw..(r * n + b + 1) * ohw];
                    // Output columns whose input column `ox + kx − pw` lies inside the image.
                    let x0 = pw.saturating_sub(kx).min(ow);
                    let x1 = (w + pw).saturating_sub(kx).clamp(x0, ow);
                    for (oy, s) in src.chunks_exact(ow).enumerate() {
                        let iy = (oy + ky).wrapping_sub(ph);
                        if iy < h && x0 < x1 {
                            let d = &mut dst[iy * w..(iy + 1) * w];
                            for ox in x0..x1 {
                                d[ox + kx - pw] += s[ox];
                            }
                        }
                    }
                }
            }
        });
    out
}

/// The convolution of a single-channel batch as a matrix product over shifted copies.
///
/// # Shapes
/// - `x`: `[N, 1, H, W]`
/// - returns `[N, out, H, W]`
pub(crate) fn forward(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [n, _, h, w] = x.dims();
    let [kh, kw] = conv.kernel_size;
    let (ph, pw) = (kh / 2, kw / 2);
    let padded = x.pad((pw, pw, ph, ph), PadMode::Constant(0.0));
    let shifted: Vec<Tensor<4>> = (0..kh)
        .flat_map(|dy| (0..kw).map(move |dx| (dy, dx)))
        .map(|(dy, dx)| {
            padded
                .clone()
                .slice([0..n, 0..1, dy..dy + h, dx..dx + w])
                .reshape([n, 1, 1, h * w])
        })
        .collect();
    let cols = Tensor::cat(shifted, 2).reshape([n, kh * kw, h * w]);
    let weight = conv.weight.val();
    let [out, ..] = weight.dims();
    let y = weight.reshape([1, out, kh * kw]).matmul(cols);
    let y = match &conv.bias {
        Some(b) => y + b.val().reshape([1, out, 1]),
        None => y,
    };
    y.reshape([n, out, h, w])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::device;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Distribution;

    #[test]
    fn equals_the_native_convolution_and_its_gradients() {
        let dev = device().autodiff();
        let conv = Conv2dConfig::new([1, 8], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&dev);
        assert!(applies(&conv));
        let x = Tensor::<4>::random([4, 1, 10, 12], Distribution::Default, &dev);
        let (a, b) = (conv.forward(x.clone()), forward(&conv, x));
        let d: f32 = (a.clone() - b.clone()).abs().max().into_scalar();
        assert!(d < 1e-6, "outputs differ by {d}");
        let ga = a.powi_scalar(2).sum().backward();
        let gb = b.powi_scalar(2).sum().backward();
        let wa = conv.weight.val().grad(&ga).unwrap();
        let wb = conv.weight.val().grad(&gb).unwrap();
        let scale: f32 = wa.clone().abs().max().into_scalar();
        let d: f32 = (wa - wb).abs().max().into_scalar();
        assert!(
            d <= 1e-5 * scale,
            "weight gradients differ by {d} (scale {scale})"
        );
        let wide = Conv2dConfig::new([2, 8], [3, 3]).init(&dev);
        assert!(!applies(&wide));
    }
}
