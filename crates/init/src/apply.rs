//! Initializing any Burn module by parameter path.

use std::collections::HashMap;

use burn::module::{Module, Param};
use burn::tensor::Tensor;
use params::{ParamRng, ParamVisitor};
use serde::{Deserialize, Serialize};

use crate::InitError;
use crate::scheme::{Law, Nonlinearity, ParamKind, ParamShape};
use crate::spec::InitSpec;

/// A float parameter of a module: its path, role and shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSlot {
    /// Path, e.g. `conv1.weight`.
    pub path: String,
    /// Role, from the enclosing module's type and the field name.
    pub kind: ParamKind,
    /// Shape.
    pub shape: Vec<usize>,
}

/// What was decided for one parameter, for the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedParam {
    /// Path.
    pub path: String,
    /// Role.
    pub kind: ParamKind,
    /// Shape.
    pub shape: Vec<usize>,
    /// Fan-in of its layer.
    pub fan_in: usize,
    /// Fan-out of its layer.
    pub fan_out: usize,
    /// The scheme, canonical text.
    pub scheme: String,
    /// The concrete law, e.g. `N(0, 4.7140e-1²)`.
    pub law: String,
}

/// Every float parameter of `module`, in traversal order, without initializing lazy ones.
pub fn collect_params<M: Module>(module: &M) -> Vec<ParamSlot> {
    struct Collect(Vec<ParamSlot>);
    impl ParamVisitor for Collect {
        fn visit<const D: usize>(&mut self, path: &str, container: &str, param: &Param<Tensor<D>>) {
            let name = path.rsplit('.').next().unwrap_or("");
            let shape = param.lazy_shape().to_vec();
            let kind = match (name, container, shape.len()) {
                ("bias", _, 1) => ParamKind::Bias,
                ("weight", c, 4) if c.ends_with("Conv2d") => ParamKind::ConvWeight,
                ("weight", c, 2) if c.ends_with("Linear") => ParamKind::LinearWeight,
                (_, _, 4) => ParamKind::ConvWeight,
                _ => ParamKind::Other,
            };
            self.0.push(ParamSlot {
                path: path.to_string(),
                kind,
                shape,
            });
        }
    }
    let mut c = Collect(Vec::new());
    params::visit(module, &mut c);
    c.0
}

/// The layer a parameter belongs to: its path without the last component.
fn layer_of(path: &str) -> &str {
    path.rsplit_once('.').map_or("", |(l, _)| l)
}

/// Decide the law of every parameter. `activation(layer)` names the nonlinearity after a layer
/// (used by Kaiming schemes without an explicit one, and by `burn-default`-style bias rules
/// through the layer's fans).
pub fn resolve(
    slots: &[ParamSlot],
    spec: &InitSpec,
    activation: &dyn Fn(&str) -> Option<Nonlinearity>,
) -> Result<Vec<(ResolvedParam, Law, ParamShape)>, InitError> {
    spec.check_patterns(slots.iter().map(|s| s.path.as_str()))?;
    // A bias takes its layer's fans, from the layer's weight.
    let weight_fans: HashMap<&str, (usize, usize)> = slots
        .iter()
        .filter(|s| s.kind != ParamKind::Bias)
        .map(|s| (layer_of(&s.path), ParamShape::fans(s.kind, &s.shape)))
        .collect();
    slots
        .iter()
        .map(|s| {
            let (fan_in, fan_out) = match s.kind {
                ParamKind::Bias => weight_fans
                    .get(layer_of(&s.path))
                    .copied()
                    .unwrap_or((s.shape[0], s.shape[0])),
                kind => ParamShape::fans(kind, &s.shape),
            };
            let shape = ParamShape {
                kind: s.kind,
                shape: s.shape.clone(),
                fan_in,
                fan_out,
            };
            let scheme = spec.scheme_for(&s.path, s.kind);
            let law = scheme
                .resolve(&shape, activation(layer_of(&s.path)))
                .map_err(|e| InitError::Param {
                    path: s.path.clone(),
                    source: Box::new(e),
                })?;
            Ok((
                ResolvedParam {
                    path: s.path.clone(),
                    kind: s.kind,
                    shape: s.shape.clone(),
                    fan_in,
                    fan_out,
                    scheme: scheme.to_string(),
                    law: law.to_string(),
                },
                law,
                shape,
            ))
        })
        .collect()
}

/// Initialize every float parameter of `module` as `spec` says, drawing each parameter's values
/// from [`ParamRng::new(seed, path)`](ParamRng::new) on the host and uploading them to the
/// parameter's device. Parameter ids are kept. Returns the module and what was decided.
///
/// LSUV in `spec` only does its orthogonal pre-initialization here; run [`crate::lsuv`] after.
pub fn apply<M: Module>(
    module: M,
    spec: &InitSpec,
    seed: u64,
    activation: &dyn Fn(&str) -> Option<Nonlinearity>,
) -> Result<(M, Vec<ResolvedParam>), InitError> {
    let slots = collect_params(&module);
    let resolved = resolve(&slots, spec, activation)?;
    let mut values = HashMap::new();
    for (r, law, shape) in &resolved {
        let mut rng = ParamRng::new(seed, &r.path);
        let v = law.sample(shape, &mut rng).map_err(|e| InitError::Param {
            path: r.path.clone(),
            source: Box::new(e),
        })?;
        values.insert(r.path.clone(), v);
    }
    let module = params::write(module, values)?;
    Ok((module, resolved.into_iter().map(|(r, _, _)| r).collect()))
}
