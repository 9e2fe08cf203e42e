//! The Keras mapping of the layers described in the IR (`seqmodel_ir::LayerOp`), with no
//! code of any one layer: their weights are the IR's [`WeightVar`]s in Keras's order, and
//! (for `seqc import`) their `.seq` arguments are the config's keys that the compiler's
//! catalogue lists for the class, converted by the argument's kind. A config key the
//! catalogue does not know is an [`ImportError::Unsupported`] unless it only configures
//! training-time details (initializers, regularizers, constraints) or is off.

#[cfg(feature = "import")]
use crate::error::{ImportError, Result};
use seqmodel_runtime::ir::{WeightVar, keras_weight_vars};
use serde_json::Value as J;

/// The weight variables present in a described layer's config, each with its path inside
/// the layer's group of the weights file (`vars/N`, or `query_dense/vars/N` for a variable
/// of a sub-layer, numbered within it); `None` when the class is not a described layer.
pub(crate) fn weights(class: &str, c: &J) -> Option<Vec<(&'static WeightVar, String)>> {
    let vars = keras_weight_vars(class)?;
    let exists = |when: &str| match when.split_once('=') {
        Some((key, value)) => c[key].as_str() == Some(value),
        None => c[when].as_bool().unwrap_or(true),
    };
    let mut numbered: Vec<(&str, usize)> = Vec::new();
    let mut out = Vec::new();
    for v in vars.iter().filter(|v| v.when.is_none_or(exists)) {
        let group = v.name.rsplit_once('/').map_or("", |(g, _)| g);
        let n = match numbered.iter_mut().find(|(g, _)| *g == group) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                numbered.push((group, 0));
                0
            }
        };
        let path = if group.is_empty() { format!("vars/{n}") } else { format!("{group}/vars/{n}") };
        out.push((v, path));
    }
    Some(out)
}

/// Config keys that never change the forward computation of a described layer.
#[cfg(feature = "import")]
fn harmless(key: &str) -> bool {
    ["name", "trainable", "dtype", "seed", "quantization_config"].contains(&key)
        || ["_initializer", "_regularizer", "_constraint"].iter().any(|s| key.ends_with(s))
}

/// The `.seq` arguments of a described layer, from its config.
#[cfg(feature = "import")]
pub(crate) fn args(
    class: &str,
    c: &J,
    layer: &str,
    activation: impl Fn(&J) -> Result<String>,
) -> Result<Vec<String>> {
    use seqmodel_compiler::layers::ArgKind;
    let unsupported = |what: String| ImportError::Unsupported { layer: layer.into(), what };
    let spec = seqmodel_compiler::layers::class(class)
        .ok_or_else(|| unsupported(format!("the Keras layer class `{class}`")))?;
    let Some(config) = c.as_object() else {
        return Err(ImportError::Config(format!("layer `{layer}` has no config object")));
    };
    let mut out = Vec::new();
    for (key, v) in config {
        let Some(arg) = spec.arg(key) else {
            if harmless(key) || v.is_null() || *v == J::Bool(false) {
                continue;
            }
            return Err(unsupported(format!("`{key}={v}` of `{class}`")));
        };
        if v.is_null() || arg.kind == ArgKind::Ignored || key == "name" {
            continue;
        }
        let bad = || ImportError::Config(format!("layer `{layer}`: `{key}` = {v} does not fit `{class}`"));
        let ints = |v: &J| -> Result<Vec<i64>> {
            match v {
                J::Array(a) => a.iter().map(|x| x.as_i64().ok_or_else(bad)).collect(),
                J::Number(n) => n.as_i64().map(|i| vec![i]).ok_or_else(bad),
                _ => Err(bad()),
            }
        };
        let text = match arg.kind {
            ArgKind::PosInt | ArgKind::Int | ArgKind::Dim => match ints(v)?.as_slice() {
                [one] => one.to_string(),
                _ => return Err(unsupported(format!("`{key}={v}` (more than one axis) of `{class}`"))),
            },
            ArgKind::Float | ArgKind::NonNegative | ArgKind::Fraction | ArgKind::Rate | ArgKind::OptFloat => {
                format!("{:?}", v.as_f64().ok_or_else(bad)?)
            }
            ArgKind::Bool => v.as_bool().ok_or_else(bad)?.to_string(),
            ArgKind::Activation => activation(v)?,
            ArgKind::Choice(_) => format!("{:?}", v.as_str().ok_or_else(bad)?),
            ArgKind::Ints | ArgKind::OptInts => {
                let items: Vec<String> = ints(v)?.iter().map(i64::to_string).collect();
                format!("[{}]", items.join(", "))
            }
            ArgKind::Pair | ArgKind::Layer | ArgKind::MergeMode | ArgKind::Ignored => return Err(bad()),
        };
        out.push(format!("{key}={text}"));
    }
    Ok(out)
}
