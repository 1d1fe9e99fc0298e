//! `diag check` output: one line per node and assertion, evidence under it, a summary line.

use serde::Serialize;

use super::analyze::InputProblem;
use super::{md_code, md_inline, md_table, wrap, Style, WIDTH};
use crate::check::{CheckResult, Status};

/// `-o json` of `diag check`.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub exit_code: i32,
    pub summary: CheckSummary,
    pub results: Vec<CheckResult>,
    pub input_errors: Vec<InputProblem>,
    /// Why nothing was checked, when that is the case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `fleet.node-unreachable`: remote nodes that could not be collected (as in the fleet
    /// summary of `diag analyze`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fleet_findings: Vec<model::Finding>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckSummary {
    pub nodes: usize,
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
}

impl CheckSummary {
    pub fn line(&self, input_errors: usize, exit: i32) -> String {
        format!(
            "{} passed, {} failed, {} could not be evaluated on {} node(s); {} input error(s); exit {}",
            self.passed, self.failed, self.errors, self.nodes, input_errors, exit
        )
    }
}

fn label(st: Style, s: Status) -> String {
    match s {
        Status::Pass => st.green("PASS "),
        Status::Fail => st.red("FAIL "),
        Status::Error => st.yellow("ERROR"),
    }
}

/// `text` output, through the sanitising layer (outside text cannot reach the terminal raw).
pub fn text(r: &CheckReport, st: Style, quiet: bool) -> String {
    super::safe(text_raw(r, st, quiet), st)
}

fn text_raw(r: &CheckReport, st: Style, quiet: bool) -> String {
    let mut out = String::new();
    let wn = r
        .results
        .iter()
        .map(|x| x.node.chars().count())
        .max()
        .unwrap_or(0);
    let wa = r
        .results
        .iter()
        .map(|x| x.assertion.chars().count())
        .max()
        .unwrap_or(0);
    for x in &r.results {
        if quiet && x.status == Status::Pass {
            continue;
        }
        out.push_str(&format!(
            "{} {:<wn$}  {:<wa$}  {}\n",
            label(st, x.status),
            x.node,
            x.assertion,
            x.observed
                .as_deref()
                .map(|o| format!("observed: {o}"))
                .unwrap_or_default()
        ));
        out.push_str(&st.dim(&wrap(&x.reason, "      ", WIDTH)));
        if st.color {
            out.push('\n');
        }
        if !quiet {
            for e in &x.evidence {
                if let Some(l) = &e.location {
                    out.push_str(&st.dim(&format!("      # {l}")));
                    out.push('\n');
                }
                out.push_str(&format!("      {}\n", e.text));
            }
        }
    }
    for f in &r.fleet_findings {
        out.push_str(&format!(
            "{} {}  {}  {}\n",
            label(st, Status::Error),
            f.node,
            f.rule,
            f.summary
        ));
        if !quiet {
            out.push_str(&st.dim(&wrap(&f.remedy, "      ", WIDTH)));
            if st.color {
                out.push('\n');
            }
        }
    }
    for e in &r.input_errors {
        out.push_str(&format!("{} {}\n", label(st, Status::Error), e.error));
    }
    if let Some(m) = &r.message {
        out.push_str(&format!("{} {m}\n", label(st, Status::Error)));
    }
    out.push_str(&r.summary.line(r.input_errors.len(), r.exit_code));
    out.push('\n');
    out
}

/// `markdown` output, through the sanitising layer (outside text cannot reach the terminal raw).
pub fn markdown(r: &CheckReport) -> String {
    super::safe(markdown_raw(r), Style { color: false })
}

fn markdown_raw(r: &CheckReport) -> String {
    let mut out = String::from("# diag check\n\n");
    let rows: Vec<Vec<String>> = r
        .results
        .iter()
        .map(|x| {
            vec![
                format!("{:?}", x.status).to_uppercase(),
                md_inline(&x.node),
                md_inline(&x.assertion),
                x.observed.clone().unwrap_or_default(),
                x.reason.clone(),
            ]
        })
        .collect();
    if !rows.is_empty() {
        out.push_str(&md_table(
            &["result", "node", "assertion", "observed", "reason"],
            &rows,
        ));
        out.push('\n');
    }
    let evidence: Vec<String> = r
        .results
        .iter()
        .filter(|x| x.status != Status::Pass && !x.evidence.is_empty())
        .flat_map(|x| {
            let mut v = vec![format!("## {} {}", x.node, x.assertion)];
            for e in &x.evidence {
                if let Some(l) = &e.location {
                    v.push(format!("# {l}"));
                }
                v.push(e.text.clone());
            }
            v
        })
        .collect();
    if !evidence.is_empty() {
        out.push_str("Evidence of failures:\n\n");
        out.push_str(&md_code(&evidence));
        out.push('\n');
    }
    for f in &r.fleet_findings {
        out.push_str(&format!(
            "- **{}** {}: {}. {}\n",
            f.rule,
            md_inline(&f.node),
            f.summary,
            f.remedy
        ));
    }
    for e in &r.input_errors {
        out.push_str(&format!("- **input error:** {}\n", e.error));
    }
    if let Some(m) = &r.message {
        out.push_str(&format!("- **error:** {m}\n"));
    }
    out.push_str(&format!(
        "\n_{}_\n",
        r.summary.line(r.input_errors.len(), r.exit_code)
    ));
    out
}
