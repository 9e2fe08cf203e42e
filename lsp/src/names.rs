//! What each name of a `.seq` file refers to: models, variables (inputs, assigned tensors and
//! named layer instances) and dimensions, each reference linked to its definition.

use seqmodel_compiler::Span;
use seqmodel_compiler::grammar::ast::{DimAst, ExprKind, File, ModelDef, Stmt};

/// The kind of a defined name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// A model.
    Model,
    /// An input, an assigned tensor or a layer instance.
    Variable,
    /// A dimension (`T`, or `N` of `model M<N>`).
    Dimension,
}

/// A use of a name (a definition refers to itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// The occurrence.
    pub at: Span,
    /// Its definition.
    pub def: Span,
    /// What it names.
    pub kind: NameKind,
}

/// Every occurrence of a name in `file` that can be resolved, with its definition.
pub fn links(file: &File) -> Vec<Link> {
    let mut out = Vec::new();
    for m in &file.models {
        out.push(Link { at: m.name.span, def: m.name.span, kind: NameKind::Model });
        model_links(file, m, &mut out);
    }
    out
}

fn model_links(file: &File, m: &ModelDef, out: &mut Vec<Link>) {
    // Dimensions: the declared parameters, else the first time an input names one.
    let mut dims: Vec<(String, Span)> = m.dim_params.iter().map(|d| (d.name.clone(), d.span)).collect();
    for d in &m.dim_params {
        out.push(Link { at: d.span, def: d.span, kind: NameKind::Dimension });
    }
    let types = m.params.iter().map(|p| &p.ty).chain(m.outputs.iter().flatten());
    for t in types {
        for d in &t.dims {
            if let DimAst::Sym(i, _) = d {
                dim_use(&i.name, i.span, &mut dims, out);
            }
        }
    }
    // Variables: inputs, then each assignment (a later one shadows an earlier one).
    let mut vars: Vec<(String, Span)> = Vec::new();
    for p in &m.params {
        vars.push((p.name.name.clone(), p.name.span));
        out.push(Link { at: p.name.span, def: p.name.span, kind: NameKind::Variable });
    }
    for s in &m.body {
        let value = match s {
            Stmt::Assign { value, .. } | Stmt::Expr(value) => value,
        };
        value.walk(&mut |e| {
            let ExprKind::Name { ident, generics } = &e.kind else { return };
            if let Some((_, def)) = vars.iter().rev().find(|(n, _)| *n == ident.name) {
                out.push(Link { at: ident.span, def: *def, kind: NameKind::Variable });
            } else if let Some(callee) = file.models.iter().find(|c| c.name.name == ident.name) {
                out.push(Link { at: ident.span, def: callee.name.span, kind: NameKind::Model });
            } else if let Some((_, def)) = dims.iter().find(|(n, _)| *n == ident.name) {
                // A dimension used as a value: `RepeatVector(N)`.
                out.push(Link { at: ident.span, def: *def, kind: NameKind::Dimension });
            }
            for g in generics {
                if let DimAst::Sym(i, _) = g {
                    dim_use(&i.name, i.span, &mut dims, out);
                }
            }
        });
        if let Stmt::Assign { targets, .. } = s {
            for t in targets {
                vars.push((t.name.clone(), t.span));
                out.push(Link { at: t.span, def: t.span, kind: NameKind::Variable });
            }
        }
    }
}

/// Links a dimension's occurrence to its definition (its first occurrence if undeclared).
fn dim_use(name: &str, at: Span, dims: &mut Vec<(String, Span)>, out: &mut Vec<Link>) {
    if name == "_" {
        return;
    }
    let def = match dims.iter().find(|(n, _)| n == name) {
        Some((_, d)) => *d,
        None => {
            dims.push((name.to_string(), at));
            at
        }
    };
    out.push(Link { at, def, kind: NameKind::Dimension });
}

/// The link at byte `offset`, if a name is there.
pub fn link_at(links: &[Link], offset: usize) -> Option<Link> {
    links.iter().copied().find(|l| l.at.start <= offset && offset <= l.at.end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_to_the_definition_in_scope() {
        let src = "model E<N>(x: [T, 2]) -> [N, 4] { h = x -> LSTM(4); h = RepeatVector(N)(h); h }\nmodel M(x: [T, 2]) -> [3, 4] { E<3>(x) }";
        let file = seqmodel_compiler::grammar::parse(src).unwrap();
        let ls = links(&file);
        let def_of = |needle: &str, nth: usize| {
            let at = src.match_indices(needle).nth(nth).unwrap().0 + usize::from(needle.starts_with('('));
            let l = link_at(&ls, at).unwrap();
            (&src[l.def.start..l.def.end], l.def.start, l.kind)
        };
        // `h` in `RepeatVector(N)(h)` is the first assignment; the last `h` the second.
        assert_eq!(def_of("(h)", 0).1, src.find("h = x").unwrap());
        assert_eq!(def_of("h }", 0).1, src.find("h = Rep").unwrap());
        assert_eq!(def_of("N)", 0), ("N", src.find("N>").unwrap(), NameKind::Dimension));
        assert_eq!(def_of("N, 4]", 0), ("N", src.find("N>").unwrap(), NameKind::Dimension));
        assert_eq!(def_of("T, 2]) -> [3", 0).0, "T");
        assert_eq!(def_of("E<3>", 0), ("E", 6, NameKind::Model));
    }
}
