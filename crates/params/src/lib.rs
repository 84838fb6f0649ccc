//! A Burn module's float parameters, addressed by path (`conv1.weight`, `convs.3.bias`).
//!
//! - [`visit`] / [`map`]: walk every float parameter of any module with its path — the one
//!   path-tracking visitor and mapper the other crates build on.
//! - [`HostParams`]: every parameter's shape and values on the host, in traversal order, with
//!   lookup by path; [`write`] puts values back (same parameter ids and devices), and
//!   [`with_values`] evaluates a variant of a module without changing it.
//! - [`weights_sha256`]: a hash of the weights that is equal exactly when the weights are
//!   bit-identical.
//! - [`ParamRng`]: the random stream keyed by `(seed, parameter path)`, so a draw depends on
//!   nothing else (not the backend, the visiting order or other threads).
//!
//! No initialization, pruning or comparison logic lives here.

mod host;
pub mod rng;
mod walk;

pub use host::{HostParam, HostParams, replace_values, weights_sha256, with_values, write};
pub use rng::ParamRng;
pub use walk::{ParamMapper, ParamVisitor, map, visit};

/// Errors reading or writing parameters by path.
#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    /// Values of the wrong size for a parameter.
    #[error("parameter {path} has {expected} values, {given} given")]
    Size {
        /// The parameter.
        path: String,
        /// Its number of elements.
        expected: usize,
        /// The number of values given.
        given: usize,
    },
    /// A path the module does not have.
    #[error("the model has no parameter {path}; its parameters are: {available}")]
    Unknown {
        /// The path asked for.
        path: String,
        /// Every parameter path of the module (or set).
        available: String,
    },
}
