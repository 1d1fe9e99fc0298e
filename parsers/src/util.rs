//! Result types shared by every parser.

use std::fmt;

/// What a lenient parser produced, plus what it had to skip.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed<T> {
    pub value: T,
    pub warnings: Vec<ParseWarning>,
}

impl<T> Parsed<T> {
    pub fn new(value: T) -> Self {
        Parsed {
            value,
            warnings: Vec::new(),
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Parsed<U> {
        Parsed {
            value: f(self.value),
            warnings: self.warnings,
        }
    }

    /// Warnings rendered for a snapshot section (`line 12: ...: \`text\``).
    pub fn warning_strings(&self) -> Vec<String> {
        self.warnings.iter().map(ToString::to_string).collect()
    }
}

/// What a warning means for the input as a whole, so callers decide on data, not on the
/// message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum WarningKind {
    /// One line (or element) was skipped or only partly understood.
    #[default]
    Skipped,
    /// The input ends early: a table without COMMIT, a cut JSON object, a decompression cap.
    Truncated,
}

/// A line that was skipped or only partly understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseWarning {
    /// 1-based line number in the input.
    pub line: usize,
    /// The offending text (truncated to 200 characters).
    pub text: String,
    pub message: String,
    pub kind: WarningKind,
}

impl ParseWarning {
    pub fn new(line: usize, text: &str, message: impl Into<String>) -> Self {
        let mut t: String = text.chars().take(200).collect();
        if t.len() < text.len() {
            t.push('…');
        }
        ParseWarning {
            line,
            text: t,
            message: message.into(),
            kind: WarningKind::Skipped,
        }
    }

    /// A warning saying the input ends early (see [`WarningKind::Truncated`]).
    pub fn truncated(line: usize, text: &str, message: impl Into<String>) -> Self {
        ParseWarning {
            kind: WarningKind::Truncated,
            ..ParseWarning::new(line, text, message)
        }
    }

    pub fn is_truncation(&self) -> bool {
        self.kind == WarningKind::Truncated
    }
}

impl fmt::Display for ParseWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}: `{}`", self.line, self.message, self.text)
    }
}

/// Nothing usable could be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// The input was empty or only whitespace/comments.
    Empty,
    /// The input is not this format. `line`/`text` name the first line that did not fit.
    NotRecognized {
        expected: &'static str,
        line: usize,
        text: String,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Empty => write!(f, "input is empty"),
            ParseError::NotRecognized {
                expected,
                line,
                text,
            } => write!(f, "not {expected} output (line {line}: `{text}`)"),
        }
    }
}

impl std::error::Error for ParseError {}
