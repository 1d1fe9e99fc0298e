//! `diag rules`: the analysis catalogue.

use analysis::RuleInfo;

use super::{md_inline, md_table, wrap, Style, WIDTH};

pub fn text(rules: &[RuleInfo], st: Style) -> String {
    let mut out = String::new();
    for r in rules {
        out.push_str(&format!(
            "{} {}  {}\n",
            st.severity(r.default_severity),
            st.bold(r.id),
            r.title
        ));
        out.push_str(&wrap(r.checks, "          ", WIDTH));
        out.push_str(&st.dim(&format!("          needs: {}", r.needs.join(", "))));
        out.push_str("\n\n");
    }
    out.push_str(&format!("{} rules\n", rules.len()));
    out
}

pub fn markdown(rules: &[RuleInfo]) -> String {
    let rows: Vec<Vec<String>> = rules
        .iter()
        .map(|r| {
            vec![
                md_inline(r.id),
                r.default_severity.to_string(),
                r.title.to_string(),
                r.checks.to_string(),
                r.needs.join(", "),
            ]
        })
        .collect();
    format!(
        "# diag rules\n\n{}",
        md_table(&["id", "severity", "title", "checks", "needs"], &rows)
    )
}
