//! Normalisation: `LayerNormalization` and `BatchNormalization`, both over the last axis.

use super::literal::literal_struct;
use super::{LayerAttrs, WeightVar};

/// `LayerNormalization(axis=-1)`: each vector of the last axis normalised to zero mean and
/// unit variance, then scaled by `gamma` and shifted by `beta`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerNormAttrs {
    /// Size of the last axis.
    pub features: usize,
    /// Added to the variance.
    pub epsilon: f32,
    /// Whether `beta` is added.
    pub center: bool,
    /// Whether `gamma` multiplies.
    pub scale: bool,
}
literal_struct!(LayerNormAttrs { features, epsilon, center, scale });

impl LayerAttrs for LayerNormAttrs {
    const KERAS: &'static [(&'static str, &'static [WeightVar])] =
        &[("LayerNormalization", &[WeightVar::when("gamma", "scale"), WeightVar::when("beta", "center")])];

    fn class_name(&self) -> &'static str {
        "LayerNormalization"
    }

    fn weight_shape(&self, var: &WeightVar) -> Option<Vec<usize>> {
        let on = if var.name == "gamma" { self.scale } else { self.center };
        on.then(|| vec![self.features])
    }
}

/// `BatchNormalization(axis=-1)`: at inference `(x - moving_mean) / sqrt(moving_variance +
/// epsilon) * gamma + beta`; in training the batch's statistics, with the moving ones
/// updated by `momentum`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNormAttrs {
    /// Size of the last axis.
    pub features: usize,
    /// Added to the variance.
    pub epsilon: f32,
    /// `moving = moving * momentum + batch * (1 - momentum)`.
    pub momentum: f32,
    /// Whether `beta` is added.
    pub center: bool,
    /// Whether `gamma` multiplies.
    pub scale: bool,
}
literal_struct!(BatchNormAttrs { features, epsilon, momentum, center, scale });

impl LayerAttrs for BatchNormAttrs {
    const KERAS: &'static [(&'static str, &'static [WeightVar])] = &[(
        "BatchNormalization",
        &[
            WeightVar::when("gamma", "scale"),
            WeightVar::when("beta", "center"),
            WeightVar::state("moving_mean", 0.0),
            WeightVar::state("moving_variance", 1.0),
        ],
    )];

    fn class_name(&self) -> &'static str {
        "BatchNormalization"
    }

    fn weight_shape(&self, var: &WeightVar) -> Option<Vec<usize>> {
        let on = match var.name {
            "gamma" => self.scale,
            "beta" => self.center,
            _ => true,
        };
        on.then(|| vec![self.features])
    }
}
