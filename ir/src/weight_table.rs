//! Comparing a set of weights with the table a model needs (keys and shapes), in one place
//! for the runtime (weights loaded at run time) and the compiler (weights baked in at
//! compile time).

/// The first way a set of weights fails to fit a model's weight table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightMismatch {
    /// A weight the model needs is not there.
    Missing {
        /// The weight key.
        key: String,
        /// The shape it needs.
        shape: Vec<usize>,
        /// The layer (the key without its last part).
        layer: String,
    },
    /// A weight has the wrong shape.
    Shape {
        /// The weight key.
        key: String,
        /// The shape the layer needs.
        expected: Vec<usize>,
        /// The shape found.
        found: Vec<usize>,
        /// The layer.
        layer: String,
    },
    /// Weights the model does not use, sorted.
    Extra {
        /// Their keys.
        keys: Vec<String>,
    },
}

impl std::fmt::Display for WeightMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WeightMismatch::Missing { key, shape, layer } => {
                write!(f, "missing weight `{key}` (shape {shape:?}) for layer `{layer}`")
            }
            WeightMismatch::Shape { key, expected, found, layer } => {
                write!(f, "weight `{key}` has shape {found:?}, layer `{layer}` needs {expected:?}")
            }
            WeightMismatch::Extra { keys } => write!(f, "weights the model does not use: {keys:?}"),
        }
    }
}

impl std::error::Error for WeightMismatch {}

/// The metadata key of a weight file that names the model the weights were made for.
pub const MODEL_METADATA_KEY: &str = "seqmodel.model";
/// The metadata key of a weight file that holds the architecture's fingerprint
/// ([`crate::Program::fingerprint`], 16 hex digits).
pub const ARCHITECTURE_METADATA_KEY: &str = "seqmodel.architecture";

/// The layer of a weight key: `M/lstm/kernel` belongs to `M/lstm`.
pub fn weight_layer(key: &str) -> &str {
    key.rsplit_once('/').map_or(key, |(layer, _)| layer)
}

/// Checks that the weights with keys `present` (each with the shape `shape_of` gives) are
/// exactly `specs`, given as `(key, shape)`: none missing, every shape right, none extra,
/// reported in that order (the first missing or mis-shaped weight in `specs`' order).
///
/// ```
/// use seqmodel_ir::{WeightMismatch, check_weight_table};
/// let specs: &[(&str, &[usize])] = &[("M/d/kernel", &[3, 2]), ("M/d/bias", &[2])];
/// let found = [("M/d/kernel", vec![3, 2]), ("M/d/bias", vec![3])];
/// let shape_of = |k: &str| found.iter().find(|(n, _)| *n == k).map(|(_, s)| s.clone());
/// let err = check_weight_table(specs, found.iter().map(|(k, _)| *k), shape_of).unwrap_err();
/// assert!(matches!(err, WeightMismatch::Shape { found, .. } if found == vec![3]));
/// ```
pub fn check_weight_table<'a>(
    specs: &[(&str, &[usize])],
    present: impl IntoIterator<Item = &'a str>,
    shape_of: impl Fn(&str) -> Option<Vec<usize>>,
) -> Result<(), WeightMismatch> {
    for (key, shape) in specs {
        let layer = weight_layer(key).to_string();
        match shape_of(key) {
            None => {
                return Err(WeightMismatch::Missing { key: key.to_string(), shape: shape.to_vec(), layer });
            }
            Some(found) if found != *shape => {
                return Err(WeightMismatch::Shape {
                    key: key.to_string(),
                    expected: shape.to_vec(),
                    found,
                    layer,
                });
            }
            Some(_) => {}
        }
    }
    let mut extra: Vec<String> =
        present.into_iter().filter(|k| !specs.iter().any(|(s, _)| s == k)).map(str::to_string).collect();
    extra.sort();
    if extra.is_empty() { Ok(()) } else { Err(WeightMismatch::Extra { keys: extra }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[(&str, &[usize])] = &[("M/d/kernel", &[3, 2]), ("M/d/bias", &[2])];

    fn check(found: &[(&str, Vec<usize>)]) -> Result<(), WeightMismatch> {
        let shape_of = |k: &str| found.iter().find(|(n, _)| *n == k).map(|(_, s)| s.clone());
        check_weight_table(SPECS, found.iter().map(|(k, _)| *k), shape_of)
    }

    #[test]
    fn an_exact_table_passes() {
        assert_eq!(check(&[("M/d/bias", vec![2]), ("M/d/kernel", vec![3, 2])]), Ok(()));
    }

    #[test]
    fn missing_comes_before_extra_and_names_the_layer() {
        let e = check(&[("M/d/kernel", vec![3, 2]), ("M/x/bias", vec![2])]).unwrap_err();
        assert_eq!(
            e,
            WeightMismatch::Missing { key: "M/d/bias".into(), shape: vec![2], layer: "M/d".into() }
        );
    }

    #[test]
    fn extra_keys_are_listed_sorted() {
        let e = check(&[("M/d/kernel", vec![3, 2]), ("M/d/bias", vec![2]), ("z", vec![1]), ("a", vec![1])])
            .unwrap_err();
        assert_eq!(e, WeightMismatch::Extra { keys: vec!["a".into(), "z".into()] });
    }
}
