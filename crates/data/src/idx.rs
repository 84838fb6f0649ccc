//! The IDX file format of MNIST and Fashion-MNIST, raw or gzip-compressed.
//!
//! An IDX file is a 4-byte magic number `00 00 TT NN` (TT the element type, `08` for unsigned
//! bytes; NN the number of dimensions), then NN big-endian `u32` dimension sizes, then the
//! elements in row-major order. Image files are 3-dimensional (`count × rows × cols`), label files
//! 1-dimensional (`count`). Every header field is validated, and the payload must be exactly as
//! long as the header says: a truncated file or one with trailing bytes is rejected.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use crate::DataError;

/// Element type code for unsigned bytes, the only one MNIST-style datasets use.
const TYPE_U8: u8 = 0x08;

/// A decoded IDX image file: `count` images of `rows × cols` unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Image height in pixels.
    pub rows: usize,
    /// Image width in pixels.
    pub cols: usize,
    /// `count × rows × cols` pixels, row-major, image after image.
    pub pixels: Vec<u8>,
}

/// Read the whole file, transparently inflating it when it starts with the gzip magic `1f 8b`.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|source| DataError::Gzip {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parse the header of an IDX buffer with `ndims` dimensions; returns the dimensions and the
/// payload that follows them.
fn parse_header<'a>(
    path: &Path,
    bytes: &'a [u8],
    ndims: u8,
) -> Result<(Vec<usize>, &'a [u8]), DataError> {
    let bad = |detail: String| DataError::Format {
        path: path.to_path_buf(),
        detail,
    };
    let header_len = 4 + 4 * ndims as usize;
    if bytes.len() < header_len {
        return Err(bad(format!(
            "file is {} bytes long, shorter than the {header_len}-byte IDX header",
            bytes.len()
        )));
    }
    let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
    let expected = [0, 0, TYPE_U8, ndims];
    if magic != expected {
        return Err(bad(format!(
            "magic number is {:02x} {:02x} {:02x} {:02x}, expected {:02x} {:02x} {:02x} {:02x} \
             (unsigned-byte IDX with {ndims} dimension(s)); is this the right file?",
            magic[0],
            magic[1],
            magic[2],
            magic[3],
            expected[0],
            expected[1],
            expected[2],
            expected[3]
        )));
    }
    let dims: Vec<usize> = bytes[4..header_len]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let payload = &bytes[header_len..];
    let expected_len = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad(format!("dimensions {dims:?} overflow")))?;
    if payload.len() < expected_len {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            expected: expected_len,
            found: payload.len(),
        });
    }
    if payload.len() > expected_len {
        return Err(bad(format!(
            "{} bytes of data after the {expected_len} the header announces",
            payload.len() - expected_len
        )));
    }
    Ok((dims, payload))
}

/// Parse an IDX image buffer; `path` only names the source in errors.
pub fn parse_images(path: &Path, bytes: &[u8]) -> Result<IdxImages, DataError> {
    let (dims, payload) = parse_header(path, bytes, 3)?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    if count == 0 || rows == 0 || cols == 0 {
        return Err(DataError::Format {
            path: path.to_path_buf(),
            detail: format!("image dimensions {count}×{rows}×{cols} contain a zero"),
        });
    }
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels: payload.to_vec(),
    })
}

/// Parse an IDX label buffer and check every label is below `num_classes`.
pub fn parse_labels(path: &Path, bytes: &[u8], num_classes: usize) -> Result<Vec<u8>, DataError> {
    let (dims, payload) = parse_header(path, bytes, 1)?;
    if dims[0] == 0 {
        return Err(DataError::Format {
            path: path.to_path_buf(),
            detail: "label file holds no labels".into(),
        });
    }
    if let Some((index, &label)) = payload
        .iter()
        .enumerate()
        .find(|&(_, &l)| l as usize >= num_classes)
    {
        return Err(DataError::LabelOutOfRange {
            path: path.to_path_buf(),
            index,
            label,
            num_classes,
        });
    }
    Ok(payload.to_vec())
}

/// Read and validate an IDX image file (raw or gzip).
pub fn read_images(path: &Path) -> Result<IdxImages, DataError> {
    parse_images(path, &read_maybe_gz(path)?)
}

/// Read and validate an IDX label file (raw or gzip).
pub fn read_labels(path: &Path, num_classes: usize) -> Result<Vec<u8>, DataError> {
    parse_labels(path, &read_maybe_gz(path)?, num_classes)
}

/// Encode images as an IDX buffer (uncompressed).
pub fn encode_images(images: &IdxImages) -> Vec<u8> {
    let mut out = vec![0, 0, TYPE_U8, 3];
    for d in [images.count, images.rows, images.cols] {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(&images.pixels);
    out
}

/// Encode labels as an IDX buffer (uncompressed).
pub fn encode_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, TYPE_U8, 1];
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}

/// The four file names of an MNIST-style dataset directory, without the optional `.gz`.
pub const FILE_STEMS: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Find `stem` or `stem.gz` in `dir`; the gzip file wins when both exist.
pub fn find_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    [format!("{stem}.gz"), stem.to_string()]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(count: usize) -> IdxImages {
        IdxImages {
            count,
            rows: 2,
            cols: 3,
            pixels: (0..count * 6).map(|i| i as u8).collect(),
        }
    }

    #[test]
    fn images_round_trip() {
        let img = images(4);
        let parsed = parse_images(Path::new("x"), &encode_images(&img)).unwrap();
        assert_eq!(parsed, img);
    }

    #[test]
    fn labels_round_trip_and_range() {
        let labels = vec![0, 9, 3, 3];
        assert_eq!(
            parse_labels(Path::new("x"), &encode_labels(&labels), 10).unwrap(),
            labels
        );
        let err = parse_labels(Path::new("l.idx"), &encode_labels(&[1, 10]), 10).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("l.idx") && msg.contains("label 10") && msg.contains("index 1"));
    }

    #[test]
    fn truncated_file_is_named() {
        let mut bytes = encode_images(&images(4));
        bytes.truncate(bytes.len() - 5);
        let err = parse_images(Path::new("imgs.idx"), &bytes).unwrap_err();
        assert!(matches!(
            err,
            DataError::Truncated {
                expected: 24,
                found: 19,
                ..
            }
        ));
        assert!(err.to_string().contains("imgs.idx"));
    }

    #[test]
    fn trailing_bytes_and_bad_magic_are_rejected() {
        let mut bytes = encode_images(&images(1));
        bytes.push(0);
        assert!(
            parse_images(Path::new("x"), &bytes)
                .unwrap_err()
                .to_string()
                .contains("after")
        );
        let labels = encode_labels(&[1; 20]);
        let err = parse_images(Path::new("x"), &labels).unwrap_err();
        assert!(err.to_string().contains("magic"), "{err}");
        assert!(parse_images(Path::new("x"), &[0, 0]).is_err());
    }

    #[test]
    fn gzip_is_detected_by_content_and_corrupt_gzip_is_an_error() {
        use flate2::{Compression, write::GzEncoder};
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let img = images(2);
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(&encode_images(&img)).unwrap();
        let gz = enc.finish().unwrap();
        let path = dir.path().join("a");
        std::fs::write(&path, &gz).unwrap();
        assert_eq!(read_images(&path).unwrap(), img);
        std::fs::write(&path, &gz[..gz.len() / 2]).unwrap();
        let err = read_images(&path).unwrap_err();
        assert!(matches!(err, DataError::Gzip { .. }), "{err}");
    }
}
