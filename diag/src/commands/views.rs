//! `diag snat` and `diag routes`: one analysis view per node.

use model::{Finding, NodeReport};

use crate::cli::{Format, ViewArgs};
use crate::render::analyze::InputProblem;
use crate::render::json;
use crate::render::views::{self as v, RoutesReport, SnatReport};

use anyhow::Context;

use super::remote::{runtime, Remote};
use super::{
    analyze, emit, load, note_errors, problem, source_inputs, split, Out, EXIT_BAD_INPUT,
    EXIT_FINDINGS, EXIT_OK,
};
use crate::input::snapshot_json::fleet_failure;
use crate::input::{Input, InputError};

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
    let remote = args.input.targets.has_targets();
    // Local inputs (paths, --local) first, then the remote nodes, as `source_inputs` orders
    // them. Remote nodes are analysed as they arrive (see `remote_views`).
    let (inputs, mut remote_part) = if remote {
        let mut inputs: Vec<Input> = args
            .source
            .from
            .iter()
            .map(|p| Input::from_arg(p))
            .collect();
        if args.source.local {
            inputs.push(Input::Local {
                agent_path: args.input.local_agent(),
            });
        }
        (inputs, Some(remote_views(args, out, view)))
    } else {
        match source_inputs(&args.source, &args.input, out, &mut None) {
            Ok(s) => (s.inputs, None),
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
        }
    };
    let sp = split(load(inputs, &args.input));
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
    let mut unreachable = Vec::new();
    if let Some(r) = remote_part.take() {
        for node in r.nodes {
            match node {
                Ok(v) => views.push(v),
                Err(e) => errors.push(e),
            }
        }
        unreachable = analysis::unreachable::findings(&r.outcomes);
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

/// The remote nodes' views (or why a node has none), in target order, and their outcomes.
struct RemoteViews<V> {
    nodes: Vec<Result<V, InputProblem>>,
    outcomes: Vec<model::NodeOutcome>,
}

/// Collects the remote targets and builds each node's view the moment its snapshot
/// arrives, then drops the snapshot: the analysis of one node overlaps the collection of the
/// others, and memory holds the views (a few KB per node), not N snapshots.
fn remote_views<V>(
    args: &ViewArgs,
    out: Out,
    view: fn(&analysis::Prepared<'_>, &NodeReport) -> V,
) -> RemoteViews<V> {
    let mut slots: Vec<Option<Result<V, InputProblem>>> = Vec::new();
    let run = (|| -> anyhow::Result<Vec<model::NodeOutcome>> {
        let mut r = Remote::from_args_daemon(&args.input.targets)?
            .context("remote targets were given but none were built")?;
        runtime()?.block_on(r.for_each_node(!out.quiet, |index, node, snapshot| {
            let result = match snapshot {
                Some(snap) if node.outcome.is_success() => {
                    if let (false, Some(d)) = (out.quiet, analyze::daemon_source(&snap)) {
                        eprintln!(
                            "diag: {}: snapshot {}",
                            model::sanitize::terminal(&node.name),
                            crate::render::analyze::daemon_note(&d)
                        );
                    }
                    let p = analysis::Prepared::new(&snap);
                    Ok(view(&p, &analysis::analyze_prepared(&p)))
                }
                _ => Err(problem(&node.name, &fleet_failure(node))),
            };
            if slots.len() <= index {
                slots.resize_with(index + 1, || None);
            }
            slots[index] = Some(result);
        }))
    })();
    match run {
        Ok(outcomes) => {
            if !out.quiet {
                eprintln!("diag: {}", fleet::report::summary_line(&outcomes));
            }
            RemoteViews {
                nodes: slots.into_iter().flatten().collect(),
                outcomes,
            }
        }
        Err(e) => RemoteViews {
            nodes: vec![Err(problem(
                "remote targets",
                &InputError::Fleet {
                    node: "(targets)".into(),
                    message: format!("{e:#}"),
                },
            ))],
            outcomes: Vec::new(),
        },
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
