//! Command line: clap derive types only. Behaviour lives in `commands/`.

use std::path::PathBuf;

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
    /// Assert what is programmed in the kernel, for scripts after a CNI env change.
    #[command(after_help = CHECK_HELP)]
    Check(CheckArgs),
    /// Collect a snapshot from every node over SSH or SSM into a directory (+ fleet.json).
    #[command(after_help = COLLECT_HELP)]
    Collect(CollectArgs),
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
}

/// Options shared by everything that reads inputs.
#[derive(Debug, Args, Clone, Default)]
pub struct InputOpts {
    /// Read a capture under another file name: NAME=FILE, e.g. ip-rule.txt=rules.out
    /// (FILE relative to each capture directory, or absolute).
    #[arg(long = "map", value_name = "NAME=FILE")]
    pub map: Vec<String>,

    /// Remote nodes: collected over SSH or SSM, then analysed here (see `diag collect --help`).
    #[command(flatten, next_help_heading = "Remote targets")]
    pub targets: fleet::TargetArgs,
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

    #[command(flatten)]
    pub input: InputOpts,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse()
}

/// `90`, `90s`, `15m`, `1h`, `1h30m`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(n) = s.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(n));
    }
    let mut total = 0u64;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => {
                return Err(format!(
                    "bad duration '{s}': unknown unit '{c}' (use s, m, h, d)"
                ))
            }
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("bad duration '{s}': a number must come before '{c}'"))?;
        total = total.saturating_add(n.saturating_mul(unit));
        num.clear();
    }
    if !num.is_empty() {
        return Err(format!(
            "bad duration '{s}': trailing number without a unit"
        ));
    }
    Ok(std::time::Duration::from_secs(total))
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
    pub targets: fleet::TargetArgs,

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
