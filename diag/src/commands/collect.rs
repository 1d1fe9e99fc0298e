//! `diag collect`: each snapshot is written to the output directory as its node finishes
//! (memory holds only the nodes in flight), then fleet.json; per-node failures and a summary
//! line on stderr.
//!
//! Exit codes: 0 every node ok (or partial), 1 some nodes failed, 2 no node could be
//! collected, or bad arguments / no targets.

use std::path::Path;
use std::time::{Instant, SystemTime};

use fleet::report::{self, CollectDir};
use fleet::FleetEvent;

use super::remote::{runtime, Progress, Remote};
use crate::cli::TargetArgs;

pub fn run(targets: &TargetArgs, out_dir: &Path, no_progress: bool) -> anyhow::Result<i32> {
    let rt = runtime()?;
    rt.block_on(collect(targets, out_dir, !no_progress))
}

async fn collect(args: &TargetArgs, out_dir: &Path, progress: bool) -> anyhow::Result<i32> {
    let started_at = SystemTime::now();
    let t0 = Instant::now();
    let mut remote = match Remote::from_args(args) {
        Ok(Some(r)) => r,
        Ok(None) => {
            eprintln!("diag collect: no targets selected (give --hosts, --ssh-config with --host, --ec2-cluster or --instance-ids)");
            return Ok(2);
        }
        Err(e) => {
            eprintln!("diag collect: {e:#}");
            return Ok(2);
        }
    };
    let targets = match remote.targets().await {
        Ok(t) => t,
        Err(e) => {
            eprintln!("diag collect: {e:#}");
            return Ok(2);
        }
    };
    let mut dir = CollectDir::create(out_dir, &targets)?;
    let bar = Progress::new(progress, targets.len());
    let (mut run, transport) = match remote.start(targets).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("diag collect: {e:#}");
            return Ok(2);
        }
    };
    while let Some(ev) = run.next_event().await {
        bar.event(&ev);
        if let FleetEvent::Finished {
            index,
            outcome,
            snapshot,
            ..
        } = ev
        {
            // Written now and dropped: the snapshot is not kept for the report.
            dir.write_node(index, outcome, snapshot.as_deref())?;
        }
    }
    bar.finish();
    let report = dir.finish(started_at, t0.elapsed(), transport)?;
    for n in report.nodes.iter().filter(|n| !n.outcome.is_success()) {
        eprintln!(
            "{}: {}: {}",
            n.name,
            n.outcome,
            n.error.as_deref().unwrap_or("")
        );
    }
    eprintln!(
        "{} (in {:.1}s; results in {})",
        report::summary_line(&report.nodes),
        t0.elapsed().as_secs_f64(),
        out_dir.display()
    );
    Ok(report::exit_code(&report.nodes))
}
