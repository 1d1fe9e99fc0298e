#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property tests for `parsers::sysctl::parse`: never panics; pastes with re-indented lines and
//! different spacing around `=` parse to the same values (inner whitespace compared collapsed,
//! since a paste may turn the port range's tab into spaces).

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use proptest::prelude::*;

fn fixture(rel: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/sysctl")
        .join(rel);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

const FIXTURES: &[&str] = &[
    "sysctl-a-root.txt",
    "sysctl-a-nobody.txt",
    "handmade-eks-pastes.txt",
    "realworld-cilium-10645.txt",
];

fn normalised(text: &str) -> Result<(BTreeMap<String, String>, usize), String> {
    parsers::sysctl::parse(text)
        .map(|p| {
            let m = p
                .value
                .values
                .into_iter()
                .map(|(k, v)| (k, v.split_whitespace().collect::<Vec<_>>().join(" ")))
                .collect();
            (m, p.warnings.len())
        })
        .map_err(|e| e.to_string())
}

fn mangle(text: &str, seed: &[u8]) -> String {
    let ws = ["", " ", "  ", "\t", " \t"];
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let b = seed[i % seed.len()] as usize;
        out.push_str(ws[b % ws.len()]);
        match line.split_once(" = ") {
            Some((k, v)) => {
                out.push_str(k);
                out.push_str(ws[(b / 5) % ws.len()]);
                out.push('=');
                out.push_str(ws[(b / 25) % ws.len()]);
                out.push_str(&v.split_whitespace().collect::<Vec<_>>().join(ws[1 + b % 4]));
            }
            None => out.push_str(line),
        }
        out.push_str(ws[(b / 7) % ws.len()]);
        out.push('\n');
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,400}") {
        let _ = parsers::sysctl::parse(&s);
    }

    #[test]
    fn sysctl_shaped_garbage_never_panics(s in "([a-z._/=\\t \\n{}\":0-9-]|sysctl: ){0,200}") {
        let _ = parsers::sysctl::parse(&s);
    }

    #[test]
    fn truncated_fixtures_never_panic(idx in 0usize..4, cut in 0.0f64..1.0) {
        let text = fixture(FIXTURES[idx]);
        let mut at = (text.len() as f64 * cut) as usize;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let _ = parsers::sysctl::parse(&text[..at]);
    }

    #[test]
    fn mangled_whitespace_parses_the_same(idx in 0usize..4, seed in proptest::collection::vec(any::<u8>(), 1..64)) {
        let clean = fixture(FIXTURES[idx]);
        let mangled = mangle(&clean, &seed);
        prop_assert_eq!(normalised(&mangled), normalised(&clean));
    }
}
