//! A deep plain CNN: no normalization, no skip connections.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use crate::fastconv::{Taps, conv_activation};
use crate::layers::{LayerInfo, conv_info, linear_info};
use crate::{Activation, Classifier, ModelError, Tap};

/// Smallest and largest supported depth of [`PlainCnn`].
pub const DEPTH_RANGE: std::ops::RangeInclusive<usize> = 2..=50;

/// Configuration of [`PlainCnn`].
#[derive(Config, Debug, PartialEq)]
pub struct PlainCnnConfig {
    /// Number of 3×3 conv layers.
    #[config(default = 20)]
    pub depth: usize,
    /// Channels of every conv layer.
    #[config(default = 32)]
    pub width: usize,
    /// Nonlinearity after every conv layer.
    #[config(default = "Activation::Relu")]
    pub activation: Activation,
    /// Number of classes.
    #[config(default = 10)]
    pub num_classes: usize,
    /// Input image side (square images).
    #[config(default = 28)]
    pub image_size: usize,
    /// Explicit channels of each conv layer, overriding `width` (a physically pruned model).
    #[config(default = "None")]
    pub widths: Option<Vec<usize>>,
}

/// `depth` conv 3×3 (stride 1, pad 1) layers of `width` channels, each followed by the
/// activation, then global average pooling and a linear head. The first layer maps 1 → width.
#[derive(Module, Debug)]
pub struct PlainCnn {
    /// The conv stack, `convs.0` … `convs.{depth-1}`.
    pub convs: Vec<Conv2d>,
    /// Linear head, width → classes.
    pub head: Linear,
    #[module(skip)]
    activation: Activation,
    #[module(skip)]
    image_size: usize,
}

impl PlainCnnConfig {
    /// Channels of each conv layer: explicit, or `width` everywhere.
    pub fn layer_widths(&self) -> Vec<usize> {
        self.widths
            .clone()
            .unwrap_or_else(|| vec![self.width; self.depth])
    }

    /// Check the options.
    pub fn validate(&self) -> Result<(), ModelError> {
        if !DEPTH_RANGE.contains(&self.depth) {
            return Err(ModelError::InvalidOption {
                name: "depth",
                value: self.depth.to_string(),
                expected: "2 to 50 conv layers",
            });
        }
        if let Some(w) = &self.widths
            && (w.len() != self.depth || w.contains(&0))
        {
            return Err(ModelError::InvalidOption {
                name: "widths",
                value: format!("{w:?}"),
                expected: "one positive channel count per conv layer",
            });
        }
        if !(1..=1024).contains(&self.width) {
            return Err(ModelError::InvalidOption {
                name: "width",
                value: self.width.to_string(),
                expected: "1 to 1024 channels",
            });
        }
        if self.num_classes < 2 || self.image_size == 0 {
            return Err(ModelError::InvalidOption {
                name: "num_classes/image_size",
                value: format!("{}/{}", self.num_classes, self.image_size),
                expected: "at least 2 classes and a positive image size",
            });
        }
        Ok(())
    }

    /// Build the model. Its parameters are Burn's lazy defaults until initialized or loaded.
    pub fn init(&self, device: &Device) -> PlainCnn {
        let widths = self.layer_widths();
        let convs = (0..self.depth)
            .map(|i| {
                let input = if i == 0 { 1 } else { widths[i - 1] };
                let c = Conv2dConfig::new([input, widths[i]], [3, 3])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1));
                c.init(device)
            })
            .collect();
        let head = LinearConfig::new(widths[self.depth - 1], self.num_classes);
        PlainCnn {
            convs,
            head: head.init(device),
            activation: self.activation,
            image_size: self.image_size,
        }
    }
}

impl PlainCnn {
    fn run(&self, images: Tensor<4>, mut taps: Taps<'_>) -> Tensor<2> {
        let mut x = images;
        for (i, conv) in self.convs.iter().enumerate() {
            let name = if taps.is_some() {
                format!("convs.{i}")
            } else {
                String::new()
            };
            x = conv_activation(conv, x, self.activation, &name, &mut taps);
        }
        let [n, c, _, _] = x.dims();
        let pooled = x.mean_dim(3).mean_dim(2).reshape([n, c]);
        self.head.forward(pooled)
    }
}

impl Classifier for PlainCnn {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.run(images, None)
    }

    fn forward_taps(&self, images: Tensor<4>) -> (Tensor<2>, Vec<Tap>) {
        crate::fastconv::collect_taps(|taps| self.run(images, taps))
    }

    fn layers(&self) -> Vec<LayerInfo> {
        let hw = [self.image_size, self.image_size];
        let depth = self.convs.len();
        let mut table: Vec<LayerInfo> = self
            .convs
            .iter()
            .enumerate()
            .map(|(i, conv)| {
                let consumer = if i + 1 < depth {
                    format!("convs.{}", i + 1)
                } else {
                    "head".to_string()
                };
                conv_info(
                    &format!("convs.{i}"),
                    conv,
                    hw,
                    self.activation,
                    Some((&consumer, 1)),
                )
            })
            .collect();
        table.push(linear_info("head", &self.head, None, None));
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::device;

    #[test]
    fn shapes_taps_and_table() {
        let cfg = PlainCnnConfig::new()
            .with_depth(3)
            .with_width(4)
            .with_activation(Activation::Tanh);
        cfg.validate().unwrap();
        let m = cfg.init(&device());
        let (logits, taps) = m.forward_taps(Tensor::<4>::ones([2, 1, 28, 28], &device()));
        assert_eq!(logits.dims(), [2, 10]);
        assert_eq!(taps.len(), 3);
        assert_eq!(taps[2].layer, "convs.2");
        assert_eq!(taps[2].post.dims(), [2, 4, 28, 28]);
        let table = m.layers();
        assert_eq!(table.len(), 4);
        assert_eq!((table[0].fan_in, table[0].fan_out), (9, 36));
        assert_eq!((table[1].fan_in, table[1].fan_out), (36, 36));
        assert_eq!(table[2].consumer.as_deref(), Some("head"));
        // 1·4·9+4 + 2·(4·4·9+4) + 4·10+10
        assert_eq!(m.num_params(), 40 + 2 * 148 + 50);
    }

    #[test]
    fn depth_range_is_enforced() {
        assert!(PlainCnnConfig::new().with_depth(1).validate().is_err());
        assert!(PlainCnnConfig::new().with_depth(51).validate().is_err());
        assert!(PlainCnnConfig::new().with_depth(50).validate().is_ok());
    }
}
