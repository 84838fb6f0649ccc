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
//!
//! Everything works on a layer table ([`model::LayerInfo`]) and host parameters, so any Burn CNN
//! described by one can be compared.

pub mod cka;
pub mod interpolate;
pub mod matching;
pub mod permute;

/// Comparison errors.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// The two networks do not have the same architecture.
    #[error("the networks differ: {0}")]
    Mismatch(String),
    /// Reading or writing parameters failed.
    #[error(transparent)]
    Params(#[from] init::InitError),
}
