//! The CNNs filterlab studies, with named feature-map taps and a table of their layers.
//!
//! - [`RefCnn`]: the reference network for 28×28 grey images (two conv layers, two linear).
//! - [`PlainCnn`]: a deep stack of 3×3 convolutions without normalization or skips, the subject
//!   of the depth experiments.
//! - [`ModelSpec`]: a serializable description that rebuilds either one.
//! - [`Classifier`]: what the trainer and the analyses need from a model: logits, feature maps by
//!   layer name ([`Tap`]), and the [`LayerInfo`] table (shapes, fans, and which layer consumes
//!   each layer's output, for pruning and permutation).
//!
//! - [`features`]: streaming per-channel moments and correlations of feature maps.
//! - [`pytorch`]: the models' parameters under PyTorch's state-dict names and layouts (for
//!   importing and exporting weights), with rename rules and a check that lists every
//!   difference.
//! - [`ConvBn`]: a conv → BatchNorm → linear network with a hand-written layer table: how another
//!   model plugs into pruning and comparison.
//!
//! Models are backend-agnostic: they take a `burn::tensor::Device`.

#[cfg(any(feature = "flex", feature = "ndarray"))]
mod conv_host;
mod convbn;
mod fastconv;
pub mod features;
mod kernels;
mod layers;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod matmul;
mod plain;
mod pool;
pub mod pytorch;
mod reference;
#[cfg(any(feature = "flex", feature = "ndarray"))]
mod winograd;

pub use convbn::ConvBn;
pub use layers::{
    LayerInfo, LayerKind, find_hidden_layer, find_layer, hidden_layer_names, hidden_layers,
    producer,
};
pub use plain::{PlainCnn, PlainCnnConfig};
pub use reference::{RefCnn, RefCnnConfig};

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// Model construction errors.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A structural option is out of range.
    #[error("invalid model option {name} = {value}: {expected}")]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is allowed.
        expected: &'static str,
    },
    /// An unknown activation name.
    #[error("unknown activation '{0}' (expected relu, leaky-relu, tanh or identity)")]
    UnknownActivation(String),
    /// A layer name that is not in the model.
    #[error("the model has no layer '{layer}'; its layers are: {known}")]
    UnknownLayer {
        /// The name given.
        layer: String,
        /// Every layer of the model.
        known: String,
    },
    /// A layer that is not a hidden layer (unknown, or the classifier head).
    #[error("{}; the hidden layers are: {hidden}", if *exists { format!("'{layer}' produces the logits, not a hidden layer") } else { format!("the model has no layer '{layer}'") })]
    NotHidden {
        /// The name given.
        layer: String,
        /// Whether the model has a layer of that name (the head).
        exists: bool,
        /// The hidden layers.
        hidden: String,
    },
}

/// The nonlinearity after each hidden layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// `max(0, x)`.
    #[default]
    Relu,
    /// `x` for `x ≥ 0`, `0.01·x` otherwise (PyTorch's default slope).
    LeakyRelu,
    /// `tanh(x)`.
    Tanh,
    /// No nonlinearity: a deep linear network.
    Identity,
}

impl Activation {
    /// Slope of [`Activation::LeakyRelu`] for negative inputs.
    pub const LEAKY_SLOPE: f64 = 0.01;

    /// Apply the nonlinearity.
    pub fn forward<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Relu => burn::tensor::activation::relu(x),
            Activation::LeakyRelu => burn::tensor::activation::leaky_relu(x, Self::LEAKY_SLOPE),
            Activation::Tanh => x.tanh(),
            Activation::Identity => x,
        }
    }

    /// The kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::LeakyRelu => "leaky-relu",
            Activation::Tanh => "tanh",
            Activation::Identity => "identity",
        }
    }
}

impl std::str::FromStr for Activation {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, ModelError> {
        match s {
            "relu" => Ok(Activation::Relu),
            "leaky-relu" | "leaky_relu" => Ok(Activation::LeakyRelu),
            "tanh" => Ok(Activation::Tanh),
            "identity" | "linear" => Ok(Activation::Identity),
            other => Err(ModelError::UnknownActivation(other.to_string())),
        }
    }
}

/// Feature maps of one hidden layer for a batch, before and after its nonlinearity.
///
/// Linear layers report `[N, features, 1, 1]` so every tap has the same rank.
#[derive(Debug, Clone)]
pub struct Tap {
    /// The layer's name, as in [`LayerInfo::name`] and the parameter paths.
    pub layer: String,
    /// Output of the layer, before the nonlinearity: `[N, C, H, W]`.
    pub pre: Tensor<4>,
    /// After the nonlinearity (before any pooling): `[N, C, H, W]`.
    pub post: Tensor<4>,
}

/// What every filterlab model provides.
pub trait Classifier: Module + Sized {
    /// Class logits.
    ///
    /// # Shapes
    /// - `images`: `[N, 1, H, W]`
    /// - returns `[N, num_classes]`
    fn forward(&self, images: Tensor<4>) -> Tensor<2>;

    /// Logits and the feature maps of every hidden layer, in order.
    ///
    /// Call it on a model without autodiff (`model.valid()`, or one built on a plain device) to
    /// avoid building a graph; [`feature_maps`] does that for you.
    ///
    /// # Shapes
    /// - `images`: `[N, 1, H, W]`
    /// - returns `[N, num_classes]` and one [`Tap`] per hidden layer
    fn forward_taps(&self, images: Tensor<4>) -> (Tensor<2>, Vec<Tap>);

    /// The conv and linear layers, in forward order.
    fn layers(&self) -> Vec<LayerInfo>;
}

/// Feature maps of every hidden layer on `images`, computed without an autodiff graph.
///
/// # Shapes
/// - `images`: `[N, 1, H, W]` on a device without autodiff
pub fn feature_maps<M: Classifier>(model: &M, images: Tensor<4>) -> Vec<Tap> {
    model.valid().forward_taps(images).1
}

/// A serializable description of a model, sufficient to rebuild it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "arch", rename_all = "kebab-case")]
pub enum ModelSpec {
    /// [`RefCnn`].
    Ref(RefCnnConfig),
    /// [`PlainCnn`].
    Plain(PlainCnnConfig),
}

impl ModelSpec {
    /// Check every structural option.
    pub fn validate(&self) -> Result<(), ModelError> {
        match self {
            ModelSpec::Ref(c) => c.validate(),
            ModelSpec::Plain(c) => c.validate(),
        }
    }

    /// A one-line description, e.g. `ref (width 1)` or `plain (depth 20, width 16, relu)`.
    pub fn describe(&self) -> String {
        match self {
            ModelSpec::Ref(c) => match c.channels {
                Some(ch) => format!("ref (channels {ch:?})"),
                None => format!("ref (width ×{})", c.width),
            },
            ModelSpec::Plain(c) => format!(
                "plain (depth {}, {}, {})",
                c.depth,
                match &c.widths {
                    Some(w) => format!("widths {w:?}"),
                    None => format!("width {}", c.width),
                },
                c.activation.name()
            ),
        }
    }
}

/// Call `$body` with `$model` bound to the model `$spec` describes, built on `$device`. Every arm
/// is the same code, monomorphized for one architecture: the way to write code generic over
/// [`ModelSpec`]. Parameters are Burn's lazy defaults until something initializes or loads them.
#[macro_export]
macro_rules! with_model {
    ($spec:expr, $device:expr, |$model:ident| $body:expr) => {
        match $spec {
            $crate::ModelSpec::Ref(c) => {
                let $model = c.init($device);
                $body
            }
            $crate::ModelSpec::Plain(c) => {
                let $model = c.init($device);
                $body
            }
        }
    };
}

/// Number of parameters of the model `spec` describes.
pub fn num_params(spec: &ModelSpec, device: &Device) -> usize {
    with_model!(spec, device, |m| m.num_params())
}

impl ModelSpec {
    /// Side of the square input images.
    pub fn image_size(&self) -> usize {
        match self {
            ModelSpec::Ref(c) => c.image_size,
            ModelSpec::Plain(c) => c.image_size,
        }
    }

    /// The same architecture with `channels` output channels for the named hidden layers (the
    /// others unchanged): the model that remains when filters are physically removed. A name
    /// that is not a hidden layer of this architecture is an error naming the hidden layers.
    pub fn with_out_channels(
        &self,
        channels: &std::collections::BTreeMap<String, usize>,
    ) -> Result<ModelSpec, ModelError> {
        let names = self.hidden_layer_names();
        for (name, &n) in channels {
            if !names.contains(name) {
                return Err(ModelError::NotHidden {
                    layer: name.clone(),
                    exists: false,
                    hidden: names.join(", "),
                });
            }
            if n == 0 {
                return Err(ModelError::InvalidOption {
                    name: "channels",
                    value: format!("{name} = 0"),
                    expected: "at least one channel per layer",
                });
            }
        }
        let width = |i: usize, current: usize| channels.get(&names[i]).copied().unwrap_or(current);
        let spec = match self {
            ModelSpec::Ref(c) => {
                let w = c.widths();
                let mut c = c.clone();
                c.channels = Some([width(0, w[0]), width(1, w[1]), width(2, w[2])]);
                ModelSpec::Ref(c)
            }
            ModelSpec::Plain(c) => {
                let mut c = c.clone();
                c.widths = Some(
                    c.layer_widths()
                        .into_iter()
                        .enumerate()
                        .map(|(i, w)| width(i, w))
                        .collect(),
                );
                ModelSpec::Plain(c)
            }
        };
        spec.validate()?;
        Ok(spec)
    }

    /// The names of the hidden layers of this architecture, in forward order (the same as
    /// [`hidden_layer_names`] of the built model's table).
    pub fn hidden_layer_names(&self) -> Vec<String> {
        match self {
            ModelSpec::Ref(_) => ["conv1", "conv2", "fc1"].map(String::from).to_vec(),
            ModelSpec::Plain(c) => (0..c.depth).map(|i| format!("convs.{i}")).collect(),
        }
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use burn::tensor::Device;

    pub fn device() -> Device {
        Device::flex()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::test_util::device;

    #[test]
    fn layers_are_found_by_name_with_errors_naming_the_others() {
        let t = RefCnnConfig::new().init(&device()).layers();
        assert_eq!(find_layer(&t, "fc1").unwrap().name, "fc1");
        let e = find_layer(&t, "conv3").unwrap_err().to_string();
        assert!(
            e.contains("'conv3'") && e.contains("conv1, conv2, fc1, fc2"),
            "{e}"
        );
        assert!(find_hidden_layer(&t, "conv2").is_ok());
        let e = find_hidden_layer(&t, "fc2").unwrap_err().to_string();
        assert!(
            e.contains("produces the logits") && e.contains("conv1, conv2, fc1"),
            "{e}"
        );
        assert_eq!(producer(&t, "conv2").unwrap().name, "conv1");
        assert!(producer(&t, "conv1").is_none());
        let tiles = t[1].kernel_tiles(&vec![1.0; 64 * 32 * 9]);
        assert_eq!((tiles.len(), tiles[0].len()), (64, 9));
    }

    #[test]
    fn specs_with_fewer_channels() {
        for spec in [
            ModelSpec::Ref(RefCnnConfig::new().with_width(0.5)),
            ModelSpec::Plain(PlainCnnConfig::new().with_depth(3).with_width(6)),
        ] {
            let table = with_model!(&spec, &device(), |m| m.layers());
            assert_eq!(spec.hidden_layer_names(), hidden_layer_names(&table));
            let first = table[0].name.clone();
            let last_hidden = hidden_layer_names(&table).pop().unwrap();
            let narrowed = spec
                .with_out_channels(&BTreeMap::from([
                    (first.clone(), 3),
                    (last_hidden.clone(), 2),
                ]))
                .unwrap();
            let small = with_model!(&narrowed, &device(), |m| m.layers());
            for (a, b) in table.iter().zip(&small) {
                let want = if a.name == first {
                    3
                } else if a.name == last_hidden {
                    2
                } else {
                    a.out_channels
                };
                assert_eq!(b.out_channels, want, "{}", a.name);
            }
            let head = table.last().unwrap().name.clone();
            let err = spec
                .with_out_channels(&BTreeMap::from([(head, 1)]))
                .unwrap_err();
            assert!(matches!(err, ModelError::NotHidden { .. }), "{err}");
            assert!(
                spec.with_out_channels(&BTreeMap::from([(first, 0)]))
                    .is_err()
            );
        }
    }
}
