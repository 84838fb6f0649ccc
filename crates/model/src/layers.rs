//! The layer table: what pruning, permutation and initialization need to know about each layer.

use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use serde::{Deserialize, Serialize};

use crate::{Activation, ModelError};

/// Kind of a parameterized layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayerKind {
    /// `Conv2d`, weight `[out, in/groups, kh, kw]`.
    Conv2d,
    /// `Linear` in Burn's row layout, weight `[in, out]`.
    Linear,
}

/// One conv or linear layer of a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// Module path of the layer (`conv1`, `convs.3`, `fc1`); its parameters are
    /// `<name>.weight` and `<name>.bias`.
    pub name: String,
    /// Conv or linear.
    pub kind: LayerKind,
    /// Shape of the weight as stored.
    pub weight_shape: Vec<usize>,
    /// Input channels (features for linear layers).
    pub in_channels: usize,
    /// Output channels (filters; features for linear layers).
    pub out_channels: usize,
    /// Kernel size (`[1, 1]` for linear layers).
    pub kernel: [usize; 2],
    /// Fan-in: `in/groups · kh · kw` (`in` for linear layers).
    pub fan_in: usize,
    /// Fan-out: `out · kh · kw` (`out` for linear layers). Burn divides this by `groups`;
    /// PyTorch does not; no filterlab model uses groups, so the two agree here.
    pub fan_out: usize,
    /// Spatial size of the output feature map (`[1, 1]` for linear layers).
    pub output_hw: [usize; 2],
    /// Nonlinearity applied to the output (`None` for the classifier head).
    pub activation: Option<Activation>,
    /// The layer that reads this layer's output, if any.
    pub consumer: Option<String>,
    /// How many consecutive input features of the consumer each output channel feeds: 1 for a
    /// conv consumer (one input channel), `h·w` when the consumer is a linear layer reading the
    /// flattened `[C, h, w]` map channel by channel.
    pub consumer_inputs_per_channel: usize,
    /// Module path of a per-channel normalization applied to this layer's output before the
    /// nonlinearity (a `BatchNorm` at `bn1`, say), if any. Pruning a filter must then also zero
    /// the normalization's `gamma` and `beta` for that channel: its shift alone would keep the
    /// channel alive. The filterlab models have none; tables of other models set it with
    /// [`LayerInfo::with_norm`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub norm: Option<String>,
}

/// The table entry of a conv layer.
pub(crate) fn conv_info(
    name: &str,
    conv: &Conv2d,
    output_hw: [usize; 2],
    activation: Activation,
    consumer: Option<(&str, usize)>,
) -> LayerInfo {
    let shape = conv.weight.lazy_shape().to_vec();
    let (out, in_per_group, kh, kw) = (shape[0], shape[1], shape[2], shape[3]);
    LayerInfo {
        name: name.to_string(),
        kind: LayerKind::Conv2d,
        in_channels: in_per_group * conv.groups,
        out_channels: out,
        kernel: [kh, kw],
        fan_in: in_per_group * kh * kw,
        fan_out: out * kh * kw,
        weight_shape: shape,
        output_hw,
        activation: Some(activation),
        consumer: consumer.map(|(c, _)| c.to_string()),
        consumer_inputs_per_channel: consumer.map_or(0, |(_, n)| n),
        norm: None,
    }
}

/// The table entry of a linear layer.
pub(crate) fn linear_info(
    name: &str,
    linear: &Linear,
    activation: Option<Activation>,
    consumer: Option<&str>,
) -> LayerInfo {
    let shape = linear.weight.lazy_shape().to_vec();
    let (d_in, d_out) = (shape[0], shape[1]);
    LayerInfo {
        name: name.to_string(),
        kind: LayerKind::Linear,
        in_channels: d_in,
        out_channels: d_out,
        kernel: [1, 1],
        fan_in: d_in,
        fan_out: d_out,
        weight_shape: shape,
        output_hw: [1, 1],
        activation,
        consumer: consumer.map(str::to_string),
        consumer_inputs_per_channel: usize::from(consumer.is_some()),
        norm: None,
    }
}

/// The hidden layers of a table: those whose output another layer reads (every layer but the
/// classifier head). Their filters are the ones that can be pruned, permuted and compared.
pub fn hidden_layers(layers: &[LayerInfo]) -> Vec<&LayerInfo> {
    layers.iter().filter(|l| l.consumer.is_some()).collect()
}

/// The names of the hidden layers, in forward order.
pub fn hidden_layer_names(layers: &[LayerInfo]) -> Vec<String> {
    hidden_layers(layers)
        .into_iter()
        .map(|l| l.name.clone())
        .collect()
}

/// The entry of layer `name`, or an error naming it and every layer of the table.
pub fn find_layer<'a>(layers: &'a [LayerInfo], name: &str) -> Result<&'a LayerInfo, ModelError> {
    layers
        .iter()
        .find(|l| l.name == name)
        .ok_or_else(|| ModelError::UnknownLayer {
            layer: name.to_string(),
            known: layers
                .iter()
                .map(|l| l.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The hidden layer `name` (one whose output another layer reads: prunable, permutable), or an
/// error naming it and every hidden layer.
pub fn find_hidden_layer<'a>(
    layers: &'a [LayerInfo],
    name: &str,
) -> Result<&'a LayerInfo, ModelError> {
    match layers.iter().find(|l| l.name == name) {
        Some(l) if l.consumer.is_some() => Ok(l),
        found => Err(ModelError::NotHidden {
            layer: name.to_string(),
            exists: found.is_some(),
            hidden: hidden_layer_names(layers).join(", "),
        }),
    }
}

/// The layer whose output `name` reads, if any (none for the first layer).
pub fn producer<'a>(layers: &'a [LayerInfo], name: &str) -> Option<&'a LayerInfo> {
    layers.iter().find(|p| p.consumer.as_deref() == Some(name))
}

impl LayerInfo {
    /// Path of the weight parameter.
    pub fn weight_path(&self) -> String {
        format!("{}.weight", self.name)
    }

    /// Path of the bias parameter.
    pub fn bias_path(&self) -> String {
        format!("{}.bias", self.name)
    }

    /// This entry with a per-channel normalization at module path `norm` after the layer.
    pub fn with_norm(mut self, norm: &str) -> Self {
        self.norm = Some(norm.to_string());
        self
    }

    /// Paths of the running statistics of a following normalization (`<norm>.running_mean`,
    /// `<norm>.running_var`): per-channel buffers that a permutation or a compact export must
    /// reorder or slice with the channels; empty without a normalization.
    pub fn norm_buffer_paths(&self) -> Vec<String> {
        self.norm
            .iter()
            .flat_map(|n| [format!("{n}.running_mean"), format!("{n}.running_var")])
            .collect()
    }

    /// Images of the filters, one `kh × kw` tile per output channel (row-major), each the
    /// filter's kernel averaged over its input channels; `weight` in storage order.
    pub fn kernel_tiles(&self, weight: &[f32]) -> Vec<Vec<f32>> {
        let k = self.kernel[0] * self.kernel[1];
        self.filters(weight)
            .iter()
            .map(|f| {
                let ch = f.len() / k;
                (0..k)
                    .map(|t| (0..ch).map(|c| f[c * k + t]).sum::<f32>() / ch as f32)
                    .collect()
            })
            .collect()
    }

    /// Paths of the normalization parameters with one value per output channel that pruning a
    /// filter must zero (`<norm>.gamma`, `<norm>.beta`); empty without a normalization.
    pub fn norm_paths(&self) -> Vec<String> {
        self.norm
            .iter()
            .flat_map(|n| [format!("{n}.gamma"), format!("{n}.beta")])
            .collect()
    }

    /// Index of the weight element `(output channel o, position k within the filter)` in storage
    /// order, where a filter is the `in·kh·kw` (conv) or `in` (linear) weights of one output.
    pub fn weight_index(&self, o: usize, k: usize) -> usize {
        match self.kind {
            LayerKind::Conv2d => o * self.filter_len() + k,
            LayerKind::Linear => k * self.out_channels + o,
        }
    }

    /// Weights per filter: `in·kh·kw` for a conv, `in` for a linear layer.
    pub fn filter_len(&self) -> usize {
        self.weight_shape.iter().product::<usize>() / self.out_channels
    }

    /// Split a weight (storage order) into one filter per output channel.
    pub fn filters(&self, weight: &[f32]) -> Vec<Vec<f32>> {
        let len = self.filter_len();
        (0..self.out_channels)
            .map(|o| (0..len).map(|k| weight[self.weight_index(o, k)]).collect())
            .collect()
    }
}
