//! Initialization schemes, their gains and fans, and the distributions they resolve to.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::InitError;
use params::ParamRng;

/// Standard deviation of a standard normal truncated to `[-2, 2]`:
/// `√(1 − 4φ(2)/(Φ(2) − Φ(−2)))` = 0.8796256610342398. Keras and JAX divide by it so the
/// truncated draw has the requested standard deviation.
pub const TRUNC2_STD: f64 = 0.879_625_661_034_239_8;

/// A nonlinearity, for its gain (as PyTorch's `torch.nn.init.calculate_gain`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Nonlinearity {
    /// Identity, convolution, linear: gain 1.
    Linear,
    /// Sigmoid: gain 1.
    Sigmoid,
    /// tanh: gain 5/3.
    Tanh,
    /// ReLU: gain √2.
    Relu,
    /// Leaky ReLU with negative slope `a`: gain √(2 / (1 + a²)).
    LeakyRelu(f64),
    /// SELU: gain 3/4.
    Selu,
}

impl Nonlinearity {
    /// The recommended gain (PyTorch's `calculate_gain`).
    pub fn gain(self) -> f64 {
        match self {
            Nonlinearity::Linear | Nonlinearity::Sigmoid => 1.0,
            Nonlinearity::Tanh => 5.0 / 3.0,
            Nonlinearity::Relu => std::f64::consts::SQRT_2,
            Nonlinearity::LeakyRelu(a) => (2.0 / (1.0 + a * a)).sqrt(),
            Nonlinearity::Selu => 0.75,
        }
    }

    /// `E[φ(z)²] / Var(z)` for zero-mean symmetric `z` in the small-signal regime: the factor by
    /// which the nonlinearity scales the second moment (ReLU ½, leaky ReLU (1+a²)/2, identity 1;
    /// tanh and sigmoid near the origin are taken as linear).
    pub fn second_moment_factor(self) -> f64 {
        match self {
            Nonlinearity::Relu => 0.5,
            Nonlinearity::LeakyRelu(a) => (1.0 + a * a) / 2.0,
            Nonlinearity::Selu => 1.0,
            Nonlinearity::Linear | Nonlinearity::Sigmoid | Nonlinearity::Tanh => 1.0,
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "linear" | "identity" | "conv" | "conv2d" => Nonlinearity::Linear,
            "sigmoid" => Nonlinearity::Sigmoid,
            "tanh" => Nonlinearity::Tanh,
            "relu" => Nonlinearity::Relu,
            "leaky-relu" | "leaky_relu" => Nonlinearity::LeakyRelu(0.01),
            "selu" => Nonlinearity::Selu,
            _ => {
                let (name, a) = s.split_once('=')?;
                if matches!(name, "leaky-relu" | "leaky_relu") {
                    Nonlinearity::LeakyRelu(a.parse().ok()?)
                } else {
                    return None;
                }
            }
        })
    }
}

impl fmt::Display for Nonlinearity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Nonlinearity::Linear => f.write_str("linear"),
            Nonlinearity::Sigmoid => f.write_str("sigmoid"),
            Nonlinearity::Tanh => f.write_str("tanh"),
            Nonlinearity::Relu => f.write_str("relu"),
            Nonlinearity::LeakyRelu(a) => write!(f, "leaky-relu={a}"),
            Nonlinearity::Selu => f.write_str("selu"),
        }
    }
}

/// Which fan a variance-scaling scheme divides by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FanMode {
    /// Fan-in: preserves the forward variance.
    FanIn,
    /// Fan-out: preserves the backward (gradient) variance.
    FanOut,
    /// The mean of the two (Glorot's compromise).
    FanAvg,
}

impl fmt::Display for FanMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FanMode::FanIn => "fan-in",
            FanMode::FanOut => "fan-out",
            FanMode::FanAvg => "fan-avg",
        })
    }
}

/// The distribution of a variance-scaling scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Distribution {
    /// Normal.
    Normal,
    /// Normal truncated at ±2σ, standard deviation corrected (Keras, JAX).
    Truncated,
    /// Uniform on `[-√3σ, √3σ]`.
    Uniform,
}

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Distribution::Normal => "normal",
            Distribution::Truncated => "truncated",
            Distribution::Uniform => "uniform",
        })
    }
}

/// An initialization scheme. The formulas use `fan_in`/`fan_out` as computed by
/// [`ParamShape::fans`] and `gain` from [`Nonlinearity::gain`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// All zeros.
    Zeros,
    /// All ones.
    Ones,
    /// Every value `v`.
    Constant(f64),
    /// `U(low, high)`.
    Uniform {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// `N(mean, std²)`.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// Normal truncated at `mean ± 2·std`. With `corrected` (the default; Keras, JAX) the
    /// underlying normal is widened by 1/0.8796 so the result has standard deviation `std`;
    /// without it (TF1, or PyTorch's `trunc_normal_(std=σ, a=-2σ, b=2σ)`) the standard deviation
    /// is 0.8796·std.
    TruncatedNormal {
        /// Mean.
        mean: f64,
        /// Standard deviation (see `corrected`).
        std: f64,
        /// Whether the standard deviation is corrected for the truncation.
        corrected: bool,
    },
    /// LeCun normal, `N(0, 1/fan_in)` (LeCun et al. 1998, "Efficient BackProp"; Keras and JAX
    /// truncate it, use `variance-scaling(1, fan-in, truncated)` for theirs).
    LecunNormal,
    /// LeCun uniform, `U(±√(3/fan_in))`.
    LecunUniform,
    /// Xavier/Glorot normal, `N(0, gain²·2/(fan_in+fan_out))` (Glorot & Bengio 2010).
    XavierNormal {
        /// Gain.
        gain: f64,
    },
    /// Xavier/Glorot uniform, `U(±gain·√(6/(fan_in+fan_out)))` (Glorot & Bengio 2010).
    XavierUniform {
        /// Gain.
        gain: f64,
    },
    /// Kaiming/He normal, `N(0, gain²/fan)` (He et al. 2015). Without a nonlinearity, the
    /// layer's own (from the model's layer table) is used, else ReLU.
    KaimingNormal {
        /// Nonlinearity setting the gain.
        nonlinearity: Option<Nonlinearity>,
        /// Fan-in (forward) or fan-out (backward).
        mode: FanMode,
    },
    /// Kaiming/He uniform, `U(±gain·√(3/fan))` (He et al. 2015).
    KaimingUniform {
        /// Nonlinearity setting the gain.
        nonlinearity: Option<Nonlinearity>,
        /// Fan-in (forward) or fan-out (backward).
        mode: FanMode,
    },
    /// Keras/JAX `VarianceScaling`: variance `scale/fan` with the chosen fan and distribution.
    VarianceScaling {
        /// Variance scale.
        scale: f64,
        /// Which fan.
        mode: FanMode,
        /// Normal, truncated normal (corrected) or uniform.
        distribution: Distribution,
    },
    /// (Semi-)orthogonal: the weight as an `out × (in·kh·kw)` matrix has orthonormal rows (or
    /// columns, whichever is fewer), times `gain` (Saxe et al. 2014): QR of a Gaussian matrix
    /// with the signs of `diag(R)` folded into Q, as PyTorch's `orthogonal_`.
    Orthogonal {
        /// Gain.
        gain: f64,
    },
    /// Delta-orthogonal for convolutions (Xiao et al. 2018): an orthogonal `out × in` matrix
    /// (orthonormal columns; needs `in ≤ out`) at the kernel's centre tap, zeros elsewhere.
    DeltaOrthogonal {
        /// Gain.
        gain: f64,
    },
    /// Identity: for a convolution a Dirac delta (`w[o, o, centre] = 1`, PyTorch's `dirac_`),
    /// for a linear layer the identity matrix (zero-padded if not square).
    Dirac,
    /// What PyTorch's `Conv2d`/`Linear` do: `kaiming_uniform_(a=√5)`, i.e. `U(±1/√fan_in)`, and
    /// biases `U(±1/√fan_in)`. Weight variance `1/(3·fan_in)`.
    PytorchDefault,
    /// What Burn 0.22's `Conv2d`/`Linear` do: `KaimingUniform { gain: 1/√3 }`, i.e.
    /// `U(±1/√fan_in)`, applied to the biases too (with the layer's fan-in). Numerically the same
    /// law as PyTorch's default for these layers.
    BurnDefault,
    /// LSUV (Mishkin & Matas 2016): orthogonal pre-initialization, then, layer by layer on a
    /// batch of real images, the weights are divided by the standard deviation of the layer's
    /// output until its variance is within `tol` of 1 (at most `max_iter` rounds per layer).
    /// Data-dependent: applied by the trainer, which has the data.
    Lsuv {
        /// Tolerance on |variance − 1|.
        tol: f64,
        /// Maximum rescaling rounds per layer.
        max_iter: usize,
    },
    /// Another scheme plus independent `N(0, std²)` noise, to break a symmetric
    /// initialization.
    Noisy {
        /// The scheme.
        base: Box<Scheme>,
        /// Standard deviation of the added noise.
        std: f64,
    },
}

/// What kind of parameter a tensor is, which decides its fans and matrix view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParamKind {
    /// `Conv2d` weight, `[out, in/groups, kh, kw]`.
    ConvWeight,
    /// `Linear` weight in Burn's row layout, `[in, out]`.
    LinearWeight,
    /// A bias (1-D), sized by its layer's output.
    Bias,
    /// Anything else: fans from PyTorch's rule (`dim 1 · receptive`, `dim 0 · receptive`).
    Other,
}

/// A parameter's shape and role, with its layer's fans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamShape {
    /// Kind.
    pub kind: ParamKind,
    /// Shape as stored.
    pub shape: Vec<usize>,
    /// Fan-in of the parameter's layer.
    pub fan_in: usize,
    /// Fan-out of the parameter's layer.
    pub fan_out: usize,
}

impl ParamShape {
    /// Fans of a weight of `kind` and `shape`: conv `fan_in = in/groups·kh·kw`,
    /// `fan_out = out·kh·kw` (PyTorch's choice; Burn divides `fan_out` by groups — equal when
    /// `groups = 1`, as in every filterlab model); linear (Burn's `[in, out]`) `in` and `out`.
    pub fn fans(kind: ParamKind, shape: &[usize]) -> (usize, usize) {
        match (kind, shape.len()) {
            (ParamKind::LinearWeight, 2) => (shape[0], shape[1]),
            (_, 0) => (1, 1),
            (_, 1) => (shape[0], shape[0]),
            _ => {
                let receptive: usize = shape[2..].iter().product();
                (shape[1] * receptive, shape[0] * receptive)
            }
        }
    }

    /// A weight's shape and fans.
    pub fn weight(kind: ParamKind, shape: Vec<usize>) -> Self {
        let (fan_in, fan_out) = Self::fans(kind, &shape);
        ParamShape {
            kind,
            shape,
            fan_in,
            fan_out,
        }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// The weight as a matrix `rows × cols` = `out × (everything else)`.
    fn matrix_dims(&self) -> Option<(usize, usize)> {
        match (self.kind, self.shape.len()) {
            (ParamKind::LinearWeight, 2) => Some((self.shape[1], self.shape[0])),
            (ParamKind::Bias, _) | (_, 0 | 1) => None,
            _ => Some((self.shape[0], self.shape[1..].iter().product())),
        }
    }
}

/// A concrete law: a scheme resolved for one parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Law {
    /// Every value `v`.
    Constant(f64),
    /// `U(low, high)`.
    Uniform {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// `N(mean, std²)`.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// `mean + scale·z` with `z` standard normal restricted to `[-2, 2]`.
    Truncated {
        /// Mean.
        mean: f64,
        /// Scale of the underlying normal.
        scale: f64,
    },
    /// Semi-orthogonal matrix times `gain`.
    Orthogonal {
        /// Gain.
        gain: f64,
    },
    /// Delta-orthogonal convolution kernel times `gain`.
    DeltaOrthogonal {
        /// Gain.
        gain: f64,
    },
    /// Dirac / identity.
    Dirac,
    /// A law plus independent `N(0, noise²)`.
    Noisy {
        /// The law.
        base: Box<Law>,
        /// Noise standard deviation.
        noise: f64,
    },
}

impl Law {
    /// Mean and variance of one element, for element-wise laws.
    pub fn moments(&self) -> Option<(f64, f64)> {
        match self {
            Law::Constant(v) => Some((*v, 0.0)),
            Law::Uniform { low, high } => Some(((low + high) / 2.0, (high - low).powi(2) / 12.0)),
            Law::Normal { mean, std } => Some((*mean, std * std)),
            Law::Truncated { mean, scale } => Some((*mean, (scale * TRUNC2_STD).powi(2))),
            Law::Noisy { base, noise } => base.moments().map(|(m, v)| (m, v + noise * noise)),
            Law::Orthogonal { .. } | Law::DeltaOrthogonal { .. } | Law::Dirac => None,
        }
    }

    /// Draw the values of a parameter of shape `p`, in its storage order.
    pub fn sample(&self, p: &ParamShape, rng: &mut ParamRng) -> Result<Vec<f32>, InitError> {
        let n = p.numel();
        let values: Vec<f64> = match self {
            Law::Constant(v) => vec![*v; n],
            Law::Uniform { low, high } => (0..n).map(|_| rng.uniform(*low, *high)).collect(),
            Law::Normal { mean, std } => (0..n).map(|_| mean + std * rng.normal()).collect(),
            Law::Truncated { mean, scale } => (0..n)
                .map(|_| mean + scale * rng.truncated_normal(-2.0, 2.0))
                .collect(),
            Law::Orthogonal { gain } => {
                let (rows, cols) = p.matrix_dims().ok_or_else(|| InitError::NeedsMatrix {
                    scheme: "orthogonal".into(),
                    shape: p.shape.clone(),
                })?;
                let w = crate::ortho::semi_orthogonal(rows, cols, rng);
                from_matrix(p, &w, rows, cols, *gain)
            }
            Law::DeltaOrthogonal { gain } => crate::ortho::delta_orthogonal(p, *gain, rng)?,
            Law::Dirac => dirac(p)?,
            Law::Noisy { base, noise } => {
                let mut v: Vec<f64> = base.sample(p, rng)?.into_iter().map(f64::from).collect();
                for x in &mut v {
                    *x += noise * rng.normal();
                }
                v
            }
        };
        Ok(values.into_iter().map(|v| v as f32).collect())
    }
}

/// Lay an `rows × cols` (row-major, `out × rest`) matrix out in the parameter's storage order.
pub(crate) fn from_matrix(
    p: &ParamShape,
    w: &[f64],
    rows: usize,
    cols: usize,
    gain: f64,
) -> Vec<f64> {
    match p.kind {
        // Burn stores a linear weight transposed: [in, out].
        ParamKind::LinearWeight => {
            let mut out = vec![0.0; rows * cols];
            for r in 0..rows {
                for c in 0..cols {
                    out[c * rows + r] = gain * w[r * cols + c];
                }
            }
            out
        }
        _ => w.iter().map(|v| gain * v).collect(),
    }
}

fn dirac(p: &ParamShape) -> Result<Vec<f64>, InitError> {
    let mut v = vec![0.0; p.numel()];
    match (p.kind, p.shape.as_slice()) {
        (ParamKind::ConvWeight, &[out, inp, kh, kw]) => {
            for o in 0..out.min(inp) {
                v[((o * inp + o) * kh + kh / 2) * kw + kw / 2] = 1.0;
            }
        }
        (ParamKind::LinearWeight, &[inp, out]) => {
            for i in 0..inp.min(out) {
                v[i * out + i] = 1.0;
            }
        }
        _ => {
            return Err(InitError::NeedsMatrix {
                scheme: "dirac".into(),
                shape: p.shape.clone(),
            });
        }
    }
    Ok(v)
}

impl Scheme {
    /// The law for a weight of shape `p` whose layer is followed by `activation` (if known).
    pub fn resolve(
        &self,
        p: &ParamShape,
        activation: Option<Nonlinearity>,
    ) -> Result<Law, InitError> {
        let (fi, fo) = (p.fan_in as f64, p.fan_out as f64);
        let fan = |mode: FanMode| match mode {
            FanMode::FanIn => fi,
            FanMode::FanOut => fo,
            FanMode::FanAvg => (fi + fo) / 2.0,
        };
        let normal = |std: f64| Law::Normal { mean: 0.0, std };
        let symmetric = |a: f64| Law::Uniform { low: -a, high: a };
        let gain_of =
            |nl: &Option<Nonlinearity>| nl.or(activation).unwrap_or(Nonlinearity::Relu).gain();
        Ok(match self {
            Scheme::Zeros => Law::Constant(0.0),
            Scheme::Ones => Law::Constant(1.0),
            Scheme::Constant(v) => Law::Constant(*v),
            Scheme::Uniform { low, high } => Law::Uniform {
                low: *low,
                high: *high,
            },
            Scheme::Normal { mean, std } => Law::Normal {
                mean: *mean,
                std: *std,
            },
            Scheme::TruncatedNormal {
                mean,
                std,
                corrected,
            } => Law::Truncated {
                mean: *mean,
                scale: if *corrected { std / TRUNC2_STD } else { *std },
            },
            Scheme::LecunNormal => normal((1.0 / fi).sqrt()),
            Scheme::LecunUniform => symmetric((3.0 / fi).sqrt()),
            Scheme::XavierNormal { gain } => normal(gain * (2.0 / (fi + fo)).sqrt()),
            Scheme::XavierUniform { gain } => symmetric(gain * (6.0 / (fi + fo)).sqrt()),
            Scheme::KaimingNormal { nonlinearity, mode } => {
                normal(gain_of(nonlinearity) / fan(*mode).sqrt())
            }
            Scheme::KaimingUniform { nonlinearity, mode } => {
                symmetric(gain_of(nonlinearity) * (3.0 / fan(*mode)).sqrt())
            }
            Scheme::VarianceScaling {
                scale,
                mode,
                distribution,
            } => {
                let std = (scale / fan(*mode)).sqrt();
                match distribution {
                    Distribution::Normal => normal(std),
                    Distribution::Truncated => Law::Truncated {
                        mean: 0.0,
                        scale: std / TRUNC2_STD,
                    },
                    Distribution::Uniform => symmetric(3.0f64.sqrt() * std),
                }
            }
            Scheme::Orthogonal { gain } => Law::Orthogonal { gain: *gain },
            Scheme::DeltaOrthogonal { gain } => Law::DeltaOrthogonal { gain: *gain },
            Scheme::Dirac => Law::Dirac,
            Scheme::PytorchDefault | Scheme::BurnDefault => symmetric(1.0 / fi.sqrt()),
            // The pre-initialization; the data-dependent rescaling happens afterwards.
            Scheme::Lsuv { .. } => Law::Orthogonal { gain: 1.0 },
            Scheme::Noisy { base, std } => Law::Noisy {
                base: Box::new(base.resolve(p, activation)?),
                noise: *std,
            },
        })
    }

    /// The scheme's own rule for the biases of the layers it initializes: `U(±1/√fan_in)` for
    /// the framework defaults (what PyTorch and Burn do), zeros for every other scheme.
    pub fn bias_scheme(&self) -> Scheme {
        match self {
            Scheme::PytorchDefault | Scheme::BurnDefault => self.clone(),
            Scheme::Noisy { base, .. } => base.bias_scheme(),
            _ => Scheme::Zeros,
        }
    }

    /// Whether this is (or wraps) LSUV.
    pub fn is_lsuv(&self) -> bool {
        matches!(self, Scheme::Lsuv { .. })
    }

    /// Per-layer variance multiplier of the pre-activations in a deep stack of equal-width
    /// layers followed by `nonlinearity`: `fan_in · Var(w) · E[φ(z)²]/Var(z)` (with
    /// `fan_in = fan_out`). 1 preserves the signal; below 1 it shrinks geometrically with depth.
    /// He: 1 for ReLU; Xavier ½; PyTorch's default 1/6; `N(0, σ²)`: `fan_in·σ²/2`.
    pub fn variance_multiplier(&self, fan_in: usize, nonlinearity: Nonlinearity) -> Option<f64> {
        let p = ParamShape {
            kind: ParamKind::ConvWeight,
            shape: vec![fan_in, fan_in, 1, 1],
            fan_in,
            fan_out: fan_in,
        };
        let var = match self.resolve(&p, Some(nonlinearity)).ok()? {
            Law::Orthogonal { gain } | Law::DeltaOrthogonal { gain } => gain * gain / fan_in as f64,
            Law::Dirac => 1.0 / fan_in as f64,
            law => {
                let (m, v) = law.moments()?;
                m * m + v
            }
        };
        Some(fan_in as f64 * var * nonlinearity.second_moment_factor())
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nl = |n: &Option<Nonlinearity>| n.map_or(String::new(), |n| format!("{n}, "));
        match self {
            Scheme::Zeros => write!(f, "zeros"),
            Scheme::Ones => write!(f, "ones"),
            Scheme::Constant(v) => write!(f, "constant({v})"),
            Scheme::Uniform { low, high } => write!(f, "uniform({low}, {high})"),
            Scheme::Normal { mean, std } => write!(f, "normal({mean}, {std})"),
            Scheme::TruncatedNormal {
                mean,
                std,
                corrected,
            } => {
                if *corrected {
                    write!(f, "truncated-normal({mean}, {std})")
                } else {
                    write!(f, "truncated-normal({mean}, {std}, uncorrected)")
                }
            }
            Scheme::LecunNormal => write!(f, "lecun-normal"),
            Scheme::LecunUniform => write!(f, "lecun-uniform"),
            Scheme::XavierNormal { gain } => write!(f, "xavier-normal({gain})"),
            Scheme::XavierUniform { gain } => write!(f, "xavier-uniform({gain})"),
            Scheme::KaimingNormal { nonlinearity, mode } => {
                write!(f, "kaiming-normal({}{mode})", nl(nonlinearity))
            }
            Scheme::KaimingUniform { nonlinearity, mode } => {
                write!(f, "kaiming-uniform({}{mode})", nl(nonlinearity))
            }
            Scheme::VarianceScaling {
                scale,
                mode,
                distribution,
            } => write!(f, "variance-scaling({scale}, {mode}, {distribution})"),
            Scheme::Orthogonal { gain } => write!(f, "orthogonal({gain})"),
            Scheme::DeltaOrthogonal { gain } => write!(f, "delta-orthogonal({gain})"),
            Scheme::Dirac => write!(f, "dirac"),
            Scheme::PytorchDefault => write!(f, "pytorch-default"),
            Scheme::BurnDefault => write!(f, "burn-default"),
            Scheme::Lsuv { tol, max_iter } => write!(f, "lsuv({tol}, {max_iter})"),
            Scheme::Noisy { base, std } => write!(f, "{base}+noise({std})"),
        }
    }
}

impl fmt::Display for Law {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Law::Constant(v) => write!(f, "{v}"),
            Law::Uniform { low, high } => write!(f, "U({low:.4e}, {high:.4e})"),
            Law::Normal { mean, std } => write!(f, "N({mean}, {std:.4e}²)"),
            Law::Truncated { mean, scale } => write!(f, "N({mean}, {scale:.4e}²) cut at ±2σ"),
            Law::Orthogonal { gain } => write!(f, "orthogonal × {gain}"),
            Law::DeltaOrthogonal { gain } => write!(f, "delta-orthogonal × {gain}"),
            Law::Dirac => write!(f, "dirac"),
            Law::Noisy { base, noise } => write!(f, "{base} + N(0, {noise:.4e}²)"),
        }
    }
}

/// Names accepted by [`std::str::FromStr`] for [`Scheme`], for help texts.
pub const SCHEME_HELP: &str = "\
zeros | ones | constant(V) | uniform(A, B) | normal(MEAN, STD) | \
truncated-normal(MEAN, STD[, uncorrected]) | lecun-normal | lecun-uniform | \
xavier-normal[(GAIN)] | xavier-uniform[(GAIN)] (alias glorot-*, xavier) | \
kaiming-normal[(NONLIN, fan-in|fan-out)] | kaiming-uniform[(…)] (alias he-*, he) | \
variance-scaling(SCALE, fan-in|fan-out|fan-avg, normal|truncated|uniform) | \
orthogonal[(GAIN)] | delta-orthogonal[(GAIN)] | dirac | pytorch-default | burn-default | \
lsuv[(TOL, MAX_ITER)]; any of them +noise(STD). \
NONLIN: linear, sigmoid, tanh, relu, leaky-relu[=A], selu";

impl std::str::FromStr for Scheme {
    type Err = InitError;

    fn from_str(text: &str) -> Result<Self, InitError> {
        let text = text.trim();
        let bad = |why: &str| InitError::Parse {
            spec: text.to_string(),
            why: why.to_string(),
        };
        // `base+noise(std)`
        if let Some((base, noise)) = text.rsplit_once("+noise(") {
            let std = noise
                .strip_suffix(')')
                .and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| bad("noise(STD) needs a standard deviation ≥ 0"))?;
            return Ok(Scheme::Noisy {
                base: Box::new(base.parse()?),
                std,
            });
        }
        let (name, args): (&str, Vec<&str>) = match text.split_once('(') {
            Some((name, rest)) => {
                let inner = rest
                    .strip_suffix(')')
                    .ok_or_else(|| bad("missing closing parenthesis"))?;
                let args = inner
                    .split(',')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .collect();
                (name.trim(), args)
            }
            None => (text, Vec::new()),
        };
        let num = |i: usize, what: &str| -> Result<f64, InitError> {
            args.get(i)
                .and_then(|a| a.parse::<f64>().ok())
                .filter(|v| v.is_finite())
                .ok_or_else(|| bad(&format!("expected a number for {what}")))
        };
        let count = |lo: usize, hi: usize| -> Result<(), InitError> {
            if args.len() < lo || args.len() > hi {
                Err(bad(&format!(
                    "takes {} argument(s), got {}",
                    if lo == hi {
                        lo.to_string()
                    } else {
                        format!("{lo} to {hi}")
                    },
                    args.len()
                )))
            } else {
                Ok(())
            }
        };
        let gain = |default: f64| -> Result<f64, InitError> {
            count(0, 1)?;
            if args.is_empty() {
                Ok(default)
            } else {
                num(0, "the gain")
            }
        };
        let kaiming = || -> Result<(Option<Nonlinearity>, FanMode), InitError> {
            let (mut nl, mut mode) = (None, FanMode::FanIn);
            for a in &args {
                match *a {
                    "fan-in" | "fan_in" => mode = FanMode::FanIn,
                    "fan-out" | "fan_out" => mode = FanMode::FanOut,
                    other => {
                        nl = Some(Nonlinearity::parse(other).ok_or_else(|| {
                            bad(&format!("unknown nonlinearity or mode '{other}'"))
                        })?)
                    }
                }
            }
            Ok((nl, mode))
        };
        let positive = |v: f64, what: &str| {
            if v >= 0.0 {
                Ok(v)
            } else {
                Err(bad(&format!("{what} must be ≥ 0")))
            }
        };
        Ok(match name {
            "zeros" => {
                count(0, 0)?;
                Scheme::Zeros
            }
            "ones" => {
                count(0, 0)?;
                Scheme::Ones
            }
            "constant" => {
                count(1, 1)?;
                Scheme::Constant(num(0, "the value")?)
            }
            "uniform" => {
                count(2, 2)?;
                let (low, high) = (num(0, "the lower bound")?, num(1, "the upper bound")?);
                if low > high {
                    return Err(bad("the lower bound exceeds the upper bound"));
                }
                Scheme::Uniform { low, high }
            }
            "normal" => {
                count(2, 2)?;
                Scheme::Normal {
                    mean: num(0, "the mean")?,
                    std: positive(num(1, "the standard deviation")?, "the standard deviation")?,
                }
            }
            "truncated-normal" | "trunc-normal" => {
                count(2, 3)?;
                let corrected = match args.get(2) {
                    None | Some(&"corrected") => true,
                    Some(&"uncorrected") => false,
                    Some(other) => {
                        return Err(bad(&format!(
                            "third argument '{other}' must be corrected or uncorrected"
                        )));
                    }
                };
                Scheme::TruncatedNormal {
                    mean: num(0, "the mean")?,
                    std: positive(num(1, "the standard deviation")?, "the standard deviation")?,
                    corrected,
                }
            }
            "lecun-normal" => {
                count(0, 0)?;
                Scheme::LecunNormal
            }
            "lecun-uniform" => {
                count(0, 0)?;
                Scheme::LecunUniform
            }
            "xavier-normal" | "glorot-normal" | "xavier" | "glorot" => {
                Scheme::XavierNormal { gain: gain(1.0)? }
            }
            "xavier-uniform" | "glorot-uniform" => Scheme::XavierUniform { gain: gain(1.0)? },
            "kaiming-normal" | "he-normal" | "he" | "kaiming" => {
                count(0, 2)?;
                let (nonlinearity, mode) = kaiming()?;
                Scheme::KaimingNormal { nonlinearity, mode }
            }
            "kaiming-uniform" | "he-uniform" => {
                count(0, 2)?;
                let (nonlinearity, mode) = kaiming()?;
                Scheme::KaimingUniform { nonlinearity, mode }
            }
            "variance-scaling" => {
                count(3, 3)?;
                let mode = match args[1] {
                    "fan-in" | "fan_in" => FanMode::FanIn,
                    "fan-out" | "fan_out" => FanMode::FanOut,
                    "fan-avg" | "fan_avg" => FanMode::FanAvg,
                    other => return Err(bad(&format!("unknown mode '{other}'"))),
                };
                let distribution = match args[2] {
                    "normal" => Distribution::Normal,
                    "truncated" | "truncated-normal" | "truncated_normal" => {
                        Distribution::Truncated
                    }
                    "uniform" => Distribution::Uniform,
                    other => return Err(bad(&format!("unknown distribution '{other}'"))),
                };
                Scheme::VarianceScaling {
                    scale: positive(num(0, "the scale")?, "the scale")?,
                    mode,
                    distribution,
                }
            }
            "orthogonal" => Scheme::Orthogonal { gain: gain(1.0)? },
            "delta-orthogonal" => Scheme::DeltaOrthogonal { gain: gain(1.0)? },
            "dirac" | "identity" => {
                count(0, 0)?;
                Scheme::Dirac
            }
            "pytorch-default" | "pytorch" | "torch-default" => {
                count(0, 0)?;
                Scheme::PytorchDefault
            }
            "burn-default" | "burn" => {
                count(0, 0)?;
                Scheme::BurnDefault
            }
            "lsuv" => {
                count(0, 2)?;
                let tol = if args.is_empty() {
                    0.1
                } else {
                    num(0, "the tolerance")?
                };
                let max_iter = if args.len() < 2 {
                    10.0
                } else {
                    num(1, "the iterations")?
                };
                if tol <= 0.0 || max_iter < 1.0 || max_iter.fract() != 0.0 {
                    return Err(bad("lsuv(TOL, MAX_ITER) needs TOL > 0 and MAX_ITER ≥ 1"));
                }
                Scheme::Lsuv {
                    tol,
                    max_iter: max_iter as usize,
                }
            }
            _ => {
                return Err(InitError::UnknownScheme {
                    name: name.to_string(),
                });
            }
        })
    }
}
