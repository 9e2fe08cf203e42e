//! What the `keras` feature costs a user's binary: the weight reader, not the compiler.

use std::process::Command;

/// `cargo tree` of the facade's linked (not proc-macro) dependencies with `features`: whether
/// it ran, and its output.
fn tree(features: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO"))
        .args(["tree", "-p", "seqmodel", "-e", "normal,no-proc-macro", "--prefix", "none"])
        .args(features)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn the_keras_feature_links_no_compiler_parser_or_macro_crate() {
    let (ok, tree) = tree(&["--features", "keras"]);
    assert!(ok && tree.contains("seqmodel-keras"), "{tree}");
    for name in ["seqmodel-compiler", "seqmodel-grammar", "pest", "syn", "quote", "prettyplease", "ariadne"] {
        assert!(
            !tree.lines().any(|l| l.split_whitespace().next() == Some(name)),
            "{name} is linked:\n{tree}"
        );
    }
}

#[test]
fn without_std_only_the_kernels_are_linked() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "seqmodel",
            "--no-default-features",
            "-e",
            "normal,no-proc-macro",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = tree.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(out.status.success() && names.contains(&"seqmodel-kernels"), "{tree}");
    for name in ["seqmodel-runtime", "ndarray", "safetensors", "seqmodel-keras", "seqmodel-compiler"] {
        assert!(!names.contains(&name), "{name} is linked without std:\n{tree}");
    }
}
