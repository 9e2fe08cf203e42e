//! Rules of the operations Keras 3 records between layers, written as layers of their own:
//! slicing on any axis (`x[:, ::2]`, built from the index syntax), the reductions `Mean`,
//! `Sum`, `Max`, `Min`, `Any`, `All`, `Stack`, the comparisons (`NotEqual(0)`) and logic
//! that compute masks, `Cast`, `ExpandDims`, and `SetMask` (built from a call's `mask=`).
//! Axes are counted as Keras counts them, the batch being axis 0.

use seqmodel_grammar::{Span, ast::IndexKind};
use seqmodel_ir::{
    AxisIndex, CastAttrs, CompareAttrs, CompareKind, DType, ExpandDimsAttrs, LayerOp, LogicalAttrs,
    LogicalKind, MAX_RANK, Op, ReduceAttrs, ReduceKind, SetMaskAttrs, SliceAttrs, StackAttrs, python_index,
    python_slice,
};

use super::catalog::{ArgKind::*, opt, req};
use super::described::{Rule, class1, conflict};
use super::{Args, LayerClass};
use crate::check::{Elab, ITy, Scope, Tensor, Value, expr_unary};
use crate::diagnostic::Diagnostic;
use crate::dims::D;

/// Keras's `axis` (the batch is 0, negative from the end) as an axis after the batch of a
/// tensor with `rank` axes besides the batch.
fn keras_axis(axis: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r + 1 } else { axis };
    (1..=r).contains(&a).then(|| (a - 1) as usize)
}

fn axis_error(args: &Args, call: Span, who: &str, axis: i64, rank: usize) -> Diagnostic {
    let msg = if axis == 0 || axis == -(rank as i64) - 1 {
        format!("`{who}` over axis {axis}, the batch: only the axes after it can be used")
    } else {
        format!("`{who}` axis {axis} is out of range for a tensor of {rank} axes besides the batch")
    };
    conflict(args, "axis", call, msg, "bad axis")
        .with_note("Keras counts the batch axis: 1 is the first axis after the batch, -1 the last")
}

/// Emits a type mismatch: `who` needs `what`, the input is something else.
fn wrong_input(cx: &mut Elab<'_>, t: &Tensor, span: Span, who: &str, what: &str) {
    let shown = cx.show(&t.ty);
    cx.emit(
        Diagnostic::error("SM0304", span, format!("`{who}` needs {what}, found {shown}"))
            .with_label(format!("this gets {shown}"))
            .with_secondary(t.origin.span, format!("{} is {shown}", t.origin.what)),
    );
}

/// Every tensor of `ts` of one type (that of the first), or an error naming `who`.
fn one_type(cx: &mut Elab<'_>, ts: &[Tensor], who: &str, span: Span) -> Option<ITy> {
    let first = ts[0].ty.clone();
    for t in &ts[1..] {
        if t.ty.dtype != first.dtype || !cx.unify_ty(&t.ty, &first) {
            let (a, b) = (cx.show(&first), cx.show(&t.ty));
            let d = Diagnostic::error(
                "SM0309",
                span,
                format!("`{who}` needs inputs of one type, found {a} and {b}"),
            )
            .with_label("types differ")
            .with_secondary(ts[0].origin.span, format!("{} is {a}", ts[0].origin.what))
            .with_secondary(t.origin.span, format!("{} is {b}", t.origin.what));
            let d = cx.with_dim_help(d);
            cx.emit(d);
            return None;
        }
    }
    Some(first)
}

/// Where a slice bound sits: counted from the front or from the back of its axis.
#[derive(Clone, Copy)]
enum Anchor {
    Front(i64),
    Back(i64),
}

/// The length of `start:stop:step` over an axis of length `d`: exact for a fixed length;
/// for a length known only at run time, a number when both bounds count from the same end,
/// else the length minus a constant (rounded division by the step as a derived dimension).
fn range_len(cx: &mut Elab<'_>, d: D, start: Option<i64>, stop: Option<i64>, step: i64) -> Result<D, String> {
    if let D::Fixed(n) = cx.dims.resolve(d) {
        return match python_slice(n, start, stop, step) {
            (_, 0) => Err(format!("the slice selects nothing of the {n} positions")),
            (_, count) => Ok(D::Fixed(count)),
        };
    }
    let at = |i: i64| if i < 0 { Anchor::Back(i) } else { Anchor::Front(i) };
    let (from, to) = if step > 0 {
        (start.map_or(Anchor::Front(0), at), stop.map_or(Anchor::Back(0), at))
    } else {
        (start.map_or(Anchor::Back(-1), at), stop.map_or(Anchor::Front(-1), at))
    };
    // The span walked, `to - from` forwards or `from - to` backwards.
    let (hi, lo) = if step > 0 { (to, from) } else { (from, to) };
    let len = match (hi, lo) {
        (Anchor::Front(h), Anchor::Front(l)) | (Anchor::Back(h), Anchor::Back(l)) if h > l => {
            D::Fixed((h - l) as usize)
        }
        (Anchor::Front(_), Anchor::Front(_)) | (Anchor::Back(_), Anchor::Back(_)) => {
            return Err("the slice selects nothing".into());
        }
        (Anchor::Back(h), Anchor::Front(l)) => d.plus(h - l),
        (Anchor::Front(_), Anchor::Back(_)) => {
            return Err(
                "over a length known only at run time, a slice must not end counted from the front when it starts counted from the back (its length would depend on the sign of a difference)"
                    .into(),
            );
        }
    };
    let s = step.unsigned_abs() as usize;
    Ok(match len {
        D::Fixed(n) => D::Fixed(n.div_ceil(s)),
        len if s == 1 => len,
        len => cx.dims.derived(len, s as i64 - 1, s),
    })
}

/// Whether an index holds a bound, index or step beyond the supported sizes (either way),
/// which no tensor has and whose arithmetic could overflow.
pub(crate) fn out_of_range(index: &[IndexKind]) -> bool {
    let limit = super::MAX_SIZE as i64;
    let huge = |v: Option<i64>| v.is_some_and(|v| !(-limit..=limit).contains(&v));
    index.iter().any(|i| match *i {
        IndexKind::Step(i) => huge(Some(i)),
        IndexKind::Slice { start, end, step } => huge(start) || huge(end) || huge(step),
        IndexKind::Ellipsis => false,
    })
}

/// `x[...]` with several axes, a step or an ellipsis: one [`SliceAttrs`] node. The items
/// name the axes after the batch in order; `...` stands for as many whole axes as needed.
pub(crate) fn slice(
    cx: &mut Elab<'_>,
    scope: &mut Scope,
    t: &Tensor,
    index: &[IndexKind],
    index_span: Span,
    span: Span,
) -> Value {
    let rank = t.ty.dims.len();
    let err = |cx: &mut Elab<'_>, msg: String| {
        let shown = cx.show(&t.ty);
        cx.emit(
            Diagnostic::error("SM0305", index_span, format!("invalid index: {msg}"))
                .with_label("this index")
                .with_secondary(t.origin.span, format!("{} is {shown}", t.origin.what)),
        );
        Value::Poison
    };
    let ellipses = index.iter().filter(|i| matches!(i, IndexKind::Ellipsis)).count();
    let named = index.len() - ellipses;
    if ellipses > 1 {
        return err(cx, "at most one `...`".into());
    }
    if named > rank || rank > MAX_RANK {
        return err(cx, format!("{named} axes indexed, the tensor has {rank} besides the batch"));
    }
    let mut axes = [AxisIndex::All; MAX_RANK];
    let mut k = 0;
    for item in index {
        match *item {
            IndexKind::Ellipsis => k += rank - named,
            IndexKind::Step(i) => {
                axes[k] = AxisIndex::At(i);
                k += 1;
            }
            IndexKind::Slice { step: Some(0), .. } => return err(cx, "a slice step must not be 0".into()),
            IndexKind::Slice { start, end, step } => {
                axes[k] = match (start, end, step.unwrap_or(1)) {
                    (None, None, 1) => AxisIndex::All,
                    (start, stop, step) => AxisIndex::Range { start, stop, step },
                };
                k += 1;
            }
        }
    }
    let mut dims = Vec::new();
    for (axis, (d, ax)) in t.ty.dims.iter().zip(&axes).enumerate() {
        match *ax {
            AxisIndex::All => dims.push(*d),
            AxisIndex::Range { start, stop, step } => match range_len(cx, *d, start, stop, step) {
                Ok(len) => dims.push(len),
                Err(msg) => return err(cx, format!("axis {}: {msg}", axis + 1)),
            },
            AxisIndex::At(i) => {
                if let D::Fixed(n) = cx.dims.resolve(*d)
                    && python_index(n, i).is_none()
                {
                    return err(cx, format!("index {i} is out of range for axis {} of size {n}", axis + 1));
                }
            }
        }
    }
    let ty = ITy { dims, dtype: t.ty.dtype };
    let op = Op::Layer(LayerOp::Slice(SliceAttrs { rank, axes }));
    expr_unary(cx, scope, op, "slice", None, t, ty, span, "the slice".into())
}

/// Applies `SetMask` to `x` before a layer call's `mask=`: `m` a boolean `[T]` whose steps
/// are `x`'s, or `None` to remove `x`'s mask.
pub(crate) fn set_mask(
    cx: &mut Elab<'_>,
    scope: &mut Scope,
    layer: &str,
    x: &Tensor,
    m: Option<&Tensor>,
    span: Span,
) -> Value {
    let Some(m) = m else {
        let op = Op::Layer(LayerOp::SetMask(SetMaskAttrs { given: false }));
        return expr_unary(cx, scope, op, layer, None, x, x.ty.clone(), span, x.origin.what.clone());
    };
    let ok_mask = m.ty.dtype == DType::Bool && m.ty.dims.len() == 1;
    if !ok_mask || x.ty.dims.len() < 2 {
        let (xs, ms) = (cx.show(&x.ty), cx.show(&m.ty));
        cx.emit(
            Diagnostic::error(
                "SM0320",
                span,
                format!("a mask is a boolean [T] over the steps of a sequence; here the mask is {ms} and the input {xs}"),
            )
            .with_label("this mask")
            .with_secondary(m.origin.span, format!("{} is {ms}", m.origin.what))
            .with_secondary(x.origin.span, format!("{} is {xs}", x.origin.what))
            .with_help("compute it with a comparison, e.g. `NotEqual(0)(ids)` or `Any(axis=-1)(NotEqual(0.0)(x))`"),
        );
        return Value::Poison;
    }
    if let Err(e) = cx.dims.unify(m.ty.dims[0], x.ty.dims[0]) {
        cx.dim_conflict = Some(e);
        let (xs, ms) = (cx.show(&x.ty), cx.show(&m.ty));
        let d = Diagnostic::error(
            "SM0320",
            span,
            format!("the mask {ms} and the input {xs} have different steps"),
        )
        .with_label("steps differ")
        .with_secondary(m.origin.span, format!("{} is {ms}", m.origin.what))
        .with_secondary(x.origin.span, format!("{} is {xs}", x.origin.what));
        let d = cx.with_dim_help(d);
        cx.emit(d);
        return Value::Poison;
    }
    let op = Op::Layer(LayerOp::SetMask(SetMaskAttrs { given: true }));
    let n = cx.add_node(op, layer, &scope.path, None, &[x.port, m.port], vec![x.ty.clone()], span);
    let mut out = x.clone();
    out.port = seqmodel_ir::Port { node: n, port: 0 };
    Value::Tensor(out)
}

/// The rule of a layer no constructor builds (no class): its node is made by the syntax
/// (`x[:, ::2]` for a slice, a call's `mask=` for `SetMask`), its type given there.
macro_rules! built_by_syntax {
    ($($attrs:ty),*) => {$(
        impl Rule for $attrs {
            const CLASSES: &'static [LayerClass] = &[];

            fn configure(_: &'static LayerClass, _: &Args, _: Span) -> Result<Self, Diagnostic> {
                unreachable!("no class: the node is built by the syntax")
            }

            fn infer(&mut self, _: &mut Elab<'_>, t: &Tensor, _: Span) -> Option<ITy> {
                Some(t.ty.clone())
            }
        }
    )*};
}
built_by_syntax!(SliceAttrs, SetMaskAttrs);

const REDUCE_ARGS: &[super::ArgSpec] =
    &[req("axis", Int), opt("keepdims", Bool).or("false"), opt("name", Ignored)];

impl Rule for ReduceAttrs {
    const CLASSES: &'static [LayerClass] = &[
        class1("Mean", "mean", REDUCE_ARGS),
        class1("Sum", "sum", REDUCE_ARGS),
        class1("Max", "max", REDUCE_ARGS),
        class1("Min", "min", REDUCE_ARGS),
        class1("Any", "any", REDUCE_ARGS),
        class1("All", "all", REDUCE_ARGS),
    ];

    fn configure(class: &'static LayerClass, args: &Args, span: Span) -> Result<Self, Diagnostic> {
        let kind = match class.name {
            "Mean" => ReduceKind::Mean,
            "Sum" => ReduceKind::Sum,
            "Max" => ReduceKind::Max,
            "Min" => ReduceKind::Min,
            "Any" => ReduceKind::Any,
            _ => ReduceKind::All,
        };
        let axis = args.int("axis").unwrap_or(-1);
        if axis == 0 {
            return Err(axis_error(args, span, class.name, axis, 0));
        }
        // The axis as written until the input's rank is known (`infer` normalises it).
        Ok(ReduceAttrs { kind, axis: axis as usize, keepdims: args.bool("keepdims", false) })
    }

    fn infer(&mut self, cx: &mut Elab<'_>, t: &Tensor, span: Span) -> Option<ITy> {
        let who = match self.kind {
            ReduceKind::Mean => "Mean",
            ReduceKind::Sum => "Sum",
            ReduceKind::Max => "Max",
            ReduceKind::Min => "Min",
            ReduceKind::Any => "Any",
            ReduceKind::All => "All",
        };
        let logical = matches!(self.kind, ReduceKind::Any | ReduceKind::All);
        if !(t.ty.dtype == DType::F32 || logical && t.ty.dtype == DType::Bool) {
            wrong_input(
                cx,
                t,
                span,
                who,
                if logical { "a boolean or float tensor" } else { "a float tensor" },
            );
            return None;
        }
        let rank = t.ty.dims.len();
        let Some(axis) = keras_axis(self.axis as i64, rank) else {
            let msg = format!(
                "`{who}` axis {} is out of range for {} (plus the batch)",
                self.axis as i64,
                cx.show(&t.ty)
            );
            cx.emit(Diagnostic::error("SM0310", span, msg).with_label("bad axis"));
            return None;
        };
        self.axis = axis;
        let mut dims = t.ty.dims.clone();
        if self.keepdims {
            dims[axis] = D::Fixed(1);
        } else {
            dims.remove(axis);
        }
        Some(ITy { dims, dtype: if logical { DType::Bool } else { DType::F32 } })
    }
}

impl Rule for StackAttrs {
    const CLASSES: &'static [LayerClass] =
        &[class1("Stack", "stack", &[req("axis", Int), opt("name", Ignored)])];

    fn configure(_: &'static LayerClass, args: &Args, span: Span) -> Result<Self, Diagnostic> {
        let axis = args.int("axis").unwrap_or(0);
        if axis == 0 {
            return Err(axis_error(args, span, "Stack", axis, 0));
        }
        Ok(StackAttrs { axis: axis as usize })
    }

    fn infer(&mut self, cx: &mut Elab<'_>, t: &Tensor, span: Span) -> Option<ITy> {
        self.infer_many(cx, std::slice::from_ref(t), span)
    }

    fn infer_many(&mut self, cx: &mut Elab<'_>, ts: &[Tensor], span: Span) -> Option<ITy> {
        let ty = one_type(cx, ts, "Stack", span)?;
        let Some(axis) = keras_axis(self.axis as i64, ty.dims.len() + 1).filter(|_| ty.dims.len() < MAX_RANK)
        else {
            let msg = format!(
                "`Stack` axis {} is out of range for {} tensors (plus the batch)",
                self.axis as i64,
                cx.show(&ty)
            );
            cx.emit(Diagnostic::error("SM0310", span, msg).with_label("bad axis"));
            return None;
        };
        self.axis = axis;
        let mut dims = ty.dims.clone();
        dims.insert(axis, D::Fixed(ts.len()));
        Some(ITy { dims, dtype: ty.dtype })
    }
}

impl Rule for CompareAttrs {
    const CLASSES: &'static [LayerClass] = &[
        class1("Equal", "equal", &[opt("value", Float), opt("name", Ignored)]),
        class1("NotEqual", "not_equal", &[opt("value", Float), opt("name", Ignored)]),
        class1("Less", "less", &[opt("value", Float), opt("name", Ignored)]),
        class1("LessEqual", "less_equal", &[opt("value", Float), opt("name", Ignored)]),
        class1("Greater", "greater", &[opt("value", Float), opt("name", Ignored)]),
        class1("GreaterEqual", "greater_equal", &[opt("value", Float), opt("name", Ignored)]),
    ];

    fn configure(class: &'static LayerClass, args: &Args, _: Span) -> Result<Self, Diagnostic> {
        let kind = match class.name {
            "Equal" => CompareKind::Equal,
            "NotEqual" => CompareKind::NotEqual,
            "Less" => CompareKind::Less,
            "LessEqual" => CompareKind::LessEqual,
            "Greater" => CompareKind::Greater,
            _ => CompareKind::GreaterEqual,
        };
        Ok(CompareAttrs { kind, value: args.opt_float("value").map(|v| v as f32) })
    }

    fn infer(&mut self, cx: &mut Elab<'_>, t: &Tensor, span: Span) -> Option<ITy> {
        self.infer_many(cx, std::slice::from_ref(t), span)
    }

    fn infer_many(&mut self, cx: &mut Elab<'_>, ts: &[Tensor], span: Span) -> Option<ITy> {
        let who = format!("{:?}", self.kind);
        let want = if self.value.is_some() { 1 } else { 2 };
        if ts.len() != want {
            let msg = if want == 1 {
                format!("`{who}` with a value compares one tensor with it, {} given", ts.len())
            } else {
                format!("`{who}` without a value compares two tensors, {} given", ts.len())
            };
            cx.emit(
                Diagnostic::error("SM0307", span, msg).with_label("wrong number of inputs").with_help(
                    format!("`{who}(0)(x)` compares with a number, `{who}()([a, b])` two tensors"),
                ),
            );
            return None;
        }
        let ty = one_type(cx, ts, &who, span)?;
        Some(ITy { dims: ty.dims, dtype: DType::Bool })
    }
}

impl Rule for LogicalAttrs {
    const CLASSES: &'static [LayerClass] = &[
        class1("LogicalAnd", "logical_and", &[opt("name", Ignored)]),
        class1("LogicalOr", "logical_or", &[opt("name", Ignored)]),
        class1("LogicalXor", "logical_xor", &[opt("name", Ignored)]),
        class1("LogicalNot", "logical_not", &[opt("name", Ignored)]),
    ];

    fn configure(class: &'static LayerClass, _: &Args, _: Span) -> Result<Self, Diagnostic> {
        let kind = match class.name {
            "LogicalAnd" => LogicalKind::And,
            "LogicalOr" => LogicalKind::Or,
            "LogicalXor" => LogicalKind::Xor,
            _ => LogicalKind::Not,
        };
        Ok(LogicalAttrs { kind })
    }

    fn infer(&mut self, cx: &mut Elab<'_>, t: &Tensor, span: Span) -> Option<ITy> {
        self.infer_many(cx, std::slice::from_ref(t), span)
    }

    fn infer_many(&mut self, cx: &mut Elab<'_>, ts: &[Tensor], span: Span) -> Option<ITy> {
        let who = format!("Logical{:?}", self.kind);
        let want = if self.kind == LogicalKind::Not { 1 } else { 2 };
        if ts.len() != want {
            let msg = format!(
                "`{who}` takes {want} tensor{}, {} given",
                if want == 1 { "" } else { "s" },
                ts.len()
            );
            cx.emit(Diagnostic::error("SM0307", span, msg).with_label("wrong number of inputs"));
            return None;
        }
        if let Some(t) = ts.iter().find(|t| t.ty.dtype == DType::I32) {
            wrong_input(cx, t, span, &who, "boolean or float tensors");
            return None;
        }
        let mut ty = one_type(cx, ts, &who, span)?;
        ty.dtype = DType::Bool;
        Some(ty)
    }
}

impl Rule for CastAttrs {
    const CLASSES: &'static [LayerClass] = &[class1(
        "Cast",
        "cast",
        &[req("dtype", Choice(&["float32", "bool", "int32"])), opt("name", Ignored)],
    )];

    fn configure(_: &'static LayerClass, args: &Args, _: Span) -> Result<Self, Diagnostic> {
        let to = match args.str("dtype") {
            Some("bool") => DType::Bool,
            Some("int32") => DType::I32,
            _ => DType::F32,
        };
        Ok(CastAttrs { to, from: to })
    }

    fn infer(&mut self, cx: &mut Elab<'_>, t: &Tensor, span: Span) -> Option<ITy> {
        if self.to == DType::I32 && t.ty.dtype != DType::I32 {
            wrong_input(
                cx,
                t,
                span,
                "Cast(\"int32\")",
                "integer input (casting to integers is not supported)",
            );
            return None;
        }
        self.from = t.ty.dtype;
        Some(ITy { dims: t.ty.dims.clone(), dtype: self.to })
    }
}

impl Rule for ExpandDimsAttrs {
    const CLASSES: &'static [LayerClass] =
        &[class1("ExpandDims", "expand_dims", &[req("axis", Int), opt("name", Ignored)])];

    fn configure(_: &'static LayerClass, args: &Args, span: Span) -> Result<Self, Diagnostic> {
        let axis = args.int("axis").unwrap_or(-1);
        if axis == 0 {
            return Err(axis_error(args, span, "ExpandDims", axis, 0));
        }
        Ok(ExpandDimsAttrs { axis: axis as usize })
    }

    fn infer(&mut self, cx: &mut Elab<'_>, t: &Tensor, span: Span) -> Option<ITy> {
        let rank = t.ty.dims.len() + 1;
        let Some(axis) = keras_axis(self.axis as i64, rank).filter(|_| rank <= MAX_RANK) else {
            let msg = format!(
                "`ExpandDims` axis {} is out of range for {} (plus the batch)",
                self.axis as i64,
                cx.show(&t.ty)
            );
            cx.emit(Diagnostic::error("SM0310", span, msg).with_label("bad axis"));
            return None;
        };
        self.axis = axis;
        let mut dims = t.ty.dims.clone();
        dims.insert(axis, D::Fixed(1));
        Some(ITy { dims, dtype: t.ty.dtype })
    }
}

#[cfg(test)]
mod tests {
    use super::keras_axis;

    #[test]
    fn keras_axes_count_the_batch() {
        assert_eq!(keras_axis(1, 2), Some(0));
        assert_eq!(keras_axis(-1, 2), Some(1));
        assert_eq!(keras_axis(-2, 2), Some(0));
        assert_eq!(keras_axis(0, 2), None);
        assert_eq!(keras_axis(-3, 2), None);
        assert_eq!(keras_axis(3, 2), None);
    }
}
