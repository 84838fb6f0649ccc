//! Layer-sequential unit-variance initialization (Mishkin & Matas 2016, "All you need is a good
//! init"): after an orthogonal pre-initialization, each layer's weights, in forward order, are
//! divided by the standard deviation of its output on a batch of real data until the output
//! variance is within `tol` of 1.

use burn::module::{Module, Param};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::InitError;
use params::ParamMapper;

/// What LSUV did to one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LsuvLayer {
    /// The weight's path.
    pub weight: String,
    /// Rescaling rounds performed.
    pub iterations: usize,
    /// Output variance after the orthogonal pre-initialization.
    pub initial_variance: f64,
    /// Output variance at the end.
    pub final_variance: f64,
}

/// Variance of every element of `t` (population variance).
pub fn variance(t: &Tensor<4>) -> f64 {
    let x = t.clone().flatten::<1>(0, 3);
    let mean = x.clone().mean();
    let centered = x.sub(mean);
    let v: f32 = centered.clone().mul(centered).mean().into_scalar();
    v as f64
}

/// Rescale `weights` (parameter paths, in forward order) so that the outputs `outputs(&module)`
/// returns, one per weight in the same order, have unit variance within `tol`, with at most
/// `max_iter` rounds per layer.
pub fn lsuv<M: Module>(
    mut module: M,
    weights: &[String],
    outputs: impl Fn(&M) -> Vec<Tensor<4>>,
    tol: f64,
    max_iter: usize,
) -> Result<(M, Vec<LsuvLayer>), InitError> {
    let mut report = Vec::with_capacity(weights.len());
    for (i, weight) in weights.iter().enumerate() {
        let output_variance = |m: &M| -> Result<f64, InitError> {
            let outs = outputs(m);
            let out = outs
                .get(i)
                .ok_or_else(|| InitError::Lsuv(format!("no output for layer {i} ({weight})")))?;
            Ok(variance(out))
        };
        let initial = output_variance(&module)?;
        let (mut var, mut iterations) = (initial, 0);
        while (var - 1.0).abs() >= tol && iterations < max_iter {
            if !(var.is_finite() && var > 0.0) {
                return Err(InitError::Lsuv(format!(
                    "the output variance of {weight} is {var}; cannot rescale (dead layer?)"
                )));
            }
            module = scale_param(module, weight, 1.0 / var.sqrt())?;
            iterations += 1;
            var = output_variance(&module)?;
        }
        report.push(LsuvLayer {
            weight: weight.clone(),
            iterations,
            initial_variance: initial,
            final_variance: var,
        });
    }
    Ok((module, report))
}

/// Multiply the parameter at `path` by `factor` (on the host, so the result is exact and a new
/// leaf).
fn scale_param<M: Module>(module: M, path: &str, factor: f64) -> Result<M, InitError> {
    struct Scale<'a> {
        target: &'a str,
        factor: f64,
        found: bool,
    }
    impl ParamMapper for Scale<'_> {
        fn map<const D: usize>(&mut self, path: &str, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            if path != self.target {
                return param;
            }
            self.found = true;
            let values: Vec<f32> = param
                .val()
                .into_data()
                .try_into_vec_as::<f32>()
                .expect("float parameter")
                .into_iter()
                .map(|v| (v as f64 * self.factor) as f32)
                .collect();
            params::replace_values(param, values)
        }
    }
    let mut mapper = Scale {
        target: path,
        factor,
        found: false,
    };
    let module = params::map(module, &mut mapper);
    if !mapper.found {
        return Err(InitError::Lsuv(format!("no parameter {path}")));
    }
    Ok(module)
}
