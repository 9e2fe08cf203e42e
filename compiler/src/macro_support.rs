//! The logic behind the `seqmodel!` macro, in an ordinary library so that it is tested
//! without a proc-macro context: turning tokens into `.seq` text while remembering where each
//! token came from, mapping diagnostics back to token spans, and expanding to Rust items.

use std::ops::Range;
use std::path::{Path, PathBuf};

use proc_macro2::{Delimiter, Spacing, Span, TokenStream, TokenTree};
use quote::{format_ident, quote};

use crate::{CompileErrors, Diagnostic, ir};

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
    let ast = seqmodel_grammar::parse(&source);
    let result = ast.as_ref().map_err(|e| {
        CompileErrors(vec![
            Diagnostic::error("E0001", e.span, format!("syntax error: {}", e.message))
                .with_label(e.message.clone()),
        ])
    });
    let compiled = result.and_then(crate::compile_ast);
    let models: Vec<String> = match &ast {
        Ok(f) => f.models.iter().map(|m| m.name.name.clone()).collect(),
        Err(_) => Vec::new(),
    };
    match compiled {
        Ok(c) => {
            let items = c.programs.iter().map(|p| handle(p, &source, false));
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

fn doc_lines(p: &ir::Program) -> Vec<String> {
    let mut docs: Vec<String> = p.docs.iter().map(|d| format!(" {d}")).collect();
    if !docs.is_empty() {
        docs.push(String::new());
    }
    docs.push(" ```text".into());
    docs.extend(crate::summary::render(p).lines().map(|l| format!(" {l}")));
    docs.push(" ```".into());
    docs
}

fn stub(name: &str) -> TokenStream {
    let ident = format_ident!("{}", name);
    quote! {
        /// This model did not compile; see the errors above.
        pub struct #ident;
    }
}

/// The typed handle of one checked model.
fn handle(p: &ir::Program, source: &str, _specialised: bool) -> TokenStream {
    let ident = format_ident!("{}", p.name);
    let name = &p.name;
    let docs = doc_lines(p);
    let params = p.param_count();
    let stateful = p.is_stateful();
    let input_args: Vec<TokenStream> = p
        .inputs
        .iter()
        .map(|i| {
            let arg = format_ident!("{}", i.name);
            match i.ty.dtype {
                ir::DType::F32 => quote! { #arg: ::seqmodel::ndarray::ArrayD<f32> },
                ir::DType::I32 => quote! { #arg: ::seqmodel::ndarray::ArrayD<i32> },
            }
        })
        .collect();
    let input_names: Vec<proc_macro2::Ident> = p.inputs.iter().map(|i| format_ident!("{}", i.name)).collect();
    let input_docs: Vec<String> = p
        .inputs
        .iter()
        .map(|i| format!("`{}`: {} (batch first)", i.name, i.ty.display_keras(&p.symbols, p.batch)))
        .collect();
    let n_out = p.outputs.len();
    let (ret_ty, ret_expr) = if n_out == 1 {
        (quote! { ::seqmodel::ndarray::ArrayD<f32> }, quote! { outs.remove(0) })
    } else {
        let tys = (0..n_out).map(|_| quote! { ::seqmodel::ndarray::ArrayD<f32> });
        let items = (0..n_out).map(|_| quote! { it.next().expect("one output per declared output") });
        (quote! { ( #(#tys),* ) }, quote! { { let mut it = outs.into_iter(); ( #(#items),* ) } })
    };
    let reset = if stateful {
        quote! {
            /// Forgets the states of every stateful layer (Keras's `reset_states`).
            pub fn reset_states(&mut self) { self.model.reset_states(); }
        }
    } else {
        quote! {}
    };
    let predict_doc = format!(" Runs the model. Inputs: {}.", input_docs.join(", "));
    quote! {
        #(#[doc = #docs])*
        pub struct #ident {
            model: ::seqmodel::Model,
        }

        const _: () = {
            impl #ident {
                /// The model's name in its `.seq` source.
                pub const NAME: &'static str = #name;
                /// The `.seq` source the model was checked from.
                pub const SOURCE: &'static str = #source;
                /// Number of weight scalars (Keras's "Total params").
                pub const PARAMS: usize = #params;

                /// The checked program.
                pub fn program() -> ::seqmodel::ir::Program {
                    ::seqmodel::__private::program(Self::SOURCE, Self::NAME)
                }

                /// Loads weights (keys as in `WeightStore`; shapes are checked).
                pub fn new(weights: &::seqmodel::WeightStore) -> ::core::result::Result<Self, ::seqmodel::RuntimeError> {
                    ::core::result::Result::Ok(Self { model: ::seqmodel::Model::new(Self::program(), weights)? })
                }

                /// Seeded random weights, uniform in ±0.1.
                pub fn random(seed: u64) -> Self {
                    let program = Self::program();
                    let weights = ::seqmodel::WeightStore::random(&program, seed, 0.1);
                    Self { model: ::seqmodel::Model::new(program, &weights).expect("random weights fit their program") }
                }

                /// Loads weights from a safetensors file.
                pub fn from_safetensors(path: impl ::core::convert::AsRef<::std::path::Path>) -> ::core::result::Result<Self, ::seqmodel::RuntimeError> {
                    Self::new(&::seqmodel::WeightStore::load(path.as_ref())?)
                }

                #[doc = #predict_doc]
                pub fn predict(&mut self, #(#input_args),*) -> ::core::result::Result<#ret_ty, ::seqmodel::RuntimeError> {
                    let mut outs = self.model.predict(&[ #(::seqmodel::Tensor::from(#input_names)),* ])?;
                    ::core::result::Result::Ok(#ret_expr)
                }

                #reset

                /// The interpreter behind this handle.
                pub fn model(&self) -> &::seqmodel::Model {
                    &self.model
                }
            }
        };
    }
}
