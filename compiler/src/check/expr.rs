//! Evaluation of expressions: names, literals, constructor calls, layer applications, model
//! calls, arrow chains and time indexing.

use seqmodel_grammar::{Span, ast};
use seqmodel_ir::Op;

use super::model::instantiate;
use super::{Elab, LayerInst, Scope, Tensor, Value};
use crate::diagnostic::Diagnostic;
use crate::dims::D;
use crate::layers::{self, classes};

/// The deepest nesting of model calls (each is inlined, so the work of checking a model is
/// quadratic in this depth).
pub(crate) const MAX_CALL_DEPTH: usize = 256;

impl Elab<'_> {
    /// Evaluates `e` in `scope`. Errors are emitted and give [`Value::Poison`]. What it gives
    /// is noted for editors.
    pub(crate) fn eval(&mut self, scope: &mut Scope, e: &ast::Expr) -> Value {
        let v = self.eval_here(scope, e);
        if !matches!(e.kind, ast::ExprKind::Chain(_)) {
            self.note(e.span, &v);
        }
        v
    }

    fn eval_here(&mut self, scope: &mut Scope, e: &ast::Expr) -> Value {
        match &e.kind {
            ast::ExprKind::Int(i) => Value::Int(*i),
            ast::ExprKind::Float(f) => Value::Float(*f),
            ast::ExprKind::Str(s) => Value::Str(s.clone()),
            ast::ExprKind::Bool(b) => Value::Bool(*b),
            ast::ExprKind::None => Value::None,
            ast::ExprKind::List(items) => Value::List(items.iter().map(|i| self.eval(scope, i)).collect()),
            ast::ExprKind::Tuple(items) => Value::Tuple(items.iter().map(|i| self.eval(scope, i)).collect()),
            ast::ExprKind::Name { ident, generics } => self.eval_name(scope, ident, generics),
            ast::ExprKind::Call { callee, args, args_span } => {
                let f = self.eval(scope, callee);
                self.eval_call(scope, f, callee.span, args, *args_span, e.span)
            }
            ast::ExprKind::Index { base, index, index_span } => {
                let b = self.eval(scope, base);
                match b {
                    Value::Tensor(t) => layers::time::index(self, scope, &t, index, *index_span, e.span),
                    Value::Poison => Value::Poison,
                    other => {
                        self.emit(
                            Diagnostic::error(
                                "SM0107",
                                base.span,
                                format!("only tensors can be sliced, this is {}", other.describe()),
                            )
                            .with_label("not a tensor"),
                        );
                        Value::Poison
                    }
                }
            }
            ast::ExprKind::Chain(stages) => {
                let mut v = self.eval(scope, &stages[0]);
                let mut span = stages[0].span;
                for stage in &stages[1..] {
                    let f = self.eval(scope, stage);
                    // Errors and origins point at the stage (`LSTM(16)`), not the whole chain.
                    v = self.apply(scope, f, stage.span, v, span, stage.span);
                    // What the chain carries after this step (an inlay hint's shape).
                    self.note(stage.span, &v);
                    span = span.join(stage.span);
                }
                v
            }
        }
    }

    fn eval_name(&mut self, scope: &mut Scope, ident: &ast::Ident, generics: &[ast::DimAst]) -> Value {
        let name = ident.name.as_str();
        if generics.is_empty() {
            if let Some(v) = scope.vars.get(name) {
                return v.clone();
            }
            if let Some(d) = scope.dims.get(name) {
                return Value::Dim(*d);
            }
        }
        if let Some(index) = self.models.get(name) {
            let mut gs = Vec::new();
            for g in generics {
                match g {
                    ast::DimAst::Fixed(n, s) => gs.push((D::Fixed(*n), *s)),
                    ast::DimAst::Sym(id, off) => {
                        match scope.dims.get(&id.name) {
                            Some(d) => gs.push((d.plus(*off), id.span)),
                            None => {
                                self.emit(
                                Diagnostic::error("SM0102", id.span, format!("unknown dimension `{}`", id.name))
                                    .with_label("not a dimension of this model")
                                    .with_help("dimensions come from the model's input types or its `<...>` parameters"),
                            );
                                return Value::Poison;
                            }
                        }
                    }
                }
            }
            return Value::Model { index, generics: gs };
        }
        if let Some(class) = layers::class(name) {
            if !generics.is_empty() {
                self.emit(
                    Diagnostic::error(
                        "SM0103",
                        ident.span,
                        format!("layer `{name}` takes no `<...>` arguments"),
                    )
                    .with_label("remove the `<...>`"),
                );
            }
            return Value::Class(class);
        }
        let layer_names: Vec<&str> = classes().map(|c| c.name).collect();
        let mut variables: Vec<&str> = scope.vars.keys().map(String::as_str).collect();
        variables.sort_unstable();
        let mut d = Diagnostic::error("SM0101", ident.span, format!("cannot find `{name}`"))
            .with_label("not a variable, a model or a layer type");
        if let Some(c) = self.models.suggest(name, &layer_names, &variables) {
            d = d.with_help(format!("did you mean `{c}`?"));
        } else if name.chars().next().is_some_and(char::is_uppercase) {
            d = d.with_note(format!("known layers: {}", layer_names.join(", ")));
        }
        self.emit(d);
        Value::Poison
    }

    fn eval_call(
        &mut self,
        scope: &mut Scope,
        f: Value,
        callee_span: Span,
        args: &[ast::Arg],
        args_span: Span,
        span: Span,
    ) -> Value {
        match f {
            Value::Class(class) => {
                let mut evaluated = Vec::new();
                for a in args {
                    let v = self.eval(scope, &a.value);
                    evaluated.push((a.name.as_ref().map(|n| (n.name.clone(), n.span)), v, a.span));
                }
                self.construct(scope, class, evaluated, span)
            }
            Value::Layer(_) | Value::Model { .. } => {
                let mut positional = Vec::new();
                let mut initial_state = None;
                let mut mask = None;
                for a in args {
                    let v = self.eval(scope, &a.value);
                    match &a.name {
                        None => positional.push((v, a.value.span)),
                        Some(n) if n.name == "initial_state" && matches!(f, Value::Layer(_)) => {
                            initial_state = Some((v, a.span))
                        }
                        Some(n) if n.name == "mask" && matches!(f, Value::Layer(_)) => {
                            mask = Some((v, a.span))
                        }
                        // Keras's default: the layer runs as inference runs it.
                        Some(n) if n.name == "training" && matches!(v, Value::Bool(false) | Value::None) => {}
                        Some(n) if n.name == "training" => {
                            self.emit(
                                Diagnostic::error("SM0104", a.span, format!("`training=` other than `false` when calling {}", f.describe()))
                                    .with_label("not supported")
                                    .with_note("a model runs as inference at `predict` and as training in its trainer; a call cannot force either"),
                            );
                        }
                        Some(n) => {
                            self.emit(
                                Diagnostic::error("SM0104", n.span, format!("unexpected keyword `{}` when calling {}", n.name, f.describe()))
                                    .with_label("unexpected keyword")
                                    .with_note("a layer is called with its input tensor (and `initial_state=[...]` for RNNs); a model with its inputs"),
                            );
                        }
                    }
                }
                if let Value::Model { index, generics } = f {
                    return self.call_model(scope, index, generics, positional, callee_span, span);
                }
                let input = match positional.len() {
                    1 => positional.pop().expect("one").0,
                    0 => {
                        self.emit(
                            Diagnostic::error("SM0106", args_span, "a layer must be called with its input")
                                .with_label("no input given"),
                        );
                        return Value::Poison;
                    }
                    _ => Value::List(positional.into_iter().map(|(v, _)| v).collect()),
                };
                let Value::Layer(id) = f else { unreachable!() };
                let input = match mask {
                    Some((m, mask_span)) => self.masked(scope, id, input, m, mask_span),
                    None => input,
                };
                self.apply_layer(scope, id, input, args_span, initial_state, span)
            }
            Value::Poison => Value::Poison,
            other => {
                self.emit(
                    Diagnostic::error("SM0105", callee_span, format!("{} cannot be called", other.describe()))
                        .with_label("not a layer or a model")
                        .with_help("a `(` after an expression continues it as a call; if a new statement starts here, end the previous one with `;`"),
                );
                Value::Poison
            }
        }
    }

    /// Constructs a layer instance from its class and evaluated arguments.
    fn construct(
        &mut self,
        scope: &mut Scope,
        class: &'static layers::LayerClass,
        args: Vec<layers::RawArg>,
        span: Span,
    ) -> Value {
        if args.iter().any(|(_, v, _)| matches!(v, Value::Poison)) {
            return Value::Poison;
        }
        let bound = match layers::bind_args(class, args, span) {
            Ok(b) => b,
            Err(errors) => {
                for e in errors {
                    self.emit(e);
                }
                return Value::Poison;
            }
        };
        let cfg = match layers::build_cfg(class, &bound, span) {
            Ok(cfg) => cfg,
            Err(d) => {
                self.emit(d);
                return Value::Poison;
            }
        };
        if let Err(d) = layers::validate(self, &cfg, class, span) {
            self.emit(d);
            return Value::Poison;
        }
        let name = match bound.name() {
            Some((n, nspan)) => {
                if let Some(prev) = scope.names.get(&n) {
                    let prev = *prev;
                    self.emit(
                        Diagnostic::error("SM0109", nspan, format!("two layers are named \"{n}\""))
                            .with_label("second use of the name")
                            .with_secondary(prev, "first used here")
                            .with_help("to share weights, assign the layer once and call it twice"),
                    );
                    return Value::Poison;
                }
                scope.names.insert(n.clone(), nspan);
                n
            }
            None => loop {
                let c = scope.counters.entry(class.snake).or_insert(0);
                let n = if *c == 0 { class.snake.to_string() } else { format!("{}_{}", class.snake, c) };
                *c += 1;
                if !scope.names.contains_key(&n) {
                    scope.names.insert(n.clone(), span);
                    break n;
                }
            },
        };
        let model_name = &self.file.models[scope.model].name.name;
        let key = format!("{model_name}/{name}");
        self.layers.push(LayerInst { cfg, class: class.name, name, key, built_input: None });
        Value::Layer(self.layers.len() - 1)
    }

    /// Applies a layer or a model (the right side of `->`) to a value.
    pub(crate) fn apply(
        &mut self,
        scope: &mut Scope,
        f: Value,
        f_span: Span,
        x: Value,
        x_span: Span,
        span: Span,
    ) -> Value {
        match f {
            Value::Layer(id) => self.apply_layer(scope, id, x, f_span, None, span),
            Value::Model { index, generics } => {
                let args = match x {
                    Value::Tuple(items) | Value::List(items) => {
                        items.into_iter().map(|v| (v, x_span)).collect()
                    }
                    v => vec![(v, x_span)],
                };
                self.call_model(scope, index, generics, args, f_span, span)
            }
            Value::Poison => Value::Poison,
            Value::Class(c) => {
                self.emit(
                    Diagnostic::error(
                        "SM0108",
                        f_span,
                        format!("`{}` must be constructed before it is applied", c.name),
                    )
                    .with_label("a layer type, not a layer")
                    .with_help(format!("write `{}(...)` with its arguments", c.name)),
                );
                Value::Poison
            }
            other => {
                self.emit(
                    Diagnostic::error(
                        "SM0108",
                        f_span,
                        format!("`->` needs a layer or a model on its right, found {}", other.describe()),
                    )
                    .with_label("cannot be applied"),
                );
                Value::Poison
            }
        }
    }

    /// Applies layer instance `id` to `x`.
    pub(crate) fn apply_layer(
        &mut self,
        scope: &mut Scope,
        id: usize,
        x: Value,
        layer_span: Span,
        initial_state: Option<(Value, Span)>,
        span: Span,
    ) -> Value {
        if x.has_poison() {
            return Value::Poison;
        }
        layers::apply(self, scope, id, x, layer_span, initial_state, span)
    }

    /// Inlines a call of model `index`.
    pub(crate) fn call_model(
        &mut self,
        scope: &mut Scope,
        index: usize,
        generics: Vec<(D, Span)>,
        args: Vec<(Value, Span)>,
        callee_span: Span,
        span: Span,
    ) -> Value {
        if args.iter().any(|(v, _)| matches!(v, Value::Poison)) {
            return Value::Poison;
        }
        let callee = &self.file.models[index];
        if self.stack.len() >= MAX_CALL_DEPTH {
            self.emit(
                Diagnostic::error(
                    "SM0418",
                    callee_span,
                    format!("model calls nested more than {MAX_CALL_DEPTH} deep"),
                )
                .with_label("one call too deep")
                .with_note("models are inlined into their callers; a chain this deep is almost certainly generated by mistake"),
            );
            return Value::Poison;
        }
        if self.stack.contains(&index) {
            self.emit(
                Diagnostic::error(
                    "SM0409",
                    callee_span,
                    format!("model `{}` calls itself", callee.name.name),
                )
                .with_label("recursive call")
                .with_note("models are inlined; recursion has no end"),
            );
            return Value::Poison;
        }
        // Errors of the callee's own body are reported where it is defined; here, only the
        // binding of the call (inputs, dimensions) is checked.
        let path = format!("{}/{}", scope.path, callee.name.name);
        let before = self.suppressed.len();
        let arg_errors = self.diags.len();
        let result = { self.quiet_call(|cx| instantiate(cx, index, args, generics, callee_span, &path)) };
        let _ = arg_errors;
        match result {
            Some(v) => {
                // Re-tag outputs so hints name the call, not the callee's internals.
                retag(v, span, &callee.name.name)
            }
            None => {
                if self.suppressed.len() > before {
                    let first = self.suppressed[before].clone();
                    let mut d = Diagnostic::error(
                        "SM0413",
                        callee_span,
                        format!("model `{}` does not check when called here", callee.name.name),
                    )
                    .with_label("called here")
                    .with_secondary(first.span, first.message.clone());
                    if let Some(h) = first.help.clone() {
                        d = d.with_help(h);
                    }
                    if first.code == "SM0401" || first.code == "SM0402" || first.code == "SM0403" {
                        // Binding errors belong to the caller: report them directly.
                        self.emit(first);
                    } else {
                        self.call_errors.push((index, d));
                    }
                }
                Value::Poison
            }
        }
    }

    /// The input of layer `id` with the call's `mask=` applied ([`layers::set_mask`]): `m`
    /// a boolean tensor (or `None`, which removes the mask) for one input, a list with one
    /// entry per input for a layer called on a list.
    fn masked(&mut self, scope: &mut Scope, id: usize, input: Value, m: Value, span: Span) -> Value {
        let layer = self.layers[id].name.clone();
        let one = |cx: &mut Self, scope: &mut Scope, x: Value, m: Value| match (x, m) {
            (Value::Tensor(x), Value::Tensor(m)) => layers::set_mask(cx, scope, &layer, &x, Some(&m), span),
            (Value::Tensor(x), Value::None) => layers::set_mask(cx, scope, &layer, &x, None, span),
            (Value::Poison, _) | (_, Value::Poison) => Value::Poison,
            (x, m) => {
                cx.emit(
                    Diagnostic::error(
                        "SM0320",
                        span,
                        format!("`mask=` gives {} for {}", m.describe(), x.describe()),
                    )
                    .with_label("not a mask for this input")
                    .with_help(
                        "a boolean [T] tensor (or `None`) for one input, a list of them for a list of inputs",
                    ),
                );
                Value::Poison
            }
        };
        match (input, m) {
            (Value::List(xs), Value::List(ms)) if xs.len() == ms.len() => {
                Value::List(xs.into_iter().zip(ms).map(|(x, m)| one(self, scope, x, m)).collect())
            }
            (Value::List(xs), Value::None) => {
                Value::List(xs.into_iter().map(|x| one(self, scope, x, Value::None)).collect())
            }
            (x, m) => one(self, scope, x, m),
        }
    }

    fn quiet_call<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        self.quiet += 1;
        let r = f(self);
        self.quiet -= 1;
        r
    }
}

fn retag(v: Value, span: Span, model: &str) -> Value {
    match v {
        Value::Tensor(mut t) => {
            t.origin.span = span;
            t.origin.what = format!("model `{model}`");
            t.origin.rnn_last_only = false;
            t.origin.rnn_sequence = false;
            Value::Tensor(t)
        }
        Value::Tuple(items) => Value::Tuple(items.into_iter().map(|i| retag(i, span, model)).collect()),
        other => other,
    }
}

/// Adds a single-input, single-output node and returns its tensor.
#[allow(clippy::too_many_arguments)] // mirrors `Elab::add_node`
pub(crate) fn unary(
    cx: &mut Elab<'_>,
    scope: &Scope,
    op: Op,
    layer: &str,
    weights: Option<String>,
    x: &Tensor,
    ty: super::ITy,
    span: Span,
    what: String,
) -> Value {
    let n = cx.add_node(op, layer, &scope.path, weights, &[x.port], vec![ty.clone()], span);
    Value::Tensor(Tensor {
        port: seqmodel_ir::Port { node: n, port: 0 },
        ty,
        origin: super::Origin { span, what, rnn_last_only: false, rnn_sequence: false, declared: None },
    })
}
