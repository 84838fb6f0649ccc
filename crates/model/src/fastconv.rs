//! Faster paths for convolutions.
//!
//! **On the CPU backends** (flex, ndarray) every stride-1 convolution with a bias runs on the
//! host kernels of `conv_host.rs` (image by image over patch matrices, with one backward pass
//! for all three gradients), and a ReLU that follows it is fused in: the forward pass clamps the
//! output in place and the backward pass masks the gradient with the saved output, so no
//! pre-activation map is kept for training. A 2×2 max-pooling after the ReLU is fused in too
//! ([`conv_activation_pool`]): only the pooled map and each window's winner are kept.
//!
//! **Elsewhere** (wgpu), single-channel inputs (the first layer of every model) are computed as
//! one batched matrix product over the `k·k` shifted copies of the padded image: Burn computes a
//! convolution's weight gradient as another convolution, with the batch as channels and the
//! output map as a kernel, which is slow for these shapes. Other convolutions are Burn's.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;
use burn::tensor::activation::relu as burn_relu;
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

/// `conv` applied to `x`, followed by a ReLU where `relu`: by the host kernels where
/// [`stride1_padding`] allows, else by [`forward`] where it [`applies`], else by Burn's
/// convolution. The values are the same whether the ReLU is fused or applied after.
pub(crate) fn conv2d(conv: &Conv2d, x: Tensor<4>, relu: bool) -> Tensor<4> {
    if let (Some(padding), Some(bias)) = (stride1_padding(conv, &x), &conv.bias) {
        return crate::kernels::conv2d_s1(x, conv.weight.val(), bias.val(), padding, relu, false);
    }
    let y = if applies(conv) {
        forward(conv, x)
    } else {
        conv.forward(x)
    };
    if relu { burn_relu(y) } else { y }
}

/// Where a model's forward pass hands each layer's maps to a caller: the layer's name, its
/// output before and after the nonlinearity.
pub(crate) type Taps<'a> = Option<&'a mut dyn FnMut(&str, &Tensor<4>, &Tensor<4>)>;

/// A model's `forward_taps`: `run` (its forward pass) with taps that collect every layer's maps.
pub(crate) fn collect_taps(
    run: impl FnOnce(Taps<'_>) -> Tensor<2>,
) -> (Tensor<2>, Vec<crate::Tap>) {
    let mut taps = Vec::new();
    let logits =
        run(Some(&mut |layer: &str,
                       pre: &Tensor<4>,
                       post: &Tensor<4>| {
            taps.push(crate::Tap {
                layer: layer.to_string(),
                pre: pre.clone(),
                post: post.clone(),
            })
        }));
    (logits, taps)
}

/// `conv` followed by `activation` on `x`, the maps handed to `taps` as layer `layer` where there
/// are taps. Without taps a ReLU is fused into the convolution where the kernels allow.
pub(crate) fn conv_activation(
    conv: &Conv2d,
    x: Tensor<4>,
    activation: crate::Activation,
    layer: &str,
    taps: &mut Taps<'_>,
) -> Tensor<4> {
    match taps {
        None if activation == crate::Activation::Relu => conv2d(conv, x, true),
        None => activation.forward(conv2d(conv, x, false)),
        Some(tap) => {
            let pre = conv2d(conv, x, false);
            let post = activation.forward(pre.clone());
            tap(layer, &pre, &post);
            post
        }
    }
}

/// [`conv_activation`] followed by `pool`. Without taps, a ReLU and a 2×2 max-pooling are both
/// fused into the convolution where the kernels allow: the pooling's and the ReLU's backward
/// passes then run image by image inside the convolution's, and no full-size gradient map is
/// written between them.
pub(crate) fn conv_activation_pool(
    conv: &Conv2d,
    x: Tensor<4>,
    activation: crate::Activation,
    pool: &burn::nn::pool::MaxPool2d,
    layer: &str,
    taps: &mut Taps<'_>,
) -> Tensor<4> {
    if taps.is_none()
        && activation == crate::Activation::Relu
        && crate::pool::is_2x2(pool)
        && let (Some(padding), Some(bias)) = (stride1_padding(conv, &x), &conv.bias)
    {
        return crate::kernels::conv2d_s1(x, conv.weight.val(), bias.val(), padding, true, true);
    }
    let y = conv_activation(conv, x, activation, layer, taps);
    crate::pool::max_pool2d(pool, y)
}

/// The padding of `conv` where the host kernels compute it on `x`: stride 1, no dilation or
/// groups, symmetric explicit (or no) padding, and `x` an `f32` tensor on a CPU backend.
fn stride1_padding(conv: &Conv2d, x: &Tensor<4>) -> Option<[usize; 2]> {
    let padding = match conv.padding {
        PaddingConfig2d::Explicit(t, l, b, r) if t == b && l == r => [t, l],
        PaddingConfig2d::Valid => [0, 0],
        _ => return None,
    };
    let plain = conv.stride == [1, 1] && conv.dilation == [1, 1] && conv.groups == 1;
    (plain && crate::kernels::supported(x)).then_some(padding)
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
