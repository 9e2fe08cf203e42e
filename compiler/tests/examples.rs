//! The seed examples check, their IR is snapshotted, and parameter counts match Keras's.

use std::path::{Path, PathBuf};

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seq"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_example_checks_and_its_ir_is_stable() {
    let files = examples();
    assert!(files.len() >= 13);
    for path in files {
        let src = std::fs::read_to_string(&path).unwrap();
        let compiled = seqmodel_compiler::compile(&src)
            .unwrap_or_else(|e| panic!("{}:\n{}", path.display(), e.render("x", &src, false)));
        let dump: String = compiled.programs.iter().map(|p| p.dump()).collect::<Vec<_>>().join("\n");
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(name, dump);
    }
}

/// Keras's parameter count for a layer: kernel + recurrent kernel + bias, independent of our
/// weight specs.
fn keras_rnn_params(gates: usize, input: usize, units: usize, bias_rows: usize) -> usize {
    gates * units * (input + units) + bias_rows * gates * units
}

#[test]
fn parameter_counts_match_keras_formulas() {
    let src =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/language_model.seq"))
            .unwrap();
    let p = seqmodel_compiler::compile(&src).unwrap();
    let lm = p.program("LanguageModel").unwrap();
    let want = 10000 * 128
        + keras_rnn_params(3, 128, 512, 2)
        + keras_rnn_params(3, 512, 128, 2)
        + 128 * 10000
        + 10000;
    assert_eq!(lm.param_count(), want);
    // Keras's summary of the seed language model reports 3,802,640 parameters.
    assert_eq!(lm.param_count(), 3_802_640);

    let src =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/autoencoder.seq"))
            .unwrap();
    let p = seqmodel_compiler::compile(&src).unwrap();
    let ae = p.program("Autoencoder").unwrap();
    let want = keras_rnn_params(4, 2, 32, 1)
        + keras_rnn_params(4, 32, 24, 1)
        + keras_rnn_params(4, 24, 16, 1)
        + keras_rnn_params(4, 16, 24, 1)
        + keras_rnn_params(4, 24, 2, 1);
    assert_eq!(ae.param_count(), want);
}

/// Parameter counts of imported-by-hand equivalents of the conformance models agree with the
/// weight shapes Keras listed in `weights.txt`.
#[test]
fn parameter_counts_match_keras_weight_listings() {
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance");
    let cases = [
        (
            "autoencoder_nested",
            "model Enc(x: [5, 3]) -> [4] { x -> LSTM(8, return_sequences=true) -> LSTM(6, return_sequences=true) -> LSTM(4) }\nmodel Dec(z: [4]) -> [5, 3] { z -> RepeatVector(5) -> LSTM(6, return_sequences=true) -> LSTM(3, return_sequences=true) }\nmodel AE(x: [5, 3]) -> [5, 3] { Dec(Enc(x)) }",
        ),
        (
            "gru_reset_after_false",
            "model G(x: [T, 3]) -> [2] { x -> GRU(7, return_sequences=true, reset_after=false) -> GRU(5, reset_after=false) -> Dense(2) }",
        ),
        (
            "bidirectional_lstm_concat",
            "model B(x: [5, 3]) -> [2] { x -> Bidirectional(LSTM(5, return_sequences=true)) -> Bidirectional(LSTM(4)) -> Dense(2) }",
        ),
    ];
    for (case, src) in cases {
        let listing = match std::fs::read_to_string(conf.join(case).join("weights.txt")) {
            Ok(s) => s,
            Err(_) => panic!("../shared/conformance/{case}/weights.txt is needed beside the repository"),
        };
        let keras_total: usize = listing
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let shape = l.split('\t').nth(1).unwrap();
                shape
                    .trim_matches(|c| c == '[' || c == ']')
                    .split(',')
                    .map(|d| d.trim().parse::<usize>().unwrap())
                    .product::<usize>()
            })
            .sum();
        let compiled = seqmodel_compiler::compile(src).unwrap();
        assert_eq!(compiled.main().unwrap().param_count(), keras_total, "{case}");
    }
}
