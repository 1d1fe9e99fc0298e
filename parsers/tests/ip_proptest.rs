#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property tests for the `ip` parsers: no input makes them panic, and a paste mangled the ways
//! pastes get mangled (whitespace collapsed or re-indented, colours, prompts and separators
//! added) parses to the same values as the clean capture.

use std::fs;
use std::path::PathBuf;

use model::net::Family;
use parsers::ip::{
    parse_addr, parse_link, parse_neigh, parse_route, parse_route_in_table, parse_rule,
    parse_rule_family,
};
use proptest::prelude::*;

const TEXT_FIXTURES: &[&str] = &[
    "netns/addr.txt",
    "netns/addr-o.txt",
    "netns/addr-br.txt",
    "netns/addr-c.txt",
    "netns/link-d.txt",
    "netns/route-all.txt",
    "netns/rule.txt",
    "netns/rule-6.txt",
    "netns/neigh.txt",
    "realworld/vpc-cni-705-rule.txt",
    "realworld/genieparser-171-route-all-truncated.txt",
    "realworld/ec2-net-utils-74-al2023-addr-truncated.txt",
];
const JSON_FIXTURES: &[&str] = &[
    "netns/addr.json",
    "netns/link-d.json",
    "netns/route-all.json",
    "netns/rule.json",
    "netns/neigh.json",
    "realworld/iproute2mac-64-json-route.txt",
];

fn fixture(rel: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/ip")
        .join(rel);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every parser on one input; only "does not panic" is checked by the callers.
fn run_all(s: &str) {
    let _ = parse_addr(s);
    let _ = parse_link(s);
    let _ = parse_route(s);
    let _ = parse_route_in_table(s, 100000);
    let _ = parse_rule(s);
    let _ = parse_rule_family(s, Family::Inet6);
    let _ = parse_neigh(s);
}

/// Rewrites every line: each whitespace run becomes 1–3 spaces/tabs (chosen by `seed`), with
/// random indentation and trailing blanks. Whitespace at the very start of a line becomes
/// indentation; nothing else changes.
fn mangle(text: &str, seed: &[u8]) -> String {
    let mut k = 0usize;
    let mut next = || {
        let v = seed.get(k % seed.len().max(1)).copied().unwrap_or(0);
        k += 1;
        v
    };
    let ws = |b: u8| match b % 5 {
        0 => " ",
        1 => "  ",
        2 => "\t",
        3 => " \t ",
        _ => "   ",
    };
    let mut out = String::new();
    for line in text.lines() {
        let indent = next();
        if indent % 3 == 0 {
            out.push_str(ws(indent));
        }
        let toks: Vec<&str> = line.split_whitespace().collect();
        for (i, t) in toks.iter().enumerate() {
            if i > 0 {
                out.push_str(ws(next()));
            }
            out.push_str(t);
        }
        if next() % 2 == 0 {
            out.push_str(ws(next()));
        }
        out.push('\n');
    }
    out
}

/// Inserts paste residue between lines: blank lines, prompts, for-loop separators, fences.
fn add_noise(text: &str, seed: &[u8]) -> String {
    const NOISE: &[&str] = &[
        "",
        "$ ip route show table all",
        "[root@ip-192-168-1-251 ~]# ip rule",
        ">> node 192.168.1.251 <<",
        "```",
        "sh-4.2$ sudo ip -j rule",
    ];
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let b = seed.get(i % seed.len().max(1)).copied().unwrap_or(0);
        if b % 4 == 0 {
            out.push_str(NOISE[(b as usize / 4) % NOISE.len()]);
            out.push('\n');
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Wraps some tokens in ANSI colour codes as `ip -c` does.
fn colour(text: &str, seed: &[u8]) -> String {
    let mut out = String::new();
    let mut k = 0usize;
    for line in text.lines() {
        let toks: Vec<&str> = line.split(' ').collect();
        for (i, t) in toks.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            let b = seed.get(k % seed.len().max(1)).copied().unwrap_or(0);
            k += 1;
            if b % 3 == 0 && !t.is_empty() {
                out.push_str(&format!("\u{1b}[{}m{t}\u{1b}[0m", 31 + b % 6));
            } else {
                out.push_str(t);
            }
        }
        out.push('\n');
    }
    out
}

/// Parses with the parser that fits the fixture and returns comparable values.
fn values(name: &str, text: &str) -> String {
    if name.contains("addr") {
        format!("{:?}", parse_addr(text).map(|p| p.value))
    } else if name.contains("link") {
        format!("{:?}", parse_link(text).map(|p| p.value))
    } else if name.contains("route") {
        format!("{:?}", parse_route(text).map(|p| p.value))
    } else if name.contains("rule-6") {
        format!(
            "{:?}",
            parse_rule_family(text, Family::Inet6).map(|p| p.value)
        )
    } else if name.contains("rule") {
        format!("{:?}", parse_rule(text).map(|p| p.value))
    } else {
        format!("{:?}", parse_neigh(text).map(|p| p.value))
    }
}

fn warning_count(name: &str, text: &str) -> usize {
    if name.contains("addr") {
        parse_addr(text)
            .map(|p| p.warnings.len())
            .unwrap_or(usize::MAX)
    } else if name.contains("link") {
        parse_link(text)
            .map(|p| p.warnings.len())
            .unwrap_or(usize::MAX)
    } else if name.contains("route") {
        parse_route(text)
            .map(|p| p.warnings.len())
            .unwrap_or(usize::MAX)
    } else if name.contains("rule") {
        parse_rule(text)
            .map(|p| p.warnings.len())
            .unwrap_or(usize::MAX)
    } else {
        parse_neigh(text)
            .map(|p| p.warnings.len())
            .unwrap_or(usize::MAX)
    }
}

#[test]
fn clean_fixtures_parse() {
    for f in TEXT_FIXTURES.iter().chain(JSON_FIXTURES) {
        let v = values(f, &fixture(f));
        assert!(v.starts_with("Ok("), "{f}: {v}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,400}") {
        run_all(&s);
    }

    #[test]
    fn ip_shaped_garbage_never_panics(
        toks in proptest::collection::vec(
            prop_oneof![
                Just("from"), Just("to"), Just("lookup"), Just("table"), Just("via"), Just("dev"),
                Just("fwmark"), Just("0x80/0x80"), Just("nexthop"), Just("inet"), Just("inet6"),
                Just("link/ether"), Just("[detached]"), Just("[oif"), Just("detached]"), Just("1536:"),
                Just("2:"), Just("eth0@if2:"), Just("<UP,LOWER_UP>"), Just("default"), Just("all"),
                Just("10.0.0.0/8"), Just("fe80::1"), Just("10.0.0.1/33"), Just("mtu"), Just("lock"),
                Just("\n"), Just("\\"), Just("["), Just("]"), Just("{"), Just("}"), Just("\"dst\":"),
                Just("\u{1b}[3"), Just("brd"), Just("peer"), Just("scope"), Just("not"), Just("goto"),
            ],
            0..40,
        )
    ) {
        run_all(&toks.join(" "));
    }

    #[test]
    fn truncated_fixtures_never_panic(idx in 0usize..18, cut in 0.0f64..1.0) {
        let all: Vec<&str> = TEXT_FIXTURES.iter().chain(JSON_FIXTURES).copied().collect();
        let name = all[idx % all.len()];
        let text = fixture(name);
        let mut at = (text.len() as f64 * cut) as usize;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        run_all(&text[..at]);
    }

    #[test]
    fn mangled_whitespace_parses_the_same(idx in 0usize..12, seed in proptest::collection::vec(any::<u8>(), 1..64)) {
        let name = TEXT_FIXTURES[idx % TEXT_FIXTURES.len()];
        let clean = fixture(name);
        let mangled = mangle(&clean, &seed);
        prop_assert_eq!(values(name, &mangled), values(name, &clean));
        prop_assert_eq!(warning_count(name, &mangled), warning_count(name, &clean));
    }

    #[test]
    fn paste_noise_and_colours_parse_the_same(idx in 0usize..18, seed in proptest::collection::vec(any::<u8>(), 1..64)) {
        let all: Vec<&str> = TEXT_FIXTURES.iter().chain(JSON_FIXTURES).copied().collect();
        let name = all[idx % all.len()];
        let clean = fixture(name);
        let noisy = add_noise(&clean, &seed);
        prop_assert_eq!(values(name, &noisy), values(name, &clean));
        if !name.ends_with(".json") {
            let coloured = colour(&clean, &seed);
            prop_assert_eq!(values(name, &coloured), values(name, &clean));
        }
    }
}
