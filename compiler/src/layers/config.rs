//! Turning the evaluated constructor arguments of a layer into its typed configuration.

use std::collections::HashMap;

use seqmodel_grammar::Span;
use seqmodel_ir::{Activation, CellKind, MergeKind, MergeMode, RnnAttrs};

use super::catalog::{ArgKind, COMMON_IGNORED, LayerClass, LayerKind, RnnClass};
use crate::check::Value;
use crate::diagnostic::{Diagnostic, closest};
use crate::dims::D;

/// The typed configuration of a layer instance.
#[derive(Debug, Clone, PartialEq)]
pub enum LayerCfg {
    /// Dense.
    Dense {
        /// Units.
        units: usize,
        /// Activation.
        activation: Activation,
        /// Bias present.
        use_bias: bool,
    },
    /// Activation.
    Activation(Activation),
    /// LSTM / GRU / SimpleRNN (`input_dim` is 0 until the layer sees its input).
    Rnn(RnnAttrs),
    /// Bidirectional around a recurrent layer instance.
    Bidirectional {
        /// The wrapped layer instance.
        inner: usize,
        /// Merge mode.
        merge: MergeMode,
    },
    /// RepeatVector.
    RepeatVector(D),
    /// TimeDistributed around a layer or a model.
    TimeDistributed(Box<Value>),
    /// Embedding.
    Embedding {
        /// Vocabulary size.
        input_dim: usize,
        /// Vector size.
        output_dim: usize,
        /// Token 0 is padding.
        mask_zero: bool,
    },
    /// Masking.
    Masking(f32),
    /// Cropping1D (left, right).
    Cropping(usize, usize),
    /// ZeroPadding1D (left, right).
    Padding(usize, usize),
    /// Dropout.
    Dropout(f32),
    /// Merge layer; `axis` as written (Keras counts the batch axis).
    Merge {
        /// The class name, for messages.
        class: &'static str,
        /// The element-wise merge, or `None` for Concatenate.
        kind: Option<MergeKind>,
        /// Concatenate's axis.
        axis: i64,
    },
    /// A described layer (its input-dependent attributes are 0 until it sees its input).
    Layer(seqmodel_ir::LayerOp),
}

/// One evaluated constructor argument: keyword (with its span), value, span of the argument.
pub type RawArg = (Option<(String, Span)>, Value, Span);

/// Evaluated arguments by name, with their spans.
pub struct Args {
    map: HashMap<&'static str, (Value, Span)>,
}

impl Args {
    pub(crate) fn get(&self, name: &str) -> Option<&(Value, Span)> {
        self.map.get(name)
    }

    pub(crate) fn bool(&self, name: &str, default: bool) -> bool {
        match self.get(name) {
            Some((Value::Bool(b), _)) => *b,
            _ => default,
        }
    }

    pub(crate) fn int(&self, name: &str) -> Option<i64> {
        match self.get(name) {
            Some((Value::Int(i), _)) => Some(*i),
            _ => None,
        }
    }

    pub(crate) fn float(&self, name: &str, default: f64) -> f64 {
        match self.get(name) {
            Some((Value::Float(f), _)) => *f,
            Some((Value::Int(i), _)) => *i as f64,
            _ => default,
        }
    }

    pub(crate) fn act(&self, name: &str, default: Activation) -> Activation {
        match self.get(name) {
            Some((Value::Str(s), _)) => Activation::from_name(s).unwrap_or(default),
            Some((Value::None, _)) => Activation::Linear,
            _ => default,
        }
    }

    pub(crate) fn pair(&self, name: &str, default: (usize, usize)) -> (usize, usize) {
        match self.get(name) {
            Some((Value::Int(i), _)) => (*i as usize, *i as usize),
            Some((Value::Tuple(v) | Value::List(v), _)) => match v.as_slice() {
                [Value::Int(a), Value::Int(b)] => (*a as usize, *b as usize),
                _ => default,
            },
            _ => default,
        }
    }

    /// A string argument.
    pub(crate) fn str(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some((Value::Str(s), _)) => Some(s),
            _ => None,
        }
    }

    /// An integer, or the integers of a tuple or list (`None` when absent or `None`).
    pub(crate) fn ints(&self, name: &str) -> Option<Vec<i64>> {
        match self.get(name) {
            Some((Value::Int(i), _)) => Some(vec![*i]),
            Some((Value::Tuple(v) | Value::List(v), _)) => {
                Some(v.iter().filter_map(|x| if let Value::Int(i) = x { Some(*i) } else { None }).collect())
            }
            _ => None,
        }
    }

    /// A number, `None` when absent or `None`.
    pub(crate) fn opt_float(&self, name: &str) -> Option<f64> {
        match self.get(name) {
            Some((Value::Float(f), _)) => Some(*f),
            Some((Value::Int(i), _)) => Some(*i as f64),
            _ => None,
        }
    }

    /// The span of argument `name`, if given.
    pub(crate) fn span(&self, name: &str) -> Option<Span> {
        self.get(name).map(|(_, s)| *s)
    }

    /// The layer's explicit `name=`, with its span.
    pub fn name(&self) -> Option<(String, Span)> {
        match self.get("name") {
            Some((Value::Str(s), sp)) => Some((s.clone(), *sp)),
            _ => None,
        }
    }
}

/// Matches positional and keyword arguments to the class's specs and checks each value's
/// kind. Returns every problem found.
pub fn bind_args(
    class: &'static LayerClass,
    args: Vec<RawArg>,
    call_span: Span,
) -> Result<Args, Vec<Diagnostic>> {
    let mut map = HashMap::new();
    let mut errors = Vec::new();
    let mut positional = 0usize;
    for (kw, value, span) in args {
        let spec = match &kw {
            None => {
                let spec = class.args.get(positional).filter(|_| positional < class.positional);
                positional += 1;
                match spec {
                    Some(s) => s,
                    None => {
                        let names: Vec<&str> = class.args.iter().map(|a| a.name).collect();
                        errors.push(
                            Diagnostic::error(
                                "SM0201",
                                span,
                                format!(
                                    "`{}` takes at most {} positional argument{}",
                                    class.name,
                                    class.positional,
                                    if class.positional == 1 { "" } else { "s" }
                                ),
                            )
                            .with_label("unexpected positional argument")
                            .with_help(format!(
                                "pass it by name; `{}` accepts: {}",
                                class.name,
                                names.join(", ")
                            )),
                        );
                        continue;
                    }
                }
            }
            Some((name, name_span)) => match class.arg(name) {
                Some(s) => s,
                None if COMMON_IGNORED.contains(&name.as_str()) => continue,
                None => {
                    let names: Vec<&str> = class.args.iter().map(|a| a.name).collect();
                    let mut d = Diagnostic::error(
                        "SM0202",
                        *name_span,
                        format!("`{}` has no argument `{name}`", class.name),
                    )
                    .with_label("unknown argument")
                    .with_note(format!("`{}` accepts: {}", class.name, names.join(", ")));
                    if let Some(c) = closest(name, names.iter().copied()) {
                        d = d.with_help(format!("did you mean `{c}`?"));
                    }
                    errors.push(d);
                    continue;
                }
            },
        };
        if map.contains_key(spec.name) {
            errors.push(
                Diagnostic::error("SM0203", span, format!("argument `{}` given twice", spec.name))
                    .with_label("second value"),
            );
            continue;
        }
        if let Err(d) = check_kind(class, spec.name, spec.kind, &value, span) {
            errors.push(d);
            continue;
        }
        map.insert(spec.name, (value, span));
    }
    for spec in class.args.iter().filter(|s| s.required) {
        if !map.contains_key(spec.name)
            && !errors.iter().any(|e| ["SM0202", "SM0204", "SM0314"].contains(&e.code))
        {
            errors.push(
                Diagnostic::error(
                    "SM0205",
                    call_span,
                    format!("`{}` needs the argument `{}`", class.name, spec.name),
                )
                .with_label(format!("`{}` missing here", spec.name)),
            );
        }
    }
    if errors.is_empty() { Ok(Args { map }) } else { Err(errors) }
}

fn check_kind(
    class: &LayerClass,
    name: &str,
    kind: ArgKind,
    value: &Value,
    span: Span,
) -> Result<(), Diagnostic> {
    let bad = |expected: &str| {
        Diagnostic::error(
            "SM0204",
            span,
            format!("`{}` argument `{name}` must be {expected}, found {}", class.name, value.shown()),
        )
        .with_label(format!("expected {expected}"))
    };
    match (kind, value) {
        (_, Value::Poison) => Err(bad("a valid value")),
        (ArgKind::Ignored, _) => Ok(()),
        (ArgKind::PosInt | ArgKind::Dim | ArgKind::Pair, Value::Int(i)) if *i > MAX_SIZE as i64 => {
            Err(too_large(span, *i))
        }
        (ArgKind::PosInt, Value::Int(i)) if *i > 0 => Ok(()),
        (ArgKind::PosInt, _) => Err(bad("a positive integer")),
        (ArgKind::Int, Value::Int(_)) => Ok(()),
        (ArgKind::Int, _) => Err(bad("an integer")),
        (ArgKind::Float, Value::Int(_) | Value::Float(_)) => Ok(()),
        (ArgKind::Float, _) => Err(bad("a number")),
        (ArgKind::NonNegative, Value::Int(i)) if *i >= 0 => Ok(()),
        (ArgKind::NonNegative, Value::Float(f)) if *f >= 0.0 && f.is_finite() => Ok(()),
        (ArgKind::NonNegative, _) => Err(bad("a number that is not negative")),
        (ArgKind::Fraction, Value::Int(0 | 1)) => Ok(()),
        (ArgKind::Fraction, Value::Float(f)) if (0.0..=1.0).contains(f) => Ok(()),
        (ArgKind::Fraction, _) => Err(bad("a number in [0, 1]")),
        (ArgKind::Rate, Value::Float(f)) if (0.0..1.0).contains(f) => Ok(()),
        (ArgKind::Rate, Value::Int(0)) => Ok(()),
        (ArgKind::Rate, _) => Err(bad("a rate in [0, 1)")),
        (ArgKind::Bool, Value::Bool(_)) => Ok(()),
        (ArgKind::Bool, _) => Err(bad("`true` or `false`")),
        (ArgKind::Activation, Value::None) => Ok(()),
        (ArgKind::Activation, Value::Str(s)) => match Activation::from_name(s) {
            Some(_) => Ok(()),
            None => {
                let names: Vec<&str> = Activation::ALL.iter().flat_map(|(_, n)| n.iter().copied()).collect();
                let mut d = Diagnostic::error("SM0206", span, format!("unknown activation \"{s}\""))
                    .with_label("not a Keras activation")
                    .with_note(format!("known activations: {}", names.join(", ")));
                if let Some(c) = closest(s, names.iter().copied()) {
                    d = d.with_help(format!("did you mean \"{c}\"?"));
                }
                Err(d)
            }
        },
        (ArgKind::Activation, _) => Err(bad("an activation name such as \"tanh\"")),
        (ArgKind::Dim, Value::Int(i)) if *i > 0 => Ok(()),
        (ArgKind::Dim, Value::Dim(_)) => Ok(()),
        (ArgKind::Dim, _) => Err(bad("a positive integer or a dimension like `T`")),
        (ArgKind::Pair, Value::Int(i)) if *i >= 0 => Ok(()),
        (ArgKind::Pair, Value::Tuple(v) | Value::List(v))
            if v.len() == 2
                && v.iter().all(|x| matches!(x, Value::Int(i) if (0..=MAX_SIZE as i64).contains(i))) =>
        {
            Ok(())
        }
        (ArgKind::Pair, _) => Err(bad("a non-negative integer or a pair `(left, right)`")),
        (ArgKind::Layer, Value::Layer(_) | Value::Model { .. }) => Ok(()),
        (ArgKind::Layer, Value::Class(c)) => {
            Err(bad("a layer").with_help(format!("construct it with its arguments, e.g. `{}(...)`", c.name)))
        }
        (ArgKind::Layer, _) => Err(bad("a layer")),
        (ArgKind::MergeMode, Value::None) => Ok(()),
        (ArgKind::MergeMode, Value::Str(s)) if ["concat", "sum", "mul", "ave"].contains(&s.as_str()) => {
            Ok(())
        }
        (ArgKind::MergeMode, _) => Err(bad("one of \"concat\", \"sum\", \"mul\", \"ave\" or None")),
        (ArgKind::Choice(options), Value::Str(s)) if options.contains(&s.as_str()) => Ok(()),
        (ArgKind::Choice(options), _) => {
            let quoted: Vec<String> = options.iter().map(|o| format!("\"{o}\"")).collect();
            let d = bad(&format!("one of {}", quoted.join(", ")));
            match value {
                Value::Str(s) => Err(match closest(s, options.iter().copied()) {
                    Some(c) => d.with_help(format!("did you mean \"{c}\"?")),
                    None => d,
                }),
                _ => Err(d),
            }
        }
        (ArgKind::Ints | ArgKind::OptInts, Value::Tuple(v) | Value::List(v))
            if v.iter().all(|x| matches!(x, Value::Int(i) if i.unsigned_abs() <= MAX_SIZE as u64)) =>
        {
            Ok(())
        }
        (ArgKind::OptInts, Value::None) => Ok(()),
        (ArgKind::OptInts, Value::Int(i)) if i.unsigned_abs() <= MAX_SIZE as u64 => Ok(()),
        (ArgKind::Ints, _) => Err(bad("a tuple of integers such as `(2, 1)`")),
        (ArgKind::OptInts, _) => Err(bad("an integer, a tuple of integers or None")),
        (ArgKind::OptFloat, Value::None | Value::Int(_) | Value::Float(_)) => Ok(()),
        (ArgKind::OptFloat, _) => Err(bad("a number or None")),
    }
}

/// The largest size of any dimension, layer width or count (2³¹ - 1): every product of two
/// of them fits in 64 bits, so shape arithmetic cannot wrap.
pub const MAX_SIZE: usize = (1 << 31) - 1;

/// The error for a size above [`MAX_SIZE`].
pub(crate) fn too_large(span: Span, n: impl std::fmt::Display) -> Diagnostic {
    Diagnostic::error("SM0314", span, format!("{n} is larger than any size seqmodel supports ({MAX_SIZE})"))
        .with_label("too large")
}

/// Builds the typed configuration of a layer from its bound arguments; an error when values
/// that each fit their argument do not fit together (a described layer's check).
pub fn build_cfg(class: &'static LayerClass, args: &Args, span: Span) -> Result<LayerCfg, Diagnostic> {
    let rnn = |cell: CellKind| RnnAttrs {
        cell,
        units: args.int("units").unwrap_or(1) as usize,
        input_dim: 0,
        activation: args.act("activation", Activation::Tanh),
        recurrent_activation: args.act("recurrent_activation", Activation::Sigmoid),
        use_bias: args.bool("use_bias", true),
        return_sequences: args.bool("return_sequences", false),
        return_state: args.bool("return_state", false),
        go_backwards: args.bool("go_backwards", false),
        stateful: args.bool("stateful", false),
        unroll: args.bool("unroll", false),
        dropout: args.float("dropout", 0.0) as f32,
        recurrent_dropout: args.float("recurrent_dropout", 0.0) as f32,
    };
    Ok(match class.kind {
        LayerKind::Dense => LayerCfg::Dense {
            units: args.int("units").unwrap_or(1) as usize,
            activation: args.act("activation", Activation::Linear),
            use_bias: args.bool("use_bias", true),
        },
        LayerKind::Activation => LayerCfg::Activation(args.act("activation", Activation::Linear)),
        LayerKind::Rnn(RnnClass::Lstm) => LayerCfg::Rnn(rnn(CellKind::Lstm)),
        LayerKind::Rnn(RnnClass::Gru) => {
            LayerCfg::Rnn(rnn(CellKind::Gru { reset_after: args.bool("reset_after", true) }))
        }
        LayerKind::Rnn(RnnClass::SimpleRnn) => LayerCfg::Rnn(rnn(CellKind::SimpleRnn)),
        LayerKind::Bidirectional => {
            let inner = match args.get("layer") {
                Some((Value::Layer(i), _)) => *i,
                _ => usize::MAX,
            };
            let merge = match args.get("merge_mode") {
                Some((Value::None, _)) => MergeMode::None,
                Some((Value::Str(s), _)) => match s.as_str() {
                    "sum" => MergeMode::Sum,
                    "mul" => MergeMode::Mul,
                    "ave" => MergeMode::Ave,
                    _ => MergeMode::Concat,
                },
                _ => MergeMode::Concat,
            };
            LayerCfg::Bidirectional { inner, merge }
        }
        LayerKind::RepeatVector => LayerCfg::RepeatVector(match args.get("n") {
            Some((Value::Dim(d), _)) => *d,
            Some((Value::Int(i), _)) => D::Fixed(*i as usize),
            _ => D::Fixed(1),
        }),
        LayerKind::TimeDistributed => {
            LayerCfg::TimeDistributed(Box::new(args.get("layer").map_or(Value::Poison, |(v, _)| v.clone())))
        }
        LayerKind::Embedding => LayerCfg::Embedding {
            input_dim: args.int("input_dim").unwrap_or(1) as usize,
            output_dim: args.int("output_dim").unwrap_or(1) as usize,
            mask_zero: args.bool("mask_zero", false),
        },
        LayerKind::Masking => LayerCfg::Masking(args.float("mask_value", 0.0) as f32),
        LayerKind::Cropping1D => {
            let (l, r) = args.pair("cropping", (1, 1));
            LayerCfg::Cropping(l, r)
        }
        LayerKind::ZeroPadding1D => {
            let (l, r) = args.pair("padding", (1, 1));
            LayerCfg::Padding(l, r)
        }
        LayerKind::Dropout => LayerCfg::Dropout(args.float("rate", 0.0) as f32),
        LayerKind::Concatenate => {
            LayerCfg::Merge { class: class.name, kind: None, axis: args.int("axis").unwrap_or(-1) }
        }
        LayerKind::Merge(kind) => LayerCfg::Merge { class: class.name, kind: Some(kind), axis: -1 },
        LayerKind::Described => LayerCfg::Layer(super::described::configure(class, args, span)?),
    })
}
