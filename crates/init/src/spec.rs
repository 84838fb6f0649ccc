//! Which scheme initializes which parameter.

use serde::{Deserialize, Serialize};

use crate::InitError;
use crate::scheme::{ParamKind, Scheme};

/// A default scheme for every weight plus per-parameter overrides.
///
/// Text form: items separated by `;`. A bare scheme sets the default for weights; a
/// `PATTERN=SCHEME` item overrides every parameter whose path matches the glob `PATTERN`
/// (`*` any characters, `?` one), biases included. Later items win. Examples:
/// `he`, `kaiming-normal(relu);fc2.*=xavier-uniform`, `orthogonal;*.bias=constant(0.01)`.
/// Biases not matched by a pattern follow the default scheme's own bias rule (zeros, except
/// `U(±1/√fan_in)` for `pytorch-default` and `burn-default`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InitSpec {
    /// Scheme for weights not matched by an override.
    pub default: Scheme,
    /// `(pattern, scheme)` overrides, in order; the last match wins.
    pub overrides: Vec<(String, Scheme)>,
}

impl InitSpec {
    /// One scheme everywhere.
    pub fn uniform_scheme(default: Scheme) -> Self {
        InitSpec {
            default,
            overrides: Vec::new(),
        }
    }

    /// The scheme for the parameter at `path` of `kind`.
    pub fn scheme_for(&self, path: &str, kind: ParamKind) -> Scheme {
        if let Some((_, s)) = self.overrides.iter().rev().find(|(p, _)| glob(p, path)) {
            return s.clone();
        }
        match kind {
            ParamKind::Bias => self.default.bias_scheme(),
            _ => self.default.clone(),
        }
    }

    /// Check that every pattern matches at least one of `paths`.
    pub fn check_patterns<'a>(
        &self,
        paths: impl Iterator<Item = &'a str> + Clone,
    ) -> Result<(), InitError> {
        for (pattern, _) in &self.overrides {
            if !paths.clone().any(|p| glob(pattern, p)) {
                return Err(InitError::NoMatch {
                    pattern: pattern.clone(),
                    available: paths.clone().collect::<Vec<_>>().join(", "),
                });
            }
        }
        Ok(())
    }

    /// Whether any part of the spec is LSUV.
    pub fn uses_lsuv(&self) -> bool {
        self.default.is_lsuv() || self.overrides.iter().any(|(_, s)| s.is_lsuv())
    }
}

impl std::fmt::Display for InitSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.default)?;
        for (p, s) in &self.overrides {
            write!(f, ";{p}={s}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for InitSpec {
    type Err = InitError;

    fn from_str(text: &str) -> Result<Self, InitError> {
        let mut default = None;
        let mut overrides = Vec::new();
        for item in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            // A `=` before any parenthesis separates a pattern (arguments may contain `=`).
            let eq = item
                .find('=')
                .filter(|&i| item.find('(').is_none_or(|p| i < p));
            match eq {
                Some(i) => {
                    let pattern = item[..i].trim();
                    if pattern.is_empty() {
                        return Err(InitError::Parse {
                            spec: text.into(),
                            why: format!("'{item}' has an empty pattern"),
                        });
                    }
                    overrides.push((pattern.to_string(), item[i + 1..].parse()?));
                }
                None => {
                    if default.replace(item.parse()?).is_some() {
                        return Err(InitError::Parse {
                            spec: text.into(),
                            why: "more than one default scheme (use PATTERN=SCHEME for overrides)"
                                .into(),
                        });
                    }
                }
            }
        }
        Ok(InitSpec {
            default: default.unwrap_or(Scheme::BurnDefault),
            overrides,
        })
    }
}

/// Glob match of the whole `text`: `*` matches any run of characters (dots included), `?` one.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::{FanMode, Nonlinearity};

    #[test]
    fn globbing() {
        assert!(glob("conv*.weight", "conv1.weight"));
        assert!(glob("conv*.weight", "convs.12.weight"));
        assert!(!glob("conv*.weight", "conv1.bias"));
        assert!(glob("fc2.*", "fc2.bias"));
        assert!(glob("*", "anything.at.all"));
        assert!(glob("conv?.bias", "conv2.bias"));
        assert!(!glob("conv?.bias", "conv12.bias"));
    }

    #[test]
    fn specs_parse_and_resolve() {
        let s: InitSpec = "kaiming-normal(relu); fc2.*=xavier-uniform; *.bias=constant(0.1)"
            .parse()
            .unwrap();
        assert_eq!(
            s.scheme_for("conv1.weight", ParamKind::ConvWeight),
            Scheme::KaimingNormal {
                nonlinearity: Some(Nonlinearity::Relu),
                mode: FanMode::FanIn
            }
        );
        assert_eq!(
            s.scheme_for("fc2.weight", ParamKind::LinearWeight),
            Scheme::XavierUniform { gain: 1.0 }
        );
        // Later items win: fc2.bias matches both overrides.
        assert_eq!(
            s.scheme_for("fc2.bias", ParamKind::Bias),
            Scheme::Constant(0.1)
        );
        let plain: InitSpec = "he".parse().unwrap();
        assert_eq!(
            plain.scheme_for("conv1.bias", ParamKind::Bias),
            Scheme::Zeros
        );
        let torch: InitSpec = "pytorch-default".parse().unwrap();
        assert_eq!(
            torch.scheme_for("x.bias", ParamKind::Bias),
            Scheme::PytorchDefault
        );
        // Round trip through the canonical text.
        let again: InitSpec = s.to_string().parse().unwrap();
        assert_eq!(again, s);
        // A `=` inside arguments is not a pattern.
        let lr: InitSpec = "kaiming-normal(leaky-relu=0.2)".parse().unwrap();
        assert!(lr.overrides.is_empty());
    }

    #[test]
    fn bad_specs_are_explained() {
        for bad in [
            "bogus",
            "he;xavier",
            "=he",
            "normal(0)",
            "uniform(1, 0)",
            "he(relu",
        ] {
            assert!(bad.parse::<InitSpec>().is_err(), "{bad}");
        }
        let s: InitSpec = "he;conv9.*=zeros".parse().unwrap();
        let err = s
            .check_patterns(["conv1.weight", "conv1.bias"].into_iter())
            .unwrap_err();
        assert!(err.to_string().contains("conv9.*") && err.to_string().contains("conv1.bias"));
    }
}
