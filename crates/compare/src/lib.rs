//! Do networks trained from different seeds learn the same filters, up to a permutation?
//!
//! - [`matching`]: the optimal one-to-one matching of two runs' filters by feature-map
//!   correlation (Kuhn–Munkres), against the identity pairing.
//! - [`cka`]: linear centered kernel alignment (Kornblith et al. 2019) and its debiased
//!   minibatch estimate (Nguyen et al. 2021).
//! - [`permute`]: permuting a network's hidden units (a function-preserving symmetry), and
//!   finding the permutation that aligns one network onto another by activations or by
//!   weights (Ainsworth et al. 2023, "Git Re-Basin").
//! - [`interpolate`]: the straight line between two networks' weights and its loss barrier
//!   (Entezari et al. 2022).
//! - [`subspace`]: whether two layers span the same subspace in different bases: SVCCA (Raghu
//!   et al. 2017), PWCCA (Morcos et al. 2018) and the many-to-one reconstruction of one layer's
//!   feature maps from another's (after Li et al. 2016).
//! - [`compare_pair`]: all of the above for one pair of networks, with evaluation passed in.
//!
//! Everything works on a layer table ([`model::LayerInfo`]) and host parameters, so any Burn CNN
//! described by one can be compared.

pub mod cka;
pub mod interpolate;
pub mod matching;
mod pair;
pub mod permute;
pub mod subspace;

pub use pair::{
    Alignment, FirstLayer, LayerComparison, PairComparison, PairSettings, compare_pair,
};

/// Comparison errors.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// The two networks do not have the same architecture.
    #[error("the networks differ: {0}")]
    Mismatch(String),
    /// Reading or writing parameters failed.
    #[error(transparent)]
    Params(#[from] params::ParamsError),
    /// A layer that is unknown, or cannot be permuted or compared.
    #[error(transparent)]
    Layer(#[from] model::ModelError),
}
