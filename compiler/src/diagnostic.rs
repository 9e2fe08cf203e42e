//! One renderer-neutral diagnostic type, rendered rustc-style with ariadne.

use std::fmt;

use seqmodel_grammar::Span;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The model cannot be compiled.
    Error,
    /// The model compiles but something is suspicious.
    Warning,
}

/// A secondary location with a message ("declared here").
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    /// Where.
    pub span: Span,
    /// What to say there.
    pub message: String,
}

/// A located message: what was expected, what was found, where the other side was declared,
/// and how to fix it when that is evident.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// A stable code from [`crate::codes::CODES`], `SM0301` (`seqc explain SM0301`).
    pub code: &'static str,
    /// The headline.
    pub message: String,
    /// The offending token.
    pub span: Span,
    /// What to say at the offending token.
    pub label: String,
    /// Other places involved.
    pub secondary: Vec<Label>,
    /// Extra facts.
    pub notes: Vec<String>,
    /// How to fix it.
    pub help: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl Diagnostic {
    /// A new error at `span`.
    pub fn error(code: &'static str, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span,
            label: String::new(),
            secondary: Vec::new(),
            notes: Vec::new(),
            help: None,
        }
    }

    /// Sets the label at the primary span.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Adds a secondary label.
    pub fn with_secondary(mut self, span: Span, message: impl Into<String>) -> Self {
        self.secondary.push(Label { span, message: message.into() });
        self
    }

    /// Adds a note.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Sets the help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Renders rustc-style with the source snippet. `color` adds ANSI colours (terminals only).
    /// For several diagnostics of one source use a [`Renderer`], which indexes the source's
    /// lines once.
    pub fn render(&self, file_name: &str, source: &str, color: bool) -> String {
        Renderer::new(file_name, source, color).render(self)
    }

    /// A one-line form: `file:line:col: error[SM0301]: message`.
    pub fn render_plain(&self, file_name: &str, source: &str) -> String {
        let (line, col) = self.span.line_col(source);
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        format!("{file_name}:{line}:{col}: {sev}[{}]: {}", self.code, self.message)
    }
}

/// Edit distance ignoring case, for "did you mean" suggestions.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let a = lowercase_chars(a);
    let mut row = Vec::new();
    let mut b_chars = Vec::new();
    distance(&a, b, &mut b_chars, &mut row)
}

fn lowercase_chars(s: &str) -> Vec<char> {
    s.chars().flat_map(char::to_lowercase).collect()
}

/// The edit distance between the lowercase `a` and `b`, in buffers the caller reuses.
fn distance(a: &[char], b: &str, b_chars: &mut Vec<char>, row: &mut Vec<usize>) -> usize {
    b_chars.clear();
    b_chars.extend(b.chars().flat_map(char::to_lowercase));
    row.clear();
    row.extend(0..=b_chars.len());
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b_chars.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j + 1] + 1).min(row[j] + 1);
        }
    }
    row[b_chars.len()]
}

/// The candidate closest to `name`, if it is close enough to be a likely typo.
///
/// ```
/// use seqmodel_compiler::closest;
/// assert_eq!(closest("LSMT", ["LSTM", "GRU", "Dense"]), Some("LSTM"));
/// assert_eq!(closest("xyz", ["LSTM"]), None);
/// ```
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = lowercase_chars(name);
    let (mut b_chars, mut row) = (Vec::new(), Vec::new());
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let allowed = (c.len().max(name.len()) / 3).max(1) + usize::from(c.len() > 3);
        // The distance is at least the difference of the lengths (in characters, and
        // lowercasing keeps ASCII lengths): most candidates end here.
        if name.is_ascii() && c.is_ascii() && c.len().abs_diff(name.len()) > allowed {
            continue;
        }
        let d = distance(&lower, c, &mut b_chars, &mut row);
        if d <= allowed && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Renders diagnostics of one source file rustc-style. The source's line index is built once,
/// so rendering every diagnostic of a file is linear in the file's size plus the diagnostics
/// (one index per diagnostic made 2,000 errors take 6 s).
pub struct Renderer<'a> {
    file_name: &'a str,
    text: &'a str,
    source: ariadne::Source<&'a str>,
    color: bool,
}

impl<'a> Renderer<'a> {
    /// A renderer for `source`, named `file_name` in the output; `color` adds ANSI colours.
    pub fn new(file_name: &'a str, source: &'a str, color: bool) -> Self {
        Renderer { file_name, text: source, source: ariadne::Source::from(source), color }
    }

    /// Renders one diagnostic with its source snippet.
    pub fn render(&self, d: &Diagnostic) -> String {
        use ariadne::{Config, IndexType, Label as ALabel, Report, ReportKind};
        let (file_name, source) = (self.file_name, self.text);
        let clamp = |s: Span| {
            let start = s.start.min(source.len());
            start..s.end.clamp(start, source.len())
        };
        let kind = match d.severity {
            Severity::Error => ReportKind::Error,
            Severity::Warning => ReportKind::Warning,
        };
        let config = Config::default().with_color(self.color).with_index_type(IndexType::Byte);
        let mut report = Report::build(kind, (file_name, clamp(d.span)))
            .with_config(config)
            .with_code(d.code)
            .with_message(&d.message);
        // In source order: ariadne starts a new snippet (headed by the primary location,
        // so with the wrong line number) at every label that comes before the previous one.
        let mut labels: Vec<(Span, &str)> = vec![(d.span, &d.label)];
        labels.extend(d.secondary.iter().map(|l| (l.span, l.message.as_str())));
        labels.sort_by_key(|(s, _)| (s.start, s.end));
        for (span, message) in labels {
            report = report.with_label(ALabel::new((file_name, clamp(span))).with_message(message));
        }
        for n in &d.notes {
            report = report.with_note(n);
        }
        if let Some(h) = &d.help {
            report = report.with_help(h);
        }
        let mut out = Vec::new();
        let written = report.finish().write((file_name, &self.source), &mut out);
        match written {
            Ok(()) => String::from_utf8_lossy(&out).into_owned(),
            Err(_) => d.render_plain(file_name, source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The textbook recursion with memo, over each character lowercased on its own (no
    /// context: a word-final `Σ` is `σ`, as in identifiers).
    fn reference(a: &str, b: &str) -> usize {
        let a: Vec<char> = a.chars().flat_map(char::to_lowercase).collect();
        let b: Vec<char> = b.chars().flat_map(char::to_lowercase).collect();
        let mut memo = vec![vec![usize::MAX; b.len() + 1]; a.len() + 1];
        fn go(a: &[char], b: &[char], i: usize, j: usize, memo: &mut Vec<Vec<usize>>) -> usize {
            if i == a.len() {
                return b.len() - j;
            }
            if j == b.len() {
                return a.len() - i;
            }
            if memo[i][j] == usize::MAX {
                let sub = go(a, b, i + 1, j + 1, memo) + usize::from(a[i] != b[j]);
                let del = go(a, b, i + 1, j, memo) + 1;
                let ins = go(a, b, i, j + 1, memo) + 1;
                memo[i][j] = sub.min(del).min(ins);
            }
            memo[i][j]
        }
        go(&a, &b, 0, 0, &mut memo)
    }

    proptest! {
        #[test]
        fn levenshtein_is_the_edit_distance(a in "[a-cA-CßİΣ_]{0,8}", b in "[a-cA-CßİΣ_]{0,8}") {
            prop_assert_eq!(levenshtein(&a, &b), reference(&a, &b));
        }

        /// The length filter of `closest` never drops the candidate a full scan would pick.
        #[test]
        fn closest_is_the_nearest_within_the_allowance(
            name in "[a-dA-D]{1,7}",
            candidates in proptest::collection::vec("[a-dA-D]{1,9}", 0..12),
        ) {
            let allowed = |c: &str| (c.len().max(name.len()) / 3).max(1) + usize::from(c.len() > 3);
            let mut best: Option<(usize, &str)> = None;
            for c in &candidates {
                let d = reference(&name, c);
                if d <= allowed(c) && best.is_none_or(|(b, _)| d < b) {
                    best = Some((d, c));
                }
            }
            prop_assert_eq!(closest(&name, candidates.iter().map(String::as_str)), best.map(|(_, c)| c));
        }
    }
}
