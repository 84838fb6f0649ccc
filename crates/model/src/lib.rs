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
//!
//! Models are backend-agnostic: they take a `burn::tensor::Device`.

mod fastconv;
pub mod features;
mod kernels;
mod layers;
mod plain;
mod pool;
mod reference;

pub use layers::{LayerInfo, LayerKind, hidden_layers};
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
}

#[cfg(test)]
pub(crate) mod test_util {
    use burn::tensor::Device;

    pub fn device() -> Device {
        Device::flex()
    }
}
