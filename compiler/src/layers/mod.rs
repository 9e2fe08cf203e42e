//! The layer catalogue and each layer's shape rule. One file per family:
//! [`basic`] (Dense, Activation, Dropout, Masking, Embedding), [`rnn`] (LSTM, GRU,
//! SimpleRNN, Bidirectional), [`time`] (RepeatVector, Cropping1D, ZeroPadding1D, slicing,
//! TimeDistributed), [`merge`] (Concatenate, Add, ...); and the layers described in the IR
//! (`seqmodel_ir::LayerOp`), each family's classes, configuration and rule in one file
//! (`conv`, `norm`, `reshape`, `pointwise`, `noise`) dispatched by `described`.

mod attention;
pub mod basic;
mod catalog;
mod config;
mod conv;
mod described;
pub mod merge;
mod noise;
mod norm;
mod ops;
mod pointwise;
mod reshape;
pub mod rnn;
pub mod time;

pub use catalog::{ArgKind, ArgSpec, CLASSES, COMMON_IGNORED, LayerClass, class, classes};
pub(crate) use config::too_large;
pub use config::{Args, LayerCfg, MAX_SIZE, RawArg, bind_args, build_cfg};
pub(crate) use ops::set_mask;

use seqmodel_grammar::Span;

use crate::check::{Elab, ITy, Scope, Tensor, Value, flatten_tensors};
use crate::diagnostic::Diagnostic;
use crate::dims::D;

/// Checks a configuration at construction time (before any input is known).
pub(crate) fn validate(
    cx: &mut Elab<'_>,
    cfg: &LayerCfg,
    class: &LayerClass,
    span: Span,
) -> Result<(), Diagnostic> {
    match cfg {
        LayerCfg::Bidirectional { inner, .. } => match cx.layers.get(*inner).map(|l| &l.cfg) {
            Some(LayerCfg::Rnn(_)) => Ok(()),
            _ => Err(Diagnostic::error(
                "SM0207",
                span,
                "`Bidirectional` wraps a recurrent layer (LSTM, GRU or SimpleRNN)",
            )
            .with_label("not a recurrent layer inside")),
        },
        LayerCfg::TimeDistributed(inner) => match inner.as_ref() {
            Value::Layer(_) | Value::Model { .. } => Ok(()),
            _ => Err(Diagnostic::error("SM0207", span, format!("`{}` wraps a layer or a model", class.name))
                .with_label("nothing to wrap")),
        },
        _ => Ok(()),
    }
}

/// Applies layer instance `id` to the value `x`.
pub(crate) fn apply(
    cx: &mut Elab<'_>,
    scope: &mut Scope,
    id: usize,
    x: Value,
    layer_span: Span,
    initial_state: Option<(Value, Span)>,
    span: Span,
) -> Value {
    let inst = cx.layers[id].clone();
    if let (Some((_, s)), false) = (&initial_state, matches!(inst.cfg, LayerCfg::Rnn(_))) {
        cx.emit(
            Diagnostic::error("SM0104", *s, format!("`{}` takes no `initial_state`", inst.class))
                .with_label("only recurrent layers take an initial state"),
        );
        return Value::Poison;
    }
    if let LayerCfg::Merge { .. } = inst.cfg {
        return merge::apply(cx, scope, &inst, x, layer_span, span);
    }
    if let LayerCfg::Layer(op) = &inst.cfg {
        return described::apply(cx, scope, id, op.clone(), x, span);
    }
    let Some(t) = single(cx, &x, inst.class, span) else { return Value::Poison };
    match &inst.cfg {
        LayerCfg::Dense { .. }
        | LayerCfg::Activation(_)
        | LayerCfg::Dropout(_)
        | LayerCfg::Masking(_)
        | LayerCfg::Embedding { .. } => basic::apply(cx, scope, id, &t, span),
        LayerCfg::Rnn(cfg) => rnn::apply_rnn(cx, scope, id, *cfg, &t, initial_state, span),
        LayerCfg::Bidirectional { inner, merge } => {
            rnn::apply_bidirectional(cx, scope, id, *inner, *merge, &t, span)
        }
        LayerCfg::RepeatVector(n) => time::repeat(cx, scope, &inst, *n, &t, span),
        LayerCfg::Cropping(l, r) => time::crop(cx, scope, &inst, *l, *r, &t, span),
        LayerCfg::Padding(l, r) => time::pad(cx, scope, &inst, *l, *r, &t, span),
        LayerCfg::TimeDistributed(inner) => {
            time::distribute(cx, scope, &inst, (**inner).clone(), layer_span, &t, span)
        }
        LayerCfg::Merge { .. } => unreachable!("handled above"),
        LayerCfg::Layer(_) => unreachable!("handled above"),
    }
}

/// The one tensor of `x`, or an error.
pub(crate) fn single(cx: &mut Elab<'_>, x: &Value, who: &str, span: Span) -> Option<Tensor> {
    match flatten_tensors(x) {
        Some(mut v) if v.len() == 1 => v.pop(),
        Some(v) => {
            cx.emit(
                Diagnostic::error("SM0301", span, format!("`{who}` takes one tensor, found {}", v.len()))
                    .with_label("several tensors given")
                    .with_help("select one output, e.g. `out, h, c = LSTM(.., return_state=true)(x)`"),
            );
            None
        }
        None => {
            cx.emit(
                Diagnostic::error(
                    "SM0301",
                    span,
                    format!("`{who}` needs a tensor input, found {}", x.describe()),
                )
                .with_label("not a tensor"),
            );
            None
        }
    }
}

/// The size of the last dimension if it is fixed, or an error saying weights need it.
pub(crate) fn fixed_features(cx: &mut Elab<'_>, t: &Tensor, who: &str, span: Span) -> Option<usize> {
    let last = *t.ty.dims.last()?;
    match cx.dims.resolve(last) {
        D::Fixed(n) => Some(n),
        d => {
            let shown = cx.dims.show(d);
            let mut diag = Diagnostic::error(
                "SM0303",
                span,
                format!(
                    "`{who}` needs a fixed number of input features, but the last dimension is `{shown}`"
                ),
            )
            .with_label("input size unknown at compile time")
            .with_note("the layer's weights are sized by its input features");
            if let Some(decl) = t.origin.declared {
                diag = diag
                    .with_secondary(decl, "declared here")
                    .with_help("give the feature dimension as a number");
            }
            cx.emit(diag);
            None
        }
    }
}

/// Requires element type f32.
pub(crate) fn need_float(cx: &mut Elab<'_>, t: &Tensor, who: &str, span: Span) -> bool {
    if t.ty.dtype == seqmodel_ir::DType::F32 {
        return true;
    }
    let shown = cx.show(&t.ty);
    let (found, label, help) = if t.ty.dtype == seqmodel_ir::DType::Bool {
        (
            "booleans",
            "boolean input",
            "a mask is passed as a call's `mask=`; as numbers it is `Cast(\"float32\")`",
        )
    } else {
        ("integer tokens", "integer input", "map token ids to vectors first: `Embedding(vocab, dim)`")
    };
    cx.emit(
        Diagnostic::error("SM0304", span, format!("`{who}` needs float input, found {found} {shown}"))
            .with_label(label)
            .with_secondary(t.origin.span, format!("{} is {shown}", t.origin.what))
            .with_help(help),
    );
    false
}

/// Records the first application's input size of a layer with weights; a second application
/// with another size is an error (the weights are shared).
pub(crate) fn build_input(cx: &mut Elab<'_>, id: usize, features: usize, span: Span) -> bool {
    match cx.layers[id].built_input {
        Some((n, first)) if n != features => {
            let name = cx.layers[id].name.clone();
            cx.emit(
                Diagnostic::error(
                    "SM0308",
                    span,
                    format!("layer `{name}` was built for {n} input features, this input has {features}"),
                )
                .with_label(format!("{features} features"))
                .with_secondary(first, format!("first applied here to {n} features"))
                .with_note(
                    "calling one layer instance twice shares its weights, so the input sizes must agree",
                ),
            );
            false
        }
        Some(_) => true,
        None => {
            cx.layers[id].built_input = Some((features, span));
            true
        }
    }
}

/// The inference type with the last dimension replaced.
pub(crate) fn with_last(ty: &ITy, last: D) -> ITy {
    let mut dims = ty.dims.clone();
    if let Some(l) = dims.last_mut() {
        *l = last;
    }
    ITy { dims, dtype: ty.dtype }
}
