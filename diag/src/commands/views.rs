//! `diag snat` and `diag routes`.

use crate::cli::{Format, ViewArgs};
use crate::render::json;
use crate::render::views::{self as v, RoutesReport, SnatReport};

use super::{
    emit, load, note_errors, source_inputs, split, Out, EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_OK,
};

fn exit_code(bad: bool, failing: bool) -> i32 {
    if bad {
        EXIT_BAD_INPUT
    } else if failing {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }
}

pub fn run_snat(args: ViewArgs, out: Out) -> anyhow::Result<i32> {
    let sp = split(load(source_inputs(&args.source, &args.input), &args.input));
    let mut nodes = Vec::new();
    let mut bad = !sp.errors.is_empty() || sp.nodes.is_empty();
    for (_, snap, problems) in &sp.nodes {
        bad |= !problems.is_empty();
        let report = analysis::analyze(snap);
        nodes.push(analysis::views::snat_view(snap, &report));
    }
    let failing = nodes
        .iter()
        .any(|n| n.findings.iter().any(|f| f.severity >= args.fail_on));
    let mut errors = sp.errors;
    for (label, _, problems) in &sp.nodes {
        errors.extend(
            problems
                .iter()
                .map(|p| crate::render::analyze::InputProblem {
                    input: label.clone(),
                    error: p.clone(),
                }),
        );
    }
    let report = SnatReport {
        exit_code: exit_code(bad, failing),
        nodes,
        input_errors: errors,
    };
    note_errors(out, &report.input_errors);
    let text = match out.format {
        Format::Text => v::snat_text(&report, out.style, out.quiet),
        Format::Json => json(&report)?,
        Format::Markdown => v::snat_markdown(&report),
    };
    emit(&text)?;
    Ok(report.exit_code)
}

pub fn run_routes(args: ViewArgs, out: Out) -> anyhow::Result<i32> {
    let sp = split(load(source_inputs(&args.source, &args.input), &args.input));
    let mut nodes = Vec::new();
    let mut bad = !sp.errors.is_empty() || sp.nodes.is_empty();
    for (_, snap, problems) in &sp.nodes {
        bad |= !problems.is_empty();
        let report = analysis::analyze(snap);
        nodes.push(analysis::views::route_view(snap, &report));
    }
    let failing = nodes
        .iter()
        .any(|n| n.findings.iter().any(|f| f.severity >= args.fail_on));
    let mut errors = sp.errors;
    for (label, _, problems) in &sp.nodes {
        errors.extend(
            problems
                .iter()
                .map(|p| crate::render::analyze::InputProblem {
                    input: label.clone(),
                    error: p.clone(),
                }),
        );
    }
    let report = RoutesReport {
        exit_code: exit_code(bad, failing),
        nodes,
        input_errors: errors,
    };
    note_errors(out, &report.input_errors);
    let text = match out.format {
        Format::Text => v::routes_text(&report, out.style, out.quiet),
        Format::Json => json(&report)?,
        Format::Markdown => v::routes_markdown(&report),
    };
    emit(&text)?;
    Ok(report.exit_code)
}
