//! The server on mutated examples (the compiler's fuzz strategy): every request at many
//! positions of every mutated text answers, with no panic and no hang.

use std::sync::mpsc;
use std::time::Duration;

use lsp_server::{Notification, Request, RequestId};
use proptest::prelude::*;
use serde_json::json;

fn examples() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    v.sort();
    v
}

/// Opens `text` (after `first`, so the last-parsed fallback is exercised) and asks for
/// everything at every few characters of every line.
fn serve(first: String, text: String) {
    let mut s = seqmodel_lsp::Server::default();
    let uri = "file:///f.seq";
    let doc = json!({ "uri": uri });
    s.notification(Notification::new(
        "textDocument/didOpen".into(),
        json!({ "textDocument": { "uri": uri, "languageId": "seq", "version": 1, "text": first } }),
    ));
    s.notification(Notification::new(
        "textDocument/didChange".into(),
        json!({ "textDocument": { "uri": uri, "version": 2 }, "contentChanges": [{ "text": text }] }),
    ));
    let mut id = 0;
    let mut ask = |s: &mut seqmodel_lsp::Server, method: &str, params: serde_json::Value| {
        id += 1;
        let r = s.request(Request::new(RequestId::from(id), method.into(), params));
        assert!(r.error.is_none(), "{method}: {:?}", r.error);
    };
    for m in ["textDocument/inlayHint", "textDocument/documentSymbol", "textDocument/formatting"] {
        ask(
            &mut s,
            m,
            json!({ "textDocument": doc, "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 999, "character": 0 } }, "options": { "tabSize": 4, "insertSpaces": true } }),
        );
    }
    for (line, l) in text.split('\n').enumerate() {
        for character in (0..=l.len() + 1).step_by(5) {
            let pos = json!({ "line": line, "character": character });
            for m in [
                "textDocument/hover",
                "textDocument/completion",
                "textDocument/definition",
                "textDocument/references",
            ] {
                ask(
                    &mut s,
                    m,
                    json!({ "textDocument": doc, "position": pos, "context": { "includeDeclaration": true } }),
                );
            }
        }
    }
}

fn bounded(first: String, text: String) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    let len = text.len();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(|| serve(first, text));
        let _ = tx.send(r.is_ok());
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!("panicked on a {len}-byte text")),
        Err(_) => Err(format!("took over 20 s on a {len}-byte text")),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn mutated_examples_are_served(
        which in 0usize..64,
        edits in proptest::collection::vec((any::<u16>(), 0u8..3, any::<u8>()), 1..8),
    ) {
        let sources = examples();
        let original = sources[which % sources.len()].clone();
        let mut bytes = original.clone().into_bytes();
        let alphabet = b"()[]{}<>-=,:;\"'/*#0123456789 \nabcxyzTLSTMGRU_.\xc3\xa9";
        for (pos, kind, byte) in edits {
            if bytes.is_empty() { break; }
            let p = pos as usize % bytes.len();
            let b = alphabet[byte as usize % alphabet.len()];
            match kind {
                0 => { bytes.remove(p); }
                1 => bytes.insert(p, b),
                _ => bytes[p] = b,
            }
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        prop_assert_eq!(bounded(original, text), Ok(()));
    }
}
