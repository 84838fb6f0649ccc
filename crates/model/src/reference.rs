//! The reference CNN.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::fastconv::{Taps, conv_activation_pool};
use crate::layers::{LayerInfo, conv_info, linear_info};
use crate::{Activation, Classifier, ModelError, Tap};

/// Configuration of [`RefCnn`].
#[derive(Config, Debug, PartialEq)]
pub struct RefCnnConfig {
    /// Width multiplier applied to every hidden layer (32, 64 and 128 at 1.0).
    #[config(default = 1.0)]
    pub width: f64,
    /// Number of classes.
    #[config(default = 10)]
    pub num_classes: usize,
    /// Input image side (square images).
    #[config(default = 28)]
    pub image_size: usize,
    /// Explicit channel counts `[conv1, conv2, fc1]`, overriding the width multiplier (a
    /// physically pruned model).
    #[config(default = "None")]
    pub channels: Option<[usize; 3]>,
}

/// The reference CNN:
/// `1×28×28 → conv 1→32 3×3 pad 1 → ReLU → maxpool 2 → conv 32→64 3×3 pad 1 → ReLU → maxpool 2
/// → linear 3136→128 → ReLU → linear 128→10` (421,642 parameters at width 1).
#[derive(Module, Debug)]
pub struct RefCnn {
    /// First convolution, 1 → 32·width channels.
    pub conv1: Conv2d,
    /// Second convolution, 32·width → 64·width channels.
    pub conv2: Conv2d,
    /// Hidden linear layer, 64·width·(side/4)² → 128·width.
    pub fc1: Linear,
    /// Classifier head, 128·width → classes.
    pub fc2: Linear,
    pool: MaxPool2d,
    #[module(skip)]
    image_size: usize,
}

impl RefCnnConfig {
    /// Channel counts `[conv1, conv2, fc1]`: explicit, or after the width multiplier.
    pub fn widths(&self) -> [usize; 3] {
        self.channels.unwrap_or_else(|| {
            [32.0, 64.0, 128.0].map(|w: f64| ((w * self.width).round() as usize).max(1))
        })
    }

    /// Check the options.
    pub fn validate(&self) -> Result<(), ModelError> {
        if !(self.width.is_finite() && self.width > 0.0 && self.width <= 16.0) {
            return Err(ModelError::InvalidOption {
                name: "width",
                value: self.width.to_string(),
                expected: "a multiplier in (0, 16]",
            });
        }
        if self.image_size < 4 || !self.image_size.is_multiple_of(4) {
            return Err(ModelError::InvalidOption {
                name: "image_size",
                value: self.image_size.to_string(),
                expected: "a multiple of 4 (two 2×2 poolings)",
            });
        }
        if let Some(ch) = self.channels
            && ch.contains(&0)
        {
            return Err(ModelError::InvalidOption {
                name: "channels",
                value: format!("{ch:?}"),
                expected: "at least one channel per layer",
            });
        }
        if self.num_classes < 2 {
            return Err(ModelError::InvalidOption {
                name: "num_classes",
                value: self.num_classes.to_string(),
                expected: "at least 2",
            });
        }
        Ok(())
    }

    /// Build the model. Its parameters are Burn's lazy defaults until initialized or loaded.
    pub fn init(&self, device: &Device) -> RefCnn {
        let [c1, c2, h] = self.widths();
        let conv = |i, o| {
            let c = Conv2dConfig::new([i, o], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1));
            c.init(device)
        };
        let linear = |i, o| LinearConfig::new(i, o).init(device);
        let side = self.image_size / 4;
        RefCnn {
            conv1: conv(1, c1),
            conv2: conv(c1, c2),
            fc1: linear(c2 * side * side, h),
            fc2: linear(h, self.num_classes),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            image_size: self.image_size,
        }
    }
}

impl RefCnn {
    fn run(&self, images: Tensor<4>, mut taps: Taps<'_>) -> Tensor<2> {
        let act = Activation::Relu;
        let x = conv_activation_pool(&self.conv1, images, act, &self.pool, "conv1", &mut taps);
        let x = conv_activation_pool(&self.conv2, x, act, &self.pool, "conv2", &mut taps);
        let [n, c, h, w] = x.dims();
        let pre3 = self.fc1.forward(x.reshape([n, c * h * w]));
        let post3 = relu(pre3.clone());
        if let Some(tap) = taps.as_mut() {
            let [_, f] = pre3.dims();
            tap(
                "fc1",
                &pre3.clone().reshape([n, f, 1, 1]),
                &post3.clone().reshape([n, f, 1, 1]),
            );
        }
        self.fc2.forward(post3)
    }
}

impl Classifier for RefCnn {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.run(images, None)
    }

    fn forward_taps(&self, images: Tensor<4>) -> (Tensor<2>, Vec<Tap>) {
        crate::fastconv::collect_taps(|taps| self.run(images, taps))
    }

    fn layers(&self) -> Vec<LayerInfo> {
        let side = self.image_size / 4;
        vec![
            conv_info(
                "conv1",
                &self.conv1,
                [side * 4, side * 4],
                Activation::Relu,
                Some(("conv2", 1)),
            ),
            conv_info(
                "conv2",
                &self.conv2,
                [side * 2, side * 2],
                Activation::Relu,
                Some(("fc1", side * side)),
            ),
            linear_info("fc1", &self.fc1, Some(Activation::Relu), Some("fc2")),
            linear_info("fc2", &self.fc2, None, None),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::device;

    #[test]
    fn parameter_count_matches_the_architecture() {
        let m = RefCnnConfig::new().init(&device());
        // conv1 1·32·9+32, conv2 32·64·9+64, fc1 3136·128+128, fc2 128·10+10.
        assert_eq!(m.num_params(), 320 + 18_496 + 401_536 + 1_290);
        assert_eq!(m.num_params(), 421_642);
    }

    #[test]
    fn shapes_and_taps() {
        let m = RefCnnConfig::new().with_width(0.5).init(&device());
        let x = Tensor::<4>::zeros([3, 1, 28, 28], &device());
        let (logits, taps) = m.forward_taps(x.clone());
        assert_eq!(logits.dims(), [3, 10]);
        let dims: Vec<(String, [usize; 4])> = taps
            .iter()
            .map(|t| (t.layer.clone(), t.post.dims()))
            .collect();
        assert_eq!(
            dims,
            vec![
                ("conv1".to_string(), [3, 16, 28, 28]),
                ("conv2".to_string(), [3, 32, 14, 14]),
                ("fc1".to_string(), [3, 64, 1, 1]),
            ]
        );
        let same = m.forward(x);
        assert_eq!(same.into_data(), logits.into_data());
    }

    #[test]
    fn layer_table() {
        let m = RefCnnConfig::new().init(&device());
        let t = m.layers();
        let names: Vec<&str> = t.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["conv1", "conv2", "fc1", "fc2"]);
        assert_eq!(t[0].weight_shape, vec![32, 1, 3, 3]);
        assert_eq!((t[0].fan_in, t[0].fan_out), (9, 32 * 9));
        assert_eq!((t[1].fan_in, t[1].fan_out), (32 * 9, 64 * 9));
        assert_eq!(t[1].consumer.as_deref(), Some("fc1"));
        assert_eq!(t[1].consumer_inputs_per_channel, 49);
        assert_eq!(t[1].output_hw, [14, 14]);
        assert_eq!((t[2].fan_in, t[2].fan_out), (3136, 128));
        assert_eq!(t[3].consumer, None);
    }

    #[test]
    fn bad_options_are_rejected() {
        assert!(RefCnnConfig::new().with_width(0.0).validate().is_err());
        assert!(RefCnnConfig::new().with_image_size(30).validate().is_err());
        assert!(RefCnnConfig::new().validate().is_ok());
    }
}
