//! Layers that are identities at inference and act only in training: `GaussianNoise`,
//! `GaussianDropout`, `SpatialDropout1D`, `AlphaDropout`, `ActivityRegularization`.

use super::literal::{literal_struct, literal_unit_enum};
use super::{LayerAttrs, WeightVar};

/// Which training-time behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoiseKind {
    /// Adds normal noise of standard deviation `rate`.
    GaussianNoise,
    /// Multiplies by normal noise of mean 1 and variance `rate / (1 - rate)`.
    GaussianDropout,
    /// Drops whole channels of `[T, C]` (the same for every step), scaling the rest by
    /// `1 / (1 - rate)`.
    SpatialDropout1D,
    /// Dropout that keeps SELU's mean and variance.
    AlphaDropout,
    /// Adds `l1 * sum|x| + l2 * sum x²` to the loss (`rate` is `l1`).
    ActivityRegularization,
}
literal_unit_enum!(NoiseKind);

/// A layer that is the identity at inference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseAttrs {
    /// Which one.
    pub kind: NoiseKind,
    /// `stddev`, `rate` or `l1`.
    pub rate: f32,
    /// ActivityRegularization's `l2` (0 otherwise).
    pub l2: f32,
}
literal_struct!(NoiseAttrs { kind, rate, l2 });

impl LayerAttrs for NoiseAttrs {
    const KERAS: &'static [(&'static str, &'static [WeightVar])] = &[
        ("GaussianNoise", &[]),
        ("GaussianDropout", &[]),
        ("SpatialDropout1D", &[]),
        ("AlphaDropout", &[]),
        ("ActivityRegularization", &[]),
    ];

    fn class_name(&self) -> &'static str {
        match self.kind {
            NoiseKind::GaussianNoise => "GaussianNoise",
            NoiseKind::GaussianDropout => "GaussianDropout",
            NoiseKind::SpatialDropout1D => "SpatialDropout1D",
            NoiseKind::AlphaDropout => "AlphaDropout",
            NoiseKind::ActivityRegularization => "ActivityRegularization",
        }
    }

    fn weight_shape(&self, _: &WeightVar) -> Option<Vec<usize>> {
        None
    }
}
