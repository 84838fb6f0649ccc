//! Kernels for the CPU backends where Burn's generic ones are slow, plugged in as a Burn backend
//! extension with their own backward passes:
//!
//! - 2×2 max-pooling (see `pool.rs`);
//! - a stride-1 convolution whose weight gradient is one matrix product with the batch's patch
//!   matrix (see `fastconv.rs`), where Burn computes it as another convolution with the batch as
//!   channels and the output map as the kernel. On flex its forward pass and input gradient are
//!   flex's own; on ndarray, whose convolution backward is a direct loop, the input gradient is a
//!   matrix product too, folded back into the image (col2im). The bias gradient is Burn's sum.
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
    use burn::backend::{Backend, Dispatch, DispatchDevice, backend_extension};
    use burn::tensor::{DType, Shape, Tensor, TensorData};

    /// The extension: forward kernels and the backward kernels their autodiff versions call.
    #[backend_extension(Flex: cfg(feature = "flex"), NdArray: cfg(feature = "ndarray"), Autodiff)]
    pub trait CpuKernels: Backend {
        /// 2×2 max-pooling with stride 2 of `[N, C, H, W]`: `[N, C, H/2, W/2]`.
        fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self>;
        /// Gradient of the input of [`CpuKernels::max_pool2x2`] given its output's gradient.
        fn max_pool2x2_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>)
        -> FloatTensor<Self>;
        /// Convolution with stride 1, no dilation or groups, zero padding `padding`.
        fn conv2d_s1(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            bias: FloatTensor<Self>,
            padding: [usize; 2],
        ) -> FloatTensor<Self>;
        /// Weight gradient of [`CpuKernels::conv2d_s1`] for a kernel of `kernel` taps, given
        /// the output gradient as rows `[O, N·OH·OW]` (see [`grad_rows`]).
        fn conv2d_s1_weight_grad(
            x: FloatTensor<Self>,
            grad_rows: FloatTensor<Self>,
            kernel: [usize; 2],
            padding: [usize; 2],
        ) -> FloatTensor<Self>;
        /// Input gradient of [`CpuKernels::conv2d_s1`] given the output gradient `grad`
        /// (`[N, O, OH, OW]`); `x` is the input (for its shape).
        fn conv2d_s1_input_grad(
            x: FloatTensor<Self>,
            weight: FloatTensor<Self>,
            grad: FloatTensor<Self>,
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

    /// The output size of a stride-1 convolution of an `h × w` map with `kernel` and `padding`.
    fn output_size([h, w]: [usize; 2], kernel: [usize; 2], padding: [usize; 2]) -> [usize; 2] {
        [
            h + 2 * padding[0] + 1 - kernel[0],
            w + 2 * padding[1] + 1 - kernel[1],
        ]
    }

    /// The weight gradient as one matrix product: `grad_rows` `[O, N·OH·OW]` times the
    /// transposed patch matrix of `x` (`[N, C, H, W]` on the host).
    fn weight_grad<B: Backend>(
        x: &[f32],
        [n, c, h, w]: [usize; 4],
        grad_rows: FloatTensor<B>,
        kernel: [usize; 2],
        padding: [usize; 2],
    ) -> FloatTensor<B> {
        use burn::backend::TensorMetadata;
        let o = grad_rows.shape()[0];
        let device = grad_rows.device();
        let [oh, ow] = output_size([h, w], kernel, padding);
        let cols = crate::fastconv::patches_host(x, [n, c, h, w], kernel, padding, [oh, ow]);
        let cols = B::float_from_data(
            TensorData::new(cols, [c * kernel[0] * kernel[1], n * oh * ow]),
            &device,
        );
        let dw = B::float_matmul(grad_rows, B::float_transpose(cols));
        B::float_reshape(dw, Shape::new([o, c, kernel[0], kernel[1]]))
    }

    #[cfg(feature = "flex")]
    mod flex {
        use burn::backend::Flex;
        use burn::backend::flex::FlexTensor;
        use burn::backend::ops::ModuleOps;
        use burn::backend::tensor::FloatTensor;
        use burn::tensor::TensorData;

        use super::{CpuKernels, options, weight_grad};

        /// A contiguous copy (or the tensor itself) and its four dimensions.
        fn contiguous(t: &FlexTensor) -> (FlexTensor, [usize; 4]) {
            let t = t.to_contiguous();
            let s = t.layout().shape();
            let dims = [s[0], s[1], s[2], s[3]];
            (t, dims)
        }

        impl CpuKernels for Flex {
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
                let out =
                    crate::pool::backward_host(x.storage::<f32>(), grad.storage::<f32>(), h, w);
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
                weight_grad::<Self>(x.storage::<f32>(), dims, grad_rows, kernel, padding)
            }

            fn conv2d_s1_input_grad(
                x: FloatTensor<Self>,
                weight: FloatTensor<Self>,
                grad: FloatTensor<Self>,
                padding: [usize; 2],
            ) -> FloatTensor<Self> {
                // flex's own transposed convolution is faster here than a matrix product.
                Self::conv2d_x_backward(x, weight, grad, options(padding))
            }
        }
    }

    #[cfg(feature = "ndarray")]
    mod ndarray {
        #![allow(deprecated)]

        use burn::backend::ndarray::NdArrayTensor;
        use burn::backend::ops::FloatTensorOps;
        use burn::backend::tensor::FloatTensor;
        use burn::backend::{NdArray, TensorMetadata};
        use burn::tensor::{Shape, TensorData};

        use super::{CpuKernels, output_size, weight_grad};

        /// `f` of an `f32` tensor's values in row-major order (borrowed where the array is in
        /// that layout, else copied) and its four dimensions. ndarray's own `into_data` copies
        /// element by element whenever the array is shared, which autodiff's saved tensors are.
        fn with_host<T>(t: &NdArrayTensor, f: impl FnOnce(&[f32], [usize; 4]) -> T) -> T {
            let s = t.shape();
            let dims = [s[0], s[1], s[2], s[3]];
            let NdArrayTensor::F32(storage) = t else {
                unreachable!("the kernels are used for f32 tensors only")
            };
            let view = storage.view();
            match view.as_slice() {
                Some(values) => f(values, dims),
                None => f(&view.iter().copied().collect::<Vec<f32>>(), dims),
            }
        }

        /// The values of an `f32` tensor, owned, and its four dimensions.
        fn host(t: &NdArrayTensor) -> (Vec<f32>, [usize; 4]) {
            with_host(t, |v, dims| (v.to_vec(), dims))
        }

        impl CpuKernels for NdArray {
            fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
                with_host(&x, |x, [n, c, h, w]| {
                    let out = crate::pool::forward_host(x, h, w);
                    NdArrayTensor::from_data(TensorData::new(out, [n, c, h / 2, w / 2]))
                })
            }

            fn max_pool2x2_backward(
                x: FloatTensor<Self>,
                grad: FloatTensor<Self>,
            ) -> FloatTensor<Self> {
                // Both read in place where they are laid out row-major (no copies).
                with_host(&grad, |grad, _| {
                    with_host(&x, |x, dims| {
                        let out = crate::pool::backward_host(x, grad, dims[2], dims[3]);
                        NdArrayTensor::from_data(TensorData::new(out, dims))
                    })
                })
            }

            fn conv2d_s1(
                x: FloatTensor<Self>,
                weight: FloatTensor<Self>,
                bias: FloatTensor<Self>,
                padding: [usize; 2],
            ) -> FloatTensor<Self> {
                // ndarray's direct convolution is slow, and its output is channels-last, which
                // every later host copy pays for: the patch matrix times the weights instead,
                // laid out `[N, O, OH, OW]` with the bias added on the way.
                let [o, c, kh, kw] = weight.shape().dims();
                let device = weight.device();
                let (cols, [n, oh, ow]) = with_host(&x, |x, [n, c_in, h, w]| {
                    debug_assert_eq!(c_in, c);
                    let [oh, ow] = output_size([h, w], [kh, kw], padding);
                    let cols =
                        crate::fastconv::patches_host(x, [n, c, h, w], [kh, kw], padding, [oh, ow]);
                    (cols, [n, oh, ow])
                });
                let cols = Self::float_from_data(
                    TensorData::new(cols, [c * kh * kw, n * oh * ow]),
                    &device,
                );
                let w2 = Self::float_reshape(weight, Shape::new([o, c * kh * kw]));
                let y = Self::float_matmul(w2, cols);
                let (bias, _) = host(&Self::float_reshape(bias, Shape::new([o, 1, 1, 1])));
                with_host(
                    &Self::float_reshape(y, Shape::new([o, n, oh, ow])),
                    |y, _| {
                        let ohw = oh * ow;
                        let mut out = vec![0.0f32; n * o * ohw];
                        for (k, dst) in out.chunks_exact_mut(ohw).enumerate() {
                            let (b, oc) = (k / o, k % o);
                            let src = &y[(oc * n + b) * ohw..(oc * n + b + 1) * ohw];
                            for (d, s) in dst.iter_mut().zip(src) {
                                *d = s + bias[oc];
                            }
                        }
                        NdArrayTensor::from_data(TensorData::new(out, [n, o, oh, ow]))
                    },
                )
            }

            fn conv2d_s1_weight_grad(
                x: FloatTensor<Self>,
                grad_rows: FloatTensor<Self>,
                kernel: [usize; 2],
                padding: [usize; 2],
            ) -> FloatTensor<Self> {
                with_host(&x, |x, dims| {
                    weight_grad::<Self>(x, dims, grad_rows, kernel, padding)
                })
            }

            fn conv2d_s1_input_grad(
                x: FloatTensor<Self>,
                weight: FloatTensor<Self>,
                grad: FloatTensor<Self>,
                padding: [usize; 2],
            ) -> FloatTensor<Self> {
                // ndarray's transposed convolution is a direct loop; as a matrix product, the
                // patch-matrix gradient `Wᵀ·G` (`[C·kh·kw, N·OH·OW]`) is folded into the image.
                let [n, c, h, w] = x.shape().dims();
                let [o, _, kh, kw] = weight.shape().dims();
                let [_, _, oh, ow] = grad.shape().dims();
                debug_assert_eq!([oh, ow], output_size([h, w], [kh, kw], padding));
                let rows = super::grad_rows::<Self>(grad);
                let wt = Self::float_transpose(Self::float_reshape(
                    weight,
                    Shape::new([o, c * kh * kw]),
                ));
                let cols = Self::float_matmul(wt, rows);
                let cols = Self::float_reshape(cols, Shape::new([c * kh * kw, n, oh, ow]));
                with_host(&cols, |cols, _| {
                    let dx =
                        crate::fastconv::fold_host(cols, [n, c, h, w], [kh, kw], padding, [oh, ow]);
                    NdArrayTensor::from_data(TensorData::new(dx, [n, c, h, w]))
                })
            }
        }
    }

    mod autodiff {
        use super::{CpuKernels, grad_rows};
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

        impl<B: Backend + CpuKernels> Backward<B, 3> for Conv {
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
                    let g = B::conv2d_s1_input_grad(x.clone(), weight, grad.clone(), padding);
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

        impl<B: Backend + CpuKernels, C: CheckpointStrategy> CpuKernels for Autodiff<B, C> {
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

            fn conv2d_s1_input_grad(
                x: FloatTensor<Self>,
                weight: FloatTensor<Self>,
                grad: FloatTensor<Self>,
                padding: [usize; 2],
            ) -> FloatTensor<Self> {
                FloatTensor::<Self>::new(B::conv2d_s1_input_grad(
                    x.into_primitive(),
                    weight.into_primitive(),
                    grad.into_primitive(),
                    padding,
                ))
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

    /// Stride-1 convolution with a bias (see `fastconv.rs`).
    pub(crate) fn conv2d_s1(
        x: Tensor<4>,
        weight: Tensor<4>,
        bias: Tensor<1>,
        padding: [usize; 2],
    ) -> Tensor<4> {
        Tensor::from_dispatch(<Dispatch as CpuKernels>::conv2d_s1(
            x.into_dispatch(),
            weight.into_dispatch(),
            bias.into_dispatch(),
            padding,
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

    pub(crate) fn conv2d_s1(_: Tensor<4>, _: Tensor<4>, _: Tensor<1>, _: [usize; 2]) -> Tensor<4> {
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
        // 3×3 "same", 5×3 with padding (2, 1), and 3×3 without padding.
        for (kernel, padding) in [
            ([3, 3], PaddingConfig2d::Explicit(1, 1, 1, 1)),
            ([5, 3], PaddingConfig2d::Explicit(2, 1, 2, 1)),
            ([3, 3], PaddingConfig2d::Valid),
        ] {
            let conv = Conv2dConfig::new([5, 7], kernel)
                .with_padding(padding.clone())
                .init(dev);
            let x = Tensor::<4>::random([3, 5, 9, 11], Distribution::Default, dev).require_grad();
            assert!(super::supported(&x));
            let fast = crate::fastconv::conv2d(&conv, x.clone());
            let burn = conv.forward(x.clone());
            // On flex the forward pass is Burn's own kernel: the same bits. On ndarray it is a
            // matrix product over the patch matrix: another summation order.
            let what = format!("{name} {padding:?}");
            let (gf, gb) = compare_and_backward(fast, burn, name == "flex", &what);
            let (xf, xb) = (x.grad(&gf).unwrap(), x.grad(&gb).unwrap());
            if name == "flex" {
                // flex's own transposed convolution: the same bits.
                assert_eq!(bits(xf), bits(xb), "{what}");
            } else {
                // A matrix product folded back: another summation order.
                close(xf, xb, &format!("{what}: input gradients"));
            }
            // The bias's: the same sum as Burn's.
            let bias = conv.bias.as_ref().unwrap().val();
            assert_eq!(bits(bias.grad(&gf).unwrap()), bits(bias.grad(&gb).unwrap()));
            // The weight's: another summation order, so equal to float precision.
            let (wf, wb) = (
                conv.weight.val().grad(&gf).unwrap(),
                conv.weight.val().grad(&gb).unwrap(),
            );
            close(wf, wb, &format!("{what}: weight gradients"));
        }
    }
}
