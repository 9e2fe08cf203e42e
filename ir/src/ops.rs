//! The closed set of operations of the IR, with typed attributes.

/// Element-wise activation functions, with Keras's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activation {
    /// `linear`: identity.
    Linear,
    /// `relu`.
    Relu,
    /// `relu6`.
    Relu6,
    /// `leaky_relu` with Keras's default slope 0.2.
    LeakyRelu,
    /// `elu` (alpha 1).
    Elu,
    /// `selu`.
    Selu,
    /// `gelu` (exact erf form, Keras's default `approximate=False`).
    Gelu,
    /// `gelu` with `approximate=True`: `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`; named
    /// `gelu_approximate` here, as Keras's names cannot choose it.
    GeluApproximate,
    /// `sigmoid`.
    Sigmoid,
    /// `hard_sigmoid` as in Keras 3: `relu6(x + 3) / 6`.
    HardSigmoid,
    /// `hard_sigmoid` as in Keras 2: `clip(0.2 x + 0.5, 0, 1)`.
    HardSigmoidKeras2,
    /// `hard_silu` / `hard_swish`: `x * hard_sigmoid(x)`.
    HardSilu,
    /// `tanh`.
    Tanh,
    /// `softplus`.
    Softplus,
    /// `softsign`.
    Softsign,
    /// `silu` / `swish`.
    Silu,
    /// `mish`.
    Mish,
    /// `exponential`.
    Exponential,
    /// `softmax` over the last axis.
    Softmax,
    /// `log_softmax` over the last axis.
    LogSoftmax,
}

impl Activation {
    /// Every activation with its Keras name(s); the first name is canonical.
    pub const ALL: &'static [(Activation, &'static [&'static str])] = &[
        (Activation::Linear, &["linear"]),
        (Activation::Relu, &["relu"]),
        (Activation::Relu6, &["relu6"]),
        (Activation::LeakyRelu, &["leaky_relu"]),
        (Activation::Elu, &["elu"]),
        (Activation::Selu, &["selu"]),
        (Activation::Gelu, &["gelu"]),
        (Activation::GeluApproximate, &["gelu_approximate"]),
        (Activation::Sigmoid, &["sigmoid"]),
        (Activation::HardSigmoid, &["hard_sigmoid"]),
        (Activation::HardSigmoidKeras2, &["hard_sigmoid_keras2"]),
        (Activation::HardSilu, &["hard_silu", "hard_swish"]),
        (Activation::Tanh, &["tanh"]),
        (Activation::Softplus, &["softplus"]),
        (Activation::Softsign, &["softsign"]),
        (Activation::Silu, &["silu", "swish"]),
        (Activation::Mish, &["mish"]),
        (Activation::Exponential, &["exponential"]),
        (Activation::Softmax, &["softmax"]),
        (Activation::LogSoftmax, &["log_softmax"]),
    ];

    /// Looks an activation up by its Keras name.
    ///
    /// ```
    /// use seqmodel_ir::Activation;
    /// assert_eq!(Activation::from_name("swish"), Some(Activation::Silu));
    /// ```
    pub fn from_name(name: &str) -> Option<Activation> {
        Self::ALL.iter().find(|(_, names)| names.contains(&name)).map(|(a, _)| *a)
    }

    /// The canonical Keras name.
    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(a, _)| *a == self).map(|(_, n)| n[0]).unwrap_or("linear")
    }

    /// Whether the activation mixes elements along the last axis (softmax).
    pub fn is_axis_wise(self) -> bool {
        matches!(self, Activation::Softmax | Activation::LogSoftmax)
    }
}

/// Which recurrent cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CellKind {
    /// Long short-term memory: gates i, f, c, o; two states (h, c).
    Lstm,
    /// Gated recurrent unit: gates z, r, h; one state.
    Gru {
        /// Keras's `reset_after` (default true): reset gate applied after the recurrent matmul.
        reset_after: bool,
    },
    /// Fully connected recurrence; one state.
    SimpleRnn,
}

impl CellKind {
    /// Number of gate blocks in the kernels (4, 3 or 1).
    pub fn gates(self) -> usize {
        match self {
            CellKind::Lstm => 4,
            CellKind::Gru { .. } => 3,
            CellKind::SimpleRnn => 1,
        }
    }

    /// Number of state tensors (2 for LSTM, 1 otherwise).
    pub fn states(self) -> usize {
        match self {
            CellKind::Lstm => 2,
            _ => 1,
        }
    }

    /// The Keras class name.
    pub fn keras_name(self) -> &'static str {
        match self {
            CellKind::Lstm => "LSTM",
            CellKind::Gru { .. } => "GRU",
            CellKind::SimpleRnn => "SimpleRNN",
        }
    }
}

/// Attributes of a recurrent layer (Keras constructor arguments that change the math or the
/// shape).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RnnAttrs {
    /// Cell type.
    pub cell: CellKind,
    /// Hidden units.
    pub units: usize,
    /// Input feature size.
    pub input_dim: usize,
    /// Output/candidate activation (default tanh).
    pub activation: Activation,
    /// Gate activation (default sigmoid; unused by SimpleRNN).
    pub recurrent_activation: Activation,
    /// Whether the cell has a bias.
    pub use_bias: bool,
    /// Output every step (`[T, units]`) instead of the last (`[units]`).
    pub return_sequences: bool,
    /// Also output the final states.
    pub return_state: bool,
    /// Process the sequence from the last step to the first.
    pub go_backwards: bool,
    /// Keep the final states for the next call.
    pub stateful: bool,
    /// Keras's `unroll`: same numbers, kept for the record.
    pub unroll: bool,
    /// Input dropout rate (training only).
    pub dropout: f32,
    /// Recurrent dropout rate (training only).
    pub recurrent_dropout: f32,
}

/// How Bidirectional combines the forward and backward outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MergeMode {
    /// Concatenate forward then backward (default).
    Concat,
    /// Element-wise sum.
    Sum,
    /// Element-wise product.
    Mul,
    /// Element-wise mean.
    Ave,
    /// No merge: two outputs.
    None,
}

/// Merge layers over several tensors (Concatenate along an axis). The element-wise merges
/// broadcast, as Keras's do: the inputs have one rank, and along each axis every size is
/// the output's or 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MergeKind {
    /// `Concatenate(axis)`: the axis counts the batch, Keras-style (-1 = last).
    Concatenate {
        /// Axis without the batch dimension (0-based), already normalised.
        axis: usize,
    },
    /// `Add`.
    Add,
    /// `Subtract` (exactly two inputs).
    Subtract,
    /// `Divide` (exactly two inputs): the first over the second (`keras.ops.divide`).
    Divide,
    /// `Multiply`.
    Multiply,
    /// `Average`.
    Average,
    /// `Maximum`.
    Maximum,
    /// `Minimum`.
    Minimum,
}

/// One operation of the graph. Inputs arrive on numbered ports (see [`crate::Edge`]); the
/// doc of each variant lists them.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Model input number `index`. No inputs.
    Input {
        /// Position among the model's inputs.
        index: usize,
    },
    /// `Dense(units)` over the last axis. Input 0: x.
    Dense {
        /// Output features.
        units: usize,
        /// Input features.
        input_dim: usize,
        /// Fused activation.
        activation: Activation,
        /// Whether there is a bias.
        use_bias: bool,
    },
    /// `Activation(name)`. Input 0: x.
    Activation(Activation),
    /// LSTM / GRU / SimpleRNN. Input 0: x `[T, D]`; inputs 1.. (optional): initial states.
    /// Outputs: 0 = output, then the final states if `return_state`.
    Rnn(RnnAttrs),
    /// `RepeatVector(steps)` followed by a recurrent layer, fused by the optimiser: input 0
    /// is the vector `[F]`; the input projection is computed once per sequence.
    RepeatRnn {
        /// The recurrent layer.
        rnn: RnnAttrs,
        /// The number of steps (the RepeatVector's count).
        steps: crate::Dim,
    },
    /// `Bidirectional(rnn, merge_mode)`. Input 0: x. Outputs: the merged output (or two
    /// outputs for `MergeMode::None`), then forward states, then backward states if
    /// `return_state`.
    Bidirectional {
        /// The forward layer.
        forward: RnnAttrs,
        /// The backward layer (Keras copies the forward config with go_backwards flipped).
        backward: RnnAttrs,
        /// How outputs are combined.
        merge: MergeMode,
    },
    /// `RepeatVector(n)`: `[F]` → `[n, F]`. Input 0: x. The count `n` is the first
    /// dimension of the node's output type (fixed, or a symbol bound at run time).
    RepeatVector,
    /// `Embedding(input_dim, output_dim)`: `[..] of i32` → `[.., output_dim]`. Input 0: ids.
    Embedding {
        /// Vocabulary size.
        input_dim: usize,
        /// Vector size.
        output_dim: usize,
        /// Token 0 masks the step.
        mask_zero: bool,
    },
    /// `Masking(mask_value)`: a step whose features all equal the value is masked.
    Masking {
        /// The value that marks padding.
        mask_value: f32,
    },
    /// Keep steps `start..len-end_crop` of the time axis (Cropping1D, slicing). Input 0: x.
    TimeSlice {
        /// Steps removed at the front; negative counts from the end (the slice `x[-3:]`).
        start: i64,
        /// End, exclusive: `Some(e)` like Python (negative from the end); `None` = to the end.
        end: Option<i64>,
    },
    /// Select one step and drop the time axis, `x[i]`. Input 0: x.
    TimeStep {
        /// Step index (negative counts from the end).
        index: i64,
    },
    /// `ZeroPadding1D((left, right))` along time. Input 0: x.
    ZeroPad {
        /// Zero steps before.
        left: usize,
        /// Zero steps after.
        right: usize,
    },
    /// `Dropout(rate)`: identity at inference. Input 0: x.
    Dropout {
        /// Drop probability in training.
        rate: f32,
    },
    /// Merge layers. Inputs 0..n.
    Merge(MergeKind),
    /// Start of `TimeDistributed`: `[T, ...]` becomes a batch of `B*T` items `[...]`.
    FoldTime,
    /// End of `TimeDistributed`: `B*T` items back to `[T, ...]`. Input 0: the folded result;
    /// input 1: the tensor that was folded (for B and T at run time).
    UnfoldTime,
    /// A described layer (convolution, pooling, normalisation, reshaping, parametrised
    /// activations, noise): its attributes, Keras classes and weights in [`crate::LayerOp`].
    /// Input 0: x (the doc of each attribute type names any further inputs).
    Layer(crate::LayerOp),
}

impl Op {
    /// A short name for graphs and summaries, Keras's class name where there is one.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Op::Input { .. } => "InputLayer",
            Op::Dense { .. } => "Dense",
            Op::Activation(_) => "Activation",
            Op::Rnn(a) | Op::RepeatRnn { rnn: a, .. } => a.cell.keras_name(),
            Op::Bidirectional { .. } => "Bidirectional",
            Op::RepeatVector => "RepeatVector",
            Op::Embedding { .. } => "Embedding",
            Op::Masking { .. } => "Masking",
            Op::TimeSlice { .. } => "Cropping1D",
            Op::TimeStep { .. } => "TimeStep",
            Op::ZeroPad { .. } => "ZeroPadding1D",
            Op::Dropout { .. } => "Dropout",
            Op::Merge(m) => match m {
                MergeKind::Concatenate { .. } => "Concatenate",
                MergeKind::Add => "Add",
                MergeKind::Subtract => "Subtract",
                MergeKind::Divide => "Divide",
                MergeKind::Multiply => "Multiply",
                MergeKind::Average => "Average",
                MergeKind::Maximum => "Maximum",
                MergeKind::Minimum => "Minimum",
            },
            Op::FoldTime => "TimeDistributed",
            Op::UnfoldTime => "TimeDistributed(end)",
            Op::Layer(l) => l.class_name(),
        }
    }
}
