//! Every layer type the language knows, with Keras's constructor arguments.

use seqmodel_ir::MergeKind;

/// What kind of value an argument takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// A positive integer.
    PosInt,
    /// Any integer.
    Int,
    /// A float (integers accepted).
    Float,
    /// A float that is not negative (an epsilon, a standard deviation, a penalty).
    NonNegative,
    /// A float in `[0, 1]` (a momentum).
    Fraction,
    /// A rate in `[0, 1)`.
    Rate,
    /// `true` / `false`.
    Bool,
    /// An activation name.
    Activation,
    /// A dimension: a positive integer or a dimension symbol.
    Dim,
    /// An integer or a pair `(left, right)` of non-negative integers.
    Pair,
    /// A layer instance.
    Layer,
    /// A string or `None`.
    MergeMode,
    /// Accepted for Keras compatibility; does not change the forward computation.
    Ignored,
    /// One of the listed strings.
    Choice(&'static [&'static str]),
    /// A tuple or list of integers, `(2, 1)`.
    Ints,
    /// A number or `None`.
    OptFloat,
    /// An integer, or a tuple or list of integers, or `None` (PReLU's `shared_axes`).
    OptInts,
}

/// One constructor argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgSpec {
    /// Keras's argument name.
    pub name: &'static str,
    /// Its kind.
    pub kind: ArgKind,
    /// Whether it must be given.
    pub required: bool,
    /// Keras's default, as `.seq` source (`"tanh"`, `false`), where the catalogue records
    /// it (completion shows it; a test checks that writing it changes nothing).
    pub default: Option<&'static str>,
}

impl ArgSpec {
    /// This argument with Keras's default `value` (as `.seq` source).
    pub(crate) const fn or(self, value: &'static str) -> ArgSpec {
        ArgSpec { default: Some(value), ..self }
    }
}

/// Which layer a class is: what its configuration is built from (matched exhaustively, so
/// a class without a rule is a compile error here, not a silent fallback).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// `Dense`.
    Dense,
    /// `Activation`.
    Activation,
    /// `LSTM`, `GRU`, `SimpleRNN`.
    Rnn(RnnClass),
    /// `Bidirectional`.
    Bidirectional,
    /// `RepeatVector`.
    RepeatVector,
    /// `TimeDistributed`.
    TimeDistributed,
    /// `Embedding`.
    Embedding,
    /// `Masking`.
    Masking,
    /// `Cropping1D`.
    Cropping1D,
    /// `ZeroPadding1D`.
    ZeroPadding1D,
    /// `Dropout`.
    Dropout,
    /// `Concatenate`.
    Concatenate,
    /// `Add`, `Subtract`, `Divide`, `Multiply`, `Average`, `Maximum`, `Minimum`.
    Merge(MergeKind),
    /// A layer described in the IR (`seqmodel_ir::LayerOp`), whose rule is in
    /// [`super::described`].
    Described,
}

/// The recurrent classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RnnClass {
    /// `LSTM`.
    Lstm,
    /// `GRU`.
    Gru,
    /// `SimpleRNN`.
    SimpleRnn,
}

/// A layer type.
#[derive(Debug, PartialEq, Eq)]
pub struct LayerClass {
    /// Keras's class name.
    pub name: &'static str,
    /// Which layer it is.
    pub kind: LayerKind,
    /// Keras's snake_case name, used for automatic layer names (`lstm`, `lstm_1`).
    pub snake: &'static str,
    /// The arguments in Keras's positional order (only the first `positional` may be given
    /// without a keyword).
    pub args: &'static [ArgSpec],
    /// How many leading arguments may be positional.
    pub positional: usize,
}

/// A required argument.
pub(crate) const fn req(name: &'static str, kind: ArgKind) -> ArgSpec {
    ArgSpec { name, kind, required: true, default: None }
}
/// An optional argument.
pub(crate) const fn opt(name: &'static str, kind: ArgKind) -> ArgSpec {
    ArgSpec { name, kind, required: false, default: None }
}

use ArgKind::*;

/// Arguments every layer accepts that change nothing in the forward computation.
pub const COMMON_IGNORED: &[&str] = &[
    "trainable",
    "dtype",
    "kernel_initializer",
    "recurrent_initializer",
    "bias_initializer",
    "embeddings_initializer",
    "kernel_regularizer",
    "recurrent_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "embeddings_regularizer",
    "kernel_constraint",
    "recurrent_constraint",
    "bias_constraint",
    "embeddings_constraint",
    "unit_forget_bias",
    "seed",
];

const RNN_COMMON: [ArgSpec; 9] = [
    opt("use_bias", Bool).or("true"),
    opt("return_sequences", Bool).or("false"),
    opt("return_state", Bool).or("false"),
    opt("go_backwards", Bool).or("false"),
    opt("stateful", Bool).or("false"),
    opt("unroll", Bool).or("false"),
    opt("dropout", Rate).or("0.0"),
    opt("recurrent_dropout", Rate).or("0.0"),
    opt("name", Ignored),
];

macro_rules! rnn_args {
    ($($extra:expr),*) => {
        &[
            req("units", PosInt),
            opt("activation", Activation).or("\"tanh\""),
            $($extra,)*
            RNN_COMMON[0], RNN_COMMON[1], RNN_COMMON[2], RNN_COMMON[3], RNN_COMMON[4],
            RNN_COMMON[5], RNN_COMMON[6], RNN_COMMON[7], RNN_COMMON[8],
        ]
    };
}

/// All layer types.
pub static CLASSES: &[LayerClass] = &[
    LayerClass {
        name: "Dense",
        kind: LayerKind::Dense,
        snake: "dense",
        args: &[
            req("units", PosInt),
            opt("activation", Activation).or("\"linear\""),
            opt("use_bias", Bool).or("true"),
            opt("name", Ignored),
        ],
        positional: 2,
    },
    LayerClass {
        name: "Activation",
        kind: LayerKind::Activation,
        snake: "activation",
        args: &[req("activation", Activation), opt("name", Ignored)],
        positional: 1,
    },
    LayerClass {
        name: "LSTM",
        kind: LayerKind::Rnn(RnnClass::Lstm),
        snake: "lstm",
        args: rnn_args!(opt("recurrent_activation", Activation).or("\"sigmoid\"")),
        positional: 1,
    },
    LayerClass {
        name: "GRU",
        kind: LayerKind::Rnn(RnnClass::Gru),
        snake: "gru",
        args: rnn_args!(
            opt("recurrent_activation", Activation).or("\"sigmoid\""),
            opt("reset_after", Bool).or("true")
        ),
        positional: 1,
    },
    LayerClass {
        name: "SimpleRNN",
        kind: LayerKind::Rnn(RnnClass::SimpleRnn),
        snake: "simple_rnn",
        args: rnn_args!(),
        positional: 1,
    },
    LayerClass {
        name: "Bidirectional",
        kind: LayerKind::Bidirectional,
        snake: "bidirectional",
        args: &[req("layer", Layer), opt("merge_mode", MergeMode).or("\"concat\""), opt("name", Ignored)],
        positional: 2,
    },
    LayerClass {
        name: "RepeatVector",
        kind: LayerKind::RepeatVector,
        snake: "repeat_vector",
        args: &[req("n", Dim), opt("name", Ignored)],
        positional: 1,
    },
    LayerClass {
        name: "TimeDistributed",
        kind: LayerKind::TimeDistributed,
        snake: "time_distributed",
        args: &[req("layer", Layer), opt("name", Ignored)],
        positional: 1,
    },
    LayerClass {
        name: "Embedding",
        kind: LayerKind::Embedding,
        snake: "embedding",
        args: &[
            req("input_dim", PosInt),
            req("output_dim", PosInt),
            opt("mask_zero", Bool).or("false"),
            opt("input_length", Ignored),
            opt("name", Ignored),
        ],
        positional: 2,
    },
    LayerClass {
        name: "Masking",
        kind: LayerKind::Masking,
        snake: "masking",
        args: &[opt("mask_value", Float).or("0.0"), opt("name", Ignored)],
        positional: 1,
    },
    LayerClass {
        name: "Cropping1D",
        kind: LayerKind::Cropping1D,
        snake: "cropping1d",
        args: &[opt("cropping", Pair).or("(1, 1)"), opt("name", Ignored)],
        positional: 1,
    },
    LayerClass {
        name: "ZeroPadding1D",
        kind: LayerKind::ZeroPadding1D,
        snake: "zero_padding1d",
        args: &[opt("padding", Pair).or("1"), opt("name", Ignored)],
        positional: 1,
    },
    LayerClass {
        name: "Dropout",
        kind: LayerKind::Dropout,
        snake: "dropout",
        args: &[req("rate", Rate), opt("noise_shape", Ignored), opt("name", Ignored)],
        positional: 1,
    },
    LayerClass {
        name: "Concatenate",
        kind: LayerKind::Concatenate,
        snake: "concatenate",
        args: &[opt("axis", Int).or("-1"), opt("name", Ignored)],
        positional: 1,
    },
    LayerClass {
        name: "Add",
        kind: LayerKind::Merge(MergeKind::Add),
        snake: "add",
        args: &[opt("name", Ignored)],
        positional: 0,
    },
    LayerClass {
        name: "Subtract",
        kind: LayerKind::Merge(MergeKind::Subtract),
        snake: "subtract",
        args: &[opt("name", Ignored)],
        positional: 0,
    },
    LayerClass {
        name: "Divide",
        kind: LayerKind::Merge(MergeKind::Divide),
        snake: "divide",
        args: &[opt("name", Ignored)],
        positional: 0,
    },
    LayerClass {
        name: "Multiply",
        kind: LayerKind::Merge(MergeKind::Multiply),
        snake: "multiply",
        args: &[opt("name", Ignored)],
        positional: 0,
    },
    LayerClass {
        name: "Average",
        kind: LayerKind::Merge(MergeKind::Average),
        snake: "average",
        args: &[opt("name", Ignored)],
        positional: 0,
    },
    LayerClass {
        name: "Maximum",
        kind: LayerKind::Merge(MergeKind::Maximum),
        snake: "maximum",
        args: &[opt("name", Ignored)],
        positional: 0,
    },
    LayerClass {
        name: "Minimum",
        kind: LayerKind::Merge(MergeKind::Minimum),
        snake: "minimum",
        args: &[opt("name", Ignored)],
        positional: 0,
    },
];

/// Every layer type: those of the table above and the described layers'.
pub fn classes() -> impl Iterator<Item = &'static LayerClass> {
    CLASSES.iter().chain(super::described::CLASSES.iter().flat_map(|c| c.iter()))
}

/// Looks a layer type up by its Keras class name.
pub fn class(name: &str) -> Option<&'static LayerClass> {
    classes().find(|c| c.name == name)
}

impl LayerClass {
    /// The spec of argument `name`, if the layer has it.
    pub fn arg(&self, name: &str) -> Option<&'static ArgSpec> {
        self.args.iter().find(|a| a.name == name)
    }
}
