//! State-dict files: a PyTorch `.pt`/`.pth` file (`torch.save(model.state_dict())`) or a
//! safetensors file read into named `f32` tensors, and a model's parameters written as
//! safetensors in PyTorch's names and layout (the convention of [`model::pytorch`]).

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use burn::module::{Module, Param};
use burn::store::{
    BurnToPyTorchAdapter, ModuleSnapshot, ModuleStore, PytorchStore, SafetensorsStore, bridge,
};
use burn::tensor::{DType, Tensor};
use model::Classifier;
use model::pytorch::TorchParam;
use sha2::{Digest, Sha256};

use crate::run::SourceFormat;

/// The format of a file that starts with `head`, if it is one of the two.
pub(crate) fn sniff(head: &[u8]) -> Option<SourceFormat> {
    match head {
        // A safetensors header is JSON, so byte 8 (after the u64 length) opens an object.
        [_, _, _, _, _, _, _, _, b'{', ..] => Some(SourceFormat::Safetensors),
        // torch.save's zip archive, or a legacy pickle (protocol 2 opcode).
        [b'P', b'K', 3, 4, ..] | [0x80, 2..=5, ..] => Some(SourceFormat::Pytorch),
        _ => None,
    }
}

/// One tensor of a state-dict file, converted to `f32`.
#[derive(Debug, Clone)]
pub struct FileTensor {
    /// Its key in the file.
    pub key: String,
    /// Its shape as stored.
    pub shape: Vec<usize>,
    /// Its element type in the file (`F32`, `F16`, …).
    pub dtype: DType,
    /// Its values, row-major.
    pub values: Vec<f32>,
}

/// A state-dict file, read whole.
pub struct StateDictFile {
    /// Its container.
    pub format: SourceFormat,
    /// SHA-256 of its bytes.
    pub sha256: String,
    /// Its tensors, ordered by key.
    pub tensors: Vec<FileTensor>,
}

/// SHA-256 of `bytes`, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Read every tensor of the state-dict file at `path`. Errors name the file and say what is
/// wrong with it: not a state dict, truncated, corrupt, or a tensor that is not floating point.
pub fn read(path: &Path) -> Result<StateDictFile> {
    let shown = path.display();
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {shown}"))?;
    if bytes.is_empty() {
        bail!("{shown} is empty");
    }
    let sha256 = sha256_hex(&bytes);
    let Some(format) = sniff(&bytes) else {
        let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
        bail!(
            "{shown} is neither a PyTorch file (torch.save: a zip archive or a pickle) nor a \
             safetensors file (it starts with bytes {})",
            head.join(" ")
        );
    };
    let packed = match format {
        SourceFormat::Safetensors => {
            let mut store = SafetensorsStore::from_bytes(Some(bytes));
            store
                .get_all_tensors()
                .map(|t| t.values().cloned().collect::<Vec<_>>())
                .map_err(|e| anyhow!("{e}"))
        }
        SourceFormat::Pytorch => {
            // Keys as in the file: no renumbering of list indices.
            let mut store = PytorchStore::from_file(path).map_indices_contiguous(false);
            store
                .get_all_tensors()
                .map(|t| t.values().cloned().collect::<Vec<_>>())
                .map_err(|e| anyhow!("{e}"))
        }
    }
    .with_context(|| format!("{shown} is not a readable {format} file (truncated or corrupt?)"))?;
    if packed.is_empty() {
        bail!("{shown} holds no tensors: expected a state dict ({format})");
    }
    let mut tensors = Vec::with_capacity(packed.len());
    for t in packed {
        let (key, dtype, shape) = (t.name.clone(), t.dtype, t.shape.to_vec());
        if !matches!(dtype, DType::F32 | DType::F64 | DType::F16 | DType::BF16) {
            bail!(
                "{shown}: tensor {key} {shape:?} holds {dtype:?} values; parameters must be \
                 floating point (F32, F64, F16 or BF16)"
            );
        }
        let values = bridge::to_data(&t)
            .map_err(|e| anyhow!("{e}"))
            .and_then(|d| d.try_into_vec_as::<f32>().map_err(|e| anyhow!("{e:?}")))
            .with_context(|| {
                format!("{shown}: cannot read the values of tensor {key} (truncated or corrupt?)")
            })?;
        tensors.push(FileTensor {
            key,
            shape,
            dtype,
            values,
        });
    }
    tensors.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(StateDictFile {
        format,
        sha256,
        tensors,
    })
}

/// The state dict of `model` under the convention of [`model::pytorch`]: PyTorch key, shape
/// and layout of every parameter, in the model's order.
pub(crate) fn layout<M: Classifier>(model: &M) -> Result<Vec<TorchParam>> {
    struct Shapes(Vec<(String, Vec<usize>)>);
    impl params::ParamVisitor for Shapes {
        fn visit<const D: usize>(&mut self, path: &str, _: &str, param: &Param<Tensor<D>>) {
            self.0.push((path.to_string(), param.lazy_shape().to_vec()));
        }
    }
    let mut shapes = Shapes(Vec::new());
    params::visit(model, &mut shapes);
    Ok(model::pytorch::state_dict_layout(
        &model.layers(),
        &shapes.0,
    )?)
}

/// `module`'s parameters as a safetensors file in PyTorch's names and layout, with
/// `metadata` in its header. The bytes are read back and checked against `layout` (names,
/// shapes, and every value of `values`, the parameters in Burn's layout by key).
pub(crate) fn safetensors_bytes<M: Module>(
    module: &M,
    layout: &[TorchParam],
    values: &params::HostParams,
    metadata: &[(&str, String)],
) -> Result<Vec<u8>> {
    let mut store = SafetensorsStore::from_bytes(None)
        .with_to_adapter(BurnToPyTorchAdapter)
        .skip_enum_variants(true);
    for (k, v) in metadata {
        store = store.metadata(*k, v.clone());
    }
    module
        .save_into(&mut store)
        .map_err(|e| anyhow!("{e}"))
        .context("cannot serialize the weights as safetensors")?;
    let bytes = store.get_bytes().map_err(|e| anyhow!("{e}"))?;

    // What a PyTorch user will load: exactly the layout's keys, shapes and values.
    let mut check = SafetensorsStore::from_bytes(Some(bytes.clone()));
    let written = check.get_all_tensors().map_err(|e| anyhow!("{e}"))?;
    let keys: Vec<&str> = written.keys().map(String::as_str).collect();
    let mut want: Vec<&str> = layout.iter().map(|p| p.key.as_str()).collect();
    want.sort_unstable();
    if keys != want {
        bail!("the safetensors writer produced keys {keys:?}, expected {want:?}");
    }
    for p in layout {
        let t = &written[&p.key];
        let data = bridge::to_data(t).map_err(|e| anyhow!("{e}"))?;
        let got = data
            .try_into_vec_as::<f32>()
            .map_err(|e| anyhow!("{e:?}"))?;
        let expected = p.to_torch(values.values(&p.key)?.to_vec());
        if t.shape.to_vec() != p.shape
            || got.len() != expected.len()
            || got
                .iter()
                .zip(&expected)
                .any(|(a, b)| a.to_bits() != b.to_bits())
        {
            bail!(
                "the safetensors writer produced {} {:?} unlike the model's parameter (PyTorch \
                 shape {:?})",
                p.key,
                t.shape.to_vec(),
                p.shape
            );
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_recognized_by_their_first_bytes() {
        let mut st = 2u64.to_le_bytes().to_vec();
        st.extend_from_slice(b"{}");
        assert_eq!(sniff(&st), Some(SourceFormat::Safetensors));
        assert_eq!(sniff(b"PK\x03\x04rest"), Some(SourceFormat::Pytorch));
        assert_eq!(sniff(&[0x80, 2, 0x8a]), Some(SourceFormat::Pytorch));
        assert_eq!(sniff(b"hello, world"), None);
        assert_eq!(sniff(b""), None);
    }
}
