//! `diag check`: assertions per node; exit 0 all pass, 1 a failure, 2 cannot evaluate.

use std::time::{Duration, Instant};

use crate::check::{assertions_for, evaluate, Assertion, Policy, Status};
use crate::cli::{CheckArgs, Format};
use crate::render::check::{self as r, CheckReport, CheckSummary};
use crate::render::json;

use super::remote::Remote;
use super::{
    emit, load, note_errors, source_inputs, split, Out, EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_OK,
};

pub fn run(args: CheckArgs, out: Out) -> anyhow::Result<i32> {
    // Remote targets are resolved once for the whole invocation (see `Remote`).
    let mut remote = None;
    let report = match args.wait {
        Some(wait) => wait_until_pass(&args, out, wait, &mut remote),
        None => build(&args, out, &mut remote),
    };
    note_errors(out, &report.input_errors);
    let text = match out.format {
        Format::Text => r::text(&report, out.style, out.quiet),
        Format::Json => json(&report)?,
        Format::Markdown => r::markdown(&report),
    };
    emit(&text)?;
    Ok(report.exit_code)
}

fn usage_error(message: String) -> CheckReport {
    CheckReport {
        exit_code: EXIT_BAD_INPUT,
        summary: CheckSummary::default(),
        results: Vec::new(),
        input_errors: Vec::new(),
        message: Some(message),
        fleet_findings: Vec::new(),
    }
}

/// `--wait`: re-collect and re-check until every assertion passes or the time is up. Rounds
/// that could not evaluate (a node unreachable while aws-node restarts) are retried too; the
/// last round's report is the result.
fn wait_until_pass(
    args: &CheckArgs,
    out: Out,
    wait: Duration,
    remote: &mut Option<Remote>,
) -> CheckReport {
    let deadline = Instant::now() + wait;
    let mut round = 1u32;
    loop {
        let report = build(args, out, remote);
        let left = deadline.saturating_duration_since(Instant::now());
        // Nothing was checkable at all (a usage problem): waiting cannot help.
        let nothing_to_wait_for = report.results.is_empty() && report.input_errors.is_empty();
        if report.exit_code == EXIT_OK || left.is_zero() || nothing_to_wait_for {
            if !out.quiet {
                eprintln!("diag check: round {round}: {}", progress_line(&report));
            }
            return report;
        }
        let pause = args.interval.min(left);
        if !out.quiet {
            eprintln!(
                "diag check: round {round}: {}; next round in {}s ({}s left)",
                progress_line(&report),
                pause.as_secs(),
                left.as_secs()
            );
        }
        std::thread::sleep(pause);
        round += 1;
    }
}

fn progress_line(r: &CheckReport) -> String {
    format!(
        "{} node(s), {} passed, {} failed, {} could not be evaluated, {} input error(s)",
        r.summary.nodes,
        r.summary.passed,
        r.summary.failed,
        r.summary.errors,
        r.input_errors.len()
    )
}

/// `--since-change`: keep each node's snapshot only when it is its daemon's and was collected
/// at or after the node's newest CNI env/version change; the others become input errors.
fn since_change(
    sp: &mut super::Split,
    args: &CheckArgs,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    if args.source.local || !args.source.from.is_empty() {
        return Err(
            "--since-change reads each node's daemon over SSH/SSM: it cannot be combined with \
             --local or --from"
                .into(),
        );
    }
    let newest =
        super::changes::newest_cni_changes(&args.input.targets).map_err(|e| format!("{e:#}"))?;
    let mut kept = Vec::new();
    for (label, snap, problems) in std::mem::take(&mut sp.nodes) {
        let bad = |why: String| crate::render::analyze::InputProblem {
            input: label.clone(),
            error: why,
        };
        let verdict = match newest.get(&label) {
            None => Err("--since-change: the node's change log was not read".to_string()),
            Some(Err(why)) => Err(why.clone()),
            Some(Ok(_)) if snap.daemon_source().is_none() => Err(
                "--since-change: the snapshot is not the daemon's (the daemon did not answer \
                 /v1/snapshot)"
                    .to_string(),
            ),
            Some(Ok(None)) => {
                notes.push(format!(
                    "{label}: no CNI env/version change in the daemon's log; checked its latest \
                     snapshot ({})",
                    snap.collected_at
                ));
                Ok(())
            }
            Some(Ok(Some(c))) => {
                let at = c.at.parse::<jiff::Timestamp>().ok();
                let taken = snap.collected_at.parse::<jiff::Timestamp>().ok();
                if at.is_some() && taken >= at {
                    notes.push(format!(
                        "{label}: state after the CNI change at {} ({}), snapshot {}",
                        c.at,
                        c.describe(),
                        snap.collected_at
                    ));
                    Ok(())
                } else {
                    Err(format!(
                        "--since-change: the daemon's latest snapshot ({}) predates the last \
                         CNI change at {} ({})",
                        snap.collected_at,
                        c.at,
                        c.describe()
                    ))
                }
            }
        };
        match verdict {
            Ok(()) => kept.push((label, snap, problems)),
            Err(why) => sp.errors.push(bad(why)),
        }
    }
    sp.nodes = kept;
    Ok(())
}

pub fn build(args: &CheckArgs, out: Out, remote: &mut Option<Remote>) -> CheckReport {
    // Assertions are validated before anything is collected.
    let mut cli = Vec::new();
    for e in &args.expect {
        match Assertion::parse(e) {
            Ok(a) => cli.push(a),
            Err(m) => return usage_error(m),
        }
    }
    let policy = match &args.policy {
        Some(p) => match Policy::load(p) {
            Ok(p) => Some(p),
            Err(m) => return usage_error(format!("--policy {m}")),
        },
        None => None,
    };
    if cli.is_empty() && policy.as_ref().is_none_or(Policy::is_empty) {
        return usage_error(
            "nothing to check: give --expect KEY=VALUE or a --policy with expectations".into(),
        );
    }
    let sources = match source_inputs(&args.source, &args.input, out, remote) {
        Ok(s) => s,
        Err(e) => return usage_error(format!("{e:#}")),
    };
    let fleet_findings = sources.unreachable();
    let mut sp = split(load(sources.inputs, &args.input));
    let mut notes = Vec::new();
    if args.since_change {
        if let Err(m) = since_change(&mut sp, args, &mut notes) {
            return usage_error(m);
        }
    }
    let mut results = Vec::new();
    let mut errors = sp.errors;
    let mut summary = CheckSummary {
        nodes: sp.nodes.len(),
        ..Default::default()
    };
    let mut unchecked_nodes = Vec::new();
    for (label, snap, problems) in &sp.nodes {
        errors.extend(
            problems
                .iter()
                .map(|p| crate::render::analyze::InputProblem {
                    input: label.clone(),
                    error: p.clone(),
                }),
        );
        let name = snap.display_name();
        let list = assertions_for(&name, &cli, policy.as_ref());
        if list.is_empty() {
            unchecked_nodes.push(name);
            continue;
        }
        let prepared = analysis::Prepared::new(snap);
        let report = analysis::analyze_prepared(&prepared);
        for a in &list {
            let res = evaluate(&prepared, &report, a);
            match res.status {
                Status::Pass => summary.passed += 1,
                Status::Fail => summary.failed += 1,
                Status::Error => summary.errors += 1,
            }
            results.push(res);
        }
    }
    let mut message = None;
    if sp.nodes.is_empty() {
        message = Some("no node could be read, nothing was checked".into());
    } else if results.is_empty() {
        message = Some(format!(
            "no assertion applies to node(s) {}; nothing was checked",
            unchecked_nodes.join(", ")
        ));
    } else if !unchecked_nodes.is_empty() {
        message = Some(format!(
            "no assertion applies to node(s) {}",
            unchecked_nodes.join(", ")
        ));
    }
    if !notes.is_empty() {
        let n = notes.join("; ");
        message = Some(match message {
            Some(m) => format!("{m}; {n}"),
            None => n,
        });
    }
    let exit_code = if summary.errors > 0 || !errors.is_empty() || results.is_empty() {
        EXIT_BAD_INPUT
    } else if summary.failed > 0 {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    };
    CheckReport {
        exit_code,
        summary,
        results,
        input_errors: errors,
        message,
        fleet_findings,
    }
}
