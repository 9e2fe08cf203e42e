//! Makes an imported `.seq` read like one written by hand: every keyword argument whose
//! absence changes no checked program is dropped (Keras's defaults, `name=` where the
//! automatic name is the same), each model declares its output types, and the text goes
//! through the canonical printer (`seqc fmt`). Each step is kept only if every model of the
//! file still checks to the same program (the same fingerprint: operations, attributes,
//! weight keys, shapes), so tidying can never change what the import means.

use seqmodel_compiler::grammar::ast::{DimAst, Expr, ExprKind, File, Ident, Stmt, TensorType};
use seqmodel_compiler::grammar::{self, Span};
use seqmodel_compiler::ir::{DType, Dim, Program};
use seqmodel_compiler::{Compiled, compile};

/// The tidy form of `source`, which compiled to `compiled`; `source` itself if anything
/// about it cannot be tidied.
pub(crate) fn tidy(source: &str, compiled: &Compiled) -> String {
    let Ok(mut file) = grammar::parse(source) else { return source.to_string() };
    let want = fingerprints(compiled);
    let same = |f: &File| compile(&grammar::print(f, source)).is_ok_and(|c| fingerprints(&c) == want);
    // Keyword arguments, one at a time, in source order.
    let mut n = 0;
    loop {
        let mut trial = file.clone();
        if !remove_kwarg(&mut trial, n) {
            break;
        }
        if same(&trial) {
            file = trial;
        } else {
            n += 1;
        }
    }
    // `h = A; y = L(h)` with `h` used once reads better as `y = A -> L`.
    let mut trial = file.clone();
    trial.models.iter_mut().for_each(|m| while collapse_once(&mut m.body) {});
    if same(&trial) {
        file = trial;
    }
    let mut trial = file.clone();
    for (m, p) in trial.models.iter_mut().zip(&compiled.programs) {
        if m.outputs.is_none() {
            m.outputs = Some(p.output_types().iter().map(|t| declared(p, &t.dims, t.dtype)).collect());
        }
    }
    if same(&trial) {
        file = trial;
    }
    grammar::print(&file, source)
}

fn fingerprints(c: &Compiled) -> Vec<u64> {
    c.programs.iter().map(Program::fingerprint).collect()
}

/// An output type as the model would declare it: numbers, the input dimensions' names, `_`
/// for a length the program derives.
fn declared(p: &Program, dims: &[Dim], dtype: DType) -> TensorType {
    let none = Span::new(0, 0);
    let dims = dims
        .iter()
        .map(|d| match *d {
            Dim::Fixed(n) => DimAst::Fixed(n, none),
            Dim::Sym { id, offset } if !p.is_derived_symbol(id) => {
                DimAst::Sym(Ident { name: p.symbols[id].clone(), span: none }, offset)
            }
            Dim::Sym { .. } => DimAst::Sym(Ident { name: "_".into(), span: none }, 0),
        })
        .collect();
    let dtype = match dtype {
        DType::F32 => None,
        DType::I32 => Some((grammar::ast::DTypeAst::I32, none)),
        DType::Bool => Some((grammar::ast::DTypeAst::Bool, none)),
    };
    TensorType { dims, dtype, span: none }
}

/// Removes the `n`-th keyword argument of the file (in source order); false if it has fewer.
fn remove_kwarg(file: &mut File, mut n: usize) -> bool {
    for m in &mut file.models {
        for s in &mut m.body {
            if remove_in(s.value_mut(), &mut n) {
                return true;
            }
        }
    }
    false
}

fn remove_in(e: &mut Expr, n: &mut usize) -> bool {
    match &mut e.kind {
        ExprKind::Call { callee, args, .. } => {
            if remove_in(callee, n) {
                return true;
            }
            let mut i = 0;
            while i < args.len() {
                if args[i].name.is_some() {
                    if *n == 0 {
                        args.remove(i);
                        return true;
                    }
                    *n -= 1;
                }
                if remove_in(&mut args[i].value, n) {
                    return true;
                }
                i += 1;
            }
            false
        }
        ExprKind::List(items) | ExprKind::Tuple(items) | ExprKind::Chain(items) => {
            items.iter_mut().any(|i| remove_in(i, n))
        }
        ExprKind::Index { base, .. } => remove_in(base, n),
        _ => false,
    }
}

/// Merges one statement `v = A` into the next when that is `w = L(v)` (or just `v`, the
/// output) and `v` is used nowhere else: `w = A -> L`. False when there is none to merge.
fn collapse_once(body: &mut Vec<Stmt>) -> bool {
    for i in 0..body.len().saturating_sub(1) {
        let Stmt::Assign { targets, value, .. } = &body[i] else { continue };
        let [v] = targets.as_slice() else { continue };
        let (v, head) = (v.clone(), value.clone());
        let uses: usize = body.iter().map(|s| uses_of(s.value(), &v.name)).sum();
        if uses != 1 {
            continue;
        }
        let next = body[i + 1].value_mut();
        let merged = match &next.kind {
            ExprKind::Name { ident, generics } if ident.name == v.name && generics.is_empty() => head,
            ExprKind::Call { callee, args, .. }
                if args.len() == 1
                    && args[0].name.is_none()
                    && matches!(&args[0].value.kind, ExprKind::Name { ident, generics } if ident.name == v.name && generics.is_empty()) =>
            {
                let mut stages = match head.kind {
                    ExprKind::Chain(stages) => stages,
                    // `L(x)` at the head of a chain reads `x -> L`.
                    ExprKind::Call { callee, mut args, .. }
                        if args.len() == 1
                            && args[0].name.is_none()
                            && matches!(args[0].value.kind, ExprKind::Name { .. }) =>
                    {
                        vec![args.remove(0).value, *callee]
                    }
                    _ => vec![head],
                };
                stages.push((**callee).clone());
                // The span of the call it replaces: one line, so the printer breaks the
                // chain only if it is long.
                Expr { kind: ExprKind::Chain(stages), span: next.span }
            }
            _ => continue,
        };
        *next = merged;
        body.remove(i);
        return true;
    }
    false
}

/// How many times the variable `name` is read in `e`.
fn uses_of(e: &Expr, name: &str) -> usize {
    let mut uses = 0;
    e.walk(&mut |e| {
        if let ExprKind::Name { ident, .. } = &e.kind {
            uses += usize::from(ident.name == name);
        }
    });
    uses
}
