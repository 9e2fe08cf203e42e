//! The server: documents, the message loop, and one handler per request.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;

use lsp_server::{Connection, Message, Notification, Request, RequestId, Response};
use lsp_types as lt;
use seqmodel_compiler::analysis::{Analysis, FactKind, analyze};
use seqmodel_compiler::grammar::ast::{ExprKind, Stmt};
use seqmodel_compiler::layers::{self, ArgKind};
use seqmodel_compiler::{Diagnostic, Severity, grammar};
use serde_json::{Value, json};

use crate::docs::layer_doc;
use crate::names::{self, Link, NameKind};
use crate::text::LineIndex;

/// One open document.
struct Doc {
    text: String,
    lines: LineIndex,
    analysis: Analysis,
    links: Vec<Link>,
    /// While this version does not parse: the last version that did, for hover and hints
    /// (moved here when an edit breaks the text, never copied).
    last_parsed: Option<Box<Doc>>,
}

impl Doc {
    fn new(text: String) -> Self {
        let analysis = analyze(&text);
        let links = analysis.file.as_ref().map(names::links).unwrap_or_default();
        let lines = LineIndex::new(&text);
        Doc { text, lines, analysis, links, last_parsed: None }
    }

    fn update(&mut self, text: String) {
        let mut next = Doc::new(text);
        if next.analysis.file.is_none() {
            let mut old = std::mem::replace(self, Doc::new(String::new()));
            next.last_parsed = match old.last_parsed.take() {
                Some(parsed) => Some(parsed),
                None if old.analysis.file.is_some() => Some(Box::new(old)),
                None => None,
            };
        }
        *self = next;
    }

    /// The text, lines and analysis to answer from: this version if it parsed, else the
    /// last one that did.
    fn parsed(&self) -> (&str, &LineIndex, &Analysis) {
        match &self.last_parsed {
            Some(d) => (&d.text, &d.lines, &d.analysis),
            None => (&self.text, &self.lines, &self.analysis),
        }
    }
}

/// The state of a running server.
#[derive(Default)]
pub struct Server {
    docs: HashMap<String, Doc>,
}

/// Serves on standard input and output until the client shuts down.
pub fn run_stdio() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (connection, io) = Connection::stdio();
    Server::default().run(&connection)?;
    drop(connection);
    io.join()?;
    Ok(())
}

/// What the server can do, for `initialize`.
fn capabilities() -> Value {
    json!({
        "positionEncoding": "utf-16",
        "textDocumentSync": { "openClose": true, "change": 1 },
        "hoverProvider": true,
        "inlayHintProvider": true,
        "definitionProvider": true,
        "referencesProvider": true,
        "documentSymbolProvider": true,
        "documentFormattingProvider": true,
        "completionProvider": { "triggerCharacters": ["(", ",", " ", "\"", "="] },
    })
}

impl Server {
    /// Runs the protocol on `connection`: `initialize`, then requests and notifications
    /// until `shutdown` and `exit`.
    pub fn run(&mut self, connection: &Connection) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let (id, _params) = connection.initialize_start()?;
        connection.initialize_finish(
            id,
            json!({
                "capabilities": capabilities(),
                "serverInfo": { "name": "seqc lsp", "version": env!("CARGO_PKG_VERSION") },
            }),
        )?;
        for msg in &connection.receiver {
            match msg {
                Message::Request(req) => {
                    if connection.handle_shutdown(&req)? {
                        return Ok(());
                    }
                    let id = req.id.clone();
                    // A bug in one handler answers that request with an error; the server
                    // and its documents live on.
                    let resp = std::panic::catch_unwind(AssertUnwindSafe(|| self.request(req)))
                        .unwrap_or_else(|_| {
                            Response::new_err(id, -32603, "internal error in seqc lsp".into())
                        });
                    connection.sender.send(Message::Response(resp))?;
                }
                Message::Notification(n) => {
                    let out = std::panic::catch_unwind(AssertUnwindSafe(|| self.notification(n)))
                        .unwrap_or_default();
                    for n in out {
                        connection.sender.send(Message::Notification(n))?;
                    }
                }
                Message::Response(_) => {}
            }
        }
        Ok(())
    }

    /// Handles a notification; returns the notifications to send (diagnostics).
    pub fn notification(&mut self, n: Notification) -> Vec<Notification> {
        let uri = n.params["textDocument"]["uri"].as_str().unwrap_or_default().to_string();
        match n.method.as_str() {
            "textDocument/didOpen" => {
                let text = n.params["textDocument"]["text"].as_str().unwrap_or_default().to_string();
                self.docs.insert(uri.clone(), Doc::new(text));
                vec![self.diagnostics(&uri)]
            }
            "textDocument/didChange" => {
                // Full sync: the last change holds the whole text.
                let Some(text) = n.params["contentChanges"]
                    .as_array()
                    .and_then(|c| c.last())
                    .and_then(|c| c["text"].as_str())
                else {
                    return Vec::new();
                };
                match self.docs.get_mut(&uri) {
                    Some(d) => d.update(text.to_string()),
                    None => {
                        self.docs.insert(uri.clone(), Doc::new(text.to_string()));
                    }
                }
                vec![self.diagnostics(&uri)]
            }
            "textDocument/didClose" => {
                self.docs.remove(&uri);
                vec![Notification::new(
                    "textDocument/publishDiagnostics".into(),
                    json!({ "uri": uri, "diagnostics": [] }),
                )]
            }
            _ => Vec::new(),
        }
    }

    /// Answers a request.
    pub fn request(&mut self, req: Request) -> Response {
        let uri = req.params["textDocument"]["uri"].as_str().unwrap_or_default().to_string();
        let Some(doc) = self.docs.get(&uri) else {
            return Response::new_ok(req.id, Value::Null);
        };
        let pos: Option<lt::Position> = serde_json::from_value(req.params["position"].clone()).ok();
        let result = match (req.method.as_str(), pos) {
            ("textDocument/hover", Some(p)) => hover(doc, p),
            ("textDocument/inlayHint", _) => inlay_hints(doc),
            ("textDocument/definition", Some(p)) => definition(doc, &uri, p),
            ("textDocument/references", Some(p)) => references(doc, &uri, p),
            ("textDocument/documentSymbol", _) => document_symbols(doc),
            ("textDocument/completion", Some(p)) => completion(doc, p),
            ("textDocument/formatting", _) => formatting(doc),
            _ => return method_not_found(req.id, &req.method),
        };
        Response::new_ok(req.id, result)
    }

    fn diagnostics(&self, uri: &str) -> Notification {
        let diagnostics: Vec<Value> = match self.docs.get(uri) {
            Some(d) => d.analysis.diags.iter().map(|x| diagnostic(d, uri, x)).collect(),
            None => Vec::new(),
        };
        Notification::new(
            "textDocument/publishDiagnostics".into(),
            json!({ "uri": uri, "diagnostics": diagnostics }),
        )
    }
}

fn method_not_found(id: RequestId, method: &str) -> Response {
    Response::new_err(id, -32601, format!("seqc lsp does not handle `{method}`"))
}

/// A compiler diagnostic as LSP's: its range, the secondary labels as related information,
/// the help as a hint, the code linking to its explanation.
fn diagnostic(doc: &Doc, uri: &str, d: &Diagnostic) -> Value {
    let range = |s| doc.lines.range(&doc.text, s);
    let mut message = d.message.clone();
    if !d.label.is_empty() && d.label != d.message {
        message.push_str(&format!("\n{}", d.label));
    }
    for n in &d.notes {
        message.push_str(&format!("\nnote: {n}"));
    }
    if let Some(h) = &d.help {
        message.push_str(&format!("\nhelp: {h}"));
    }
    let related: Vec<Value> = d
        .secondary
        .iter()
        .map(|l| json!({ "location": { "uri": uri, "range": range(l.span) }, "message": l.message }))
        .collect();
    let severity = match d.severity {
        Severity::Error => 1,
        Severity::Warning => 2,
    };
    json!({
        "range": range(d.span),
        "severity": severity,
        "code": d.code,
        "codeDescription": { "href": seqmodel_compiler::codes::url(d.code) },
        "source": "seqmodel",
        "message": message,
        "relatedInformation": related,
    })
}

fn hover(doc: &Doc, pos: lt::Position) -> Value {
    let (text, lines, analysis) = doc.parsed();
    let offset = lines.offset(text, pos);
    let mut parts = Vec::new();
    let mut range = None;
    // The innermost shape and the innermost layer at the cursor.
    if let Some(f) = analysis.at(offset).find(|f| f.shape().is_some()) {
        let shapes = f.shape().unwrap_or_default();
        let shown = if shapes.len() == 1 { shapes[0].clone() } else { format!("({})", shapes.join(", ")) };
        // With the batch, as Keras prints shapes: `(None, T, 32)`, or the declared batch.
        let batch = analysis
            .file
            .as_ref()
            .and_then(|file| file.models.iter().find(|m| m.span.start <= offset && offset <= m.span.end))
            .and_then(|m| m.settings.iter().find(|s| s.name.name == "batch"))
            .map_or("None".to_string(), |s| s.value.to_string());
        let keras: Vec<String> = shapes
            .iter()
            .map(|s| {
                let (dims, dtype) = s.split_once(" of ").map_or((s.as_str(), ""), |(d, t)| (d, t));
                let inner = dims.trim_start_matches('[').trim_end_matches(']');
                let t = if dtype.is_empty() { String::new() } else { format!(" of {dtype}") };
                if inner.is_empty() { format!("({batch},){t}") } else { format!("({batch}, {inner}){t}") }
            })
            .collect();
        parts.push(format!("```\n{shown}\n```\nwith the batch: `{}`", keras.join(", ")));
        range = Some(f.span);
    }
    if let Some(FactKind::Layer { class, name, params, .. }) =
        analysis.at(offset).find(|f| f.shape().is_none()).map(|f| &f.kind)
    {
        let count = params.map_or(String::new(), |n| format!(" — {n} parameters"));
        parts.push(format!("**{class}** `{name}`{count}\n\n{}", layer_doc(class)));
    }
    // A model name: its signature.
    let model = names::link_at(&doc.links, offset)
        .filter(|l| l.kind == NameKind::Model && parts.is_empty())
        .and_then(|l| Some((l, analysis.file.as_ref()?.models.iter().find(|m| m.name.span == l.def)?)));
    if let Some((l, m)) = model {
        parts.push(format!("```seq\n{}\n```", grammar::printer::header(m)));
        range = Some(l.at);
    }
    if parts.is_empty() {
        return Value::Null;
    }
    json!({
        "contents": { "kind": "markdown", "value": parts.join("\n\n---\n\n") },
        "range": range.map(|s| lines.range(text, s)),
    })
}

/// The shape after each arrow step and each assigned name.
fn inlay_hints(doc: &Doc) -> Value {
    let (text, lines, analysis) = doc.parsed();
    let Some(file) = &analysis.file else { return json!([]) };
    let mut places = Vec::new();
    for m in &file.models {
        for s in &m.body {
            let value = match s {
                Stmt::Assign { targets, value, .. } => {
                    places.extend(targets.iter().map(|t| (t.span, true)));
                    value
                }
                Stmt::Expr(e) => e,
            };
            value.walk(&mut |e| {
                if let ExprKind::Chain(stages) = &e.kind {
                    places.extend(stages[1..].iter().map(|s| (s.span, false)));
                }
            });
        }
    }
    let hints: Vec<Value> = places
        .into_iter()
        .filter_map(|(span, is_name)| {
            let f = analysis.facts.iter().find(|f| f.span == span && f.shape().is_some())?;
            let shapes = f.shape()?;
            let shown = if shapes.len() == 1 { shapes[0].clone() } else { format!("({})", shapes.join(", ")) };
            let label = if is_name { format!(": {shown}") } else { format!(" {shown}") };
            Some(json!({ "position": lines.position(text, span.end), "label": label, "kind": 1, "paddingLeft": !is_name }))
        })
        .collect();
    json!(hints)
}

fn definition(doc: &Doc, uri: &str, pos: lt::Position) -> Value {
    let offset = doc.lines.offset(&doc.text, pos);
    match names::link_at(&doc.links, offset) {
        Some(l) => json!({ "uri": uri, "range": doc.lines.range(&doc.text, l.def) }),
        None => Value::Null,
    }
}

fn references(doc: &Doc, uri: &str, pos: lt::Position) -> Value {
    let offset = doc.lines.offset(&doc.text, pos);
    let Some(l) = names::link_at(&doc.links, offset) else { return json!([]) };
    let refs: Vec<Value> = doc
        .links
        .iter()
        .filter(|o| o.def == l.def && o.kind == l.kind)
        .map(|o| json!({ "uri": uri, "range": doc.lines.range(&doc.text, o.at) }))
        .collect();
    json!(refs)
}

fn document_symbols(doc: &Doc) -> Value {
    let Some(file) = &doc.analysis.file else { return json!([]) };
    let symbols: Vec<Value> = file
        .models
        .iter()
        .map(|m| {
            let children: Vec<Value> = m
                .params
                .iter()
                .map(|p| {
                    let r = doc.lines.range(&doc.text, p.name.span);
                    json!({ "name": p.name.name, "kind": 13, "range": r, "selectionRange": r })
                })
                .collect();
            json!({
                "name": m.name.name,
                "detail": grammar::printer::header(m),
                "kind": 5,
                "range": doc.lines.range(&doc.text, m.span),
                "selectionRange": doc.lines.range(&doc.text, m.name.span),
                "children": children,
            })
        })
        .collect();
    json!(symbols)
}

fn formatting(doc: &Doc) -> Value {
    match grammar::format(&doc.text) {
        Ok(tidy) if tidy == doc.text => json!([]),
        Ok(tidy) => {
            let end = doc.lines.position(&doc.text, doc.text.len());
            json!([{ "range": { "start": { "line": 0, "character": 0 }, "end": end }, "newText": tidy }])
        }
        // A file that does not parse is left alone (its syntax error is already shown).
        Err(_) => Value::Null,
    }
}

/// Completion: inside `Layer(`, its keyword arguments; after `activation="`, the
/// activations; elsewhere the layer types, the models and the variables in scope.
fn completion(doc: &Doc, pos: lt::Position) -> Value {
    let offset = doc.lines.offset(&doc.text, pos);
    let before = &doc.text[..offset];
    let mut items = Vec::new();
    if let Some(quoted) = open_string_after(before, "activation") {
        for (_, names) in seqmodel_compiler::ir::Activation::ALL {
            for n in names.iter().filter(|n| n.starts_with(quoted)) {
                items.push(json!({ "label": n, "kind": 12 }));
            }
        }
        return json!({ "isIncomplete": false, "items": items });
    }
    if let Some(class) = enclosing_call(before).and_then(layers::class) {
        for a in class.args.iter().filter(|a| a.kind != ArgKind::Ignored || a.name == "name") {
            items.push(json!({
                "label": format!("{}=", a.name),
                "kind": 5,
                "detail": match (a.required, a.default) {
                    (true, _) => format!("{} (required)", kind_name(a.kind)),
                    (false, Some(d)) => format!("{}, Keras default {d}", kind_name(a.kind)),
                    (false, None) => kind_name(a.kind).to_string(),
                },
                "insertText": format!("{}=", a.name),
                "sortText": format!("0{}", a.name),
            }));
        }
    }
    for c in layers::classes() {
        items.push(json!({ "label": c.name, "kind": 7, "detail": layer_doc(c.name), "sortText": format!("2{}", c.name) }));
    }
    let (_, _, analysis) = doc.parsed();
    if let Some(file) = &analysis.file {
        for m in &file.models {
            items.push(json!({ "label": m.name.name, "kind": 9, "detail": grammar::printer::header(m), "sortText": format!("1{}", m.name.name) }));
        }
        // Variables defined before the cursor in the model around it.
        if let Some(m) = file.models.iter().find(|m| m.span.start <= offset && offset <= m.span.end) {
            let mut vars: Vec<&str> = m.params.iter().map(|p| p.name.name.as_str()).collect();
            for s in &m.body {
                if let Stmt::Assign { targets, span, .. } = s
                    && span.end <= offset
                {
                    vars.extend(targets.iter().map(|t| t.name.as_str()));
                }
            }
            vars.dedup();
            for v in vars {
                items.push(json!({ "label": v, "kind": 6, "sortText": format!("0{v}") }));
            }
        }
    }
    json!({ "isIncomplete": false, "items": items })
}

fn kind_name(k: ArgKind) -> &'static str {
    match k {
        ArgKind::PosInt => "positive integer",
        ArgKind::Int => "integer",
        ArgKind::Float => "number",
        ArgKind::NonNegative => "number, not negative",
        ArgKind::Fraction => "number in [0, 1]",
        ArgKind::Rate => "rate in [0, 1)",
        ArgKind::Bool => "true / false",
        ArgKind::Activation => "activation name",
        ArgKind::Dim => "size or dimension",
        ArgKind::Pair => "integer or (left, right)",
        ArgKind::Layer => "layer",
        ArgKind::MergeMode => "\"concat\", \"sum\", \"mul\", \"ave\" or None",
        ArgKind::Ignored => "accepted, no effect on the computation",
        ArgKind::Choice(_) => "one of the listed strings",
        ArgKind::Ints => "tuple of integers",
        ArgKind::OptFloat => "number or None",
        ArgKind::OptInts => "integers or None",
    }
}

/// The layer class whose argument list the text ends inside (`LSTM(8, ret` gives `LSTM`).
fn enclosing_call(before: &str) -> Option<&str> {
    let mut depth = 0i32;
    for (i, c) in before.char_indices().rev() {
        match c {
            ')' | ']' => depth += 1,
            '(' | '[' if depth > 0 => depth -= 1,
            '(' => {
                let head = before[..i].trim_end();
                let start = head
                    .char_indices()
                    .rev()
                    .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
                    .map_or(0, |(j, c)| j + c.len_utf8());
                return Some(&head[start..]).filter(|n| !n.is_empty());
            }
            '[' | '{' => return None,
            _ => {}
        }
    }
    None
}

/// The part typed of a string that is the value of argument `arg` (`activation="re` gives
/// `re`), if the text ends inside one.
fn open_string_after<'a>(before: &'a str, arg: &str) -> Option<&'a str> {
    let q = before.rfind(['"', '\''])?;
    let head = before[..q].trim_end().strip_suffix('=')?.trim_end();
    let typed = &before[q + 1..];
    (head.ends_with(arg) && !typed.contains(['"', '\''])).then_some(typed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_and_the_string_around_the_cursor() {
        assert_eq!(enclosing_call("x -> LSTM(8, return_"), Some("LSTM"));
        assert_eq!(enclosing_call("x -> Bidirectional(LSTM(4), "), Some("Bidirectional"));
        assert_eq!(enclosing_call("x -> LSTM(8) -> "), None);
        // A multi-byte character before the name is stepped over whole.
        assert_eq!(enclosing_call("é�LSTM("), Some("LSTM"));
        assert_eq!(enclosing_call("x -> �("), None);
        assert_eq!(open_string_after("Dense(4, activation=\"re", "activation"), Some("re"));
        assert_eq!(open_string_after("Dense(4, activation=\"relu\", ", "activation"), None);
    }
}
