//! The logic behind the `seqmodel!` macro, in an ordinary library so that it is tested
//! without a proc-macro context: turning tokens into `.seq` text while remembering where each
//! token came from, mapping diagnostics back to token spans, and expanding to Rust items.

use std::ops::Range;
use std::path::{Path, PathBuf};

use proc_macro2::{Delimiter, Spacing, Span, TokenStream, TokenTree};
use quote::quote;

use crate::Diagnostic;
pub use crate::stub::stub_tokens;

/// `.seq` text rebuilt from tokens, with the byte range and span of every token.
///
/// Where the compiler reports token positions (rustc 1.88 and later, and any span outside a
/// macro), the text keeps the user's layout: each token at its line and column, so a message
/// that quotes the source quotes what the user wrote (`[T, 4]`, not `[ T , 4 ]`). Tokens
/// whose position is unknown or out of order (the tokens of a `///` comment share one span)
/// are separated by one space.
pub struct SourceMap {
    /// The text.
    pub text: String,
    tokens: Vec<(Range<usize>, Span)>,
    /// Line and column (both from 1 and 0, as rustc counts) where the text ends, when the
    /// last token's position was known.
    at: Option<(usize, usize)>,
}

impl SourceMap {
    /// Stringifies `ts` (the grammar does not depend on layout).
    pub fn from_tokens(ts: TokenStream) -> Self {
        let mut map = SourceMap { text: String::new(), tokens: Vec::new(), at: None };
        map.push_stream(ts);
        map
    }

    /// The separator before a token starting at `span`: the user's own line breaks and
    /// spaces when positions are known and in order, else one space (none at the start).
    fn separate(&mut self, span: Span, glued: bool) {
        let start = span.start();
        match self.at {
            Some((line, _)) if start.line > line => {
                self.text.push_str(&"\n".repeat(start.line - line));
                self.text.push_str(&" ".repeat(start.column));
            }
            Some((line, col)) if start.line == line && start.column >= col => {
                self.text.push_str(&" ".repeat(start.column - col));
            }
            _ if glued || self.text.is_empty() => {}
            _ => self.text.push(' '),
        }
    }

    fn push(&mut self, s: &str, span: Span, glued: bool) {
        self.separate(span, glued);
        let start = self.text.len();
        self.text.push_str(s);
        self.tokens.push((start..self.text.len(), span));
        // Only a token that spans exactly its own text gives a trustworthy end (the tokens
        // of a `///` comment all span the whole comment).
        let (begin, end) = (span.start(), span.end());
        let exact =
            begin.line > 0 && end.line == begin.line && end.column == begin.column + s.chars().count();
        self.at = exact.then_some((end.line, end.column));
    }

    fn push_stream(&mut self, ts: TokenStream) {
        let mut glue_next = false;
        for tt in ts {
            match tt {
                TokenTree::Group(g) => {
                    let (open, close) = match g.delimiter() {
                        Delimiter::Parenthesis => ("(", ")"),
                        Delimiter::Brace => ("{", "}"),
                        Delimiter::Bracket => ("[", "]"),
                        Delimiter::None => ("", ""),
                    };
                    self.push(open, g.span_open(), glue_next);
                    self.push_stream(g.stream());
                    self.push(close, g.span_close(), false);
                    glue_next = false;
                }
                TokenTree::Ident(i) => {
                    self.push(&i.to_string(), i.span(), glue_next);
                    glue_next = false;
                }
                TokenTree::Punct(p) => {
                    self.push(&p.as_char().to_string(), p.span(), glue_next);
                    // `->` arrives as two puncts; `-3` as a punct and a literal.
                    glue_next = p.spacing() == Spacing::Joint || p.as_char() == '-';
                }
                TokenTree::Literal(l) => {
                    self.push(&l.to_string(), l.span(), glue_next);
                    glue_next = false;
                }
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

/// The file form's arguments: `"m.seq"`, then options: `weights = "m.safetensors"` and
/// `no_std` (in either order).
struct FileArgs {
    seq: syn::LitStr,
    weights: Option<syn::LitStr>,
    /// The `no_std` flag's token.
    no_std: Option<syn::Ident>,
}

impl syn::parse::Parse for FileArgs {
    fn parse(input: syn::parse::ParseStream<'_>) -> syn::Result<Self> {
        let seq = input.parse()?;
        let (mut weights, mut no_std) = (None, None);
        while input.parse::<Option<syn::Token![,]>>()?.is_some() && !input.is_empty() {
            let key: syn::Ident = input.parse()?;
            let repeated = || syn::Error::new(key.span(), format!("the option `{key}` is given twice"));
            if key == "weights" {
                input.parse::<syn::Token![=]>()?;
                if weights.replace(input.parse()?).is_some() {
                    return Err(repeated());
                }
            } else if key == "no_std" {
                if no_std.is_some() {
                    return Err(repeated());
                }
                no_std = Some(key);
            } else {
                let msg = format!(
                    "unknown option `{key}`: the file form takes `weights = \"m.safetensors\"` and `no_std`"
                );
                return Err(syn::Error::new(key.span(), msg));
            }
        }
        if !input.is_empty() {
            return Err(input.error("expected `,` and an option (`weights = \"m.safetensors\"` or `no_std`)"));
        }
        Ok(FileArgs { seq, weights, no_std })
    }
}

/// `baked()` for a model whose weights did not compile (or which did not compile itself), so
/// that the user's calls to it are not further errors; it never runs, as the build fails.
fn baked_stand_in(model: &str) -> TokenStream {
    let ident = quote::format_ident!("{}", model);
    quote! {
        impl #ident {
            #[doc(hidden)]
            pub const BAKED_WEIGHTS: &'static [u8] = &[];
            #[doc(hidden)]
            pub fn baked() -> Self { ::core::unreachable!("the weights did not compile") }
        }
    }
}

/// The `no_std` type's API for a model that has no code, so that the user's calls to it are
/// not further errors; it never runs, as the build fails.
fn no_std_stand_in(model: &str) -> TokenStream {
    let ident = quote::format_ident!("{}", model);
    quote! {
        #[doc(hidden)]
        pub struct #ident;
        impl #ident {
            #[doc(hidden)]
            pub fn new() -> Self { ::core::unreachable!("the model did not compile") }
            #[doc(hidden)]
            pub fn step(&mut self, _: &[f32]) -> ::core::result::Result<&[f32], ::seqmodel::NonFinite> {
                ::core::unreachable!("the model did not compile")
            }
            #[doc(hidden)]
            pub fn reset_states(&mut self) {}
        }
    }
}

/// Whether the macro's input is the file form (it starts with a string literal).
fn is_file_form(input: &TokenStream) -> bool {
    match input.clone().into_iter().next() {
        Some(TokenTree::Literal(l)) => syn::parse2::<syn::LitStr>(TokenTree::Literal(l).into()).is_ok(),
        _ => false,
    }
}

/// Expands `seqmodel! { ... }`, `seqmodel!("file.seq")` or
/// `seqmodel!("file.seq", weights = "file.safetensors")`. `manifest_dir` resolves file
/// paths (the macro passes `CARGO_MANIFEST_DIR`). With `weights`, the file's main model
/// (its last) has those weights compiled in (see [`crate::baked`]); a weight file that does
/// not fit the model is an error on the `weights` literal.
pub fn expand(input: TokenStream, manifest_dir: &Path) -> TokenStream {
    let (mut weights, mut no_std) = (None, None);
    let (source, origin) = if is_file_form(&input) {
        let args = match syn::parse2::<FileArgs>(input) {
            Ok(a) => a,
            Err(e) => return e.to_compile_error(),
        };
        weights = args.weights;
        no_std = args.no_std;
        let lit = args.seq;
        let path = manifest_dir.join(lit.value());
        match std::fs::read_to_string(&path) {
            Ok(text) => (text, Origin::File { lit, path }),
            Err(e) => {
                let msg = format!("cannot read `{}` (relative to the crate's Cargo.toml): {e}", lit.value());
                return syn::Error::new(lit.span(), msg).to_compile_error();
            }
        }
    } else {
        let map = SourceMap::from_tokens(input);
        (map.text.clone(), Origin::Inline(map))
    };
    let rebuild = match &origin {
        Origin::File { path, .. } => {
            let p = path.display().to_string();
            quote! { const _: &str = ::core::include_str!(#p); }
        }
        Origin::Inline(_) => quote! {},
    };
    // Every model that checks is generated; each one that does not is replaced by a stand-in
    // with its declared API, so that only its own errors are reported.
    let (parsed, diags) = crate::on_compile_stack(|| match seqmodel_grammar::parse(&source) {
        Err(e) => {
            let d = Diagnostic::error("SM0001", e.span, format!("syntax error: {}", e.message))
                .with_label(e.message.clone());
            (None, vec![d])
        }
        Ok(file) => {
            let checked = crate::check_each(&file);
            (Some((file, checked.programs)), checked.diags)
        }
    });
    // The weights go into the main model when it checks (else its own errors say why).
    let mut combined: Option<syn::Error> = None;
    let mut stand_in = quote! {};
    let baked = match (&weights, &parsed) {
        (Some(lit), Some((file, programs))) => {
            // The stand-in keeps the user's calls to `baked()` from being further errors.
            let main_name = file.models.last().map(|m| m.name.name.as_str());
            match programs.last() {
                // The model's own errors are reported.
                Some(None) => {
                    stand_in = main_name.map(baked_stand_in).unwrap_or_default();
                    None
                }
                main => {
                    let path = manifest_dir.join(lit.value());
                    match crate::baked::check_for_main(&path, &lit.value(), main.and_then(Option::as_ref)) {
                        Ok(b) => Some(b),
                        Err(e) => {
                            combined = Some(syn::Error::new(lit.span(), e.to_string()));
                            stand_in = main_name.map(baked_stand_in).unwrap_or_default();
                            None
                        }
                    }
                }
            }
        }
        _ => None,
    };
    // Tokens cannot leave the macro's thread: generate here.
    let items: Vec<TokenStream> = match &parsed {
        None => Vec::new(),
        // `no_std`: the main model only, with its weights (its sub-models are inlined in it).
        Some((file, programs)) if no_std.is_some() => {
            let flag = no_std.as_ref().map(syn::Ident::span).unwrap_or_else(Span::call_site);
            let main_name = file.models.last().map(|m| m.name.name.as_str());
            let code = match (&baked, programs.last()) {
                (Some(b), Some(Some(p))) => Some(crate::codegen::embedded::baked_tokens(p, b)),
                (None, Some(Some(_))) if weights.is_none() => {
                    Some(Err("`no_std` code has its weights compiled in: add `weights = \"m.safetensors\"`"
                        .to_string()))
                }
                // The model's or the weight file's own errors say why.
                _ => None,
            };
            match code {
                Some(Ok(tokens)) => vec![tokens],
                failed => {
                    if let Some(Err(msg)) = failed {
                        let e = syn::Error::new(flag, msg);
                        match combined.as_mut() {
                            Some(c) => c.combine(e),
                            None => combined = Some(e),
                        }
                    }
                    stand_in = main_name.map(no_std_stand_in).unwrap_or_default();
                    Vec::new()
                }
            }
        }
        Some((file, programs)) => {
            let last = programs.len().saturating_sub(1);
            programs
                .iter()
                .enumerate()
                .map(|(i, p)| match p {
                    Some(p) => crate::codegen::model_tokens_baked(p, baked.as_ref().filter(|_| i == last)),
                    None => crate::stub::stub_tokens(file, i),
                })
                .collect()
        }
    };
    let file_name = match &origin {
        Origin::File { lit, .. } => lit.value(),
        Origin::Inline(_) => String::new(),
    };
    let renderer = crate::Renderer::new(&file_name, &source, false);
    for d in &diags {
        let e = match &origin {
            Origin::Inline(map) => {
                let (a, b) = map.spans(d.span.start..d.span.end);
                error_between(a, b, &macro_message(d, &source))
            }
            // Name the file as written, so messages do not depend on the machine.
            Origin::File { lit, .. } => syn::Error::new(lit.span(), renderer.render(d)),
        };
        match combined.as_mut() {
            Some(c) => c.combine(e),
            None => combined = Some(e),
        }
    }
    let errors = combined.map(|e| e.to_compile_error()).unwrap_or_default();
    quote! { #rebuild #errors #(#items)* #stand_in }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rebuilt_text_keeps_the_users_layout() {
        let src =
            "model M(x: [T, 4]) -> [T, 2] {\n    x -> LSTM(8, return_sequences=true)\n      -> Dense(-2)\n}";
        let map = SourceMap::from_tokens(src.parse().unwrap());
        assert_eq!(map.text, src);
        // Each token's recorded range is its own text.
        let (a, b) = map.spans(src.find("LSTM").unwrap()..src.find("LSTM").unwrap() + 4);
        assert_eq!(a.source_text().as_deref(), Some("LSTM"));
        assert_eq!(b.source_text().as_deref(), Some("LSTM"));
    }

    #[test]
    fn doc_comments_fall_back_to_single_spaces() {
        let src = "/// Doc.\nmodel M(x: [4]) -> [4] { x }";
        let map = SourceMap::from_tokens(src.parse().unwrap());
        assert!(map.text.contains("model M(x: [4]) -> [4] { x }"), "{}", map.text);
        assert!(seqmodel_grammar::parse(&map.text).is_ok(), "{}", map.text);
    }
}
