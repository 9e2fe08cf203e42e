//! Limits checked on the text before parsing, so that no input can overflow the stack of the
//! parser or of the checker (which recurse over nested expressions): brackets and block
//! comments nested at most [`MAX_NESTING`] deep, at most [`MAX_CHAIN`] calls or indexes in a
//! row (`x[-1:][-1:]…` nests in the syntax tree). Real models stay far below both.

use crate::parser::CommentEnd;
use crate::{ParseError, Span};

/// The deepest nesting of brackets or block comments.
pub const MAX_NESTING: usize = 256;

/// The most calls and indexes applied one after another to one value.
pub const MAX_CHAIN: usize = 1024;

/// Checks the limits; the error points at the token that goes past one.
pub fn check(source: &str) -> Result<(), ParseError> {
    let b = source.as_bytes();
    let mut i = 0;
    // Per open bracket: the length of the call/index chain it continues.
    let mut chains: Vec<usize> = Vec::new();
    let mut top_chain = 0usize;
    let mut last = b' ';
    let error = |at: usize, message: String| ParseError { message, span: Span::new(at, at + 1) };
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' | b'\'' => {
                i += 1;
                while i < b.len() && b[i] != c {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                last = c;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                match crate::parser::scan_block_comment(b, i, MAX_NESTING) {
                    CommentEnd::Closed(end) => i = end,
                    CommentEnd::TooDeep(at) => {
                        return Err(error(at, format!("comments nested more than {MAX_NESTING} deep")));
                    }
                    // An unclosed one is an error here: the grammar's nested comments would
                    // try every `/*` inside it again to the end of the text, and again for
                    // each way of reading what comes before (a 600-byte input with a dozen
                    // open `/*` took 2.4 s to fail; found by the `seq_run` fuzzer).
                    CommentEnd::Unclosed => {
                        return Err(error(
                            i,
                            "this block comment is never closed: `/*` without its `*/`".into(),
                        ));
                    }
                }
                continue;
            }
            b'(' | b'[' | b'{' => {
                if chains.len() >= MAX_NESTING {
                    return Err(error(i, format!("brackets nested more than {MAX_NESTING} deep")));
                }
                let chain = if c != b'{' && (last == b')' || last == b']') {
                    top_chain + 1
                } else {
                    usize::from(c != b'{' && (last.is_ascii_alphanumeric() || last == b'_' || last == b'>'))
                };
                if chain > MAX_CHAIN {
                    return Err(error(
                        i,
                        format!(
                            "more than {MAX_CHAIN} calls or indexes in a row; split the chain with assignments"
                        ),
                    ));
                }
                chains.push(chain);
                top_chain = 0;
                last = c;
            }
            b')' | b']' | b'}' => {
                top_chain = chains.pop().unwrap_or(0);
                last = c;
            }
            c if c.is_ascii_whitespace() => {}
            _ => last = c,
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_and_long_chains_are_errors_not_crashes() {
        let parens = format!("model M(x: [3]) -> [3] {{ {}x{} }}", "(".repeat(5000), ")".repeat(5000));
        let e = check(&parens).unwrap_err();
        assert!(e.message.contains("nested more than 256"), "{}", e.message);
        let chain = format!("model M(x: [T, 3]) -> [_, 3] {{ x{} }}", "[-1:]".repeat(100_000));
        let e = check(&chain).unwrap_err();
        assert!(e.message.contains("calls or indexes in a row"), "{}", e.message);
        let comments = format!("{}{}", "/*".repeat(1000), "*/".repeat(1000));
        assert!(check(&comments).is_err());
        // Block comments left open, at any depth, are named where they start.
        for src in ["model M(x: [3]) -> [3] { x } /* open", "/* a /* b */ model M(x: [3]) -> [3] { x }"] {
            let e = check(src).unwrap_err();
            assert!(e.message.contains("never closed"), "{}", e.message);
            assert_eq!(e.span.start, src.find("/*").unwrap());
        }
        let slow = include_str!("../tests/limits/open_comments.seq");
        let e = check(slow).unwrap_err();
        assert!(e.message.contains("never closed"), "{}", e.message);
        assert!(check("/* a /* b */ c */ model M(x: [3]) -> [3] { x /* d */ }").is_ok());
        // Ordinary chains and strings with brackets are fine.
        assert!(check("model M(x: [T, 3]) -> [1] { x -> LSTM(4)(x)[-1:] -> Dense(1) } // ((((").is_ok());
        assert!(check("model M(x: [3]) -> [3] { Activation(\"(((\")(x) }").is_ok());
        let ok_chain = format!("model M(x: [T, 3]) -> [_, 3] {{ x{} }}", "[-1:]".repeat(1000));
        assert!(check(&ok_chain).is_ok());
    }
}
