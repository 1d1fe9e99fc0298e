//! `report.md`: the human summary to paste into a ticket.

use std::fmt::Write as _;

use model::{Finding, NodeReport, Snapshot};

/// One node: findings with evidence, then the section statuses.
pub fn node_markdown(s: &Snapshot, r: &NodeReport, redacted: bool) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "# eks-diag bundle: {}\n", s.display_name());
    let _ = writeln!(
        t,
        "Collected {} by {} {} in {} ms{}.\n",
        if s.collected_at.is_empty() {
            "(unknown time)"
        } else {
            &s.collected_at
        },
        s.agent.name,
        s.agent.version,
        s.duration_ms,
        if redacted {
            "; addresses, MACs, ids, host names and keywords are pseudonyms (the private map is \
             not in this bundle)"
        } else {
            "; NOT redacted"
        }
    );
    if let Some(l) = &r.layout {
        let _ = writeln!(t, "Layout: {l}\n");
    }
    findings(&mut t, &r.findings, 2);
    let _ = writeln!(
        t,
        "## Sections\n\n| section | status | reason |\n|---|---|---|"
    );
    for (name, status, reason) in s.section_statuses() {
        let _ = writeln!(
            t,
            "| {name} | {} | {} |",
            format!("{status:?}").to_lowercase(),
            cell(reason.unwrap_or(""))
        );
    }
    if !r.skipped.is_empty() {
        let _ = writeln!(t, "\n## Checks skipped\n");
        for k in &r.skipped {
            let _ = writeln!(t, "- `{}`: {}", k.rule, k.reason);
        }
    }
    let _ = writeln!(
        t,
        "\nRaw outputs are under `networking/`, `sysctls/`, `cni/`, `var_log/` and `system/`; \
         `manifest.json` says where each came from. `diag analyze <this archive>` reproduces the \
         findings."
    );
    t
}

/// The fleet: one line per node, then the cross-node findings.
pub fn fleet_markdown(
    name: &str,
    nodes: &[(String, String, Option<NodeReport>, Option<String>)],
    fleet: &[Finding],
    redacted: bool,
) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "# eks-diag fleet bundle: {name}\n");
    let _ = writeln!(
        t,
        "{} node(s){}.\n",
        nodes.len(),
        if redacted {
            ", redacted"
        } else {
            ", NOT redacted"
        }
    );
    let _ = writeln!(
        t,
        "| node | directory | findings | worst |\n|---|---|---|---|"
    );
    for (node, dir, report, error) in nodes {
        match (report, error) {
            (Some(r), _) => {
                let _ = writeln!(
                    t,
                    "| {} | `{dir}` | {} | {} |",
                    cell(node),
                    r.findings.len(),
                    r.worst()
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "-".into())
                );
            }
            (None, e) => {
                let _ = writeln!(
                    t,
                    "| {} | `{dir}` | not collected: {} | - |",
                    cell(node),
                    cell(e.as_deref().unwrap_or("unknown"))
                );
            }
        }
    }
    t.push('\n');
    if !fleet.is_empty() {
        let _ = writeln!(t, "## Fleet findings\n");
        findings(&mut t, fleet, 3);
    }
    let _ = writeln!(t, "Each node's `report.md` is in its directory.");
    t
}

fn findings(t: &mut String, fs: &[Finding], level: usize) {
    let h = "#".repeat(level);
    if fs.is_empty() {
        let _ = writeln!(t, "{h} Findings\n\nNone.\n");
        return;
    }
    let _ = writeln!(
        t,
        "{h} Findings\n\n| severity | rule | summary |\n|---|---|---|"
    );
    for f in fs {
        let _ = writeln!(
            t,
            "| {} | `{}` | {} |",
            f.severity,
            f.rule,
            cell(&f.summary)
        );
    }
    t.push('\n');
    for f in fs {
        let _ = writeln!(t, "{h}# {} `{}`\n\n{}\n", f.severity, f.rule, f.summary);
        if !f.evidence.is_empty() {
            t.push_str("```\n");
            for e in &f.evidence {
                match &e.location {
                    Some(l) => {
                        let _ = writeln!(t, "{l}: {}", e.text);
                    }
                    None => {
                        let _ = writeln!(t, "{}", e.text);
                    }
                }
            }
            t.push_str("```\n\n");
        }
        if !f.remedy.is_empty() {
            let _ = writeln!(t, "Remedy: {}\n", f.remedy);
        }
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
