//! The fleet runner: one [`Transport`] trait (SSH here, SSM in [`crate::ssm`]) and ONE
//! runner, [`run`], that yields a stream of [`FleetEvent`]s — a node started, a node finished
//! with its [`NodeOutcome`] and snapshot — as they happen, so a caller can write or show each
//! snapshot as it arrives and hold none of the others.
//!
//! Also the SSH collection of one node and the classification of what an agent printed into
//! exactly one [`Outcome`] (shared by SSH and SSM).

use std::future::Future;
use std::io::Read;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::StreamExt;
use model::{NodeOutcome, Outcome, Snapshot};
use sha2::Digest;
use tokio::sync::mpsc;

pub use crate::outcome::{failed_sections, Classified};
use crate::quote::shell_join;
use crate::ssh::{ExecOutput, SshClient, SshError};
use crate::targets::Target;

/// Default path of the agent on the nodes.
pub const DEFAULT_AGENT_PATH: &str = "/usr/local/bin/node-agent";
/// Grace the remote `timeout` gives the command after TERM before KILL.
const KILL_AFTER_SECS: u64 = 3;
/// Extra time the client waits beyond the remote timeout before closing the channel itself.
const CLIENT_GRACE: Duration = Duration::from_secs(3);
/// Longest stderr excerpt kept in a node outcome.
const STDERR_EXCERPT: usize = 2000;

/// What runs on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentMode {
    /// `<path> collect` with the agent installed on the node.
    Installed { path: String },
    /// Upload this local agent binary, verify its sha256 on the node, run it, remove it.
    Push { local: PathBuf },
    /// Standard commands in one script; the snapshot is built here with the parsers.
    Agentless,
}

/// How to run the collection.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub mode: AgentMode,
    /// Prefix with `sudo -n` when the login user is not root.
    pub sudo: bool,
    /// Bound on the remote command; it is killed on the node when exceeded.
    pub command_timeout: Duration,
    /// Nodes in flight at once.
    pub concurrency: usize,
    /// The installed agent's arguments: `collect` by default; `diag changes` runs
    /// `api /v1/changes?since=…`, `diag analyze` `collect --from-daemon`.
    pub agent_args: Vec<String>,
    /// Hand the agent's stdout back as it is ([`RawOutput`] in [`FleetEvent::Finished`])
    /// instead of parsing a snapshot (the daemon's API answers are not snapshots).
    pub raw_output: bool,
}

/// The default agent arguments.
pub fn default_agent_args() -> Vec<String> {
    vec!["collect".to_string()]
}

/// What a raw run of the agent printed (see [`RunOptions::raw_output`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawOutput {
    pub exit_status: Option<u32>,
    pub stdout: String,
    pub stderr: String,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            mode: AgentMode::Installed {
                path: DEFAULT_AGENT_PATH.to_string(),
            },
            sudo: false,
            command_timeout: Duration::from_secs(60),
            concurrency: 64,
            agent_args: default_agent_args(),
            raw_output: false,
        }
    }
}

/// One node's result.
pub type NodeResult = (NodeOutcome, Option<Snapshot>);

/// `sh -c` script that runs `"$@"` under `timeout` when the node has it.
const WITH_TIMEOUT: &str = "t=$1; shift; if command -v timeout >/dev/null 2>&1; then exec timeout -k KILL \"$t\" \"$@\"; else exec \"$@\"; fi";

/// Script for `--push-agent`: `$1` expected sha256, `$2` timeout seconds; the binary on stdin.
const PUSH_SCRIPT: &str = r#"umask 077
d=$(mktemp -d "${TMPDIR:-/tmp}/eks-diag.XXXXXXXX") || { echo "eks-diag: mktemp failed" >&2; exit 70; }
trap 'rm -rf "$d"' EXIT
trap 'exit 124' HUP INT TERM
cat > "$d/node-agent" || { echo "eks-diag: writing the agent to $d failed" >&2; exit 71; }
s=$(sha256sum "$d/node-agent" | cut -d' ' -f1)
if [ "$s" != "$1" ]; then echo "eks-diag: uploaded agent sha256 $s does not match $1" >&2; exit 65; fi
chmod 700 "$d/node-agent"
if command -v timeout >/dev/null 2>&1; then timeout -k KILL "$2" "$d/node-agent" collect; else "$d/node-agent" collect; fi
"#;

fn sudo_prefix(sudo: bool, user: &str) -> Vec<String> {
    if sudo && user != "root" {
        vec!["sudo".into(), "-n".into()]
    } else {
        Vec::new()
    }
}

fn timeout_secs(d: Duration) -> String {
    d.as_secs().max(1).to_string()
}

/// The exec string for `<agent> collect`, as fixed argv quoted for the remote shell.
pub fn agent_command(path: &str, sudo: bool, user: &str, timeout: Duration) -> String {
    agent_command_with(path, &default_agent_args(), sudo, user, timeout)
}

/// The exec string for `<agent> ARGS...`, as fixed argv quoted for the remote shell.
pub fn agent_command_with(
    path: &str,
    args: &[String],
    sudo: bool,
    user: &str,
    timeout: Duration,
) -> String {
    let mut argv = sudo_prefix(sudo, user);
    let script = WITH_TIMEOUT.replace("KILL", &KILL_AFTER_SECS.to_string());
    argv.extend([
        "sh".to_string(),
        "-c".to_string(),
        script,
        "sh".to_string(),
        timeout_secs(timeout),
        path.to_string(),
    ]);
    argv.extend(args.iter().cloned());
    shell_join(&argv)
}

/// The exec string for `--push-agent`; the binary goes on stdin.
pub fn push_command(sha256_hex: &str, sudo: bool, user: &str, timeout: Duration) -> String {
    let mut argv = sudo_prefix(sudo, user);
    argv.extend([
        "sh".to_string(),
        "-c".to_string(),
        PUSH_SCRIPT.replace("KILL", &KILL_AFTER_SECS.to_string()),
        "sh".to_string(),
        sha256_hex.to_string(),
        timeout_secs(timeout),
    ]);
    shell_join(&argv)
}

/// An agent binary read once and shared by every node.
#[derive(Debug, Clone)]
pub struct AgentBinary {
    pub bytes: Arc<Vec<u8>>,
    pub sha256: String,
}

impl AgentBinary {
    pub fn read(path: &std::path::Path) -> std::io::Result<AgentBinary> {
        let bytes = std::fs::read(path)?;
        let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
        Ok(AgentBinary {
            bytes: Arc::new(bytes),
            sha256,
        })
    }
}

fn excerpt(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let s = s.trim();
    if s.chars().count() <= STDERR_EXCERPT {
        return s.to_string();
    }
    let tail: String = s
        .chars()
        .rev()
        .take(STDERR_EXCERPT)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

/// Decodes agent stdout: plain JSON, or gzip (magic 1f 8b).
pub fn decode_stdout(stdout: &[u8]) -> Result<String, String> {
    if stdout.starts_with(&[0x1f, 0x8b]) {
        let mut s = String::new();
        flate2::read::GzDecoder::new(stdout)
            .read_to_string(&mut s)
            .map_err(|e| format!("gzip output could not be decoded: {e}"))?;
        Ok(s)
    } else {
        String::from_utf8(stdout.to_vec()).map_err(|_| "output is not UTF-8".to_string())
    }
}

/// What an agent run returned, whatever carried it (an SSH exec, an SSM invocation).
#[derive(Debug, Clone, Copy, Default)]
pub struct AgentRun<'a> {
    /// The agent's stdout (gzip or plain JSON).
    pub stdout: &'a [u8],
    pub stderr: &'a [u8],
    pub exit_status: Option<u32>,
    /// The signal that ended it, when one did.
    pub exit_signal: Option<&'a str>,
    /// The transport cut stdout at its limit.
    pub stdout_truncated: bool,
}

impl<'a> From<&'a ExecOutput> for AgentRun<'a> {
    fn from(o: &'a ExecOutput) -> Self {
        AgentRun {
            stdout: &o.stdout,
            stderr: &o.stderr,
            exit_status: o.exit_status,
            exit_signal: o.exit_signal.as_deref(),
            stdout_truncated: o.stdout_truncated,
        }
    }
}

/// Maps an SSH exec of the agent to an outcome (see [`classify_agent_run`]).
pub fn classify_agent_output(out: &ExecOutput, agent: &str) -> Classified {
    classify_agent_run(&AgentRun::from(out), agent)
}

/// The failures every agent run shares (cut output, a signal, the timeout, a missing
/// agent), or None when the agent ran to an exit status of its own. `guess_missing` also
/// takes "not found"/"no such file" on stderr naming the agent as a missing agent; a raw run
/// does not (`node-agent api` says "No such file" about a missing daemon socket).
fn classify_failure(out: &AgentRun<'_>, agent: &str, guess_missing: bool) -> Option<Classified> {
    let stderr = if out.stderr.is_empty() {
        None
    } else {
        Some(excerpt(out.stderr))
    };
    let mk = |outcome, error: String| Classified {
        outcome,
        error: Some(error),
        stderr: stderr.clone(),
        failed_sections: Vec::new(),
        snapshot: None,
    };
    if out.stdout_truncated {
        return Some(mk(
            Outcome::Truncated,
            format!(
                "agent output exceeded {} bytes and was cut",
                crate::ssh::MAX_STDOUT
            ),
        ));
    }
    let code = out.exit_status;
    let err_text = String::from_utf8_lossy(out.stderr).to_lowercase();
    if let Some(sig) = out.exit_signal {
        return Some(mk(
            Outcome::AgentError,
            format!("{agent} was killed by signal {sig}"),
        ));
    }
    if code == Some(124) || code == Some(137) {
        return Some(mk(
            Outcome::Timeout,
            format!(
                "{agent} exceeded the command timeout and was killed on the node (exit {})",
                code.unwrap_or(0)
            ),
        ));
    }
    let missing = code == Some(127)
        || (code == Some(126) && err_text.contains("no such file"))
        || (guess_missing
            && code.is_some_and(|c| c != 0)
            && out.stdout.is_empty()
            && (err_text.contains("not found") || err_text.contains("no such file"))
            && err_text.contains(&agent.to_lowercase()));
    if missing {
        return Some(mk(
            Outcome::AgentMissing,
            format!("{agent} is not installed on the node (exit {}); install it or use --push-agent / --agentless", code.map_or("?".to_string(), |c| c.to_string())),
        ));
    }
    None
}

/// Maps a raw agent run (see [`RunOptions::raw_output`]): the shared failures, else `ok`
/// with what it printed (`agent-error` with it when the exit status is not 0).
pub fn classify_raw_run(out: &AgentRun<'_>, agent: &str) -> (Classified, Option<RawOutput>) {
    if let Some(c) = classify_failure(out, agent, false) {
        return (c, None);
    }
    let raw = RawOutput {
        exit_status: out.exit_status,
        stdout: String::from_utf8_lossy(out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(out.stderr).into_owned(),
    };
    let (outcome, error) = match out.exit_status {
        Some(0) => (Outcome::Ok, None),
        Some(c) => (Outcome::AgentError, Some(format!("{agent} exited {c}"))),
        None => (
            Outcome::AgentError,
            Some(format!("{agent} ended without an exit status")),
        ),
    };
    let c = Classified {
        outcome,
        error,
        stderr: (!out.stderr.is_empty()).then(|| excerpt(out.stderr)),
        failed_sections: Vec::new(),
        snapshot: None,
    };
    (c, Some(raw))
}

/// Maps an agent's exit status, stdout and stderr to an outcome.
pub fn classify_agent_run(out: &AgentRun<'_>, agent: &str) -> Classified {
    if let Some(c) = classify_failure(out, agent, true) {
        return c;
    }
    let stderr = if out.stderr.is_empty() {
        None
    } else {
        Some(excerpt(out.stderr))
    };
    let mk = |outcome, error: String| Classified {
        outcome,
        error: Some(error),
        stderr: stderr.clone(),
        failed_sections: Vec::new(),
        snapshot: None,
    };
    let code = out.exit_status;
    if !out.stdout.is_empty() {
        match decode_stdout(out.stdout)
            .and_then(|t| Snapshot::from_json(&t).map_err(|e| e.to_string()))
        {
            Ok(snap) => {
                let failed = failed_sections(&snap);
                let (outcome, error) = if code != Some(0) {
                    (
                        Outcome::Partial,
                        Some(format!(
                            "{agent} exited {} but printed a snapshot",
                            code.map_or("?".to_string(), |c| c.to_string())
                        )),
                    )
                } else if failed.is_empty() {
                    (Outcome::Ok, None)
                } else {
                    (
                        Outcome::Partial,
                        Some(format!("{} section(s) not ok", failed.len())),
                    )
                };
                return Classified {
                    outcome,
                    error,
                    stderr: stderr.clone(),
                    failed_sections: failed,
                    snapshot: Some(snap),
                };
            }
            Err(e) if code == Some(0) => {
                let head: String = String::from_utf8_lossy(out.stdout)
                    .chars()
                    .take(200)
                    .collect();
                return mk(
                    Outcome::InvalidOutput,
                    format!("{agent} output is not a snapshot: {e}; output starts: {head:?}"),
                );
            }
            Err(_) => {}
        }
    }
    match code {
        Some(0) => mk(
            Outcome::InvalidOutput,
            format!("{agent} exited 0 with no output"),
        ),
        Some(c) => mk(Outcome::AgentError, format!("{agent} exited {c}")),
        None => mk(
            Outcome::AgentError,
            format!("{agent} ended without an exit status"),
        ),
    }
}

fn outcome_from_ssh_error(
    t: &Target,
    e: &SshError,
    started: Instant,
    connect_ms: u64,
) -> NodeOutcome {
    NodeOutcome {
        name: t.name.clone(),
        target: t.address(),
        outcome: e.outcome(),
        error: Some(e.to_string()),
        stderr: None,
        connect_ms,
        total_ms: ms(started.elapsed()),
        snapshot: None,
        failed_sections: Vec::new(),
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Collects one node over SSH. Never fails: every problem becomes the node's outcome.
pub async fn collect_node(
    client: &SshClient,
    target: &Target,
    opts: &RunOptions,
    pushed: Option<&AgentBinary>,
) -> NodeResult {
    let (o, s, _) = run_node(client, target, opts, pushed).await;
    (o, s)
}

/// [`collect_node`], with the raw output when [`RunOptions::raw_output`] is set.
pub async fn run_node(
    client: &SshClient,
    target: &Target,
    opts: &RunOptions,
    pushed: Option<&AgentBinary>,
) -> (NodeOutcome, Option<Snapshot>, Option<RawOutput>) {
    let started = Instant::now();
    let session = match client.connect(target).await {
        Ok(s) => s,
        Err(e) => {
            return (
                outcome_from_ssh_error(target, &e, started, ms(started.elapsed())),
                None,
                None,
            )
        }
    };
    let connect_ms = ms(session.connect_time);
    let user = target
        .user
        .clone()
        .unwrap_or_else(|| client.options().default_user.clone());
    let limit = opts.command_timeout + CLIENT_GRACE;
    let (label, command, stdin) = match &opts.mode {
        AgentMode::Installed { path } => (
            path.clone(),
            agent_command_with(
                path,
                &opts.agent_args,
                opts.sudo,
                &user,
                opts.command_timeout,
            ),
            None,
        ),
        AgentMode::Push { local } => match pushed {
            Some(b) => (
                format!("pushed agent {}", local.display()),
                push_command(&b.sha256, opts.sudo, &user, opts.command_timeout),
                Some(b.bytes.clone()),
            ),
            None => {
                session.close().await;
                return (
                    NodeOutcome {
                        name: target.name.clone(),
                        target: target.address(),
                        outcome: Outcome::AgentMissing,
                        error: Some(format!("agent binary {} was not loaded", local.display())),
                        stderr: None,
                        connect_ms,
                        total_ms: ms(started.elapsed()),
                        snapshot: None,
                        failed_sections: Vec::new(),
                    },
                    None,
                    None,
                );
            }
        },
        AgentMode::Agentless => (
            "agentless script".to_string(),
            crate::agentless::remote_command(opts.sudo, &user, opts.command_timeout),
            None,
        ),
    };
    let res = session.exec(&command, stdin, limit).await;
    session.close().await;
    let out = match res {
        Ok(o) => o,
        Err(e) => {
            return (
                outcome_from_ssh_error(target, &e, started, connect_ms),
                None,
                None,
            )
        }
    };
    let (c, raw) = if opts.mode == AgentMode::Agentless {
        (crate::agentless::classify(&out, &target.name), None)
    } else if opts.raw_output {
        classify_raw_run(&AgentRun::from(&out), &label)
    } else {
        (classify_agent_output(&out, &label), None)
    };
    (
        NodeOutcome {
            name: target.name.clone(),
            target: target.address(),
            outcome: c.outcome,
            error: c.error,
            stderr: c.stderr,
            connect_ms,
            total_ms: ms(started.elapsed()),
            snapshot: None,
            failed_sections: c.failed_sections,
        },
        c.snapshot,
        raw,
    )
}

/// One event of a run. Every target gets exactly one `Finished`; `index` is its position in
/// the target list given to [`run`].
#[derive(Debug, Clone)]
pub enum FleetEvent {
    /// The transport began with this node (connecting, or its command was sent).
    Started { index: usize, name: String },
    /// The node is done: its outcome, and its snapshot when one was collected.
    Finished {
        index: usize,
        outcome: NodeOutcome,
        snapshot: Option<Box<Snapshot>>,
        /// What the agent printed, in a raw run ([`RunOptions::raw_output`]).
        raw: Option<Box<RawOutput>>,
    },
}

/// Where a [`Transport`] reports its nodes. The channel is bounded: a slow consumer (a disk,
/// a terminal) holds the transport back instead of letting finished snapshots pile up.
#[derive(Debug, Clone)]
pub struct EventSink {
    tx: mpsc::Sender<FleetEvent>,
    finished: Arc<Mutex<Vec<bool>>>,
}

impl EventSink {
    fn new(tx: mpsc::Sender<FleetEvent>, n: usize) -> EventSink {
        EventSink {
            tx,
            finished: Arc::new(Mutex::new(vec![false; n])),
        }
    }

    /// The node at `index` started.
    pub async fn started(&self, index: usize, target: &Target) {
        // A closed receiver means nobody listens any more; the run just finishes.
        let _ = self
            .tx
            .send(FleetEvent::Started {
                index,
                name: target.name.clone(),
            })
            .await;
    }

    /// The node at `index` finished. A second report for the same node is dropped.
    pub async fn finished(&self, index: usize, outcome: NodeOutcome, snapshot: Option<Snapshot>) {
        self.finished_with(index, outcome, snapshot, None).await
    }

    /// [`EventSink::finished`] with the raw output of a raw run.
    pub async fn finished_with(
        &self,
        index: usize,
        outcome: NodeOutcome,
        snapshot: Option<Snapshot>,
        raw: Option<RawOutput>,
    ) {
        let first = match self.finished.lock() {
            Ok(mut f) => match f.get_mut(index) {
                Some(seen) if !*seen => {
                    *seen = true;
                    true
                }
                _ => false,
            },
            Err(_) => false,
        };
        if first {
            let _ = self
                .tx
                .send(FleetEvent::Finished {
                    index,
                    outcome,
                    snapshot: snapshot.map(Box::new),
                    raw: raw.map(Box::new),
                })
                .await;
        }
    }

    fn unfinished(&self) -> Vec<usize> {
        match self.finished.lock() {
            Ok(f) => f
                .iter()
                .enumerate()
                .filter(|(_, done)| !**done)
                .map(|(i, _)| i)
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// A way to reach nodes and collect them. Implementations report every target to the sink
/// (exactly one `finished` each; [`run`] fills in any they miss).
pub trait Transport: Send + Sync + 'static {
    /// `ssh` / `ssm`, as written in fleet.json.
    fn name(&self) -> &'static str;
    /// Collects every target, reporting each as it starts and finishes.
    fn collect(&self, targets: &[Target], sink: &EventSink) -> impl Future<Output = ()> + Send;
}

/// Events buffered between the transport and the consumer.
const EVENT_BUFFER: usize = 16;

/// A running collection: a [`futures::Stream`] of [`FleetEvent`]s that ends after the last
/// node finished.
#[derive(Debug)]
pub struct FleetRun {
    rx: mpsc::Receiver<FleetEvent>,
    targets: usize,
}

impl FleetRun {
    /// Number of targets (= number of `Finished` events the run yields).
    pub fn len(&self) -> usize {
        self.targets
    }

    pub fn is_empty(&self) -> bool {
        self.targets == 0
    }

    /// The next event, or None when the run is over.
    pub async fn next_event(&mut self) -> Option<FleetEvent> {
        self.rx.recv().await
    }

    /// Drains the run: every node's result, in target order.
    pub async fn collect_all(self) -> Vec<NodeResult> {
        self.collect_all_with(|_| {}).await
    }

    /// [`FleetRun::collect_all`], showing each event to `on_event` first (a progress bar).
    pub async fn collect_all_with(
        mut self,
        mut on_event: impl FnMut(&FleetEvent),
    ) -> Vec<NodeResult> {
        let mut out: Vec<Option<NodeResult>> = vec![None; self.targets];
        while let Some(ev) = self.rx.recv().await {
            on_event(&ev);
            if let FleetEvent::Finished {
                index,
                outcome,
                snapshot,
                ..
            } = ev
            {
                if let Some(slot) = out.get_mut(index) {
                    *slot = Some((outcome, snapshot.map(|s| *s)));
                }
            }
        }
        out.into_iter().flatten().collect()
    }
}

impl futures::Stream for FleetRun {
    type Item = FleetEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<FleetEvent>> {
        self.rx.poll_recv(cx)
    }
}

/// Starts collecting `targets` with `transport` on the current tokio runtime and returns the
/// event stream. Must be called inside a runtime.
pub fn run<T: Transport>(transport: Arc<T>, targets: Vec<Target>) -> FleetRun {
    let (tx, rx) = mpsc::channel(EVENT_BUFFER);
    let n = targets.len();
    let sink = EventSink::new(tx, n);
    tokio::spawn(async move {
        transport.collect(&targets, &sink).await;
        // The runner's guarantee: one outcome per node, even if a transport lost one.
        for i in sink.unfinished() {
            if let Some(t) = targets.get(i) {
                let o = NodeOutcome {
                    name: t.name.clone(),
                    target: t.address(),
                    outcome: Outcome::AgentError,
                    error: Some(format!(
                        "the {} transport ended without a result for this node",
                        transport.name()
                    )),
                    stderr: None,
                    connect_ms: 0,
                    total_ms: 0,
                    snapshot: None,
                    failed_sections: Vec::new(),
                };
                sink.finished(i, o, None).await;
            }
        }
    });
    FleetRun { rx, targets: n }
}

/// SSH: at most `concurrency` nodes in flight, each connected, run and closed on its own.
#[derive(Clone)]
pub struct SshTransport {
    client: Arc<SshClient>,
    opts: RunOptions,
    pushed: Option<AgentBinary>,
}

impl SshTransport {
    /// `pushed` is the agent binary for [`AgentMode::Push`] (read once for every node).
    pub fn new(client: Arc<SshClient>, opts: RunOptions, pushed: Option<AgentBinary>) -> Self {
        SshTransport {
            client,
            opts,
            pushed,
        }
    }
}

impl Transport for SshTransport {
    fn name(&self) -> &'static str {
        "ssh"
    }

    async fn collect(&self, targets: &[Target], sink: &EventSink) {
        let conc = self.opts.concurrency.max(1);
        futures::stream::iter(targets.iter().enumerate())
            .for_each_concurrent(conc, |(i, t)| async move {
                sink.started(i, t).await;
                let (o, s, raw) = run_node(&self.client, t, &self.opts, self.pushed.as_ref()).await;
                sink.finished_with(i, o, s, raw).await;
            })
            .await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn out(code: Option<u32>, stdout: &str, stderr: &str) -> ExecOutput {
        ExecOutput {
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
            exit_status: code,
            exit_signal: None,
            stdout_truncated: false,
        }
    }

    fn snapshot_json(failed: bool) -> String {
        let mut s = Snapshot::new(model::AgentInfo {
            name: "node-agent".into(),
            version: "0".into(),
            inputs: vec![],
        });
        s.hostname = "ip-10-0-0-1".into();
        s.sysctls = model::Section::ok(model::Sysctls::default());
        if failed {
            s.iptables = model::Section::failed("iptables-nft-save: exit 1");
        }
        serde_json::to_string(&s).unwrap()
    }

    #[test]
    fn classification() {
        let a = "/usr/local/bin/node-agent";
        let c = classify_agent_output(&out(Some(0), &snapshot_json(false), ""), a);
        assert_eq!(c.outcome, Outcome::Ok);
        assert_eq!(c.snapshot.unwrap().hostname, "ip-10-0-0-1");
        let c = classify_agent_output(&out(Some(0), &snapshot_json(true), ""), a);
        assert_eq!(c.outcome, Outcome::Partial);
        assert_eq!(c.failed_sections.len(), 1);
        assert!(c.failed_sections[0].starts_with("iptables:"));
        let c = classify_agent_output(
            &out(
                Some(127),
                "",
                "sh: 1: exec: /usr/local/bin/node-agent: not found",
            ),
            a,
        );
        assert_eq!(c.outcome, Outcome::AgentMissing);
        let c = classify_agent_output(&out(Some(2), "", "boom: cannot open netlink"), a);
        assert_eq!(c.outcome, Outcome::AgentError);
        assert!(c.stderr.unwrap().contains("netlink"));
        let c = classify_agent_output(&out(Some(124), "", ""), a);
        assert_eq!(c.outcome, Outcome::Timeout);
        let c = classify_agent_output(&out(Some(0), "hello", ""), a);
        assert_eq!(c.outcome, Outcome::InvalidOutput);
        let c = classify_agent_output(&out(Some(0), "{\"schema_version\": 99}", ""), a);
        assert_eq!(c.outcome, Outcome::InvalidOutput);
        assert!(c.error.unwrap().contains("99"));
        let c = classify_agent_output(&out(Some(0), "", ""), a);
        assert_eq!(c.outcome, Outcome::InvalidOutput);
        let mut o = out(Some(0), "", "");
        o.stdout_truncated = true;
        assert_eq!(classify_agent_output(&o, a).outcome, Outcome::Truncated);
        let mut o = out(None, "", "");
        o.exit_signal = Some("KILL".into());
        assert_eq!(classify_agent_output(&o, a).outcome, Outcome::AgentError);
    }

    #[test]
    fn gzip_output_is_decoded() {
        use std::io::Write;
        let json = snapshot_json(false);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(json.as_bytes()).unwrap();
        let gz = enc.finish().unwrap();
        let o = ExecOutput {
            stdout: gz,
            exit_status: Some(0),
            ..Default::default()
        };
        assert_eq!(classify_agent_output(&o, "a").outcome, Outcome::Ok);
    }

    /// The generated commands run under a real `sh` with hostile paths and do what they say.
    #[test]
    fn agent_command_runs_in_sh() {
        let dir = tempfile::tempdir().unwrap();
        let agent = dir.path().join("agent it's $(x)");
        std::fs::write(&agent, "#!/bin/sh\necho \"args:$*\"\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
        let cmd = agent_command(
            agent.to_str().unwrap(),
            true,
            "root",
            Duration::from_secs(5),
        );
        assert!(!cmd.starts_with("sudo"), "root needs no sudo: {cmd}");
        let o = std::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&o.stdout), "args:collect\n");
        let cmd = agent_command("/nonexistent/agent", false, "u", Duration::from_secs(5));
        let o = std::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(127));
        assert!(
            agent_command("/a", true, "ec2-user", Duration::from_secs(5)).starts_with("sudo -n ")
        );
    }

    #[test]
    fn remote_timeout_kills_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let agent = dir.path().join("slow");
        std::fs::write(&agent, "#!/bin/sh\nsleep 30\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).unwrap();
        let cmd = agent_command(
            agent.to_str().unwrap(),
            false,
            "root",
            Duration::from_secs(1),
        );
        let t = Instant::now();
        let o = std::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(124));
        assert!(t.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn push_script_verifies_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let body = b"#!/bin/sh\necho pushed-ok \"$0\"\n".to_vec();
        let sha = hex::encode(sha2::Sha256::digest(&body));
        let run = |sha: &str| {
            let cmd = push_command(sha, false, "root", Duration::from_secs(5));
            let mut child = std::process::Command::new("sh")
                .arg("-c")
                .arg(&cmd)
                .env("TMPDIR", dir.path())
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&body).unwrap();
            child.wait_with_output().unwrap()
        };
        let o = run(&sha);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stdout).starts_with("pushed-ok "));
        let o = run(&"0".repeat(64));
        assert_eq!(o.status.code(), Some(65));
        assert!(String::from_utf8_lossy(&o.stderr).contains("does not match"));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "temp dir removed"
        );
    }
}
