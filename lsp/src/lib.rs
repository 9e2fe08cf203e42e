//! A Language Server Protocol server for `.seq` files (`seqc lsp`), built on the crates
//! rust-analyzer uses (`lsp-server`, `lsp-types`) and on the compiler as a library: no second
//! parser or checker.
//!
//! It publishes every diagnostic of a file on open and on each change, shows each tensor's
//! inferred shape on hover and as inlay hints, goes to definitions and finds references of
//! models, variables and dimensions, lists the models as document symbols, completes layer
//! names, their keyword arguments, activations, models and variables, and formats through the
//! canonical printer. A file that does not parse keeps the hover and hints of its last version
//! that did.

mod docs;
pub mod names;
mod server;
pub mod text;

pub use server::{Server, run_stdio};
