//! `analysis/RULES.md` is the rendered catalogue; regenerate with
//! `UPDATE_RULES_MD=1 cargo test -p analysis --test catalogue`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

fn render() -> String {
    let mut s = String::from(
        "# Analysis rules\n\nGenerated from `analysis::catalogue()` by `analysis/tests/catalogue.rs`; do not edit.\n\
         A rule whose inputs are unknown is reported as skipped with the reason; findings list the\n\
         inferred facts they relied on. The default severity is what the rule usually reports; some\n\
         findings are lower (e.g. connmark rules on a v1.23 nft node are info).\n\n\
         | id | default severity | checks | needs |\n|---|---|---|---|\n",
    );
    for r in analysis::catalogue() {
        s.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            r.id,
            r.default_severity,
            r.checks.replace('|', "\\|"),
            r.needs.join(", ")
        ));
    }
    s
}

#[test]
fn rules_md_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/RULES.md");
    let want = render();
    if std::env::var_os("UPDATE_RULES_MD").is_some() {
        std::fs::write(path, &want).unwrap();
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert_eq!(
        have, want,
        "RULES.md is stale: run UPDATE_RULES_MD=1 cargo test -p analysis --test catalogue"
    );
}

#[test]
fn ids_are_unique_and_well_formed() {
    let mut ids: Vec<_> = analysis::catalogue().iter().map(|r| r.id).collect();
    for id in &ids {
        let (group, name) = id.split_once('.').expect("group.name");
        assert!(
            [
                "snat",
                "connmark",
                "conntrack",
                "route",
                "sysctl",
                "ipamd",
                "fleet"
            ]
            .contains(&group),
            "{id}"
        );
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "{id}"
        );
    }
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate rule ids");
}
