//! `diag snat` and `diag routes`: renderings of `analysis::views::{SnatView, RouteView}`.

use analysis::views::{RouteView, SnatView};
use model::Finding;
use serde::Serialize;

use super::analyze::InputProblem;
use super::{columns, hanging, md_code, md_inline, md_table, wrap, Style, WIDTH};

/// `-o json` of `diag snat`.
#[derive(Debug, Clone, Serialize)]
pub struct SnatReport {
    pub exit_code: i32,
    pub nodes: Vec<SnatView>,
    pub input_errors: Vec<InputProblem>,
    /// `fleet.node-unreachable`: remote nodes that could not be collected (as in the fleet
    /// summary of `diag analyze`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fleet_findings: Vec<Finding>,
}

/// `-o json` of `diag routes`.
#[derive(Debug, Clone, Serialize)]
pub struct RoutesReport {
    pub exit_code: i32,
    pub nodes: Vec<RouteView>,
    pub input_errors: Vec<InputProblem>,
    /// `fleet.node-unreachable`: remote nodes that could not be collected (as in the fleet
    /// summary of `diag analyze`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fleet_findings: Vec<Finding>,
}

/// A serde enum / value as its JSON string (`snat`, `external-snat`, `imds`).
fn s<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(x)) => x,
        Ok(other) => other.to_string(),
        Err(_) => "?".into(),
    }
}

fn mark(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "ok",
        Some(false) => "MISMATCH",
        None => "not compared",
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn header(st: Style, node: &str) -> String {
    let title = format!("── {node} ");
    let fill = WIDTH.saturating_sub(title.chars().count()).min(60);
    format!("{}\n", st.bold(&format!("{title}{}", "─".repeat(fill))))
}

fn text_findings(fs: &[Finding], st: Style, quiet: bool) -> String {
    let mut out = String::new();
    if fs.is_empty() {
        out.push_str(&format!("  {}\n", st.green("no findings")));
        return out;
    }
    out.push_str("  findings:\n");
    for f in fs {
        let head = format!("    {} {}  ", st.severity(f.severity), st.bold(&f.rule));
        let head_width = 4 + 8 + f.rule.chars().count() + 2;
        out.push_str(&hanging(&head, head_width.min(40), &f.summary, WIDTH));
        if quiet {
            continue;
        }
        for e in &f.evidence {
            if let Some(l) = &e.location {
                out.push_str(&st.dim(&format!("        # {l}")));
                out.push('\n');
            }
            for line in e.text.lines() {
                out.push_str(&format!("        {line}\n"));
            }
        }
        if !f.remedy.is_empty() {
            out.push_str(&wrap(&format!("fix: {}", f.remedy), "        ", WIDTH));
        }
    }
    out
}

fn md_findings(fs: &[Finding]) -> String {
    let mut out = String::from("### Findings\n\n");
    if fs.is_empty() {
        out.push_str("No findings.\n\n");
        return out;
    }
    for f in fs {
        out.push_str(&format!(
            "- **{}** {} — {}\n",
            f.severity.to_string().to_uppercase(),
            md_inline(&f.rule),
            f.summary
        ));
    }
    out.push('\n');
    let lines: Vec<String> = fs
        .iter()
        .flat_map(|f| {
            f.evidence.iter().flat_map(move |e| {
                let mut v = Vec::new();
                v.push(format!(
                    "# {}{}",
                    f.rule,
                    e.location
                        .as_deref()
                        .map(|l| format!(" @ {l}"))
                        .unwrap_or_default()
                ));
                v.extend(e.text.lines().map(str::to_string));
                v
            })
        })
        .collect();
    if !lines.is_empty() {
        out.push_str(&md_code(&lines));
        out.push('\n');
    }
    out
}

/// The input errors and the summary line that end a text report.
fn text_footer(errors: &[InputProblem], nodes: usize, exit_code: i32, st: Style) -> String {
    let mut out = String::new();
    if !errors.is_empty() {
        out.push_str(&st.bold("Input errors"));
        out.push('\n');
        for e in errors {
            out.push_str(&wrap(&e.error, "  ", WIDTH));
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "{nodes} node(s), {} input error(s); exit {exit_code}\n",
        errors.len()
    ));
    out
}

/// Nodes of a remote run that were not collected.
fn text_fleet_findings(f: &[Finding], st: Style, quiet: bool) -> String {
    if f.is_empty() {
        return String::new();
    }
    format!(
        "{}\n{}\n",
        st.bold("Nodes not collected"),
        text_findings(f, st, quiet)
    )
}

fn md_fleet_findings(f: &[Finding]) -> String {
    if f.is_empty() {
        return String::new();
    }
    format!("## Nodes not collected\n\n{}", md_findings(f))
}

fn md_errors(errors: &[InputProblem]) -> String {
    let mut out = String::new();
    if !errors.is_empty() {
        out.push_str("## Input errors\n\n");
        for e in errors {
            out.push_str(&format!("- {}\n", e.error));
        }
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------- snat

/// One row per node for the fleet summary on top of `diag snat` (several nodes only).
fn snat_summary_rows(r: &SnatReport) -> Vec<Vec<String>> {
    r.nodes
        .iter()
        .map(|v| {
            let worst = v
                .findings
                .iter()
                .map(|f| f.severity)
                .max()
                .map(|x| x.to_string())
                .unwrap_or_else(|| "ok".into());
            let to_source = if v.to_source.is_empty() {
                "none".to_string()
            } else {
                format!("{} ({})", v.to_source.join(","), mark(v.to_source_ok))
            };
            let cidrs = match (v.missing_cidrs.len(), v.unexpected_cidrs.len()) {
                (0, 0) => "ok".to_string(),
                (m, u) => format!("{m} missing, {u} unexpected"),
            };
            vec![
                v.node.clone(),
                s(&v.mode),
                to_source,
                v.random_flag.clone().unwrap_or_else(|| "-".into()),
                cidrs,
                v.findings.len().to_string(),
                worst,
            ]
        })
        .collect()
}

const SNAT_SUMMARY_HEADER: [&str; 7] = [
    "NODE",
    "MODE",
    "--TO-SOURCE",
    "RANDOM",
    "RETURN CIDRS",
    "FINDINGS",
    "WORST",
];

/// `snat_text` output, through the sanitising layer (outside text cannot reach the terminal raw).
pub fn snat_text(r: &SnatReport, st: Style, quiet: bool) -> String {
    super::safe(snat_text_raw(r, st, quiet), st)
}

fn snat_text_raw(r: &SnatReport, st: Style, quiet: bool) -> String {
    let mut out = String::new();
    if r.nodes.len() > 1 {
        out.push_str(&format!(
            "SNAT across {} nodes
",
            r.nodes.len()
        ));
        let mut rows = vec![SNAT_SUMMARY_HEADER.iter().map(|h| h.to_string()).collect()];
        rows.extend(snat_summary_rows(r));
        out.push_str(&columns(&rows, "  ", &|row, _, c| {
            if row == 0 {
                st.bold(c)
            } else {
                c.to_string()
            }
        }));
        out.push('\n');
    }
    for v in &r.nodes {
        out.push_str(&header(st, &v.node));
        let mut rows = vec![vec![
            "mode".to_string(),
            format!(
                "{}   layout {}   backend {}{}",
                s(&v.mode),
                s(&v.layout),
                v.backend
                    .map(|b| b.to_string())
                    .unwrap_or_else(|| "-".into()),
                v.cni_version
                    .as_deref()
                    .map(|x| format!("   cni {x}"))
                    .unwrap_or_default()
            ),
        ]];
        let primary = v
            .primary_ipv4
            .as_ref()
            .map(|k| format!("primary IP {} ({})", k.value, s(&k.source)))
            .unwrap_or_else(|| "primary IP unknown".into());
        rows.push(vec![
            "--to-source".into(),
            format!(
                "{}   {primary}   {}",
                if v.to_source.is_empty() {
                    "(no SNAT rule)".to_string()
                } else {
                    v.to_source.join(", ")
                },
                mark(v.to_source_ok)
            ),
        ]);
        rows.push(vec![
            "random".into(),
            format!(
                "{}   expected {}   {}",
                v.random_flag.as_deref().unwrap_or("(no SNAT rule)"),
                v.random_expected
                    .as_ref()
                    .map(|k| format!("{} ({})", k.value.as_str(), s(&k.source)))
                    .unwrap_or_else(|| "unknown".into()),
                mark(v.random_ok)
            ),
        ]);
        let c = &v.connmark;
        rows.push(vec![
            "connmark".into(),
            format!(
                "mark {}   PREROUTING jump {}   restore {}   set-mark {}   mangle rules {}",
                c.mark
                    .as_ref()
                    .map(|k| format!("{:#x}", k.value))
                    .unwrap_or_else(|| "0x80?".into()),
                yes(c.nat_prerouting_jump),
                yes(c.nat_restore),
                yes(c.chain_set_mark),
                mangle_count(c.mangle_rules)
            ),
        ]);
        rows.push(vec![
            "fwmark rule".into(),
            c.fwmark_rule
                .clone()
                .unwrap_or_else(|| "(none found)".into()),
        ]);
        out.push_str(&columns(&rows, "  ", &|_, col, cell| {
            if col == 0 {
                st.dim(cell)
            } else {
                cell.to_string()
            }
        }));
        if let Some(n) = &c.note {
            out.push_str(&wrap(&format!("note: {n}"), "  ", WIDTH));
        }
        out.push_str("\n  CIDRs not SNATed (RETURN):\n");
        if v.cidrs.is_empty() {
            out.push_str("    (none)\n");
        } else {
            let mut rows = vec![vec![
                "CIDR".to_string(),
                "EXPECTED AS".to_string(),
                "RETURNED".to_string(),
                "WHERE".to_string(),
            ]];
            for c in &v.cidrs {
                rows.push(vec![
                    c.cidr.to_string(),
                    c.expected_as.unwrap_or("not expected").to_string(),
                    if c.returned {
                        "yes".into()
                    } else {
                        "MISSING".into()
                    },
                    c.location.clone().unwrap_or_default(),
                ]);
            }
            out.push_str(&columns(&rows, "    ", &|_, _, c| c.to_string()));
        }
        if !v.counters.is_empty() && !quiet {
            out.push_str("\n  counters:\n");
            for c in &v.counters {
                out.push_str(&st.dim(&format!("    # {}", c.location)));
                out.push('\n');
                out.push_str(&format!("    {}\n", c.line));
            }
        }
        if let Some(ct) = &v.conntrack {
            out.push_str("\n  conntrack:\n");
            if let Some(i) = ct.insert_failed {
                out.push_str(&format!("    insert_failed {i}\n"));
            }
            if !ct.by_pod.is_empty() {
                let mut rows = vec![vec![
                    "POD IP".to_string(),
                    "FLOWS".to_string(),
                    "EXTERNAL".to_string(),
                    "EXT SNATED".to_string(),
                    "INTERNAL SNATED".to_string(),
                    "NAT SOURCES".to_string(),
                ]];
                for p in &ct.by_pod {
                    rows.push(vec![
                        p.pod.to_string(),
                        p.flows.to_string(),
                        p.external_flows.to_string(),
                        p.external_snat_flows.to_string(),
                        p.internal_snat_flows.to_string(),
                        p.nat_sources
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                    ]);
                }
                out.push_str(&columns(&rows, "    ", &|_, _, c| c.to_string()));
            } else {
                out.push_str("    no pod flows in the capture\n");
            }
            for (title, flows) in [
                (
                    "SNATed although the destination is VPC/excluded",
                    &ct.unexpected_snat,
                ),
                ("not SNATed although SNAT is expected", &ct.missing_snat),
            ] {
                if !flows.is_empty() {
                    out.push_str(&format!("    {title}:\n"));
                    for f in flows.iter().take(10) {
                        out.push_str(&format!("      {} flow(s): {}\n", f.flows, f.example));
                    }
                }
            }
        }
        out.push('\n');
        out.push_str(&text_findings(&v.findings, st, quiet));
        out.push('\n');
    }
    out.push_str(&text_fleet_findings(&r.fleet_findings, st, quiet));
    out.push_str(&text_footer(
        &r.input_errors,
        r.nodes.len(),
        r.exit_code,
        st,
    ));
    out
}

/// `snat_markdown` output, through the sanitising layer (outside text cannot reach the terminal raw).
pub fn snat_markdown(r: &SnatReport) -> String {
    super::safe(snat_markdown_raw(r), Style { color: false })
}

fn snat_markdown_raw(r: &SnatReport) -> String {
    let mut out = String::from("# SNAT report\n\n");
    if r.nodes.len() > 1 {
        out.push_str(&format!("## Fleet summary ({} nodes)\n\n", r.nodes.len()));
        out.push_str(&md_table(&SNAT_SUMMARY_HEADER, &snat_summary_rows(r)));
        out.push('\n');
    }
    for v in &r.nodes {
        out.push_str(&format!("## Node {}\n\n", md_inline(&v.node)));
        let c = &v.connmark;
        let rows = vec![
            vec!["mode".into(), s(&v.mode)],
            vec!["layout".into(), s(&v.layout)],
            vec![
                "backend".into(),
                v.backend
                    .map(|b| b.to_string())
                    .unwrap_or_else(|| "-".into()),
            ],
            vec![
                "--to-source".into(),
                format!(
                    "{} ({})",
                    if v.to_source.is_empty() {
                        "no SNAT rule".to_string()
                    } else {
                        v.to_source.join(", ")
                    },
                    mark(v.to_source_ok)
                ),
            ],
            vec![
                "primary IP".into(),
                v.primary_ipv4
                    .as_ref()
                    .map(|k| format!("{} ({})", k.value, s(&k.source)))
                    .unwrap_or_else(|| "unknown".into()),
            ],
            vec![
                "random".into(),
                format!(
                    "{} (expected {}; {})",
                    v.random_flag.as_deref().unwrap_or("no SNAT rule"),
                    v.random_expected
                        .as_ref()
                        .map(|k| k.value.as_str())
                        .unwrap_or("unknown"),
                    mark(v.random_ok)
                ),
            ],
            vec![
                "connmark".into(),
                format!(
                    "jump {}, restore {}, set-mark {}, mangle rules {}",
                    yes(c.nat_prerouting_jump),
                    yes(c.nat_restore),
                    yes(c.chain_set_mark),
                    mangle_count(c.mangle_rules)
                ),
            ],
            vec![
                "fwmark rule".into(),
                c.fwmark_rule
                    .as_deref()
                    .map(md_inline)
                    .unwrap_or_else(|| "none found".into()),
            ],
        ];
        out.push_str(&md_table(&["setting", "value"], &rows));
        out.push('\n');
        out.push_str("### CIDRs not SNATed\n\n");
        let rows: Vec<Vec<String>> = v
            .cidrs
            .iter()
            .map(|c| {
                vec![
                    md_inline(&c.cidr.to_string()),
                    c.expected_as.unwrap_or("not expected").to_string(),
                    if c.returned {
                        "yes".into()
                    } else {
                        "**missing**".into()
                    },
                    c.location.clone().unwrap_or_default(),
                ]
            })
            .collect();
        out.push_str(&md_table(
            &["CIDR", "expected as", "returned", "where"],
            &rows,
        ));
        out.push('\n');
        if !v.counters.is_empty() {
            out.push_str("### Counters\n\n");
            let lines: Vec<String> = v
                .counters
                .iter()
                .flat_map(|c| [format!("# {}", c.location), c.line.clone()])
                .collect();
            out.push_str(&md_code(&lines));
            out.push('\n');
        }
        if let Some(ct) = &v.conntrack {
            out.push_str("### Conntrack\n\n");
            if let Some(i) = ct.insert_failed {
                out.push_str(&format!("insert_failed: {i}\n\n"));
            }
            let rows: Vec<Vec<String>> = ct
                .by_pod
                .iter()
                .map(|p| {
                    vec![
                        p.pod.to_string(),
                        p.flows.to_string(),
                        p.external_flows.to_string(),
                        p.external_snat_flows.to_string(),
                        p.internal_snat_flows.to_string(),
                    ]
                })
                .collect();
            if !rows.is_empty() {
                out.push_str(&md_table(
                    &[
                        "pod",
                        "flows",
                        "external",
                        "external SNATed",
                        "internal SNATed",
                    ],
                    &rows,
                ));
                out.push('\n');
            }
        }
        out.push_str(&md_findings(&v.findings));
    }
    out.push_str(&md_fleet_findings(&r.fleet_findings));
    out.push_str(&md_errors(&r.input_errors));
    out
}

// ---------------------------------------------------------------- routes

/// `routes_text` output, through the sanitising layer (outside text cannot reach the terminal raw).
pub fn routes_text(r: &RoutesReport, st: Style, quiet: bool) -> String {
    super::safe(routes_text_raw(r, st, quiet), st)
}

fn routes_text_raw(r: &RoutesReport, st: Style, quiet: bool) -> String {
    let mut out = String::new();
    for v in &r.nodes {
        out.push_str(&header(st, &v.node));
        out.push_str(&format!("  pods ({}):\n", v.pods.len()));
        if !v.pods.is_empty() {
            let mut rows = vec![vec![
                "IP".to_string(),
                "POD".to_string(),
                "VETH".to_string(),
                "ENI".to_string(),
                "TABLE".to_string(),
                "IPAMD".to_string(),
                "512".to_string(),
                "1536".to_string(),
            ]];
            for p in &v.pods {
                let veth = match (&p.veth, p.veth_exists, p.veth_up) {
                    (Some(n), Some(false), _) => format!("{n} (gone)"),
                    (Some(n), _, Some(false)) => format!("{n} (down)"),
                    (Some(n), _, _) => n.clone(),
                    (None, _, _) => "-".into(),
                };
                rows.push(vec![
                    p.ip.to_string(),
                    p.pod.clone().unwrap_or_else(|| "-".into()),
                    veth,
                    p.eni.clone().unwrap_or_else(|| "-".into()),
                    p.table
                        .map(model::net::table_name)
                        .unwrap_or_else(|| "-".into()),
                    yes(p.in_ipamd).into(),
                    p.rule_512.len().to_string(),
                    p.rule_1536.len().to_string(),
                ]);
            }
            out.push_str(&columns(&rows, "    ", &|_, _, c| c.to_string()));
        }
        out.push_str(&format!("\n  ENI route tables ({}):\n", v.enis.len()));
        for e in &v.enis {
            out.push_str(&format!(
                "    table {} — {}{} device {} card {}{}\n",
                model::net::table_name(e.table),
                e.interface.as_deref().unwrap_or("?"),
                e.eni
                    .as_deref()
                    .map(|x| format!(" ({x})"))
                    .unwrap_or_default(),
                e.device_number,
                e.network_card,
                if e.primary { ", primary" } else { "" }
            ));
            if !quiet {
                for rt in &e.routes {
                    out.push_str(&format!("      {rt}\n"));
                }
            }
            for p in &e.problems {
                out.push_str(&wrap(&format!("! {p}"), "      ", WIDTH));
            }
        }
        out.push('\n');
        out.push_str(&text_findings(&v.findings, st, quiet));
        out.push('\n');
    }
    out.push_str(&text_fleet_findings(&r.fleet_findings, st, quiet));
    out.push_str(&text_footer(
        &r.input_errors,
        r.nodes.len(),
        r.exit_code,
        st,
    ));
    out
}

/// `routes_markdown` output, through the sanitising layer (outside text cannot reach the terminal raw).
pub fn routes_markdown(r: &RoutesReport) -> String {
    super::safe(routes_markdown_raw(r), Style { color: false })
}

fn routes_markdown_raw(r: &RoutesReport) -> String {
    let mut out = String::from("# Routing report\n\n");
    for v in &r.nodes {
        out.push_str(&format!("## Node {}\n\n### Pods\n\n", md_inline(&v.node)));
        let rows: Vec<Vec<String>> = v
            .pods
            .iter()
            .map(|p| {
                vec![
                    md_inline(&p.ip.to_string()),
                    p.pod.clone().unwrap_or_default(),
                    p.veth.clone().unwrap_or_default(),
                    p.eni.clone().unwrap_or_default(),
                    p.table.map(model::net::table_name).unwrap_or_default(),
                    yes(p.in_ipamd).into(),
                    p.rule_512.join("<br>"),
                    p.rule_1536.join("<br>"),
                ]
            })
            .collect();
        out.push_str(&md_table(
            &[
                "ip",
                "pod",
                "veth",
                "eni",
                "table",
                "ipamd",
                "512 rules",
                "1536 rules",
            ],
            &rows,
        ));
        out.push_str("\n### ENI route tables\n\n");
        for e in &v.enis {
            out.push_str(&format!(
                "- table {} — {}{} device {}{}\n",
                model::net::table_name(e.table),
                e.eni.as_deref().unwrap_or("ENI ?"),
                e.interface
                    .as_deref()
                    .map(|x| format!(" on {x}"))
                    .unwrap_or_default(),
                e.device_number,
                if e.primary { " (primary)" } else { "" }
            ));
            for p in &e.problems {
                out.push_str(&format!("  - **problem:** {p}\n"));
            }
        }
        let lines: Vec<String> = v
            .enis
            .iter()
            .flat_map(|e| {
                std::iter::once(format!("# table {}", model::net::table_name(e.table)))
                    .chain(e.routes.iter().cloned())
            })
            .collect();
        if !lines.is_empty() {
            out.push('\n');
            out.push_str(&md_code(&lines));
        }
        out.push('\n');
        out.push_str(&md_findings(&v.findings));
    }
    out.push_str(&md_fleet_findings(&r.fleet_findings));
    out.push_str(&md_errors(&r.input_errors));
    out
}

/// The count of `"AWS, primary ENI"` mangle rules, or why there is none to count.
fn mangle_count(n: Option<usize>) -> String {
    n.map(|n| n.to_string())
        .unwrap_or_else(|| "? (no mangle table)".into())
}
