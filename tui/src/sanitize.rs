//! Untrusted text (node names, evidence lines, log messages) must not reach the terminal as
//! control sequences.
//!
//! TODO(shared-sanitiser): replace with the shared sanitiser that is being added to
//! model/analysis in parallel, once it is merged; this is the small local stand-in.

use std::borrow::Cow;

/// C0 controls (CR, LF, ESC, …), DEL and C1 controls become visible `\xNN` / `\u{NN}`
/// escapes; a TAB becomes a space (`ip rule` output has them); everything else is kept.
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c == '\t' {
            out.push(' ');
        } else if is_control(c) {
            let n = c as u32;
            if n < 0x80 {
                out.push_str(&format!("\\x{n:02x}"));
            } else {
                out.push_str(&format!("\\u{{{n:x}}}"));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`clean`] into an owned string.
pub fn owned(s: &str) -> String {
    clean(s).into_owned()
}

fn is_control(c: char) -> bool {
    let n = c as u32;
    n < 0x20 || (0x7f..=0x9f).contains(&n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_c0_c1_and_del_but_keeps_text() {
        assert_eq!(clean("ip-10-0-1-5"), "ip-10-0-1-5");
        assert!(matches!(clean("plain"), Cow::Borrowed(_)));
        assert_eq!(clean("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(clean("x\u{9b}31m"), "x\\u{9b}31m");
        assert_eq!(clean("t\tn\n\x7f"), "t n\\x0a\\x7f");
        assert_eq!(clean("ünïcode →"), "ünïcode →");
    }
}
