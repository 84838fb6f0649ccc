//! Uploading batches of images, and evaluating a model on a split: loss, accuracy, per-class
//! accuracy and the confusion matrix.

use anyhow::{Result, bail};
use burn::nn::loss::CrossEntropyLoss;
use burn::tensor::{Device, Int, Tensor, TensorData};
use data::{Normalization, Split};
use model::Classifier;
use serde::{Deserialize, Serialize};

/// Batch size for evaluation (no gradients, so larger than training's).
pub(crate) const EVAL_BATCH: usize = 500;

/// Workers that evaluate batches side by side (each single-threaded: faster than splitting one
/// batch's kernels over threads on the flex backend).
pub(crate) const EVAL_WORKERS: usize = 2;

/// The result of evaluating a model on a split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    /// Examples evaluated.
    pub examples: usize,
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction correct (0–1).
    pub accuracy: f64,
    /// Accuracy of each class (0–1), by label.
    pub per_class_accuracy: Vec<f64>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
}

/// Upload a batch of normalized images and labels.
pub(crate) fn batch_tensors(
    split: &Split,
    indices: &[u32],
    norm: &Normalization,
    device: &Device,
    images: &mut Vec<f32>,
    labels: &mut Vec<i64>,
) -> (Tensor<4>, Tensor<1, Int>) {
    split.gather(indices, norm, images, labels);
    let n = indices.len();
    let x = Tensor::<4>::from_data(
        TensorData::new(images.clone(), [n, 1, split.rows, split.cols]),
        device,
    );
    let y = Tensor::<1, Int>::from_data(TensorData::new(labels.clone(), [n]), device);
    (x, y)
}

/// Evaluate `model` (on a device without autodiff) on the whole of `split`.
pub(crate) fn evaluate<M: Classifier>(
    model: &M,
    split: &Split,
    norm: &Normalization,
    device: &Device,
    num_classes: usize,
) -> Result<EvalResult> {
    let loss_fn = CrossEntropyLoss::new(None, device);
    let mut confusion = vec![vec![0usize; num_classes]; num_classes];
    let mut loss_sum = 0.0f64;
    let order: Vec<u32> = (0..split.len() as u32).collect();
    let chunks: Vec<&[u32]> = order.chunks(EVAL_BATCH).collect();
    let workers = crate::parallel::Workers::new(EVAL_WORKERS)?;
    // Batches in parallel on the workers, combined in batch order.
    let results = crate::parallel::map_batches(&workers, model, chunks.len(), |m, i| {
        let (mut xb, mut yb) = (Vec::new(), Vec::new());
        let (x, y) = batch_tensors(split, chunks[i], norm, device, &mut xb, &mut yb);
        let logits = m.forward(x);
        let loss: f32 = loss_fn.forward(logits.clone(), y).into_scalar();
        let pred = logits.argmax(1).into_data().try_into_vec_as::<i64>();
        (loss, pred, yb)
    });
    for (i, (loss, pred, labels)) in results.into_iter().enumerate() {
        if !loss.is_finite() {
            bail!("evaluation loss is {loss}: the weights contain NaN or infinity");
        }
        loss_sum += loss as f64 * chunks[i].len() as f64;
        for (&t, &p) in labels.iter().zip(&pred?) {
            confusion[t as usize][p as usize] += 1;
        }
    }
    let n = split.len();
    let correct: usize = (0..num_classes).map(|c| confusion[c][c]).sum();
    let per_class_accuracy = confusion
        .iter()
        .enumerate()
        .map(|(c, row)| {
            let total: usize = row.iter().sum();
            if total == 0 {
                0.0
            } else {
                row[c] as f64 / total as f64
            }
        })
        .collect();
    Ok(EvalResult {
        examples: n,
        loss: loss_sum / n.max(1) as f64,
        accuracy: correct as f64 / n.max(1) as f64,
        per_class_accuracy,
        confusion,
    })
}

/// Batches of (at most) `n` images of `split`, drawn in the order keyed by `seed`
/// ([`data::analysis_order`]), `batch` images each: the same images for every analysis of a run.
pub(crate) fn analysis_batches(
    split: &Split,
    norm: &Normalization,
    n: usize,
    batch: usize,
    seed: u64,
    device: &Device,
) -> Vec<Tensor<4>> {
    let order = data::analysis_order(split.len(), seed);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    order[..n.min(order.len())]
        .chunks(batch)
        .map(|idx| batch_tensors(split, idx, norm, device, &mut x, &mut y).0)
        .collect()
}
