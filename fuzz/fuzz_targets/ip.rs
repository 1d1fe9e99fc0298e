//! Fuzz every `ip` parser (text and `ip -j` paths). Besides "never panics": warnings point at
//! real lines, whitespace-only input is `Empty`, every address belongs to a parsed link, and
//! rules/routes parsed from text survive a round trip through the model's `to_ip_line`
//! evidence renderer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parsers::ip::{
    parse_addr, parse_link, parse_neigh, parse_route, parse_route_in_table, parse_rule,
    parse_rule_family, Family,
};
use parsers::{ParseError, ParseWarning};

fn check_warnings(w: &[ParseWarning], lines: usize) {
    for x in w {
        assert!(
            x.line >= 1 && x.line <= lines.max(1),
            "warning line {} of {lines}",
            x.line
        );
    }
}

fn check_empty<T>(s: &str, r: &Result<T, ParseError>) {
    if s.trim().is_empty() {
        assert!(matches!(r, Err(ParseError::Empty)));
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let lines = s.lines().count();
    let json = s.contains('[');

    let r = parse_addr(s);
    check_empty(s, &r);
    if let Ok(p) = &r {
        check_warnings(&p.warnings, lines);
        for a in &p.value.1 {
            assert!(
                p.value.0.iter().any(|l| l.ifname == a.ifname),
                "address without its link"
            );
        }
    }
    let r = parse_link(s);
    check_empty(s, &r);
    if let Ok(p) = &r {
        check_warnings(&p.warnings, lines);
    }

    let r = parse_route(s);
    check_empty(s, &r);
    if let Ok(p) = &r {
        check_warnings(&p.warnings, lines);
        if !json {
            for route in &p.value {
                // The renderer drops flags, and `default` alone does not say IPv6.
                let v6_default_bare = route.is_default()
                    && route.family == Family::Inet6
                    && route.gateway.is_none()
                    && route.prefsrc.is_none();
                if !route.flags.is_empty() || v6_default_bare {
                    continue;
                }
                let line = route.to_ip_line();
                let again = parse_route(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
                assert_eq!(again.value.first(), Some(route), "{line:?}");
            }
        }
    }
    let _ = parse_route_in_table(s, 100000);

    for r in [parse_rule(s), parse_rule_family(s, Family::Inet6)] {
        check_empty(s, &r);
        if let Ok(p) = &r {
            check_warnings(&p.warnings, lines);
            if json {
                continue;
            }
            for rule in &p.value {
                // The model keeps no goto target, renders `[detached]` elsewhere than ip, and
                // has no table for an unknown table name.
                if rule.action == "goto"
                    || rule.detached
                    || (rule.action == "lookup" && rule.table.is_none())
                {
                    continue;
                }
                let line = rule.to_ip_line();
                let again = parse_rule_family(&line, rule.family)
                    .unwrap_or_else(|e| panic!("{line:?}: {e}"));
                assert_eq!(again.value.first(), Some(rule), "{line:?}");
            }
        }
    }

    let r = parse_neigh(s);
    check_empty(s, &r);
    if let Ok(p) = &r {
        check_warnings(&p.warnings, lines);
    }
});
