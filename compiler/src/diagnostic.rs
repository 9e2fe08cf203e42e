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
    pub fn render(&self, file_name: &str, source: &str, color: bool) -> String {
        use ariadne::{Config, IndexType, Label as ALabel, Report, ReportKind, Source};
        let clamp = |s: Span| {
            let start = s.start.min(source.len());
            start..s.end.clamp(start, source.len())
        };
        let kind = match self.severity {
            Severity::Error => ReportKind::Error,
            Severity::Warning => ReportKind::Warning,
        };
        let config = Config::default().with_color(color).with_index_type(IndexType::Byte);
        let mut report = Report::build(kind, (file_name, clamp(self.span)))
            .with_config(config)
            .with_code(self.code)
            .with_message(&self.message);
        // In source order: ariadne starts a new snippet (headed by the primary location,
        // so with the wrong line number) at every label that comes before the previous one.
        let mut labels: Vec<(Span, &str)> = vec![(self.span, &self.label)];
        labels.extend(self.secondary.iter().map(|l| (l.span, l.message.as_str())));
        labels.sort_by_key(|(s, _)| (s.start, s.end));
        for (span, message) in labels {
            report = report.with_label(ALabel::new((file_name, clamp(span))).with_message(message));
        }
        for n in &self.notes {
            report = report.with_note(n);
        }
        if let Some(h) = &self.help {
            report = report.with_help(h);
        }
        let mut out = Vec::new();
        let written = report.finish().write((file_name, Source::from(source)), &mut out);
        match written {
            Ok(()) => String::from_utf8_lossy(&out).into_owned(),
            Err(_) => self.render_plain(file_name, source),
        }
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

/// Edit distance, for "did you mean" suggestions.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidate closest to `name`, if it is close enough to be a likely typo.
///
/// ```
/// use seqmodel_compiler::closest;
/// assert_eq!(closest("LSMT", ["LSTM", "GRU", "Dense"]), Some("LSTM"));
/// assert_eq!(closest("xyz", ["LSTM"]), None);
/// ```
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (levenshtein(name, c), c))
        .filter(|(d, c)| *d <= (c.len().max(name.len()) / 3).max(1) + usize::from(c.len() > 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}
