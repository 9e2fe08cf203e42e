//! Any text through the whole front end: parse, check, format, analyse (what `seqc check`,
//! `seqc fmt` and `seqc lsp` do). Every diagnostic must lie inside the text and render.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else { return };
    match seqmodel_compiler::compile(src) {
        Ok(c) => {
            let _ = seqmodel_compiler::codegen::render(&c);
        }
        Err(e) => {
            for d in &e.0 {
                assert!(d.span.start <= d.span.end && d.span.end <= src.len());
            }
            let _ = e.render("fuzz.seq", src, false);
        }
    }
    if let Ok(tidy) = seqmodel_grammar::format(src) {
        // Formatting is idempotent.
        assert_eq!(seqmodel_grammar::format(&tidy).ok().as_deref(), Some(tidy.as_str()));
    }
    let _ = seqmodel_compiler::analysis::analyze(src);
});
