//! Data-parallel training steps: a batch split over workers, each computing its part's
//! gradients single-threaded in a thread pool of its own, then combined in a fixed order, so the
//! result is bit-deterministic whatever the scheduling.

use anyhow::{Context, Result};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor};
use model::Classifier;

/// What one step computed.
pub(crate) struct StepResult {
    /// Mean loss over the batch.
    pub loss: f32,
    /// Correct predictions.
    pub hits: i64,
    /// Gradients of the mean loss, by parameter.
    pub grads: GradientsParams,
}

/// Data-parallel workers and the thread pools they run on.
pub(crate) struct Workers {
    /// Logical workers: parts each batch is split into.
    n: usize,
    /// Pools: one per worker while the threads allow, fewer (shared) otherwise.
    pools: Vec<rayon::ThreadPool>,
}

impl Workers {
    /// `n` workers on the CPU threads of the global pool (`--threads`): one single- or
    /// multi-threaded pool per worker while there are threads for it. With fewer threads than
    /// workers, workers share pools and their parts run in turn, so `--threads` is a true cap; a
    /// part's result does not depend on the pool it runs on, so the bits are the same.
    pub(crate) fn new(n: usize) -> Result<Self> {
        let n = n.max(1);
        let total = rayon::current_num_threads().max(1);
        let count = n.min(total);
        let threads = total / count;
        let pools = (0..count)
            .map(|_| rayon::ThreadPoolBuilder::new().num_threads(threads).build())
            .collect::<std::result::Result<Vec<_>, _>>()
            .context("cannot create the workers' thread pools")?;
        Ok(Workers { n, pools })
    }

    /// Number of workers.
    pub(crate) fn len(&self) -> usize {
        self.n
    }

    /// The pool worker `w` runs on.
    fn pool(&self, w: usize) -> &rayon::ThreadPool {
        &self.pools[w % self.pools.len()]
    }
}

/// The same parameters as new autodiff leaves (same ids), so a worker's graph shares no node
/// with another's.
fn fresh_leaves<M: Module>(model: &M) -> M {
    struct Fresh;
    impl ModuleMapper for Fresh {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let id = param.id;
            let mut p = Param::from_tensor(param.val().detach());
            p.id = id;
            p
        }
    }
    model.clone().map(&mut Fresh)
}

/// Loss, hits and gradients of one part of a batch.
fn part<M: Classifier>(
    model: &M,
    x: Tensor<4>,
    y: Tensor<1, Int>,
    loss_fn: &CrossEntropyLoss,
) -> (f32, i64, GradientsParams) {
    let [n, ..] = x.dims();
    let logits = model.forward(x);
    let loss = loss_fn.forward(logits.clone(), y.clone());
    let value: f32 = loss.clone().into_scalar();
    let hits: i64 = logits
        .argmax(1)
        .reshape([n])
        .equal(y)
        .int()
        .sum()
        .into_scalar();
    let grads = GradientsParams::from_grads(loss.backward(), model);
    (value, hits, grads)
}

/// One step's forward and backward pass, on one worker (the calling thread, global pool) or
/// split over several.
pub(crate) fn step<M: Classifier>(
    model: &M,
    x: Tensor<4>,
    y: Tensor<1, Int>,
    loss_fn: &CrossEntropyLoss,
    workers: &Workers,
) -> StepResult {
    let [n, ..] = x.dims();
    let k = workers.len().min(n).max(1);
    if k == 1 {
        let (loss, hits, grads) = part(model, x, y, loss_fn);
        return StepResult { loss, hits, grads };
    }
    // Contiguous parts, the first ones one image larger when n is not a multiple of k.
    let sizes: Vec<usize> = (0..k).map(|i| n / k + usize::from(i < n % k)).collect();
    let mut start = 0;
    let parts: Vec<(Tensor<4>, Tensor<1, Int>, usize)> = sizes
        .iter()
        .map(|&len| {
            let p = (
                x.clone().narrow(0, start, len),
                y.clone().narrow(0, start, len),
                len,
            );
            start += len;
            p
        })
        .collect();
    let results: Vec<(f32, i64, GradientsParams, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .enumerate()
            .map(|(w, (xp, yp, len))| {
                let pool = workers.pool(w);
                let local = fresh_leaves(model);
                let loss_fn = loss_fn.clone();
                s.spawn(move || {
                    pool.install(move || {
                        let (l, h, g) = part(&local, xp, yp, &loss_fn);
                        (l, h, g, len)
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a training worker panicked"))
            .collect()
    });
    let loss = results.iter().map(|r| r.0 as f64 * r.3 as f64).sum::<f64>() / n as f64;
    let hits = results.iter().map(|r| r.1).sum();
    let weights: Vec<f64> = results.iter().map(|r| r.3 as f64 / n as f64).collect();
    let mut parts: Vec<GradientsParams> = results.into_iter().map(|r| r.2).collect();
    StepResult {
        loss: loss as f32,
        hits,
        grads: combine(model, &mut parts, &weights),
    }
}

/// `Σₖ weightₖ·gradsₖ` for every parameter of `model`, summed in worker order.
fn combine<M: Module>(
    model: &M,
    parts: &mut [GradientsParams],
    weights: &[f64],
) -> GradientsParams {
    struct Combine<'a> {
        parts: &'a mut [GradientsParams],
        weights: &'a [f64],
        out: GradientsParams,
    }
    impl ModuleVisitor for Combine<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let mut acc: Option<Tensor<D>> = None;
            for (g, &w) in self.parts.iter_mut().zip(self.weights) {
                if let Some(t) = g.remove::<D>(param.id) {
                    let t = t.mul_scalar(w);
                    acc = Some(match acc {
                        Some(a) => a.add(t),
                        None => t,
                    });
                }
            }
            if let Some(a) = acc {
                self.out.register(param.id, a);
            }
        }
    }
    let mut c = Combine {
        parts,
        weights,
        out: GradientsParams::new(),
    };
    model.visit(&mut c);
    c.out
}

/// `f(model, i)` for `i` in `0..count`, batch `i` on pool `i mod k` (`k` pools: one per worker
/// while the threads allow), each pool with its own copy of `model`; results in order of `i`,
/// so anything summed from them is summed in a fixed order.
pub(crate) fn map_batches<M: Module, T: Send>(
    workers: &Workers,
    model: &M,
    count: usize,
    f: impl Fn(&M, usize) -> T + Sync,
) -> Vec<T> {
    let k = workers.pools.len();
    let f = &f;
    let mut out: Vec<(usize, T)> = std::thread::scope(|s| {
        let handles: Vec<_> = workers
            .pools
            .iter()
            .enumerate()
            .map(|(w, pool)| {
                let local = model.clone();
                s.spawn(move || {
                    pool.install(move || {
                        (w..count)
                            .step_by(k)
                            .map(|i| (i, f(&local, i)))
                            .collect::<Vec<_>>()
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("an inference worker panicked"))
            .collect()
    });
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, t)| t).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(threads: usize, workers: usize) -> Workers {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| Workers::new(workers))
            .unwrap()
    }

    #[test]
    fn workers_never_use_more_threads_than_given() {
        let w = within(1, 2);
        assert_eq!((w.len(), w.pools.len()), (2, 1));
        assert_eq!(w.pool(1).current_num_threads(), 1);
        let w = within(4, 2);
        assert_eq!((w.len(), w.pools.len()), (2, 2));
        assert!(w.pools.iter().all(|p| p.current_num_threads() == 2));
        let w = within(3, 2);
        let used: usize = w.pools.iter().map(|p| p.current_num_threads()).sum();
        assert_eq!((w.pools.len(), used), (2, 2));
    }
}
