//! Turns source text into the typed AST with pest.

use pest::Parser;
use pest::iterators::Pair;

use crate::ast::*;
use crate::{ParseError, Span};

#[derive(pest_derive::Parser)]
#[grammar = "seq.pest"]
struct SeqParser;

/// Parses a whole `.seq` source into a [`File`].
///
/// ```
/// let file = seqmodel_grammar::parse("model M(x: [T, 2]) -> [4] { x -> LSTM(4) }").unwrap();
/// assert_eq!(file.models[0].name.name, "M");
/// ```
pub fn parse(source: &str) -> Result<File, ParseError> {
    crate::limits::check(source)?;
    // Record the tokens tried at the failure point, so messages can name `,` and `)`.
    pest::set_error_detail(true);
    let mut pairs = SeqParser::parse(Rule::file, source).map_err(|e| convert_error(e, source))?;
    let file = pairs.next().expect("the file rule always yields one pair");
    let mut models = Vec::new();
    for pair in file.into_inner() {
        if pair.as_rule() == Rule::model {
            models.push(model(pair)?);
        }
    }
    Ok(File { models })
}

fn convert_error(e: pest::error::Error<Rule>, source: &str) -> ParseError {
    let span = match e.location {
        pest::error::InputLocation::Pos(p) => Span::new(p, p),
        pest::error::InputLocation::Span((a, b)) => Span::new(a, b),
    };
    let attempts = e.parse_attempts();
    let tried =
        attempts.map(|a| (a.max_position, a.expected_tokens().iter().map(|t| t.to_string()).collect()));
    if let Some(err) = tried.and_then(|(at, tokens)| list_error(at, tokens, source)) {
        return err;
    }
    let message = match &e.variant {
        pest::error::ErrorVariant::ParsingError { positives, negatives } => {
            let mut names: Vec<&str> = positives.iter().map(|r| rule_name(*r)).collect();
            names.sort_unstable();
            names.dedup();
            if names.is_empty() {
                let neg: Vec<&str> = negatives.iter().map(|r| rule_name(*r)).collect();
                format!("unexpected {}", neg.join(" or "))
            } else {
                format!("expected {}", join_or(&names))
            }
        }
        pest::error::ErrorVariant::CustomError { message } => message.clone(),
    };
    ParseError { message, span }
}

/// Inside brackets, where the parser wanted a `,` or the closing bracket (a missing comma,
/// an unclosed call), the message names those two and what they follow: "expected `,` or
/// `)` after an argument".
fn list_error(at: usize, tokens: Vec<String>, source: &str) -> Option<ParseError> {
    let (open, open_at) = innermost_open(source.get(..at)?)?;
    let (close, what) = match open {
        '(' if is_call(&source[..open_at]) => (")", "an argument"),
        '(' => (")", "an item"),
        '[' if source[..open_at].trim_end().ends_with(':') => ("]", "a dimension"),
        '[' => ("]", "an item"),
        _ => return None,
    };
    if !tokens.iter().any(|t| t == close) || !tokens.iter().any(|t| t == ",") {
        return None;
    }
    let span = Span::new(at, at + next_token_len(&source[at..]));
    Some(ParseError { message: format!("expected `,` or `{close}` after {what}"), span })
}

/// The innermost bracket still open at the end of `text` and where it is (strings and
/// comments skipped).
fn innermost_open(text: &str) -> Option<(char, usize)> {
    let mut stack = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' | '\'' => {
                while let Some((_, d)) = chars.next() {
                    if d == '\\' {
                        chars.next();
                    } else if d == c {
                        break;
                    }
                }
            }
            '/' if matches!(chars.peek(), Some((_, '/'))) => {
                for (_, d) in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            '(' | '[' | '{' => stack.push((c, i)),
            ')' | ']' | '}' => {
                stack.pop();
            }
            _ => {}
        }
    }
    stack.pop()
}

/// Whether a `(` after `before` opens a call's arguments (it follows a name or a call).
fn is_call(before: &str) -> bool {
    before.trim_end().ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ')' || c == '>')
}

/// The length of the token at the start of `rest` (to underline it), at least one byte.
fn next_token_len(rest: &str) -> usize {
    let word = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
    if word > 0 { word } else { rest.chars().next().map_or(0, char::len_utf8) }
}

fn join_or(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

fn rule_name(rule: Rule) -> &'static str {
    match rule {
        Rule::EOI => "end of input",
        Rule::model | Rule::kw_model => "`model`",
        Rule::ident | Rule::name => "a name",
        Rule::dim | Rule::uint | Rule::dim_op => "a dimension (a number or a name like `T`)",
        Rule::params => "`(` and the model's inputs",
        Rule::param => "an input `name: [dims]`",
        Rule::outputs => "`->` and the output type",
        Rule::tensor_type => "a tensor type like `[T, 8]`",
        Rule::dtype => "`f32` or `i32`",
        Rule::kw_of => "`of`",
        Rule::where_clause | Rule::kw_where => "`where`",
        Rule::body => "`{`",
        Rule::stmt | Rule::assign | Rule::expr | Rule::postfix => "an expression",
        Rule::targets => "a name to assign",
        Rule::call => "`(`",
        Rule::arg | Rule::kwarg => "an argument",
        Rule::index | Rule::slice => "`[start:end]`",
        Rule::int | Rule::float => "a number",
        Rule::string => "a string",
        Rule::boolean => "`true` or `false`",
        Rule::none => "`None`",
        Rule::list => "`[`",
        Rule::tuple => "`(`",
        Rule::generics | Rule::dim_params => "`<`",
        Rule::setting => "a setting like `batch = 4`",
        Rule::doc | Rule::doc_text => "a doc comment",
        _ => "a token",
    }
}

/// The span of a pair without the whitespace and comments pest's implicit skipping leaves
/// at its end (a rule ending in an absent `x?` or `x*` has consumed the layout after it),
/// so that spans end at the last token: underlines stop there, and what follows on the
/// line (an end-of-line comment) is not part of the node.
fn sp(pair: &Pair<'_, Rule>) -> Span {
    let span = pair.as_span();
    Span::new(span.start(), span.start() + without_trailing_layout(span.as_str()).len())
}

/// `text` without trailing whitespace, `//` comments and `/* */` comments.
fn without_trailing_layout(text: &str) -> &str {
    let trimmed = text.trim_end();
    let last_line = &trimmed[trimmed.rfind('\n').map_or(0, |i| i + 1)..];
    if !last_line.contains("//") && !trimmed.ends_with("*/") {
        return trimmed;
    }
    // A comment may end the text, or the text may end inside a string that looks like one
    // (`"a\n // b"`): scan it whole, strings as strings, up to the end of its last token.
    let bytes = text.as_bytes();
    let (mut i, mut end) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' => {
                i = string_end(bytes, i);
                end = i;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = text[i..].find('\n').map_or(bytes.len(), |n| i + n)
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = block_comment_end(bytes, i),
            c if c.is_ascii_whitespace() => i += 1,
            _ => {
                i += 1;
                end = i;
            }
        }
    }
    // `end` follows a whole character: the bytes of one are never whitespace or quotes.
    &text[..end]
}

/// The end of the quoted string starting at byte `start` (after its closing quote, or the
/// end of the text), escapes skipped (the printer's too).
pub(crate) fn string_end(bytes: &[u8], start: usize) -> usize {
    let q = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() && bytes[i] != q {
        i += if bytes[i] == b'\\' { 2 } else { 1 };
    }
    (i + 1).min(bytes.len())
}

/// How a (nested) block comment that starts at byte `start` ends.
pub(crate) enum CommentEnd {
    /// Closed; the byte after its last `*/`.
    Closed(usize),
    /// A `/*` (at this byte) nests deeper than the limit asked for.
    TooDeep(usize),
    /// The text ends inside it.
    Unclosed,
}

/// Walks the (nested) block comment starting at byte `start`, nesting at most `max_depth`
/// deep (the limits check's and the printer's walk).
pub(crate) fn scan_block_comment(bytes: &[u8], start: usize, max_depth: usize) -> CommentEnd {
    let (mut depth, mut i) = (0usize, start);
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                if depth > max_depth {
                    return CommentEnd::TooDeep(i);
                }
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return CommentEnd::Closed(i);
                }
            }
            _ => i += 1,
        }
    }
    CommentEnd::Unclosed
}

/// The end of the (nested) block comment starting at byte `start`, or of the text if it is
/// not closed (the printer's too).
pub(crate) fn block_comment_end(bytes: &[u8], start: usize) -> usize {
    match scan_block_comment(bytes, start, usize::MAX) {
        CommentEnd::Closed(end) => end,
        CommentEnd::TooDeep(_) | CommentEnd::Unclosed => bytes.len(),
    }
}

fn ident(pair: Pair<'_, Rule>) -> Ident {
    Ident { name: pair.as_str().to_string(), span: sp(&pair) }
}

fn number<T: std::str::FromStr>(pair: &Pair<'_, Rule>) -> Result<T, ParseError> {
    pair.as_str().parse().map_err(|_| ParseError {
        message: format!("number `{}` is out of range", pair.as_str()),
        span: sp(pair),
    })
}

fn model(pair: Pair<'_, Rule>) -> Result<ModelDef, ParseError> {
    let span = sp(&pair);
    let mut docs = Vec::new();
    let mut name = None;
    let mut dim_params = Vec::new();
    let mut params = Vec::new();
    let mut outputs = None;
    let mut settings = Vec::new();
    let mut body = Vec::new();
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::doc => {
                // The line as matched: `sp` would trim it away, as it trims trailing comments.
                docs.push(DocLine { span: p.as_span().into(), text: doc_line(p) });
            }
            Rule::kw_model => {}
            Rule::ident => name = Some(ident(p)),
            Rule::dim_params => dim_params = p.into_inner().map(ident).collect(),
            Rule::params => {
                for param in p.into_inner() {
                    let mut it = param.into_inner();
                    let n = ident(it.next().expect("param has a name"));
                    let ty = tensor_type(it.next().expect("param has a type"))?;
                    params.push(Param { name: n, ty });
                }
            }
            Rule::outputs => outputs = Some(p.into_inner().map(tensor_type).collect::<Result<_, _>>()?),
            Rule::where_clause => {
                for s in p.into_inner().filter(|s| s.as_rule() == Rule::setting) {
                    let mut it = s.into_inner();
                    let n = ident(it.next().expect("setting has a name"));
                    let v = it.next().expect("setting has a value");
                    settings.push(Setting { name: n, value: number(&v)?, value_span: sp(&v) });
                }
            }
            Rule::body => {
                for s in p.into_inner() {
                    body.push(stmt(s)?);
                }
            }
            r => unreachable!("unexpected rule {r:?} in model"),
        }
    }
    Ok(ModelDef {
        docs,
        name: name.expect("model has a name"),
        dim_params,
        params,
        outputs,
        settings,
        body,
        span,
    })
}

fn doc_line(pair: Pair<'_, Rule>) -> String {
    let inner = pair.into_inner().next();
    match inner {
        Some(p) if p.as_rule() == Rule::doc_text => p.as_str().to_string(),
        Some(p) if p.as_rule() == Rule::string => unescape(p.into_inner().next().map_or("", |s| s.as_str())),
        _ => String::new(),
    }
}

fn tensor_type(pair: Pair<'_, Rule>) -> Result<TensorType, ParseError> {
    let span = sp(&pair);
    let mut dims = Vec::new();
    let mut dtype = None;
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::dim => dims.push(dim(p)?),
            Rule::kw_of => {}
            Rule::dtype => {
                let d = match p.as_str() {
                    "i32" => DTypeAst::I32,
                    "bool" => DTypeAst::Bool,
                    _ => DTypeAst::F32,
                };
                dtype = Some((d, sp(&p)));
            }
            r => unreachable!("unexpected rule {r:?} in type"),
        }
    }
    Ok(TensorType { dims, dtype, span })
}

fn dim(pair: Pair<'_, Rule>) -> Result<DimAst, ParseError> {
    let span = sp(&pair);
    let mut it = pair.into_inner();
    let inner = it.next().expect("dim has a first child");
    Ok(match inner.as_rule() {
        Rule::uint => DimAst::Fixed(number(&inner)?, sp(&inner)),
        _ => {
            let mut id = ident(inner);
            let offset = match (it.next(), it.next()) {
                (Some(op), Some(n)) => {
                    let n: i64 = number(&n)?;
                    if op.as_str() == "-" { -n } else { n }
                }
                _ => 0,
            };
            id.span = span;
            DimAst::Sym(id, offset)
        }
    })
}

fn stmt(pair: Pair<'_, Rule>) -> Result<Stmt, ParseError> {
    let inner = pair.into_inner().next().expect("stmt has one child");
    match inner.as_rule() {
        Rule::assign => {
            let span = sp(&inner);
            let mut it = inner.into_inner();
            let targets = it.next().expect("targets").into_inner().map(ident).collect();
            let value = expr(it.next().expect("value"))?;
            Ok(Stmt::Assign { targets, value, span })
        }
        _ => Ok(Stmt::Expr(expr(inner)?)),
    }
}

fn expr(pair: Pair<'_, Rule>) -> Result<Expr, ParseError> {
    let span = sp(&pair);
    let mut stages: Vec<Expr> = pair.into_inner().map(postfix).collect::<Result<_, _>>()?;
    if stages.len() == 1 {
        Ok(stages.pop().expect("one stage"))
    } else {
        Ok(Expr { kind: ExprKind::Chain(stages), span })
    }
}

fn postfix(pair: Pair<'_, Rule>) -> Result<Expr, ParseError> {
    let mut it = pair.into_inner();
    let mut e = primary(it.next().expect("postfix has a primary"))?;
    for suffix in it {
        let suffix_span = sp(&suffix);
        let span = e.span.join(suffix_span);
        e = match suffix.as_rule() {
            Rule::call => {
                let args = suffix.into_inner().map(arg).collect::<Result<_, _>>()?;
                Expr { kind: ExprKind::Call { callee: Box::new(e), args, args_span: suffix_span }, span }
            }
            Rule::index => {
                let index = suffix
                    .into_inner()
                    .map(|item| match item.as_rule() {
                        Rule::int => Ok(IndexKind::Step(number(&item)?)),
                        Rule::ellipsis => Ok(IndexKind::Ellipsis),
                        _ => slice(item),
                    })
                    .collect::<Result<_, _>>()?;
                Expr { kind: ExprKind::Index { base: Box::new(e), index, index_span: suffix_span }, span }
            }
            r => unreachable!("unexpected suffix {r:?}"),
        };
    }
    Ok(e)
}

fn slice(pair: Pair<'_, Rule>) -> Result<IndexKind, ParseError> {
    let colon = pair.as_str().find(':').expect("a slice has a colon") + pair.as_span().start();
    let (mut start, mut end, mut step, mut after_step) = (None, None, None, false);
    for p in pair.into_inner() {
        if p.as_rule() == Rule::step_sep {
            after_step = true;
            continue;
        }
        let v = number(&p)?;
        if after_step {
            step = Some(v);
        } else if p.as_span().start() < colon {
            start = Some(v);
        } else {
            end = Some(v);
        }
    }
    Ok(IndexKind::Slice { start, end, step })
}

fn arg(pair: Pair<'_, Rule>) -> Result<Arg, ParseError> {
    let span = sp(&pair);
    let inner = pair.into_inner().next().expect("arg has one child");
    if inner.as_rule() == Rule::kwarg {
        let mut it = inner.into_inner();
        let name = ident(it.next().expect("kwarg name"));
        let value = expr(it.next().expect("kwarg value"))?;
        Ok(Arg { name: Some(name), value, span })
    } else {
        Ok(Arg { name: None, value: expr(inner)?, span })
    }
}

fn primary(pair: Pair<'_, Rule>) -> Result<Expr, ParseError> {
    let span = sp(&pair);
    let kind = match pair.as_rule() {
        Rule::int => ExprKind::Int(number(&pair)?),
        Rule::float => ExprKind::Float(number(&pair)?),
        Rule::string => ExprKind::Str(unescape(pair.into_inner().next().map_or("", |s| s.as_str()))),
        Rule::boolean => ExprKind::Bool(matches!(pair.as_str(), "true" | "True")),
        Rule::none => ExprKind::None,
        Rule::list => ExprKind::List(pair.into_inner().map(expr).collect::<Result<_, _>>()?),
        Rule::tuple => {
            let text = pair.as_str().trim_end_matches(')').trim_end();
            let trailing_comma = text.ends_with(',');
            let mut items: Vec<Expr> = pair.into_inner().map(expr).collect::<Result<_, _>>()?;
            if items.len() == 1 && !trailing_comma {
                return Ok(items.pop().expect("one item"));
            }
            ExprKind::Tuple(items)
        }
        Rule::name => {
            let mut it = pair.into_inner();
            let id = ident(it.next().expect("name has an ident"));
            let generics = match it.next() {
                Some(g) => g.into_inner().map(dim).collect::<Result<_, _>>()?,
                None => Vec::new(),
            };
            ExprKind::Name { ident: id, generics }
        }
        r => unreachable!("unexpected primary {r:?}"),
    };
    Ok(Expr { kind, span })
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}
