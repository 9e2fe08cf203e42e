//! The `.seq` language: a [pest] grammar and a typed AST in which every node carries its
//! byte [`Span`]. This crate knows nothing of shapes or layers; the compiler does.
//!
//! ```
//! use seqmodel_grammar::{parse, ast::ExprKind, ast::Stmt};
//! let file = parse("model M(x: [T, 2]) -> [T, 4] { x -> LSTM(4, return_sequences=true) }")
//!     .unwrap();
//! let Stmt::Expr(e) = &file.models[0].body[0] else { panic!() };
//! assert!(matches!(e.kind, ExprKind::Chain(_)));
//! ```

pub mod ast;
pub mod limits;
mod parser;
pub mod printer;
mod span;

pub use parser::parse;
pub use printer::{format, print};
pub use span::Span;

/// A syntax error: what was expected, and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    /// What went wrong, e.g. "expected `(`".
    pub message: String,
    /// Where it went wrong.
    pub span: Span,
}
