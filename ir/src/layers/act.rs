//! The element-wise layers with parameters: `LeakyReLU`, `ELU`, `ReLU`, `Softmax`, `PReLU`
//! (whose slopes are weights) and `Rescaling`.

use super::literal::{literal_struct, literal_unit_enum};
use super::reshape::MAX_RANK;
use super::{LayerAttrs, WeightVar};

/// Which parametrised activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamActivation {
    /// `LeakyReLU(negative_slope)`: `x` if `x >= 0`, else `alpha * x`.
    LeakyRelu,
    /// `ELU(alpha)`: `x` if `x > 0`, else `alpha * (exp(x) - 1)`.
    Elu,
    /// `ReLU(max_value, negative_slope, threshold)`: `min(x, max)` if `x >= threshold`,
    /// else `alpha * (x - threshold)`.
    Relu,
    /// `Softmax(axis=-1)`.
    Softmax,
}
literal_unit_enum!(ParamActivation);

/// A parametrised activation layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActivationLayer {
    /// Which function.
    pub kind: ParamActivation,
    /// The slope or scale of the negative side (`negative_slope`, ELU's `alpha`).
    pub alpha: f32,
    /// ReLU's `max_value`.
    pub max_value: Option<f32>,
    /// ReLU's `threshold`.
    pub threshold: f32,
    /// Softmax's axis (0-based without the batch) when it is not the last.
    pub axis: Option<usize>,
}
literal_struct!(ActivationLayer { kind, alpha, max_value, threshold, axis });

impl LayerAttrs for ActivationLayer {
    const KERAS: &'static [(&'static str, &'static [WeightVar])] =
        &[("LeakyReLU", &[]), ("ELU", &[]), ("ReLU", &[]), ("Softmax", &[])];

    fn class_name(&self) -> &'static str {
        match self.kind {
            ParamActivation::LeakyRelu => "LeakyReLU",
            ParamActivation::Elu => "ELU",
            ParamActivation::Relu => "ReLU",
            ParamActivation::Softmax => "Softmax",
        }
    }

    fn weight_shape(&self, _: &WeightVar) -> Option<Vec<usize>> {
        None
    }
}

/// `PReLU(shared_axes)`: `x` if `x >= 0`, else `alpha * x` with a learned `alpha` per
/// position (shared along `shared_axes`, whose size in `alpha` is 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PreluAttrs {
    /// Number of axes (without the batch).
    pub rank: usize,
    /// The shape of `alpha`; entries past `rank` are unused.
    pub alpha_shape: [usize; MAX_RANK],
}
literal_struct!(PreluAttrs { rank, alpha_shape });

impl LayerAttrs for PreluAttrs {
    const KERAS: &'static [(&'static str, &'static [WeightVar])] =
        &[("PReLU", &[WeightVar::always("alpha")])];

    fn class_name(&self) -> &'static str {
        "PReLU"
    }

    fn weight_shape(&self, _: &WeightVar) -> Option<Vec<usize>> {
        Some(self.alpha_shape[..self.rank.min(MAX_RANK)].to_vec())
    }
}

/// `Rescaling(scale, offset)`: `x * scale + offset` (also what the importer makes of Keras 3
/// scalar arithmetic between layers, `x * 2.0 + 1.0`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RescalingAttrs {
    /// The factor.
    pub scale: f32,
    /// The offset added after.
    pub offset: f32,
}
literal_struct!(RescalingAttrs { scale, offset });

impl LayerAttrs for RescalingAttrs {
    const KERAS: &'static [(&'static str, &'static [WeightVar])] = &[("Rescaling", &[])];

    fn class_name(&self) -> &'static str {
        "Rescaling"
    }

    fn weight_shape(&self, _: &WeightVar) -> Option<Vec<usize>> {
        None
    }
}
