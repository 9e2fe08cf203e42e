//! Shape rules along the time axis: RepeatVector, Cropping1D, ZeroPadding1D, slicing and
//! stepping (`x[-3:]`, `x[-1]`), TimeDistributed.

use seqmodel_grammar::{Span, ast::IndexKind};
use seqmodel_ir::{Op, Port};

use crate::check::{Elab, ITy, LayerInst, Origin, Scope, Tensor, Value, expr_unary, flatten_tensors};
use crate::diagnostic::Diagnostic;
use crate::dims::D;

fn need_time(cx: &mut Elab<'_>, t: &Tensor, who: &str, span: Span) -> bool {
    if t.ty.dims.len() >= 2 {
        return true;
    }
    let shown = cx.show(&t.ty);
    let mut d = Diagnostic::error("SM0302", span, format!("{who} needs a sequence [T, ...], found {shown}"))
        .with_label("no time dimension")
        .with_secondary(t.origin.span, format!("{} is {shown}", t.origin.what));
    if t.origin.rnn_last_only {
        d = d.with_help("add `return_sequences=true` to that layer to pass on every step");
    }
    cx.emit(d);
    false
}

fn with_time(ty: &ITy, steps: D) -> ITy {
    let mut dims = ty.dims.clone();
    dims[0] = steps;
    ITy { dims, dtype: ty.dtype }
}

/// `RepeatVector(n)`: `[F]` → `[n, F]`.
pub(crate) fn repeat(
    cx: &mut Elab<'_>,
    scope: &mut Scope,
    inst: &LayerInst,
    n: D,
    t: &Tensor,
    span: Span,
) -> Value {
    if t.ty.dims.len() != 1 {
        let shown = cx.show(&t.ty);
        let mut d = Diagnostic::error(
            "SM0313",
            span,
            format!("`RepeatVector` repeats a vector [features], found {shown}"),
        )
        .with_label(format!("this gets {shown}"))
        .with_secondary(t.origin.span, format!("{} is {shown}", t.origin.what));
        if t.origin.rnn_sequence {
            d = d.with_help("remove `return_sequences=true` from that layer to pass on only its last step");
        }
        cx.emit(d);
        return Value::Poison;
    }
    let ty = ITy { dims: vec![n, t.ty.dims[0]], dtype: t.ty.dtype };
    let what = format!("RepeatVector `{}`", inst.name);
    expr_unary(cx, scope, Op::RepeatVector, &inst.name, None, t, ty, span, what)
}

fn slice_len(
    cx: &mut Elab<'_>,
    steps: D,
    start: Option<i64>,
    end: Option<i64>,
) -> Result<(D, i64, Option<i64>), String> {
    match cx.dims.resolve(steps) {
        D::Fixed(t) => {
            let t = t as i64;
            let norm = |i: i64| if i < 0 { (t + i).max(0) } else { i.min(t) };
            let s = start.map_or(0, norm);
            let e = end.map_or(t, norm);
            if e <= s {
                return Err(format!("the slice selects no step of the {t} steps"));
            }
            Ok((D::Fixed((e - s) as usize), s, Some(e)))
        }
        D::Var(v, o) => {
            let len = match (start, end) {
                (Some(a), None) if a < 0 => D::Fixed((-a) as usize),
                (a, None) => D::Var(v, o - a.unwrap_or(0)),
                (a, Some(b)) if b > 0 && a.unwrap_or(0) >= 0 => {
                    let a = a.unwrap_or(0);
                    if b <= a {
                        return Err("the slice selects no step".into());
                    }
                    D::Fixed((b - a) as usize)
                }
                (a, Some(b)) if b < 0 && a.unwrap_or(0) >= 0 => D::Var(v, o - a.unwrap_or(0) + b),
                (Some(a), Some(b)) if a < 0 && b < 0 => {
                    if b <= a {
                        return Err("the slice selects no step".into());
                    }
                    D::Fixed((b - a) as usize)
                }
                _ => return Err("with a time dimension known only at run time, mix of negative start and positive end cannot be sized".into()),
            };
            Ok((len, start.unwrap_or(0), end))
        }
    }
}

/// `x[a:b]` and `x[i]` along time; any other index (several axes, a step, `...`) is a
/// general slice ([`super::ops::slice`]).
pub(crate) fn index(
    cx: &mut Elab<'_>,
    scope: &mut Scope,
    t: &Tensor,
    index: &[IndexKind],
    index_span: Span,
    span: Span,
) -> Value {
    if super::ops::out_of_range(index) {
        let shown = cx.show(&t.ty);
        cx.emit(
            Diagnostic::error(
                "SM0305",
                index_span,
                format!("invalid index: indices and steps are at most {} either way", super::MAX_SIZE),
            )
            .with_label("this index")
            .with_secondary(t.origin.span, format!("{} is {shown}", t.origin.what)),
        );
        return Value::Poison;
    }
    let index = match index {
        [IndexKind::Slice { start, end, step: None | Some(1) }] => {
            IndexKind::Slice { start: *start, end: *end, step: None }
        }
        [IndexKind::Step(i)] => IndexKind::Step(*i),
        _ => return super::ops::slice(cx, scope, t, index, index_span, span),
    };
    if !need_time(cx, t, "slicing", index_span) {
        return Value::Poison;
    }
    let steps = t.ty.dims[0];
    match index {
        IndexKind::Ellipsis => unreachable!("a general slice"),
        IndexKind::Slice { start, end, .. } => match slice_len(cx, steps, start, end) {
            Ok((len, s, e)) => {
                let ty = with_time(&t.ty, len);
                expr_unary(
                    cx,
                    scope,
                    Op::TimeSlice { start: s, end: e },
                    "slice",
                    None,
                    t,
                    ty,
                    span,
                    "the slice".into(),
                )
            }
            Err(msg) => {
                let shown = cx.show(&t.ty);
                cx.emit(
                    Diagnostic::error("SM0305", index_span, format!("invalid time slice: {msg}"))
                        .with_label("this slice")
                        .with_secondary(t.origin.span, format!("{} is {shown}", t.origin.what)),
                );
                Value::Poison
            }
        },
        IndexKind::Step(i) => {
            if let D::Fixed(n) = cx.dims.resolve(steps) {
                let n = n as i64;
                if i >= n || i < -n {
                    cx.emit(
                        Diagnostic::error(
                            "SM0305",
                            index_span,
                            format!("step {i} is out of range for {n} steps"),
                        )
                        .with_label("out of range")
                        .with_secondary(t.origin.span, format!("{} has {n} steps", t.origin.what)),
                    );
                    return Value::Poison;
                }
            }
            let ty = ITy { dims: t.ty.dims[1..].to_vec(), dtype: t.ty.dtype };
            expr_unary(cx, scope, Op::TimeStep { index: i }, "step", None, t, ty, span, "the step".into())
        }
    }
}

/// `Cropping1D((left, right))`: `T` becomes `T - left - right`.
pub(crate) fn crop(
    cx: &mut Elab<'_>,
    scope: &mut Scope,
    inst: &LayerInst,
    l: usize,
    r: usize,
    t: &Tensor,
    span: Span,
) -> Value {
    let end = if r == 0 { None } else { Some(-(r as i64)) };
    resize_time(cx, scope, inst, t, span, Op::TimeSlice { start: l as i64, end }, -((l + r) as i64))
}

/// `ZeroPadding1D((left, right))`: `T` becomes `T + left + right`.
pub(crate) fn pad(
    cx: &mut Elab<'_>,
    scope: &mut Scope,
    inst: &LayerInst,
    l: usize,
    r: usize,
    t: &Tensor,
    span: Span,
) -> Value {
    resize_time(cx, scope, inst, t, span, Op::ZeroPad { left: l, right: r }, (l + r) as i64)
}

/// A node that changes the number of steps by `delta`, which must leave at least one step.
fn resize_time(
    cx: &mut Elab<'_>,
    scope: &mut Scope,
    inst: &LayerInst,
    t: &Tensor,
    span: Span,
    op: Op,
    delta: i64,
) -> Value {
    let who = format!("`{}`", inst.class);
    if !need_time(cx, t, &who, span) {
        return Value::Poison;
    }
    let len = match cx.dims.resolve(t.ty.dims[0]) {
        D::Fixed(n) if n as i64 + delta < 1 => {
            cx.emit(
                Diagnostic::error(
                    "SM0305",
                    span,
                    format!("{who} removes {} steps, leaving nothing of {n} steps", -delta),
                )
                .with_label("crops too much")
                .with_secondary(t.origin.span, format!("{} has {n} steps", t.origin.what)),
            );
            return Value::Poison;
        }
        d => d.plus(delta),
    };
    let ty = with_time(&t.ty, len);
    let what = format!("{} `{}`", inst.class, inst.name);
    expr_unary(cx, scope, op, &inst.name, None, t, ty, span, what)
}

/// `TimeDistributed(layer or model)`: applies the inner to every step.
pub(crate) fn distribute(
    cx: &mut Elab<'_>,
    scope: &mut Scope,
    inst: &LayerInst,
    inner: Value,
    layer_span: Span,
    t: &Tensor,
    span: Span,
) -> Value {
    if !need_time(cx, t, "`TimeDistributed`", span) {
        return Value::Poison;
    }
    let folded_ty = ITy { dims: t.ty.dims[1..].to_vec(), dtype: t.ty.dtype };
    let fold =
        cx.add_node(Op::FoldTime, &inst.name, &scope.path, None, &[t.port], vec![folded_ty.clone()], span);
    let folded = Tensor { port: Port { node: fold, port: 0 }, ty: folded_ty, origin: t.origin.clone() };
    let result = cx.apply(scope, inner, layer_span, Value::Tensor(folded), span, span);
    let Some(outs) = flatten_tensors(&result) else { return Value::Poison };
    let mut vals = Vec::new();
    for o in outs {
        let mut dims = vec![t.ty.dims[0]];
        dims.extend(o.ty.dims.iter().copied());
        let ty = ITy { dims, dtype: o.ty.dtype };
        let n = cx.add_node(
            Op::UnfoldTime,
            &inst.name,
            &scope.path,
            None,
            &[o.port, t.port],
            vec![ty.clone()],
            span,
        );
        vals.push(Value::Tensor(Tensor {
            port: Port { node: n, port: 0 },
            ty,
            origin: Origin {
                span,
                what: format!("TimeDistributed `{}`", inst.name),
                rnn_last_only: false,
                rnn_sequence: false,
                declared: None,
            },
        }));
    }
    if vals.len() == 1 { vals.pop().unwrap_or(Value::Poison) } else { Value::Tuple(vals) }
}
