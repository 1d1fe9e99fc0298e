//! `y`: copy text to the clipboard with OSC 52 (works over SSH in most terminals; inside tmux
//! it needs `set-clipboard on`), and always into a file too, because nothing tells us whether
//! the terminal honoured the escape.

use std::io::Write;
use std::path::Path;

use base64::Engine;

/// The OSC 52 sequence that sets the clipboard to `text` (tmux passthrough when `tmux`).
pub fn osc52(text: &str, tmux: bool) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    if tmux {
        format!("\x1bPtmux;\x1b\x1b]52;c;{b64}\x07\x1b\\")
    } else {
        format!("\x1b]52;c;{b64}\x07")
    }
}

/// Copy: write the OSC 52 sequence to `out` and the text to `file`. Returns the status line.
pub fn copy(text: &str, out: &mut impl Write, file: &Path) -> String {
    let tmux = std::env::var_os("TMUX").is_some();
    let sent = out
        .write_all(osc52(text, tmux).as_bytes())
        .and_then(|_| out.flush())
        .is_ok();
    let saved = std::fs::write(file, text);
    let lines = text.lines().count();
    match (sent, saved) {
        (true, Ok(())) => format!(
            "copied {lines} line(s) (OSC 52; also saved to {})",
            file.display()
        ),
        (false, Ok(())) => format!("saved {lines} line(s) to {}", file.display()),
        (true, Err(e)) => format!(
            "copied {lines} line(s) (OSC 52); could not save {}: {e}",
            file.display()
        ),
        (false, Err(e)) => format!("copy failed: could not write {}: {e}", file.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osc52_encodes_base64_and_wraps_for_tmux() {
        assert_eq!(osc52("hi", false), "\x1b]52;c;aGk=\x07");
        assert!(osc52("hi", true).starts_with("\x1bPtmux;\x1b\x1b]52;c;aGk="));
    }

    #[test]
    fn copy_writes_the_file_and_the_sequence() -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("tui-clip-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("ev.txt");
        let mut out = Vec::new();
        let msg = copy("a\nb\n", &mut out, &file);
        assert!(msg.contains("copied 2 line(s)"), "{msg}");
        assert_eq!(std::fs::read_to_string(&file)?, "a\nb\n");
        assert!(String::from_utf8(out)?.contains("]52;c;YQpiCg=="));
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
