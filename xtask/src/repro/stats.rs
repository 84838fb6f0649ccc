//! Uncertainty: seeded bootstrap 95% intervals of means (over seeds or pairs of seeds), of
//! differences of means, and verdicts that say whether a threshold lies inside an interval.
//!
//! Every resampling draws from a SplitMix64 stream keyed by the study's bootstrap seed and the
//! aggregate's name, so the same outputs give the same intervals, bit for bit, whatever else the
//! study computes or in which order.

use serde::Serialize;

use super::claims::Verdict;

/// The bootstrap seed of every interval of the study (combined with each aggregate's name).
pub const BOOTSTRAP_SEED: u64 = 20_221_201;

/// A SplitMix64 stream (Steele, Lea and Flood 2014).
struct SplitMix(u64);

impl SplitMix {
    fn keyed(key: &str) -> Self {
        // FNV-1a of the key, mixed with the study's seed.
        let h = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        SplitMix(h ^ BOOTSTRAP_SEED.rotate_left(17))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n ≥ 1), by rejection so every index is equally likely.
    fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let v = self.next();
            if v < zone {
                return (v % n) as usize;
            }
        }
    }
}

/// An aggregate with its bootstrap 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    /// The statistic on the data as measured.
    pub value: f64,
    /// 2.5th percentile of the bootstrap distribution.
    pub lo: f64,
    /// 97.5th percentile.
    pub hi: f64,
    /// Values it was computed from (seeds or pairs).
    pub n: usize,
}

impl Estimate {
    /// Not measured.
    pub const MISSING: Estimate = Estimate {
        value: f64::NAN,
        lo: f64::NAN,
        hi: f64::NAN,
        n: 0,
    };

    /// Whether there is a value.
    pub fn is_measured(&self) -> bool {
        self.n > 0 && self.value.is_finite()
    }

    /// `0.812 [0.790, 0.833]` with `digits` decimals, `-` if not measured.
    pub fn show(&self, digits: usize) -> String {
        if !self.is_measured() {
            return "-".into();
        }
        format!(
            "{:.digits$} [{:.digits$}, {:.digits$}]",
            self.value, self.lo, self.hi
        )
    }

    /// The same in percent (`value · 100`).
    pub fn show_pct(&self, digits: usize) -> String {
        self.scaled(100.0).show(digits)
    }

    /// Every number multiplied by `k` (the interval flipped for negative `k`).
    pub fn scaled(&self, k: f64) -> Estimate {
        let (a, b) = (self.lo * k, self.hi * k);
        Estimate {
            value: self.value * k,
            lo: a.min(b),
            hi: a.max(b),
            n: self.n,
        }
    }
}

/// The `q`-quantile (0–1) of sorted values, linearly interpolated.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (i, f) = (pos.floor() as usize, pos.fract());
    if i + 1 < sorted.len() {
        sorted[i] * (1.0 - f) + sorted[i + 1] * f
    } else {
        sorted[i]
    }
}

/// `stat` of `values` with a percentile bootstrap 95% interval from `resamples` resamplings
/// (with replacement) keyed by `key`. Non-finite values are left out; none left: missing.
pub fn bootstrap(
    key: &str,
    values: &[f64],
    resamples: usize,
    stat: impl Fn(&[f64]) -> f64,
) -> Estimate {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return Estimate::MISSING;
    }
    let mut rng = SplitMix::keyed(key);
    let mut buf = vec![0.0; v.len()];
    let mut stats: Vec<f64> = (0..resamples.max(1))
        .map(|_| {
            for b in buf.iter_mut() {
                *b = v[rng.below(v.len())];
            }
            stat(&buf)
        })
        .filter(|s| s.is_finite())
        .collect();
    stats.sort_by(f64::total_cmp);
    let value = stat(&v);
    if stats.is_empty() {
        return Estimate {
            value,
            lo: value,
            hi: value,
            n: v.len(),
        };
    }
    Estimate {
        value,
        lo: quantile(&stats, 0.025),
        hi: quantile(&stats, 0.975),
        n: v.len(),
    }
}

/// The mean of `values`.
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// The sample standard deviation (n − 1) of `values` (0 for one value).
pub fn sample_std(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let m = mean(values);
    (values.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (values.len() - 1) as f64).sqrt()
}

/// The mean of `values` with its bootstrap interval.
pub fn mean_ci(key: &str, values: &[f64], resamples: usize) -> Estimate {
    bootstrap(key, values, resamples, mean)
}

/// `mean(a) − mean(b)` of two independent samples, each resampled on its own.
pub fn diff_ci(key: &str, a: &[f64], b: &[f64], resamples: usize) -> Estimate {
    let a: Vec<f64> = a.iter().copied().filter(|x| x.is_finite()).collect();
    let b: Vec<f64> = b.iter().copied().filter(|x| x.is_finite()).collect();
    if a.is_empty() || b.is_empty() {
        return Estimate::MISSING;
    }
    let mut rng = SplitMix::keyed(key);
    let mut draw = |v: &[f64]| -> f64 {
        (0..v.len()).map(|_| v[rng.below(v.len())]).sum::<f64>() / v.len() as f64
    };
    let mut stats: Vec<f64> = (0..resamples.max(1)).map(|_| draw(&a) - draw(&b)).collect();
    stats.sort_by(f64::total_cmp);
    Estimate {
        value: mean(&a) - mean(&b),
        lo: quantile(&stats, 0.025),
        hi: quantile(&stats, 0.975),
        n: a.len().min(b.len()),
    }
}

/// Which side of a threshold passes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Passes {
    /// At least the threshold.
    AtLeast(f64),
    /// At most the threshold.
    AtMost(f64),
    /// Above the threshold.
    Above(f64),
    /// Below the threshold.
    Below(f64),
}

impl Passes {
    fn ok(self, v: f64) -> bool {
        match self {
            Passes::AtLeast(t) => v >= t,
            Passes::AtMost(t) => v <= t,
            Passes::Above(t) => v > t,
            Passes::Below(t) => v < t,
        }
    }
}

/// Pass if the whole interval passes, fail if none of it does, inconclusive if the threshold
/// lies inside it; not evaluated if nothing was measured.
pub fn judge(e: &Estimate, passes: Passes) -> Verdict {
    if !e.is_measured() || !e.lo.is_finite() || !e.hi.is_finite() {
        return Verdict::Skipped;
    }
    match (passes.ok(e.lo), passes.ok(e.hi)) {
        (true, true) => Verdict::Pass,
        (false, false) => Verdict::Fail,
        _ => Verdict::Inconclusive,
    }
}

/// Several conditions together: any failing fails; else any inconclusive is inconclusive; else
/// any not evaluated is not evaluated; else pass.
pub fn all(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
    let v: Vec<Verdict> = verdicts.into_iter().collect();
    for worst in [Verdict::Fail, Verdict::Inconclusive, Verdict::Skipped] {
        if v.contains(&worst) {
            return worst;
        }
    }
    Verdict::Pass
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_seeded_and_cover_the_mean() {
        let v = [0.40, 0.45, 0.38, 0.50, 0.42];
        let a = mean_ci("x", &v, 2000);
        assert_eq!(a, mean_ci("x", &v, 2000), "same key, same interval");
        // Another key, another resampling (visible with enough distinct values).
        let many: Vec<f64> = (0..40).map(|i| ((i * 37) % 101) as f64 / 101.0).collect();
        assert_ne!(mean_ci("x", &many, 2000), mean_ci("y", &many, 2000));
        assert!((a.value - 0.43).abs() < 1e-12);
        assert!(a.lo < a.value && a.value < a.hi && a.lo >= 0.38 && a.hi <= 0.50);
        assert_eq!(a.n, 5);
        // One value: a point; nothing: missing.
        let one = mean_ci("x", &[0.7, f64::NAN], 100);
        assert_eq!((one.lo, one.value, one.hi, one.n), (0.7, 0.7, 0.7, 1));
        assert!(!mean_ci("x", &[], 100).is_measured());
        let d = diff_ci("d", &[1.0, 1.1, 0.9], &[0.2, 0.3, 0.1], 1000);
        assert!((d.value - 0.8).abs() < 1e-12 && d.lo > 0.5 && d.hi < 1.1);
        let s = bootstrap("s", &[1.0, 2.0, 3.0], 1000, sample_std);
        assert_eq!(s.value, 1.0);
        assert!(s.lo >= 0.0 && s.hi <= 1.2);
    }

    #[test]
    fn verdicts_from_intervals() {
        let e = |value, lo, hi| Estimate {
            value,
            lo,
            hi,
            n: 3,
        };
        assert_eq!(
            judge(&e(0.6, 0.55, 0.7), Passes::AtLeast(0.5)),
            Verdict::Pass
        );
        assert_eq!(
            judge(&e(0.4, 0.3, 0.45), Passes::AtLeast(0.5)),
            Verdict::Fail
        );
        assert_eq!(
            judge(&e(0.5, 0.45, 0.55), Passes::AtLeast(0.5)),
            Verdict::Inconclusive
        );
        assert_eq!(judge(&e(0.1, 0.05, 0.2), Passes::Below(0.3)), Verdict::Pass);
        assert_eq!(
            judge(&Estimate::MISSING, Passes::Below(0.3)),
            Verdict::Skipped
        );
        assert_eq!(
            all([Verdict::Pass, Verdict::Inconclusive]),
            Verdict::Inconclusive
        );
        assert_eq!(all([Verdict::Inconclusive, Verdict::Fail]), Verdict::Fail);
        assert_eq!(all([Verdict::Pass, Verdict::Pass]), Verdict::Pass);
        assert_eq!(e(0.5, 0.4, 0.6).show(2), "0.50 [0.40, 0.60]");
        assert_eq!(e(0.5, 0.4, 0.6).scaled(-1.0).lo, -0.6);
    }
}
