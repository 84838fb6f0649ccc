//! Activation and gradient statistics of a network at initialization.

use burn::module::{Module, Param};
use burn::tensor::{Gradients, Tensor};
use params::ParamVisitor;
use serde::{Deserialize, Serialize};

/// Statistics of one layer's outputs on a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerStats {
    /// Layer name.
    pub layer: String,
    /// Mean of the pre-activations.
    pub pre_mean: f64,
    /// Standard deviation of the pre-activations.
    pub pre_std: f64,
    /// Mean after the nonlinearity.
    pub post_mean: f64,
    /// Standard deviation after the nonlinearity.
    pub post_std: f64,
    /// Fraction of units (channel × position) that are ≤ 0 after the nonlinearity for every
    /// example of the batch.
    pub dead_fraction: f64,
    /// Standard deviation of the loss gradient with respect to the layer's weight.
    pub weight_grad_std: Option<f64>,
}

/// Mean and (population) standard deviation of every element. The values are divided by their
/// largest magnitude first, so squares do not overflow f32 for exploding activations.
pub fn mean_std<const D: usize>(t: &Tensor<D>) -> (f64, f64) {
    let n = t.shape().num_elements();
    let x = t.clone().reshape([n]);
    let scale: f32 = x.clone().abs().max().into_scalar();
    if !scale.is_finite() {
        return (f64::NAN, f64::INFINITY);
    }
    if scale == 0.0 {
        return (0.0, 0.0);
    }
    let x = x.div_scalar(scale);
    let mean = x.clone().mean();
    let c = x.sub(mean.clone());
    let var: f32 = c.clone().mul(c).mean().into_scalar();
    let mean: f32 = mean.into_scalar();
    (
        mean as f64 * scale as f64,
        (var as f64).sqrt() * scale as f64,
    )
}

/// Statistics of a layer from its pre- and post-activation maps `[N, C, H, W]`.
pub fn layer_stats(layer: &str, pre: &Tensor<4>, post: &Tensor<4>) -> LayerStats {
    let (pre_mean, pre_std) = mean_std(pre);
    let (post_mean, post_std) = mean_std(post);
    let [_, c, h, w] = post.dims();
    // A unit is dead if it is never positive over the batch.
    let alive = post.clone().greater_elem(0.0).int().sum_dim(0);
    let dead: i64 = alive.equal_elem(0).int().sum().into_scalar();
    LayerStats {
        layer: layer.to_string(),
        pre_mean,
        pre_std,
        post_mean,
        post_std,
        dead_fraction: dead as f64 / (c * h * w) as f64,
        weight_grad_std: None,
    }
}

/// Standard deviation of the gradient of every float parameter that has one, by path.
pub fn grad_stds<M: Module>(module: &M, grads: &Gradients) -> Vec<(String, f64)> {
    struct Visit<'a> {
        grads: &'a Gradients,
        out: Vec<(String, f64)>,
    }
    impl ParamVisitor for Visit<'_> {
        fn visit<const D: usize>(&mut self, path: &str, _: &str, param: &Param<Tensor<D>>) {
            if let Some(g) = param.val().grad(self.grads) {
                self.out.push((path.to_string(), mean_std(&g).1));
            }
        }
    }
    let mut v = Visit {
        grads,
        out: Vec::new(),
    };
    params::visit(module, &mut v);
    v.out
}
