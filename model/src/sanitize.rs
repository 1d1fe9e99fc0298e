//! One sanitising layer for text that came from outside (pasted captures, tarballs, node
//! hostnames, CNI logs, ssh banners) on its way to a terminal or a markdown report.
//!
//! It lives in `model` because every front end (diag's text and markdown renderers, the
//! TUI, bundle readers) depends on `model`, and it is pure text in, text out. The model
//! itself keeps the original text: findings' evidence and JSON output are not changed (JSON
//! escaping is already safe for C0; [`json_text`] additionally writes C1 and bidi controls as
//! `\u` escapes, which decode to the same text).
//!
//! What a reader sees:
//! - C0 controls and DEL as `\x07`, `\x0d`…, ESC as `^[` (so `ESC ] 0 ; title BEL` shows as
//!   `^[]0;title\x07`); `\n` is kept, `\t` too (it cannot move the cursor back).
//! - C1 controls (U+0080–U+009F, e.g. the one-byte CSI U+009B) and the Unicode bidi and
//!   line/paragraph separators (which can reorder or hide text) as `\u{9b}`.
//! - Lines longer than [`MAX_LINE_BYTES`] cut with `… (N more bytes)`.
//! - Invalid UTF-8 (where bytes are available, see [`decode_lossy`]) as U+FFFD, with the byte
//!   offsets reported.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Longest line written as is; the rest is cut and counted.
pub const MAX_LINE_BYTES: usize = 4096;

/// Characters that must not reach a terminal raw: C0 (except `\n`, `\t`), DEL, C1, and the
/// Unicode controls that reorder or break lines invisibly.
pub fn is_unsafe(c: char) -> bool {
    match c {
        '\n' | '\t' => false,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        // Bidi embeddings/overrides/isolates, line and paragraph separators, BOM/ZWNBSP.
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}' => true,
        '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{feff}' => true,
        _ => false,
    }
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\u{1b}' => out.push_str("^["),
        '\u{0}'..='\u{1f}' | '\u{7f}' => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        _ => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// One piece of outside text for a terminal or markdown: unsafe characters escaped, lines cut
/// at [`MAX_LINE_BYTES`]. Borrowed when nothing needed changing.
pub fn terminal(s: &str) -> Cow<'_, str> {
    terminal_with(s, MAX_LINE_BYTES)
}

/// [`terminal`] with another line cap.
pub fn terminal_with(s: &str, max_line: usize) -> Cow<'_, str> {
    let long = s.split('\n').any(|l| l.len() > max_line);
    if !long && !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        for (at, c) in line.char_indices() {
            if at >= max_line {
                let _ = write!(out, "… ({} more bytes)", line.len() - at);
                break;
            }
            if is_unsafe(c) {
                push_escaped(&mut out, c);
            } else {
                out.push(c);
            }
        }
    }
    Cow::Owned(out)
}

/// Rendered output (a whole text or markdown report) where the renderer's own styling is
/// the exact SGR sequences in `allowed_sgr` (bold, dim, colours, reset); every other ESC and
/// control is escaped as in [`terminal`]. Pass an empty slice for uncoloured output.
///
/// Only whole, exactly matching sequences pass: text from outside can at most re-use one of
/// the report's own styles, which cannot move the cursor, retitle the window or hide text.
pub fn rendered(s: &str, allowed_sgr: &[&str]) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut rest = line;
        let mut visible = 0usize;
        while let Some(c) = rest.chars().next() {
            if c == '\u{1b}' {
                if let Some(seq) = allowed_sgr.iter().find(|q| rest.starts_with(**q)) {
                    out.push_str(seq);
                    rest = &rest[seq.len()..];
                    continue;
                }
            }
            if visible >= MAX_LINE_BYTES {
                let _ = write!(out, "… ({} more bytes)", rest.len());
                break;
            }
            if is_unsafe(c) {
                push_escaped(&mut out, c);
            } else {
                out.push(c);
            }
            visible += c.len_utf8();
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// JSON text for a terminal: C1 and bidi controls inside strings written as `\uXXXX`, which
/// any JSON reader decodes to the same text (serde_json already escapes C0).
pub fn json_text(json: &str) -> Cow<'_, str> {
    if !json.chars().any(is_unsafe_in_json) {
        return Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_unsafe_in_json(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn is_unsafe_in_json(c: char) -> bool {
    // `\n` and `\t` between tokens are layout; inside strings serde_json escapes them.
    c != '\n' && c != '\t' && is_unsafe(c)
}

/// Invalid UTF-8 in `bytes`: the text with U+FFFD for each invalid sequence, and the byte
/// offsets of those sequences (empty when the bytes were valid).
pub fn decode_lossy(bytes: &[u8]) -> (Cow<'_, str>, Vec<usize>) {
    let mut offsets = Vec::new();
    let mut at = 0usize;
    for chunk in bytes.utf8_chunks() {
        at += chunk.valid().len();
        if !chunk.invalid().is_empty() {
            offsets.push(at);
            at += chunk.invalid().len();
        }
    }
    (String::from_utf8_lossy(bytes), offsets)
}

/// `invalid UTF-8 at byte 12 (and 3 more places), shown as U+FFFD`, or `None` for valid text.
pub fn invalid_utf8_note(offsets: &[usize]) -> Option<String> {
    let first = offsets.first()?;
    Some(match offsets.len() {
        1 => format!("invalid UTF-8 at byte {first}, shown as U+FFFD"),
        n => format!(
            "invalid UTF-8 at byte {first} (and {} more places), shown as U+FFFD",
            n - 1
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_control_is_escaped_and_text_stays_readable() {
        let mut s = String::new();
        for c in (0u32..0x20).chain(0x7f..0xa0).filter_map(char::from_u32) {
            s.push(c);
        }
        let t = terminal(&s);
        assert!(
            !t.chars().any(|c| c != '\n' && c != '\t' && c.is_control()),
            "{t:?}"
        );
        assert!(
            t.contains("\\x07") && t.contains("^[") && t.contains("\\u{9b}"),
            "{t}"
        );
        assert_eq!(terminal("plain text\n\tindent"), "plain text\n\tindent");
        assert!(matches!(terminal("ok"), Cow::Borrowed(_)));
        assert_eq!(terminal("\u{1b}]0;pwned\u{7}"), "^[]0;pwned\\x07");
        assert_eq!(terminal("a\u{202e}b"), "a\\u{202e}b");
    }

    #[test]
    fn long_lines_are_cut_and_counted() {
        let s = format!("{}\nshort", "x".repeat(5000));
        let t = terminal(&s);
        assert!(
            t.contains(&format!("{}… (904 more bytes)\nshort", "x".repeat(4096))),
            "{t}"
        );
        // Cut on a character boundary.
        let t = terminal_with("ééé", 3);
        assert_eq!(t, "éé… (2 more bytes)");
    }

    #[test]
    fn rendered_keeps_only_the_allowed_styles() {
        let bold = "\u{1b}[1m";
        let reset = "\u{1b}[0m";
        let s = format!("{bold}node{reset} \u{1b}[8mhidden\u{1b}[2J\u{9b}31m");
        let r = rendered(&s, &[bold, reset]);
        assert_eq!(r, format!("{bold}node{reset} ^[[8mhidden^[[2J\\u{{9b}}31m"));
        assert_eq!(rendered("\u{1b}[1m", &[]), "^[[1m");
    }

    #[test]
    fn json_keeps_the_text() {
        let v = serde_json::json!({"t": "a\u{9b}b\u{7}c\u{202e}"});
        let j = serde_json::to_string(&v).unwrap_or_default();
        let safe = json_text(&j);
        assert!(!safe.chars().any(is_unsafe), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap_or_default();
        assert_eq!(back, v);
    }

    #[test]
    fn invalid_utf8_offsets() {
        let (t, off) = decode_lossy(b"ab\xffcd\xfe\xfe");
        assert_eq!(t, "ab\u{fffd}cd\u{fffd}\u{fffd}");
        assert_eq!(off, vec![2, 5, 6]);
        assert_eq!(
            invalid_utf8_note(&off).as_deref(),
            Some("invalid UTF-8 at byte 2 (and 2 more places), shown as U+FFFD")
        );
        assert!(decode_lossy(b"fine").1.is_empty());
    }
}
