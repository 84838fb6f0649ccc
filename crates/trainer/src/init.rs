//! `--init`: Burn's built-in initializers, by name.

use anyhow::{Result, bail};
use burn::nn::Initializer;

/// Names accepted by [`parse`], for help and errors.
pub const NAMES: &str = "burn-default, kaiming-uniform, kaiming-normal, xavier-uniform, \
xavier-normal, zeros, ones, constant:V, normal:STD, uniform:A (U(-A, A))";

/// Parse an initializer name. `burn-default` (`None`) keeps each layer type's Burn default
/// (Kaiming-uniform with gain 1/√3, i.e. U(±1/√fan_in), applied to weights and biases alike).
pub fn parse(spec: &str) -> Result<Option<Initializer>> {
    let (name, arg) = match spec.split_once(':') {
        Some((n, a)) => (n, Some(a)),
        None => (spec, None),
    };
    let value = |what: &str| -> Result<f64> {
        let a = arg.ok_or_else(|| anyhow::anyhow!("--init {name} needs a value: {name}:{what}"))?;
        let v: f64 = a
            .parse()
            .map_err(|_| anyhow::anyhow!("--init {spec}: '{a}' is not a number"))?;
        if !v.is_finite() {
            bail!("--init {spec}: the value must be finite");
        }
        Ok(v)
    };
    let no_arg = || -> Result<()> {
        if arg.is_some() {
            bail!("--init {name} takes no value");
        }
        Ok(())
    };
    let gain_relu = std::f64::consts::SQRT_2;
    Ok(Some(match name {
        "burn-default" => {
            no_arg()?;
            return Ok(None);
        }
        "kaiming-uniform" | "he-uniform" => {
            no_arg()?;
            Initializer::KaimingUniform {
                gain: gain_relu,
                fan_out_only: false,
            }
        }
        "kaiming-normal" | "he-normal" | "he" => {
            no_arg()?;
            Initializer::KaimingNormal {
                gain: gain_relu,
                fan_out_only: false,
            }
        }
        "xavier-uniform" => {
            no_arg()?;
            Initializer::XavierUniform { gain: 1.0 }
        }
        "xavier-normal" | "xavier" => {
            no_arg()?;
            Initializer::XavierNormal { gain: 1.0 }
        }
        "zeros" => {
            no_arg()?;
            Initializer::Zeros
        }
        "ones" => {
            no_arg()?;
            Initializer::Ones
        }
        "constant" => Initializer::Constant { value: value("V")? },
        "normal" => {
            let std = value("STD")?;
            if std < 0.0 {
                bail!("--init {spec}: the standard deviation must be ≥ 0");
            }
            Initializer::Normal { mean: 0.0, std }
        }
        "uniform" => {
            let a = value("A")?.abs();
            Initializer::Uniform { min: -a, max: a }
        }
        _ => bail!("unknown --init '{spec}' (expected one of: {NAMES})"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_errors_are_clear() {
        assert!(parse("burn-default").unwrap().is_none());
        assert!(matches!(
            parse("constant:0.5").unwrap(),
            Some(Initializer::Constant { value }) if value == 0.5
        ));
        assert!(parse("normal:0.01").unwrap().is_some());
        for bad in ["bogus", "constant", "normal:x", "zeros:1", "normal:-1"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(
            parse("bogus")
                .unwrap_err()
                .to_string()
                .contains("kaiming-normal")
        );
    }
}
