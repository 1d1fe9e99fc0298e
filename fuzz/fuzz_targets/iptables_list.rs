//! Fuzz the iptables -L -n -v parser.
//!
//! Beyond "no panic": every rule `parse_list` reads from a `-L` table, rendered as a save line
//! with `to_save_line` (from its fields) and parsed again with `parse_rule_line`, gives back the
//! same chain, matches, target, goto flag and target options — the `-L` reader produces only
//! rules the save-line form can express, so analysis sees one shape whatever the input format.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let listed = parsers::iptables::parse_list(s, "nat");
        let _ = parsers::iptables::parse_any(s, "filter");
        for rule in listed.value.chains.iter().flat_map(|c| c.rules.iter()) {
            let line = parsers::iptables::to_save_line(rule);
            let again = parsers::iptables::parse_rule_line(&line)
                .unwrap_or_else(|e| panic!("rendered -L rule does not parse: {e}: {line}"));
            assert_eq!(again.chain, rule.chain, "{line}");
            assert_eq!(again.matches, rule.matches, "{line}");
            assert_eq!(again.target, rule.target, "{line}");
            assert_eq!(again.goto, rule.goto, "{line}");
            assert_eq!(again.target_options, rule.target_options, "{line}");
        }
    }
});
