//! Image classification data for filterlab: MNIST-style IDX files (Fashion-MNIST, MNIST).
//!
//! - [`idx`]: a strict reader for IDX files, raw or gzip, that validates every header field.
//! - [`source`]: where the data comes from (an explicit directory, the project's `datasets/`, the
//!   Debian package, or the Fashion-MNIST sample compiled into the binary) and its content hash.
//! - [`Dataset`] / [`Split`]: the loaded train and test splits, with [`Normalization`].
//! - [`epoch_order`] / [`Batches`]: seeded shuffling keyed by `(seed, epoch)` and host-side
//!   batch assembly.
//!
//! The crate knows nothing about tensors or backends: batches are plain `f32` buffers in
//! `N×1×H×W` order, ready to be uploaded by the caller.

pub mod idx;
pub mod source;

use std::path::PathBuf;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use source::{DataOrigin, DataSource, Dataset, DatasetIdentity};

/// Everything that can go wrong reading a dataset. Every variant names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file starts like gzip but does not inflate.
    #[error("{path} is not a valid gzip file ({source}); delete it and fetch the dataset again")]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The payload is shorter than the header announces.
    #[error(
        "{path} is truncated: the header announces {expected} bytes of data but only {found} \
         follow; fetch the dataset again"
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Bytes the header announces.
        expected: usize,
        /// Bytes present.
        found: usize,
    },
    /// The header is not a valid unsigned-byte IDX header of the expected rank.
    #[error("{path} is not a valid IDX file: {detail}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A label is not a valid class index.
    #[error("{path}: label {label} at index {index} is out of range (expected 0..{num_classes})")]
    LabelOutOfRange {
        /// The file.
        path: PathBuf,
        /// Position of the bad label.
        index: usize,
        /// The bad label.
        label: u8,
        /// Number of classes.
        num_classes: usize,
    },
    /// Image and label files disagree about the number of examples.
    #[error("{images} holds {n_images} images but {labels} holds {n_labels} labels")]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// Number of images.
        n_images: usize,
        /// The label file.
        labels: PathBuf,
        /// Number of labels.
        n_labels: usize,
    },
    /// Train and test images have different sizes.
    #[error("train images are {train:?} pixels but test images are {test:?} in {dir}")]
    ShapeMismatch {
        /// The dataset directory.
        dir: PathBuf,
        /// Train image size (rows, cols).
        train: (usize, usize),
        /// Test image size (rows, cols).
        test: (usize, usize),
    },
    /// A dataset directory lacks one of the four files.
    #[error(
        "{dir} has no {stem} (or {stem}.gz); a dataset directory needs train-images-idx3-ubyte, \
         train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte"
    )]
    MissingFile {
        /// The dataset directory.
        dir: PathBuf,
        /// The missing file's name without `.gz`.
        stem: String,
    },
    /// `--data` names a directory that does not exist.
    #[error("dataset directory {0} does not exist (use `datasets/fetch` to get Fashion-MNIST)")]
    NoSuchDir(PathBuf),
}

/// One split (train or test): `len` images of `rows × cols` bytes and their labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
    /// `len × rows × cols` pixels.
    pub pixels: Vec<u8>,
    /// `len` labels in `0..num_classes`.
    pub labels: Vec<u8>,
}

impl Split {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image.
    pub fn image_size(&self) -> usize {
        self.rows * self.cols
    }

    /// The first `n` examples (all of them when `n` is larger). The files are already shuffled
    /// (and the sample is stored in that order), so a prefix is close to class-balanced.
    pub fn truncated(mut self, n: usize) -> Split {
        let n = n.min(self.len());
        self.labels.truncate(n);
        self.pixels.truncate(n * self.image_size());
        self
    }

    /// The examples at `indices`, in that order.
    ///
    /// # Panics
    /// If an index is out of range (indices come from a permutation of `0..len`).
    pub fn select(&self, indices: &[u32]) -> Split {
        let size = self.image_size();
        let mut pixels = Vec::with_capacity(indices.len() * size);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            let i = i as usize;
            pixels.extend_from_slice(&self.pixels[i * size..(i + 1) * size]);
            labels.push(self.labels[i]);
        }
        Split {
            rows: self.rows,
            cols: self.cols,
            pixels,
            labels,
        }
    }

    /// Examples per class, for `num_classes` classes.
    pub fn class_counts(&self, num_classes: usize) -> Vec<usize> {
        let mut counts = vec![0; num_classes];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    /// Gather the images at `indices` into `images` (normalized, `N×1×H×W`) and their labels
    /// into `labels`, replacing the buffers' contents.
    pub fn gather(
        &self,
        indices: &[u32],
        norm: &Normalization,
        images: &mut Vec<f32>,
        labels: &mut Vec<i64>,
    ) {
        let size = self.image_size();
        let lut = norm.lookup_table();
        images.clear();
        labels.clear();
        images.reserve(indices.len() * size);
        for &i in indices {
            let i = i as usize;
            images.extend(
                self.pixels[i * size..(i + 1) * size]
                    .iter()
                    .map(|&p| lut[p as usize]),
            );
            labels.push(self.labels[i] as i64);
        }
    }
}

/// Per-pixel standardization `x = (p / 255 − mean) / std`, with `mean` and `std` computed over
/// every pixel of the training split (Fashion-MNIST: mean 0.2860, std 0.3530).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Mean of `p / 255` over the training pixels.
    pub mean: f32,
    /// Standard deviation of `p / 255` over the training pixels.
    pub std: f32,
}

impl Normalization {
    /// Mean and standard deviation of `p / 255` over `pixels` (f64 accumulation).
    pub fn from_pixels(pixels: &[u8]) -> Normalization {
        let mut hist = [0u64; 256];
        for &p in pixels {
            hist[p as usize] += 1;
        }
        let n = pixels.len().max(1) as f64;
        let (mut s, mut s2) = (0.0f64, 0.0f64);
        for (v, &c) in hist.iter().enumerate() {
            let x = v as f64 / 255.0;
            s += c as f64 * x;
            s2 += c as f64 * x * x;
        }
        let mean = s / n;
        let var = (s2 / n - mean * mean).max(0.0);
        Normalization {
            mean: mean as f32,
            std: var.sqrt().max(1e-6) as f32,
        }
    }

    /// The normalized value of each of the 256 pixel values.
    pub fn lookup_table(&self) -> [f32; 256] {
        std::array::from_fn(|p| (p as f32 / 255.0 - self.mean) / self.std)
    }
}

/// The order in which epoch `epoch` (0-based) visits `n` examples: a Fisher–Yates shuffle driven
/// by ChaCha8 keyed by `seed` on stream `epoch`. Independent of everything but its arguments.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<u32> {
    shuffled(n, seed, epoch as u64)
}

/// A seeded order of `n` examples for analyses (initialization, activation statistics): the
/// same shuffle as [`epoch_order`] on a stream no training epoch uses, so a prefix of it is a
/// fixed random subset.
pub fn analysis_order(n: usize, seed: u64) -> Vec<u32> {
    shuffled(n, seed, u64::MAX)
}

/// A seeded order of `n` examples for drawing fixed subsets of the training split (held-out
/// validation images first, then a subset to train on): the same shuffle as [`epoch_order`] on
/// a stream that neither training epochs nor [`analysis_order`] use.
pub fn subset_order(n: usize, seed: u64) -> Vec<u32> {
    shuffled(n, seed, u64::MAX - 1)
}

fn shuffled(n: usize, seed: u64, stream: u64) -> Vec<u32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.shuffle(&mut rng);
    order
}

/// The index slices of one epoch's batches, in order; the last batch may be short.
pub struct Batches<'a> {
    order: &'a [u32],
    batch_size: usize,
    pos: usize,
}

impl<'a> Batches<'a> {
    /// Batches of `batch_size` over `order`.
    pub fn new(order: &'a [u32], batch_size: usize) -> Self {
        assert!(batch_size > 0, "batch size must be positive");
        Batches {
            order,
            batch_size,
            pos: 0,
        }
    }

    /// Number of batches.
    pub fn count(order_len: usize, batch_size: usize) -> usize {
        order_len.div_ceil(batch_size)
    }
}

impl<'a> Iterator for Batches<'a> {
    type Item = &'a [u32];

    fn next(&mut self) -> Option<&'a [u32]> {
        if self.pos >= self.order.len() {
            return None;
        }
        let end = (self.pos + self.batch_size).min(self.order.len());
        let out = &self.order[self.pos..end];
        self.pos = end;
        Some(out)
    }
}

/// Names of the ten Fashion-MNIST classes, in label order.
pub const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_order_is_a_seeded_permutation() {
        let a = epoch_order(1000, 7, 0);
        assert_eq!(a, epoch_order(1000, 7, 0));
        assert_ne!(a, epoch_order(1000, 7, 1), "epochs must differ");
        assert_ne!(a, epoch_order(1000, 8, 0), "seeds must differ");
        assert_ne!(
            a,
            analysis_order(1000, 7),
            "analysis samples are not an epoch's order"
        );
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<u32>>());
    }

    #[test]
    fn subsets_are_seeded_and_select_what_they_name() {
        let a = subset_order(500, 3);
        assert_eq!(a, subset_order(500, 3));
        assert_ne!(a, analysis_order(500, 3));
        assert_ne!(a, epoch_order(500, 3, 0));
        let split = Split {
            rows: 1,
            cols: 2,
            pixels: vec![0, 1, 10, 11, 20, 21],
            labels: vec![0, 1, 2],
        };
        let picked = split.select(&[2, 0]);
        assert_eq!(picked.pixels, vec![20, 21, 0, 1]);
        assert_eq!(picked.labels, vec![2, 0]);
    }

    #[test]
    fn batches_cover_everything_once() {
        let order: Vec<u32> = (0..10).collect();
        let sizes: Vec<usize> = Batches::new(&order, 4).map(<[u32]>::len).collect();
        assert_eq!(sizes, vec![4, 4, 2]);
        assert_eq!(Batches::count(10, 4), 3);
    }

    #[test]
    fn normalization_matches_closed_form() {
        // Half the pixels 0, half 255: mean 0.5, std 0.5 exactly.
        let px: Vec<u8> = (0..1000)
            .map(|i| if i % 2 == 0 { 0 } else { 255 })
            .collect();
        let n = Normalization::from_pixels(&px);
        assert!(
            (n.mean - 0.5).abs() < 1e-6 && (n.std - 0.5).abs() < 1e-6,
            "{n:?}"
        );
        let lut = n.lookup_table();
        assert_eq!(lut[0], -1.0);
        assert_eq!(lut[255], 1.0);
    }

    #[test]
    fn gather_normalizes_and_keeps_labels() {
        let split = Split {
            rows: 1,
            cols: 2,
            pixels: vec![0, 255, 255, 0],
            labels: vec![3, 4],
        };
        let norm = Normalization {
            mean: 0.5,
            std: 0.5,
        };
        let (mut x, mut y) = (Vec::new(), Vec::new());
        split.gather(&[1, 0], &norm, &mut x, &mut y);
        assert_eq!(x, vec![1.0, -1.0, -1.0, 1.0]);
        assert_eq!(y, vec![4, 3]);
    }
}
