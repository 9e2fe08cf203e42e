//! Model instantiation: binding inputs and dimension parameters, running the body, checking
//! the declared outputs. Used both for entry models and for inlined model calls.

use std::collections::HashMap;

use seqmodel_grammar::{Span, ast};
use seqmodel_ir::{self as ir, DType, Op, Port};

use super::{Elab, ITy, Origin, Scope, Tensor, Value, flatten_tensors};
use crate::diagnostic::Diagnostic;
use crate::dims::D;

/// The result of compiling one entry model: its program (if it checked) and the diagnostics.
pub(crate) struct ModelResult {
    pub program: Option<ir::Program>,
    pub diags: Vec<Diagnostic>,
    /// Errors found inside callees that only show with this caller's bindings:
    /// (callee index, diagnostic at the call site).
    pub call_errors: Vec<(usize, Diagnostic)>,
    /// What each expression of the model evaluated to, for editors.
    pub facts: Vec<crate::analysis::SpanFact>,
}

/// Compiles model `index` of `file` as an entry point.
pub(crate) fn compile_model<'a>(
    file: &'a ast::File,
    models: &'a super::FileModels<'a>,
    index: usize,
) -> ModelResult {
    let mut cx = Elab::new(file, models);
    let model = &file.models[index];
    let mut inputs = Vec::new();
    let mut args = Vec::new();
    // Inputs are instantiated against fresh symbols; `instantiate` unifies them with the
    // declared types, so an entry's inputs are exactly its declarations.
    let mut entry_dims: HashMap<String, D> = HashMap::new();
    for dp in &model.dim_params {
        let d = cx.dims.fresh_rigid(&dp.name, Some(dp.span));
        entry_dims.insert(dp.name.clone(), d);
    }
    for (i, p) in model.params.iter().enumerate() {
        let ty = declared_ty(&mut cx, &p.ty, &mut entry_dims, true);
        if ty.dtype == DType::Bool {
            cx.emit(
                Diagnostic::error("SM0321", p.ty.span, format!("input `{}` is boolean", p.name.name))
                    .with_label("a model input is `f32` or `i32`")
                    .with_help("compute the mask inside the model, e.g. `Any(axis=-1)(NotEqual(0.0)(x))`"),
            );
        }
        let node = cx.add_node(
            Op::Input { index: i },
            &p.name.name,
            &model.name.name,
            None,
            &[],
            vec![ty.clone()],
            p.name.span,
        );
        inputs.push(ir::InputSpec {
            name: p.name.name.clone(),
            ty: ir::TensorType { dims: Vec::new(), dtype: ty.dtype },
            node,
        });
        let origin = Origin {
            span: p.name.span,
            what: format!("input `{}`", p.name.name),
            rnn_last_only: false,
            rnn_sequence: false,
            declared: Some(p.ty.span),
        };
        args.push((Value::Tensor(Tensor { port: Port { node, port: 0 }, ty, origin }), p.name.span));
        cx.note(p.name.span, &args[args.len() - 1].0);
    }
    let generics: Vec<(D, Span)> =
        model.dim_params.iter().map(|dp| (entry_dims[&dp.name], dp.span)).collect();
    let result = instantiate(&mut cx, index, args, generics, model.name.span, &model.name.name);
    let mut call_errors = Vec::new();
    std::mem::swap(&mut call_errors, &mut cx.call_errors);
    if let (None, Some(span)) = (cx.batch, cx.stateful) {
        cx.emit(
            Diagnostic::error("SM0410", span, "a stateful layer needs a fixed batch size")
                .with_label("stateful layer here")
                .with_secondary(
                    model.name.span,
                    format!("model `{}` declares no batch size", model.name.name),
                )
                .with_help(format!(
                    "declare it after the output type: `model {}(...) -> ... where batch = 1 {{ ... }}`",
                    model.name.name
                )),
        );
    }
    let outputs = match &result {
        Some(v) => flatten_tensors(v).unwrap_or_default(),
        None => Vec::new(),
    };
    if !cx.diags.is_empty() || result.is_none() {
        let diags = std::mem::take(&mut cx.diags);
        let facts = crate::analysis::render(&mut cx);
        return ModelResult { program: None, diags, call_errors, facts };
    }
    let mut facts = crate::analysis::render(&mut cx);
    let outs: Vec<Port> = outputs.iter().map(|t| t.port).collect();
    let program = cx.finish(model, inputs, outs);
    crate::analysis::count_params(&mut facts, &program);
    let diags = check_weight_conflicts(&program);
    if diags.is_empty() {
        ModelResult { program: Some(program), diags, call_errors, facts }
    } else {
        ModelResult { program: None, diags, call_errors, facts }
    }
}

/// The most values one weight tensor may hold (2³², 16 GiB of f32).
const MAX_WEIGHT_VALUES: usize = 1 << 32;

/// Weights that are too large, and shared layers whose weights would need two shapes.
fn check_weight_conflicts(p: &ir::Program) -> Vec<Diagnostic> {
    let mut seen: HashMap<String, (Vec<usize>, ir::NodeIndex)> = HashMap::new();
    let mut out = Vec::new();
    for n in p.topo_order() {
        for w in ir::node_weight_specs(&p.graph[n]) {
            let values = w.shape.iter().try_fold(1usize, |acc, d| acc.checked_mul(*d));
            if values.is_none_or(|v| v > MAX_WEIGHT_VALUES) {
                let span = p.spans.get(&n).map_or(Span::default(), |s| Span::new(s.0, s.1));
                out.push(
                    Diagnostic::error(
                        "SM0314",
                        span,
                        format!(
                            "layer `{}` needs a weight `{}` of shape {:?}, more than {MAX_WEIGHT_VALUES} values",
                            p.graph[n].layer, w.key, w.shape
                        ),
                    )
                    .with_label("too large a layer"),
                );
                continue;
            }
            match seen.get(&w.key) {
                Some((shape, first)) if *shape != w.shape => {
                    let span = p.spans.get(&n).map_or(Span::default(), |s| Span::new(s.0, s.1));
                    let first_span = p.spans.get(first).map_or(Span::default(), |s| Span::new(s.0, s.1));
                    out.push(
                        Diagnostic::error(
                            "SM0308",
                            span,
                            format!(
                                "shared layer `{}` needs weight `{}` of shape {:?} here but {:?} where it was first used",
                                p.graph[n].layer, w.key, w.shape, shape
                            ),
                        )
                        .with_label("applied to a different input size")
                        .with_secondary(first_span, "first used here"),
                    );
                }
                Some(_) => {}
                None => {
                    seen.insert(w.key.clone(), (w.shape.clone(), n));
                }
            }
        }
    }
    out
}

/// The inference type of a declared tensor type, creating symbols by name in `dims`.
///
/// `rigid`: the names are the user's dimensions of the model being compiled (never merged
/// with another name or bound to a number); otherwise they are a callee's, bound by the
/// call. `_` is anonymous: a new flexible dimension at each use (Keras's `None`).
pub(crate) fn declared_ty(
    cx: &mut Elab<'_>,
    t: &ast::TensorType,
    dims: &mut HashMap<String, D>,
    rigid: bool,
) -> ITy {
    let ds = t
        .dims
        .iter()
        .map(|d| match d {
            ast::DimAst::Fixed(n, _) => D::Fixed(*n),
            ast::DimAst::Sym(id, off) if id.name == "_" => cx.dims.fresh("_", Some(id.span)).plus(*off),
            ast::DimAst::Sym(id, off) => {
                let base = *dims.entry(id.name.clone()).or_insert_with(|| {
                    if rigid {
                        cx.dims.fresh_rigid(&id.name, Some(id.span))
                    } else {
                        cx.dims.fresh(&id.name, Some(id.span))
                    }
                });
                base.plus(*off)
            }
        })
        .collect();
    let dtype = match t.dtype {
        Some((ast::DTypeAst::I32, _)) => DType::I32,
        Some((ast::DTypeAst::Bool, _)) => DType::Bool,
        _ => DType::F32,
    };
    ITy { dims: ds, dtype }
}

/// Runs model `index` on `args` with dimension arguments `generics`. Returns its output value,
/// or `None` if the model failed to check.
pub(crate) fn instantiate(
    cx: &mut Elab<'_>,
    index: usize,
    args: Vec<(Value, Span)>,
    generics: Vec<(D, Span)>,
    call_span: Span,
    path: &str,
) -> Option<Value> {
    let file = cx.file;
    let model = &file.models[index];
    let mut dims: HashMap<String, D> = HashMap::new();
    for (i, dp) in model.dim_params.iter().enumerate() {
        let d = match generics.get(i) {
            Some((d, _)) => *d,
            None => cx.dims.fresh(&dp.name, Some(dp.span)),
        };
        dims.insert(dp.name.clone(), d);
    }
    if generics.len() > model.dim_params.len() {
        let span = generics[model.dim_params.len()].1;
        cx.emit(
            Diagnostic::error(
                "SM0403",
                span,
                format!(
                    "model `{}` takes {} dimension argument{}, {} given",
                    model.name.name,
                    model.dim_params.len(),
                    if model.dim_params.len() == 1 { "" } else { "s" },
                    generics.len()
                ),
            )
            .with_label("extra dimension argument")
            .with_secondary(model.name.span, "model declared here"),
        );
        return None;
    }
    if args.len() != model.params.len() {
        cx.emit(
            Diagnostic::error(
                "SM0401",
                call_span,
                format!(
                    "model `{}` takes {} input{}, {} given",
                    model.name.name,
                    model.params.len(),
                    if model.params.len() == 1 { "" } else { "s" },
                    args.len()
                ),
            )
            .with_label("wrong number of inputs")
            .with_secondary(model.name.span, "model declared here"),
        );
        return None;
    }
    if let Some(s) = model.settings.iter().find(|s| s.name.name == "batch") {
        match cx.batch {
            Some((b, first)) if b != s.value => {
                cx.emit(
                    Diagnostic::error(
                        "SM0411",
                        s.value_span,
                        format!("batch size {} conflicts with batch size {b}", s.value),
                    )
                    .with_label("declared here")
                    .with_secondary(first, "first declared here"),
                );
            }
            None => cx.batch = Some((s.value, s.value_span)),
            _ => {}
        }
    }
    for s in model.settings.iter().filter(|s| s.name.name != "batch") {
        cx.emit(
            Diagnostic::error("SM0412", s.name.span, format!("unknown setting `{}`", s.name.name))
                .with_label("unknown setting")
                .with_help("the only setting is `batch = N`"),
        );
    }
    let mut scope = Scope {
        model: index,
        vars: HashMap::new(),
        dims: HashMap::new(),
        counters: HashMap::new(),
        names: HashMap::new(),
        path: path.to_string(),
    };
    let mut ok = true;
    for (p, (arg, arg_span)) in model.params.iter().zip(args) {
        let declared = declared_ty(cx, &p.ty, &mut dims, false);
        let value = match arg {
            Value::Tensor(t) => {
                if cx.unify_ty(&t.ty, &declared) {
                    Value::Tensor(t)
                } else {
                    let found = cx.show(&t.ty);
                    let want = cx.show(&declared);
                    let mut d = Diagnostic::error(
                        "SM0402",
                        arg_span,
                        format!(
                            "model `{}` input `{}` expects {want}, found {found}",
                            model.name.name, p.name.name
                        ),
                    )
                    .with_label(format!("this is {found}"))
                    .with_secondary(p.ty.span, format!("`{}` declared as {want} here", p.name.name));
                    if t.origin.rnn_last_only && declared.dims.len() == t.ty.dims.len() + 1 {
                        d = d
                            .with_secondary(
                                t.origin.span,
                                format!("{} returns only its last step", t.origin.what),
                            )
                            .with_help("add `return_sequences=true` to that layer");
                    }
                    let d = cx.with_dim_help(d);
                    cx.emit(d);
                    ok = false;
                    Value::Poison
                }
            }
            Value::Poison => {
                ok = false;
                Value::Poison
            }
            other => {
                cx.emit(
                    Diagnostic::error(
                        "SM0402",
                        arg_span,
                        format!(
                            "model `{}` input `{}` expects a tensor, found {}",
                            model.name.name,
                            p.name.name,
                            other.describe()
                        ),
                    )
                    .with_label("not a tensor"),
                );
                ok = false;
                Value::Poison
            }
        };
        scope.vars.insert(p.name.name.clone(), value);
    }
    scope.dims = dims;
    if !ok {
        return None;
    }
    cx.stack.push(index);
    let result = run_body(cx, model, &mut scope);
    cx.stack.pop();
    let result = result?;
    check_outputs(cx, model, &mut scope, result)
}

fn run_body(cx: &mut Elab<'_>, model: &ast::ModelDef, scope: &mut Scope) -> Option<(Value, Span)> {
    let mut last: Option<(Value, Span)> = None;
    for stmt in &model.body {
        match stmt {
            ast::Stmt::Assign { targets, value, span } => {
                let v = cx.eval(scope, value);
                bind_targets(cx, scope, targets, v, *span);
                last = None;
            }
            ast::Stmt::Expr(e) => {
                let v = cx.eval(scope, e);
                last = Some((v, e.span));
            }
        }
    }
    if last.is_none() {
        let span = match model.body.last() {
            Some(ast::Stmt::Assign { span, .. }) => *span,
            _ => model.name.span,
        };
        cx.emit(
            Diagnostic::error("SM0404", span, format!("model `{}` has no output", model.name.name))
                .with_label("the body must end with an expression: the model's output")
                .with_help("end the body with the output, e.g. the name of the last tensor"),
        );
    }
    last
}

fn bind_targets(cx: &mut Elab<'_>, scope: &mut Scope, targets: &[ast::Ident], v: Value, span: Span) {
    if targets.len() == 1 {
        cx.note(targets[0].span, &v);
        scope.vars.insert(targets[0].name.clone(), v);
        return;
    }
    match v {
        Value::Tuple(items) | Value::List(items) if items.len() == targets.len() => {
            for (t, item) in targets.iter().zip(items) {
                cx.note(t.span, &item);
                scope.vars.insert(t.name.clone(), item);
            }
        }
        Value::Poison => {
            for t in targets {
                scope.vars.insert(t.name.clone(), Value::Poison);
            }
        }
        other => {
            let n = match &other {
                Value::Tuple(i) | Value::List(i) => i.len(),
                _ => 1,
            };
            cx.emit(
                Diagnostic::error(
                    "SM0405",
                    span,
                    format!("{} names to assign but the value has {n} part{}", targets.len(), if n == 1 { "" } else { "s" }),
                )
                .with_label(format!("this gives {}", other.describe()))
                .with_help("an RNN gives several outputs only with `return_state=true`: (output, h) or (output, h, c) for LSTM"),
            );
            for t in targets {
                scope.vars.insert(t.name.clone(), Value::Poison);
            }
        }
    }
}

fn check_outputs(
    cx: &mut Elab<'_>,
    model: &ast::ModelDef,
    scope: &mut Scope,
    (value, span): (Value, Span),
) -> Option<Value> {
    if matches!(value, Value::Poison) {
        return None;
    }
    let Some(tensors) = flatten_tensors(&value) else {
        cx.emit(
            Diagnostic::error(
                "SM0406",
                span,
                format!(
                    "the output of model `{}` must be tensors, found {}",
                    model.name.name,
                    value.describe()
                ),
            )
            .with_label("not a tensor")
            .with_help("apply the layer to a tensor, e.g. `x -> Dense(8)`"),
        );
        return None;
    };
    let Some(declared) = &model.outputs else { return Some(value) };
    if declared.len() != tensors.len() {
        let decl_span = declared
            .first()
            .map_or(model.name.span, |d| d.span)
            .join(declared.last().map_or(model.name.span, |d| d.span));
        cx.emit(
            Diagnostic::error(
                "SM0407",
                span,
                format!(
                    "model `{}` declares {} output{} but its body gives {}",
                    model.name.name,
                    declared.len(),
                    if declared.len() == 1 { "" } else { "s" },
                    tensors.len()
                ),
            )
            .with_label(format!("{} output{}", tensors.len(), if tensors.len() == 1 { "" } else { "s" }))
            .with_secondary(decl_span, "outputs declared here"),
        );
        return None;
    }
    let mut ok = true;
    for (t, decl) in tensors.iter().zip(declared) {
        let mut dims = std::mem::take(&mut scope.dims);
        let want = declared_ty(cx, decl, &mut dims, false);
        scope.dims = dims;
        if !cx.unify_ty(&t.ty, &want) {
            ok = false;
            let found = cx.show(&t.ty);
            let want_s = cx.show(&want);
            let mut d = Diagnostic::error(
                "SM0408",
                t.origin.span,
                format!("model `{}` must return {want_s}, but this is {found}", model.name.name),
            )
            .with_label(format!("{} gives {found}", t.origin.what))
            .with_secondary(decl.span, format!("output declared as {want_s} here"));
            if t.origin.rnn_last_only && want.dims.len() == t.ty.dims.len() + 1 {
                d = d.with_help("add `return_sequences=true` to return every step");
            } else if t.origin.rnn_sequence && want.dims.len() + 1 == t.ty.dims.len() {
                d = d.with_help("remove `return_sequences=true` to return only the last step");
            }
            let d = cx.with_dim_help(d);
            cx.emit(d);
        }
    }
    ok.then_some(value)
}
