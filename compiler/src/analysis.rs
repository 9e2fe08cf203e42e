//! What the checker knows about each piece of a source, for editors: the shape of every
//! expression, variable and chain step, and the layer behind every layer expression (hover,
//! inlay hints), with the diagnostics, for files that check and files that do not.
//!
//! ```
//! let src = "model M(x: [T, 3]) -> [4] { h = x -> LSTM(4) ; h }";
//! let a = seqmodel_compiler::analysis::analyze(src);
//! assert!(a.diags.is_empty());
//! let at = src.find("h =").unwrap();
//! let h = a.at(at).find_map(|f| f.shape()).unwrap();
//! assert_eq!(h, ["[4]"]);
//! ```

use seqmodel_grammar::{Span, ast};

use crate::Diagnostic;
use crate::check::{Elab, Fact};

/// One fact about the source at `span`.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanFact {
    /// Where.
    pub span: Span,
    /// What.
    pub kind: FactKind,
}

/// What is known about a span.
#[derive(Debug, Clone, PartialEq)]
pub enum FactKind {
    /// The tensor(s) it evaluates to, rendered with symbolic dimensions (`[T, 32]`, batch
    /// implicit); after a chain step, what the chain carries from there.
    Shape(Vec<String>),
    /// The layer instance it is or constructs.
    Layer {
        /// Keras's class name.
        class: &'static str,
        /// The instance's name (`lstm_1`).
        name: String,
        /// Its weight key prefix (`Model/lstm_1`).
        key: String,
        /// Its weight scalars, when the model checked.
        params: Option<usize>,
    },
}

impl SpanFact {
    /// The shapes, if this fact is one.
    pub fn shape(&self) -> Option<&[String]> {
        match &self.kind {
            FactKind::Shape(s) => Some(s),
            FactKind::Layer { .. } => None,
        }
    }
}

/// The analysis of one source.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    /// Every diagnostic, as [`crate::compile`] reports them.
    pub diags: Vec<Diagnostic>,
    /// Facts from every model, including the parts of broken models that checked.
    pub facts: Vec<SpanFact>,
    /// The syntax tree, when the source parses.
    pub file: Option<ast::File>,
}

impl Analysis {
    /// The facts whose span contains byte `offset`, innermost first.
    pub fn at(&self, offset: usize) -> impl Iterator<Item = &SpanFact> {
        let mut hits: Vec<&SpanFact> = self
            .facts
            .iter()
            .filter(|f| f.span.start <= offset && offset < f.span.end.max(f.span.start + 1))
            .collect();
        hits.sort_by_key(|f| f.span.end - f.span.start);
        hits.into_iter()
    }
}

/// Parses and checks `source`, keeping what is known even where it has errors.
pub fn analyze(source: &str) -> Analysis {
    crate::on_compile_stack(|| match seqmodel_grammar::parse(source) {
        Err(e) => Analysis {
            diags: vec![
                Diagnostic::error("SM0001", e.span, format!("syntax error: {}", e.message))
                    .with_label(e.message),
            ],
            ..Analysis::default()
        },
        Ok(file) => {
            let checked = crate::check_each(&file);
            Analysis { diags: checked.diags, facts: checked.facts, file: Some(file) }
        }
    })
}

/// The facts an elaboration collected, rendered with its final dimension bindings.
pub(crate) fn render(cx: &mut Elab<'_>) -> Vec<SpanFact> {
    let facts = std::mem::take(&mut cx.facts);
    facts
        .into_iter()
        .map(|(span, f)| {
            let kind = match f {
                Fact::Shape(tys) => FactKind::Shape(tys.iter().map(|t| cx.show(t)).collect()),
                Fact::Layer(i) => {
                    let l = &cx.layers[i];
                    FactKind::Layer { class: l.class, name: l.name.clone(), key: l.key.clone(), params: None }
                }
            };
            SpanFact { span, kind }
        })
        .collect()
}

/// Fills in each layer's parameter count from the checked program.
pub(crate) fn count_params(facts: &mut [SpanFact], program: &crate::ir::Program) {
    let specs = program.weight_specs();
    for f in facts {
        if let FactKind::Layer { key, params, .. } = &mut f.kind {
            let prefix = format!("{key}/");
            let n: usize = specs
                .iter()
                .filter(|w| w.key.starts_with(&prefix))
                .map(|w| w.shape.iter().product::<usize>())
                .sum();
            *params = Some(n);
        }
    }
}
