//! PyTorch's names and layouts for a model's parameters: the state-dict convention shared by
//! importing and exporting weights.
//!
//! Every conv or linear layer `L` of the layer table has the state-dict keys `L.weight` and
//! `L.bias`, its module path as PyTorch would name an attribute of the same name: `conv1.weight`
//! … `fc2.bias` for [`RefCnn`](crate::RefCnn), `convs.0.weight` … `head.bias` for
//! [`PlainCnn`](crate::PlainCnn) (an `nn.ModuleList` called `convs` and an `nn.Linear` called
//! `head`). Conv weights are `[out, in, kh, kw]` in both frameworks and biases `[out]`; a linear
//! weight is `[out, in]` in PyTorch and `[in, out]` in Burn, so it is transposed on the way in
//! and on the way out.
//!
//! [`Rename`] rules adapt other naming (`module.conv1.weight`, `features.0.weight`) to the
//! convention; [`match_state_dict`] pairs a file's tensors with the model's parameters and
//! reports every missing, unexpected and mis-shaped tensor at once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::{LayerInfo, LayerKind};

/// Errors relating a model's parameters to a state dict.
#[derive(Debug, thiserror::Error)]
pub enum StateDictError {
    /// A parameter outside the conv and linear layers of the table (a normalization's, say),
    /// for which there is no PyTorch convention here.
    #[error(
        "parameter {path} belongs to no conv or linear layer of the model's table ({layers}); \
         only those have a PyTorch name here"
    )]
    NoConvention {
        /// The parameter.
        path: String,
        /// The layers of the table.
        layers: String,
    },
    /// A `--rename` rule that does not read `FROM=TO`.
    #[error(
        "rename rule '{0}' is invalid: expected FROM=TO with a non-empty FROM (e.g. module= or features.0=conv1)"
    )]
    InvalidRename(String),
    /// A rename rule that applies to no key of the file (a typo, most likely).
    #[error("rename rule {rule} matches no tensor of the file; its tensors are: {keys}")]
    UnusedRename {
        /// The rule.
        rule: String,
        /// The file's keys.
        keys: String,
    },
    /// A rename rule that turns a whole key into an empty name.
    #[error("rename rule {rule} turns the key {key} into an empty name")]
    EmptyName {
        /// The rule.
        rule: String,
        /// The key.
        key: String,
    },
    /// Two keys of the file that the rename rules map to the same name.
    #[error("tensors {first} and {second} are both renamed to {name}")]
    Collision {
        /// One key, as in the file.
        first: String,
        /// The other.
        second: String,
        /// The name both became.
        name: String,
    },
    /// The file's tensors are not the model's parameters.
    #[error("{0}")]
    Mismatch(Mismatch),
}

/// One parameter as a PyTorch state dict holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorchParam {
    /// Its key in the state dict, e.g. `fc1.weight`; also the Burn parameter path.
    pub key: String,
    /// Its shape in PyTorch's layout.
    pub shape: Vec<usize>,
    /// Whether the layouts differ by a transposition (a linear weight: PyTorch `[out, in]`, Burn
    /// `[in, out]`).
    pub transposed: bool,
}

impl TorchParam {
    /// Values in PyTorch's layout (row-major) turned into Burn's.
    pub fn to_burn(&self, values: Vec<f32>) -> Vec<f32> {
        match (self.transposed, self.shape.as_slice()) {
            (true, &[out, inp]) => transpose(&values, out, inp),
            _ => values,
        }
    }

    /// Values in Burn's layout (row-major) turned into PyTorch's.
    pub fn to_torch(&self, values: Vec<f32>) -> Vec<f32> {
        match (self.transposed, self.shape.as_slice()) {
            (true, &[out, inp]) => transpose(&values, inp, out),
            _ => values,
        }
    }
}

/// The row-major `[cols, rows]` transpose of a row-major `[rows, cols]` matrix.
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    debug_assert_eq!(values.len(), rows * cols);
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

/// The state dict of a model: one entry per parameter, in the model's order. `params` are the
/// model's parameter paths with their shapes as Burn stores them; `table` is its layer table.
/// A parameter of no conv or linear layer of the table is an error.
pub fn state_dict_layout(
    table: &[LayerInfo],
    params: &[(String, Vec<usize>)],
) -> Result<Vec<TorchParam>, StateDictError> {
    params
        .iter()
        .map(|(path, shape)| {
            let layer = table.iter().find(|l| {
                path.strip_prefix(l.name.as_str())
                    .is_some_and(|rest| rest == ".weight" || rest == ".bias")
            });
            let Some(layer) = layer else {
                return Err(StateDictError::NoConvention {
                    path: path.clone(),
                    layers: table
                        .iter()
                        .map(|l| l.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            };
            let transposed =
                layer.kind == LayerKind::Linear && path.ends_with(".weight") && shape.len() == 2;
            let shape = if transposed {
                vec![shape[1], shape[0]]
            } else {
                shape.clone()
            };
            Ok(TorchParam {
                key: path.clone(),
                shape,
                transposed,
            })
        })
        .collect()
}

/// A rule renaming a file's keys: `FROM=TO`. `FROM` matches a whole key, or its leading
/// dot-separated components: `features.0=conv1` renames `features.0.weight` to `conv1.weight`,
/// and `module=` (empty `TO`) strips a leading `module.` component. It never matches inside a
/// component: `conv=x` leaves `conv1.weight` alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename {
    /// What to match: a whole key or its leading components.
    pub from: String,
    /// What replaces it (empty: the matched components are removed).
    pub to: String,
}

impl std::str::FromStr for Rename {
    type Err = StateDictError;

    fn from_str(s: &str) -> Result<Self, StateDictError> {
        match s.split_once('=') {
            Some((from, to))
                if !from.is_empty()
                    && !from.ends_with('.')
                    && !to.ends_with('.')
                    && !to.contains('=') =>
            {
                Ok(Rename {
                    from: from.to_string(),
                    to: to.to_string(),
                })
            }
            _ => Err(StateDictError::InvalidRename(s.to_string())),
        }
    }
}

impl fmt::Display for Rename {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.from, self.to)
    }
}

impl Rename {
    /// `key` renamed by this rule, or `None` if the rule does not match it.
    pub fn apply(&self, key: &str) -> Option<String> {
        if key == self.from {
            return Some(self.to.clone());
        }
        let rest = key.strip_prefix(self.from.as_str())?.strip_prefix('.')?;
        Some(if self.to.is_empty() {
            rest.to_string()
        } else {
            format!("{}.{rest}", self.to)
        })
    }
}

/// Each of `keys` renamed by the first of `rules` that matches it (unchanged if none does).
/// A rule that matches no key, a key renamed to nothing, and two keys renamed to the same name
/// are errors.
pub fn rename_keys(keys: &[String], rules: &[Rename]) -> Result<Vec<String>, StateDictError> {
    let mut used = vec![false; rules.len()];
    let mut renamed = Vec::with_capacity(keys.len());
    for key in keys {
        let hit = rules
            .iter()
            .enumerate()
            .find_map(|(i, r)| r.apply(key).map(|name| (i, name)));
        let name = match hit {
            Some((i, name)) => {
                used[i] = true;
                if name.is_empty() {
                    return Err(StateDictError::EmptyName {
                        rule: rules[i].to_string(),
                        key: key.clone(),
                    });
                }
                name
            }
            None => key.clone(),
        };
        renamed.push(name);
    }
    if let Some(i) = used.iter().position(|u| !u) {
        return Err(StateDictError::UnusedRename {
            rule: rules[i].to_string(),
            keys: keys.join(", "),
        });
    }
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (key, name) in keys.iter().zip(&renamed) {
        if let Some(first) = seen.insert(name, key) {
            return Err(StateDictError::Collision {
                first: first.to_string(),
                second: key.clone(),
                name: name.clone(),
            });
        }
    }
    Ok(renamed)
}

/// How a file's tensors differ from a model's parameters: everything missing, unexpected or
/// mis-shaped, with both lists of names and shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Parameters the file lacks (PyTorch key and shape).
    pub missing: Vec<(String, Vec<usize>)>,
    /// Tensors of the file the model has no parameter for.
    pub unexpected: Vec<(String, Vec<usize>)>,
    /// Tensors of the wrong shape: key, shape in the file, shape expected.
    pub misshaped: Vec<(String, Vec<usize>, Vec<usize>)>,
    /// Every expected key and shape, in the model's order.
    pub expected: Vec<(String, Vec<usize>)>,
    /// Every tensor of the file, with its (renamed) key and shape.
    pub found: Vec<(String, Vec<usize>)>,
}

fn shape_str(shape: &[usize]) -> String {
    format!(
        "[{}]",
        shape
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn list(entries: &[(String, Vec<usize>)]) -> String {
    if entries.is_empty() {
        return "(none)".to_string();
    }
    entries
        .iter()
        .map(|(k, s)| format!("{k} {}", shape_str(s)))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut problems = Vec::new();
        if !self.missing.is_empty() {
            problems.push(format!("missing {}", list(&self.missing)));
        }
        if !self.unexpected.is_empty() {
            problems.push(format!("unexpected {}", list(&self.unexpected)));
        }
        for (key, got, want) in &self.misshaped {
            let mut p = format!(
                "{key} has shape {}, expected {}",
                shape_str(got),
                shape_str(want)
            );
            if got.len() == 2 && want.len() == 2 && got[0] == want[1] && got[1] == want[0] {
                p.push_str(" (a linear weight in Burn's [in, out] layout? PyTorch's is [out, in])");
            }
            problems.push(p);
        }
        write!(
            f,
            "{}\n  expected (PyTorch names and layout): {}\n  found: {}",
            problems.join("; "),
            list(&self.expected),
            list(&self.found)
        )
    }
}

/// For each entry of `layout`, the index in `found` (renamed keys and shapes) of its tensor.
/// Every expected key must be found once with its shape, and nothing else may be there.
pub fn match_state_dict(
    layout: &[TorchParam],
    found: &[(String, Vec<usize>)],
) -> Result<Vec<usize>, StateDictError> {
    let index: BTreeMap<&str, usize> = found
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (k.as_str(), i))
        .collect();
    let expected: BTreeSet<&str> = layout.iter().map(|p| p.key.as_str()).collect();
    let mut mismatch = Mismatch {
        missing: Vec::new(),
        unexpected: found
            .iter()
            .filter(|(k, _)| !expected.contains(k.as_str()))
            .cloned()
            .collect(),
        misshaped: Vec::new(),
        expected: layout
            .iter()
            .map(|p| (p.key.clone(), p.shape.clone()))
            .collect(),
        found: found.to_vec(),
    };
    let mut order = Vec::with_capacity(layout.len());
    for p in layout {
        match index.get(p.key.as_str()) {
            None => mismatch.missing.push((p.key.clone(), p.shape.clone())),
            Some(&i) if found[i].1 != p.shape => {
                mismatch
                    .misshaped
                    .push((p.key.clone(), found[i].1.clone(), p.shape.clone()))
            }
            Some(&i) => order.push(i),
        }
    }
    if mismatch.missing.is_empty()
        && mismatch.unexpected.is_empty()
        && mismatch.misshaped.is_empty()
    {
        Ok(order)
    } else {
        Err(StateDictError::Mismatch(mismatch))
    }
}

#[cfg(test)]
mod tests {
    use burn::module::Module;

    use super::*;
    use crate::test_util::device;
    use crate::{Classifier, PlainCnnConfig, RefCnnConfig};

    fn keys(layout: &[TorchParam]) -> Vec<(&str, Vec<usize>, bool)> {
        layout
            .iter()
            .map(|p| (p.key.as_str(), p.shape.clone(), p.transposed))
            .collect()
    }

    /// The parameters of a model as (path, Burn shape), from its layer table (every layer of
    /// the filterlab models has a weight and a bias).
    fn table_params(table: &[LayerInfo]) -> Vec<(String, Vec<usize>)> {
        table
            .iter()
            .flat_map(|l| {
                [
                    (format!("{}.weight", l.name), l.weight_shape.clone()),
                    (format!("{}.bias", l.name), vec![l.out_channels]),
                ]
            })
            .collect()
    }

    #[test]
    fn the_reference_cnn_has_pytorch_names_and_layout() {
        let m = RefCnnConfig::new().init(&device());
        let table = m.layers();
        let named = table_params(&table);
        // The table's weights and biases are all of the model's parameters.
        let count: usize = named.iter().map(|(_, s)| s.iter().product::<usize>()).sum();
        assert_eq!(count, m.num_params());
        let layout = state_dict_layout(&table, &named).unwrap();
        assert_eq!(
            keys(&layout),
            [
                ("conv1.weight", vec![32, 1, 3, 3], false),
                ("conv1.bias", vec![32], false),
                ("conv2.weight", vec![64, 32, 3, 3], false),
                ("conv2.bias", vec![64], false),
                ("fc1.weight", vec![128, 3136], true),
                ("fc1.bias", vec![128], false),
                ("fc2.weight", vec![10, 128], true),
                ("fc2.bias", vec![10], false),
            ]
        );
    }

    #[test]
    fn the_plain_cnn_is_named_as_its_layer_table() {
        let m = PlainCnnConfig::new()
            .with_depth(3)
            .with_width(4)
            .init(&device());
        let table = m.layers();
        let layout = state_dict_layout(&table, &table_params(&table)).unwrap();
        assert_eq!(
            keys(&layout),
            [
                ("convs.0.weight", vec![4, 1, 3, 3], false),
                ("convs.0.bias", vec![4], false),
                ("convs.1.weight", vec![4, 4, 3, 3], false),
                ("convs.1.bias", vec![4], false),
                ("convs.2.weight", vec![4, 4, 3, 3], false),
                ("convs.2.bias", vec![4], false),
                ("head.weight", vec![10, 4], true),
                ("head.bias", vec![10], false),
            ]
        );
    }

    #[test]
    fn parameters_outside_the_table_have_no_convention() {
        let table = RefCnnConfig::new().init(&device()).layers();
        let mut named = table_params(&table);
        named.push(("bn1.gamma".to_string(), vec![32]));
        let err = state_dict_layout(&table, &named).unwrap_err().to_string();
        assert!(
            err.contains("bn1.gamma") && err.contains("conv1, conv2, fc1, fc2"),
            "{err}"
        );
        // A layer name that is a prefix of another is not confused with it.
        named.pop();
        named.push(("conv1x.weight".to_string(), vec![1]));
        assert!(state_dict_layout(&table, &named).is_err());
    }

    #[test]
    fn linear_weights_are_transposed_both_ways() {
        let p = TorchParam {
            key: "fc.weight".into(),
            shape: vec![2, 3],
            transposed: true,
        };
        // PyTorch [out 2, in 3] row-major.
        let torch = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let burn = p.to_burn(torch.clone());
        // Burn [in 3, out 2]: burn[i][o] = torch[o][i].
        assert_eq!(burn, [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        assert_eq!(p.to_torch(burn), torch);
        let conv = TorchParam {
            key: "c.weight".into(),
            shape: vec![2, 1, 1, 3],
            transposed: false,
        };
        assert_eq!(conv.to_burn(torch.clone()), torch);
        assert_eq!(conv.to_torch(torch.clone()), torch);
    }

    fn rules(specs: &[&str]) -> Vec<Rename> {
        specs.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn renames_match_whole_keys_or_leading_components() {
        let r: Rename = "features.0=conv1".parse().unwrap();
        assert_eq!(
            r.apply("features.0.weight").as_deref(),
            Some("conv1.weight")
        );
        assert_eq!(r.apply("features.0").as_deref(), Some("conv1"));
        assert_eq!(r.apply("features.01.weight"), None);
        assert_eq!(r.apply("x.features.0.weight"), None);
        let strip: Rename = "module=".parse().unwrap();
        assert_eq!(strip.apply("module.fc1.bias").as_deref(), Some("fc1.bias"));
        assert_eq!(strip.apply("modules.fc1.bias"), None);
        let exact: Rename = "w1=fc1.weight".parse().unwrap();
        assert_eq!(exact.apply("w1").as_deref(), Some("fc1.weight"));
        assert_eq!(exact.to_string(), "w1=fc1.weight");
        for bad in ["", "=x", "noequals", "a.=b", "a=b.", "a=b=c"] {
            assert!(bad.parse::<Rename>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_first_matching_rule_applies_and_mistakes_are_errors() {
        let keys = strings(&["module.a.weight", "module.a.bias", "module.c", "b"]);
        let out = rename_keys(&keys, &rules(&["module.a=conv1", "module=", "b=fc2.bias"])).unwrap();
        assert_eq!(out, ["conv1.weight", "conv1.bias", "c", "fc2.bias"]);
        assert_eq!(rename_keys(&keys, &[]).unwrap(), keys);

        let err = rename_keys(&keys, &rules(&["modul="]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("modul=") && err.contains("module.a.weight"),
            "{err}"
        );
        let err = rename_keys(&keys, &rules(&["b="])).unwrap_err().to_string();
        assert!(err.contains("empty name"), "{err}");
        let err = rename_keys(&keys, &rules(&["module.a.weight=b"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("module.a.weight and b"), "{err}");
    }

    fn layout() -> Vec<TorchParam> {
        vec![
            TorchParam {
                key: "fc.weight".into(),
                shape: vec![2, 3],
                transposed: true,
            },
            TorchParam {
                key: "fc.bias".into(),
                shape: vec![2],
                transposed: false,
            },
        ]
    }

    #[test]
    fn tensors_are_matched_in_the_models_order() {
        let found = vec![
            ("fc.bias".to_string(), vec![2]),
            ("fc.weight".to_string(), vec![2, 3]),
        ];
        assert_eq!(match_state_dict(&layout(), &found).unwrap(), [1, 0]);
    }

    #[test]
    fn every_difference_is_reported_with_both_lists() {
        let found = vec![
            ("fc.weight".to_string(), vec![3, 2]),
            ("fc.extra".to_string(), vec![5]),
        ];
        let err = match_state_dict(&layout(), &found).unwrap_err();
        let StateDictError::Mismatch(m) = &err else {
            panic!("{err}")
        };
        assert_eq!(m.missing, [("fc.bias".to_string(), vec![2])]);
        assert_eq!(m.unexpected, [("fc.extra".to_string(), vec![5])]);
        assert_eq!(
            m.misshaped,
            [("fc.weight".to_string(), vec![3, 2], vec![2, 3])]
        );
        let text = err.to_string();
        for part in [
            "missing fc.bias [2]",
            "unexpected fc.extra [5]",
            "fc.weight has shape [3, 2], expected [2, 3]",
            "Burn's [in, out] layout",
            "expected (PyTorch names and layout): fc.weight [2, 3], fc.bias [2]",
            "found: fc.weight [3, 2], fc.extra [5]",
        ] {
            assert!(text.contains(part), "{part} not in: {text}");
        }
        let empty = match_state_dict(&layout(), &[]).unwrap_err().to_string();
        assert!(empty.contains("found: (none)"), "{empty}");
    }
}
