//! Kernels for the CPU backends where Burn's generic ones are slow, plugged in as a Burn backend
//! extension with their own backward passes:
//!
//! - 2×2 max-pooling (see `pool.rs`);
//! - stride-1 convolutions, optionally with the ReLU and the 2×2 max-pooling that follow them
//!   fused in, computed image by image on the host as matrix products over each image's patch
//!   matrix, with the weight, bias and input gradients in one backward pass (see
//!   `conv_host.rs`). Burn's flex computes
//!   the weight gradient as a convolution with the batch as channels and the output map as the
//!   kernel, ndarray every convolution as a direct loop.
//!
//! Everything here is used only for `f32` tensors on the flex and ndarray backends
//! ([`supported`]); other backends (wgpu) take Burn's path. Without the `flex` and `ndarray`
//! features the module only says "unsupported".

#[cfg(any(feature = "flex", feature = "ndarray"))]
pub(crate) use imp::*;

#[cfg(not(any(feature = "flex", feature = "ndarray")))]
pub(crate) use none::*;

#[cfg(any(feature = "flex", feature = "ndarray"))]
#[allow(deprecated)] // burn's NdArray backend, deprecated upstream, is still ours to speed up
mod imp {
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Backend, Dispatch, DispatchDevice, TensorMetadata, backend_extension};
    use burn::tensor::{DType, Tensor};

    use crate::conv_host::{ConvShape, Epilogue};

    /// The extension: forward kernels and the backward kernels their autodiff versions call.
    #[backend_extension(Flex: cfg(feature = "flex"), NdArray: cfg(feature = "ndarray"), Autodiff)]
    pub trait CpuKernels: Backend {
        /// 2×2 max-pooling with stride 2 of `[N, C, H, W]`: `[N, C, H/2, W/2]`.
        fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self>;
        /// Gradient of the input of [`CpuKernels::max_pool2x2`] given its output's gradient.
        fn max_pool2x2_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>)
        -> FloatTensor<Self>;
        /// Convolution with stride 1, no dilation or groups, zero padding `padding`, followed by
        /// a ReLU where `relu` and a 2×2 max-pooling where `pool`.
        fn conv2d_s1(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            padding: [usize; 2],
            relu: bool,
            pool: bool,
        ) -> FloatTensor<Self>;
    }

    /// A CPU backend's tensors as host values: read in place where the layout allows, built
    /// from owned values.
    pub(super) trait Host: Backend {
        /// `f` of the tensor's values in row-major order.
        fn with_values<T>(t: &FloatTensor<Self>, f: impl FnOnce(&[f32]) -> T) -> T;
        /// A tensor of `values` with `shape`.
        fn tensor(values: Vec<f32>, shape: Vec<usize>) -> FloatTensor<Self>;
    }

    /// The sizes of the convolution of `x` by `weight`.
    fn conv_shape<B: Backend>(
        x: &FloatTensor<B>,
        weight: &FloatTensor<B>,
        padding: [usize; 2],
    ) -> ConvShape {
        let [o, c, kh, kw] = weight.shape().dims();
        let input: [usize; 4] = x.shape().dims();
        // As Burn's convolution does: a mismatch is a programming error, named plainly.
        assert_eq!(
            input[1], c,
            "convolution: the input has {} channels, the weight expects {c}",
            input[1]
        );
        ConvShape {
            input,
            out_channels: o,
            kernel: [kh, kw],
            padding,
        }
    }

    fn host_max_pool2x2<B: Host>(x: FloatTensor<B>) -> FloatTensor<B> {
        let [n, c, h, w] = x.shape().dims();
        let out = B::with_values(&x, |x| crate::pool::forward_host(x, h, w));
        B::tensor(out, vec![n, c, h / 2, w / 2])
    }

    fn host_max_pool2x2_backward<B: Host>(
        x: FloatTensor<B>,
        grad: FloatTensor<B>,
    ) -> FloatTensor<B> {
        let dims = x.shape().dims::<4>();
        let out = B::with_values(&grad, |grad| {
            B::with_values(&x, |x| {
                crate::pool::backward_host(x, grad, dims[2], dims[3])
            })
        });
        B::tensor(out, dims.to_vec())
    }

    /// What a convolution's backward pass keeps of its epilogue (see [`Kept`]).
    #[derive(Debug, Clone)]
    pub(super) enum Saved<B: Backend> {
        /// No epilogue.
        Nothing,
        /// The output after its ReLU.
        Output(FloatTensor<B>),
        /// The pooling's winners.
        Winners(std::sync::Arc<Vec<u8>>),
    }

    /// [`CpuKernels::conv2d_s1`]'s result, and what its backward pass needs of the epilogue.
    pub(super) fn host_conv2d_s1<B: Host>(
        x: FloatTensor<B>,
        weight: FloatTensor<B>,
        bias: FloatTensor<B>,
        padding: [usize; 2],
        epilogue: Epilogue,
    ) -> (FloatTensor<B>, Saved<B>) {
        let s = conv_shape::<B>(&x, &weight, padding);
        assert_eq!(
            bias.shape().num_elements(),
            s.out_channels,
            "convolution: the bias must hold one value per output channel"
        );
        let (out, winners) = B::with_values(&x, |x| {
            B::with_values(&weight, |w| {
                B::with_values(&bias, |b| crate::conv_host::forward(x, w, b, &s, epilogue))
            })
        });
        let [n, o, oh, ow] = s.output();
        match winners {
            Some(winners) => (
                B::tensor(out, vec![n, o, oh / 2, ow / 2]),
                Saved::Winners(std::sync::Arc::new(winners)),
            ),
            None => {
                let out = B::tensor(out, s.output().to_vec());
                let saved = if epilogue.relu {
                    Saved::Output(out.clone())
                } else {
                    Saved::Nothing
                };
                (out, saved)
            }
        }
    }

    /// Gradients `(input, weight, bias)` of [`CpuKernels::conv2d_s1`] given its result's
    /// gradient `grad` and what its epilogue saved. The input's only where `input_grad`. (Not
    /// part of the extension: only its autodiff version calls it.)
    pub(super) fn host_conv2d_s1_backward<B: Host>(
        x: FloatTensor<B>,
        weight: FloatTensor<B>,
        saved: &Saved<B>,
        grad: FloatTensor<B>,
        padding: [usize; 2],
        input_grad: bool,
    ) -> (Option<FloatTensor<B>>, FloatTensor<B>, FloatTensor<B>) {
        use crate::conv_host::{Kept, backward};
        let s = conv_shape::<B>(&x, &weight, padding);
        let (dx, dw, db) = B::with_values(&x, |x| {
            B::with_values(&weight, |w| {
                B::with_values(&grad, |g| match saved {
                    Saved::Nothing => backward(x, w, Kept::Nothing, g, &s, input_grad),
                    Saved::Output(y) => {
                        B::with_values(y, |y| backward(x, w, Kept::Output(y), g, &s, input_grad))
                    }
                    Saved::Winners(k) => backward(x, w, Kept::Winners(k), g, &s, input_grad),
                })
            })
        });
        (
            dx.map(|dx| B::tensor(dx, s.input.to_vec())),
            B::tensor(dw, weight.shape().to_vec()),
            B::tensor(db, vec![s.out_channels]),
        )
    }

    /// Every backend's kernels are the host functions above.
    macro_rules! host_kernels {
        ($backend:ty) => {
            impl CpuKernels for $backend {
                fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
                    super::host_max_pool2x2::<Self>(x)
                }

                fn max_pool2x2_backward(
                    x: FloatTensor<Self>,
                    grad: FloatTensor<Self>,
                ) -> FloatTensor<Self> {
                    super::host_max_pool2x2_backward::<Self>(x, grad)
                }

                fn conv2d_s1(
                    x: FloatTensor<Self>,
                    weight: FloatTensor<Self>,
                    bias: FloatTensor<Self>,
                    padding: [usize; 2],
                    relu: bool,
                    pool: bool,
                ) -> FloatTensor<Self> {
                    let epilogue = super::Epilogue { relu, pool };
                    super::host_conv2d_s1::<Self>(x, weight, bias, padding, epilogue).0
                }
            }
        };
    }

    #[cfg(feature = "flex")]
    mod flex {
        use burn::backend::Flex;
        use burn::backend::flex::FlexTensor;
        use burn::backend::tensor::FloatTensor;
        use burn::tensor::TensorData;

        use super::{CpuKernels, Host};

        impl Host for Flex {
            fn with_values<T>(t: &FloatTensor<Self>, f: impl FnOnce(&[f32]) -> T) -> T {
                f(t.to_contiguous().storage::<f32>())
            }

            fn tensor(values: Vec<f32>, shape: Vec<usize>) -> FloatTensor<Self> {
                FlexTensor::from_data(TensorData::new(values, shape))
            }
        }

        host_kernels!(Flex);
    }

    #[cfg(feature = "ndarray")]
    mod ndarray {
        #![allow(deprecated)]

        use burn::backend::NdArray;
        use burn::backend::ndarray::NdArrayTensor;
        use burn::backend::tensor::FloatTensor;
        use burn::tensor::TensorData;

        use super::{CpuKernels, Host};

        impl Host for NdArray {
            /// Borrowed where the array is laid out row-major, else copied. ndarray's own
            /// `into_data` copies element by element whenever the array is shared, which
            /// autodiff's saved tensors are.
            fn with_values<T>(t: &FloatTensor<Self>, f: impl FnOnce(&[f32]) -> T) -> T {
                let NdArrayTensor::F32(storage) = t else {
                    unreachable!("the kernels are used for f32 tensors only")
                };
                let view = storage.view();
                match view.as_slice() {
                    Some(values) => f(values),
                    None => f(&view.iter().copied().collect::<Vec<f32>>()),
                }
            }

            fn tensor(values: Vec<f32>, shape: Vec<usize>) -> FloatTensor<Self> {
                NdArrayTensor::from_data(TensorData::new(values, shape))
            }
        }

        host_kernels!(NdArray);
    }

    mod autodiff {
        use super::{CpuKernels, Epilogue, Host, Saved, host_conv2d_s1, host_conv2d_s1_backward};
        use burn::backend::Backend;
        use burn::backend::autodiff::checkpoint::base::Checkpointer;
        use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
        use burn::backend::autodiff::grads::Gradients;
        use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
        use burn::backend::autodiff::{Autodiff, NodeId};
        use burn::backend::tensor::FloatTensor;

        #[derive(Debug)]
        struct Pool;

        impl<B: Backend + CpuKernels> Backward<B, 1> for Pool {
            type State = NodeId;

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(ops.state);
                unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                    B::max_pool2x2_backward(x, grad)
                });
            }
        }

        #[derive(Debug)]
        struct Conv;

        impl<B: Backend + CpuKernels + Host> Backward<B, 3> for Conv {
            /// Input, weight, what the epilogue saved and the padding.
            type State = (NodeId, NodeId, Saved<B>, [usize; 2]);

            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let [node_x, node_weight, node_bias] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x_state, weight_state, saved, padding) = ops.state;
                let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
                let weight =
                    checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(weight_state);
                let (dx, dw, db) = host_conv2d_s1_backward::<B>(
                    x,
                    weight,
                    &saved,
                    grad,
                    padding,
                    node_x.is_some(),
                );
                if let (Some(node), Some(dx)) = (node_x, dx) {
                    grads.register::<B>(node.id, dx);
                }
                if let Some(node) = node_weight {
                    grads.register::<B>(node.id, dw);
                }
                if let Some(node) = node_bias {
                    grads.register::<B>(node.id, db);
                }
            }
        }

        impl<B: Backend + CpuKernels + Host, C: CheckpointStrategy> CpuKernels for Autodiff<B, C> {
            fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
                match Pool.prepare::<C>([x.node()]).compute_bound().stateful() {
                    OpsKind::Tracked(mut prep) => {
                        let state = prep.checkpoint(&x);
                        prep.finish(state, B::max_pool2x2(x.into_primitive()))
                    }
                    OpsKind::UnTracked(prep) => prep.finish(B::max_pool2x2(x.into_primitive())),
                }
            }

            fn max_pool2x2_backward(
                x: FloatTensor<Self>,
                grad: FloatTensor<Self>,
            ) -> FloatTensor<Self> {
                // Called on the inner backend by the backward pass above; called directly, its
                // result is a constant (no second derivatives).
                FloatTensor::<Self>::new(B::max_pool2x2_backward(
                    x.into_primitive(),
                    grad.into_primitive(),
                ))
            }

            fn conv2d_s1(
                x: FloatTensor<Self>,
                weight: FloatTensor<Self>,
                bias: FloatTensor<Self>,
                padding: [usize; 2],
                relu: bool,
                pool: bool,
            ) -> FloatTensor<Self> {
                let epilogue = Epilogue { relu, pool };
                let nodes = [x.node(), weight.node(), bias.node()];
                match Conv.prepare::<C>(nodes).compute_bound().stateful() {
                    OpsKind::Tracked(mut prep) => {
                        let x_state = prep.checkpoint(&x);
                        let weight_state = prep.checkpoint(&weight);
                        // What the epilogue's gradients need (the pooling's winners, the
                        // ReLU's mask), kept for the backward pass.
                        let (out, saved) = host_conv2d_s1::<B>(
                            x.into_primitive(),
                            weight.into_primitive(),
                            bias.into_primitive(),
                            padding,
                            epilogue,
                        );
                        prep.finish((x_state, weight_state, saved, padding), out)
                    }
                    OpsKind::UnTracked(prep) => prep.finish(B::conv2d_s1(
                        x.into_primitive(),
                        weight.into_primitive(),
                        bias.into_primitive(),
                        padding,
                        relu,
                        pool,
                    )),
                }
            }
        }
    }

    /// Whether `x` is an `f32` tensor on the flex or ndarray backend (with or without autodiff).
    pub(crate) fn supported(x: &Tensor<4>) -> bool {
        let device = x.device().as_dispatch().clone().inner();
        let cpu = match device {
            #[cfg(feature = "flex")]
            DispatchDevice::Flex(_) => true,
            #[cfg(feature = "ndarray")]
            DispatchDevice::NdArray(_) => true,
            _ => false,
        };
        x.dtype() == DType::F32 && cpu
    }

    /// 2×2 max-pooling with stride 2 (see `pool.rs`).
    pub(crate) fn max_pool2x2(x: Tensor<4>) -> Tensor<4> {
        Tensor::from_dispatch(<Dispatch as CpuKernels>::max_pool2x2(x.into_dispatch()))
    }

    /// Stride-1 convolution with a bias, followed by a ReLU where `relu` and a 2×2 max-pooling
    /// where `pool` (see `conv_host.rs`).
    pub(crate) fn conv2d_s1(
        x: Tensor<4>,
        weight: Tensor<4>,
        bias: Tensor<1>,
        padding: [usize; 2],
        relu: bool,
        pool: bool,
    ) -> Tensor<4> {
        Tensor::from_dispatch(<Dispatch as CpuKernels>::conv2d_s1(
            x.into_dispatch(),
            weight.into_dispatch(),
            bias.into_dispatch(),
            padding,
            relu,
            pool,
        ))
    }
}

#[cfg(not(any(feature = "flex", feature = "ndarray")))]
mod none {
    use burn::tensor::Tensor;

    pub(crate) fn supported(_: &Tensor<4>) -> bool {
        false
    }

    pub(crate) fn max_pool2x2(_: Tensor<4>) -> Tensor<4> {
        unreachable!("only used where `supported` holds")
    }

    pub(crate) fn conv2d_s1(
        _: Tensor<4>,
        _: Tensor<4>,
        _: Tensor<1>,
        _: [usize; 2],
        _: bool,
        _: bool,
    ) -> Tensor<4> {
        unreachable!("only used where `supported` holds")
    }
}

#[cfg(all(test, feature = "flex", feature = "ndarray"))]
mod tests {
    use crate::test_util::device;
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    use burn::nn::pool::MaxPool2dConfig;
    use burn::tensor::{Distribution, Tensor, TensorData};

    /// Bits of a tensor's values.
    fn bits<const D: usize>(t: Tensor<D>) -> Vec<u32> {
        t.into_data()
            .try_to_vec::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    }

    /// Values from a small set (so windows hold ties), with a NaN and signed zeros.
    fn ties(dims: [usize; 4]) -> Vec<f32> {
        let len = dims.iter().product::<usize>();
        let mut v: Vec<f32> = (0..len).map(|i| ((i * 7919) % 5) as f32 - 2.0).collect();
        v[3] = f32::NAN;
        v[10] = -0.0;
        v[11] = 0.0;
        v
    }

    /// Asserts that `fast` and `burn` hold the same bits (`exact`) or equal values to float
    /// precision, then backpropagates the same random weighting of each: the gradients of
    /// `fast`'s graph and of `burn`'s.
    fn compare_and_backward(
        fast: Tensor<4>,
        burn: Tensor<4>,
        exact: bool,
        what: &str,
    ) -> (burn::tensor::Gradients, burn::tensor::Gradients) {
        if exact {
            assert_eq!(
                bits(fast.clone().detach()),
                bits(burn.clone().detach()),
                "{what}"
            );
        } else {
            close(fast.clone().detach(), burn.clone().detach(), what);
        }
        let weights = Tensor::<4>::random(burn.dims(), Distribution::Default, &burn.device());
        let gf = (fast * weights.clone()).sum().backward();
        let gb = (burn * weights).sum().backward();
        (gf, gb)
    }

    /// The CPU backends the kernels serve, with autodiff.
    fn cpu_devices() -> [(&'static str, burn::tensor::Device); 2] {
        #[allow(deprecated)]
        let ndarray = burn::tensor::Device::ndarray();
        [
            ("flex", device().autodiff()),
            ("ndarray", ndarray.autodiff()),
        ]
    }

    /// Asserts that `a` equals `b` to float precision (relative to `b`'s largest magnitude).
    fn close(a: Tensor<4>, b: Tensor<4>, what: &str) {
        let scale: f32 = b.clone().abs().max().into_scalar();
        let diff: f32 = (a - b).abs().max().into_scalar();
        assert!(
            diff <= 1e-5 * scale,
            "{what} differ by {diff} (scale {scale})"
        );
    }

    #[test]
    fn pooling_equals_burns_in_values_and_gradients_bit_for_bit() {
        for (name, dev) in cpu_devices() {
            pooling_on(&dev, name);
        }
    }

    fn pooling_on(dev: &burn::tensor::Device, name: &str) {
        let pool = MaxPool2dConfig::new([2, 2]).init();
        // Even and odd sizes (the last row and column of an odd map are dropped).
        for dims in [[2, 3, 8, 10], [3, 2, 7, 9]] {
            let mut values = ties(dims);
            if name == "ndarray" {
                // ndarray's own pooling skips a NaN; ours lets it win, as flex's (and PyTorch's)
                // does, so a NaN is never hidden. Compared without one.
                values[3] = 1.0;
            }
            let data = TensorData::new(values, dims);
            let x = Tensor::<4>::from_data(data, dev).require_grad();
            assert!(super::supported(&x));
            let fast = crate::pool::max_pool2d(&pool, x.clone());
            let burn = pool.forward(x.clone());
            let (gf, gb) = compare_and_backward(fast, burn, true, &format!("{name} {dims:?}"));
            let (gf, gb) = (x.grad(&gf).unwrap(), x.grad(&gb).unwrap());
            assert_eq!(bits(gf), bits(gb), "{name} {dims:?}");
        }
    }

    #[test]
    fn stride1_convolution_equals_burns_with_its_gradients() {
        for (name, dev) in cpu_devices() {
            convolution_on(&dev, name);
        }
    }

    fn convolution_on(dev: &burn::tensor::Device, name: &str) {
        // 3×3 "same", 5×3 with padding (2, 1), 3×3 without padding, and one input channel over
        // patch matrices; 3×3 "same" on even maps with enough channels by Winograd's F(2×2, 3×3).
        let same = || PaddingConfig2d::Explicit(1, 1, 1, 1);
        for (channels, kernel, padding, [h, w]) in [
            ([5, 7], [3, 3], same(), [9, 11]),
            (
                [5, 7],
                [5, 3],
                PaddingConfig2d::Explicit(2, 1, 2, 1),
                [9, 11],
            ),
            ([5, 7], [3, 3], PaddingConfig2d::Valid, [9, 11]),
            ([1, 4], [3, 3], same(), [9, 11]),
            ([8, 12], [3, 3], same(), [10, 6]),
            ([17, 9], [3, 3], same(), [4, 14]),
        ] {
            let conv = Conv2dConfig::new(channels, kernel)
                .with_padding(padding.clone())
                .init(dev);
            let dims = [3, channels[0], h, w];
            let x = Tensor::<4>::random(dims, Distribution::Default, dev).require_grad();
            assert!(super::supported(&x));
            let fast = crate::fastconv::conv2d(&conv, x.clone(), false);
            let burn = conv.forward(x.clone());
            // A matrix product over each image's patch matrix or Winograd's transforms: another
            // summation order than Burn's, so equal to float precision.
            let what = format!("{name} {channels:?} {padding:?}");
            let (gf, gb) = compare_and_backward(fast, burn, false, &what);
            let (xf, xb) = (x.grad(&gf).unwrap(), x.grad(&gb).unwrap());
            close(xf, xb, &format!("{what}: input gradients"));
            let bias = conv.bias.as_ref().unwrap().val();
            let (bf, bb) = (bias.grad(&gf).unwrap(), bias.grad(&gb).unwrap());
            close(bf.reshape([1, 1, 1, -1]), bb.reshape([1, 1, 1, -1]), &what);
            let (wf, wb) = (
                conv.weight.val().grad(&gf).unwrap(),
                conv.weight.val().grad(&gb).unwrap(),
            );
            close(wf, wb, &format!("{what}: weight gradients"));
        }
    }

    #[test]
    fn a_fused_relu_and_pooling_are_the_same_bits_as_applied_after_the_convolution() {
        let pool = MaxPool2dConfig::new([2, 2]).init();
        for (name, dev) in cpu_devices() {
            // An even map, an odd one whose last row and column the pooling drops, one too
            // small to pool (no window, no gradient), and an even one with enough channels for
            // Winograd's F(2×2, 3×3).
            for dims in [[2, 4, 6, 8], [3, 4, 7, 5], [2, 4, 1, 3], [3, 8, 6, 10]] {
                let conv = Conv2dConfig::new([dims[1], 9], [3, 3])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(&dev);
                let mut values = ties(dims);
                values[3] = 0.5; // no NaN: it would reach every gradient
                let x = Tensor::<4>::from_data(TensorData::new(values, dims), &dev).require_grad();
                let what = format!("{name} {dims:?}");
                let unfused = || crate::fastconv::conv2d(&conv, x.clone(), false);
                let relu = |t| burn::tensor::activation::relu(t);
                // ReLU fused, and ReLU with pooling fused, against each applied after.
                let cases = [
                    (
                        crate::fastconv::conv2d(&conv, x.clone(), true),
                        relu(unfused()),
                    ),
                    (
                        crate::fastconv::conv_activation_pool(
                            &conv,
                            x.clone(),
                            crate::Activation::Relu,
                            &pool,
                            "conv",
                            &mut None,
                        ),
                        crate::pool::max_pool2d(&pool, relu(unfused())),
                    ),
                ];
                for (fused, after) in cases {
                    let (gf, ga) = compare_and_backward(fused, after, true, &what);
                    let (xf, xa) = (x.grad(&gf).unwrap(), x.grad(&ga).unwrap());
                    assert_eq!(bits(xf), bits(xa), "{what}");
                    let w = conv.weight.val();
                    assert_eq!(
                        bits(w.grad(&gf).unwrap()),
                        bits(w.grad(&ga).unwrap()),
                        "{what}"
                    );
                    let b = conv.bias.as_ref().unwrap().val();
                    assert_eq!(
                        bits(b.grad(&gf).unwrap()),
                        bits(b.grad(&ga).unwrap()),
                        "{what}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_convolution_gives_the_same_bits_on_one_thread_and_on_several() {
        // Over patch matrices (3 channels) and by Winograd's F(2×2, 3×3) (8).
        for channels in [3, 8] {
            same_bits_on_any_thread_count(channels);
        }
    }

    fn same_bits_on_any_thread_count(channels: usize) {
        let dev = device().autodiff();
        let conv = Conv2dConfig::new([channels, 9], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&dev);
        let dims = [13, channels, 8, 8];
        let x = Tensor::<4>::random(dims, Distribution::Default, &dev).require_grad();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let y = crate::fastconv::conv2d(&conv, x.clone(), true);
                let g = (y.clone() * y.clone()).sum().backward();
                let w = conv.weight.val().grad(&g).unwrap();
                let dx = x.grad(&g).unwrap();
                (bits(y.detach()), bits(w), bits(dx))
            })
        };
        assert_eq!(run(1), run(3));
    }
}
