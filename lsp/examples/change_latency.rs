//! How long the server takes to answer a change of the lm-gru model (issue target: 20 ms):
//! each edit is applied as `didChange` (full text), which re-parses, re-checks and builds the
//! diagnostics, then the inlay hints are asked for, as an editor does after every keystroke.
//!
//! `cargo run --release -p seqmodel-lsp --example change_latency`

use std::time::Instant;

use lsp_server::{Notification, Request, RequestId};
use serde_json::json;

fn main() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../bench/models/lm_gru.seq");
    let text = std::fs::read_to_string(path).expect("bench/models/lm_gru.seq");
    let mut server = seqmodel_lsp::Server::default();
    let uri = "file:///lm_gru.seq";
    server.notification(Notification::new(
        "textDocument/didOpen".into(),
        json!({ "textDocument": { "uri": uri, "languageId": "seq", "version": 1, "text": text } }),
    ));
    let mut times = Vec::new();
    for i in 0..200 {
        // Alternate between the model and a version with one more space (a keystroke).
        let edited = if i % 2 == 0 { format!("{text} ") } else { text.clone() };
        let start = Instant::now();
        let out = server.notification(Notification::new(
            "textDocument/didChange".into(),
            json!({ "textDocument": { "uri": uri, "version": i + 2 }, "contentChanges": [{ "text": edited }] }),
        ));
        let hints = server.request(Request::new(
            RequestId::from(i),
            "textDocument/inlayHint".into(),
            json!({ "textDocument": { "uri": uri }, "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 999, "character": 0 } } }),
        ));
        std::hint::black_box((out, hints));
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let pick = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    println!(
        "lm-gru: change + inlay hints, {} edits: median {:.3} ms, p90 {:.3} ms, max {:.3} ms (target 20 ms)",
        times.len(),
        pick(0.5),
        pick(0.9),
        pick(1.0)
    );
}
