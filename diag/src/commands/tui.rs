//! `diag tui`: wires inputs to the `tui` crate.
//!
//! Offline inputs (`--from PATH...`, `--local`) go through [`crate::input`]; live targets
//! (hosts file, ssh_config, EC2, SSM) through today's fleet API, one node at a time on a
//! background thread so results stream into the TUI as they arrive. Re-collect requests come
//! back over a channel. The adapter ([`live_producer`]) is small on purpose: it is replaced by
//! the streaming fleet runner once that lands.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use clap::{Args, ValueHint};
use fleet::FleetEvent;
use model::Outcome;
use tui::{ChangeLog, Event, NodeResult, NodeUpdate, Request};

use crate::cli::{InputOpts, SourceArgs};
use crate::input::{Input, InputError, Loaded};

use super::changes;
use super::remote::Remote;
use super::{Out, EXIT_BAD_INPUT, EXIT_OK};

/// How far back the Changes tab reads each node daemon's change log.
const CHANGES_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

pub const TUI_HELP: &str = "\
Keys: j/k move, Enter open a node, Esc back, Tab/1-6 node tabs (Findings, SNAT, Routing,
Conntrack, Logs, Changes: the node daemon's change log of the last 24 h, live targets
only), / filter (regex over node and finding text; /! inverts), O sort column,
I invert, f findings across the fleet, r/ctrl-r re-collect the node, R the fleet, space or
ctrl-f freeze, y copy evidence (OSC 52 and a file), : commands (node NAME, findings, q),
? help, q/ctrl-c quit.

Examples:
  diag tui --hosts nodes.txt -i ~/.ssh/eks.pem --refresh 30s
  diag tui --ec2-cluster prod -J ec2-user@bastion --readonly
  diag tui --from out/fleet/ ticket-1234/ eks_i-0abc_2026-11-21_0610-UTC_0.7.9.tar.gz

Without a terminal on stdout it exits with 2; use `diag snat` / `diag analyze` there.";

/// `diag tui`.
#[derive(Debug, Args)]
pub struct TuiArgs {
    #[command(flatten)]
    pub source: SourceArgs,

    /// Re-collect the whole fleet at this interval (e.g. 30s); `R` does it by hand.
    #[arg(long, value_name = "DURATION", value_parser = crate::cli::parse_duration)]
    pub refresh: Option<Duration>,

    /// Browse only: the re-collect keys are hidden and refused.
    #[arg(long)]
    pub readonly: bool,

    /// File that `y` writes the copied evidence to (besides OSC 52).
    #[arg(long, value_name = "FILE", env = "DIAG_TUI_COPY_FILE", value_hint = ValueHint::FilePath)]
    pub copy_file: Option<PathBuf>,

    /// Directory where `b` writes the selected node's redacted bundle and its private map.
    #[arg(long, value_name = "DIR", env = "DIAG_TUI_BUNDLE_DIR", default_value = ".", value_hint = ValueHint::DirPath)]
    pub bundle_dir: PathBuf,

    #[command(flatten)]
    pub input: InputOpts,
}

pub fn run(a: TuiArgs, out: Out) -> anyhow::Result<i32> {
    let live = a.input.targets.has_targets();
    if !live && !a.source.local && a.source.from.is_empty() {
        anyhow::bail!(
            "nothing to show: give --from PATH..., --local, or remote targets (--hosts, \
             --ssh-config with --host, --ec2-cluster, --instance-ids)"
        );
    }
    let (ev_tx, ev_rx) = mpsc::channel::<Event>();
    let (req_tx, req_rx) = mpsc::channel::<Request>();
    let mut what = Vec::new();
    if !a.source.from.is_empty() {
        what.push(format!("{} input(s)", a.source.from.len()));
    }
    if a.source.local {
        what.push("this machine".into());
    }
    if live {
        what.push("remote targets".into());
    }
    let opts = tui::Options {
        readonly: a.readonly,
        // --color / NO_COLOR as for text output (auto: colour unless NO_COLOR is set).
        color: out.style.color,
        refresh: a.refresh,
        can_recollect: true,
        copy_file: a
            .copy_file
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("diag-tui-evidence.txt")),
        source: what.join(" + "),
        bundle_dir: a.bundle_dir.clone(),
    };
    // Offline inputs and live targets share one request channel: the offline side re-reads its
    // inputs, the live side re-collects its nodes.
    let offline = OfflineSource {
        paths: a.source.from.clone(),
        local: a.source.local,
        agent_path: a.input.local_agent(),
        map: a.input.map.clone(),
    };
    let remote = if live {
        Remote::from_args(&a.input.targets)?
    } else {
        None
    };
    std::thread::Builder::new()
        .name("diag-tui-producer".into())
        .spawn(move || producer(offline, remote, ev_tx, req_rx))?;
    match tui::run(ev_rx, Some(req_tx), opts) {
        Ok(()) => Ok(EXIT_OK),
        Err(tui::TuiError::NotATerminal) => {
            eprintln!(
                "diag: `diag tui` needs a terminal on stdout; use `diag snat` or `diag analyze` \
                 with the same inputs instead"
            );
            Ok(EXIT_BAD_INPUT)
        }
        Err(e) => Err(e.into()),
    }
}

/// `--from` and `--local`: read (and on request re-read) through the input loader.
#[derive(Debug, Clone)]
pub struct OfflineSource {
    pub paths: Vec<PathBuf>,
    pub local: bool,
    pub agent_path: Option<PathBuf>,
    pub map: Vec<String>,
}

impl OfflineSource {
    fn is_empty(&self) -> bool {
        self.paths.is_empty() && !self.local
    }

    /// Load everything once: one result per node.
    pub fn load(&self) -> Vec<NodeResult> {
        let mut inputs: Vec<Input> = self.paths.iter().map(|p| Input::from_arg(p)).collect();
        if self.local {
            inputs.push(Input::Local {
                agent_path: self.agent_path.clone(),
            });
        }
        let loaded = match crate::input::LoadOptions::new(&self.map) {
            Ok(o) => crate::input::load_all(inputs, &o),
            Err(e) => vec![Loaded::err("--map", e)],
        };
        loaded.into_iter().map(loaded_to_result).collect()
    }
}

/// One loaded input as a node result.
pub fn loaded_to_result(l: Loaded) -> NodeResult {
    match l.outcome {
        Ok(s) => {
            let name = s.display_name();
            let partial = s
                .section_statuses()
                .iter()
                .any(|(_, st, _)| *st == model::SectionStatus::Failed);
            let mut r = NodeResult::ok(name, s);
            if partial || !l.problems.is_empty() {
                r.outcome = Outcome::Partial;
            }
            if !l.problems.is_empty() {
                r.error = Some(l.problems.join("; "));
            }
            r
        }
        Err(InputError::Fleet { node, message }) => {
            NodeResult::failed(node, outcome_of(&message), message)
        }
        Err(e) => NodeResult::failed(l.label, Outcome::InvalidOutput, e.to_string()),
    }
}

/// The outcome named at the start of a fleet failure message (`unreachable in the fleet run…`).
fn outcome_of(message: &str) -> Outcome {
    const ALL: [Outcome; 13] = [
        Outcome::Ok,
        Outcome::Partial,
        Outcome::Unreachable,
        Outcome::AuthFailed,
        Outcome::HostkeyMismatch,
        Outcome::HostkeyUnknown,
        Outcome::Timeout,
        Outcome::AgentMissing,
        Outcome::AgentError,
        Outcome::SsmUndeliverable,
        Outcome::SsmFailed,
        Outcome::Truncated,
        Outcome::InvalidOutput,
    ];
    let word = message.split_whitespace().next().unwrap_or("");
    ALL.into_iter()
        .find(|o| o.as_str() == word)
        .unwrap_or(Outcome::InvalidOutput)
}

/// The background thread: first round, then re-collect on request until the TUI is gone.
fn producer(
    offline: OfflineSource,
    live: Option<Remote>,
    tx: Sender<Event>,
    requests: Receiver<Request>,
) {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = tx.send(Event::Message(format!(
                "cannot start the async runtime: {e}"
            )));
            return;
        }
    };
    let round = |live: &mut Option<LiveFleet>, only: Option<&str>| {
        if !offline.is_empty() {
            for r in offline.load() {
                if only.is_none_or(|n| n == r.name) {
                    let name = r.name.clone();
                    send_node(&tx, NodeUpdate::Started { name });
                    send_node(&tx, NodeUpdate::Finished(Box::new(r)));
                }
            }
        }
        if let Some(l) = live.as_mut() {
            rt.block_on(l.round(only, &tx));
        }
    };
    let mut live_ref = live.map(LiveFleet::new);
    round(&mut live_ref, None);
    while let Ok(first) = requests.recv() {
        // Coalesce what queued up during the last round.
        let mut reqs = vec![first];
        reqs.extend(requests.try_iter());
        if reqs.contains(&Request::RecollectAll) {
            round(&mut live_ref, None);
            continue;
        }
        let mut done = std::collections::HashSet::new();
        for r in reqs {
            if let Request::Recollect(name) = r {
                if done.insert(name.clone()) {
                    round(&mut live_ref, Some(&name));
                }
            }
        }
    }
}

fn send_node(tx: &Sender<Event>, u: NodeUpdate) {
    let _ = tx.send(Event::Node(u));
}

/// Live targets through the streaming fleet runner: each node is shown as soon as its event
/// arrives; targets are resolved once (EC2 discovery again on every round, see [`Remote`]).
struct LiveFleet {
    remote: Remote,
}

impl LiveFleet {
    fn new(remote: Remote) -> Self {
        LiveFleet { remote }
    }

    async fn round(&mut self, only: Option<&str>, tx: &Sender<Event>) {
        let targets = match self.remote.targets().await {
            Ok(t) => t,
            Err(e) => {
                let _ = tx.send(Event::Message(format!("finding the targets: {e:#}")));
                return;
            }
        };
        let targets: Vec<fleet::targets::Target> = targets
            .into_iter()
            .filter(|t| only.is_none_or(|n| t.name == n))
            .collect();
        let total = targets.len();
        let names: Vec<String> = targets.iter().map(|t| t.name.clone()).collect();
        let ran = targets.clone();
        let _ = tx.send(Event::Progress { done: 0, total });
        let mut run = match self.remote.start(targets).await {
            Ok((run, _)) => run,
            Err(e) => {
                for name in names {
                    send_node(
                        tx,
                        NodeUpdate::Finished(Box::new(NodeResult::failed(
                            name,
                            Outcome::Unreachable,
                            format!("{e:#}"),
                        ))),
                    );
                }
                return;
            }
        };
        let mut done = 0;
        while let Some(ev) = run.next_event().await {
            match ev {
                FleetEvent::Started { name, .. } => send_node(tx, NodeUpdate::Started { name }),
                FleetEvent::Finished {
                    index,
                    outcome: o,
                    snapshot,
                    ..
                } => {
                    let r = NodeResult {
                        name: names.get(index).cloned().unwrap_or_else(|| o.name.clone()),
                        outcome: o.outcome,
                        error: o.error.clone().or_else(|| {
                            (!o.failed_sections.is_empty()).then(|| o.failed_sections.join("; "))
                        }),
                        snapshot: snapshot.map(|s| *s),
                        report: None,
                    };
                    send_node(tx, NodeUpdate::Finished(Box::new(r)));
                    done += 1;
                    let _ = tx.send(Event::Progress { done, total });
                }
            }
        }
        self.changes(&ran, tx).await;
    }

    /// The Changes tab: each node daemon's change log of the last [`CHANGES_WINDOW`]
    /// (`node-agent api /v1/changes`), or "no daemon on this node".
    async fn changes(&mut self, targets: &[fleet::targets::Target], tx: &Sender<Event>) {
        let since = jiff::Timestamp::now()
            .checked_sub(CHANGES_WINDOW)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let Some(twin) = self.remote.raw_twin(changes::api_args(since)) else {
            return;
        };
        let Ok((mut run, _)) = twin.start(targets.to_vec()).await else {
            return;
        };
        let since = since.round(jiff::Unit::Second).unwrap_or(since).to_string();
        while let Some(ev) = run.next_event().await {
            if let FleetEvent::Finished {
                index,
                outcome,
                raw,
                ..
            } = ev
            {
                let name = targets
                    .get(index)
                    .map(|t| t.name.clone())
                    .unwrap_or_else(|| outcome.name.clone());
                let (n, list) = changes::node_changes(&name, &outcome, raw.as_deref());
                let log = match n.status {
                    changes::NodeStatus::Ok => ChangeLog::Changes {
                        since: since.clone(),
                        changes: list,
                    },
                    changes::NodeStatus::NoDaemon => ChangeLog::NoDaemon,
                    changes::NodeStatus::Failed => {
                        ChangeLog::Failed(n.error.unwrap_or_else(|| n.outcome.clone()))
                    }
                };
                send_node(tx, NodeUpdate::Changes { name, log });
            }
        }
    }
}
