//! The canonical printer keeps every program's meaning: formatting each example and each
//! wrong program gives the same checked programs (or the same diagnostics), and formatting
//! twice changes nothing.

use std::path::Path;

fn fingerprints(src: &str) -> Result<Vec<u64>, Vec<(&'static str, String)>> {
    match seqmodel_compiler::compile(src) {
        Ok(c) => Ok(c.programs.iter().map(|p| p.fingerprint()).collect()),
        Err(e) => Err(e.0.iter().map(|d| (d.code, d.message.clone())).collect()),
    }
}

#[test]
fn formatting_keeps_every_program_and_is_idempotent() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    for dir in ["examples", "tests/models/errors", "bench/models"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = e.unwrap().path();
            if path.extension().is_none_or(|x| x != "seq") {
                continue;
            }
            let src = std::fs::read_to_string(&path).unwrap();
            let Ok(once) = seqmodel_grammar::format(&src) else { continue };
            assert_eq!(seqmodel_grammar::format(&once).unwrap(), once, "{}", path.display());
            assert_eq!(fingerprints(&once), fingerprints(&src), "{}:\n{once}", path.display());
            let comments = |s: &str| s.matches("//").count() + s.matches("/*").count();
            assert_eq!(comments(&once), comments(&src), "{}: a comment was lost:\n{once}", path.display());
            checked += 1;
        }
    }
    assert!(checked > 60, "{checked}");
}
