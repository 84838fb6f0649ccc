//! Structured pruning of CNN filters, for any Burn model described by a layer table
//! ([`model::LayerInfo`]): which filters are redundant, how important each is, which to remove,
//! and removing them.
//!
//! - [`stats`]: per-channel activation statistics over real images (mean, zeros, correlation).
//! - [`redundancy`]: near-duplicate filters (weight cosine, feature-map correlation), clusters,
//!   dead filters.
//! - [`Criterion`]: L1/L2 norm, FPGM, feature-map redundancy, mean activation, APoZ, random.
//! - [`Mask`]: which filters are kept; [`plan`] builds one from scores (per layer or global);
//!   [`apply_mask`] zeroes whole filters (weights, bias, and the `gamma` and `beta` of a
//!   normalization that follows, named by [`model::LayerInfo::norm`]); [`DeviceMask`] re-applies it after every optimizer step; [`effect`] counts the
//!   parameters and FLOPs removed.
//! - [`compact`]: a physically smaller model with the pruned channels removed.
//! - [`Pruner`]: the pipeline on one model — select layers, score, plan, count, zero — that the
//!   command line's `prune`, `prune-sweep` and `redundancy` are built on.
//! - [`filters`]: filters as vectors: cosine similarity, distinct filters, groups of nearly
//!   parallel filters, the effective rank of a layer, per-layer summaries.

pub mod compact;
mod criteria;
pub mod filters;
mod mask;
#[cfg(test)]
mod norm_tests;
mod pipeline;
pub mod redundancy;
pub mod stats;

pub use criteria::Criterion;
pub use mask::{
    DeviceMask, FLOP_CONVENTION, LayerEffect, Mask, PruneEffect, Scope, apply_mask, effect,
    layer_flops, masked_values, plan,
};
pub use pipeline::{Pruner, Pruning, select_layers};

/// Pruning errors, naming the value or layer at fault.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    /// A ratio outside `[0, 1)`.
    #[error("pruning ratio {0} is outside [0, 1): a layer must keep at least one filter")]
    Ratio(f64),
    /// A layer that is not in the model.
    #[error("unknown layer '{layer}'; prunable layers: {available}")]
    UnknownLayer {
        /// The name given.
        layer: String,
        /// The prunable layers.
        available: String,
    },
    /// A layer whose outputs cannot be pruned (the classifier head).
    #[error("layer '{0}' produces the logits and cannot be pruned")]
    NotPrunable(String),
    /// An unknown criterion name.
    #[error(
        "unknown criterion '{0}' (expected l1, l2, fpgm, redundancy, mean-activation, apoz or random)"
    )]
    UnknownCriterion(String),
    /// A data-dependent criterion without activation statistics.
    #[error("criterion {0} needs activation statistics on real images")]
    NeedsActivations(String),
    /// A mask that does not fit the model.
    #[error("mask does not fit the model: {0}")]
    Mask(String),
    /// Reading or writing parameters failed.
    #[error(transparent)]
    Params(#[from] params::ParamsError),
    /// A layer name the model does not have.
    #[error(transparent)]
    Layer(#[from] model::ModelError),
}
