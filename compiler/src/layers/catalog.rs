//! Every layer type the language knows, with Keras's constructor arguments.

/// What kind of value an argument takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// A positive integer.
    PosInt,
    /// Any integer.
    Int,
    /// A float (integers accepted).
    Float,
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
}

/// A layer type.
#[derive(Debug, PartialEq, Eq)]
pub struct LayerClass {
    /// Keras's class name.
    pub name: &'static str,
    /// Keras's snake_case name, used for automatic layer names (`lstm`, `lstm_1`).
    pub snake: &'static str,
    /// The arguments in Keras's positional order (only the first `positional` may be given
    /// without a keyword).
    pub args: &'static [ArgSpec],
    /// How many leading arguments may be positional.
    pub positional: usize,
}

const fn req(name: &'static str, kind: ArgKind) -> ArgSpec {
    ArgSpec { name, kind, required: true }
}
const fn opt(name: &'static str, kind: ArgKind) -> ArgSpec {
    ArgSpec { name, kind, required: false }
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
    opt("use_bias", Bool),
    opt("return_sequences", Bool),
    opt("return_state", Bool),
    opt("go_backwards", Bool),
    opt("stateful", Bool),
    opt("unroll", Bool),
    opt("dropout", Rate),
    opt("recurrent_dropout", Rate),
    opt("name", Ignored),
];

macro_rules! rnn_args {
    ($($extra:expr),*) => {
        &[
            req("units", PosInt),
            opt("activation", Activation),
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
        snake: "dense",
        args: &[
            req("units", PosInt),
            opt("activation", Activation),
            opt("use_bias", Bool),
            opt("name", Ignored),
        ],
        positional: 2,
    },
    LayerClass {
        name: "Activation",
        snake: "activation",
        args: &[req("activation", Activation), opt("name", Ignored)],
        positional: 1,
    },
    LayerClass {
        name: "LSTM",
        snake: "lstm",
        args: rnn_args!(opt("recurrent_activation", Activation)),
        positional: 1,
    },
    LayerClass {
        name: "GRU",
        snake: "gru",
        args: rnn_args!(opt("recurrent_activation", Activation), opt("reset_after", Bool)),
        positional: 1,
    },
    LayerClass { name: "SimpleRNN", snake: "simple_rnn", args: rnn_args!(), positional: 1 },
    LayerClass {
        name: "Bidirectional",
        snake: "bidirectional",
        args: &[req("layer", Layer), opt("merge_mode", MergeMode), opt("name", Ignored)],
        positional: 2,
    },
    LayerClass {
        name: "RepeatVector",
        snake: "repeat_vector",
        args: &[req("n", Dim), opt("name", Ignored)],
        positional: 1,
    },
    LayerClass {
        name: "TimeDistributed",
        snake: "time_distributed",
        args: &[req("layer", Layer), opt("name", Ignored)],
        positional: 1,
    },
    LayerClass {
        name: "Embedding",
        snake: "embedding",
        args: &[
            req("input_dim", PosInt),
            req("output_dim", PosInt),
            opt("mask_zero", Bool),
            opt("input_length", Ignored),
            opt("name", Ignored),
        ],
        positional: 2,
    },
    LayerClass {
        name: "Masking",
        snake: "masking",
        args: &[opt("mask_value", Float), opt("name", Ignored)],
        positional: 1,
    },
    LayerClass {
        name: "Cropping1D",
        snake: "cropping1d",
        args: &[opt("cropping", Pair), opt("name", Ignored)],
        positional: 1,
    },
    LayerClass {
        name: "ZeroPadding1D",
        snake: "zero_padding1d",
        args: &[opt("padding", Pair), opt("name", Ignored)],
        positional: 1,
    },
    LayerClass {
        name: "Dropout",
        snake: "dropout",
        args: &[req("rate", Rate), opt("noise_shape", Ignored), opt("name", Ignored)],
        positional: 1,
    },
    LayerClass {
        name: "Concatenate",
        snake: "concatenate",
        args: &[opt("axis", Int), opt("name", Ignored)],
        positional: 1,
    },
    LayerClass { name: "Add", snake: "add", args: &[opt("name", Ignored)], positional: 0 },
    LayerClass { name: "Subtract", snake: "subtract", args: &[opt("name", Ignored)], positional: 0 },
    LayerClass { name: "Multiply", snake: "multiply", args: &[opt("name", Ignored)], positional: 0 },
    LayerClass { name: "Average", snake: "average", args: &[opt("name", Ignored)], positional: 0 },
    LayerClass { name: "Maximum", snake: "maximum", args: &[opt("name", Ignored)], positional: 0 },
    LayerClass { name: "Minimum", snake: "minimum", args: &[opt("name", Ignored)], positional: 0 },
];

/// Looks a layer type up by its Keras class name.
pub fn class(name: &str) -> Option<&'static LayerClass> {
    CLASSES.iter().find(|c| c.name == name)
}

impl LayerClass {
    /// The spec of argument `name`, if the layer has it.
    pub fn arg(&self, name: &str) -> Option<&'static ArgSpec> {
        self.args.iter().find(|a| a.name == name)
    }
}
