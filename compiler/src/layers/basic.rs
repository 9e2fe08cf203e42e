//! Shape rules of Dense, Activation, Dropout, Masking and Embedding.

use seqmodel_grammar::Span;
use seqmodel_ir::{DType, Op};

use super::{LayerCfg, build_input, fixed_features, need_float, with_last};
use crate::check::{Elab, ITy, Scope, Tensor, Value};
use crate::diagnostic::Diagnostic;
use crate::dims::D;

/// Applies one of the element-wise or per-vector layers.
pub(crate) fn apply(cx: &mut Elab<'_>, scope: &mut Scope, id: usize, t: &Tensor, span: Span) -> Value {
    let inst = cx.layers[id].clone();
    let what = format!("{} `{}`", inst.class, inst.name);
    let unary = |cx: &mut Elab<'_>, op: Op, weights: Option<String>, ty: ITy| {
        crate::check::expr_unary(cx, scope, op, &inst.name, weights, t, ty, span, what.clone())
    };
    match inst.cfg {
        LayerCfg::Dense { units, activation, use_bias } => {
            if !need_float(cx, t, inst.class, span) {
                return Value::Poison;
            }
            if t.ty.dims.is_empty() {
                return Value::Poison;
            }
            let Some(input_dim) = fixed_features(cx, t, inst.class, span) else { return Value::Poison };
            if !build_input(cx, id, input_dim, span) {
                return Value::Poison;
            }
            let ty = with_last(&t.ty, D::Fixed(units));
            unary(cx, Op::Dense { units, input_dim, activation, use_bias }, Some(inst.key.clone()), ty)
        }
        LayerCfg::Activation(a) => {
            if !need_float(cx, t, inst.class, span) {
                return Value::Poison;
            }
            unary(cx, Op::Activation(a), None, t.ty.clone())
        }
        LayerCfg::Dropout(rate) => unary(cx, Op::Dropout { rate }, None, t.ty.clone()),
        LayerCfg::Masking(mask_value) => {
            if !need_float(cx, t, inst.class, span) {
                return Value::Poison;
            }
            if t.ty.dims.len() < 2 {
                let shown = cx.show(&t.ty);
                cx.emit(
                    Diagnostic::error(
                        "SM0302",
                        span,
                        format!("`Masking` needs a sequence [T, features], found {shown}"),
                    )
                    .with_label("no time dimension")
                    .with_secondary(t.origin.span, format!("{} is {shown}", t.origin.what)),
                );
                return Value::Poison;
            }
            unary(cx, Op::Masking { mask_value }, None, t.ty.clone())
        }
        LayerCfg::Embedding { input_dim, output_dim, mask_zero } => {
            if t.ty.dtype != DType::I32 {
                let shown = cx.show(&t.ty);
                let mut d = Diagnostic::error(
                    "SM0304",
                    span,
                    format!("`Embedding` needs integer token ids, found float {shown}"),
                )
                .with_label("float input")
                .with_secondary(t.origin.span, format!("{} is {shown}", t.origin.what));
                if let Some(decl) = t.origin.declared {
                    d = d
                        .with_secondary(decl, "declared here")
                        .with_help("declare token inputs with `of i32`, e.g. `words: [T] of i32`");
                }
                cx.emit(d);
                return Value::Poison;
            }
            let mut dims = t.ty.dims.clone();
            dims.push(D::Fixed(output_dim));
            let ty = ITy { dims, dtype: DType::F32 };
            unary(cx, Op::Embedding { input_dim, output_dim, mask_zero }, Some(inst.key.clone()), ty)
        }
        _ => unreachable!("basic::apply called for another layer"),
    }
}
