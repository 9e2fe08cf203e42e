//! Any text given to the compiler ends in `Ok` or located errors: never a panic, never a hang.

use std::sync::mpsc;
use std::time::Duration;

use proptest::prelude::*;

fn seed_sources() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    v.sort();
    v
}

/// Compiles on another thread and fails if it takes longer than a few seconds.
fn compile_bounded(src: String) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    let len = src.len();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(|| match seqmodel_compiler::compile(&src) {
            Ok(_) => true,
            Err(e) => {
                // Every diagnostic lies inside the source and renders.
                for d in &e.0 {
                    assert!(d.span.start <= d.span.end && d.span.end <= src.len());
                }
                let _ = e.render("fuzz.seq", &src, false);
                false
            }
        });
        let _ = tx.send(r.is_ok());
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!("panicked on a {len}-byte input")),
        Err(_) => Err(format!("took over 10 s on a {len}-byte input")),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn mutated_examples_never_panic(
        which in 0usize..64,
        edits in proptest::collection::vec((any::<u16>(), 0u8..3, any::<u8>()), 1..8),
    ) {
        let sources = seed_sources();
        let mut bytes = sources[which % sources.len()].clone().into_bytes();
        for (pos, kind, byte) in edits {
            if bytes.is_empty() { break; }
            let p = pos as usize % bytes.len();
            let alphabet = b"()[]{}<>-=,:;\"'/*#0123456789 \nabcxyzTLSTMGRU_.";
            let b = alphabet[byte as usize % alphabet.len()];
            match kind {
                0 => { bytes.remove(p); }
                1 => bytes.insert(p, b),
                _ => bytes[p] = b,
            }
        }
        let src = String::from_utf8_lossy(&bytes).into_owned();
        prop_assert_eq!(compile_bounded(src), Ok(()));
    }

    #[test]
    fn random_text_never_panics(s in "\\PC{0,200}") {
        prop_assert_eq!(compile_bounded(s), Ok(()));
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let mut s = String::from("model M(x: [4]) -> [4] { ");
    s.push_str(&"(".repeat(20_000));
    s.push('x');
    s.push_str(&")".repeat(20_000));
    s.push_str(" }");
    assert_eq!(compile_bounded(s), Ok(()));
}
