//! Output: text (aligned, optional colour, ≤100 columns), JSON (serde of the report types)
//! and Markdown (headings, tables, evidence in code blocks).

pub mod analyze;
pub mod check;
pub mod rules;
pub mod trace;
pub mod views;

use std::io::IsTerminal;

use model::Severity;

use crate::cli::ColorChoice;

/// Width text output wraps at.
pub const WIDTH: usize = 100;

/// Colour on or off, decided once.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    /// `always` wins; `never` loses; `auto` = stdout is a terminal and NO_COLOR is unset/empty.
    pub fn detect(choice: ColorChoice) -> Style {
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
                !no_color && std::io::stdout().is_terminal()
            }
        };
        Style { color }
    }

    /// Every SGR sequence [`Style::paint`] writes; the only escapes [`safe`] lets through.
    const SGR: &'static [&'static str] = &[
        "\x1b[1m",
        "\x1b[2m",
        "\x1b[32m",
        "\x1b[1;31m",
        "\x1b[33m",
        "\x1b[36m",
        "\x1b[0m",
    ];

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    pub fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }

    pub fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }

    pub fn green(&self, s: &str) -> String {
        self.paint("32", s)
    }

    pub fn red(&self, s: &str) -> String {
        self.paint("1;31", s)
    }

    pub fn yellow(&self, s: &str) -> String {
        self.paint("33", s)
    }

    /// A severity label padded to 7 columns before colouring, so columns stay aligned.
    pub fn severity(&self, sev: Severity) -> String {
        let label = format!("{:<7}", sev.to_string().to_uppercase());
        match sev {
            Severity::Error => self.red(&label),
            Severity::Warning => self.yellow(&label),
            Severity::Info => self.paint("36", &label),
        }
    }
}

/// A rendered text or markdown report made safe for a terminal: every control character
/// that came from outside (captures, hostnames, logs) escaped, overlong lines cut; with colour
/// on, exactly the report's own styles pass (`model::sanitize`, shared with the TUI).
pub fn safe(rendered: String, st: Style) -> String {
    let allowed: &[&str] = if st.color { Style::SGR } else { &[] };
    model::sanitize::rendered(&rendered, allowed)
}

/// Word-wrap `text` to `width` columns, every line prefixed by `indent`.
pub fn wrap(text: &str, indent: &str, width: usize) -> String {
    let avail = width.saturating_sub(indent.chars().count()).max(20);
    let mut out = String::new();
    for para in text.lines() {
        let mut line = String::new();
        for word in para.split_whitespace() {
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > avail {
                out.push_str(indent);
                out.push_str(&line);
                out.push('\n');
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        out.push_str(indent);
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `head` (already laid out, may hold colour codes; `head_width` visible columns) followed by
/// `text` wrapped to `width`, continuation lines indented to `head_width`.
pub fn hanging(head: &str, head_width: usize, text: &str, width: usize) -> String {
    let pad = " ".repeat(head_width);
    let body = wrap(text, &pad, width);
    let mut out = String::new();
    for (i, line) in body.lines().enumerate() {
        if i == 0 {
            out.push_str(head);
            out.push_str(line.trim_start());
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if out.is_empty() {
        out.push_str(head.trim_end());
        out.push('\n');
    }
    out
}

/// Colours one padded cell: `(row, column, text)`.
pub type Paint<'a> = dyn Fn(usize, usize, &str) -> String + 'a;

/// Left-aligned columns; the last column is not padded. Cells must not contain colour codes
/// (colour is applied by `paint` per cell after padding, so alignment survives it).
pub fn columns(rows: &[Vec<String>], indent: &str, paint: &Paint<'_>) -> String {
    let ncol = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; ncol];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for (ri, r) in rows.iter().enumerate() {
        let mut line = String::from(indent);
        for (i, c) in r.iter().enumerate() {
            let padded = if i + 1 == r.len() {
                c.clone()
            } else {
                format!("{c:<w$}  ", w = widths[i])
            };
            line.push_str(&paint(ri, i, &padded));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Escape a Markdown table cell.
pub fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
        .replace('\t', " ")
        .replace('\n', "<br>")
}

/// A Markdown table.
pub fn md_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    out.push_str(&format!("| {} |\n", header.join(" | ")));
    out.push_str(&format!(
        "|{}\n",
        header.iter().map(|_| "---|").collect::<String>()
    ));
    for r in rows {
        let cells: Vec<String> = r.iter().map(|c| md_cell(c)).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

/// A fenced code block that survives content with backticks.
pub fn md_code(lines: &[String]) -> String {
    let body = lines.join("\n");
    let fence = if body.contains("```") { "~~~~" } else { "```" };
    format!("{fence}text\n{body}\n{fence}\n")
}

/// Inline code span.
pub fn md_inline(s: &str) -> String {
    let s = s.replace('\t', " ");
    if s.contains('`') {
        format!("`` {s} ``")
    } else {
        format!("`{s}`")
    }
}

/// Pretty JSON with a trailing newline.
/// Pretty JSON of a report: the exact text of every string (C1 and bidi controls written as
/// `\u` escapes, which decode to the same text; serde_json escapes C0 itself).
pub fn json<T: serde::Serialize>(v: &T) -> anyhow::Result<String> {
    let s = serde_json::to_string_pretty(v)?;
    let mut s = model::sanitize::json_text(&s).into_owned();
    s.push('\n');
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_respects_width_and_indent() {
        let w = wrap("aaa bbb ccc ddd eee fff ggg hhh iii", "  ", 24);
        for l in w.lines() {
            assert!(l.chars().count() <= 24, "{l}");
            assert!(l.starts_with("  "));
        }
        assert_eq!(w.split_whitespace().count(), 9);
    }

    #[test]
    fn hanging_indents_continuations() {
        let h = hanging("ab: ", 4, "one two three four five six seven", 24);
        assert_eq!(h, "ab: one two three four\n    five six seven\n");
        assert_eq!(hanging("x: ", 3, "", 10), "x:\n");
    }

    #[test]
    fn columns_align() {
        let rows = vec![
            vec!["a".to_string(), "bb".to_string(), "x".to_string()],
            vec!["ccc".to_string(), "d".to_string(), "y".to_string()],
        ];
        let s = columns(&rows, "", &|_, _, c| c.to_string());
        assert_eq!(s, "a    bb  x\nccc  d   y\n");
    }

    #[test]
    fn md_escapes_pipes_and_fences() {
        assert_eq!(md_cell("a|b"), "a\\|b");
        assert!(md_code(&["```".to_string()]).starts_with("~~~~"));
    }
}
