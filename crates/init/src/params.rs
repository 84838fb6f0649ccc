//! Reading and writing a module's float parameters on the host, by path.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

use crate::InitError;
use crate::apply::replace_param;

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

/// Every float parameter of `module`, in traversal order.
pub fn read_parameters<M: Module>(module: &M) -> Vec<HostParam> {
    struct Collect {
        path: Vec<String>,
        out: Vec<HostParam>,
    }
    impl ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let data = param.val().into_data();
            let shape = data.shape().to_vec();
            let values = data
                .try_into_vec_as::<f32>()
                .expect("float parameters convert to f32");
            self.out.push(HostParam {
                path: self.path.join("."),
                shape,
                values,
            });
        }
    }
    let mut c = Collect {
        path: Vec::new(),
        out: Vec::new(),
    };
    module.visit(&mut c);
    c.out
}

/// Replace the parameters named in `values` (path → values in storage order, of the
/// parameter's size), keeping their ids and devices; every named path must exist.
pub fn write_parameters<M: Module>(
    module: M,
    mut values: HashMap<String, Vec<f32>>,
) -> Result<M, InitError> {
    struct Write<'a> {
        path: Vec<String>,
        values: &'a mut HashMap<String, Vec<f32>>,
        error: Option<InitError>,
    }
    impl ModuleMapper for Write<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let path = self.path.join(".");
            match self.values.remove(&path) {
                Some(v) if v.len() == param.lazy_shape().num_elements() => replace_param(param, v),
                Some(v) => {
                    self.error.get_or_insert(InitError::Incompatible {
                        scheme: "write_parameters".into(),
                        why: format!(
                            "{path} has {} values, {} given",
                            param.lazy_shape().num_elements(),
                            v.len()
                        ),
                    });
                    param
                }
                None => param,
            }
        }
    }
    let mut w = Write {
        path: Vec::new(),
        values: &mut values,
        error: None,
    };
    let module = module.map(&mut w);
    if let Some(e) = w.error {
        return Err(e);
    }
    if let Some(path) = values.keys().next() {
        return Err(InitError::NoMatch {
            pattern: path.clone(),
            available: read_paths(&module).join(", "),
        });
    }
    Ok(module)
}

fn read_paths<M: Module>(module: &M) -> Vec<String> {
    crate::collect_params(module)
        .into_iter()
        .map(|s| s.path)
        .collect()
}
