//! Shape rules of the recurrent layers and Bidirectional.

use seqmodel_grammar::Span;
use seqmodel_ir::{MergeMode, Op, Port, RnnAttrs};

use super::{LayerCfg, build_input, fixed_features, need_float};
use crate::check::{Elab, ITy, Origin, Scope, Tensor, Value, flatten_tensors};
use crate::diagnostic::Diagnostic;
use crate::dims::D;

/// The layer's attributes once its input size is known.
fn attrs(cfg: RnnAttrs, input_dim: usize) -> RnnAttrs {
    RnnAttrs { input_dim, ..cfg }
}

/// Checks that `t` is a float sequence `[T, D]` with fixed `D`; returns `(T, D)`.
fn sequence_input(cx: &mut Elab<'_>, t: &Tensor, who: &str, span: Span) -> Option<(D, usize)> {
    if !need_float(cx, t, who, span) {
        return None;
    }
    if t.ty.dims.len() != 2 {
        let shown = cx.show(&t.ty);
        let mut d = Diagnostic::error(
            "SM0302",
            span,
            format!("`{who}` expects a sequence [T, features], found {shown}"),
        )
        .with_label(format!("this layer gets {shown}"));
        if t.ty.dims.len() == 1 && t.origin.rnn_last_only {
            d = d
                .with_secondary(t.origin.span, format!("{} returns only its last step", t.origin.what))
                .with_help("add `return_sequences=true` to that layer to pass on every step");
        } else if t.ty.dims.len() == 1 {
            d = d
                .with_secondary(t.origin.span, format!("{} is a single vector", t.origin.what))
                .with_help("repeat a vector over time with `RepeatVector(n)`");
        } else {
            d = d.with_secondary(t.origin.span, format!("{} is {shown}", t.origin.what));
        }
        cx.emit(d);
        return None;
    }
    let features = fixed_features(cx, t, who, span)?;
    Some((t.ty.dims[0], features))
}

/// Applies LSTM / GRU / SimpleRNN.
pub(crate) fn apply_rnn(
    cx: &mut Elab<'_>,
    scope: &mut Scope,
    id: usize,
    cfg: RnnAttrs,
    t: &Tensor,
    initial_state: Option<(Value, Span)>,
    span: Span,
) -> Value {
    let inst = cx.layers[id].clone();
    let Some((steps, features)) = sequence_input(cx, t, inst.class, span) else { return Value::Poison };
    if !build_input(cx, id, features, span) {
        return Value::Poison;
    }
    let mut inputs = vec![t.port];
    if let Some((v, s)) = initial_state {
        let n = cfg.cell.states();
        let states = match flatten_tensors(&v) {
            Some(st) => st,
            None if matches!(v, Value::Poison) => return Value::Poison,
            None => {
                cx.emit(
                    Diagnostic::error(
                        "SM0306",
                        s,
                        format!("`initial_state` must be a list of tensors, found {}", v.describe()),
                    )
                    .with_label("not tensors"),
                );
                return Value::Poison;
            }
        };
        if states.len() != n {
            cx.emit(
                Diagnostic::error(
                    "SM0306",
                    s,
                    format!(
                        "`{}` takes {n} initial state{}, {} given",
                        inst.class,
                        if n == 1 { "" } else { "s" },
                        states.len()
                    ),
                )
                .with_label(format!(
                    "{} state tensor{}",
                    states.len(),
                    if states.len() == 1 { "" } else { "s" }
                ))
                .with_help(if n == 2 {
                    "LSTM takes `initial_state=[h, c]`"
                } else {
                    "give `initial_state=[h]`"
                }),
            );
            return Value::Poison;
        }
        let want = ITy { dims: vec![D::Fixed(cfg.units)], dtype: seqmodel_ir::DType::F32 };
        for st in &states {
            if !cx.unify_ty(&st.ty, &want) {
                let shown = cx.show(&st.ty);
                cx.emit(
                    Diagnostic::error(
                        "SM0306",
                        s,
                        format!("initial state must be [{}] (the layer's units), found {shown}", cfg.units),
                    )
                    .with_label("wrong state size")
                    .with_secondary(st.origin.span, format!("{} is {shown}", st.origin.what)),
                );
                return Value::Poison;
            }
            inputs.push(st.port);
        }
    }
    if cfg.stateful && cx.stateful.is_none() {
        cx.stateful = Some(span);
    }
    let a = attrs(cfg, features);
    let unit = D::Fixed(cfg.units);
    let f32 = seqmodel_ir::DType::F32;
    let out_ty = if cfg.return_sequences {
        ITy { dims: vec![steps, unit], dtype: f32 }
    } else {
        ITy { dims: vec![unit], dtype: f32 }
    };
    let mut out_tys = vec![out_ty];
    if cfg.return_state {
        for _ in 0..cfg.cell.states() {
            out_tys.push(ITy { dims: vec![unit], dtype: f32 });
        }
    }
    let node = cx.add_node(
        Op::Rnn(a),
        &inst.name,
        &scope.path,
        Some(inst.key.clone()),
        &inputs,
        out_tys.clone(),
        span,
    );
    outputs(
        node,
        out_tys,
        span,
        &format!("{} `{}`", inst.class, inst.name),
        cfg.return_sequences,
        cfg.return_state,
        1,
    )
}

fn outputs(
    node: petgraph::stable_graph::NodeIndex,
    tys: Vec<ITy>,
    span: Span,
    what: &str,
    seq: bool,
    tuple: bool,
    n_main: usize,
) -> Value {
    let vals: Vec<Value> = tys
        .into_iter()
        .enumerate()
        .map(|(i, ty)| {
            let main = i < n_main;
            Value::Tensor(Tensor {
                port: Port { node, port: i },
                ty,
                origin: Origin {
                    span,
                    what: if main { what.to_string() } else { format!("a state of {what}") },
                    rnn_last_only: main && !seq,
                    rnn_sequence: main && seq,
                    declared: None,
                },
            })
        })
        .collect();
    if tuple || vals.len() > 1 {
        Value::Tuple(vals)
    } else {
        vals.into_iter().next().unwrap_or(Value::Poison)
    }
}

/// Applies `Bidirectional(rnn, merge_mode)`.
pub(crate) fn apply_bidirectional(
    cx: &mut Elab<'_>,
    scope: &mut Scope,
    id: usize,
    inner: usize,
    merge: MergeMode,
    t: &Tensor,
    span: Span,
) -> Value {
    let inst = cx.layers[id].clone();
    let LayerCfg::Rnn(cfg) = cx.layers[inner].cfg else { return Value::Poison };
    let Some((steps, features)) = sequence_input(cx, t, "Bidirectional", span) else { return Value::Poison };
    if !build_input(cx, id, features, span) {
        return Value::Poison;
    }
    if cfg.stateful && cx.stateful.is_none() {
        cx.stateful = Some(span);
    }
    let forward = attrs(cfg, features);
    let backward = RnnAttrs { go_backwards: !cfg.go_backwards, ..forward };
    let f32 = seqmodel_ir::DType::F32;
    let width = if merge == MergeMode::Concat { 2 * cfg.units } else { cfg.units };
    let main = |w: usize| {
        if cfg.return_sequences {
            ITy { dims: vec![steps, D::Fixed(w)], dtype: f32 }
        } else {
            ITy { dims: vec![D::Fixed(w)], dtype: f32 }
        }
    };
    let mut tys =
        if merge == MergeMode::None { vec![main(cfg.units), main(cfg.units)] } else { vec![main(width)] };
    let n_main = tys.len();
    if cfg.return_state {
        for _ in 0..2 * cfg.cell.states() {
            tys.push(ITy { dims: vec![D::Fixed(cfg.units)], dtype: f32 });
        }
    }
    let node = cx.add_node(
        Op::Bidirectional { forward, backward, merge },
        &inst.name,
        &scope.path,
        Some(inst.key.clone()),
        &[t.port],
        tys.clone(),
        span,
    );
    outputs(
        node,
        tys,
        span,
        &format!("Bidirectional `{}`", inst.name),
        cfg.return_sequences,
        cfg.return_state,
        n_main,
    )
}
