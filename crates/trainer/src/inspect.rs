//! `trainer inspect`: what the filters of a trained run look like, and how many are distinct.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use model::{Classifier, LayerInfo, with_model};
use serde::{Deserialize, Serialize};

use crate::fsio::write_json;
use crate::plot::filter_grid_png;
use crate::run::{RunDir, load_module};

/// Options of `trainer inspect`.
#[derive(Debug, Clone, clap::Args)]
pub struct InspectArgs {
    /// The run directory.
    #[arg(value_name = "RUN_DIR")]
    pub run: PathBuf,
    /// Two filters (weights and bias) count as the same if they differ by at most this
    /// fraction of their largest absolute value.
    #[arg(long, default_value_t = 1e-5)]
    pub tolerance: f64,
    /// Where to write inspect.json and the filter image [default: RUN_DIR/inspect].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One layer's filters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerInspection {
    /// Layer name.
    pub layer: String,
    /// Number of filters (output channels or units).
    pub filters: usize,
    /// Values per filter (weights, plus the bias).
    pub filter_len: usize,
    /// Filters that differ from every other by more than the tolerance, counted as groups of
    /// identical filters.
    pub distinct_filters: usize,
    /// Mean cosine similarity over all pairs of filters (weights only).
    pub mean_pairwise_cosine: f64,
    /// Largest cosine similarity between two different filters.
    pub max_pairwise_cosine: f64,
    /// Mean of the weights.
    pub weight_mean: f64,
    /// Standard deviation of the weights.
    pub weight_std: f64,
    /// Smallest weight.
    pub weight_min: f64,
    /// Largest weight.
    pub weight_max: f64,
    /// Mean L2 norm of a filter's weights.
    pub mean_filter_norm: f64,
}

/// The filters of a layer (one `Vec` of weights per output channel) and its biases.
pub fn layer_filters(
    info: &LayerInfo,
    params: &[init::HostParam],
) -> Option<(Vec<Vec<f32>>, Vec<f32>)> {
    let find = |path: String| params.iter().find(|p| p.path == path);
    let weight = find(info.weight_path())?;
    let bias =
        find(info.bias_path()).map_or_else(|| vec![0.0; info.out_channels], |b| b.values.clone());
    Some((info.filters(&weight.values), bias))
}

/// Groups of filters equal within `tol` (relative to the larger max-abs of the two), counted.
pub fn distinct_count(filters: &[Vec<f32>], bias: &[f32], tol: f64) -> usize {
    let n = filters.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    let full: Vec<Vec<f64>> = filters
        .iter()
        .zip(bias)
        .map(|(f, b)| {
            f.iter()
                .chain(std::iter::once(b))
                .map(|&v| v as f64)
                .collect()
        })
        .collect();
    let scale: Vec<f64> = full
        .iter()
        .map(|f| f.iter().fold(0.0f64, |m, v| m.max(v.abs())))
        .collect();
    for i in 0..n {
        for j in i + 1..n {
            let limit = tol * scale[i].max(scale[j]);
            if full[i]
                .iter()
                .zip(&full[j])
                .all(|(a, b)| (a - b).abs() <= limit)
            {
                let (ri, rj) = (root(&mut parent, i), root(&mut parent, j));
                parent[ri] = rj;
            }
        }
    }
    (0..n).filter(|&i| root(&mut parent, i) == i).count()
}

/// Cosine similarity of two vectors (0 if either is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64, y as f64);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        0.0
    } else {
        ab / (aa * bb).sqrt()
    }
}

/// Inspect every layer of `model`.
pub fn inspect_model<M: Classifier>(model: &M, tol: f64) -> Vec<LayerInspection> {
    let params = init::read_parameters(model);
    model
        .layers()
        .iter()
        .filter_map(|info| {
            let (filters, bias) = layer_filters(info, &params)?;
            let n = filters.len();
            let (mut sum, mut max, mut pairs) = (0.0, f64::NEG_INFINITY, 0usize);
            for i in 0..n {
                for j in i + 1..n {
                    let c = cosine(&filters[i], &filters[j]);
                    sum += c;
                    max = max.max(c);
                    pairs += 1;
                }
            }
            let all: Vec<f64> = filters.iter().flatten().map(|&v| v as f64).collect();
            let mean = all.iter().sum::<f64>() / all.len() as f64;
            let std =
                (all.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / all.len() as f64).sqrt();
            let norms: f64 = filters
                .iter()
                .map(|f| f.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt())
                .sum();
            Some(LayerInspection {
                layer: info.name.clone(),
                filters: n,
                filter_len: filters.first().map_or(0, Vec::len) + 1,
                distinct_filters: distinct_count(&filters, &bias, tol),
                mean_pairwise_cosine: if pairs > 0 { sum / pairs as f64 } else { 1.0 },
                max_pairwise_cosine: if pairs > 0 { max } else { 1.0 },
                weight_mean: mean,
                weight_std: std,
                weight_min: all.iter().cloned().fold(f64::INFINITY, f64::min),
                weight_max: all.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
                mean_filter_norm: norms / n.max(1) as f64,
            })
        })
        .collect()
}

/// The result of `trainer inspect`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Inspection {
    /// The run.
    pub run: PathBuf,
    /// Its initialization spec.
    pub init: String,
    /// Tolerance used for distinct filters.
    pub tolerance: f64,
    /// Per layer.
    pub layers: Vec<LayerInspection>,
    /// The PNG grid of the first layer's filters.
    pub filter_image: PathBuf,
}

/// Run `trainer inspect`.
pub fn inspect(args: &InspectArgs) -> Result<Inspection> {
    if !(args.tolerance.is_finite() && args.tolerance >= 0.0) {
        bail!("--tolerance {} is invalid: it must be ≥ 0", args.tolerance);
    }
    let run = RunDir::new(&args.run);
    let config = run.load_config()?;
    if !run.model().is_file() {
        bail!(
            "{} has no model.bpk: the run has not finished",
            args.run.display()
        );
    }
    let device = crate::backend::BackendKind::default_compiled().device()?;
    let out = args.out.clone().unwrap_or_else(|| args.run.join("inspect"));
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let (layers, first) = with_model!(&config.model, &device, |m| {
        let m = load_module(m, &run.model(), &config.model)?;
        let table = m.layers();
        let params = init::read_parameters(&m);
        let first = table
            .first()
            .and_then(|info| Some((info.clone(), layer_filters(info, &params)?.0)));
        (inspect_model(&m, args.tolerance), first)
    });
    let filter_image = out.join("filters-first-layer.png");
    if let Some((info, filters)) = first {
        let [kh, kw] = info.kernel;
        // One tile per filter: its kh×kw kernel averaged over input channels.
        let tiles: Vec<Vec<f32>> = filters
            .iter()
            .map(|f| {
                let k = kh * kw;
                let ch = f.len() / k;
                (0..k)
                    .map(|t| (0..ch).map(|c| f[c * k + t]).sum::<f32>() / ch as f32)
                    .collect()
            })
            .collect();
        filter_grid_png(&filter_image, &tiles, kh, kw, 8, 12)?;
    }
    let inspection = Inspection {
        run: args.run.clone(),
        init: config.init.spec.clone(),
        tolerance: args.tolerance,
        layers,
        filter_image,
    };
    write_json(&out.join("inspect.json"), &inspection)?;
    Ok(inspection)
}

/// Render as a table.
pub fn render(i: &Inspection) -> String {
    use std::fmt::Write;
    let mut s = format!(
        "{} (init {}), filters equal within {:e} (relative)\n\n",
        i.run.display(),
        i.init,
        i.tolerance
    );
    let _ = writeln!(
        s,
        "{:<9} {:>7} {:>9} {:>9} {:>9} {:>10} {:>10} {:>10}",
        "layer", "filters", "distinct", "mean cos", "max cos", "w mean", "w std", "‖filter‖"
    );
    for l in &i.layers {
        let _ = writeln!(
            s,
            "{:<9} {:>7} {:>9} {:>9.4} {:>9.4} {:>10.3e} {:>10.3e} {:>10.3e}",
            l.layer,
            l.filters,
            l.distinct_filters,
            l.mean_pairwise_cosine,
            l.max_pairwise_cosine,
            l.weight_mean,
            l.weight_std,
            l.mean_filter_norm
        );
    }
    let _ = writeln!(s, "\nfirst-layer filters: {}", i.filter_image.display());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_counts_groups() {
        let f = vec![
            vec![1.0, 2.0],
            vec![1.0, 2.0],
            vec![1.0, 2.000001],
            vec![-1.0, 0.0],
        ];
        assert_eq!(distinct_count(&f, &[0.0; 4], 0.0), 3);
        assert_eq!(distinct_count(&f, &[0.0; 4], 1e-5), 2);
        // Biases count too.
        assert_eq!(distinct_count(&f[..2], &[0.0, 1.0], 1e-5), 2);
        assert!((cosine(&[1.0, 0.0], &[1.0, 1.0]) - 0.5f64.sqrt()).abs() < 1e-12);
    }
}
