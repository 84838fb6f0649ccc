//! Per-channel activation statistics of a model's layers on real images.

use std::collections::BTreeMap;

use burn::tensor::Tensor;
use model::Classifier;
use model::features::{CrossMoments, channel_rows, host};

/// Statistics of one layer's post-activation channels over a set of images and positions.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelStats {
    /// Moments and cross products of the channels with themselves.
    pub moments: CrossMoments,
    /// Observations ≤ 0 per channel.
    pub zeros: Vec<f64>,
    /// Largest value per channel.
    pub max: Vec<f64>,
}

impl ChannelStats {
    /// Empty statistics of `c` channels.
    pub fn new(c: usize) -> Self {
        ChannelStats {
            moments: CrossMoments::new(c, c),
            zeros: vec![0.0; c],
            max: vec![f64::NEG_INFINITY; c],
        }
    }

    /// Add a batch of post-activation maps `[N, C, H, W]`.
    pub fn update(&mut self, post: &Tensor<4>) {
        self.moments.update(post, post);
        let rows = channel_rows(post);
        let zeros = rows.clone().lower_equal_elem(0.0).float().sum_dim(1);
        let max = rows.max_dim(1);
        for (a, v) in self.zeros.iter_mut().zip(host(zeros)) {
            *a += v;
        }
        for (a, v) in self.max.iter_mut().zip(host(max)) {
            *a = a.max(v);
        }
    }

    /// Mean activation of each channel.
    pub fn mean_activation(&self) -> Vec<f64> {
        self.moments.mean_a()
    }

    /// Average percentage of zeros (as a fraction) of each channel (Hu et al. 2016).
    pub fn apoz(&self) -> Vec<f64> {
        self.zeros.iter().map(|z| z / self.moments.n).collect()
    }

    /// Pearson correlation between channels.
    pub fn correlation(&self) -> Vec<Vec<f64>> {
        self.moments.correlation()
    }

    /// Channels never positive on any image at any position.
    pub fn dead(&self) -> Vec<bool> {
        self.max.iter().map(|&m| m <= 0.0).collect()
    }
}

/// Statistics of the named layers' post-activation maps over `batches` of images.
pub fn collect<M: Classifier>(
    model: &M,
    batches: impl IntoIterator<Item = Tensor<4>>,
    layers: &[String],
) -> BTreeMap<String, ChannelStats> {
    let model = model.valid();
    let mut out: BTreeMap<String, ChannelStats> = BTreeMap::new();
    for x in batches {
        let (_, taps) = model.forward_taps(x);
        for tap in taps.into_iter().filter(|t| layers.contains(&t.layer)) {
            let [_, c, _, _] = tap.post.dims();
            out.entry(tap.layer.clone())
                .or_insert_with(|| ChannelStats::new(c))
                .update(&tap.post);
        }
    }
    out
}
