//! The logic behind the `seqmodel!` macro, in an ordinary library so that it is tested
//! without a proc-macro context: turning tokens into `.seq` text while remembering where each
//! token came from, mapping diagnostics back to token spans, and expanding to Rust items.

use std::ops::Range;
use std::path::{Path, PathBuf};

use proc_macro2::{Delimiter, Spacing, Span, TokenStream, TokenTree};
use quote::{format_ident, quote};

use crate::{CompileErrors, Diagnostic};

/// `.seq` text re-stringified from tokens, with the byte range and span of every token.
pub struct SourceMap {
    /// The text.
    pub text: String,
    tokens: Vec<(Range<usize>, Span)>,
}

impl SourceMap {
    /// Stringifies `ts` (the grammar does not depend on layout).
    pub fn from_tokens(ts: TokenStream) -> Self {
        let mut map = SourceMap { text: String::new(), tokens: Vec::new() };
        map.push_stream(ts);
        map
    }

    fn push(&mut self, s: &str, span: Span, space_after: bool) {
        let start = self.text.len();
        self.text.push_str(s);
        self.tokens.push((start..self.text.len(), span));
        if space_after {
            self.text.push(' ');
        }
    }

    fn push_stream(&mut self, ts: TokenStream) {
        for tt in ts {
            match tt {
                TokenTree::Group(g) => {
                    let (open, close) = match g.delimiter() {
                        Delimiter::Parenthesis => ("(", ")"),
                        Delimiter::Brace => ("{", "}"),
                        Delimiter::Bracket => ("[", "]"),
                        Delimiter::None => ("", ""),
                    };
                    self.push(open, g.span_open(), true);
                    self.push_stream(g.stream());
                    self.push(close, g.span_close(), true);
                }
                TokenTree::Ident(i) => self.push(&i.to_string(), i.span(), true),
                TokenTree::Punct(p) => {
                    // `->` arrives as two puncts; `-3` as a punct and a literal.
                    let glue = p.spacing() == Spacing::Joint || p.as_char() == '-';
                    self.push(&p.as_char().to_string(), p.span(), !glue);
                }
                TokenTree::Literal(l) => self.push(&l.to_string(), l.span(), true),
            }
        }
    }

    /// The first and last token spans covering `range` of the text.
    pub fn spans(&self, range: Range<usize>) -> (Span, Span) {
        let hits: Vec<Span> = self
            .tokens
            .iter()
            .filter(|(r, _)| r.start < range.end.max(range.start + 1) && range.start < r.end.max(r.start + 1))
            .map(|(_, s)| *s)
            .collect();
        match (hits.first(), hits.last()) {
            (Some(a), Some(b)) => (*a, *b),
            _ => {
                let last = self.tokens.last().map_or_else(Span::call_site, |(_, s)| *s);
                (last, last)
            }
        }
    }
}

/// A `syn::Error` spanning from `start` to `end` (works on stable Rust).
fn error_between(start: Span, end: Span, message: &str) -> syn::Error {
    let ts: TokenStream = [
        TokenTree::Ident(proc_macro2::Ident::new("a", start)),
        TokenTree::Ident(proc_macro2::Ident::new("b", end)),
    ]
    .into_iter()
    .collect();
    syn::Error::new_spanned(ts, message)
}

/// The message of a diagnostic inside the macro: the headline, then labels, notes and help.
/// Secondary places are quoted (the re-stringified text has no useful line numbers).
fn macro_message(d: &Diagnostic, source: &str) -> String {
    let mut m = format!("{} [{}]", d.message, d.code);
    if !d.label.is_empty() {
        m.push_str(&format!("\n  = {}", d.label));
    }
    for l in &d.secondary {
        let at = source
            .get(l.span.start..l.span.end)
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        m.push_str(&format!("\n  = note: {}: `{at}`", l.message));
    }
    for n in &d.notes {
        m.push_str(&format!("\n  = note: {n}"));
    }
    if let Some(h) = &d.help {
        m.push_str(&format!("\n  = help: {h}"));
    }
    m
}

/// Where the model source came from.
enum Origin {
    Inline(SourceMap),
    File { lit: syn::LitStr, path: PathBuf },
}

/// Expands `seqmodel! { ... }` or `seqmodel!("file.seq")`. `manifest_dir` resolves file
/// paths (the macro passes `CARGO_MANIFEST_DIR`).
pub fn expand(input: TokenStream, manifest_dir: &Path) -> TokenStream {
    let (source, origin) = match syn::parse2::<syn::LitStr>(input.clone()) {
        Ok(lit) => {
            let path = manifest_dir.join(lit.value());
            match std::fs::read_to_string(&path) {
                Ok(text) => (text, Origin::File { lit, path }),
                Err(e) => {
                    let msg =
                        format!("cannot read `{}` (relative to the crate's Cargo.toml): {e}", lit.value());
                    return syn::Error::new(lit.span(), msg).to_compile_error();
                }
            }
        }
        Err(_) => {
            let map = SourceMap::from_tokens(input);
            (map.text.clone(), Origin::Inline(map))
        }
    };
    let rebuild = match &origin {
        Origin::File { path, .. } => {
            let p = path.display().to_string();
            quote! { const _: &str = ::core::include_str!(#p); }
        }
        Origin::Inline(_) => quote! {},
    };
    let (compiled, models) = crate::on_compile_stack(|| {
        let ast = seqmodel_grammar::parse(&source);
        let result = ast.as_ref().map_err(|e| {
            CompileErrors(vec![
                Diagnostic::error("SM0001", e.span, format!("syntax error: {}", e.message))
                    .with_label(e.message.clone()),
            ])
        });
        let compiled = result.and_then(crate::compile_ast);
        let models: Vec<String> = match &ast {
            Ok(f) => f.models.iter().map(|m| m.name.name.clone()).collect(),
            Err(_) => Vec::new(),
        };
        (compiled, models)
    });
    match compiled {
        Ok(c) => {
            let items = c.programs.iter().map(crate::codegen::model_tokens);
            quote! { #rebuild #(#items)* }
        }
        Err(errs) => {
            let mut combined: Option<syn::Error> = None;
            for d in &errs.0 {
                let e = match &origin {
                    Origin::Inline(map) => {
                        let (a, b) = map.spans(d.span.start..d.span.end);
                        error_between(a, b, &macro_message(d, &source))
                    }
                    Origin::File { lit, .. } => {
                        // Name the file as written, so messages do not depend on the machine.
                        let shown = lit.value();
                        let rendered = d.render(&shown, &source, false);
                        syn::Error::new(
                            lit.span(),
                            format!("{}\n{rendered}", d.render_plain(&shown, &source)),
                        )
                    }
                };
                match combined.as_mut() {
                    Some(c) => c.combine(e),
                    None => combined = Some(e),
                }
            }
            let errors = combined.map(|e| e.to_compile_error()).unwrap_or_default();
            // Still declare the model types so code using them does not cascade into
            // "cannot find type" errors.
            let stubs = models.iter().map(|name| stub(name));
            quote! { #rebuild #errors #(#stubs)* }
        }
    }
}

fn stub(name: &str) -> TokenStream {
    let ident = format_ident!("{}", name);
    quote! {
        /// This model did not compile; see the errors above.
        pub struct #ident;
    }
}
