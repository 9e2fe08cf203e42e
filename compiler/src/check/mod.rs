//! Elaboration: walks a model's AST, evaluates its expressions to tensors, layers and models,
//! infers every shape (unifying symbolic dimensions) and builds the IR graph. Nested model
//! calls are inlined; their weights are keyed by the model definition so calls share them.

mod expr;
mod model;
mod value;

use std::collections::HashMap;

use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use seqmodel_grammar::{Span, ast};
use seqmodel_ir::{self as ir, DType, Edge, Node, Op, Port};

pub use value::{ITy, Origin, Tensor, Value};

use crate::diagnostic::Diagnostic;
use crate::dims::{D, DimMismatch, DimTable};
use crate::layers::LayerCfg;

/// A layer instance: a constructed layer that may be applied once or several times.
#[derive(Debug, Clone)]
pub struct LayerInst {
    /// Its configuration.
    pub cfg: LayerCfg,
    /// Keras class name.
    pub class: &'static str,
    /// The layer's name (`lstm`, `lstm_1`, or `name=`).
    pub name: String,
    /// Weight key prefix (`Model/name`).
    pub key: String,
    /// Input feature size fixed by the first application (weights depend on it).
    pub built_input: Option<(usize, Span)>,
}

/// Names visible in one model instantiation.
pub(crate) struct Scope {
    pub model: usize,
    pub vars: HashMap<String, Value>,
    pub dims: HashMap<String, D>,
    pub counters: HashMap<&'static str, usize>,
    pub names: HashMap<String, Span>,
    pub path: String,
}

/// The models of a file by name, built once per file (rebuilding it for every model made
/// checking quadratic in the models), with the budget of "did you mean" comparisons that all
/// the file's models share: a suggestion scans every name in view, so without a bound a file
/// of many models that each misspell a name took time quadratic in the models (2,000 took
/// 6 s). Past the budget, unknown names are still errors, only without a suggestion.
pub(crate) struct FileModels<'a> {
    by_name: HashMap<&'a str, usize>,
    /// In source order, so that of equally close names the first is suggested.
    in_order: Vec<&'a str>,
    suggestion_budget: std::cell::Cell<usize>,
}

impl<'a> FileModels<'a> {
    /// Comparisons of names that suggestions may make in one file.
    const SUGGESTION_BUDGET: usize = 4_000_000;

    /// The models of `file`.
    pub(crate) fn new(file: &'a ast::File) -> Self {
        FileModels {
            by_name: file.models.iter().enumerate().map(|(i, m)| (m.name.name.as_str(), i)).collect(),
            in_order: file.models.iter().map(|m| m.name.name.as_str()).collect(),
            suggestion_budget: std::cell::Cell::new(Self::SUGGESTION_BUDGET),
        }
    }

    /// The index of the model called `name`.
    pub(crate) fn get(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The layer class, variable or model name closest to `name`. Variables and models are
    /// searched while the budget lasts; the layer classes (a fixed few) always are.
    pub(crate) fn suggest<'b>(
        &'b self,
        name: &str,
        classes: &[&'b str],
        variables: &[&'b str],
    ) -> Option<&'b str> {
        let cost = variables.len() + self.in_order.len();
        let left = self.suggestion_budget.get();
        let classes = classes.iter().copied();
        if cost > left {
            return crate::diagnostic::closest(name, classes);
        }
        self.suggestion_budget.set(left - cost);
        let names = variables.iter().chain(&self.in_order).copied();
        crate::diagnostic::closest(name, classes.chain(names))
    }
}

/// One compilation of one entry model.
pub(crate) struct Elab<'a> {
    pub file: &'a ast::File,
    pub models: &'a FileModels<'a>,
    pub dims: DimTable,
    pub graph: StableDiGraph<Node, Edge>,
    pub types: HashMap<NodeIndex, Vec<ITy>>,
    pub spans: HashMap<NodeIndex, (usize, usize)>,
    pub layers: Vec<LayerInst>,
    pub diags: Vec<Diagnostic>,
    /// Above zero while inlining a callee (its own errors are reported where it is defined).
    pub quiet: usize,
    pub suppressed: Vec<Diagnostic>,
    pub stack: Vec<usize>,
    pub batch: Option<(usize, Span)>,
    pub stateful: Option<Span>,
    /// Call sites whose callee failed to check with the caller's bindings.
    pub call_errors: Vec<(usize, Diagnostic)>,
    /// Why the last failed [`Elab::unify_ty`] failed.
    pub dim_conflict: Option<DimMismatch>,
    /// What each expression of the entry model evaluated to (for editors).
    pub facts: Vec<(Span, Fact)>,
}

/// What the checker learned about one expression of the model being checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fact {
    /// It is a tensor, or several (a tuple of outputs).
    Shape(Vec<ITy>),
    /// It is a layer instance (index into [`Elab::layers`]).
    Layer(usize),
}

impl<'a> Elab<'a> {
    /// An elaboration of `file`, whose models are found by name in `models`.
    pub(crate) fn new(file: &'a ast::File, models: &'a FileModels<'a>) -> Self {
        Elab {
            file,
            models,
            dims: DimTable::default(),
            graph: StableDiGraph::new(),
            types: HashMap::new(),
            spans: HashMap::new(),
            layers: Vec::new(),
            diags: Vec::new(),
            quiet: 0,
            suppressed: Vec::new(),
            stack: Vec::new(),
            batch: None,
            stateful: None,
            call_errors: Vec::new(),
            dim_conflict: None,
            facts: Vec::new(),
        }
    }

    /// `d` with the `help:` of the last failed unification, when a named dimension caused
    /// it (as a note if `d` has a help of its own).
    pub(crate) fn with_dim_help(&mut self, d: Diagnostic) -> Diagnostic {
        match self.dim_conflict.take().and_then(|c| c.help()) {
            Some(h) if d.help.is_none() => d.with_help(h),
            Some(h) => d.with_note(h),
            None => d,
        }
    }

    /// Records what the expression at `span` evaluated to (not inside an inlined callee,
    /// whose own body is recorded when it is checked as an entry).
    pub(crate) fn note(&mut self, span: Span, v: &Value) {
        if self.quiet > 0 {
            return;
        }
        let fact = match v {
            Value::Layer(i) => Fact::Layer(*i),
            Value::Tensor(_) | Value::Tuple(_) | Value::List(_) => match flatten_tensors(v) {
                Some(ts) if !ts.is_empty() => Fact::Shape(ts.into_iter().map(|t| t.ty).collect()),
                _ => return,
            },
            _ => return,
        };
        self.facts.push((span, fact));
    }

    /// Reports a diagnostic (or keeps it aside while inlining a callee).
    pub(crate) fn emit(&mut self, d: Diagnostic) {
        if self.quiet > 0 {
            self.suppressed.push(d);
        } else {
            self.diags.push(d);
        }
    }

    /// Adds a node with its inputs and output types.
    #[allow(clippy::too_many_arguments)] // one flat call keeps every node's provenance explicit
    pub(crate) fn add_node(
        &mut self,
        op: Op,
        layer: &str,
        scope: &str,
        weights: Option<String>,
        inputs: &[Port],
        outputs: Vec<ITy>,
        span: Span,
    ) -> NodeIndex {
        let n = self.graph.add_node(Node { op, layer: layer.into(), scope: scope.into(), weights });
        for (i, p) in inputs.iter().enumerate() {
            self.graph.add_edge(p.node, n, Edge { src_port: p.port, dst_port: i });
        }
        self.types.insert(n, outputs);
        self.spans.insert(n, (span.start, span.end));
        n
    }

    /// Renders a type for messages: `[T, 8]`.
    pub(crate) fn show(&mut self, ty: &ITy) -> String {
        let dims: Vec<String> = ty.dims.iter().map(|d| self.dims.show(*d)).collect();
        match ty.dtype {
            DType::F32 => format!("[{}]", dims.join(", ")),
            dtype => format!("[{}] of {dtype}", dims.join(", ")),
        }
    }

    /// Unifies `found` with `expected` dimension by dimension; false on any mismatch.
    pub(crate) fn unify_ty(&mut self, found: &ITy, expected: &ITy) -> bool {
        if found.dims.len() != expected.dims.len() || found.dtype != expected.dtype {
            return false;
        }
        // Check on a copy first so a failed unification leaves no partial bindings.
        let mut trial = self.dims.clone();
        for (a, b) in found.dims.iter().zip(&expected.dims) {
            if let Err(e) = trial.unify(*a, *b) {
                self.dim_conflict = Some(e);
                return false;
            }
        }
        self.dims = trial;
        true
    }

    /// Converts the inference state into a finished [`ir::Program`].
    pub(crate) fn finish(
        mut self,
        model: &ast::ModelDef,
        inputs: Vec<ir::InputSpec>,
        outputs: Vec<Port>,
    ) -> ir::Program {
        let roots = self.dims.roots();
        let mut symbols: Vec<String> = Vec::new();
        let mut root_sym = HashMap::new();
        for r in roots {
            let base = self.dims.root_name(r).to_string();
            let mut name = base.clone();
            let mut k = 1;
            while symbols.contains(&name) {
                k += 1;
                name = format!("{base}{k}");
            }
            root_sym.insert(r, symbols.len());
            symbols.push(name);
        }
        let conv = |dims: &mut DimTable, d: D| match dims.resolve(d) {
            D::Fixed(n) => ir::Dim::Fixed(n),
            D::Var(r, off) => ir::Dim::Sym { id: root_sym[&r], offset: off },
        };
        let mut types = HashMap::new();
        for (n, tys) in &self.types {
            let conv_tys: Vec<ir::TensorType> = tys
                .iter()
                .map(|t| ir::TensorType {
                    dims: t.dims.iter().map(|d| conv(&mut self.dims, *d)).collect(),
                    dtype: t.dtype,
                })
                .collect();
            types.insert(*n, conv_tys);
        }
        let inputs = inputs
            .into_iter()
            .map(|mut i| {
                i.ty = types[&i.node][0].clone();
                i
            })
            .collect();
        ir::Program {
            name: model.name.name.clone(),
            docs: model.docs.iter().map(|d| d.text.trim().to_string()).collect(),
            graph: self.graph,
            inputs,
            outputs,
            types,
            symbols,
            batch: self.batch.map(|(b, _)| b),
            spans: self.spans,
        }
    }
}

/// The tensors of a value that is one tensor or a tuple/list of tensors.
pub(crate) fn flatten_tensors(v: &Value) -> Option<Vec<Tensor>> {
    match v {
        Value::Tensor(t) => Some(vec![t.clone()]),
        Value::Tuple(items) | Value::List(items) => {
            let mut out = Vec::new();
            for i in items {
                out.extend(flatten_tensors(i)?);
            }
            Some(out)
        }
        _ => None,
    }
}

pub(crate) use expr::unary as expr_unary;
pub(crate) use model::compile_model;
