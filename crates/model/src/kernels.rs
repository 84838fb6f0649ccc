//! Kernels for the flex CPU backend where Burn's generic ones are slow, plugged in as a Burn
//! backend extension with their own backward passes:
//!
//! - 2×2 max-pooling (see `pool.rs`);
//! - a stride-1 convolution whose weight gradient is one matrix product with the batch's patch
//!   matrix (see `fastconv.rs`), where Burn computes it as another convolution with the batch as
//!   channels and the output map as the kernel. Its forward pass and input gradient are flex's
//!   own, its bias gradient Burn's sum.
//!
//! Everything here is used only for `f32` tensors on the flex backend ([`supported`]); other
//! backends take Burn's path. Without the `flex` feature the module only says "unsupported".

#[cfg(feature = "flex")]
pub(crate) use imp::*;

#[cfg(not(feature = "flex"))]
pub(crate) use none::*;

#[cfg(feature = "flex")]
mod imp {
    use burn::backend::flex::FlexTensor;
    use burn::backend::ops::{FloatTensorOps, ModuleOps};
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{Backend, Dispatch, DispatchDevice, Flex, backend_extension};
    use burn::tensor::{DType, Shape, Tensor, TensorData};

    /// The extension: forward kernels and the backward kernels their autodiff versions call.
    #[backend_extension(Flex, Autodiff)]
    pub trait FlexKernels: Backend {
        /// 2×2 max-pooling with stride 2 of `[N, C, H, W]`: `[N, C, H/2, W/2]`.
        fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self>;
        /// Gradient of the input of [`FlexKernels::max_pool2x2`] given its output's gradient.
        fn max_pool2x2_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>)
        -> FloatTensor<Self>;
        /// Convolution with stride 1, no dilation or groups, zero padding `padding`.
        fn conv2d_s1(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            padding: [usize; 2],
        ) -> FloatTensor<Self>;
        /// Weight gradient of [`FlexKernels::conv2d_s1`] for a kernel of `kernel` taps, given
        /// the output gradient as rows `[O, N·OH·OW]` (see [`grad_rows`]).
        fn conv2d_s1_weight_grad(
            x: FloatTensor<Self>,
            grad_rows: FloatTensor<Self>,
            kernel: [usize; 2],
            padding: [usize; 2],
        ) -> FloatTensor<Self>;
    }

    /// The options of a stride-1 convolution with `padding`.
    pub(super) fn options(padding: [usize; 2]) -> burn::tensor::ops::ConvOptions<2> {
        burn::tensor::ops::ConvOptions::new([1, 1], padding, [1, 1], 1)
    }

    /// A convolution's output gradient `[N, O, OH, OW]` as one row per output channel,
    /// `[O, N·OH·OW]`: the layout of both its weight and its bias gradient (Burn's bias gradient
    /// sums these rows).
    pub(super) fn grad_rows<B: Backend>(grad: FloatTensor<B>) -> FloatTensor<B> {
        use burn::backend::TensorMetadata;
        let [n, o, h, w] = grad.shape().dims();
        B::float_reshape(B::float_swap_dims(grad, 0, 1), Shape::new([o, n * h * w]))
    }

    /// A contiguous copy (or the tensor itself) and its four dimensions.
    fn contiguous(t: &FlexTensor) -> (FlexTensor, [usize; 4]) {
        let t = t.to_contiguous();
        let s = t.layout().shape();
        let dims = [s[0], s[1], s[2], s[3]];
        (t, dims)
    }

    impl FlexKernels for Flex {
        fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
            let (x, [n, c, h, w]) = contiguous(&x);
            let out = crate::pool::forward_host(x.storage::<f32>(), h, w);
            FlexTensor::from_data(TensorData::new(out, [n, c, h / 2, w / 2]))
        }

        fn max_pool2x2_backward(
            x: FloatTensor<Self>,
            grad: FloatTensor<Self>,
        ) -> FloatTensor<Self> {
            let (x, dims) = contiguous(&x);
            let (grad, _) = contiguous(&grad);
            let [_, _, h, w] = dims;
            let out = crate::pool::backward_host(x.storage::<f32>(), grad.storage::<f32>(), h, w);
            FlexTensor::from_data(TensorData::new(out, dims))
        }

        fn conv2d_s1(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            padding: [usize; 2],
        ) -> FloatTensor<Self> {
            Self::conv2d(x, weight, Some(bias), options(padding))
        }

        fn conv2d_s1_weight_grad(
            x: FloatTensor<Self>,
            grad_rows: FloatTensor<Self>,
            kernel: [usize; 2],
            padding: [usize; 2],
        ) -> FloatTensor<Self> {
            let (x, dims) = contiguous(&x);
            let [n, c, h, w] = dims;
            let o = grad_rows.layout().shape()[0];
            let (oh, ow) = (
                h + 2 * padding[0] + 1 - kernel[0],
                w + 2 * padding[1] + 1 - kernel[1],
            );
            let cols =
                crate::fastconv::patches_host(x.storage::<f32>(), dims, kernel, padding, [oh, ow]);
            let cols = FlexTensor::from_data(TensorData::new(
                cols,
                [c * kernel[0] * kernel[1], n * oh * ow],
            ));
            let dw = Self::float_matmul(grad_rows, Self::float_transpose(cols));
            Self::float_reshape(dw, Shape::new([o, c, kernel[0], kernel[1]]))
        }
    }

    mod autodiff {
        use super::{FlexKernels, grad_rows, options};
        use burn::backend::autodiff::checkpoint::base::Checkpointer;
        use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
        use burn::backend::autodiff::grads::Gradients;
        use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
        use burn::backend::autodiff::{Autodiff, NodeId};
        use burn::backend::tensor::FloatTensor;
        use burn::backend::{Backend, TensorMetadata};
        use burn::tensor::Shape;

        #[derive(Debug)]
        struct Pool;

        impl<B: Backend + FlexKernels> Backward<B, 1> for Pool {
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

        impl<B: Backend + FlexKernels> Backward<B, 3> for Conv {
            /// Input, weight, kernel size and padding.
            type State = (NodeId, NodeId, [usize; 2], [usize; 2]);

            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let [node_x, node_weight, node_bias] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x_state, weight_state, kernel, padding) = ops.state;
                let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
                let weight =
                    checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(weight_state);
                if let Some(node) = node_x {
                    let g = B::conv2d_x_backward(x.clone(), weight, grad.clone(), options(padding));
                    grads.register::<B>(node.id, g);
                }
                if node_weight.is_none() && node_bias.is_none() {
                    return;
                }
                // Laid out once for both parameter gradients.
                let rows = grad_rows::<B>(grad);
                if let Some(node) = node_bias {
                    // As Burn's convolution does: the sum over the batch and the output map.
                    let o = rows.shape()[0];
                    let g = B::float_sum_dim(rows.clone(), 1);
                    grads.register::<B>(node.id, B::float_reshape(g, Shape::new([o])));
                }
                if let Some(node) = node_weight {
                    let g = B::conv2d_s1_weight_grad(x, rows, kernel, padding);
                    grads.register::<B>(node.id, g);
                }
            }
        }

        impl<B: Backend + FlexKernels, C: CheckpointStrategy> FlexKernels for Autodiff<B, C> {
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
            ) -> FloatTensor<Self> {
                let [_, _, kh, kw] = weight.shape().dims();
                let nodes = [x.node(), weight.node(), bias.node()];
                match Conv.prepare::<C>(nodes).compute_bound().stateful() {
                    OpsKind::Tracked(mut prep) => {
                        let x_state = prep.checkpoint(&x);
                        let weight_state = prep.checkpoint(&weight);
                        let out = B::conv2d_s1(
                            x.into_primitive(),
                            weight.into_primitive(),
                            bias.into_primitive(),
                            padding,
                        );
                        prep.finish((x_state, weight_state, [kh, kw], padding), out)
                    }
                    OpsKind::UnTracked(prep) => prep.finish(B::conv2d_s1(
                        x.into_primitive(),
                        weight.into_primitive(),
                        bias.into_primitive(),
                        padding,
                    )),
                }
            }

            fn conv2d_s1_weight_grad(
                x: FloatTensor<Self>,
                grad_rows: FloatTensor<Self>,
                kernel: [usize; 2],
                padding: [usize; 2],
            ) -> FloatTensor<Self> {
                // As `max_pool2x2_backward`: a constant when called directly.
                FloatTensor::<Self>::new(B::conv2d_s1_weight_grad(
                    x.into_primitive(),
                    grad_rows.into_primitive(),
                    kernel,
                    padding,
                ))
            }
        }
    }

    /// Whether `x` is an `f32` tensor on the flex backend (with or without autodiff).
    pub(crate) fn supported(x: &Tensor<4>) -> bool {
        let device = x.device().as_dispatch().clone().inner();
        x.dtype() == DType::F32 && matches!(device, DispatchDevice::Flex(_))
    }

    /// 2×2 max-pooling with stride 2 (see `pool.rs`).
    pub(crate) fn max_pool2x2(x: Tensor<4>) -> Tensor<4> {
        Tensor::from_dispatch(<Dispatch as FlexKernels>::max_pool2x2(x.into_dispatch()))
    }

    /// Stride-1 convolution with a bias (see `fastconv.rs`).
    pub(crate) fn conv2d_s1(
        x: Tensor<4>,
        weight: Tensor<4>,
        bias: Tensor<1>,
        padding: [usize; 2],
    ) -> Tensor<4> {
        Tensor::from_dispatch(<Dispatch as FlexKernels>::conv2d_s1(
            x.into_dispatch(),
            weight.into_dispatch(),
            bias.into_dispatch(),
            padding,
        ))
    }
}

#[cfg(not(feature = "flex"))]
mod none {
    use burn::tensor::Tensor;

    pub(crate) fn supported(_: &Tensor<4>) -> bool {
        false
    }

    pub(crate) fn max_pool2x2(_: Tensor<4>) -> Tensor<4> {
        unreachable!("only used where `supported` holds")
    }

    pub(crate) fn conv2d_s1(_: Tensor<4>, _: Tensor<4>, _: Tensor<1>, _: [usize; 2]) -> Tensor<4> {
        unreachable!("only used where `supported` holds")
    }
}

#[cfg(all(test, feature = "flex"))]
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

    /// Asserts that `fast` and `burn` hold the same bits, then backpropagates the same random
    /// weighting of each: the gradients of `fast`'s graph and of `burn`'s.
    fn compare_and_backward(
        fast: Tensor<4>,
        burn: Tensor<4>,
        what: &str,
    ) -> (burn::tensor::Gradients, burn::tensor::Gradients) {
        assert_eq!(
            bits(fast.clone().detach()),
            bits(burn.clone().detach()),
            "{what}"
        );
        let weights = Tensor::<4>::random(burn.dims(), Distribution::Default, &burn.device());
        let gf = (fast * weights.clone()).sum().backward();
        let gb = (burn * weights).sum().backward();
        (gf, gb)
    }

    #[test]
    fn pooling_equals_burns_in_values_and_gradients_bit_for_bit() {
        let dev = device().autodiff();
        let pool = MaxPool2dConfig::new([2, 2]).init();
        // Even and odd sizes (the last row and column of an odd map are dropped).
        for dims in [[2, 3, 8, 10], [3, 2, 7, 9]] {
            let data = TensorData::new(ties(dims), dims);
            let x = Tensor::<4>::from_data(data, &dev).require_grad();
            assert!(super::supported(&x));
            let fast = crate::pool::max_pool2d(&pool, x.clone());
            let burn = pool.forward(x.clone());
            let (gf, gb) = compare_and_backward(fast, burn, &format!("{dims:?}"));
            let (gf, gb) = (x.grad(&gf).unwrap(), x.grad(&gb).unwrap());
            assert_eq!(bits(gf), bits(gb), "{dims:?}");
        }
    }

    #[test]
    fn stride1_convolution_equals_burns_with_its_gradients() {
        let dev = device().autodiff();
        // 3×3 "same", 5×3 with padding (2, 1), and 3×3 without padding.
        for (kernel, padding) in [
            ([3, 3], PaddingConfig2d::Explicit(1, 1, 1, 1)),
            ([5, 3], PaddingConfig2d::Explicit(2, 1, 2, 1)),
            ([3, 3], PaddingConfig2d::Valid),
        ] {
            let conv = Conv2dConfig::new([5, 7], kernel)
                .with_padding(padding.clone())
                .init(&dev);
            let x = Tensor::<4>::random([3, 5, 9, 11], Distribution::Default, &dev).require_grad();
            assert!(super::supported(&x));
            let fast = crate::fastconv::conv2d(&conv, x.clone());
            let burn = conv.forward(x.clone());
            // Same forward kernel: same bits.
            let (gf, gb) = compare_and_backward(fast, burn, &format!("{padding:?}"));
            // The input's gradient is flex's own; the bias's the same sum as Burn's.
            assert_eq!(bits(x.grad(&gf).unwrap()), bits(x.grad(&gb).unwrap()));
            let bias = conv.bias.as_ref().unwrap().val();
            assert_eq!(bits(bias.grad(&gf).unwrap()), bits(bias.grad(&gb).unwrap()));
            // The weight's: another summation order, so equal to float precision.
            let (wf, wb) = (
                conv.weight.val().grad(&gf).unwrap(),
                conv.weight.val().grad(&gb).unwrap(),
            );
            let scale: f32 = wb.clone().abs().max().into_scalar();
            let diff: f32 = (wf - wb).abs().max().into_scalar();
            assert!(
                diff <= 1e-5 * scale,
                "weight gradients differ by {diff} (scale {scale})"
            );
        }
    }
}
