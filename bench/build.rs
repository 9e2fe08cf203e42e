//! Generates Rust for the benchmark models through the build API, as a user's crate would.

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let mut builder = seqmodel_compiler::build::Builder::new();
    for name in ["stream_lstm", "ae_seed", "lm_gru", "big_lstm", "gen_stateful", "conv_lstm"] {
        builder = builder.file(dir.join(format!("{name}.seq")));
    }
    if let Err(e) = builder.compile() {
        panic!("{e}");
    }
}
