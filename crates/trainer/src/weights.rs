//! The hash of a module's weights.

use burn::module::Module;
use sha2::{Digest, Sha256};

/// SHA-256 over every float parameter's path, shape and little-endian f32 bits, in traversal
/// order: equal hashes mean bit-identical weights.
pub fn weights_sha256<M: Module>(module: &M) -> String {
    let mut h = Sha256::new();
    for init::HostParam {
        path,
        shape,
        values,
    } in init::read_parameters(module)
    {
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
