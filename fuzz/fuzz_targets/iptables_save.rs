//! Fuzz the iptables-save / -S path (and the format detection in front of it).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = parsers::iptables::parse_save(s);
        let _ = parsers::iptables::parse_spec(s, "nat");
        let _ = parsers::iptables::parse_any(s, "nat");
        for line in s.lines().take(64) {
            if let Ok(rule) = parsers::iptables::parse_rule_line(line) {
                // Rendering what was parsed must parse back to the same fields.
                let again =
                    parsers::iptables::parse_rule_line(&parsers::iptables::to_save_line(&rule));
                let again = again.ok();
                assert_eq!(again.as_ref().map(|r| &r.matches), Some(&rule.matches));
                assert_eq!(
                    again.as_ref().map(|r| &r.target_options),
                    Some(&rule.target_options)
                );
            }
        }
    }
});
