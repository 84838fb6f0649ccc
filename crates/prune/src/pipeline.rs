//! The pruning pipeline on one model: select layers, score their filters, plan a mask, count what
//! it removes, and the zeroed parameters. `trainer prune`, `prune-sweep` and `redundancy` are
//! this, plus loading runs, evaluating and writing.

use std::collections::{BTreeMap, HashMap};

use burn::module::Module;
use burn::tensor::Tensor;
use model::{Classifier, LayerInfo, LayerKind, hidden_layers};
use params::HostParams;

use crate::filters::layer_filters;
use crate::redundancy::LayerRedundancy;
use crate::stats::ChannelStats;
use crate::{Criterion, Mask, PruneEffect, PruneError, Scope, effect, masked_values, plan};

/// The layers named in `names` (each a hidden layer of the table, in the order given), or every
/// hidden conv layer when `names` is empty.
pub fn select_layers(table: &[LayerInfo], names: &[String]) -> Result<Vec<String>, PruneError> {
    if names.is_empty() {
        return Ok(hidden_layers(table)
            .into_iter()
            .filter(|l| l.kind == LayerKind::Conv2d)
            .map(|l| l.name.clone())
            .collect());
    }
    for n in names {
        crate::mask::find(table, n)?;
    }
    Ok(names.to_vec())
}

/// One model prepared for pruning: its layer table, its parameters on the host, the selected
/// layers' filters, and (once collected) their activation statistics.
pub struct Pruner {
    table: Vec<LayerInfo>,
    layers: Vec<String>,
    params: HostParams,
    filters: BTreeMap<String, Vec<Vec<f32>>>,
    stats: BTreeMap<String, ChannelStats>,
    seed: u64,
}

/// What one pruning decided: the mask, what it removes, and the zeroed parameters.
#[derive(Debug, Clone)]
pub struct Pruning {
    /// Kept and pruned filters.
    pub mask: Mask,
    /// Parameters and FLOPs removed.
    pub effect: PruneEffect,
    /// The parameters the mask changes, with the pruned entries zeroed.
    pub zeroed: HashMap<String, Vec<f32>>,
}

impl Pruning {
    /// `model` (the one the pruner was built from) with the pruned filters zeroed.
    pub fn apply<M: Module>(&self, model: M) -> Result<M, PruneError> {
        Ok(params::write(model, self.zeroed.clone())?)
    }
}

impl Pruner {
    /// Prepare `model` for pruning `layers` (hidden layers; empty: every hidden conv layer).
    /// `seed` keys the random criterion.
    pub fn new<M: Classifier>(model: &M, layers: &[String], seed: u64) -> Result<Self, PruneError> {
        let table = model.layers();
        let layers = select_layers(&table, layers)?;
        let params = HostParams::read(model);
        let filters = layers
            .iter()
            .map(|n| {
                let info = crate::mask::find(&table, n)?;
                Ok((n.clone(), layer_filters(info, &params)?.0))
            })
            .collect::<Result<_, PruneError>>()?;
        Ok(Pruner {
            table,
            layers,
            params,
            filters,
            stats: BTreeMap::new(),
            seed,
        })
    }

    /// Collect the selected layers' activation statistics over `batches` of images
    /// (`[N, 1, H, W]`, normalized as the model expects), for the data-dependent criteria and
    /// the redundancy analysis.
    pub fn collect_statistics<M: Classifier>(
        &mut self,
        model: &M,
        batches: impl IntoIterator<Item = Tensor<4>>,
    ) {
        self.stats = crate::stats::collect(model, batches, &self.layers);
    }

    /// The selected layers, in order.
    pub fn layers(&self) -> &[String] {
        &self.layers
    }

    /// The model's layer table.
    pub fn table(&self) -> &[LayerInfo] {
        &self.table
    }

    /// The model's parameters, as read.
    pub fn params(&self) -> &HostParams {
        &self.params
    }

    /// One score per filter of every selected layer under `criterion` (lower: pruned first).
    pub fn scores(&self, criterion: Criterion) -> Result<BTreeMap<String, Vec<f64>>, PruneError> {
        self.filters
            .iter()
            .map(|(layer, f)| {
                let scores = criterion.scores(f, self.stats.get(layer), self.seed, layer)?;
                Ok((layer.clone(), scores))
            })
            .collect()
    }

    /// Prune `ratio` of the selected layers' filters by `criterion`, per layer or globally.
    pub fn prune(
        &self,
        criterion: Criterion,
        ratio: f64,
        scope: Scope,
    ) -> Result<Pruning, PruneError> {
        let mask = plan(&self.scores(criterion)?, ratio, scope)?;
        Ok(Pruning {
            effect: effect(&mask, &self.table)?,
            zeroed: masked_values(&self.params, &mask, &self.table)?,
            mask,
        })
    }

    /// Near-duplicate and dead filters of every selected layer, near-duplicates at
    /// |correlation| ≥ `threshold`. Needs the statistics ([`Pruner::collect_statistics`]).
    pub fn redundancy(&self, threshold: f64) -> Result<Vec<LayerRedundancy>, PruneError> {
        self.layers
            .iter()
            .map(|n| {
                let stats = self
                    .stats
                    .get(n)
                    .ok_or_else(|| PruneError::NeedsActivations("redundancy".into()))?;
                Ok(crate::redundancy::analyze(
                    n,
                    &self.filters[n],
                    stats,
                    threshold,
                ))
            })
            .collect()
    }
}
