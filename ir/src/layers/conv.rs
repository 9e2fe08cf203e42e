//! Convolution and pooling over time: `Conv1D`, `MaxPooling1D`, `AveragePooling1D`,
//! `GlobalAveragePooling1D`, `GlobalMaxPooling1D`.

use super::literal::{literal_struct, literal_unit_enum};
use super::{LayerAttrs, WeightVar};
use crate::Activation;

/// How a window is placed along time (Keras's `padding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Padding {
    /// No padding: windows lie inside the sequence.
    Valid,
    /// Zero padding so that the output has `ceil(T / strides)` steps, split as TensorFlow
    /// does (the extra step at the end).
    Same,
    /// Zero padding at the front only: step `t` of the output sees steps `..= t` of the input.
    Causal,
}
literal_unit_enum!(Padding);

impl Padding {
    /// Keras's name.
    pub fn name(self) -> &'static str {
        match self {
            Padding::Valid => "valid",
            Padding::Same => "same",
            Padding::Causal => "causal",
        }
    }

    /// Looks a padding up by its Keras name.
    pub fn from_name(name: &str) -> Option<Padding> {
        [Padding::Valid, Padding::Same, Padding::Causal].into_iter().find(|p| p.name() == name)
    }

    /// The output length and the zero steps before the input, for windows spanning `span`
    /// steps (`(kernel - 1) * dilation + 1`) every `strides` steps over `t` steps; `None`
    /// when a valid window does not fit.
    ///
    /// ```
    /// use seqmodel_ir::Padding;
    /// assert_eq!(Padding::Valid.window(9, 3, 1), Some((7, 0)));
    /// assert_eq!(Padding::Same.window(12, 3, 2), Some((6, 0)));
    /// assert_eq!(Padding::Causal.window(10, 3, 1), Some((10, 2)));
    /// assert_eq!(Padding::Valid.window(2, 3, 1), None);
    /// ```
    pub fn window(self, t: usize, span: usize, strides: usize) -> Option<(usize, usize)> {
        let s = strides.max(1);
        match self {
            Padding::Valid => (t >= span).then(|| ((t - span) / s + 1, 0)),
            Padding::Causal => {
                // Every step has a window ending on it: `(t + left - span) / s + 1` for
                // `t ≥ 1`, none for an empty sequence.
                let left = span.saturating_sub(1);
                Some((t.checked_sub(1).map_or(0, |last| last / s + 1), left))
            }
            Padding::Same => {
                let out = t.div_ceil(s);
                let total = ((out.saturating_sub(1)) * s + span).saturating_sub(t);
                Some((out, total / 2))
            }
        }
    }
}

/// `Conv1D(filters, kernel_size, ...)` over `[T, C]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conv1dAttrs {
    /// Output channels.
    pub filters: usize,
    /// Taps.
    pub kernel_size: usize,
    /// Input channels (known once the layer sees its input).
    pub in_channels: usize,
    /// Step between windows.
    pub strides: usize,
    /// Step between taps.
    pub dilation_rate: usize,
    /// Channel groups (input and output channels split into this many independent parts).
    pub groups: usize,
    /// Window placement.
    pub padding: Padding,
    /// Fused activation.
    pub activation: Activation,
    /// Whether there is a bias.
    pub use_bias: bool,
}
literal_struct!(Conv1dAttrs {
    filters,
    kernel_size,
    in_channels,
    strides,
    dilation_rate,
    groups,
    padding,
    activation,
    use_bias
});

impl Conv1dAttrs {
    /// Steps one window spans: `(kernel_size - 1) * dilation_rate + 1`.
    pub fn span(&self) -> usize {
        (self.kernel_size - 1) * self.dilation_rate + 1
    }

    /// Output length and front padding for `t` input steps (see [`Padding::window`]).
    pub fn window(&self, t: usize) -> Option<(usize, usize)> {
        self.padding.window(t, self.span(), self.strides)
    }
}

impl LayerAttrs for Conv1dAttrs {
    const KERAS: &'static [(&'static str, &'static [WeightVar])] =
        &[("Conv1D", &[WeightVar::always("kernel"), WeightVar::when("bias", "use_bias")])];

    fn class_name(&self) -> &'static str {
        "Conv1D"
    }

    fn weight_shape(&self, var: &WeightVar) -> Option<Vec<usize>> {
        match var.name {
            "kernel" => Some(vec![self.kernel_size, self.in_channels / self.groups.max(1), self.filters]),
            _ => self.use_bias.then(|| vec![self.filters]),
        }
    }
}

/// Which reduction a pooling layer applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoolKind {
    /// The largest value.
    Max,
    /// The mean (of the real steps only: padding and masked steps do not count).
    Average,
}
literal_unit_enum!(PoolKind);

/// `MaxPooling1D` / `AveragePooling1D` over `[T, C]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolAttrs {
    /// Max or average.
    pub kind: PoolKind,
    /// Window length.
    pub pool_size: usize,
    /// Step between windows (Keras's default: the pool size).
    pub strides: usize,
    /// `Valid` or `Same`.
    pub padding: Padding,
}
literal_struct!(PoolAttrs { kind, pool_size, strides, padding });

impl PoolAttrs {
    /// Output length and front padding for `t` input steps.
    pub fn window(&self, t: usize) -> Option<(usize, usize)> {
        self.padding.window(t, self.pool_size, self.strides)
    }
}

impl LayerAttrs for PoolAttrs {
    const KERAS: &'static [(&'static str, &'static [WeightVar])] =
        &[("MaxPooling1D", &[]), ("AveragePooling1D", &[])];

    fn class_name(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "MaxPooling1D",
            PoolKind::Average => "AveragePooling1D",
        }
    }

    fn weight_shape(&self, _: &WeightVar) -> Option<Vec<usize>> {
        None
    }
}

/// `GlobalMaxPooling1D` / `GlobalAveragePooling1D`: `[T, C]` → `[C]` (or `[1, C]` with
/// `keepdims`); masked steps do not count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GlobalPoolAttrs {
    /// Max or average.
    pub kind: PoolKind,
    /// Keep the time axis with length 1.
    pub keepdims: bool,
}
literal_struct!(GlobalPoolAttrs { kind, keepdims });

impl LayerAttrs for GlobalPoolAttrs {
    const KERAS: &'static [(&'static str, &'static [WeightVar])] =
        &[("GlobalMaxPooling1D", &[]), ("GlobalAveragePooling1D", &[])];

    fn class_name(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "GlobalMaxPooling1D",
            PoolKind::Average => "GlobalAveragePooling1D",
        }
    }

    fn weight_shape(&self, _: &WeightVar) -> Option<Vec<usize>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::Padding;

    /// Keras's output lengths (`ceil((t - span + 1) / s)` valid, `ceil(t / s)` same and
    /// causal) with the front padding, an empty sequence included.
    #[test]
    fn windows_have_keras_lengths_and_padding() {
        for (t, span, s) in
            [(0usize, 3usize, 1usize), (1, 3, 1), (2, 3, 2), (7, 3, 1), (7, 3, 2), (10, 4, 3), (5, 1, 2)]
        {
            let valid = (t >= span).then(|| ((t + 1 - span).div_ceil(s), 0));
            assert_eq!(Padding::Valid.window(t, span, s), valid, "valid {t} {span} {s}");
            assert_eq!(
                Padding::Causal.window(t, span, s),
                Some((t.div_ceil(s), span - 1)),
                "causal {t} {span} {s}"
            );
            let same = Padding::Same.window(t, span, s).expect("same always fits");
            assert_eq!(same.0, t.div_ceil(s), "same {t} {span} {s}");
        }
    }
}
