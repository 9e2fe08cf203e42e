//! The canonical printer: one layout for every `.seq` file (`seqc fmt`, `seqc import`).
//!
//! Models are separated by a blank line, statements are indented by four spaces, arguments
//! and items are separated by `, `, and a chain longer than [`MAX_WIDTH`] puts each `->`
//! step on its own line. Numbers and strings are printed as written. Comments are kept: a
//! comment on its own line stays before the statement it preceded, one at the end of a
//! line stays there, and one inside a statement moves to its own line before it. Printing
//! is idempotent: formatting formatted text changes nothing.

use std::fmt::Write;

use crate::ast::*;
use crate::{ParseError, Span};

/// Lines are kept within this many columns where a chain can be broken.
pub const MAX_WIDTH: usize = 100;

/// Parses `source` and prints it canonically (see the module docs).
///
/// ```
/// let messy = "model  M(x:[T,3])->[2]{ x->LSTM( 8 )   // the encoder\n->Dense(2) }";
/// let tidy = seqmodel_grammar::format(messy).unwrap();
/// assert_eq!(tidy, "model M(x: [T, 3]) -> [2] {\n    x -> LSTM(8) // the encoder\n      -> Dense(2)\n}\n");
/// assert_eq!(seqmodel_grammar::format(&tidy).unwrap(), tidy);
/// ```
pub fn format(source: &str) -> Result<String, ParseError> {
    let file = crate::parse(source)?;
    Ok(print(&file, source))
}

/// Prints a parsed `file` canonically; `source` is the text it was parsed from (for its
/// comments and the spelling of its numbers and strings).
pub fn print(file: &File, source: &str) -> String {
    let mut p = Printer { source, comments: comments(source), next: 0, out: String::new(), last_end: 0 };
    for m in &file.models {
        p.model(m);
    }
    p.comments_before(source.len(), 0);
    if p.out.ends_with("\n\n") {
        p.out.pop();
    }
    p.out
}

/// A comment of the source: where it is and its text.
#[derive(Debug, Clone)]
struct Comment {
    span: Span,
    text: String,
}

/// Every `//` and `/* */` comment outside strings (doc comments are part of the AST).
fn comments(source: &str) -> Vec<Comment> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' => i = crate::parser::string_end(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                let end = source[i..].find('\n').map_or(source.len(), |n| i + n);
                // `///` (exactly three slashes) is a doc comment, in the AST.
                let doc = bytes.get(i + 2) == Some(&b'/') && bytes.get(i + 3) != Some(&b'/');
                if !doc {
                    out.push(Comment {
                        span: Span::new(i, end),
                        text: source[i..end].trim_end().to_string(),
                    });
                }
                i = end;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = crate::parser::block_comment_end(bytes, i);
                out.push(Comment { span: Span::new(i, end), text: source[i..end].to_string() });
                i = end;
            }
            _ => i += 1,
        }
    }
    out
}

struct Printer<'a> {
    source: &'a str,
    comments: Vec<Comment>,
    next: usize,
    out: String,
    /// Where in the source the last printed thing ended (to keep blank lines).
    last_end: usize,
}

impl Printer<'_> {
    /// Prints, each on its own line at `indent`, the comments not yet printed that start
    /// before `pos`.
    fn comments_before(&mut self, pos: usize, indent: usize) {
        while let Some(c) = self.comments.get(self.next).filter(|c| c.span.start < pos) {
            let (span, text) = (c.span, c.text.clone());
            self.blank_line_before(span.start);
            let _ = writeln!(self.out, "{:indent$}{text}", "");
            self.last_end = span.end;
            self.next += 1;
        }
    }

    /// One blank line if the source had at least one between the last printed thing and
    /// `start` (never at the start of the file or of a body).
    fn blank_line_before(&mut self, start: usize) {
        let gap = self.source.get(self.last_end..start).unwrap_or("");
        let blank = gap
            .split('\n')
            .skip(1)
            .collect::<Vec<_>>()
            .split_last()
            .is_some_and(|(_, mid)| mid.iter().any(|l| l.trim().is_empty()));
        if blank && !self.out.is_empty() && !self.out.ends_with("{\n") && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    /// Appends the next comment to the current line if it followed `pos` on its line.
    fn trailing_comment(&mut self, pos: usize) {
        if let Some(c) = self.comments.get(self.next) {
            let between = self.source.get(pos..c.span.start).unwrap_or("\n");
            if !between.contains('\n')
                && between.trim_matches(|ch: char| ch.is_whitespace() || ch == ';').is_empty()
            {
                let (end, text) = (c.span.end, c.text.clone());
                let _ = write!(self.out, " {text}");
                self.last_end = end;
                self.next += 1;
            }
        }
    }

    fn text(&self, span: Span) -> &str {
        self.source.get(span.start..span.end).unwrap_or("")
    }

    fn model(&mut self, m: &ModelDef) {
        self.comments_before(m.span.start, 0);
        // Models are always separated by a blank line.
        if !self.out.is_empty() && !self.out.ends_with("\n\n") && self.out.ends_with("}\n") {
            self.out.push('\n');
        }
        self.blank_line_before(m.span.start);
        // The docs, with the comments between them where they were; comments inside the
        // header go after them, before the model's first line.
        for doc in &m.docs {
            self.comments_before(doc.span.start, 0);
            self.blank_line_before(doc.span.start);
            for line in doc.text.split('\n') {
                let _ = writeln!(self.out, "///{}", line.trim_end());
            }
            self.last_end = doc.span.end;
        }
        let brace = self.body_start(m);
        self.comments_before(brace, 0);
        let head = header(m);
        let _ = writeln!(self.out, "{head} {{");
        self.last_end = brace + 1;
        let starts: Vec<bool> = m.body.iter().map(|s| self.stmt_flat(s).starts_with(['(', '['])).collect();
        for (i, s) in m.body.iter().enumerate() {
            // A statement followed by one starting with `(` or `[` would read as a call or
            // an index of it without the `;`.
            let semi = starts.get(i + 1).copied().unwrap_or(false);
            self.stmt(s, semi);
        }
        self.comments_before(m.span.end, 4);
        self.out.push_str("}\n");
        self.last_end = m.span.end;
    }

    /// Where the body's `{` is: after the last part of the header.
    fn body_start(&self, m: &ModelDef) -> usize {
        let mut end = m.name.span.end;
        for p in &m.params {
            end = end.max(p.ty.span.end);
        }
        for t in m.outputs.iter().flatten() {
            end = end.max(t.span.end);
        }
        for s in &m.settings {
            end = end.max(s.value_span.end);
        }
        // Past the closing `)` of the inputs too (an input-less model).
        let rest = self.source.get(end..).unwrap_or("");
        rest.find('{').map_or(m.span.end, |i| end + i)
    }

    /// The statement on one line.
    fn stmt_flat(&self, s: &Stmt) -> String {
        match s {
            Stmt::Assign { targets, value, .. } => format!("{}{}", lhs(targets), self.expr(value)),
            Stmt::Expr(e) => self.expr(e),
        }
    }

    /// Prints a statement (and the comments before and beside it) at indent 4. A chain that
    /// the source broke over lines, or that would pass [`MAX_WIDTH`], puts each `->` step
    /// after the first on its own line, the arrows aligned under the first one, each step
    /// keeping its end-of-line comment.
    fn stmt(&mut self, s: &Stmt, semi: bool) {
        let span = stmt_span(s);
        let (prefix, value) = match s {
            Stmt::Assign { targets, value, .. } => (lhs(targets), value),
            Stmt::Expr(e) => (String::new(), e),
        };
        let semi = if semi { ";" } else { "" };
        self.comments_before(span.start, 4);
        self.blank_line_before(span.start);
        let flat = self.stmt_flat(s);
        let stages = match &value.kind {
            ExprKind::Chain(stages)
                if stages.len() > 2
                    && (self.text(value.span).contains('\n') || 4 + flat.len() > MAX_WIDTH) =>
            {
                stages
            }
            _ => {
                self.comments_before(span.end, 4);
                let _ = write!(self.out, "    {flat}{semi}");
                self.trailing_comment(span.end);
                self.out.push('\n');
                self.last_end = self.last_end.max(span.end);
                return;
            }
        };
        let first = self.stage(&stages[0]);
        let align = 4 + prefix.len() + first.len() + 1;
        self.comments_before(stages[1].span.end, 4);
        let _ = write!(self.out, "    {prefix}{first} -> {}", self.stage(&stages[1]));
        for (k, st) in stages.iter().enumerate().skip(1) {
            if k > 1 {
                self.out.push('\n');
                self.comments_before(st.span.end, align);
                let _ = write!(self.out, "{:align$}-> {}", "", self.stage(st));
            }
            if k + 1 == stages.len() {
                self.out.push_str(semi);
            }
            self.trailing_comment(st.span.end);
        }
        self.out.push('\n');
        self.last_end = self.last_end.max(span.end);
    }

    /// A chain stage (a chain inside a chain keeps its parentheses).
    fn stage(&self, e: &Expr) -> String {
        match e.kind {
            ExprKind::Chain(_) => format!("({})", self.expr(e)),
            _ => self.expr(e),
        }
    }

    fn expr(&self, e: &Expr) -> String {
        match &e.kind {
            ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Str(_) => self.text(e.span).to_string(),
            ExprKind::Bool(b) => b.to_string(),
            ExprKind::None => "None".into(),
            ExprKind::Name { ident, generics } if generics.is_empty() => ident.name.clone(),
            ExprKind::Name { ident, generics } => {
                let gs: Vec<String> = generics.iter().map(dim).collect();
                format!("{}<{}>", ident.name, gs.join(", "))
            }
            ExprKind::List(items) => format!("[{}]", self.items(items)),
            ExprKind::Tuple(items) if items.len() == 1 => format!("({},)", self.items(items)),
            ExprKind::Tuple(items) => format!("({})", self.items(items)),
            ExprKind::Call { callee, args, .. } => {
                let args: Vec<String> = args
                    .iter()
                    .map(|a| match &a.name {
                        Some(n) => format!("{}={}", n.name, self.expr(&a.value)),
                        None => self.expr(&a.value),
                    })
                    .collect();
                format!("{}({})", self.stage(callee), args.join(", "))
            }
            ExprKind::Index { base, index, .. } => {
                let bound = |b: &Option<i64>| b.map_or(String::new(), |s| s.to_string());
                let items: Vec<String> = index
                    .iter()
                    .map(|i| match i {
                        IndexKind::Step(k) => k.to_string(),
                        IndexKind::Ellipsis => "...".into(),
                        IndexKind::Slice { start, end, step: None } => {
                            format!("{}:{}", bound(start), bound(end))
                        }
                        IndexKind::Slice { start, end, step } => {
                            format!("{}:{}:{}", bound(start), bound(end), bound(step))
                        }
                    })
                    .collect();
                format!("{}[{}]", self.stage(base), items.join(", "))
            }
            ExprKind::Chain(stages) => stages.iter().map(|s| self.stage(s)).collect::<Vec<_>>().join(" -> "),
        }
    }

    fn items(&self, items: &[Expr]) -> String {
        items.iter().map(|i| self.expr(i)).collect::<Vec<_>>().join(", ")
    }
}

/// A model's header as the printer writes it: `model Name<N>(x: [T, 3]) -> [N, 2] where
/// batch = 1` (editors show it as the model's signature).
pub fn header(m: &ModelDef) -> String {
    let mut head = format!("model {}", m.name.name);
    if !m.dim_params.is_empty() {
        let ds: Vec<&str> = m.dim_params.iter().map(|d| d.name.as_str()).collect();
        let _ = write!(head, "<{}>", ds.join(", "));
    }
    let params: Vec<String> =
        m.params.iter().map(|p| format!("{}: {}", p.name.name, tensor_type(&p.ty))).collect();
    let _ = write!(head, "({})", params.join(", "));
    match m.outputs.as_deref() {
        None => {}
        Some([one]) => {
            let _ = write!(head, " -> {}", tensor_type(one));
        }
        Some(many) => {
            let ts: Vec<String> = many.iter().map(tensor_type).collect();
            let _ = write!(head, " -> ({})", ts.join(", "));
        }
    }
    if !m.settings.is_empty() {
        let ss: Vec<String> = m.settings.iter().map(|s| format!("{} = {}", s.name.name, s.value)).collect();
        let _ = write!(head, " where {}", ss.join(", "));
    }
    head
}

fn lhs(targets: &[Ident]) -> String {
    let ts: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
    format!("{} = ", ts.join(", "))
}

fn stmt_span(s: &Stmt) -> Span {
    match s {
        Stmt::Assign { span, .. } => *span,
        Stmt::Expr(e) => e.span,
    }
}

fn dim(d: &DimAst) -> String {
    match d {
        DimAst::Fixed(n, _) => n.to_string(),
        DimAst::Sym(i, 0) => i.name.clone(),
        DimAst::Sym(i, off) if *off > 0 => format!("{}+{off}", i.name),
        DimAst::Sym(i, off) => format!("{}-{}", i.name, off.unsigned_abs()),
    }
}

fn tensor_type(t: &TensorType) -> String {
    let ds: Vec<String> = t.dims.iter().map(dim).collect();
    match t.dtype {
        Some((DTypeAst::I32, _)) => format!("[{}] of i32", ds.join(", ")),
        Some((DTypeAst::F32, _)) => format!("[{}] of f32", ds.join(", ")),
        Some((DTypeAst::Bool, _)) => format!("[{}] of bool", ds.join(", ")),
        None => format!("[{}]", ds.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(s: &str) -> String {
        let once = format(s).unwrap_or_else(|e| panic!("{s}: {}", e.message));
        assert_eq!(format(&once).unwrap(), once, "not idempotent on:\n{once}");
        // The formatted text means the same program.
        let (a, b) = (crate::parse(s).unwrap(), crate::parse(&once).unwrap());
        assert_eq!(a.models.len(), b.models.len());
        once
    }

    #[test]
    fn comments_stay_where_they_were() {
        let src = "// header\n\n/// Docs.\nmodel M(x: [T, 3]) -> [T, 2] {\n    // before\n    h = x -> LSTM(4, return_sequences=true) // trailing\n    /* block */ h -> Dense(2)\n    // at the end\n}\n// after\n";
        let out = fmt(src);
        assert_eq!(
            out,
            "// header\n\n/// Docs.\nmodel M(x: [T, 3]) -> [T, 2] {\n    // before\n    h = x -> LSTM(4, return_sequences=true) // trailing\n    /* block */\n    h -> Dense(2)\n    // at the end\n}\n// after\n"
        );
    }

    #[test]
    fn comments_between_doc_lines_keep_their_place() {
        // Found by the `seq_frontend` fuzzer: the plain comment after a doc line was printed
        // before it (and a second formatting then dropped the blank line between them).
        let src = "model A(x: [3]) -> [3] { x }\n\n/// First.\n// plain\n/// Second.\n\n// after the docs\nmodel B(x: [3]) -> [3] { x }\n";
        assert_eq!(
            fmt(src),
            "model A(x: [3]) -> [3] {\n    x\n}\n\n/// First.\n// plain\n/// Second.\n\n// after the docs\nmodel B(x: [3]) -> [3] {\n    x\n}\n"
        );
        let crash = include_str!("../tests/formatter/docs_around_comments.seq");
        fmt(crash);
    }

    #[test]
    fn layout_is_canonical_and_meaning_kept() {
        let src = "model A<N>(z:[4],w:[T] of i32)->([N,1],[T-1,2]) where batch=1{e=Embedding(9,2)(w);(RepeatVector(N)(z)->LSTM(1,return_sequences=true),e[1:])}";
        assert_eq!(
            fmt(src),
            "model A<N>(z: [4], w: [T] of i32) -> ([N, 1], [T-1, 2]) where batch = 1 {\n    e = Embedding(9, 2)(w);\n    (RepeatVector(N)(z) -> LSTM(1, return_sequences=true), e[1:])\n}\n"
        );
        assert_eq!(
            fmt("model B(x: [4]) -> [4] { (x,) -> Concatenate(axis=-1) }").lines().nth(1),
            Some("    (x,) -> Concatenate(axis=-1)")
        );
    }

    #[test]
    fn long_chains_break_before_each_arrow() {
        let src = "model M(x: [T, 3]) -> [T, 2] { x -> LSTM(64, return_sequences=true, dropout=0.1) -> LSTM(64, return_sequences=true) -> TimeDistributed(Dense(2)) }";
        let out = fmt(src);
        assert!(out.lines().all(|l| l.len() <= MAX_WIDTH), "{out}");
        assert!(out.contains("\n      -> LSTM(64, return_sequences=true)\n"), "{out}");
        // A chain the source broke stays broken, arrows aligned, comments beside their steps.
        let src = "model M(x: [T, 3]) -> [2] {\n  y = x -> LSTM(4, return_sequences=true) // a\n  // b\n  -> LSTM(2)\n\n  y\n}";
        assert_eq!(
            fmt(src),
            "model M(x: [T, 3]) -> [2] {\n    y = x -> LSTM(4, return_sequences=true) // a\n          // b\n          -> LSTM(2)\n\n    y\n}\n"
        );
    }

    #[test]
    fn strings_with_comment_markers_are_not_comments() {
        let out = fmt("model M(x: [4]) -> [4] { x -> Dense(4, name=\"a//b\") -> Activation('x/*y') }");
        assert!(out.contains("name=\"a//b\") -> Activation('x/*y')"), "{out}");
    }
}
