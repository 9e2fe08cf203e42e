//! Shape rules of the merge layers: Concatenate, Add, Subtract, Divide, Multiply, Average,
//! Maximum, Minimum (the element-wise ones broadcasting sizes of 1).

use seqmodel_grammar::Span;
use seqmodel_ir::{DType, MergeKind, Op, Port};

use super::LayerCfg;
use crate::check::{Elab, ITy, LayerInst, Origin, Scope, Tensor, Value, flatten_tensors};
use crate::diagnostic::Diagnostic;
use crate::dims::D;

/// Applies a merge layer to a list of tensors.
pub(crate) fn apply(
    cx: &mut Elab<'_>,
    scope: &mut Scope,
    inst: &LayerInst,
    x: Value,
    _layer_span: Span,
    span: Span,
) -> Value {
    let LayerCfg::Merge { class, kind, axis } = inst.cfg else { return Value::Poison };
    let Some(ts) = flatten_tensors(&x) else {
        cx.emit(
            Diagnostic::error(
                "SM0301",
                span,
                format!("`{class}` merges a list of tensors, found {}", x.describe()),
            )
            .with_label("not tensors"),
        );
        return Value::Poison;
    };
    let two = matches!(kind, Some(MergeKind::Subtract | MergeKind::Divide));
    let arity_ok = if two { ts.len() == 2 } else { ts.len() >= 2 };
    if !arity_ok {
        let want = if two { "exactly 2" } else { "at least 2" };
        cx.emit(
            Diagnostic::error("SM0307", span, format!("`{class}` merges {want} tensors, {} given", ts.len()))
                .with_label("wrong number of inputs")
                .with_help(format!("call it on a list: `{class}()([a, b])`")),
        );
        return Value::Poison;
    }
    for t in &ts {
        if t.ty.dtype != DType::F32 {
            cx.emit(
                Diagnostic::error("SM0304", span, format!("`{class}` needs float inputs"))
                    .with_secondary(t.origin.span, "integer tensor"),
            );
            return Value::Poison;
        }
    }
    let (kind, ty) = if let Some(kind) = kind {
        match broadcast_type(cx, &ts) {
            Ok(ty) => (kind, ty),
            Err(t) => {
                let (a, b) = (cx.show(&ts[0].ty), cx.show(&t.ty));
                let d = Diagnostic::error(
                    "SM0309",
                    span,
                    format!("`{class}` needs inputs of one shape (or of size 1 where they differ), found {a} and {b}"),
                )
                .with_label("shapes differ")
                .with_secondary(ts[0].origin.span, format!("{} is {a}", ts[0].origin.what))
                .with_secondary(t.origin.span, format!("{} is {b}", t.origin.what));
                let d = cx.with_dim_help(d);
                cx.emit(d);
                return Value::Poison;
            }
        }
    } else {
        let rank = ts[0].ty.dims.len() as i64;
        let ax = if axis < 0 { rank + axis } else { axis - 1 };
        if axis == 0 || ax < 0 || ax >= rank {
            cx.emit(
                Diagnostic::error(
                    "SM0310",
                    span,
                    format!(
                        "`Concatenate` axis {axis} is out of range for rank {} tensors (plus batch)",
                        rank
                    ),
                )
                .with_label("bad axis")
                .with_note("Keras counts the batch axis: -1 is the last axis, 1 the first after the batch"),
            );
            return Value::Poison;
        }
        let ax = ax as usize;
        match concat_type(cx, &ts, ax, span) {
            Some(ty) => (MergeKind::Concatenate { axis: ax }, ty),
            None => return Value::Poison,
        }
    };
    let ports: Vec<Port> = ts.iter().map(|t| t.port).collect();
    let n = cx.add_node(Op::Merge(kind), &inst.name, &scope.path, None, &ports, vec![ty.clone()], span);
    Value::Tensor(Tensor {
        port: Port { node: n, port: 0 },
        ty,
        origin: Origin {
            span,
            what: format!("{class} `{}`", inst.name),
            rnn_last_only: false,
            rnn_sequence: false,
            declared: None,
        },
    })
}

/// The type of an element-wise merge of `ts` (one rank), broadcasting as Keras does: along
/// each axis, the sizes that are not 1 are one size, which the output takes. The tensor that
/// does not fit is the error.
fn broadcast_type(cx: &mut Elab<'_>, ts: &[Tensor]) -> Result<ITy, Tensor> {
    let rank = ts[0].ty.dims.len();
    if let Some(t) = ts.iter().find(|t| t.ty.dims.len() != rank) {
        return Err(t.clone());
    }
    // On a copy first, so a failure leaves no partial bindings.
    let mut trial = cx.dims.clone();
    let mut dims = Vec::with_capacity(rank);
    for i in 0..rank {
        let mut out: Option<D> = None;
        for t in ts {
            let d = t.ty.dims[i];
            if trial.resolve(d) == D::Fixed(1) {
                continue;
            }
            match out {
                None => out = Some(d),
                Some(o) => {
                    if let Err(e) = trial.unify(d, o) {
                        cx.dim_conflict = Some(e);
                        return Err(t.clone());
                    }
                }
            }
        }
        dims.push(out.unwrap_or(D::Fixed(1)));
    }
    cx.dims = trial;
    Ok(ITy { dims, dtype: DType::F32 })
}

fn concat_type(cx: &mut Elab<'_>, ts: &[Tensor], ax: usize, span: Span) -> Option<ITy> {
    let rank = ts[0].ty.dims.len();
    let mut fixed = 0usize;
    let mut var: Option<(usize, i64)> = None;
    for t in ts {
        if t.ty.dims.len() != rank {
            let a = cx.show(&ts[0].ty);
            let b = cx.show(&t.ty);
            cx.emit(
                Diagnostic::error(
                    "SM0311",
                    span,
                    format!("`Concatenate` needs inputs of one rank, found {a} and {b}"),
                )
                .with_label("ranks differ")
                .with_secondary(t.origin.span, format!("{} is {b}", t.origin.what)),
            );
            return None;
        }
        for i in 0..rank {
            if i == ax {
                continue;
            }
            if cx.dims.unify(t.ty.dims[i], ts[0].ty.dims[i]).is_err() {
                let a = cx.show(&ts[0].ty);
                let b = cx.show(&t.ty);
                cx.emit(
                    Diagnostic::error(
                        "SM0311",
                        span,
                        format!(
                            "`Concatenate` along axis {} needs the other dimensions equal, found {a} and {b}",
                            ax + 1
                        ),
                    )
                    .with_label("shapes differ")
                    .with_secondary(ts[0].origin.span, format!("{} is {a}", ts[0].origin.what))
                    .with_secondary(t.origin.span, format!("{} is {b}", t.origin.what)),
                );
                return None;
            }
        }
        match cx.dims.resolve(t.ty.dims[ax]) {
            D::Fixed(n) => fixed += n,
            D::Var(v, o) if var.is_none() => var = Some((v, o)),
            _ => {
                cx.emit(
                    Diagnostic::error(
                        "SM0312",
                        span,
                        "`Concatenate` cannot add two sizes that are both known only at run time",
                    )
                    .with_label("sum of two symbolic dimensions"),
                );
                return None;
            }
        }
    }
    let mut dims = ts[0].ty.dims.clone();
    dims[ax] = match var {
        None => D::Fixed(fixed),
        Some((v, o)) => D::Var(v, o + fixed as i64),
    };
    Some(ITy { dims, dtype: DType::F32 })
}
