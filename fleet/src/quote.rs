//! POSIX shell quoting for the remote commands (SSH exec strings and SSM scripts).
//!
//! Remote commands are always built from fixed argv through these functions, so nothing
//! taken from a hosts file, ssh_config or an EC2 tag can change the command's meaning.

/// Quotes one word for a POSIX `sh`. Safe words pass unchanged; everything else is wrapped in
/// single quotes, with embedded single quotes written as `'\''`.
pub fn shell_quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if safe {
        return word.to_string();
    }
    let mut out = String::with_capacity(word.len() + 2);
    out.push('\'');
    for c in word.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Joins argv into one command line, each word quoted.
pub fn shell_join<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter()
        .map(|a| shell_quote(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const HOSTILE: &[&str] = &[
        "",
        " ",
        "a b",
        "'",
        "''",
        "it's",
        "\"double\"",
        "$(reboot)",
        "`id`",
        "${HOME}",
        "a;rm -rf /",
        "x|y&z",
        "new\nline",
        "tab\there",
        "back\\slash",
        "glob*?[a]",
        "~root",
        "-n",
        "!event",
        "# comment",
        "unicode ☃ é",
        "'\\''",
        "a'b'c'",
    ];

    #[test]
    fn safe_words_unchanged() {
        assert_eq!(shell_quote("node-agent"), "node-agent");
        assert_eq!(
            shell_quote("/usr/local/bin/node-agent"),
            "/usr/local/bin/node-agent"
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    /// Round-trips every hostile word through a real `sh`: `printf '%s\0'` of the quoted words
    /// must give back exactly the original words.
    #[test]
    fn hostile_words_round_trip_through_sh() {
        let script = format!("printf '%s\\0' {}", shell_join(HOSTILE));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .env("HOME", "/nonexistent-home")
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}");
        let words: Vec<&[u8]> = out.stdout.split(|b| *b == 0).collect();
        // trailing NUL gives one empty element at the end
        assert_eq!(words.len(), HOSTILE.len() + 1);
        for (w, h) in words.iter().zip(HOSTILE) {
            assert_eq!(*w, h.as_bytes(), "word {h:?}");
        }
    }

    #[test]
    fn nested_quoting_survives_sh_c() {
        // The pattern used for sudo/timeout wrappers: sh -c '<script>' where the script itself
        // contains quoted hostile words.
        let inner = format!("printf '%s\\0' {}", shell_join(HOSTILE));
        let outer = shell_join(&["sh", "-c", &inner]);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&outer)
            .output()
            .unwrap();
        let words: Vec<&[u8]> = out.stdout.split(|b| *b == 0).collect();
        assert_eq!(words.len(), HOSTILE.len() + 1);
        for (w, h) in words.iter().zip(HOSTILE) {
            assert_eq!(*w, h.as_bytes());
        }
    }
}
