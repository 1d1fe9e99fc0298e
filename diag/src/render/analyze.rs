//! The `diag analyze` report: per node section problems, findings by severity, inferred facts
//! and skipped checks; a fleet summary on top when there are several nodes; input errors last.

use model::report::InferredFacts;
use model::{Finding, NodeReport, SectionStatus, Severity};

use super::{columns, hanging, md_code, md_inline, md_table, wrap, Style, WIDTH};

pub use model::report::{FleetRow, FleetSummary, InputProblem, RuleCount, SectionNote};

/// Everything `diag analyze` reports (`model::report`, with the analysis' facts). `-o json`
/// is this, serialised.
pub type AnalyzeReport = model::report::AnalyzeReport<analysis::Facts>;

/// One analysed node.
pub type NodeResult = model::report::NodeResult<analysis::Facts>;

/// The JSON Schema of what `diag analyze -o json` prints (`diag schema report`).
pub fn report_schema() -> serde_json::Value {
    model::schema::report_schema_for::<analysis::Facts>()
}

/// `from the node's daemon (/run/eks-diag/agent.sock), 42s old`.
pub fn daemon_note(d: &model::report::DaemonSource) -> String {
    if d.age_seconds < 0 {
        format!("from the node's daemon ({}), age unknown", d.socket)
    } else {
        format!(
            "from the node's daemon ({}), {}s old",
            d.socket, d.age_seconds
        )
    }
}

fn counts_line(r: &NodeReport) -> String {
    let c = |s| r.findings.iter().filter(|f| f.severity == s).count();
    let plural = |n: usize, w: &str| {
        if n == 1 {
            format!("{n} {w}")
        } else {
            format!("{n} {w}s")
        }
    };
    format!(
        "{}, {}, {} info; {} checks run, {} skipped",
        plural(c(Severity::Error), "error"),
        plural(c(Severity::Warning), "warning"),
        c(Severity::Info),
        r.evaluated.len(),
        r.skipped.len()
    )
}

// ---------------------------------------------------------------- text

/// `text` output, through the sanitising layer (outside text cannot reach the terminal raw).
pub fn text(r: &AnalyzeReport, st: Style, quiet: bool) -> String {
    super::safe(text_raw(r, st, quiet), st)
}

fn text_raw(r: &AnalyzeReport, st: Style, quiet: bool) -> String {
    let mut out = String::new();
    if let Some(f) = &r.fleet {
        out.push_str(&text_fleet(f, st, quiet));
    }
    for n in &r.nodes {
        out.push_str(&text_node(n, st, quiet));
    }
    if !r.input_errors.is_empty() {
        out.push_str(&st.bold("Input errors"));
        out.push('\n');
        for e in &r.input_errors {
            out.push_str(&wrap(&e.error, "  ", WIDTH));
        }
        out.push('\n');
    }
    out.push_str(&summary_line(r));
    out
}

/// The last line: what was analysed and the exit code.
pub fn summary_line(r: &AnalyzeReport) -> String {
    let failing = r
        .nodes
        .iter()
        .filter(|n| n.report.count_at_least(r.fail_on) > 0)
        .count();
    format!(
        "{} node(s) analysed, {} with findings at or above {}, {} input error(s); exit {}\n",
        r.nodes.len(),
        failing,
        r.fail_on,
        r.input_errors.len()
            + r.nodes
                .iter()
                .filter(|n| !n.input_problems.is_empty())
                .count(),
        r.exit_code
    )
}

fn text_fleet(f: &FleetSummary, st: Style, quiet: bool) -> String {
    let mut out = String::new();
    out.push_str(&st.bold(&format!("Fleet: {} nodes", f.nodes.len())));
    out.push('\n');
    let mut rows = vec![vec![
        "NODE".to_string(),
        "WORST".to_string(),
        "ERR".to_string(),
        "WARN".to_string(),
        "INFO".to_string(),
        "SECTIONS NOT OK".to_string(),
    ]];
    for n in &f.nodes {
        rows.push(vec![
            n.node.clone(),
            n.worst
                .map(|s| s.to_string().to_uppercase())
                .unwrap_or_else(|| "OK".into()),
            n.errors.to_string(),
            n.warnings.to_string(),
            n.info.to_string(),
            n.degraded_sections.to_string(),
        ]);
    }
    let worst_of: Vec<Option<Severity>> = f.nodes.iter().map(|n| n.worst).collect();
    out.push_str(&columns(&rows, "  ", &|row, col, cell| match (row, col) {
        (0, _) => st.dim(cell),
        (r, 1) => match worst_of.get(r - 1).copied().flatten() {
            Some(Severity::Error) => st.red(cell),
            Some(Severity::Warning) => st.yellow(cell),
            Some(Severity::Info) => cell.to_string(),
            None => st.green(cell),
        },
        _ => cell.to_string(),
    }));
    if !f.by_rule.is_empty() && !quiet {
        out.push_str("\n  Findings by rule:\n");
        let rows: Vec<Vec<String>> = f
            .by_rule
            .iter()
            .map(|c| {
                vec![
                    c.severity.to_string().to_uppercase(),
                    c.rule.clone(),
                    format!("{} node(s)", c.nodes),
                ]
            })
            .collect();
        out.push_str(&columns(&rows, "    ", &|_, _, c| c.to_string()));
    }
    if !f.findings.is_empty() {
        out.push_str("\n  Fleet findings:\n");
        for fi in &f.findings {
            out.push_str(&text_finding(fi, st, quiet, "  "));
        }
    }
    out.push('\n');
    out
}

fn text_node(n: &NodeResult, st: Style, quiet: bool) -> String {
    let mut out = String::new();
    let title = format!("── {} ", n.node);
    let fill = WIDTH.saturating_sub(title.chars().count()).min(60);
    out.push_str(&st.bold(&format!("{title}{}", "─".repeat(fill))));
    out.push('\n');
    let mut meta = format!("  input: {} ({})", n.input, n.agent);
    if !n.collected_at.is_empty() {
        meta.push_str(&format!(", collected {}", n.collected_at));
    }
    if let Some(d) = &n.daemon {
        meta.push_str(&format!(", {}", daemon_note(d)));
    }
    out.push_str(&st.dim(&meta));
    out.push('\n');
    out.push_str(&format!("  {}\n", counts_line(&n.report)));
    if !n.input_problems.is_empty() {
        out.push_str(&format!("  {}\n", st.red("input problems:")));
        for p in &n.input_problems {
            out.push_str(&wrap(p, "    ", WIDTH));
        }
    }
    if !n.sections.is_empty() && !quiet {
        out.push_str("  sections not ok:\n");
        for s in &n.sections {
            let status = format!("{:<11}", format!("{:?}", s.status).to_lowercase());
            let status = match s.status {
                SectionStatus::Failed => st.red(&status),
                SectionStatus::Partial => st.yellow(&status),
                _ => st.dim(&status),
            };
            let head = format!("    {:<10} {status} ", s.section);
            out.push_str(&hanging(
                &head,
                27,
                s.reason.as_deref().unwrap_or(""),
                WIDTH,
            ));
            for w in &s.warnings {
                out.push_str(&st.dim(&wrap(w, "        ", WIDTH)));
                if st.color {
                    out.push('\n');
                }
            }
            if s.warnings_total > s.warnings.len() {
                out.push_str(&format!(
                    "        … {} more warning(s) in the snapshot\n",
                    s.warnings_total - s.warnings.len()
                ));
            }
        }
    }
    if n.report.findings.is_empty() {
        out.push_str(&format!("  {}\n", st.green("no findings")));
    }
    for f in &n.report.findings {
        out.push_str(&text_finding(f, st, quiet, ""));
    }
    let inferred = n.facts.inferred_facts();
    if !inferred.is_empty() && !quiet {
        out.push_str("\n  inferred facts (not read from IMDS/ipamd; may be wrong):\n");
        let rows: Vec<Vec<String>> = inferred
            .iter()
            .map(|f| vec![f.name.clone(), f.value.clone(), f.detail.clone()])
            .collect();
        out.push_str(&columns(&rows, "    ", &|_, _, c| c.to_string()));
    }
    if !n.report.skipped.is_empty() && !quiet {
        out.push_str(&format!(
            "\n  skipped checks ({}):\n",
            n.report.skipped.len()
        ));
        let rows: Vec<Vec<String>> = n
            .report
            .skipped
            .iter()
            .map(|s| vec![s.rule.clone(), s.reason.clone()])
            .collect();
        out.push_str(&st.dim(&columns(&rows, "    ", &|_, _, c| c.to_string())));
        if st.color {
            out.push('\n');
        }
    }
    out.push('\n');
    out
}

fn text_finding(f: &Finding, st: Style, quiet: bool, indent: &str) -> String {
    let mut out = String::new();
    out.push('\n');
    let head = format!(
        "{indent}  {} {}  ",
        st.severity(f.severity),
        st.bold(&f.rule)
    );
    let head_width = indent.chars().count() + 2 + 8 + f.rule.chars().count() + 2;
    out.push_str(&hanging(&head, head_width.min(40), &f.summary, WIDTH));
    if quiet {
        return out;
    }
    let ind = format!("{indent}      ");
    if !f.evidence.is_empty() {
        out.push_str(&format!("{ind}evidence:\n"));
        for e in &f.evidence {
            if let Some(loc) = &e.location {
                out.push_str(&st.dim(&format!("{ind}  # {loc}")));
                out.push('\n');
            }
            for l in e.text.lines() {
                out.push_str(&format!("{ind}  {l}\n"));
            }
        }
    }
    if !f.explanation.is_empty() {
        out.push_str(&format!("{ind}why:\n"));
        out.push_str(&wrap(&f.explanation, &format!("{ind}  "), WIDTH));
    }
    if !f.remedy.is_empty() {
        out.push_str(&format!("{ind}fix:\n"));
        out.push_str(&wrap(&f.remedy, &format!("{ind}  "), WIDTH));
    }
    if !f.inferred.is_empty() {
        out.push_str(&wrap(
            &format!("relies on inferred: {}", f.inferred.join(", ")),
            &ind,
            WIDTH,
        ));
    }
    out
}

// ---------------------------------------------------------------- markdown

/// `markdown` output, through the sanitising layer (outside text cannot reach the terminal raw).
pub fn markdown(r: &AnalyzeReport) -> String {
    super::safe(markdown_raw(r), Style { color: false })
}

fn markdown_raw(r: &AnalyzeReport) -> String {
    let mut out = String::from("# eks-diag analysis\n\n");
    if let Some(f) = &r.fleet {
        out.push_str(&format!("## Fleet summary ({} nodes)\n\n", f.nodes.len()));
        let rows: Vec<Vec<String>> = f
            .nodes
            .iter()
            .map(|n| {
                vec![
                    md_inline(&n.node),
                    n.worst
                        .map(|s| format!("**{}**", s.to_string().to_uppercase()))
                        .unwrap_or_else(|| "OK".into()),
                    n.errors.to_string(),
                    n.warnings.to_string(),
                    n.info.to_string(),
                    n.degraded_sections.to_string(),
                ]
            })
            .collect();
        out.push_str(&md_table(
            &[
                "node",
                "worst",
                "errors",
                "warnings",
                "info",
                "sections not ok",
            ],
            &rows,
        ));
        out.push('\n');
        if !f.by_rule.is_empty() {
            let rows: Vec<Vec<String>> = f
                .by_rule
                .iter()
                .map(|c| {
                    vec![
                        md_inline(&c.rule),
                        c.severity.to_string(),
                        c.nodes.to_string(),
                    ]
                })
                .collect();
            out.push_str(&md_table(&["rule", "severity", "nodes"], &rows));
            out.push('\n');
        }
        if !f.findings.is_empty() {
            out.push_str("### Fleet findings\n\n");
            for fi in &f.findings {
                out.push_str(&md_finding(fi, "####"));
            }
        }
    }
    for n in &r.nodes {
        out.push_str(&format!("## Node {}\n\n", md_inline(&n.node)));
        out.push_str(&format!(
            "Input: {} ({}){}  \n{}\n\n",
            md_inline(&n.input),
            n.agent,
            if n.collected_at.is_empty() {
                String::new()
            } else {
                format!(", collected {}", n.collected_at)
            } + &n
                .daemon
                .as_ref()
                .map(|d| format!(", {}", daemon_note(d)))
                .unwrap_or_default(),
            counts_line(&n.report)
        ));
        if !n.input_problems.is_empty() {
            out.push_str("**Input problems**\n\n");
            for p in &n.input_problems {
                out.push_str(&format!("- {}\n", p));
            }
            out.push('\n');
        }
        if !n.sections.is_empty() {
            out.push_str("### Sections not ok\n\n");
            let rows: Vec<Vec<String>> = n
                .sections
                .iter()
                .map(|s| {
                    vec![
                        s.section.clone(),
                        format!("{:?}", s.status).to_lowercase(),
                        s.reason.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            out.push_str(&md_table(&["section", "status", "reason"], &rows));
            out.push('\n');
        }
        out.push_str("### Findings\n\n");
        if n.report.findings.is_empty() {
            out.push_str("No findings.\n\n");
        }
        for f in &n.report.findings {
            out.push_str(&md_finding(f, "####"));
        }
        let inferred = n.facts.inferred_facts();
        if !inferred.is_empty() {
            out.push_str("### Inferred facts\n\n");
            let rows: Vec<Vec<String>> = inferred
                .iter()
                .map(|f| vec![md_inline(&f.name), md_inline(&f.value), f.detail.clone()])
                .collect();
            out.push_str(&md_table(&["fact", "value", "inferred from"], &rows));
            out.push('\n');
        }
        if !n.report.skipped.is_empty() {
            out.push_str("<details><summary>Skipped checks</summary>\n\n");
            let rows: Vec<Vec<String>> = n
                .report
                .skipped
                .iter()
                .map(|s| vec![md_inline(&s.rule), s.reason.clone()])
                .collect();
            out.push_str(&md_table(&["rule", "reason"], &rows));
            out.push_str("\n</details>\n\n");
        }
    }
    if !r.input_errors.is_empty() {
        out.push_str("## Input errors\n\n");
        for e in &r.input_errors {
            out.push_str(&format!("- {}\n", e.error));
        }
        out.push('\n');
    }
    out.push_str(&format!("_{}_\n", summary_line(r).trim_end()));
    out
}

fn md_finding(f: &Finding, h: &str) -> String {
    let mut out = format!(
        "{h} {} {} — {}\n\n",
        f.severity.to_string().to_uppercase(),
        md_inline(&f.rule),
        f.summary
    );
    if !f.evidence.is_empty() {
        let mut lines = Vec::new();
        for e in &f.evidence {
            if let Some(loc) = &e.location {
                lines.push(format!("# {loc}"));
            }
            lines.extend(e.text.lines().map(str::to_string));
        }
        out.push_str("Evidence:\n\n");
        out.push_str(&md_code(&lines));
        out.push('\n');
    }
    if !f.explanation.is_empty() {
        out.push_str(&format!("**Why:** {}\n\n", f.explanation));
    }
    if !f.remedy.is_empty() {
        out.push_str(&format!("**Fix:** {}\n\n", f.remedy));
    }
    if !f.inferred.is_empty() {
        out.push_str(&format!(
            "_Relies on inferred: {}_\n\n",
            f.inferred.join(", ")
        ));
    }
    out
}
