//! The values an expression evaluates to while a model body is elaborated.

use seqmodel_grammar::Span;
use seqmodel_ir::{DType, Port};

use crate::dims::D;
use crate::layers::LayerClass;

/// A tensor type during inference (batch implicit).
#[derive(Debug, Clone, PartialEq)]
pub struct ITy {
    /// Dimensions, possibly variables.
    pub dims: Vec<D>,
    /// Element type.
    pub dtype: DType,
}

/// Where a tensor came from, for hints in diagnostics.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    /// The expression that produced it.
    pub span: Span,
    /// A description such as "LSTM `lstm`" or "input `x`".
    pub what: String,
    /// It is the last-step output of an RNN without `return_sequences`.
    pub rnn_last_only: bool,
    /// It is the sequence output of an RNN with `return_sequences=true`.
    pub rnn_sequence: bool,
    /// Where its type was declared (model inputs).
    pub declared: Option<Span>,
}

/// A tensor: a node output, its inferred type, and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// The producing node output.
    pub port: Port,
    /// Its type.
    pub ty: ITy,
    /// Its origin.
    pub origin: Origin,
}

/// The value of an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A tensor.
    Tensor(Tensor),
    /// Several values (multiple outputs, `(a, b)`).
    Tuple(Vec<Value>),
    /// `[a, b]`.
    List(Vec<Value>),
    /// A constructed layer instance (index into the layer arena).
    Layer(usize),
    /// A layer type not yet constructed (`LSTM` before its arguments).
    Class(&'static LayerClass),
    /// A model, with its dimension arguments.
    Model {
        /// Index of the model in the file.
        index: usize,
        /// `<...>` arguments.
        generics: Vec<(D, Span)>,
    },
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A boolean.
    Bool(bool),
    /// `None`.
    None,
    /// A dimension symbol used as a value (`RepeatVector(T)`).
    Dim(D),
    /// The result of an expression that already failed (suppresses cascades).
    Poison,
}

impl Value {
    /// Whether the value is, or holds, the result of an expression that already failed (so
    /// what uses it reports nothing more).
    pub fn has_poison(&self) -> bool {
        match self {
            Value::Poison => true,
            Value::Tuple(items) | Value::List(items) => items.iter().any(Value::has_poison),
            _ => false,
        }
    }

    /// A short description for messages ("a tensor", "a layer", ...).
    pub fn describe(&self) -> &'static str {
        match self {
            Value::Tensor(_) => "a tensor",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Layer(_) => "a layer",
            Value::Class(_) => "a layer type",
            Value::Model { .. } => "a model",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Bool(_) => "a boolean",
            Value::None => "None",
            Value::Dim(_) => "a dimension",
            Value::Poison => "an erroneous value",
        }
    }

    /// A number or string as written (`0`, `-1.5`, `"relu"`), anything else as
    /// [`Value::describe`] says it.
    pub fn shown(&self) -> String {
        match self {
            Value::Int(i) => i.to_string(),
            Value::Float(f) => format!("{f:?}"),
            Value::Str(s) => format!("{s:?}"),
            other => other.describe().to_string(),
        }
    }
}
