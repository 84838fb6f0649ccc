//! Parameters on the host: read, look up by path, write back, hash.

use std::collections::HashMap;

use burn::module::{Module, Param};
use burn::tensor::{Tensor, TensorData};
use sha2::{Digest, Sha256};

use crate::ParamsError;
use crate::walk::{ParamMapper, ParamVisitor, map, visit};

/// A float parameter's values on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostParam {
    /// Path, e.g. `conv1.weight`.
    pub path: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Values in storage (row-major) order.
    pub values: Vec<f32>,
}

/// Every float parameter of a module on the host, in traversal order, with lookup by path.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostParams {
    params: Vec<HostParam>,
    index: HashMap<String, usize>,
}

impl HostParams {
    /// Every float parameter of `module` (downloaded from its device).
    pub fn read<M: Module>(module: &M) -> Self {
        struct Collect(Vec<HostParam>);
        impl ParamVisitor for Collect {
            fn visit<const D: usize>(&mut self, path: &str, _: &str, param: &Param<Tensor<D>>) {
                let data = param.val().into_data();
                let shape = data.shape().to_vec();
                let values = data
                    .try_into_vec_as::<f32>()
                    .expect("float parameters convert to f32");
                self.0.push(HostParam {
                    path: path.to_string(),
                    shape,
                    values,
                });
            }
        }
        let mut c = Collect(Vec::new());
        visit(module, &mut c);
        c.0.into_iter().collect()
    }

    /// The parameter at `path`, if any.
    pub fn get(&self, path: &str) -> Option<&HostParam> {
        self.index.get(path).map(|&i| &self.params[i])
    }

    /// The values of the parameter at `path`, or an error naming it and the known paths.
    pub fn values(&self, path: &str) -> Result<&[f32], ParamsError> {
        self.get(path)
            .map(|p| p.values.as_slice())
            .ok_or_else(|| self.unknown(path))
    }

    /// Replace the values of the parameter at `path` (same size).
    pub fn set(&mut self, path: &str, values: Vec<f32>) -> Result<(), ParamsError> {
        let i = *self.index.get(path).ok_or_else(|| self.unknown(path))?;
        let p = &mut self.params[i];
        if p.values.len() != values.len() {
            return Err(ParamsError::Size {
                path: path.to_string(),
                expected: p.values.len(),
                given: values.len(),
            });
        }
        p.values = values;
        Ok(())
    }

    /// The same parameters with every value transformed by `f(path, values)`.
    pub fn map_values(&self, mut f: impl FnMut(&HostParam) -> Vec<f32>) -> HostParams {
        self.iter()
            .map(|p| HostParam {
                path: p.path.clone(),
                shape: p.shape.clone(),
                values: f(p),
            })
            .collect()
    }

    /// The parameters, in traversal order.
    pub fn iter(&self) -> std::slice::Iter<'_, HostParam> {
        self.params.iter()
    }

    /// Every path, in traversal order.
    pub fn paths(&self) -> Vec<&str> {
        self.params.iter().map(|p| p.path.as_str()).collect()
    }

    /// Number of parameters (tensors, not values).
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// Whether there is no parameter.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// Number of values over all parameters.
    pub fn num_values(&self) -> usize {
        self.params.iter().map(|p| p.values.len()).sum()
    }

    fn unknown(&self, path: &str) -> ParamsError {
        ParamsError::Unknown {
            path: path.to_string(),
            available: self.paths().join(", "),
        }
    }

    /// SHA-256 over every parameter's path, shape and little-endian f32 bits, in traversal order.
    pub fn sha256(&self) -> String {
        let mut h = Sha256::new();
        for p in &self.params {
            h.update(p.path.as_bytes());
            h.update([0]);
            for &d in &p.shape {
                h.update((d as u64).to_le_bytes());
            }
            for v in &p.values {
                h.update(v.to_le_bytes());
            }
        }
        format!("{:x}", h.finalize())
    }
}

impl FromIterator<HostParam> for HostParams {
    fn from_iter<I: IntoIterator<Item = HostParam>>(iter: I) -> Self {
        let params: Vec<HostParam> = iter.into_iter().collect();
        let index = params
            .iter()
            .enumerate()
            .map(|(i, p)| (p.path.clone(), i))
            .collect();
        HostParams { params, index }
    }
}

impl IntoIterator for HostParams {
    type Item = (String, Vec<f32>);
    type IntoIter =
        std::iter::Map<std::vec::IntoIter<HostParam>, fn(HostParam) -> (String, Vec<f32>)>;
    fn into_iter(self) -> Self::IntoIter {
        self.params.into_iter().map(|p| (p.path, p.values))
    }
}

impl<'a> IntoIterator for &'a HostParams {
    type Item = &'a HostParam;
    type IntoIter = std::slice::Iter<'a, HostParam>;
    fn into_iter(self) -> Self::IntoIter {
        self.params.iter()
    }
}

/// SHA-256 of a module's weights (see [`HostParams::sha256`]): equal hashes mean bit-identical
/// weights.
pub fn weights_sha256<M: Module>(module: &M) -> String {
    HostParams::read(module).sha256()
}

/// A parameter with the same id and device as `param` holding `values` (storage order),
/// trainable, and a leaf of no graph.
pub fn replace_values<const D: usize>(
    param: Param<Tensor<D>>,
    values: Vec<f32>,
) -> Param<Tensor<D>> {
    let device = param.lazy_device();
    let shape = param.lazy_shape();
    let tensor = Tensor::<D>::from_data(TensorData::new(values, shape), &device);
    let mut new = Param::from_tensor(tensor);
    new.id = param.id;
    new
}

/// Replace the parameters named in `values` (path and values in storage order, of the
/// parameter's size), keeping their ids and devices. Every named path must exist.
///
/// Burn shares a module's running statistics (a batch norm's `running_mean` and `running_var`)
/// between the module and its clones: writing them into a clone changes the original too. Use
/// [`with_values`] to evaluate a variant of a module, or write into a freshly built one.
pub fn write<M: Module>(
    module: M,
    values: impl IntoIterator<Item = (String, Vec<f32>)>,
) -> Result<M, ParamsError> {
    struct Write {
        values: HashMap<String, Vec<f32>>,
        paths: Vec<String>,
        error: Option<ParamsError>,
    }
    impl ParamMapper for Write {
        fn map<const D: usize>(&mut self, path: &str, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            self.paths.push(path.to_string());
            match self.values.remove(path) {
                Some(v) if v.len() == param.lazy_shape().num_elements() => replace_values(param, v),
                Some(v) => {
                    self.error.get_or_insert(ParamsError::Size {
                        path: path.to_string(),
                        expected: param.lazy_shape().num_elements(),
                        given: v.len(),
                    });
                    param
                }
                None => param,
            }
        }
    }
    let mut w = Write {
        values: values.into_iter().collect(),
        paths: Vec::new(),
        error: None,
    };
    let module = map(module, &mut w);
    if let Some(e) = w.error {
        return Err(e);
    }
    let mut left: Vec<String> = w.values.into_keys().collect();
    left.sort();
    if let Some(path) = left.into_iter().next() {
        return Err(ParamsError::Unknown {
            path,
            available: w.paths.join(", "),
        });
    }
    Ok(module)
}

/// `f` applied to a copy of `module` holding `values`; `module` is left as it was, its running
/// statistics included (which Burn shares between clones: they are written back afterwards).
pub fn with_values<M: Module, T>(
    module: &M,
    values: impl IntoIterator<Item = (String, Vec<f32>)>,
    f: impl FnOnce(&M) -> T,
) -> Result<T, ParamsError> {
    let values: Vec<(String, Vec<f32>)> = values.into_iter().collect();
    let original = HostParams::read(module);
    let restore: Vec<(String, Vec<f32>)> = values
        .iter()
        .map(|(path, _)| Ok((path.clone(), original.values(path)?.to_vec())))
        .collect::<Result<_, ParamsError>>()?;
    let variant = write(module.clone(), values)?;
    let out = f(&variant);
    drop(variant);
    write(module.clone(), restore)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::Device;

    #[derive(Module, Debug)]
    struct Two {
        a: Linear,
        b: Linear,
    }

    fn two() -> Two {
        let d = Device::flex();
        Two {
            a: LinearConfig::new(2, 3).init(&d),
            b: LinearConfig::new(3, 1).with_bias(false).init(&d),
        }
    }

    #[test]
    fn read_look_up_write_and_hash() {
        let m = two();
        let p = HostParams::read(&m);
        assert_eq!(p.paths(), ["a.weight", "a.bias", "b.weight"]);
        assert_eq!(p.get("a.weight").unwrap().shape, vec![2, 3]);
        assert_eq!(p.num_values(), 6 + 3 + 3);
        let err = p.values("c.weight").unwrap_err().to_string();
        assert!(err.contains("c.weight") && err.contains("a.bias"), "{err}");

        let m = write(m, [("b.weight".to_string(), vec![1.0, 2.0, 3.0])]).unwrap();
        let q = HostParams::read(&m);
        assert_eq!(q.values("b.weight").unwrap(), [1.0, 2.0, 3.0]);
        assert_eq!(q.values("a.weight").unwrap(), p.values("a.weight").unwrap());
        assert_ne!(p.sha256(), q.sha256());
        assert_eq!(weights_sha256(&m), q.sha256());

        let err = write(two(), [("b.weight".to_string(), vec![1.0])]).unwrap_err();
        assert!(matches!(
            err,
            ParamsError::Size {
                expected: 3,
                given: 1,
                ..
            }
        ));
        let err = write(two(), [("nope".to_string(), vec![1.0])]).unwrap_err();
        assert!(
            err.to_string().contains("a.weight, a.bias, b.weight"),
            "{err}"
        );

        let mut r = q.clone();
        r.set("a.bias", vec![0.0; 3]).unwrap();
        assert!(r.set("a.bias", vec![0.0; 2]).is_err());
        let doubled = r.map_values(|p| p.values.iter().map(|v| v * 2.0).collect());
        assert_eq!(doubled.values("b.weight").unwrap(), [2.0, 4.0, 6.0]);
    }

    #[test]
    fn variants_leave_shared_running_statistics_as_they_were() {
        use burn::nn::{BatchNorm, BatchNormConfig};
        #[derive(Module, Debug)]
        struct Norm {
            bn: BatchNorm,
        }
        let m = Norm {
            bn: BatchNormConfig::new(2).init(&Device::flex()),
        };
        let path = "bn.running_mean".to_string();
        // Burn shares running statistics between clones: a plain write changes the original.
        let _ = write(m.clone(), [(path.clone(), vec![5.0, 6.0])]).unwrap();
        assert_eq!(HostParams::read(&m).values(&path).unwrap(), [5.0, 6.0]);
        let seen = with_values(&m, [(path.clone(), vec![1.0, 2.0])], |v| {
            HostParams::read(v).values(&path).unwrap().to_vec()
        })
        .unwrap();
        assert_eq!(seen, [1.0, 2.0]);
        assert_eq!(HostParams::read(&m).values(&path).unwrap(), [5.0, 6.0]);
    }

    #[test]
    fn visitors_see_paths_and_containers() {
        struct Seen(Vec<(String, String)>);
        impl ParamVisitor for Seen {
            fn visit<const D: usize>(&mut self, path: &str, c: &str, _: &Param<Tensor<D>>) {
                self.0.push((path.to_string(), c.to_string()));
            }
        }
        let mut s = Seen(Vec::new());
        visit(&two(), &mut s);
        assert_eq!(s.0[0].0, "a.weight");
        assert!(s.0[0].1.ends_with("Linear"), "{:?}", s.0[0]);
        assert_eq!(s.0.len(), 3);
    }
}
