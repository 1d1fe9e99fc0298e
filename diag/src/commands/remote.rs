//! Remote targets for every command: the tokio runtime (created once per invocation), the
//! fleet spec built from the flags, target resolution (once, or per call when EC2 discovery
//! must be refreshed), the progress bar, and the fleet event stream drained into results.

use std::io::IsTerminal;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use fleet::targets::Target;
use fleet::{FleetEvent, FleetRun, FleetSpec, NodeResult};
use model::{NodeOutcome, Snapshot};

use crate::cli::TargetArgs;

static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

/// The process's tokio runtime, built on first use (commands without remote targets never
/// start one). Every remote call of a `diag` invocation — each `check --wait` round too —
/// runs on it.
pub fn runtime() -> anyhow::Result<&'static tokio::runtime::Runtime> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    Ok(RUNTIME.get_or_init(|| rt))
}

/// `node-agent collect --from-daemon`: the daemon's latest snapshot, else a fresh one.
pub fn daemon_collect_args() -> Vec<String> {
    vec!["collect".to_string(), "--from-daemon".to_string()]
}

/// A progress bar on stderr when wanted and stderr is a terminal.
pub struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    pub fn new(wanted: bool, n: usize) -> Progress {
        if !wanted || !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let b = indicatif::ProgressBar::with_draw_target(
            Some(n as u64),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed} {wide_msg}")
        {
            b.set_style(style);
        }
        Progress(Some(b))
    }

    /// Shows one event.
    pub fn event(&self, ev: &FleetEvent) {
        let Some(b) = &self.0 else { return };
        match ev {
            FleetEvent::Started { name, .. } => b.set_message(format!("{name} …")),
            FleetEvent::Finished { outcome, .. } => {
                b.set_message(format!("{} {}", outcome.name, outcome.outcome));
                b.inc(1);
            }
        }
    }

    pub fn finish(self) {
        if let Some(b) = self.0 {
            b.finish_and_clear();
        }
    }
}

/// The remote part of one invocation: the spec, and the resolved targets kept for later
/// rounds unless the spec asks EC2 which instances exist (`--ec2-cluster`/`--ec2-filter`:
/// instances are replaced during node-group updates, so each round asks again).
pub struct Remote {
    pub spec: FleetSpec,
    targets: Option<Vec<Target>>,
}

impl Remote {
    /// None when no remote target option was given. The nodes are collected afresh (`diag
    /// collect`); see [`Remote::from_args_daemon`] for the commands that read a daemon.
    pub fn from_args(args: &TargetArgs) -> anyhow::Result<Option<Remote>> {
        if !args.has_targets() {
            return Ok(None);
        }
        Ok(Some(Remote {
            spec: args.to_spec()?,
            targets: None,
        }))
    }

    /// [`Remote::from_args`], taking the latest snapshot of a running `node-agent serve`
    /// where there is one (`node-agent collect --from-daemon`, which collects afresh when no
    /// daemon answers) unless `--no-daemon`. Only the installed agent is asked: a pushed
    /// agent or the agentless script always collect.
    pub fn from_args_daemon(args: &TargetArgs) -> anyhow::Result<Option<Remote>> {
        let mut r = Remote::from_args(args)?;
        if let Some(r) = &mut r {
            if !args.no_daemon && matches!(r.spec.mode, fleet::runner::AgentMode::Installed { .. })
            {
                r.spec.agent_args = daemon_collect_args();
            }
        }
        Ok(r)
    }

    /// A remote that runs `node-agent ARGS...` on every node and hands back what it printed
    /// (`diag changes`: `api /v1/changes?since=…`). Needs the installed agent.
    pub fn from_args_raw(
        args: &TargetArgs,
        agent_args: Vec<String>,
    ) -> anyhow::Result<Option<Remote>> {
        let mut r = Remote::from_args(args)?;
        if let Some(r) = &mut r {
            if !matches!(r.spec.mode, fleet::runner::AgentMode::Installed { .. }) {
                anyhow::bail!(
                    "the daemon's change log is read with the agent installed on the nodes \
                     (node-agent api): --push-agent and --agentless cannot ask it"
                );
            }
            r.spec.agent_args = agent_args;
            r.spec.raw_output = true;
        }
        Ok(r)
    }

    /// The same targets, running `node-agent ARGS...` raw (the daemon's change log for the
    /// TUI's Changes tab); None unless the agent is installed on the nodes.
    pub fn raw_twin(&self, agent_args: Vec<String>) -> Option<Remote> {
        if !matches!(self.spec.mode, fleet::runner::AgentMode::Installed { .. }) {
            return None;
        }
        let mut spec = self.spec.clone();
        spec.agent_args = agent_args;
        spec.raw_output = true;
        Some(Remote {
            spec,
            targets: self.targets.clone(),
        })
    }

    /// The targets: resolved on the first call, then reused unless discovery is dynamic.
    pub async fn targets(&mut self) -> anyhow::Result<Vec<Target>> {
        if let Some(t) = &self.targets {
            return Ok(t.clone());
        }
        let t = self.spec.resolve_targets().await?;
        if t.is_empty() {
            return Err(fleet::FleetError::NoTargets.into());
        }
        if !self.spec.targets.is_dynamic() {
            self.targets = Some(t.clone());
        }
        Ok(t)
    }

    /// Starts collecting `targets`: the event stream and the transport's name.
    pub async fn start(&self, targets: Vec<Target>) -> anyhow::Result<(FleetRun, &'static str)> {
        use fleet::Transport;
        let transport = Arc::new(self.spec.transport().await?);
        let name = transport.name();
        Ok((fleet::run(transport, targets), name))
    }

    /// Collects every target (progress on stderr when wanted); results in target order.
    pub async fn gather(&mut self, progress: bool) -> anyhow::Result<Vec<NodeResult>> {
        let targets = self.targets().await?;
        let bar = Progress::new(progress, targets.len());
        let (run, _) = self.start(targets).await?;
        let out = run.collect_all_with(|ev| bar.event(ev)).await;
        bar.finish();
        Ok(out)
    }

    /// Collects every target and hands each node to `on_node` (its index in the target
    /// list, its outcome, its snapshot) as soon as it finishes, so that a view can be built
    /// and the snapshot dropped while the other nodes are still being collected: memory
    /// holds the nodes in flight, not the fleet. Returns every outcome, in target order.
    pub async fn for_each_node(
        &mut self,
        progress: bool,
        mut on_node: impl FnMut(usize, &NodeOutcome, Option<Box<Snapshot>>),
    ) -> anyhow::Result<Vec<NodeOutcome>> {
        let targets = self.targets().await?;
        let bar = Progress::new(progress, targets.len());
        let mut outcomes: Vec<Option<NodeOutcome>> = vec![None; targets.len()];
        let (mut run, _) = self.start(targets).await?;
        while let Some(ev) = run.next_event().await {
            bar.event(&ev);
            if let FleetEvent::Finished {
                index,
                outcome,
                snapshot,
                ..
            } = ev
            {
                on_node(index, &outcome, snapshot);
                if let Some(slot) = outcomes.get_mut(index) {
                    *slot = Some(outcome);
                }
            }
        }
        bar.finish();
        Ok(outcomes.into_iter().flatten().collect())
    }
}
