//! `trainer bench`: training and inference throughput of a model (the reference CNN unless
//! `--model`/`--width`/`--depth` say otherwise) on the sample.

use std::time::Instant;

use anyhow::Result;
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::AdamConfig;
use data::{Batches, DataSource, epoch_order};
use model::{Classifier, with_model};
use serde::{Deserialize, Serialize};

use crate::backend::BackendKind;
use crate::cli::{Arch, ModelArgs};
use crate::evaluation::{EVAL_WORKERS, batch_tensors};

/// Options of `trainer bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Timed training steps (after the warm-up).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: u64,
    /// Untimed warm-up steps.
    #[arg(long, default_value_t = 5)]
    pub warmup: u64,
    /// Training batch size.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_size: u64,
    /// Timed inference batches.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub infer_batches: u64,
    /// Inference batch size.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    pub infer_batch_size: u64,
    /// Backend [default: flex].
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,
    /// Data-parallel workers per training step (as `train --workers`) [default: 2 on the CPU
    /// backends, 1 on a GPU].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub workers: Option<u64>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The model measured [default: the reference CNN at width 1].
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Measured throughput.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BenchResult {
    /// Backend measured.
    pub backend: BackendKind,
    /// The model measured, e.g. `ref (width ×1)` or `plain (depth 20, width 16, relu)`.
    #[serde(default)]
    pub model: String,
    /// CPU worker threads.
    pub threads: usize,
    /// Data-parallel workers.
    pub workers: usize,
    /// The device, where the backend has a choice (the GPU adapter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device: Option<String>,
    /// Training batch size.
    pub batch_size: usize,
    /// Timed training steps.
    pub steps: usize,
    /// Training images per second (forward, backward, Adam step).
    pub train_images_per_sec: f64,
    /// Inference images per second.
    pub infer_images_per_sec: f64,
    /// Forward FLOPs per image (multiply-adds count 2).
    pub forward_flops_per_image: f64,
    /// Training GFLOP/s, counting a training step as 3× the forward pass.
    pub train_gflops: f64,
    /// Peak resident memory of the process, MiB (Linux; 0 elsewhere).
    pub peak_rss_mib: f64,
}

/// Peak resident set size of this process in MiB, from `/proc/self/status` (0 if unknown).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// `trainer bench`.
pub(crate) fn run(args: &BenchArgs) -> Result<()> {
    let r = bench(args)?;
    crate::emit(args.json, &r, || render(&r))
}

/// Run the benchmark.
fn bench(args: &BenchArgs) -> Result<BenchResult> {
    let backend = args.backend.unwrap_or_else(BackendKind::default_compiled);
    let device = backend.device()?;
    let ad = device.clone().autodiff();
    let data = DataSource::sample().load()?;
    let spec = args.model.spec(data.train.rows, Arch::Ref)?;
    let init_spec: init::InitSpec = "burn-default".parse()?;
    with_model!(&spec, &ad, |model| {
        let (model, _) = init::apply(model, &init_spec, 0, &|_| None)?;
        measure(args, backend, &device, &data, model, spec.describe())
    })
}

/// [`bench`] of `model` (built on `device`'s autodiff device), described as `what`.
fn measure<M: Classifier>(
    args: &BenchArgs,
    backend: BackendKind,
    device: &burn::tensor::Device,
    data: &data::Dataset,
    mut model: M,
    what: String,
) -> Result<BenchResult> {
    let ad = device.clone().autodiff();
    let norm = data.normalization;
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let loss_fn = CrossEntropyLoss::new(None, &ad);
    let workers = args
        .workers
        .map_or_else(|| backend.default_workers(), |w| w as usize);
    let workers = crate::parallel::Workers::new(workers)?;
    let bs = args.batch_size as usize;
    let (warmup, steps) = (args.warmup as usize, args.steps as usize);
    let mut order = Vec::new();
    for epoch in 0.. {
        if order.len() >= (warmup + steps) * bs {
            break;
        }
        order.extend(epoch_order(data.train.len(), 0, epoch));
    }
    let (mut xb, mut yb) = (Vec::new(), Vec::new());
    let mut t0 = Instant::now();
    // Queued device work (a GPU's) is waited for before the clock starts and stops.
    let sync = || {
        device
            .sync()
            .map_err(|e| anyhow::anyhow!("the {backend} device failed: {e:?}"))
    };
    for (i, idx) in Batches::new(&order, bs).take(warmup + steps).enumerate() {
        if i == warmup {
            sync()?;
            t0 = Instant::now();
        }
        let (x, y) = batch_tensors(&data.train, idx, &norm, &ad, &mut xb, &mut yb);
        let result = crate::parallel::step(&model, x, y, &loss_fn, &workers);
        model = optim.step(1e-3, model, result.grads);
    }
    sync()?;
    let train_rate = (steps * bs) as f64 / t0.elapsed().as_secs_f64();

    let valid = model.valid();
    let ib = args.infer_batch_size as usize;
    let batches = args.infer_batches as usize;
    let test_order: Vec<u32> = (0..data.test.len() as u32)
        .cycle()
        .take(ib * batches)
        .collect();
    let chunks: Vec<&[u32]> = test_order.chunks(ib).collect();
    let infer_workers = crate::parallel::Workers::new(EVAL_WORKERS)?;
    let run = |count: usize| {
        crate::parallel::map_batches(&infer_workers, &valid, count, |m, i| {
            let (mut x, mut y) = (Vec::new(), Vec::new());
            let (images, _) = batch_tensors(&data.test, chunks[i], &norm, device, &mut x, &mut y);
            m.forward(images).into_data()
        })
    };
    run(batches.min(EVAL_WORKERS)); // warm-up
    let t1 = Instant::now();
    run(batches);
    let infer_rate = (ib * batches) as f64 / t1.elapsed().as_secs_f64();
    // Forward FLOPs per image from the layer table (a multiply-add counts 2).
    let flops: f64 = valid.layers().iter().map(prune::layer_flops).sum();
    Ok(BenchResult {
        backend,
        model: what,
        threads: rayon::current_num_threads(),
        workers: workers.len(),
        device: backend.device_description(),
        batch_size: bs,
        steps,
        train_images_per_sec: train_rate,
        infer_images_per_sec: infer_rate,
        forward_flops_per_image: flops,
        train_gflops: train_rate * 3.0 * flops / 1e9,
        peak_rss_mib: peak_rss_mib(),
    })
}

/// Render a result as a small table.
fn render(r: &BenchResult) -> String {
    format!(
        "backend {} · {} threads · {} worker(s) · {} ({:.1} MFLOP forward per image)\n\
         train     {:>8.0} images/s  (batch {}, {} steps, {:.1} GFLOP/s)\n\
         inference {:>8.0} images/s\n\
         peak RSS  {:>8.0} MiB\n",
        r.backend,
        r.threads,
        r.workers,
        r.model,
        r.forward_flops_per_image / 1e6,
        r.train_images_per_sec,
        r.batch_size,
        r.steps,
        r.train_gflops,
        r.infer_images_per_sec,
        r.peak_rss_mib
    )
}
