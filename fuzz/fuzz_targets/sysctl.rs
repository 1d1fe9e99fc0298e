//! Fuzz `parsers::sysctl::parse`: never panics, whitespace-only input is `Empty`, warnings point
//! at real lines, and every key kept is a plausible sysctl name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parsers::ParseError;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let r = parsers::sysctl::parse(s);
    if s.trim().is_empty() {
        assert!(matches!(r, Err(ParseError::Empty)));
    }
    if let Ok(p) = r {
        let lines = s.lines().count().max(1);
        for w in &p.warnings {
            assert!(w.line >= 1 && w.line <= lines);
        }
        for (k, v) in &p.value.values {
            assert!(k.contains('.') && !k.contains('=') && !k.chars().any(char::is_whitespace));
            // Multi-line values are joined with `\n`; each line is trimmed.
            for part in v.split('\n') {
                assert_eq!(part.trim(), part, "{k}: untrimmed value");
            }
        }
    }
});
