//! `diag changes TARGETS|--local --since 1h`: the change log of every node's `node-agent
//! serve`, merged by time.
//!
//! Each node runs `node-agent api '/v1/changes?since=RFC3339'` over the same SSH/SSM
//! transports as every other command (fixed argv, quoted by `fleet`); `--local` runs it on
//! this machine. A node without a daemon (`node-agent api` exits 3: nothing listens on the
//! socket) is reported as such, not as a failure. Nodes are reported on stderr as they
//! arrive; stdout gets the merged log once every node answered.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use fleet::{FleetEvent, RawOutput};
use model::diff::Change;
use model::Outcome;
use serde::{Deserialize, Serialize};

use crate::cli::{Format, TargetArgs};
use crate::render::{md_inline, md_table, safe};

use super::remote::{runtime, Remote};
use super::{emit, Out, EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_OK};

/// `node-agent api`'s exit status when no daemon listens on its socket.
pub const AGENT_EXIT_NO_DAEMON: u32 = 3;

pub const CHANGES_HELP: &str = "\
Each node's `node-agent serve` keeps a change log (iptables AWS-*/KUBE-POSTROUTING rules and
chains, ip rules, routes, links, addresses, CNI env/version, ipamd restarts, sysctls,
conntrack pressure, new CNI log error classes), diffed by content. This asks every node's
daemon for its changes since --since (`node-agent api /v1/changes?since=…` over SSH/SSM, or
on this machine with --local) and prints them merged by time. Nodes are reported on stderr
as they answer; a node without a daemon says so and is not an error.

Examples:
  diag changes --hosts nodes.txt --since 1h
  diag changes --ec2-cluster prod --since 2026-12-01T14:00:00Z -o json
  diag changes --local --since 30m

Exit codes: 0 every node answered (with or without a daemon), 1 some node could not be
reached or its daemon failed, 2 bad arguments or no node answered.";

#[derive(Debug, Args)]
pub struct ChangesArgs {
    /// Ask this machine's daemon (through `node-agent api` on its socket).
    #[arg(long)]
    pub local: bool,

    /// How far back: a duration (`90s`, `30m`, `1h`, `2d`) before now, or an RFC 3339 time.
    #[arg(long, default_value = "1h", value_name = "DUR|TIME")]
    pub since: String,

    /// No progress lines on stderr.
    #[arg(long)]
    pub no_progress: bool,

    #[command(flatten, next_help_heading = "Remote targets")]
    pub targets: TargetArgs,
}

/// How one node answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeStatus {
    /// The daemon answered (perhaps with no changes).
    Ok,
    /// Nothing listens on the daemon socket.
    NoDaemon,
    /// Unreachable, the agent is missing, or the daemon answered an error.
    Failed,
}

/// One node of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeChanges {
    pub node: String,
    pub status: NodeStatus,
    /// `ok`, `unreachable`, … of the transport (fleet.json's outcome).
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub changes: usize,
}

/// One change of the merged log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeChange {
    pub node: String,
    #[serde(flatten)]
    pub change: Change,
}

/// What `diag changes -o json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangesReport {
    pub since: String,
    pub exit_code: i32,
    pub nodes: Vec<NodeChanges>,
    /// Every node's changes, oldest first (ties by node name).
    pub changes: Vec<NodeChange>,
}

/// The daemon's `/v1/changes` answer.
#[derive(Debug, Deserialize)]
struct Answer {
    changes: Vec<Change>,
}

/// `--since` as an RFC 3339 UTC time: a duration before `now`, or a time as given.
pub fn since_time(arg: &str, now: jiff::Timestamp) -> anyhow::Result<jiff::Timestamp> {
    if let Ok(t) = arg.trim().parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    let d = crate::cli::parse_duration(arg)
        .map_err(|e| anyhow::anyhow!("--since {arg:?}: neither an RFC 3339 time nor {e}"))?;
    let d = jiff::SignedDuration::try_from(d).context("--since is too long")?;
    now.checked_sub(d)
        .context("--since reaches before year -9999")
}

/// The agent arguments that ask for the change log since `since`.
pub fn api_args(since: jiff::Timestamp) -> Vec<String> {
    vec![
        "api".to_string(),
        format!("/v1/changes?since={}", rfc3339(since)),
    ]
}

fn rfc3339(t: jiff::Timestamp) -> String {
    // Whole seconds, `Z`: nothing in it needs escaping in a query string.
    t.round(jiff::Unit::Second)
        .unwrap_or(t)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Each node's newest `cni-env`/`cni-version` change (None: none in its log), or why the
/// node's log could not be read; by node name. For `diag check --since-change`.
pub fn newest_cni_changes(
    targets: &TargetArgs,
) -> anyhow::Result<std::collections::BTreeMap<String, Result<Option<Change>, String>>> {
    use model::diff::ChangeKind;
    let remote = Remote::from_args_raw(targets, api_args(jiff::Timestamp::UNIX_EPOCH))?
        .context("--since-change reads the daemons of remote targets: give --hosts, --ssh-config with --host, --ec2-cluster or --instance-ids")?;
    let nodes = runtime()?.block_on(remote_nodes(remote, false))?;
    Ok(nodes
        .into_iter()
        .map(|(n, list)| {
            let v = match n.status {
                NodeStatus::Ok => Ok(list
                    .into_iter()
                    .filter(|c| matches!(c.kind, ChangeKind::CniEnv | ChangeKind::CniVersion))
                    .max_by_key(|c| c.at.parse::<jiff::Timestamp>().ok())),
                NodeStatus::NoDaemon => Err(
                    "--since-change needs node-agent serve on the node: no daemon on this node"
                        .to_string(),
                ),
                NodeStatus::Failed => Err(format!(
                    "--since-change could not read the daemon's change log: {}",
                    n.error.as_deref().unwrap_or("failed")
                )),
            };
            (n.node, v)
        })
        .collect())
}

/// Classify one node's raw `node-agent api` run.
pub fn node_changes(
    name: &str,
    outcome: &model::NodeOutcome,
    raw: Option<&RawOutput>,
) -> (NodeChanges, Vec<Change>) {
    let mk = |status, error: Option<String>, n| NodeChanges {
        node: name.to_string(),
        status,
        outcome: outcome.outcome.to_string(),
        error,
        changes: n,
    };
    let Some(raw) = raw else {
        let why = outcome
            .error
            .clone()
            .unwrap_or_else(|| format!("{}", outcome.outcome));
        return (mk(NodeStatus::Failed, Some(why), 0), Vec::new());
    };
    match raw.exit_status {
        Some(0) => match serde_json::from_str::<Answer>(&raw.stdout) {
            Ok(a) => {
                let n = a.changes.len();
                (mk(NodeStatus::Ok, None, n), a.changes)
            }
            Err(e) => (
                mk(
                    NodeStatus::Failed,
                    Some(format!("the daemon's answer is not a change log: {e}")),
                    0,
                ),
                Vec::new(),
            ),
        },
        Some(AGENT_EXIT_NO_DAEMON) => (
            mk(
                NodeStatus::NoDaemon,
                Some(format!(
                    "no daemon on this node ({})",
                    first_line(&raw.stderr)
                )),
                0,
            ),
            Vec::new(),
        ),
        code => {
            let mut why = format!(
                "node-agent api exited {}",
                code.map_or("?".to_string(), |c| c.to_string())
            );
            let line = first_line(&raw.stderr);
            if !line.is_empty() {
                why.push_str(": ");
                why.push_str(line);
            }
            if !raw.stdout.trim().is_empty() {
                why.push_str(&format!(" ({})", first_line(&raw.stdout)));
            }
            (mk(NodeStatus::Failed, Some(why), 0), Vec::new())
        }
    }
}

fn first_line(s: &str) -> &str {
    let l = s.trim().lines().next().unwrap_or("").trim();
    l.strip_prefix("node-agent: ").unwrap_or(l)
}

/// Merge, sort and compute the exit code.
pub fn build(since: String, per_node: Vec<(NodeChanges, Vec<Change>)>) -> ChangesReport {
    let mut nodes = Vec::new();
    let mut changes = Vec::new();
    for (n, cs) in per_node {
        changes.extend(cs.into_iter().map(|c| NodeChange {
            node: n.node.clone(),
            change: c,
        }));
        nodes.push(n);
    }
    changes.sort_by(|a, b| {
        let ta = a.change.at.parse::<jiff::Timestamp>().ok();
        let tb = b.change.at.parse::<jiff::Timestamp>().ok();
        ta.cmp(&tb).then_with(|| a.node.cmp(&b.node))
    });
    let answered = nodes
        .iter()
        .filter(|n| n.status != NodeStatus::Failed)
        .count();
    let failed = nodes.len() - answered;
    let exit_code = if answered == 0 {
        EXIT_BAD_INPUT
    } else if failed > 0 {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    };
    ChangesReport {
        since,
        exit_code,
        nodes,
        changes,
    }
}

pub fn run(args: ChangesArgs, out: Out) -> anyhow::Result<i32> {
    if !args.local && !args.targets.has_targets() {
        anyhow::bail!(
            "nothing to ask: give --local or remote targets (--hosts, --ssh-config with --host, \
             --ec2-cluster, --instance-ids)"
        );
    }
    let since = since_time(&args.since, jiff::Timestamp::now())?;
    let rt = runtime()?;
    let progress = !out.quiet && !args.no_progress;
    let mut per_node = Vec::new();
    if args.local {
        let r = rt.block_on(local(&args.targets, since));
        report_node(progress, &r.0);
        per_node.push(r);
    }
    if let Some(remote) = Remote::from_args_raw(&args.targets, api_args(since))? {
        per_node.extend(rt.block_on(remote_nodes(remote, progress))?);
    }
    let report = build(rfc3339(since), per_node);
    let text = match out.format {
        Format::Text => text(&report, out),
        Format::Json => crate::render::json(&report)?,
        Format::Markdown => markdown(&report),
    };
    emit(&text)?;
    Ok(report.exit_code)
}

fn report_node(progress: bool, n: &NodeChanges) {
    if !progress {
        return;
    }
    let what = match n.status {
        NodeStatus::Ok => format!("{} change(s)", n.changes),
        NodeStatus::NoDaemon => "no daemon on this node".to_string(),
        NodeStatus::Failed => format!("failed: {}", n.error.as_deref().unwrap_or("?")),
    };
    eprintln!(
        "diag: {}: {}",
        model::sanitize::terminal(&n.node),
        model::sanitize::terminal(&what)
    );
}

/// Every remote node, reported on stderr as it finishes; results in target order.
pub async fn remote_nodes(
    mut remote: Remote,
    progress: bool,
) -> anyhow::Result<Vec<(NodeChanges, Vec<Change>)>> {
    let targets = remote.targets().await?;
    let n = targets.len();
    let (mut run, _) = remote.start(targets).await?;
    let mut slots: Vec<Option<(NodeChanges, Vec<Change>)>> = vec![None; n];
    while let Some(ev) = run.next_event().await {
        if let FleetEvent::Finished {
            index,
            outcome,
            raw,
            ..
        } = ev
        {
            let r = node_changes(&outcome.name, &outcome, raw.as_deref());
            report_node(progress, &r.0);
            if let Some(s) = slots.get_mut(index) {
                *s = Some(r);
            }
        }
    }
    Ok(slots.into_iter().flatten().collect())
}

/// `node-agent api` on this machine.
async fn local(targets: &TargetArgs, since: jiff::Timestamp) -> (NodeChanges, Vec<Change>) {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "local".to_string());
    let explicit = targets.agent_path.as_ref().map(std::path::PathBuf::from);
    let outcome = |o: Outcome, error: Option<String>| model::NodeOutcome {
        name: name.clone(),
        target: "local".to_string(),
        outcome: o,
        error,
        stderr: None,
        connect_ms: 0,
        total_ms: 0,
        snapshot: None,
        failed_sections: Vec::new(),
    };
    let agent = match crate::input::local::find_agent(explicit.as_deref()) {
        Ok(a) => a,
        Err(m) => return node_changes(&name, &outcome(Outcome::AgentMissing, Some(m)), None),
    };
    let run = tokio::process::Command::new(&agent)
        .args(api_args(since))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(30), run).await {
        Ok(Ok(o)) => {
            let raw = RawOutput {
                exit_status: o.status.code().and_then(|c| u32::try_from(c).ok()),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            };
            node_changes(&name, &outcome(Outcome::Ok, None), Some(&raw))
        }
        Ok(Err(e)) => node_changes(
            &name,
            &outcome(
                Outcome::AgentError,
                Some(format!("cannot run {}: {e}", agent.display())),
            ),
            None,
        ),
        Err(_) => node_changes(
            &name,
            &outcome(
                Outcome::Timeout,
                Some(format!("{} api did not answer within 30s", agent.display())),
            ),
            None,
        ),
    }
}

fn header(r: &ChangesReport) -> String {
    let count = |s| r.nodes.iter().filter(|n| n.status == s).count();
    format!(
        "Changes since {} on {} node(s): {} with a daemon, {} without, {} failed; {} change(s)",
        r.since,
        r.nodes.len(),
        count(NodeStatus::Ok),
        count(NodeStatus::NoDaemon),
        count(NodeStatus::Failed),
        r.changes.len()
    )
}

/// `at  node  kind  subject: ±content`, oldest first; then the nodes without a daemon and
/// the failures.
pub fn text(r: &ChangesReport, out: Out) -> String {
    let st = out.style;
    let mut s = String::new();
    s.push_str(&st.bold(&header(r)));
    s.push('\n');
    let w = r.changes.iter().map(|c| c.node.len()).max().unwrap_or(0);
    let k = r
        .changes
        .iter()
        .map(|c| c.change.kind.as_str().len())
        .max()
        .unwrap_or(0);
    for c in &r.changes {
        s.push_str(&format!(
            "{}  {:w$}  {:k$}  {}\n",
            c.change.at,
            c.node,
            c.change.kind.as_str(),
            c.change.describe(),
        ));
    }
    for n in &r.nodes {
        match n.status {
            NodeStatus::Ok => {}
            NodeStatus::NoDaemon => s.push_str(&format!("{}: no daemon on this node\n", n.node)),
            NodeStatus::Failed => s.push_str(&format!(
                "{}: {} ({})\n",
                n.node,
                n.error.as_deref().unwrap_or("failed"),
                n.outcome
            )),
        }
    }
    safe(s, st)
}

pub fn markdown(r: &ChangesReport) -> String {
    let mut s = format!("## {}\n\n", header(r));
    if !r.changes.is_empty() {
        let rows: Vec<Vec<String>> = r
            .changes
            .iter()
            .map(|c| {
                vec![
                    c.change.at.clone(),
                    md_inline(&c.node),
                    c.change.kind.as_str().to_string(),
                    md_inline(&c.change.describe()),
                ]
            })
            .collect();
        s.push_str(&md_table(&["at", "node", "kind", "change"], &rows));
        s.push('\n');
    }
    let others: Vec<Vec<String>> = r
        .nodes
        .iter()
        .filter(|n| n.status != NodeStatus::Ok)
        .map(|n| {
            vec![
                md_inline(&n.node),
                match n.status {
                    NodeStatus::NoDaemon => "no daemon".to_string(),
                    _ => "failed".to_string(),
                },
                md_inline(n.error.as_deref().unwrap_or("")),
            ]
        })
        .collect();
    if !others.is_empty() {
        s.push_str(&md_table(&["node", "status", "why"], &others));
        s.push('\n');
    }
    model::sanitize::rendered(&s, &[])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use model::diff::{ChangeKind, ChangeOp};

    fn outcome(name: &str, o: Outcome) -> model::NodeOutcome {
        model::NodeOutcome {
            name: name.into(),
            target: name.into(),
            outcome: o,
            error: None,
            stderr: None,
            connect_ms: 0,
            total_ms: 0,
            snapshot: None,
            failed_sections: vec![],
        }
    }

    fn raw(code: u32, stdout: &str, stderr: &str) -> RawOutput {
        RawOutput {
            exit_status: Some(code),
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn since_is_a_duration_or_a_time() {
        let now: jiff::Timestamp = "2026-12-02T01:00:00Z".parse().unwrap();
        assert_eq!(
            rfc3339(since_time("1h", now).unwrap()),
            "2026-12-02T00:00:00Z"
        );
        assert_eq!(
            rfc3339(since_time("2026-12-01T14:02:11Z", now).unwrap()),
            "2026-12-01T14:02:11Z"
        );
        assert!(since_time("yesterday", now).is_err());
        assert_eq!(
            api_args(now),
            ["api", "/v1/changes?since=2026-12-02T01:00:00Z"]
        );
    }

    #[test]
    fn nodes_are_classified_and_merged_by_time() {
        let a = r#"{"since":"x","changes":[
            {"at":"2026-12-02T00:00:30Z","kind":"iptables-rule","op":"removed","subject":"nat/AWS-SNAT-CHAIN-0","content":"-A AWS-SNAT-CHAIN-0 -d 100.64.0.0/16 -j RETURN"},
            {"at":"2026-12-02T00:02:00Z","kind":"cni-env","op":"changed","subject":"AWS_VPC_K8S_CNI_EXTERNALSNAT","content":"false -> true"}]}"#;
        let b = r#"{"since":"x","changes":[
            {"at":"2026-12-02T00:01:00Z","kind":"route","op":"added","subject":"table 2","content":"default via 10.0.0.1 dev eth1"}]}"#;
        let per = vec![
            node_changes("a", &outcome("a", Outcome::Ok), Some(&raw(0, a, ""))),
            node_changes("b", &outcome("b", Outcome::Ok), Some(&raw(0, b, ""))),
            node_changes(
                "c",
                &outcome("c", Outcome::AgentError),
                Some(&raw(
                    3,
                    "",
                    "node-agent: connecting to /run/eks-diag/agent.sock: No such file or directory",
                )),
            ),
        ];
        let r = build("2026-12-02T00:00:00Z".into(), per);
        assert_eq!(
            r.exit_code, EXIT_OK,
            "a node without a daemon is no failure"
        );
        let order: Vec<(&str, ChangeKind)> = r
            .changes
            .iter()
            .map(|c| (c.node.as_str(), c.change.kind))
            .collect();
        assert_eq!(
            order,
            [
                ("a", ChangeKind::IptablesRule),
                ("b", ChangeKind::Route),
                ("a", ChangeKind::CniEnv)
            ]
        );
        assert_eq!(r.changes[0].change.op, ChangeOp::Removed);
        assert_eq!(r.nodes[2].status, NodeStatus::NoDaemon);
        let out = Out {
            format: Format::Text,
            style: crate::render::Style { color: false },
            quiet: false,
        };
        let t = text(&r, out);
        assert!(
            t.contains("2026-12-02T00:00:30Z  a  iptables-rule  nat/AWS-SNAT-CHAIN-0: --A AWS-SNAT-CHAIN-0 -d 100.64.0.0/16 -j RETURN\n"),
            "{t}"
        );
        assert!(t.contains("c: no daemon on this node"), "{t}");
        assert!(markdown(&r).contains("| no daemon |"));
        let j: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(j["changes"][1]["node"], "b");
        assert_eq!(j["changes"][1]["content"], "default via 10.0.0.1 dev eth1");
    }

    #[test]
    fn unreachable_and_broken_daemons_fail() {
        let mut o = outcome("d", Outcome::Unreachable);
        o.error = Some("connection refused".into());
        let per = vec![
            node_changes("d", &o, None),
            node_changes(
                "e",
                &outcome("e", Outcome::AgentError),
                Some(&raw(1, "", "node-agent: GET /v1/changes: HTTP 400")),
            ),
            node_changes("f", &outcome("f", Outcome::Ok), Some(&raw(0, "nope", ""))),
        ];
        let r = build("s".into(), per);
        assert!(r.nodes.iter().all(|n| n.status == NodeStatus::Failed));
        assert_eq!(r.exit_code, EXIT_BAD_INPUT);
        assert_eq!(r.nodes[0].error.as_deref(), Some("connection refused"));
        assert!(r.nodes[1]
            .error
            .as_deref()
            .unwrap()
            .contains("exited 1: GET /v1/changes: HTTP 400"));
    }
}
