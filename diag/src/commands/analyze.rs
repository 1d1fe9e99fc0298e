//! `diag analyze PATH...`

use crate::cli::{AnalyzeArgs, Format};
use crate::input::Input;
use crate::render::analyze::{self as r, AnalyzeReport, FleetSummary, NodeResult, SectionNote};
use crate::render::json;

use super::{
    emit, load, note_errors, remote_inputs, split, Out, EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_OK,
};

/// Nodes of a remote run that delivered no snapshot become `fleet.node-unreachable` findings
/// in the fleet summary (they are input errors too, so the exit code stays 2).
fn add_unreachable(report: &mut AnalyzeReport, outcomes: &[model::NodeOutcome]) {
    let findings = analysis::unreachable::findings(outcomes);
    if findings.is_empty() {
        return;
    }
    match &mut report.fleet {
        Some(f) => f.findings.extend(findings),
        None => report.fleet = Some(FleetSummary::build(&report.nodes, findings)),
    }
}

pub fn run(args: AnalyzeArgs, out: Out) -> anyhow::Result<i32> {
    if args.paths.is_empty() && !args.local && !args.input.targets.has_targets() {
        anyhow::bail!(
            "nothing to analyse: give PATH..., --local, or remote targets (--hosts, \
             --ssh-config with --host, --ec2-cluster, --instance-ids)"
        );
    }
    let mut inputs: Vec<Input> = args.paths.iter().map(|p| Input::from_arg(p)).collect();
    if args.local {
        inputs.push(Input::Local {
            agent_path: args.input.local_agent(),
        });
    }
    let mut remote = remote_inputs(&args.input, out, &mut None);
    inputs.append(&mut remote.inputs);
    let loaded = load(inputs, &args.input);
    let mut report = build(loaded, args.fail_on);
    add_unreachable(&mut report, &remote.outcomes);
    note_errors(out, &report.input_errors);
    let text = match out.format {
        Format::Text => r::text(&report, out.style, out.quiet),
        Format::Json => json(&report)?,
        Format::Markdown => r::markdown(&report),
    };
    emit(&text)?;
    Ok(report.exit_code)
}

/// How old a daemon-served snapshot is now (None for a fresh collection).
pub fn daemon_source(snap: &model::Snapshot) -> Option<model::report::DaemonSource> {
    let collected = snap
        .collected_at
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second());
    model::report::DaemonSource::of(snap, jiff::Timestamp::now().as_second(), collected)
}

/// Analyse every loaded snapshot; the fleet summary when there are several.
pub fn build(loaded: Vec<crate::input::Loaded>, fail_on: model::Severity) -> AnalyzeReport {
    let sp = split(loaded);
    let mut nodes = Vec::new();
    for (label, snap, problems) in &sp.nodes {
        let prepared = analysis::Prepared::new(snap);
        let report = analysis::analyze_prepared(&prepared);
        let facts = prepared.facts;
        nodes.push(NodeResult {
            node: snap.display_name(),
            input: label.clone(),
            agent: if snap.agent.version.is_empty() {
                snap.agent.name.clone()
            } else {
                format!("{} {}", snap.agent.name, snap.agent.version)
            },
            collected_at: snap.collected_at.clone(),
            sections: SectionNote::from_snapshot(snap),
            input_problems: problems.clone(),
            report,
            facts,
            daemon: daemon_source(snap),
        });
    }
    let fleet = if sp.nodes.len() > 1 {
        let snaps: Vec<&model::Snapshot> = sp.nodes.iter().map(|(_, s, _)| s).collect();
        Some(FleetSummary::build(&nodes, analysis::analyze_fleet(&snaps)))
    } else {
        None
    };
    let bad = !sp.errors.is_empty()
        || nodes.is_empty()
        || nodes.iter().any(|n| !n.input_problems.is_empty());
    let failing = nodes.iter().any(|n| n.report.count_at_least(fail_on) > 0)
        || fleet
            .as_ref()
            .is_some_and(|f| f.findings.iter().any(|x| x.severity >= fail_on));
    let exit_code = if bad {
        EXIT_BAD_INPUT
    } else if failing {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    };
    AnalyzeReport {
        fail_on,
        exit_code,
        fleet,
        nodes,
        input_errors: sp.errors,
    }
}
