//! Byte offsets of the compiler against LSP positions (line, UTF-16 column).

use lsp_types::{Position, Range};
use seqmodel_compiler::Span;

/// The start of every line of a text, to convert positions both ways.
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    /// The index of `text`.
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// The position of byte `offset` of `text` (clamped to the text).
    pub fn position(&self, text: &str, offset: usize) -> Position {
        let offset = floor_char(text, offset.min(text.len()));
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let col: usize = text[self.starts[line]..offset].chars().map(char::len_utf16).sum();
        Position { line: line as u32, character: col as u32 }
    }

    /// The range of `span`.
    pub fn range(&self, text: &str, span: Span) -> Range {
        Range { start: self.position(text, span.start), end: self.position(text, span.end) }
    }

    /// The byte offset of `pos` (clamped to its line and to the text).
    pub fn offset(&self, text: &str, pos: Position) -> usize {
        let Some(&start) = self.starts.get(pos.line as usize) else { return text.len() };
        let end =
            self.starts.get(pos.line as usize + 1).map_or(text.len(), |&e| e.saturating_sub(1)).max(start);
        let mut units = 0usize;
        for (i, c) in text[start..end].char_indices() {
            if units >= pos.character as usize {
                return start + i;
            }
            units += c.len_utf16();
        }
        end
    }
}

fn floor_char(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_with_utf16_columns() {
        let text = "ab\n// é𝄞x\n\nlast";
        let idx = LineIndex::new(text);
        for offset in [0, 1, 2, 3, 6, text.find('x').unwrap(), text.len()] {
            assert_eq!(idx.offset(text, idx.position(text, offset)), offset, "{offset}");
        }
        // `é` is one UTF-16 unit, `𝄞` two.
        assert_eq!(idx.position(text, text.find('x').unwrap()), Position { line: 1, character: 6 });
        assert_eq!(idx.offset(text, Position { line: 9, character: 0 }), text.len());
        assert_eq!(idx.offset(text, Position { line: 0, character: 99 }), 2);
    }
}
