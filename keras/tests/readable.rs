//! `seqc import` writes `.seq` a person would write: every conformance model imports to
//! canonical text (what `seqc fmt` prints) that declares its output types, names its model
//! and inputs sensibly, and checks to exactly the program the import produced.

use std::path::Path;

fn cases() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared");
    let mut out = Vec::new();
    for suite in ["conformance", "conformance-layers"] {
        for e in std::fs::read_dir(root.join(suite)).unwrap() {
            let dir = e.unwrap().path();
            if dir.join("model.keras").exists() {
                out.push(dir);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_conformance_import_is_canonical_declared_and_the_same_program() {
    let mut n = 0;
    for dir in cases() {
        for file in ["model.keras", "model.h5"] {
            let path = dir.join(file);
            if !path.exists() {
                continue;
            }
            let imported =
                seqmodel_keras::import_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let src = &imported.source;
            let shown = format!("{}:\n{src}", path.display());
            assert!(src.ends_with("}\n"), "{shown}");
            assert_eq!(&seqmodel_compiler::grammar::format(src).unwrap(), src, "not canonical: {shown}");
            let file_ast = seqmodel_compiler::grammar::parse(src).unwrap();
            assert!(file_ast.models.iter().all(|m| m.outputs.is_some()), "undeclared outputs: {shown}");
            for m in &file_ast.models {
                assert!(!matches!(m.name.name.as_str(), "Functional" | "Sequential"), "{shown}");
                assert!(m.params.iter().all(|p| !p.name.name.starts_with("input_layer")), "{shown}");
            }
            let again = seqmodel_compiler::compile(src).unwrap();
            let main = again.program(&imported.program.name).unwrap();
            assert_eq!(main.fingerprint(), imported.program.fingerprint(), "{shown}");
            n += 1;
        }
    }
    assert!(n >= 40, "{n}");
}

#[test]
fn the_nested_autoencoder_imports_like_the_hand_written_example() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/autoencoder_nested");
    let imported = seqmodel_keras::import_file(&dir.join("model.keras")).unwrap();
    insta::assert_snapshot!(imported.source);
}
