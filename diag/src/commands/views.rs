//! `diag snat` and `diag routes`: one analysis view per node.

use model::{Finding, NodeReport};

use crate::cli::{Format, ViewArgs};
use crate::render::analyze::InputProblem;
use crate::render::json;
use crate::render::views::{self as v, RoutesReport, SnatReport};

use super::{
    emit, load, note_errors, source_inputs, split, Out, EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_OK,
};

/// Views of every readable node, the input errors, and the exit code.
struct Built<V> {
    views: Vec<V>,
    errors: Vec<InputProblem>,
    exit_code: i32,
    /// Remote nodes not collected, as `fleet.node-unreachable` findings.
    unreachable: Vec<Finding>,
}

fn build<V>(
    args: &ViewArgs,
    out: Out,
    view: fn(&analysis::Prepared<'_>, &NodeReport) -> V,
    findings: fn(&V) -> &[Finding],
) -> Built<V> {
    let sources = match source_inputs(&args.source, &args.input, out, &mut None) {
        Ok(s) => s,
        Err(e) => {
            return Built {
                views: Vec::new(),
                errors: vec![InputProblem {
                    input: "arguments".into(),
                    error: format!("{e:#}"),
                }],
                exit_code: EXIT_BAD_INPUT,
                unreachable: Vec::new(),
            }
        }
    };
    let unreachable = sources.unreachable();
    let sp = split(load(sources.inputs, &args.input));
    let mut errors = sp.errors;
    let mut views = Vec::new();
    for (label, snap, problems) in &sp.nodes {
        errors.extend(problems.iter().map(|p| InputProblem {
            input: label.clone(),
            error: p.clone(),
        }));
        let p = analysis::Prepared::new(snap);
        views.push(view(&p, &analysis::analyze_prepared(&p)));
    }
    let failing = views
        .iter()
        .any(|x| findings(x).iter().any(|f| f.severity >= args.fail_on));
    let exit_code = if !errors.is_empty() || views.is_empty() {
        EXIT_BAD_INPUT
    } else if failing {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    };
    Built {
        views,
        errors,
        exit_code,
        unreachable,
    }
}

pub fn run_snat(args: ViewArgs, out: Out) -> anyhow::Result<i32> {
    let b = build(&args, out, analysis::views::snat_view_of, |x| &x.findings);
    let report = SnatReport {
        exit_code: b.exit_code,
        nodes: b.views,
        input_errors: b.errors,
        fleet_findings: b.unreachable,
    };
    note_errors(out, &report.input_errors);
    emit(&match out.format {
        Format::Text => v::snat_text(&report, out.style, out.quiet),
        Format::Json => json(&report)?,
        Format::Markdown => v::snat_markdown(&report),
    })?;
    Ok(report.exit_code)
}

pub fn run_routes(args: ViewArgs, out: Out) -> anyhow::Result<i32> {
    let b = build(&args, out, analysis::views::route_view_of, |x| &x.findings);
    let report = RoutesReport {
        exit_code: b.exit_code,
        nodes: b.views,
        input_errors: b.errors,
        fleet_findings: b.unreachable,
    };
    note_errors(out, &report.input_errors);
    emit(&match out.format {
        Format::Text => v::routes_text(&report, out.style, out.quiet),
        Format::Json => json(&report)?,
        Format::Markdown => v::routes_markdown(&report),
    })?;
    Ok(report.exit_code)
}
