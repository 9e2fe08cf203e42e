//! `seqmodel!`: a thin shim over `seqmodel_compiler::macro_support` (all logic lives there).

use proc_macro::TokenStream;

/// Checks `.seq` models at build time and declares a typed handle per model.
///
/// Inline: `seqmodel! { model M(x: [T, 3]) -> [1] { x -> LSTM(1) } }`; errors land on the
/// offending token. From a file: `seqmodel!("models/m.seq")`, relative to the crate's
/// `Cargo.toml`; errors name `file:line:col`, and cargo rebuilds when the file changes.
///
/// Weights in the binary: `seqmodel!("models/m.seq", weights = "models/m.safetensors")`
/// checks the safetensors file against the main model's (the file's last) weight table at
/// compile time (a missing, mis-shaped, extra or non-finite weight is an error on the
/// `weights` literal naming the weight) and gives that model `baked()`, which reads no file.
#[proc_macro]
pub fn seqmodel(input: TokenStream) -> TokenStream {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").map(std::path::PathBuf::from).unwrap_or_default();
    seqmodel_compiler::macro_support::expand(input.into(), &dir).into()
}
