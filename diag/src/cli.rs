//! Command line: clap derive types only. Behaviour lives in `commands/`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum, ValueHint};
use model::Severity;

const AFTER_HELP: &str = "\
Examples:
  diag analyze ./captures/node-a/                # a directory of saved command output
  diag analyze eks_i-0abc_2026-11-21_0610-UTC_0.7.9.tar.gz   # an eks-log-collector bundle
  diag analyze snapshot.json out/fleet/          # node-agent snapshots, a `diag collect` dir
  node-agent collect | diag analyze -            # a snapshot on stdin
  diag snat --local                              # run node-agent here and show the SNAT setup
  diag check --from node.json --expect external-snat=false --expect random=prng
  diag rules -o markdown                         # the rule catalogue

Exit codes:
  0  analysed; no finding at or above --fail-on (check: every assertion passed)
  1  findings at or above --fail-on exist (check: an assertion failed)
  2  bad input or nothing could be analysed (check: an assertion could not be evaluated);
     every readable input is still analysed and reported first

Environment:
  DIAG_OUTPUT, DIAG_COLOR, DIAG_FAIL_ON, DIAG_AGENT_PATH, DIAG_POLICY set the options of the
  same name; NO_COLOR disables colour unless --color=always.";

/// Diagnose Amazon EKS worker-node pod networking (VPC CNI): analyse snapshots, captured
/// command output and eks-log-collector bundles; show SNAT and routing; check what is programmed.
#[derive(Debug, Parser)]
#[command(name = "diag", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Output format.
    #[arg(
        short = 'o',
        long,
        global = true,
        value_enum,
        default_value_t = Format::Text,
        env = "DIAG_OUTPUT"
    )]
    pub output: Format,

    /// When to colour text output (auto: only on a terminal and when NO_COLOR is unset).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = ColorChoice::Auto,
        env = "DIAG_COLOR"
    )]
    pub color: ColorChoice,

    /// Print less: summaries and failures only, no notes on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyse snapshots, capture directories or eks-log-collector bundles and report findings.
    #[command(after_help = crate::input::names::ANALYZE_HELP)]
    Analyze(AnalyzeArgs),
    /// Show the SNAT setup: mode, --to-source, excluded CIDRs, randomisation, counters.
    #[command(after_help = SNAT_HELP)]
    Snat(ViewArgs),
    /// Show policy routing: ip rules, per-ENI route tables, pod routes.
    #[command(after_help = ROUTES_HELP)]
    Routes(ViewArgs),
    /// Explain hop by hop what the node's kernel does with one pod's packet and its reply.
    #[command(after_help = crate::commands::trace::TRACE_HELP)]
    Trace(crate::commands::trace::TraceArgs),
    /// Assert what is programmed in the kernel, for scripts after a CNI env change.
    #[command(after_help = CHECK_HELP)]
    Check(CheckArgs),
    /// Collect a snapshot from every node over SSH or SSM into a directory (+ fleet.json).
    #[command(after_help = COLLECT_HELP)]
    Collect(CollectArgs),
    /// The change log of every node's `node-agent serve`, merged by time.
    #[command(after_help = crate::commands::changes::CHANGES_HELP)]
    Changes(crate::commands::changes::ChangesArgs),
    /// Write an incident bundle (.tar.gz, eks-log-collector layout, redacted) and print its path.
    #[command(after_help = crate::commands::bundle::BUNDLE_HELP)]
    Bundle(crate::commands::bundle::BundleArgs),
    /// Live terminal UI over every node: worst first, drill into SNAT/routing/conntrack.
    #[command(after_help = crate::commands::tui::TUI_HELP)]
    Tui(crate::commands::tui::TuiArgs),
    /// List the analysis rules: id, severity, what each checks and what data it needs.
    Rules,
    /// Print a shell completion script.
    Completions {
        /// Shell to generate for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the JSON Schema of a document.
    Schema {
        #[arg(value_enum)]
        what: SchemaKind,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// A node snapshot (`node-agent collect` output).
    Snapshot,
    /// The analysis output (a list of node reports).
    Report,
    /// `fleet.json` written by `diag collect`.
    Fleet,
    /// `diag trace -o json`.
    Trace,
}

/// Options shared by everything that reads inputs.
#[derive(Debug, Args, Clone)]
pub struct InputOpts {
    /// Read a capture under another file name: NAME=FILE, e.g. ip-rule.txt=rules.out
    /// (FILE relative to each capture directory, or absolute).
    #[arg(long = "map", value_name = "NAME=FILE")]
    pub map: Vec<String>,

    /// Remote nodes: collected over SSH or SSM, then analysed here (see `diag collect --help`).
    #[command(flatten, next_help_heading = "Remote targets")]
    pub targets: TargetArgs,
}

impl InputOpts {
    /// `--agent-path` as the local agent binary for `--local`.
    pub fn local_agent(&self) -> Option<PathBuf> {
        self.targets.agent_path.as_ref().map(PathBuf::from)
    }
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Snapshot JSON files, `diag collect` output dirs, capture dirs, eks_i-*.tar.gz bundles, or
    /// `-` for a snapshot on stdin.
    #[arg(value_name = "PATH", value_hint = ValueHint::AnyPath)]
    pub paths: Vec<PathBuf>,

    /// Also collect and analyse this machine (runs `node-agent collect`).
    #[arg(long)]
    pub local: bool,

    /// Exit 1 when a finding at or above this severity exists.
    #[arg(long, value_name = "SEVERITY", default_value = "error", env = "DIAG_FAIL_ON", value_parser = parse_severity)]
    pub fail_on: Severity,

    #[command(flatten)]
    pub input: InputOpts,
}

/// Where `snat`, `routes` and `check` get their snapshots (or remote targets, see
/// [`InputOpts::targets`]).
#[derive(Debug, Args, Clone)]
pub struct SourceArgs {
    /// Collect from this machine with `node-agent collect`.
    #[arg(long)]
    pub local: bool,

    /// Read these inputs (same kinds as `diag analyze PATH...`).
    #[arg(long, value_name = "PATH", num_args = 1.., value_hint = ValueHint::AnyPath)]
    pub from: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ViewArgs {
    #[command(flatten)]
    pub source: SourceArgs,

    /// Exit 1 when a finding of this view at or above this severity exists.
    #[arg(long, value_name = "SEVERITY", default_value = "error", env = "DIAG_FAIL_ON", value_parser = parse_severity)]
    pub fail_on: Severity,

    #[command(flatten)]
    pub input: InputOpts,
}

const SNAT_HELP: &str = "\
For each node: whether the CNI SNATs (AWS-SNAT-CHAIN-0 jumped to from nat POSTROUTING), the
--to-source against the primary IP, the CIDRs that RETURN (VPC and exclusions) against what is
expected, the --random/--random-fully flag against AWS_VPC_K8S_CNI_RANDOMIZESNAT, the connmark
plumbing, rule hit counters, and from conntrack which pod flows were source-NATed.

Examples:
  diag snat --local
  diag snat --from captures/node-a/ -o markdown > ticket.md
  diag snat --from eks_i-0abc_2026-11-21_0610-UTC_0.7.9.tar.gz -o json | jq '.nodes[].cidrs'

Exit codes: 0 no SNAT/connmark/conntrack finding at or above --fail-on, 1 such findings,
2 bad input or nothing analysed.";

const ROUTES_HELP: &str = "\
For each node: every pod IP with its host veth, ENI, `512 to <ip>` and `1536 from <ip>` rules,
and each ENI's route table with what is wrong with it.

Examples:
  diag routes --local
  diag routes --from captures/node-a/ -o markdown

Exit codes: 0 no routing finding at or above --fail-on, 1 such findings, 2 bad input.";

const CHECK_HELP: &str = "\
Assertions (--expect KEY=VALUE, repeatable; compared with the iptables rules programmed in
the kernel, not with the aws-node env):
  external-snat=true|false       false = nat POSTROUTING jumps to AWS-SNAT-CHAIN-0
  exclude-snat=CIDR[,CIDR...]    the exclusion RETURN rules are exactly this set (empty = none)
  exclude-snat+=CIDR[,CIDR...]   the exclusion RETURN rules include these
  random=prng|hashrandom|none    --random-fully | --random | neither, on the SNAT rule
  to-source=IP                   every AWS SNAT rule has --to-source IP
  no-findings=info|warning|error no analysis finding at or above this severity
  rule-absent=RULE_ID            the rule did not fire (see `diag rules`)
  rule-present=RULE_ID           the rule fired

Policy file (--policy FILE, TOML): [default] applies to every node, [[node]] to nodes whose
name matches the regex; later entries override earlier ones key by key.
  [default]
  expect = { external-snat = \"false\", random = \"prng\" }
  [[node]]
  match = \"^ip-10-0-1-\"
  expect = { exclude-snat = [\"172.20.0.0/16\", \"10.10.0.0/16\"] }

Examples:
  kubectl set env daemonset aws-node -n kube-system AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS=172.20.0.0/16
  diag check --local --expect exclude-snat=172.20.0.0/16 --expect no-findings=error
  diag check --from out/fleet/ --policy snat-policy.toml -o json

Exit codes: 0 all passed, 1 an assertion failed, 2 an assertion could not be evaluated, an
input was bad, or nothing was checked (no nodes or no assertions).";

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub source: SourceArgs,

    /// Re-check until every assertion passes or this much time is up (e.g. 10m), printing
    /// progress on stderr: the aws-node rollout after `kubectl set env` takes minutes.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub wait: Option<std::time::Duration>,

    /// Pause between rounds of --wait.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_duration)]
    pub interval: std::time::Duration,

    /// An assertion KEY=VALUE (or exclude-snat+=CIDR); repeatable.
    #[arg(long = "expect", value_name = "KEY=VALUE")]
    pub expect: Vec<String>,

    /// TOML policy with per-node expectations.
    #[arg(long, value_name = "FILE", env = "DIAG_POLICY", value_hint = ValueHint::FilePath)]
    pub policy: Option<PathBuf>,

    /// Assert on the state after each node's last CNI change: the node daemon's latest
    /// snapshot, which must be collected at or after the newest `cni-env`/`cni-version`
    /// change in its change log (else that node is an input error: exit 2, and --wait
    /// waits for it). Remote targets with `node-agent serve` only; a node without a daemon
    /// is an input error; a node whose log has no CNI change is checked on its latest
    /// snapshot, said so in the message.
    #[arg(long, conflicts_with = "no_daemon")]
    pub since_change: bool,

    #[command(flatten)]
    pub input: InputOpts,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse()
}

/// `90` (seconds), `90s`, `15m`, `1h`, `1h30m`, `1d` — jiff's "friendly" duration format
/// (days are 24 hours here).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(n) = s.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(n));
    }
    let bad = |e: &dyn std::fmt::Display| format!("bad duration '{s}': {e} (e.g. 90s, 15m, 1h30m)");
    let span: jiff::Span = s.parse().map_err(|e: jiff::Error| {
        format!("bad duration '{s}': unknown unit or format ({e}); use s, m, h, d as in 90s, 15m, 1h30m")
    })?;
    let d = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|e| bad(&e))?;
    std::time::Duration::try_from(d).map_err(|_| bad(&"negative"))
}

const COLLECT_HELP: &str = "\
Targets: --hosts FILE, --ssh-config FILE --host PATTERN, --ec2-cluster NAME [--ec2-filter K=V],
--instance-ids ID,...; narrowed with --only/--exclude REGEX over node names. SSH verifies host
keys against known_hosts (strict; --accept-new-host-keys records unknown keys, a changed key is
always refused). SSM is used for instance ids without SSH targets (or --transport ssm).

Every node ends with exactly one outcome in fleet.json: ok, partial, unreachable, auth-failed,
hostkey-mismatch, hostkey-unknown, timeout, agent-missing, agent-error, ssm-undeliverable,
ssm-failed, truncated, invalid-output.

Examples:
  diag collect --hosts nodes.txt -i ~/.ssh/eks.pem -d out/
  diag collect --ec2-cluster prod --region eu-west-1 -J ec2-user@bastion:22 --push-agent -d out/
  diag collect --instance-ids i-0abc,i-0def --transport ssm --s3-bucket my-diag-bucket -d out/
  diag analyze out/                        # then analyse what was collected

Exit codes: 0 every node collected, 1 some nodes failed, 2 none could be reached or bad
arguments.";

/// `diag collect`.
#[derive(Debug, Args)]
pub struct CollectArgs {
    #[command(flatten)]
    pub targets: TargetArgs,

    /// Directory for one snapshot per node and fleet.json.
    #[arg(
        short = 'd',
        long = "out-dir",
        value_name = "DIR",
        default_value = "diag-fleet",
        env = "DIAG_OUT_DIR"
    )]
    pub out_dir: PathBuf,

    /// Never show the progress bar (it is shown only on a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
}

/// How nodes are reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TransportArg {
    /// SSH for hosts/ssh_config targets, SSM when only instance ids are given.
    Auto,
    Ssh,
    Ssm,
}

impl From<TransportArg> for fleet::TransportKind {
    fn from(t: TransportArg) -> Self {
        match t {
            TransportArg::Auto => fleet::TransportKind::Auto,
            TransportArg::Ssh => fleet::TransportKind::Ssh,
            TransportArg::Ssm => fleet::TransportKind::Ssm,
        }
    }
}

/// Which nodes, and how to reach them: the flags of [`fleet::FleetSpec`] (its defaults are
/// the `fleet::spec::DEFAULT_*` constants shown here).
#[derive(Debug, Clone, Args)]
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
    #[arg(long, value_enum, default_value_t = TransportArg::Auto)]
    pub transport: TransportArg,

    /// SSH login user when the target does not name one.
    #[arg(
        short = 'l',
        long = "user",
        env = "DIAG_SSH_USER",
        default_value = fleet::spec::DEFAULT_USER
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
    #[arg(long, value_name = "SECS", default_value_t = fleet::spec::DEFAULT_CONNECT_TIMEOUT.as_secs_f64())]
    pub connect_timeout: f64,
    /// Seconds for the collection command on a node (killed there when exceeded).
    #[arg(long, value_name = "SECS", default_value_t = fleet::spec::DEFAULT_COMMAND_TIMEOUT.as_secs_f64())]
    pub command_timeout: f64,
    /// Nodes in flight at once.
    #[arg(short = 'j', long = "jobs", value_name = "N", default_value_t = fleet::spec::DEFAULT_JOBS)]
    pub jobs: usize,
    /// Extra connect attempts after a connection error.
    #[arg(long, value_name = "N", default_value_t = fleet::spec::DEFAULT_RETRIES)]
    pub retries: u32,
    /// Run the collection through `sudo -n` (non-root login users; honoured over SSM too).
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
    /// Collect afresh on every node even where `node-agent serve` runs (by default
    /// analyze/snat/routes/check take the daemon's latest snapshot and say how old it
    /// is; `diag collect` always collects afresh).
    #[arg(long, env = "DIAG_NO_DAEMON")]
    pub no_daemon: bool,

    /// SSM: S3 bucket for full command output (needed for snapshots over 24,000 characters
    /// unless chunked retrieval is used).
    #[arg(long, value_name = "BUCKET")]
    pub s3_bucket: Option<String>,
    #[arg(long, value_name = "PREFIX", default_value = fleet::spec::DEFAULT_S3_PREFIX)]
    pub s3_prefix: String,
    /// SSM MaxConcurrency (number or percentage).
    #[arg(long, value_name = "N|P%", default_value = fleet::spec::DEFAULT_SSM_MAX_CONCURRENCY)]
    pub ssm_max_concurrency: String,
    /// SSM MaxErrors (number or percentage); the default lets every node run.
    #[arg(long, value_name = "N|P%", default_value = fleet::spec::DEFAULT_SSM_MAX_ERRORS)]
    pub ssm_max_errors: String,
}

fn secs(v: f64, what: &str) -> anyhow::Result<std::time::Duration> {
    if !(v.is_finite() && v > 0.0 && v < 1e6) {
        anyhow::bail!("{what} must be a positive number of seconds, got {v}");
    }
    Ok(std::time::Duration::from_secs_f64(v))
}

impl TargetArgs {
    /// True when any remote target option was given.
    pub fn has_targets(&self) -> bool {
        !self.target_spec().is_empty()
    }

    fn target_spec(&self) -> fleet::TargetSpec {
        fleet::TargetSpec {
            hosts: self.hosts.clone(),
            ssh_config: self.ssh_config.clone(),
            host_patterns: self.host.clone(),
            ec2_cluster: self.ec2_cluster.clone(),
            ec2_filters: self.ec2_filter.clone(),
            instance_ids: self.instance_ids.clone(),
            region: self.region.clone(),
            profile: self.profile.clone(),
            only: self.only.clone(),
            exclude: self.exclude.clone(),
        }
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
        anyhow::bail!(
            "--push-agent needs the agent binary: pass --agent-binary FILE (none found at {})",
            sib.display()
        )
    }

    /// The plain fleet spec these flags describe (durations checked here).
    pub fn to_spec(&self) -> anyhow::Result<fleet::FleetSpec> {
        let mode = if self.agentless {
            fleet::runner::AgentMode::Agentless
        } else if self.push_agent {
            fleet::runner::AgentMode::Push {
                local: self.local_agent()?,
            }
        } else {
            fleet::runner::AgentMode::Installed {
                path: self
                    .agent_path
                    .clone()
                    .unwrap_or_else(|| fleet::spec::DEFAULT_AGENT_PATH.to_string()),
            }
        };
        Ok(fleet::FleetSpec {
            targets: self.target_spec(),
            transport: self.transport.into(),
            ssh: fleet::spec::SshSpec {
                user: self.user.clone(),
                identity_files: self.identity.clone(),
                use_agent: !self.no_ssh_agent,
                known_hosts: self.known_hosts.clone(),
                accept_new_host_keys: self.accept_new_host_keys,
                jump: self.jump.clone(),
                connect_timeout: secs(self.connect_timeout, "--connect-timeout")?,
                retries: self.retries,
            },
            ssm: fleet::spec::SsmSpec {
                s3_bucket: self.s3_bucket.clone(),
                s3_prefix: self.s3_prefix.clone(),
                max_concurrency: self.ssm_max_concurrency.clone(),
                max_errors: self.ssm_max_errors.clone(),
            },
            mode,
            sudo: self.sudo,
            command_timeout: secs(self.command_timeout, "--command-timeout")?,
            jobs: self.jobs.max(1),
            agent_args: fleet::runner::default_agent_args(),
            raw_output: false,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        c: CollectArgs,
    }

    #[test]
    fn collect_args_to_spec() {
        let c = T::try_parse_from([
            "diag",
            "--hosts",
            "h.txt",
            "-J",
            "jump@10.0.0.1:2222",
            "-j",
            "8",
            "-d",
            "out",
            "--connect-timeout",
            "2.5",
            "--only",
            "^ip-",
            "--sudo",
        ])
        .unwrap()
        .c;
        assert_eq!(c.out_dir, PathBuf::from("out"));
        let s = c.targets.to_spec().unwrap();
        assert_eq!(s.jobs, 8);
        assert!(s.sudo);
        assert_eq!(s.effective_transport(), fleet::TransportKind::Ssh);
        let o = s.ssh_options().unwrap();
        assert_eq!(o.jump.unwrap().port, 2222);
        assert_eq!(o.connect_timeout, std::time::Duration::from_millis(2500));
        // The defaults are the library's.
        let d = T::try_parse_from(["diag", "--instance-ids", "i-1,i-2"])
            .unwrap()
            .c
            .targets
            .to_spec()
            .unwrap();
        let mut want = fleet::FleetSpec::default();
        want.targets.instance_ids = vec!["i-1".into(), "i-2".into()];
        want.ssh.known_hosts = d.ssh.known_hosts.clone();
        assert_eq!(d, want);
        assert_eq!(d.effective_transport(), fleet::TransportKind::Ssm);
        assert!(T::try_parse_from(["diag", "--push-agent", "--agentless"]).is_err());
        let c = T::try_parse_from(["diag", "--connect-timeout=-1"])
            .unwrap()
            .c;
        assert!(c.targets.to_spec().is_err());
    }

    #[test]
    fn durations() {
        let d = |s| parse_duration(s).unwrap().as_secs();
        assert_eq!(d("90"), 90);
        assert_eq!(d("90s"), 90);
        assert_eq!(d("15m"), 900);
        assert_eq!(d("1h30m"), 5400);
        assert_eq!(d("1d"), 86400);
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("-5m").is_err());
    }
}
