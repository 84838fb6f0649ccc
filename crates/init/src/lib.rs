//! Weight initialization for Burn modules: every scheme practitioners know, with correct fans and
//! gains, sampled on the host from a stream keyed by `(seed, parameter path)`.
//!
//! - [`Scheme`]: zeros, ones, constant, uniform, normal, truncated normal, LeCun, Xavier/Glorot,
//!   Kaiming/He, variance scaling, orthogonal, delta-orthogonal, Dirac, the PyTorch and Burn
//!   defaults, LSUV, and `+noise(σ)` to perturb any of them. Each resolves, for a given
//!   parameter, to a concrete [`Law`].
//! - [`InitSpec`]: one scheme for every weight, plus per-parameter overrides by path pattern
//!   (`conv*.weight=kaiming-normal(relu)`, `fc2.*=xavier-uniform`); biases are zero unless a
//!   pattern or the scheme's own rule (framework defaults) says otherwise.
//! - [`apply`]: initialize any Burn module in place of its current parameters. The same seed
//!   gives bit-identical weights on every backend, in any visiting order, with any number of
//!   threads, because values are drawn on the host by [`params::ParamRng`] and only then
//!   uploaded.
//! - [`lsuv`]: the data-dependent rescaling of Mishkin & Matas (2016).
//! - [`stats`]: activation and gradient statistics at initialization.

mod apply;
mod lsuv;
mod ortho;
mod scheme;
mod spec;
pub mod stats;

pub use apply::{ParamSlot, ResolvedParam, apply, collect_params, resolve};
pub use lsuv::{LsuvLayer, lsuv};
pub use ortho::semi_orthogonal;
pub use scheme::{
    Distribution, FanMode, Law, Nonlinearity, ParamKind, ParamShape, SCHEME_HELP, Scheme,
    TRUNC2_STD,
};
pub use spec::InitSpec;

/// Initialization errors; each names the scheme, spec or parameter at fault.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// An unknown scheme name.
    #[error(
        "unknown initialization scheme '{name}'; known schemes: {}",
        SCHEME_HELP
    )]
    UnknownScheme {
        /// The name.
        name: String,
    },
    /// A scheme or spec that does not parse.
    #[error("cannot parse initialization '{spec}': {why}")]
    Parse {
        /// The text.
        spec: String,
        /// What is wrong.
        why: String,
    },
    /// A matrix scheme applied to a vector.
    #[error("{scheme} needs a weight matrix or kernel, not a tensor of shape {shape:?}")]
    NeedsMatrix {
        /// The scheme.
        scheme: String,
        /// The parameter's shape.
        shape: Vec<usize>,
    },
    /// A scheme whose conditions the parameter does not meet.
    #[error("{scheme} cannot initialize this parameter: {why}")]
    Incompatible {
        /// The scheme.
        scheme: String,
        /// Why not.
        why: String,
    },
    /// A pattern that matches no parameter (probably a typo).
    #[error("the pattern '{pattern}' matches no parameter; the parameters are: {available}")]
    NoMatch {
        /// The pattern.
        pattern: String,
        /// Every parameter path.
        available: String,
    },
    /// Something about one parameter.
    #[error("parameter {path}: {source}")]
    Param {
        /// The parameter's path.
        path: String,
        /// The error.
        source: Box<InitError>,
    },
    /// LSUV could not run.
    #[error("LSUV: {0}")]
    Lsuv(String),
    /// Reading or writing parameters failed.
    #[error(transparent)]
    Params(#[from] params::ParamsError),
}

#[cfg(test)]
mod tests;
