//! The compiler side of the layers described in the IR (`seqmodel_ir::LayerOp`): each
//! family file implements [`Rule`] (its classes with Keras's arguments, its configuration
//! and its shape rule) for its attribute types, and the dispatch below is generated from
//! the IR's list, so a described layer without a rule does not compile.

use seqmodel_grammar::Span;
use seqmodel_ir::{LayerOp, Op, Padding, Port};

use super::{Args, LayerClass, build_input, fixed_features, need_float};
use crate::check::{Elab, ITy, Origin, Scope, Tensor, Value, expr_unary, flatten_tensors};
use crate::diagnostic::Diagnostic;
use crate::dims::D;

/// The checking side of one described layer.
pub(crate) trait Rule: Sized {
    /// The classes this attribute type serves, with Keras's arguments.
    const CLASSES: &'static [LayerClass];

    /// The attributes from the bound constructor arguments of `class` (input-dependent
    /// attributes 0), or an error (see [`conflict`]) when the values do not fit together.
    fn configure(class: &'static LayerClass, args: &Args, span: Span) -> Result<Self, Diagnostic>;

    /// Checks the input `t`, fills the input-dependent attributes and returns the output
    /// type; `None` after emitting an error at `span`.
    fn infer(&mut self, cx: &mut Elab<'_>, t: &Tensor, span: Span) -> Option<ITy>;

    /// [`Rule::infer`] for a layer called on a list of tensors (attention's query, value and
    /// key); by default the layer takes exactly one.
    fn infer_many(&mut self, cx: &mut Elab<'_>, ts: &[Tensor], span: Span) -> Option<ITy> {
        let [t] = ts else {
            let who = <Self as Rule>::CLASSES.first().map_or("layer", |c| c.name);
            cx.emit(
                Diagnostic::error("SM0301", span, format!("`{who}` takes one tensor, found {}", ts.len()))
                    .with_label("several tensors given"),
            );
            return None;
        };
        self.infer(cx, t, span)
    }

    /// The types of the outputs after the first, once [`Rule::infer_many`] has checked the
    /// inputs `ts` (attention's weights with `return_attention_scores`); none by default.
    fn more_outputs(&self, _ts: &[Tensor]) -> Vec<ITy> {
        Vec::new()
    }
}

macro_rules! dispatch {
    ($($variant:ident($attrs:ty)),* $(,)?) => {
        /// The described classes, one list per attribute type.
        pub(crate) static CLASSES: &[&[LayerClass]] = &[$(<$attrs as Rule>::CLASSES),*];

        /// The attributes of a described class from its arguments.
        pub(crate) fn configure(class: &'static LayerClass, args: &Args, span: Span) -> Result<LayerOp, Diagnostic> {
            $(if <$attrs as Rule>::CLASSES.iter().any(|c| c.name == class.name) {
                return <$attrs as Rule>::configure(class, args, span).map(LayerOp::$variant);
            })*
            unreachable!("`{}` is not a described class", class.name)
        }

        fn infer(op: &mut LayerOp, cx: &mut Elab<'_>, ts: &[Tensor], span: Span) -> Option<ITy> {
            match op {
                $(LayerOp::$variant(a) => a.infer_many(cx, ts, span),)*
            }
        }

        fn more_outputs(op: &LayerOp, ts: &[Tensor]) -> Vec<ITy> {
            match op {
                $(LayerOp::$variant(a) => a.more_outputs(ts),)*
            }
        }
    };
}
seqmodel_ir::for_each_layer_op!(dispatch);

/// Applies described layer instance `id` (configured as `op`) to `x`: one tensor, or a list
/// for the layers that take several.
pub(crate) fn apply(
    cx: &mut Elab<'_>,
    scope: &mut Scope,
    id: usize,
    mut op: LayerOp,
    x: Value,
    span: Span,
) -> Value {
    let inst = cx.layers[id].clone();
    let Some(ts) = flatten_tensors(&x) else {
        let msg = format!("`{}` needs a tensor input, found {}", inst.class, x.describe());
        cx.emit(Diagnostic::error("SM0301", span, msg).with_label("not a tensor"));
        return Value::Poison;
    };
    if ts.is_empty() {
        let msg = format!("`{}` needs a tensor input, found an empty list", inst.class);
        cx.emit(Diagnostic::error("SM0301", span, msg).with_label("no tensor"));
        return Value::Poison;
    }
    let Some(ty) = infer(&mut op, cx, &ts, span) else { return Value::Poison };
    let t = &ts[0];
    let weighted = !op.weights().is_empty();
    if weighted {
        // Shared weights: a second application must see the same input features.
        let features = t.ty.dims.last().map(|d| cx.dims.resolve(*d));
        if let Some(D::Fixed(n)) = features
            && !build_input(cx, id, n, span)
        {
            return Value::Poison;
        }
    }
    let what = format!("{} `{}`", inst.class, inst.name);
    let weights = weighted.then(|| inst.key.clone());
    let more = more_outputs(&op, &ts);
    if ts.len() == 1 && more.is_empty() {
        return expr_unary(cx, scope, Op::Layer(op), &inst.name, weights, t, ty, span, what);
    }
    let ports: Vec<Port> = ts.iter().map(|t| t.port).collect();
    let types: Vec<ITy> = std::iter::once(ty).chain(more).collect();
    let n = cx.add_node(Op::Layer(op), &inst.name, &scope.path, weights, &ports, types.clone(), span);
    let origin = Origin { span, what, rnn_last_only: false, rnn_sequence: false, declared: None };
    let mut outputs: Vec<Value> = types
        .into_iter()
        .enumerate()
        .map(|(port, ty)| Value::Tensor(Tensor { port: Port { node: n, port }, ty, origin: origin.clone() }))
        .collect();
    if outputs.len() == 1 { outputs.remove(0) } else { Value::Tuple(outputs) }
}

/// A described class taking at most one positional argument.
pub(crate) const fn class1(
    name: &'static str,
    snake: &'static str,
    args: &'static [super::ArgSpec],
) -> LayerClass {
    LayerClass { name, kind: super::catalog::LayerKind::Described, snake, args, positional: 1 }
}

/// The fixed feature count of a float input, or an error.
pub(crate) fn float_features(cx: &mut Elab<'_>, t: &Tensor, who: &str, span: Span) -> Option<usize> {
    if !need_float(cx, t, who, span) || t.ty.dims.is_empty() {
        return None;
    }
    fixed_features(cx, t, who, span)
}

/// Requires a sequence `[T, C]` (exactly two axes besides the batch).
pub(crate) fn need_sequence(cx: &mut Elab<'_>, t: &Tensor, who: &str, span: Span) -> bool {
    if t.ty.dims.len() == 2 {
        return true;
    }
    let shown = cx.show(&t.ty);
    let mut d =
        Diagnostic::error("SM0302", span, format!("`{who}` needs a sequence [T, channels], found {shown}"))
            .with_label(format!("this gets {shown}"))
            .with_secondary(t.origin.span, format!("{} is {shown}", t.origin.what));
    if t.origin.rnn_last_only {
        d = d.with_help("add `return_sequences=true` to that layer to pass on every step");
    }
    cx.emit(d);
    false
}

/// The output length of windows spanning `span_len` steps every `strides` steps over the
/// time dimension of `t`, or an error for a fixed length too short for the window. Over a
/// length known only at run time, a stride gives a derived dimension named by its formula
/// (`(T-4)/2`), which no later layer can take for another length.
pub(crate) fn windowed(
    cx: &mut Elab<'_>,
    t: &Tensor,
    (span_len, strides, padding): (usize, usize, Padding),
    who: &str,
    span: Span,
) -> Option<D> {
    match cx.dims.resolve(t.ty.dims[0]) {
        D::Fixed(n) => match padding.window(n, span_len, strides) {
            Some((out, _)) => Some(D::Fixed(out)),
            None => {
                let shown = cx.show(&t.ty);
                cx.emit(
                    Diagnostic::error(
                        "SM0315",
                        span,
                        format!("`{who}` needs at least {span_len} steps, the input has {n}"),
                    )
                    .with_label(format!("a window of {span_len} steps"))
                    .with_secondary(t.origin.span, format!("{} is {shown}", t.origin.what))
                    .with_help("use `padding=\"same\"` or `\"causal\"`, a smaller window, or a longer input"),
                );
                None
            }
        },
        d if strides == 1 => Some(match padding {
            Padding::Valid => d.plus(-(span_len as i64 - 1)),
            Padding::Same | Padding::Causal => d,
        }),
        // ⌊(L - span) / s⌋ + 1 = ⌊(L - span + s) / s⌋ (valid); ⌈L / s⌉ = ⌊(L + s - 1) / s⌋
        // (same, and causal, whose front padding is span - 1).
        d => {
            let s = strides as i64;
            let add = match padding {
                Padding::Valid => s - span_len as i64,
                Padding::Same | Padding::Causal => s - 1,
            };
            Some(cx.dims.derived(d, add, strides))
        }
    }
}

/// The error for argument values that do not fit together, at argument `name` (or at the
/// call when it was not written).
pub(crate) fn conflict(args: &Args, name: &str, call: Span, msg: String, label: &str) -> Diagnostic {
    Diagnostic::error("SM0208", args.span(name).unwrap_or(call), msg).with_label(label.to_string())
}
