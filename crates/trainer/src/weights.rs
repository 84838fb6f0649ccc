//! Reading a module's parameters on the host: by path, and as a hash.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use sha2::{Digest, Sha256};

/// Every float parameter of `module` as `(path, shape, values)`, in traversal order.
pub fn parameters<M: Module>(module: &M) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    struct Collect {
        path: Vec<String>,
        out: Vec<(String, Vec<usize>, Vec<f32>)>,
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
            self.out.push((self.path.join("."), shape, values));
        }
    }
    let mut c = Collect {
        path: Vec::new(),
        out: Vec::new(),
    };
    module.visit(&mut c);
    c.out
}

/// SHA-256 over every float parameter's path, shape and little-endian f32 bits, in traversal
/// order: equal hashes mean bit-identical weights.
pub fn weights_sha256<M: Module>(module: &M) -> String {
    let mut h = Sha256::new();
    for (path, shape, values) in parameters(module) {
        h.update(path.as_bytes());
        h.update([0]);
        for d in shape {
            h.update((d as u64).to_le_bytes());
        }
        for v in values {
            h.update(v.to_le_bytes());
        }
    }
    format!("{:x}", h.finalize())
}
