//! Fuzz the iptables-save / -S path (and the format detection in front of it).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let eager = parsers::iptables::parse_save(s);
        // The index the agent writes from: it warns exactly when parse_save does, and a clean
        // index gives parse_save's rules back, chain by chain.
        if let Some(index) = parsers::iptables::index_save(s) {
            assert_eq!(index.warnings.is_empty(), eager.warnings.is_empty());
            if index.warnings.is_empty() {
                let mut names = model::name::Interner::default();
                let chains = |d: &[model::IptablesBackendDump]| -> usize {
                    d.iter().flat_map(|d| &d.tables).map(|t| t.chains.len()).sum()
                };
                assert_eq!(chains(&index.value), chains(&eager.value));
                let lazy = index.value.iter().flat_map(|d| &d.tables).flat_map(|t| &t.chains);
                let full = eager.value.iter().flat_map(|d| &d.tables).flat_map(|t| &t.chains);
                for (l, f) in lazy.zip(full) {
                    assert_eq!(l.name, f.name);
                    let again: Vec<_> =
                        parsers::iptables::indexed_rules(s, l, &mut names).collect();
                    assert_eq!(again, f.rules);
                }
            }
        }
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
