//! `seqc lsp` driven as an editor drives it: a child process spoken to in JSON-RPC over
//! stdio (Content-Length framing), through a whole session.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{Value, json};

struct Client {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: i64,
}

impl Client {
    fn start() -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_seqc"))
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Client { child, stdin, stdout, next_id: 1 }
    }

    fn send(&mut self, msg: Value) {
        let body = msg.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn receive(&mut self) -> Value {
        let mut len = 0;
        loop {
            let mut line = String::new();
            assert!(self.stdout.read_line(&mut line).unwrap() > 0, "the server closed its output");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(n) = line.strip_prefix("Content-Length: ") {
                len = n.parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        self.stdout.read_exact(&mut body).unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        loop {
            let msg = self.receive();
            if msg["id"] == json!(id) {
                assert!(msg.get("error").is_none(), "{method}: {msg}");
                return msg["result"].clone();
            }
        }
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    /// The next diagnostics published for `uri`.
    fn diagnostics(&mut self, uri: &str) -> Vec<Value> {
        loop {
            let msg = self.receive();
            if msg["method"] == "textDocument/publishDiagnostics" && msg["params"]["uri"] == uri {
                return msg["params"]["diagnostics"].as_array().unwrap().clone();
            }
        }
    }
}

fn at(src: &str, needle: &str) -> Value {
    let offset = src.find(needle).unwrap_or_else(|| panic!("{needle}"));
    let line = src[..offset].matches('\n').count();
    let col = offset - src[..offset].rfind('\n').map_or(0, |i| i + 1);
    json!({ "line": line, "character": col })
}

#[test]
fn an_editor_session_from_initialize_to_exit() {
    let mut c = Client::start();
    let init = c.request("initialize", json!({ "processId": null, "rootUri": null, "capabilities": {} }));
    assert_eq!(init["capabilities"]["hoverProvider"], true);
    c.notify("initialized", json!({}));

    // Open a file with a mistake: the diagnostic arrives at the offending layer.
    let uri = "file:///tmp/m.seq";
    let bad = "model M(x: [T, 3]) -> [T, 2] {\n    x -> LSTM(8) -> Dense(2)\n}\n";
    c.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": uri, "languageId": "seq", "version": 1, "text": bad } }),
    );
    let d = c.diagnostics(uri);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0]["code"], "SM0408");
    assert_eq!(d[0]["range"]["start"], at(bad, "Dense(2)"));
    assert_eq!(d[0]["range"]["end"]["character"], at(bad, "Dense(2)")["character"].as_u64().unwrap() + 8);
    assert!(d[0]["message"].as_str().unwrap().contains("Dense `dense` gives [2]"), "{}", d[0]["message"]);
    let related = d[0]["relatedInformation"].as_array().unwrap();
    assert_eq!(related[0]["location"]["range"]["start"], at(bad, "[T, 2]"));

    // Fix it: the diagnostics are cleared.
    let good =
        "model M(x: [T, 3]) -> [T, 2] {\n    h = x -> LSTM(8, return_sequences=true)\n    h -> Dense(2)\n}\n";
    c.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 2 }, "contentChanges": [{ "text": good }] }),
    );
    assert_eq!(c.diagnostics(uri), Vec::<Value>::new());

    // Hover on a variable and on a layer: the shape; the class and parameter count.
    let h = c.request(
        "textDocument/hover",
        json!({ "textDocument": { "uri": uri }, "position": at(good, "h ->") }),
    );
    let text = h["contents"]["value"].as_str().unwrap();
    assert!(text.contains("[T, 8]") && text.contains("with the batch: `(None, T, 8)`"), "{text}");
    let h = c.request(
        "textDocument/hover",
        json!({ "textDocument": { "uri": uri }, "position": at(good, "LSTM") }),
    );
    let text = h["contents"]["value"].as_str().unwrap();
    assert!(text.contains("**LSTM** `lstm` — 384 parameters") && text.contains("[T, 8]"), "{text}");

    // Inlay hints: after the assignment's name and after each arrow step.
    let hints = c.request("textDocument/inlayHint", json!({ "textDocument": { "uri": uri }, "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 9, "character": 0 } } }));
    let labels: Vec<&str> = hints.as_array().unwrap().iter().map(|h| h["label"].as_str().unwrap()).collect();
    assert_eq!(labels, [": [T, 8]", " [T, 8]", " [T, 2]"]);

    // Go to definition and references of `h`.
    let def = c.request(
        "textDocument/definition",
        json!({ "textDocument": { "uri": uri }, "position": at(good, "h -> Dense") }),
    );
    assert_eq!(def["range"]["start"], at(good, "h = x"));
    let refs = c.request("textDocument/references", json!({ "textDocument": { "uri": uri }, "position": at(good, "h = x"), "context": { "includeDeclaration": true } }));
    assert_eq!(refs.as_array().unwrap().len(), 2);

    // Document symbols: the model with its signature.
    let syms = c.request("textDocument/documentSymbol", json!({ "textDocument": { "uri": uri } }));
    assert_eq!(syms[0]["name"], "M");
    assert_eq!(syms[0]["detail"], "model M(x: [T, 3]) -> [T, 2]");

    // Completion inside `LSTM(`: its keyword arguments; after `activation="`, activations.
    let typing = "model M(x: [T, 3]) -> [T, 2] {\n    x -> LSTM(8, ret\n}\n";
    c.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 3 }, "contentChanges": [{ "text": typing }] }),
    );
    let d = c.diagnostics(uri);
    assert_eq!(d[0]["code"], "SM0001", "a half-typed file gets its syntax error");
    let pos = json!({ "line": 1, "character": 20 });
    let items =
        c.request("textDocument/completion", json!({ "textDocument": { "uri": uri }, "position": pos }));
    let labels: Vec<&str> =
        items["items"].as_array().unwrap().iter().map(|i| i["label"].as_str().unwrap()).collect();
    assert!(labels.contains(&"return_sequences=") && labels.contains(&"recurrent_activation="), "{labels:?}");
    let detail = |label: &str| {
        items["items"].as_array().unwrap().iter().find(|i| i["label"] == label).unwrap()["detail"].clone()
    };
    assert_eq!(detail("return_sequences="), "true / false, Keras default false");
    assert_eq!(detail("units="), "positive integer (required)");
    // The half-typed file keeps the last good version's hover.
    let h = c.request(
        "textDocument/hover",
        json!({ "textDocument": { "uri": uri }, "position": at(good, "h ->") }),
    );
    assert!(h["contents"]["value"].as_str().unwrap().contains("[T, 8]"));
    let act = "model M(x: [4]) -> [4] { x -> Dense(4, activation=\"si";
    c.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 4 }, "contentChanges": [{ "text": act }] }),
    );
    c.diagnostics(uri);
    let items = c.request(
        "textDocument/completion",
        json!({ "textDocument": { "uri": uri }, "position": { "line": 0, "character": act.len() } }),
    );
    let labels: Vec<&str> =
        items["items"].as_array().unwrap().iter().map(|i| i["label"].as_str().unwrap()).collect();
    assert!(labels.contains(&"sigmoid") && !labels.contains(&"relu"), "{labels:?}");

    // Formatting gives the canonical text.
    let messy = "model M(x:[T,3])->[2]{x->LSTM(4)->Dense(2)}";
    c.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 5 }, "contentChanges": [{ "text": messy }] }),
    );
    c.diagnostics(uri);
    let edits = c.request(
        "textDocument/formatting",
        json!({ "textDocument": { "uri": uri }, "options": { "tabSize": 4, "insertSpaces": true } }),
    );
    assert_eq!(edits[0]["newText"], seqmodel_grammar::format(messy).unwrap());

    // Shut down cleanly.
    assert_eq!(c.request("shutdown", Value::Null), Value::Null);
    c.notify("exit", Value::Null);
    assert!(c.child.wait().unwrap().success());
}

#[test]
fn every_example_and_conformance_import_is_served_with_only_the_checkers_errors() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut sources: Vec<(String, String)> = Vec::new();
    for e in std::fs::read_dir(root.join("examples")).unwrap() {
        let p = e.unwrap().path();
        sources.push((p.display().to_string(), std::fs::read_to_string(&p).unwrap()));
    }
    for suite in ["conformance", "conformance-layers"] {
        for e in std::fs::read_dir(root.join("../shared").join(suite)).unwrap() {
            let p = e.unwrap().path().join("model.keras");
            if let Ok(imported) = seqmodel_keras::import_file(&p) {
                sources.push((p.display().to_string(), imported.source));
            }
        }
    }
    assert!(sources.len() > 60, "{}", sources.len());
    let mut c = Client::start();
    c.request("initialize", json!({ "processId": null, "rootUri": null, "capabilities": {} }));
    c.notify("initialized", json!({}));
    for (i, (name, src)) in sources.iter().enumerate() {
        let uri = format!("file:///doc{i}.seq");
        c.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri, "languageId": "seq", "version": 1, "text": src } }),
        );
        let d = c.diagnostics(&uri);
        assert!(d.is_empty(), "{name}: {d:?}");
        let hints = c.request("textDocument/inlayHint", json!({ "textDocument": { "uri": uri }, "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 999, "character": 0 } } }));
        assert!(hints.is_array(), "{name}");
        let end = src.lines().count().saturating_sub(1);
        for line in 0..=end {
            c.request(
                "textDocument/hover",
                json!({ "textDocument": { "uri": uri }, "position": { "line": line, "character": 6 } }),
            );
        }
    }
    c.request("shutdown", Value::Null);
    c.notify("exit", Value::Null);
    assert!(c.child.wait().unwrap().success());
}
