//! The seqmodel compiler: parses `.seq` source, elaborates every model into a checked
//! [`seqmodel_ir::Program`] with inferred (possibly symbolic) shapes, and reports every
//! mistake as a located [`Diagnostic`].
//!
//! ```
//! let src = "model M(x: [T, 3]) -> [T, 2] { x -> LSTM(8, return_sequences=true) -> Dense(2) }";
//! let compiled = seqmodel_compiler::compile(src).unwrap();
//! let m = compiled.program("M").unwrap();
//! assert_eq!(m.param_count(), 4 * (3 * 8 + 8 * 8 + 8) + 8 * 2 + 2);
//! ```

// Diagnostics are large values by design (labels, notes, help); they are built once per
// error, never on a hot path, so boxing them would only add noise.
#![allow(clippy::result_large_err)]

pub mod analysis;
pub mod baked;
pub mod build;
mod check;
pub mod codegen;
pub mod codes;
mod diagnostic;
mod dims;
pub mod dot;
#[doc(hidden)] // the checking rules; used by the importer and the macro, not public API
pub mod layers;
#[doc(hidden)] // the proc-macro's logic, called only by `seqmodel-macros`
pub mod macro_support;
mod stub;
pub mod summary;

pub use diagnostic::{Diagnostic, Label, Renderer, Severity, closest, levenshtein};
pub use seqmodel_grammar as grammar;
pub use seqmodel_grammar::Span;
pub use seqmodel_ir as ir;

/// The checked models of one source.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// One program per model, in source order.
    pub programs: Vec<ir::Program>,
}

impl Compiled {
    /// The program of model `name`.
    pub fn program(&self, name: &str) -> Option<&ir::Program> {
        self.programs.iter().find(|p| p.name == name)
    }

    /// The last model of the file: by convention the one that composes the others.
    pub fn main(&self) -> Option<&ir::Program> {
        self.programs.last()
    }
}

/// Errors of a compilation: one or more diagnostics.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} error{} in the model source", .0.len(), if .0.len() == 1 { "" } else { "s" })]
pub struct CompileErrors(pub Vec<Diagnostic>);

impl CompileErrors {
    /// Renders every diagnostic rustc-style.
    pub fn render(&self, file_name: &str, source: &str, color: bool) -> String {
        let renderer = Renderer::new(file_name, source, color);
        self.0.iter().map(|d| renderer.render(d)).collect::<Vec<_>>().join("\n")
    }
}

/// Parses and checks `source`; every independent error is reported.
pub fn compile(source: &str) -> Result<Compiled, CompileErrors> {
    on_compile_stack(|| compile_here(source))
}

/// Runs `f` on a thread with a known, ample stack. Parsing and checking recurse over nested
/// expressions (at most `seqmodel_grammar::limits::MAX_NESTING` deep); there they cannot
/// overflow whatever thread calls (a proc-macro inside rustc, an editor, a test thread).
pub(crate) fn on_compile_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        match std::thread::Builder::new()
            .name("seqmodel-compile".into())
            .stack_size(COMPILE_STACK)
            .spawn_scoped(s, f)
        {
            Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            Err(e) => panic!("cannot start the compiling thread: {e}"),
        }
    })
}

/// The stack of the compiling thread: ample for the nesting limits in a debug build.
const COMPILE_STACK: usize = 64 << 20;

fn compile_here(source: &str) -> Result<Compiled, CompileErrors> {
    let file = seqmodel_grammar::parse(source).map_err(|e| {
        CompileErrors(vec![
            Diagnostic::error("SM0001", e.span, format!("syntax error: {}", e.message))
                .with_label(e.message.clone()),
        ])
    })?;
    compile_ast(&file)
}

/// Checks an already parsed file.
pub fn compile_ast(file: &seqmodel_grammar::ast::File) -> Result<Compiled, CompileErrors> {
    let checked = check_each(file);
    if checked.diags.is_empty() {
        Ok(Compiled { programs: checked.programs.into_iter().flatten().collect() })
    } else {
        Err(CompileErrors(checked.diags))
    }
}

/// Every model of a file checked on its own (see [`check_each`]).
#[derive(Debug, Clone)]
pub struct Checked {
    /// Per model, in source order: its program if the model and every model it calls
    /// check, else `None`.
    pub programs: Vec<Option<ir::Program>>,
    /// Every diagnostic of the file, in source order, each once.
    pub diags: Vec<Diagnostic>,
    /// What each model's check learned about its source (see [`analysis`]).
    pub facts: Vec<analysis::SpanFact>,
}

/// Checks every model of a file, keeping the programs of the models that check even when
/// others do not (so the macro replaces only the broken ones).
pub fn check_each(file: &seqmodel_grammar::ast::File) -> Checked {
    let mut diags = declaration_errors(file);
    if !diags.is_empty() {
        return Checked { programs: vec![None; file.models.len()], diags, facts: Vec::new() };
    }
    let mut programs = Vec::new();
    let mut facts = Vec::new();
    let mut clean = vec![true; file.models.len()];
    let mut pending = Vec::new();
    let names = check::FileModels::new(file);
    for (i, ok) in clean.iter_mut().enumerate() {
        let r = check::compile_model(file, &names, i);
        *ok = r.diags.is_empty();
        let calls_fine = r.call_errors.is_empty();
        diags.extend(r.diags);
        facts.extend(r.facts);
        pending.extend(r.call_errors);
        let program = r.program.filter(|p| match p.validate() {
            Ok(()) => true,
            Err(e) => {
                diags.push(
                    Diagnostic::error(
                        "SM0999",
                        file.models[i].name.span,
                        format!("internal compiler error: the checked program breaks an invariant ({e})"),
                    )
                    .with_label("while compiling this model")
                    .with_help("this is a bug in seqmodel; please report it with the model"),
                );
                false
            }
        });
        programs.push(program.filter(|_| *ok && calls_fine));
    }
    for (callee, d) in pending {
        if clean[callee] {
            diags.push(d);
        }
    }
    // The same mistake found through two entry models is reported once.
    let mut seen = std::collections::HashSet::new();
    diags.retain(|d| seen.insert((d.code, d.span, d.message.clone())));
    diags.sort_by_key(|d| d.span.start);
    Checked { programs, diags, facts }
}

fn declaration_errors(file: &seqmodel_grammar::ast::File) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut models: std::collections::HashMap<&str, Span> = std::collections::HashMap::new();
    for m in &file.models {
        if let Some(prev) = models.get(m.name.name.as_str()) {
            diags.push(
                Diagnostic::error("SM0414", m.name.span, format!("model `{}` is defined twice", m.name.name))
                    .with_label("second definition")
                    .with_secondary(*prev, "first defined here"),
            );
        } else {
            models.insert(&m.name.name, m.name.span);
        }
        if layers::class(&m.name.name).is_some() {
            diags.push(
                Diagnostic::error(
                    "SM0415",
                    m.name.span,
                    format!("model name `{}` is a layer type", m.name.name),
                )
                .with_label("choose another name"),
            );
        }
        for st in m.settings.iter().filter(|st| st.name.name == "batch" && st.value > layers::MAX_SIZE) {
            diags.push(layers::too_large(st.value_span, st.value));
        }
        for st in m.settings.iter().filter(|st| st.name.name == "batch" && st.value == 0) {
            diags.push(
                Diagnostic::error("SM0417", st.value_span, "a batch size cannot be 0")
                    .with_label("zero-sized batch"),
            );
        }
        let mut params: std::collections::HashMap<&str, Span> = std::collections::HashMap::new();
        for p in &m.params {
            if let Some(prev) = params.insert(&p.name.name, p.name.span) {
                diags.push(
                    Diagnostic::error(
                        "SM0416",
                        p.name.span,
                        format!("input `{}` is declared twice", p.name.name),
                    )
                    .with_label("second declaration")
                    .with_secondary(prev, "first declared here"),
                );
            }
        }
        let inputs = m.params.iter().map(|p| (&p.ty, true));
        for (ty, input) in inputs.chain(m.outputs.iter().flatten().map(|t| (t, false))) {
            for d in &ty.dims {
                match d {
                    seqmodel_grammar::ast::DimAst::Fixed(0, s) if input => diags.push(
                        Diagnostic::error("SM0417", *s, "a dimension cannot be 0")
                            .with_label("zero-sized dimension"),
                    ),
                    seqmodel_grammar::ast::DimAst::Fixed(n, s) if *n > layers::MAX_SIZE => {
                        diags.push(layers::too_large(*s, n))
                    }
                    seqmodel_grammar::ast::DimAst::Sym(_, off)
                        if off.unsigned_abs() > layers::MAX_SIZE as u64 =>
                    {
                        diags.push(layers::too_large(ty.span, off))
                    }
                    _ => {}
                }
            }
        }
    }
    diags
}
