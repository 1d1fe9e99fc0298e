//! Command-line surface for `diag collect` and remote targets of the other `diag` commands.
//!
//! Exit codes of [`run_collect`]: 0 every node ok (or partial), 1 some nodes failed,
//! 2 no node could be collected, or bad arguments / no targets.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context};
use model::{
    Evidence, EvidenceKind, Finding, FleetReport, NodeOutcome, Outcome, Severity, Snapshot,
};

use crate::runner::{AgentBinary, AgentMode, RunOptions, DEFAULT_AGENT_PATH};
use crate::ssh::{SshClient, SshOptions};
use crate::targets::{self, Target};

/// How nodes are reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// SSH for hosts/ssh_config targets, SSM when only instance ids are given.
    Auto,
    Ssh,
    Ssm,
}

/// Which nodes, and how to reach them.
#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// File with one `[user@]host[:port]` per line (`#` comments, `[v6]:port`).
    #[arg(long, value_name = "FILE", env = "DIAG_HOSTS")]
    pub hosts: Option<PathBuf>,
    /// ssh_config file whose Host blocks name the targets (with --host).
    #[arg(long, value_name = "FILE", env = "DIAG_SSH_CONFIG")]
    pub ssh_config: Option<PathBuf>,
    /// Host pattern(s) for --ssh-config (`*`, `?`, `!neg`, comma lists). Repeatable.
    #[arg(long = "host", value_name = "PATTERN")]
    pub host: Vec<String>,
    /// EKS cluster name: running EC2 instances tagged `eks:cluster-name=NAME` or
    /// `kubernetes.io/cluster/NAME`.
    #[arg(long, value_name = "NAME", env = "DIAG_EC2_CLUSTER")]
    pub ec2_cluster: Option<String>,
    /// Extra DescribeInstances filter (`tag:role=worker`, `instance-type=m5.large`). Repeatable.
    #[arg(long = "ec2-filter", value_name = "KEY=VALUE")]
    pub ec2_filter: Vec<String>,
    /// Instance ids (comma-separated or repeated).
    #[arg(long, value_name = "ID,...", value_delimiter = ',')]
    pub instance_ids: Vec<String>,
    #[arg(long, env = "AWS_REGION")]
    pub region: Option<String>,
    #[arg(long, env = "AWS_PROFILE")]
    pub profile: Option<String>,
    /// Keep only nodes whose name matches this regex.
    #[arg(long, value_name = "REGEX")]
    pub only: Option<String>,
    /// Drop nodes whose name matches this regex.
    #[arg(long, value_name = "REGEX")]
    pub exclude: Option<String>,
    #[arg(long, value_enum, default_value_t = Transport::Auto)]
    pub transport: Transport,

    /// SSH login user when the target does not name one.
    #[arg(
        short = 'l',
        long = "user",
        env = "DIAG_SSH_USER",
        default_value = "ec2-user"
    )]
    pub user: String,
    /// Private key file (repeatable). ssh-agent keys are tried too unless --no-ssh-agent.
    #[arg(short = 'i', long = "identity", value_name = "KEY")]
    pub identity: Vec<PathBuf>,
    #[arg(long)]
    pub no_ssh_agent: bool,
    /// known_hosts file (default ~/.ssh/known_hosts). Host keys are checked strictly.
    #[arg(long, value_name = "FILE", env = "DIAG_KNOWN_HOSTS")]
    pub known_hosts: Option<PathBuf>,
    /// Record unknown host keys in known_hosts. A changed key is still refused.
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Bastion `[user@]host[:port]`; one connection to it carries every node.
    #[arg(
        short = 'J',
        long = "jump",
        value_name = "USER@HOST:PORT",
        env = "DIAG_JUMP"
    )]
    pub jump: Option<String>,
    /// Seconds for TCP connect + SSH handshake + authentication.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub connect_timeout: f64,
    /// Seconds for the collection command on a node (killed there when exceeded).
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub command_timeout: f64,
    /// Nodes in flight at once.
    #[arg(short = 'j', long = "jobs", value_name = "N", default_value_t = 64)]
    pub jobs: usize,
    /// Extra connect attempts after a connection error.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub retries: u32,
    /// Run the collection through `sudo -n` (non-root login users).
    #[arg(long)]
    pub sudo: bool,

    /// Where node-agent is: its path on the nodes (default /usr/local/bin/node-agent); for
    /// `diag … --local`, this machine's binary (default: next to diag, then PATH).
    #[arg(long, value_name = "PATH", env = "DIAG_AGENT_PATH")]
    pub agent_path: Option<String>,
    /// Upload this build's agent to each node, verify its sha256, run it, remove it.
    #[arg(long, conflicts_with = "agentless")]
    pub push_agent: bool,
    /// Local agent binary for --push-agent (default: `node-agent` next to this executable).
    #[arg(long, value_name = "FILE", env = "DIAG_AGENT_BINARY")]
    pub agent_binary: Option<PathBuf>,
    /// Run standard commands instead of the agent and parse them here.
    #[arg(long)]
    pub agentless: bool,

    /// SSM: S3 bucket for full command output (needed for snapshots over 24,000 characters
    /// unless chunked retrieval is used).
    #[arg(long, value_name = "BUCKET")]
    pub s3_bucket: Option<String>,
    #[arg(long, value_name = "PREFIX", default_value = "eks-diag")]
    pub s3_prefix: String,
    /// SSM MaxConcurrency (number or percentage).
    #[arg(long, value_name = "N|P%", default_value = "50")]
    pub ssm_max_concurrency: String,
    /// SSM MaxErrors (number or percentage); the default lets every node run.
    #[arg(long, value_name = "N|P%", default_value = "100%")]
    pub ssm_max_errors: String,
}

impl Default for TargetArgs {
    fn default() -> Self {
        TargetArgs {
            hosts: None,
            ssh_config: None,
            host: Vec::new(),
            ec2_cluster: None,
            ec2_filter: Vec::new(),
            instance_ids: Vec::new(),
            region: None,
            profile: None,
            only: None,
            exclude: None,
            transport: Transport::Auto,
            user: "ec2-user".to_string(),
            identity: Vec::new(),
            no_ssh_agent: false,
            known_hosts: None,
            accept_new_host_keys: false,
            jump: None,
            connect_timeout: 10.0,
            command_timeout: 60.0,
            jobs: 64,
            retries: 2,
            sudo: false,
            agent_path: None,
            push_agent: false,
            agent_binary: None,
            agentless: false,
            s3_bucket: None,
            s3_prefix: "eks-diag".to_string(),
            ssm_max_concurrency: "50".to_string(),
            ssm_max_errors: "100%".to_string(),
        }
    }
}

/// `diag collect`.
#[derive(Debug, Clone, clap::Args)]
pub struct CollectArgs {
    #[command(flatten)]
    pub targets: TargetArgs,
    /// Directory for one snapshot per node and `fleet.json`.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "DIR",
        default_value = "diag-fleet"
    )]
    pub output: PathBuf,
    /// Never show the progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

fn secs(v: f64, what: &str) -> anyhow::Result<Duration> {
    if !(v.is_finite() && v > 0.0 && v < 1e6) {
        bail!("{what} must be a positive number of seconds, got {v}");
    }
    Ok(Duration::from_secs_f64(v))
}

impl TargetArgs {
    /// The agent's path on the nodes.
    pub fn remote_agent_path(&self) -> String {
        self.agent_path
            .clone()
            .unwrap_or_else(|| DEFAULT_AGENT_PATH.to_string())
    }

    /// True when any remote target option was given.
    pub fn has_targets(&self) -> bool {
        self.uses_ssh_sources() || self.uses_ec2_or_ids()
    }

    fn uses_ec2_or_ids(&self) -> bool {
        self.ec2_cluster.is_some() || !self.ec2_filter.is_empty() || !self.instance_ids.is_empty()
    }

    fn uses_ssh_sources(&self) -> bool {
        self.hosts.is_some() || self.ssh_config.is_some()
    }

    /// SSH or SSM, resolving `auto`.
    pub fn effective_transport(&self) -> Transport {
        match self.transport {
            Transport::Auto if !self.uses_ssh_sources() && !self.instance_ids.is_empty() => {
                Transport::Ssm
            }
            Transport::Auto => Transport::Ssh,
            t => t,
        }
    }

    fn run_options(&self) -> anyhow::Result<RunOptions> {
        let mode = if self.agentless {
            AgentMode::Agentless
        } else if self.push_agent {
            AgentMode::Push {
                local: self.local_agent()?,
            }
        } else {
            AgentMode::Installed {
                path: self.remote_agent_path(),
            }
        };
        Ok(RunOptions {
            mode,
            sudo: self.sudo,
            command_timeout: secs(self.command_timeout, "--command-timeout")?,
            concurrency: self.jobs.max(1),
        })
    }

    /// The agent binary for --push-agent.
    pub fn local_agent(&self) -> anyhow::Result<PathBuf> {
        if let Some(p) = &self.agent_binary {
            return Ok(p.clone());
        }
        let exe = std::env::current_exe().context("locating this executable")?;
        let sib = exe.with_file_name("node-agent");
        if sib.is_file() {
            return Ok(sib);
        }
        bail!(
            "--push-agent needs the agent binary: pass --agent-binary FILE (none found at {})",
            sib.display()
        )
    }

    fn ssh_options(&self) -> anyhow::Result<SshOptions> {
        let jump = match &self.jump {
            Some(j) => Some(targets::parse_jump(j).context("--jump")?),
            None => None,
        };
        Ok(SshOptions {
            known_hosts: self
                .known_hosts
                .clone()
                .unwrap_or_else(crate::ssh::default_known_hosts),
            accept_new_host_keys: self.accept_new_host_keys,
            identity_files: self.identity.clone(),
            use_agent: !self.no_ssh_agent,
            default_user: self.user.clone(),
            connect_timeout: secs(self.connect_timeout, "--connect-timeout")?,
            retries: self.retries,
            jump,
        })
    }

    /// Every selected target, after `--only`/`--exclude`.
    pub async fn resolve_targets(&self) -> anyhow::Result<Vec<Target>> {
        let mut all = Vec::new();
        if let Some(h) = &self.hosts {
            all.extend(targets::read_hosts_file(h)?);
        }
        if let Some(c) = &self.ssh_config {
            if self.host.is_empty() {
                bail!("--ssh-config needs --host PATTERN to say which Host entries to use");
            }
            all.extend(targets::SshConfig::read(c)?.targets(&self.host)?);
        } else if !self.host.is_empty() {
            bail!("--host is only used with --ssh-config");
        }
        if self.uses_ec2_or_ids() {
            if self.effective_transport() == Transport::Ssm
                && self.ec2_cluster.is_none()
                && self.ec2_filter.is_empty()
            {
                // Instance ids over SSM need no EC2 call.
                all.extend(self.instance_ids.iter().map(|id| Target {
                    name: id.clone(),
                    host: id.clone(),
                    port: 22,
                    instance_id: Some(id.clone()),
                    ..Default::default()
                }));
            } else {
                let q = crate::ec2::Ec2Query {
                    cluster: self.ec2_cluster.clone(),
                    filters: crate::ec2::parse_filters(&self.ec2_filter)?,
                    instance_ids: self.instance_ids.clone(),
                    page_size: None,
                };
                let conf = crate::ec2::aws_config(self.region.clone(), self.profile.clone()).await;
                let client = aws_sdk_ec2::Client::new(&conf);
                all.extend(crate::ec2::discover(&client, &q).await?);
            }
        }
        let only = match &self.only {
            Some(p) => Some(targets::compile_filter("--only", p)?),
            None => None,
        };
        let exclude = match &self.exclude {
            Some(p) => Some(targets::compile_filter("--exclude", p)?),
            None => None,
        };
        Ok(targets::filter_targets(
            all,
            only.as_ref(),
            exclude.as_ref(),
        ))
    }
}

/// Collects every selected node. Results are in target order; one per node.
pub async fn gather(
    args: &TargetArgs,
    progress: bool,
) -> anyhow::Result<Vec<(NodeOutcome, Option<Snapshot>)>> {
    let targets = args.resolve_targets().await?;
    if targets.is_empty() {
        bail!("no targets selected (give --hosts, --ssh-config with --host, --ec2-cluster or --instance-ids; check --only/--exclude)");
    }
    gather_targets(args, &targets, progress).await
}

/// Like [`gather`] for an explicit target list.
pub async fn gather_targets(
    args: &TargetArgs,
    targets: &[Target],
    progress: bool,
) -> anyhow::Result<Vec<(NodeOutcome, Option<Snapshot>)>> {
    let opts = args.run_options()?;
    let bar = progress_bar(progress, targets.len());
    let tick = |o: &NodeOutcome| {
        if let Some(b) = &bar {
            b.set_message(format!("{} {}", o.name, o.outcome));
            b.inc(1);
        }
    };
    let results = match args.effective_transport() {
        Transport::Ssm => {
            let conf = crate::ec2::aws_config(args.region.clone(), args.profile.clone()).await;
            let api = crate::ssm::AwsSsm::new(&conf);
            let sopts = crate::ssm::SsmOptions {
                max_concurrency: args.ssm_max_concurrency.clone(),
                max_errors: args.ssm_max_errors.clone(),
                s3_bucket: args.s3_bucket.clone(),
                s3_prefix: args.s3_prefix.clone(),
                command_timeout: opts.command_timeout,
                agent_path: args.remote_agent_path(),
                sudo: false,
                ..Default::default()
            };
            if opts.mode
                != (AgentMode::Installed {
                    path: args.remote_agent_path(),
                })
            {
                bail!("--push-agent and --agentless are SSH-only; over SSM the agent must be installed on the nodes");
            }
            crate::ssm::run_ssm(&api, targets, &sopts, &tick).await
        }
        _ => {
            let client = Arc::new(SshClient::new(args.ssh_options()?)?);
            let pushed = match &opts.mode {
                AgentMode::Push { local } => Some(
                    AgentBinary::read(local)
                        .with_context(|| format!("reading agent binary {}", local.display()))?,
                ),
                _ => None,
            };
            crate::runner::run_ssh(targets, client, &opts, pushed, tick).await
        }
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(results)
}

fn progress_bar(wanted: bool, n: usize) -> Option<indicatif::ProgressBar> {
    if !wanted || !std::io::stderr().is_terminal() {
        return None;
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
    Some(b)
}

/// A file name for a node's snapshot: safe characters only, unique within the run.
pub fn snapshot_file_name(name: &str, used: &mut std::collections::HashSet<String>) -> String {
    let mut base: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if base.is_empty() || base.starts_with('.') {
        base = format!("node{base}");
    }
    let mut cand = format!("{base}.json");
    let mut i = 2;
    while !used.insert(cand.clone()) || cand == "fleet.json" {
        cand = format!("{base}-{i}.json");
        i += 1;
    }
    cand
}

/// `N ok, M failed (by reason)`.
pub fn summary_line(nodes: &[NodeOutcome]) -> String {
    let ok = nodes.iter().filter(|n| n.outcome == Outcome::Ok).count();
    let partial = nodes
        .iter()
        .filter(|n| n.outcome == Outcome::Partial)
        .count();
    let mut failed: BTreeMap<Outcome, usize> = BTreeMap::new();
    for n in nodes.iter().filter(|n| !n.outcome.is_success()) {
        *failed.entry(n.outcome).or_default() += 1;
    }
    let nfailed: usize = failed.values().sum();
    let mut s = format!("{} ok", ok + partial);
    if partial > 0 {
        s.push_str(&format!(" ({partial} partial)"));
    }
    s.push_str(&format!(", {nfailed} failed"));
    if nfailed > 0 {
        let parts: Vec<String> = failed.iter().map(|(o, c)| format!("{c} {o}")).collect();
        s.push_str(&format!(" ({})", parts.join(", ")));
    }
    s
}

/// 0 all ok, 1 some failed, 2 none collected.
pub fn exit_code(nodes: &[NodeOutcome]) -> i32 {
    let ok = nodes.iter().filter(|n| n.outcome.is_success()).count();
    if nodes.is_empty() || ok == 0 {
        2
    } else if ok == nodes.len() {
        0
    } else {
        1
    }
}

/// RFC 3339 UTC with seconds.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil-from-days (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Writes the snapshots and `fleet.json` into `dir`; returns the report.
pub fn write_results(
    dir: &Path,
    results: Vec<(NodeOutcome, Option<Snapshot>)>,
    started_at: SystemTime,
    duration: Duration,
    transport: &str,
) -> anyhow::Result<FleetReport> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut used = std::collections::HashSet::new();
    let mut nodes = Vec::new();
    for (mut o, snap) in results {
        if let Some(s) = snap {
            let file = snapshot_file_name(&o.name, &mut used);
            let path = dir.join(&file);
            let json = serde_json::to_vec_pretty(&s).context("serialising a snapshot")?;
            std::fs::write(&path, json)
                .with_context(|| format!("writing {} for node {}", path.display(), o.name))?;
            o.snapshot = Some(file);
        }
        nodes.push(o);
    }
    let report = FleetReport {
        started_at: rfc3339(started_at),
        duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
        transport: transport.to_string(),
        nodes,
    };
    let path = dir.join("fleet.json");
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&report).context("serialising fleet.json")?,
    )
    .with_context(|| format!("writing {}", path.display()))?;
    Ok(report)
}

/// `diag collect`: collects, writes one snapshot per node plus `fleet.json` into the output
/// directory, prints per-node failures and a summary line on stderr; returns the exit code.
pub async fn run_collect(args: &CollectArgs) -> anyhow::Result<i32> {
    let started_at = SystemTime::now();
    let t0 = Instant::now();
    let targets = match args.targets.resolve_targets().await {
        Ok(t) if t.is_empty() => {
            eprintln!("diag collect: no targets selected");
            return Ok(2);
        }
        Ok(t) => t,
        Err(e) => {
            eprintln!("diag collect: {e:#}");
            return Ok(2);
        }
    };
    let results = match gather_targets(&args.targets, &targets, !args.no_progress).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("diag collect: {e:#}");
            return Ok(2);
        }
    };
    let transport = match args.targets.effective_transport() {
        Transport::Ssm => "ssm",
        _ => "ssh",
    };
    let report = write_results(&args.output, results, started_at, t0.elapsed(), transport)?;
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
        summary_line(&report.nodes),
        t0.elapsed().as_secs_f64(),
        args.output.display()
    );
    Ok(exit_code(&report.nodes))
}

/// One `fleet.node-unreachable` finding per node that was not collected.
pub fn unreachable_findings(nodes: &[NodeOutcome]) -> Vec<Finding> {
    nodes
        .iter()
        .filter(|n| !n.outcome.is_success())
        .map(|n| {
            let remedy = match n.outcome {
                Outcome::Unreachable => "Check the node is running, that its security group allows SSH from here (or the bastion), and the address/port.",
                Outcome::AuthFailed => "Pass the right key with -i, load it into ssh-agent, or set the login user with -l.",
                Outcome::HostkeyMismatch => "Verify the node's host key out of band (EC2 console output); if the node was replaced, remove its stale known_hosts line.",
                Outcome::HostkeyUnknown => "Add the node's host key to known_hosts (verified out of band), or pass --accept-new-host-keys.",
                Outcome::Timeout => "Raise --connect-timeout/--command-timeout, or check the node's load and network path.",
                Outcome::AgentMissing => "Install node-agent on the node, or use --push-agent or --agentless.",
                Outcome::SsmUndeliverable => "Check the SSM agent is running on the node and its instance profile allows SSM.",
                Outcome::Truncated => "Pass --s3-bucket so the full output can be read back.",
                _ => "See the error and stderr excerpt in fleet.json.",
            };
            let mut evidence = vec![Evidence::new(
                EvidenceKind::Note,
                n.error.clone().unwrap_or_else(|| n.outcome.to_string()),
            )
            .at(n.target.clone())];
            if let Some(e) = &n.stderr {
                evidence.push(Evidence::new(EvidenceKind::Log, e.clone()).at("stderr"));
            }
            Finding {
                rule: "fleet.node-unreachable".to_string(),
                severity: Severity::Error,
                node: n.name.clone(),
                summary: format!("node was not collected: {}", n.outcome),
                evidence,
                explanation: "Nothing is known about this node's network state, so no check covered it; a fleet-wide result that omits it may hide the faulty node.".to_string(),
                remedy: remedy.to_string(),
                inferred: Vec::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        c: CollectArgs,
    }

    fn node(name: &str, o: Outcome) -> NodeOutcome {
        NodeOutcome {
            name: name.into(),
            target: name.into(),
            outcome: o,
            error: Some("e".into()),
            stderr: None,
            connect_ms: 0,
            total_ms: 0,
            snapshot: None,
            failed_sections: vec![],
        }
    }

    #[test]
    fn args_parse() {
        let c = Cli::try_parse_from([
            "diag",
            "--hosts",
            "h.txt",
            "-J",
            "jump@10.0.0.1:2222",
            "-j",
            "8",
            "-o",
            "out",
            "--connect-timeout",
            "2.5",
            "--only",
            "^ip-",
            "--sudo",
        ])
        .unwrap()
        .c;
        assert_eq!(c.targets.jobs, 8);
        assert_eq!(c.output, PathBuf::from("out"));
        assert_eq!(c.targets.effective_transport(), Transport::Ssh);
        let o = c.targets.ssh_options().unwrap();
        assert_eq!(o.jump.unwrap().port, 2222);
        assert_eq!(o.connect_timeout, Duration::from_millis(2500));
        let c = Cli::try_parse_from(["diag", "--instance-ids", "i-1,i-2"])
            .unwrap()
            .c;
        assert_eq!(c.targets.instance_ids.len(), 2);
        assert_eq!(c.targets.effective_transport(), Transport::Ssm);
        assert!(Cli::try_parse_from(["diag", "--push-agent", "--agentless"]).is_err());
        let c = Cli::try_parse_from(["diag", "--connect-timeout=-1"])
            .unwrap()
            .c;
        assert!(c.targets.ssh_options().is_err());
    }

    #[test]
    fn summary_and_exit_codes() {
        let nodes = vec![
            node("a", Outcome::Ok),
            node("b", Outcome::Partial),
            node("c", Outcome::Unreachable),
            node("d", Outcome::Unreachable),
            node("e", Outcome::HostkeyMismatch),
        ];
        assert_eq!(
            summary_line(&nodes),
            "2 ok (1 partial), 3 failed (2 unreachable, 1 hostkey-mismatch)"
        );
        assert_eq!(exit_code(&nodes), 1);
        assert_eq!(exit_code(&nodes[..2]), 0);
        assert_eq!(exit_code(&nodes[2..]), 2);
        assert_eq!(exit_code(&[]), 2);
        let f = unreachable_findings(&nodes);
        assert_eq!(f.len(), 3);
        assert!(f.iter().all(|f| f.rule == "fleet.node-unreachable"));
        assert_eq!(f[2].node, "e");
    }

    #[test]
    fn file_names_are_safe_and_unique() {
        let mut used = Default::default();
        assert_eq!(
            snapshot_file_name("ip-10-0-0-1.ec2.internal", &mut used),
            "ip-10-0-0-1.ec2.internal.json"
        );
        assert_eq!(
            snapshot_file_name("ip-10-0-0-1.ec2.internal", &mut used),
            "ip-10-0-0-1.ec2.internal-2.json"
        );
        assert_eq!(
            snapshot_file_name("../../etc/passwd", &mut used),
            "node.._.._etc_passwd.json"
        );
        assert_eq!(snapshot_file_name("fleet", &mut used), "fleet-2.json");
        assert_eq!(snapshot_file_name("fd00::1", &mut used), "fd00__1.json");
    }

    #[test]
    fn rfc3339_formatting() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_235_085);
        assert_eq!(rfc3339(t), "2026-11-21T04:24:45Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn write_results_layout() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Snapshot::new(Default::default());
        s.hostname = "a".into();
        let r = write_results(
            dir.path(),
            vec![
                (node("a", Outcome::Ok), Some(s.clone())),
                (node("b", Outcome::Timeout), None),
            ],
            SystemTime::now(),
            Duration::from_secs(1),
            "ssh",
        )
        .unwrap();
        assert_eq!(r.nodes[0].snapshot.as_deref(), Some("a.json"));
        let back =
            Snapshot::from_json(&std::fs::read_to_string(dir.path().join("a.json")).unwrap())
                .unwrap();
        assert_eq!(back, s);
        let fr: FleetReport =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("fleet.json")).unwrap())
                .unwrap();
        assert_eq!(fr.nodes.len(), 2);
        assert_eq!(fr.nodes[1].outcome, Outcome::Timeout);
    }
}
