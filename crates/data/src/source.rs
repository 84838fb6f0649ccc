//! Where a dataset comes from, and loading it.
//!
//! Discovery order when no directory is given: `datasets/fashion-mnist/` (what `datasets/fetch`
//! installs; looked up from the working directory, then from the source tree), the Debian
//! package's `/usr/share/datasets/fashion-mnist/`, and finally the class-balanced Fashion-MNIST
//! sample compiled into the binary (10,000 train and 2,000 test images), so that everything works
//! offline on a fresh machine.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::idx::{self, FILE_STEMS, find_file};
use crate::{DataError, Normalization, Split};

/// Name accepted by [`DataSource::resolve`] for the embedded sample.
pub const SAMPLE_NAME: &str = "sample";

/// The Debian package's install location (`apt-get install dataset-fashion-mnist`).
pub const DEBIAN_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Number of classes in MNIST and Fashion-MNIST.
pub const NUM_CLASSES: usize = 10;

/// The embedded sample's four files, in [`FILE_STEMS`] order.
const SAMPLE_FILES: [&[u8]; 4] = [
    include_bytes!("../../../datasets/sample/train-images-idx3-ubyte.gz"),
    include_bytes!("../../../datasets/sample/train-labels-idx1-ubyte.gz"),
    include_bytes!("../../../datasets/sample/t10k-images-idx3-ubyte.gz"),
    include_bytes!("../../../datasets/sample/t10k-labels-idx1-ubyte.gz"),
];

/// How the dataset was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataOrigin {
    /// A directory given explicitly (`--data DIR`).
    Explicit,
    /// The project's `datasets/fashion-mnist/`.
    Project,
    /// The Debian package's directory.
    Debian,
    /// The Fashion-MNIST sample compiled into the binary.
    Sample,
}

/// A located dataset: an origin and, except for the embedded sample, a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSource {
    /// How it was found.
    pub origin: DataOrigin,
    /// The directory holding the four IDX files (`None` for the embedded sample).
    pub dir: Option<PathBuf>,
}

impl DataSource {
    /// The embedded sample.
    pub fn sample() -> DataSource {
        DataSource {
            origin: DataOrigin::Sample,
            dir: None,
        }
    }

    /// Resolve `--data`: `Some("sample")` is the embedded sample, `Some(dir)` a directory that
    /// must exist, `None` the first of the discovery order that holds a complete dataset.
    pub fn resolve(requested: Option<&str>) -> Result<DataSource, DataError> {
        match requested {
            Some(SAMPLE_NAME) => Ok(DataSource::sample()),
            Some(dir) => {
                let dir = PathBuf::from(dir);
                if !dir.is_dir() {
                    return Err(DataError::NoSuchDir(dir));
                }
                Ok(DataSource {
                    origin: DataOrigin::Explicit,
                    dir: Some(dir),
                })
            }
            None => Ok(Self::discover()),
        }
    }

    /// The first complete dataset in the discovery order; the sample if there is none.
    pub fn discover() -> DataSource {
        let tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/fashion-mnist");
        let candidates = [
            (DataOrigin::Project, PathBuf::from("datasets/fashion-mnist")),
            (DataOrigin::Project, tree),
            (DataOrigin::Debian, PathBuf::from(DEBIAN_DIR)),
        ];
        candidates
            .into_iter()
            .find(|(_, dir)| FILE_STEMS.iter().all(|s| find_file(dir, s).is_some()))
            .map(|(origin, dir)| DataSource {
                origin,
                dir: Some(dir),
            })
            .unwrap_or_else(DataSource::sample)
    }

    /// A human-readable location: the directory, or `embedded sample`.
    pub fn location(&self) -> String {
        match &self.dir {
            Some(dir) => dir.display().to_string(),
            None => "embedded Fashion-MNIST sample (datasets/sample)".into(),
        }
    }

    /// Read the four files as (name for errors, decompressed bytes).
    fn read_files(&self) -> Result<Vec<(PathBuf, Vec<u8>)>, DataError> {
        FILE_STEMS
            .iter()
            .enumerate()
            .map(|(i, stem)| match &self.dir {
                Some(dir) => {
                    let path = find_file(dir, stem).ok_or_else(|| DataError::MissingFile {
                        dir: dir.clone(),
                        stem: stem.to_string(),
                    })?;
                    let bytes = idx::read_maybe_gz(&path)?;
                    Ok((path, bytes))
                }
                None => {
                    let path = PathBuf::from(format!("<embedded sample>/{stem}.gz"));
                    let mut out = Vec::new();
                    std::io::Read::read_to_end(
                        &mut flate2::read::GzDecoder::new(SAMPLE_FILES[i]),
                        &mut out,
                    )
                    .map_err(|source| DataError::Gzip {
                        path: path.clone(),
                        source,
                    })?;
                    Ok((path, out))
                }
            })
            .collect()
    }

    /// Load, validate and hash the dataset.
    pub fn load(&self) -> Result<Dataset, DataError> {
        let files = self.read_files()?;
        let mut hasher = Sha256::new();
        for (_, bytes) in &files {
            hasher.update(Sha256::digest(bytes));
        }
        let sha256 = format!("{:x}", hasher.finalize());
        let split = |img: &(PathBuf, Vec<u8>), lab: &(PathBuf, Vec<u8>)| {
            let images = idx::parse_images(&img.0, &img.1)?;
            let labels = idx::parse_labels(&lab.0, &lab.1, NUM_CLASSES)?;
            if images.count != labels.len() {
                return Err(DataError::CountMismatch {
                    images: img.0.clone(),
                    n_images: images.count,
                    labels: lab.0.clone(),
                    n_labels: labels.len(),
                });
            }
            Ok(Split {
                rows: images.rows,
                cols: images.cols,
                pixels: images.pixels,
                labels,
            })
        };
        let train = split(&files[0], &files[1])?;
        let test = split(&files[2], &files[3])?;
        if (train.rows, train.cols) != (test.rows, test.cols) {
            return Err(DataError::ShapeMismatch {
                dir: self.dir.clone().unwrap_or_default(),
                train: (train.rows, train.cols),
                test: (test.rows, test.cols),
            });
        }
        let normalization = Normalization::from_pixels(&train.pixels);
        Ok(Dataset {
            identity: DatasetIdentity {
                origin: self.origin,
                location: self.location(),
                sha256,
                train_examples: train.len(),
                test_examples: test.len(),
            },
            normalization,
            train,
            test,
        })
    }
}

/// What a run records about its data: enough to know whether two runs saw the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetIdentity {
    /// How the data was found.
    pub origin: DataOrigin,
    /// Where it was found.
    pub location: String,
    /// SHA-256 over the SHA-256 of each of the four decompressed files, in the order train
    /// images, train labels, test images, test labels: independent of how the files are
    /// compressed.
    pub sha256: String,
    /// Training examples in the files.
    pub train_examples: usize,
    /// Test examples in the files.
    pub test_examples: usize,
}

/// A loaded dataset: both splits, their identity, and the training split's normalization.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The training split.
    pub train: Split,
    /// The test split.
    pub test: Split,
    /// Where it came from and its content hash.
    pub identity: DatasetIdentity,
    /// Mean and std of the training pixels.
    pub normalization: Normalization,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_is_balanced_and_valid() {
        let ds = DataSource::sample().load().unwrap();
        assert_eq!(ds.train.len(), 10_000);
        assert_eq!(ds.test.len(), 2_000);
        assert_eq!((ds.train.rows, ds.train.cols), (28, 28));
        assert_eq!(ds.train.class_counts(10), vec![1000; 10]);
        assert_eq!(ds.test.class_counts(10), vec![200; 10]);
        // Fashion-MNIST statistics on the full set are mean 0.2860, std 0.3530; a balanced
        // sample of it lands within a few thousandths.
        assert!(
            (ds.normalization.mean - 0.286).abs() < 0.01,
            "{:?}",
            ds.normalization
        );
        assert!(
            (ds.normalization.std - 0.353).abs() < 0.01,
            "{:?}",
            ds.normalization
        );
        // A prefix of the sample is close to balanced.
        let head = ds.train.clone().truncated(1000).class_counts(10);
        assert!(head.iter().all(|&c| (60..=140).contains(&c)), "{head:?}");
    }

    #[test]
    fn missing_directory_and_file_are_named() {
        let err = DataSource::resolve(Some("/nonexistent/dir")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/dir"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let src = DataSource::resolve(Some(dir.path().to_str().unwrap())).unwrap();
        let err = src.load().unwrap_err();
        assert!(err.to_string().contains("train-images-idx3-ubyte"), "{err}");
    }

    #[test]
    fn hash_ignores_compression() {
        let dir = tempfile::tempdir().unwrap();
        for (i, stem) in FILE_STEMS.iter().enumerate() {
            let mut raw = Vec::new();
            std::io::Read::read_to_end(
                &mut flate2::read::GzDecoder::new(SAMPLE_FILES[i]),
                &mut raw,
            )
            .unwrap();
            std::fs::write(dir.path().join(stem), raw).unwrap();
        }
        let src = DataSource::resolve(Some(dir.path().to_str().unwrap())).unwrap();
        let a = src.load().unwrap();
        let b = DataSource::sample().load().unwrap();
        assert_eq!(a.identity.sha256, b.identity.sha256);
        assert_eq!(a.identity.origin, DataOrigin::Explicit);
        assert_eq!(a.train, b.train);
    }
}
